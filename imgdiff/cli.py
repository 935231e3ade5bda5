"""Command line: ``imgdiff explain|report|rules|tui``.

Exit status: 0 the images are identical, 1 they differ, 2 trouble (missing or unreadable file, bad arguments,
a rule file error).  Errors are one line on stderr; ``IMGDIFF_DEBUG=1`` shows the traceback of internal errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TextIO

from imgdiff import __version__
from imgdiff.errors import ImgdiffError

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Print the usage, then the error as the last line (one line, whatever argparse composed); exit 2."""
        self.print_usage(sys.stderr)
        _error(message)
        raise SystemExit(EXIT_TROUBLE)


def _uuid(text: str) -> str:
    """Return ``text`` as a canonical UUID (the ``--seed`` type); argparse turns the error into exit 2."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a UUID (systemd-repart --seed takes one, e.g. 0867da16-f251-457d-a9e8-c31f9a3c220b)"
        ) from None


class _Progress:
    """Progress on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        pct = 100 * done // total if total else 100
        self.stream.write(f"\r\x1b[Kimgdiff: {stage} {pct}%")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _add_pair(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="first image (raw disk image, or a bare filesystem image)")
    p.add_argument("b", help="second image")
    p.add_argument("--seed", metavar="UUID", type=_uuid, help="the systemd-repart --seed the images were built with")
    p.add_argument("--rules", metavar="DIR", help="load rules from DIR instead of the shipped rules/")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``imgdiff`` command."""
    parser = _Parser(prog="imgdiff", description="Explain why two disk images differ, field by field.")
    parser.add_argument("--version", action="version", version=f"imgdiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ex = sub.add_parser("explain", help="explain the differences between two images")
    _add_pair(ex)
    ex.add_argument("--json", action="store_true", help="print the JSON result (version 1 contract)")
    ex.add_argument("--all-fields", action="store_true",
                    help="JSON: list every field, path and derived field of each finding (default: the first "
                         "200 of each, with *_total counts)")
    ex.add_argument("--format", choices=("text", "json", "markdown"), default=None, help="output format")
    ex.add_argument("-v", "--verbose", action="store_true", help="list every field, path and derived field")
    ex.add_argument("--config", metavar="NAME", help="configuration name for the markdown report header")
    ex.add_argument("--content-diff", action="store_true", help="markdown: run diffoscope on changed files")
    ex.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE instead of stdout")
    rp = sub.add_parser("report", help="write the reproducibility tracker's markdown for a pair")
    _add_pair(rp)
    rp.add_argument("--config", metavar="NAME", help="configuration name for the report header")
    rp.add_argument("--content-diff", action="store_true", help="run diffoscope on changed files if installed")
    rp.add_argument("-o", "--output", metavar="FILE", help="write the markdown to FILE instead of stdout")
    ru = sub.add_parser("rules", help="list the rules (or show one)")
    ru.add_argument("rule", nargs="?", help="rule id or name to show in full")
    ru.add_argument("--rules", metavar="DIR", help="load rules from DIR")
    tu = sub.add_parser("tui", help="browse the differences interactively (Textual)")
    tu.add_argument("a", help="first image, or a saved `imgdiff explain --json` result")
    tu.add_argument("b", nargs="?", help="second image")
    tu.add_argument("--seed", metavar="UUID", type=_uuid, help="the systemd-repart --seed the images were built with")
    tu.add_argument("--rules", metavar="DIR", help="load rules from DIR")
    return parser


def _rules(path: str | None):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from imgdiff.ruleset.schema import load_rules

    return load_rules(Path(path) if path else None)


@contextlib.contextmanager
def _output_file(path: str) -> Iterator[TextIO]:
    """Open ``path`` for writing through a temporary file that replaces it only when writing succeeded."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".imgdiff-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _refuse_output_over_input(output: str | None, *inputs: str) -> None:
    """Raise when ``-o`` names an input image (or a link to it): replacing it would destroy the input."""
    if not output:
        return
    for path in inputs:
        with contextlib.suppress(OSError):
            if os.path.samefile(output, path):
                raise ImgdiffError(f"-o {output}: that is the input image {path}; choose another output file")


def _write(text: str, output: str | None) -> None:
    """Write a text or markdown result: undecodable name bytes as ``\\xff``; on a stdout that is not UTF-8
    (``LC_ALL=C`` without UTF-8 mode, ``PYTHONIOENCODING=ascii``), other characters it cannot take as escapes."""
    from imgdiff.report.text import printable

    text = printable(text)
    if output:
        with _output_file(output) as fh:
            fh.write(text)
    else:
        _lenient(sys.stdout)
        sys.stdout.write(text)


def _lenient(stream: TextIO) -> None:
    """Let ``stream`` write characters its encoding lacks as backslash escapes instead of raising."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:  # strict, or surrogateescape (C locale): either raises on a character it lacks
        reconfigure(errors="backslashreplace")


def _explain(args: argparse.Namespace, fmt: str) -> int:
    from imgdiff.engine.analysis import gc_paused

    with gc_paused():  # the report (both trees) lives until exit: collector passes over it would only cost time
        return _explain_paused(args, fmt)


def _explain_paused(args: argparse.Namespace, fmt: str) -> int:
    from imgdiff.engine.analysis import analyze

    _refuse_output_over_input(getattr(args, "output", None), args.a, args.b)
    progress = _Progress(sys.stderr)
    ctx = {"config": args.config} if getattr(args, "config", None) else {}
    try:
        report = analyze(args.a, args.b, seed=args.seed, rules=_rules(args.rules), progress=progress, context=ctx,
                         keep_open=fmt == "json")
    finally:
        progress.done()
    if fmt == "json":
        from imgdiff.report.json import LIST_LIMIT, hex_snippets, write

        limit = None if getattr(args, "all_fields", False) else LIST_LIMIT
        try:  # read through the analysis' sources: decompressed inputs and decoded spaces included
            hexes = hex_snippets(report, lambda o, n: report.read("a", o, n) or b"",
                                 lambda o, n: report.read("b", o, n) or b"", limit)
        finally:
            report.close()
        output = getattr(args, "output", None)
        if output:
            with _output_file(output) as fh:
                write(report, fh, hexes, limit)
        else:
            write(report, sys.stdout, hexes, limit)
        return EXIT_SAME if report.identical else EXIT_DIFFERENT
    elif fmt == "markdown":
        from imgdiff.report.markdown import render as render_md

        text = render_md(report, content_diff=getattr(args, "content_diff", False))
    else:
        from imgdiff.report.text import render

        text = render(report, verbose=args.verbose)
    _write(text, getattr(args, "output", None))
    return EXIT_SAME if report.identical else EXIT_DIFFERENT


def _list_rules(args: argparse.Namespace) -> int:
    rs = _rules(args.rules)
    _lenient(sys.stdout)
    if args.rule:
        r = rs.get(args.rule)
        if r is None:
            raise ImgdiffError(f"no rule {args.rule!r} (see `imgdiff rules`)")
        i = r.info
        print(f"{i.id} {i.name}: {i.title}")
        print(f"layer: {i.layer}    component: {i.component}" + (f"    fixed in: {i.fixed_in}" if i.fixed_in else ""))
        print(f"\n{i.explanation}\n\nfix: {i.fix}\n")
        for ref in i.references:
            print(f"  - {ref}")
        print(f"\nfixture pairs: {', '.join(r.fixtures)}   source: {r.source}")
        return 0
    for r in sorted(rs.rules, key=lambda r: r.id):
        print(f"{r.id:8} {r.info.layer:13} {r.info.name:40} {r.info.title}")
    return 0


def _error(message: str) -> None:
    """Write ``imgdiff: error: <message>`` as one line (a path's undecodable bytes as ``\\xff``)."""
    from imgdiff.report.text import printable

    sys.stderr.write(f"imgdiff: error: {printable(' '.join(message.splitlines()))}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "explain":
            fmt = args.format or ("json" if args.json else "text")
            return _explain(args, fmt)
        if args.command == "report":
            args.verbose = False
            return _explain(args, "markdown")
        if args.command == "rules":
            return _list_rules(args)
        if args.command == "tui":
            from imgdiff.tui.app import run as run_tui

            return run_tui(args.a, args.b, seed=args.seed, rules_dir=args.rules)
    except ImgdiffError as exc:
        _error(str(exc))
        return EXIT_TROUBLE
    except KeyboardInterrupt:
        sys.stderr.write("imgdiff: interrupted\n")
        return EXIT_TROUBLE
    except BrokenPipeError:
        return EXIT_TROUBLE
    except (OSError, MemoryError) as exc:
        _error(str(exc))
        return EXIT_TROUBLE
    except Exception as exc:
        if os.environ.get("IMGDIFF_DEBUG"):
            raise
        sys.stderr.write(f"imgdiff: internal error: {type(exc).__name__}: {exc} (IMGDIFF_DEBUG=1 shows more)\n")
        return EXIT_TROUBLE
    return EXIT_TROUBLE

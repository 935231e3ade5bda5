"""Command line: ``imgdiff explain|report|rules|tui|completion|man``.

Exit status: 0 the images are identical, 1 they differ, 2 trouble (missing or unreadable file, bad arguments,
a rule file error).  Errors are one line on stderr; ``IMGDIFF_DEBUG=1`` shows the traceback of internal errors.
Shell completion (``imgdiff completion bash|zsh|fish``) and the manual page (``imgdiff man``) are generated from
the parser built here (:mod:`imgdiff.clidoc`), so they always list the options this version has.
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
from typing import Any, TextIO

from imgdiff import __version__
from imgdiff.errors import ImgdiffError

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2
BUILDERS = ("nixos", "repart", "mkosi", "plain")

EXIT_CODES = """exit status:
  0  the images are identical
  1  the images differ (the output says why)
  2  trouble: a missing or unreadable file, bad arguments, a rule file error (one line on stderr)"""

EXAMPLES = """examples:
  imgdiff explain a.raw b.raw                         verdict, what to fix, then the details
  imgdiff report --format html -o report.html a.raw b.raw   one self-contained page for a CI artefact"""

STAGE_WEIGHTS = {"comparing": 40, "parsing": 20, "nested images": 5, "attributing": 25, "explaining": 10}
"""Share of the whole run each analysis stage is shown as in the progress line (percent)."""


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


def overall_percent(stage: str, done: int, total: int) -> int:
    """Return the progress of the whole analysis (0-100) for a stage's ``done`` of ``total``."""
    before = 0
    for name, weight in STAGE_WEIGHTS.items():
        if name == stage:
            frac = min(done / total, 1.0) if total else 1.0
            return min(int(before + weight * frac), 100)
        before += weight
    return 0


class _Progress:
    """One overall progress line on stderr whenever stderr is a terminal (whatever stdout is)."""

    def __init__(self, stream: TextIO, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.last = 0.0
        self.pct = 0
        self.started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        pct = max(self.pct, overall_percent(stage, done, total))  # never goes back when a stage starts
        now = time.monotonic()
        if now - self.last < 0.2 and pct == self.pct:
            return
        self.pct = pct
        self.last = now
        self.stream.write(f"\r\x1b[Kimgdiff: {pct:3d}%  {stage}  {now - self.started:.0f} s")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _add_pair(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="first image (raw disk image, or a bare filesystem image; .zst/.xz/.gz/.bz2 too)")
    p.add_argument("b", help="second image")
    p.add_argument("--seed", metavar="UUID", type=_uuid,
                   help="a systemd-repart --seed to check: the GPT finding says whether each image's GUIDs derive "
                        "from it")
    p.add_argument("--rules", metavar="DIR", help="load rules from DIR instead of the shipped rules/")
    p.add_argument("--builder", choices=BUILDERS,
                   help="show the fix for this builder only: nixos, repart, mkosi or plain (default: every builder "
                        "a rule has a fix for, NixOS first)")


def _sub(sub: Any, name: str, help_: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, description=description, epilog=f"{EXIT_CODES}\n\n{EXAMPLES}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``imgdiff`` command."""
    parser = _Parser(prog="imgdiff", description="Explain why two disk images differ, field by field.",
                     epilog=f"{EXIT_CODES}\n\n{EXAMPLES}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"imgdiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="command")
    ex = _sub(sub, "explain", "explain the differences between two images",
              "Compare two images and say why they differ: the verdict first, then what to fix (most impactful "
              "first), then every finding with its fields.")
    _add_pair(ex)
    ex.add_argument("--json", action="store_true", help="print the JSON result (version 1 contract)")
    ex.add_argument("--all-fields", action="store_true",
                    help="JSON: list every field, path and derived field of each finding (default: the first "
                         "200 of each, with *_total counts)")
    ex.add_argument("--format", choices=("text", "json", "markdown", "html"), default=None, help="output format")
    ex.add_argument("-v", "--verbose", action="store_true", help="list every field, path and derived field")
    ex.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                    help="colour the text output (auto: on a terminal unless NO_COLOR is set)")
    ex.add_argument("--config", metavar="NAME", help="configuration name for the markdown/HTML report header")
    ex.add_argument("--content-diff", action="store_true", help="markdown: run diffoscope on changed files")
    ex.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE instead of stdout")
    rp = _sub(sub, "report", "write a report for a tracker (markdown) or a CI artefact (HTML)",
              "Write the reproducibility report of a pair: markdown for an issue tracker (committable, "
              "deterministic), or one self-contained HTML page.")
    _add_pair(rp)
    rp.add_argument("--format", choices=("markdown", "html"), default="markdown", help="report format")
    rp.add_argument("--config", metavar="NAME", help="a name for the configuration, shown in the report header")
    rp.add_argument("--content-diff", action="store_true", help="run diffoscope on changed files if installed")
    rp.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    ru = _sub(sub, "rules", "list the rules (or show one)", "List the rule set, or show one rule in full.")
    ru.add_argument("rule", nargs="?", help="rule id or name to show in full")
    ru.add_argument("--rules", metavar="DIR", help="load rules from DIR")
    tu = _sub(sub, "tui", "browse the differences interactively (Textual)",
              "Browse the findings, the structure of both images and their bytes side by side.")
    tu.add_argument("a", help="first image, or a saved `imgdiff explain --json` result")
    tu.add_argument("b", nargs="?", help="second image")
    tu.add_argument("--seed", metavar="UUID", type=_uuid,
                    help="a systemd-repart --seed to check: the GPT finding says whether each image's GUIDs derive "
                         "from it")
    tu.add_argument("--rules", metavar="DIR", help="load rules from DIR")
    co = _sub(sub, "completion", "print a shell completion script (bash, zsh or fish)",
              "Print the completion script for a shell, generated from this parser. Install it with e.g. "
              "`imgdiff completion bash > /etc/bash_completion.d/imgdiff`, "
              "`imgdiff completion zsh > \"${fpath[1]}/_imgdiff\"` or "
              "`imgdiff completion fish > ~/.config/fish/completions/imgdiff.fish`.")
    co.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell")
    _sub(sub, "man", "print the manual page (roff)", "Print the imgdiff(1) manual page as roff: "
         "`imgdiff man > imgdiff.1; man ./imgdiff.1`.")
    return parser


def _rules(path: str | None):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from imgdiff.ruleset.schema import load_rules

    return load_rules(Path(path) if path else None)


@contextlib.contextmanager
def _output_file(path: str) -> Iterator[TextIO]:
    """Open ``path`` for writing through a temporary file that replaces it only when writing succeeded."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".imgdiff-", dir=directory)
    except OSError as exc:
        raise ImgdiffError(f"-o {path}: {_why(exc, directory)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ImgdiffError(f"-o {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _why(exc: OSError, directory: str) -> str:
    """Return why the output file cannot be made, naming the user's directory rather than a temporary file."""
    if not os.path.exists(directory):
        return f"the directory {directory} does not exist"
    if not os.path.isdir(directory):
        return f"{directory} is not a directory"
    return f"cannot create a file in {directory}: {exc.strerror or exc}"


def check_output(path: str | None) -> None:
    """Fail early (before a long analysis) when ``-o`` cannot be written: no such directory, not writable."""
    if not path:
        return
    if os.path.isdir(path):
        raise ImgdiffError(f"-o {path}: is a directory; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise ImgdiffError(f"-o {path}: {_why(PermissionError(13, 'Permission denied'), directory)}")


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

    output = getattr(args, "output", None)
    _refuse_output_over_input(output, args.a, args.b)
    check_output(output)
    progress = _Progress(sys.stderr)
    ctx = {"config": args.config} if getattr(args, "config", None) else {}
    try:
        report = analyze(args.a, args.b, seed=args.seed, rules=_rules(args.rules), progress=progress, context=ctx,
                         keep_open=fmt in ("json", "html"))
    finally:
        progress.done()
    builder = getattr(args, "builder", None)
    if fmt in ("markdown", "html"):
        report.context.update(image_checksums(args.a, args.b))
    if fmt == "json":
        from imgdiff.report.json import LIST_LIMIT, hex_snippets, write

        limit = None if getattr(args, "all_fields", False) else LIST_LIMIT
        try:  # read through the analysis' sources: decompressed inputs and decoded spaces included
            hexes = hex_snippets(report, lambda o, n: report.read("a", o, n) or b"",
                                 lambda o, n: report.read("b", o, n) or b"", limit)
        finally:
            report.close()
        if output:
            with _output_file(output) as fh:
                write(report, fh, hexes, limit)
        else:
            write(report, sys.stdout, hexes, limit)
        return EXIT_SAME if report.identical else EXIT_DIFFERENT
    if fmt == "html":
        from imgdiff.report.html import render as render_html

        try:
            text = render_html(report, builder=builder)
        finally:
            report.close()
    elif fmt == "markdown":
        from imgdiff.report.markdown import render as render_md

        text = render_md(report, content_diff=getattr(args, "content_diff", False), builder=builder)
    else:
        from imgdiff.report.text import render

        text = render(report, verbose=args.verbose, builder=builder, color=_colour(getattr(args, "color", "never"),
                                                                                    output))
    _write(text, output)
    return EXIT_SAME if report.identical else EXIT_DIFFERENT


def _colour(mode: str, output: str | None) -> bool:
    """Return True when the text output is coloured: ``always``, or ``auto`` on a terminal without NO_COLOR."""
    if mode == "always":
        return True
    if mode == "never" or output:
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def image_checksums(a: str, b: str) -> dict[str, str]:
    """Return the SHA-256 of both input files as given (read in 1 MiB chunks; the report header names them)."""
    import hashlib

    out: dict[str, str] = {}
    for side, path in (("a", a), ("b", b)):
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        except OSError:
            continue
        out[f"sha256_{side}"] = h.hexdigest()
    return out


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
        from imgdiff.report.fixes import BUILDER_LABELS
        from imgdiff.ruleset.schema import fix_for

        print(f"\n{i.explanation}\n\nfix: {i.fix}\n")
        for b, template in fix_for(i).items():
            print(f"fix for {BUILDER_LABELS.get(b, b)}: {template}")
        if fix_for(i):
            print("  ({name} placeholders are filled in from the images when a finding is shown)\n")
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


def run() -> None:
    """The ``imgdiff`` command: :func:`main`, then exit without tearing the heap down.

    A comparison leaves millions of objects behind (both trees, every difference) that the interpreter would free
    one by one and collect once more at exit: 0.74 s of a 13 s run on a 1 GiB ext4 pair (bench/ usr-rebuilt).
    The output is flushed first; decompressed scratch files are unnamed and go with the process.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away, or a stream closed by the caller
            status = status or EXIT_TROUBLE
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "explain":
            fmt = args.format or ("json" if args.json else "text")
            return _explain(args, fmt)
        if args.command == "report":
            args.verbose = False
            return _explain(args, args.format)
        if args.command == "completion":
            from imgdiff.clidoc import completion

            _lenient(sys.stdout)
            sys.stdout.write(completion(build_parser(), args.shell))
            return 0
        if args.command == "man":
            from imgdiff.clidoc import manpage

            _lenient(sys.stdout)
            sys.stdout.write(manpage(build_parser()))
            return 0
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

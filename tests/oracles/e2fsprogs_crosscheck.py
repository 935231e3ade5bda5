#!/usr/bin/env python3
"""Cross-check imgdiff's ext4 parser with dissect.extfs on a directory of images (e2fsprogs' test images).

Not collected by pytest (the images are not part of the repository and are never committed).  Usage::

    # e2fsprogs' tests/*/image.gz (and image.bz2, image), decompressed to one file per test directory
    git -C e2fsprogs ls-tree -r --name-only HEAD tests | grep -E '/image(\\.gz|\\.bz2)?$' | while read -r f; do
        d=$(basename "$(dirname "$f")")
        case $f in *.gz) git -C e2fsprogs show "HEAD:$f" | gzip -dc ;; *.bz2) git -C e2fsprogs show "HEAD:$f" |
        bzip2 -dc ;; *) git -C e2fsprogs show "HEAD:$f" ;; esac > "/work/scratch/h4/e2fs/$d.img"
    done
    .venv/bin/python tests/oracles/e2fsprogs_crosscheck.py /work/scratch/h4/e2fs [--timeout 300] [--json out.json]

Each image is checked in its own subprocess (``--one IMAGE``) with a wall-clock timeout and a 2 GiB address-space
limit, so a hang or a blow-up in either reader is reported for that image instead of stopping the run.  The
comparison is ``tests/oracles/crosscheck.py`` (the same as ``tests/test_oracles.py``); an image imgdiff finds no
ext4 in is also opened with dissect at offset 0, so "dissect reads it, imgdiff does not" is reported too.

Output: one summary line per image (filesystems found, paths compared, disagreements, each reader's errors),
then the table of disagreements: image, path, field, dissect's value, imgdiff's value.  Many of these images are
deliberately corrupt (they are e2fsck's test inputs), so a disagreement is a lead to classify, not a verdict.
The classified results of a full run are in ``tests/oracles/E2FSPROGS.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MEMORY_LIMIT = 2 << 30
CELL = 70


def _plain(v: Any) -> Any:
    """A JSON-friendly form of a compared value (bytes as their repr, tuples as lists)."""
    if isinstance(v, bytes):
        v = repr(v)
    if isinstance(v, str) and len(v) > 120:
        digest = hashlib.sha256(v.encode("utf-8", errors="surrogateescape")).hexdigest()[:12]
        return f"{v[:60]!r}... ({len(v)} chars, sha256 {digest})"
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def check_one(image: Path) -> dict[str, Any]:
    """Cross-check one image in this process; return a JSON-friendly summary."""
    from tests.oracles.crosscheck import crosscheck_image

    t0 = time.monotonic()
    out: dict[str, Any] = {"image": image.name, "filesystems": []}
    try:
        results = crosscheck_image(image)
    except Exception as exc:  # noqa: BLE001 - a crash of imgdiff's parser is itself a finding
        out["crash"] = f"imgdiff: {type(exc).__name__}: {exc}"
        results = []
    for r in results:
        out["filesystems"].append(
            {
                "fmt": r.fmt,
                "base": r.base,
                "paths": r.paths,
                "fields": r.fields,
                "imgdiff_errors": r.imgdiff_errors[:20],
                "dissect_errors": r.dissect_errors[:20],
                "skipped": r.skipped,
                "disagreements": [
                    {"path": d.path, "field": d.field, "dissect": _plain(d.dissect), "imgdiff": _plain(d.imgdiff)}
                    for d in r.disagreements
                ],
            }
        )
    if not any(f["fmt"] == "ext4" for f in out["filesystems"]):
        out["dissect_alone"] = _dissect_alone(image)
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def _dissect_alone(image: Path) -> str:
    """What dissect.extfs makes of an image imgdiff found no ext4 in."""
    from dissect.extfs import ExtFS

    try:
        with open(image, "rb") as fh:
            fs = ExtFS(fh)
            n = sum(1 for _ in fs.root.iterdir())
        return f"dissect opens it ({n} root entries)"
    except Exception as exc:  # noqa: BLE001
        return f"dissect refuses it too: {type(exc).__name__}: {str(exc)[:60]}"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_all(directory: Path, timeout: float) -> list[dict[str, Any]]:
    """Check every ``*.img`` under ``directory``, one subprocess each."""
    out: list[dict[str, Any]] = []
    for image in sorted(directory.glob("*.img")):
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(image)],
                capture_output=True,
                text=True,
                timeout=timeout,
                preexec_fn=_limit_memory,
                check=False,
            )
        except subprocess.TimeoutExpired:
            out.append({"image": image.name, "crash": f"timeout after {timeout:g} s", "filesystems": []})
            continue
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            out.append({"image": image.name, "crash": f"exit {proc.returncode}: {tail[:200]}", "filesystems": []})
            continue
        out.append(json.loads(proc.stdout))
    return out


def _cell(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= CELL else s[: CELL - 1] + "…"


def render(results: list[dict[str, Any]]) -> str:
    """The per-image summary and the disagreement table."""
    lines = ["# per image: filesystems (format, paths compared, disagreements), errors", ""]
    for r in results:
        parts = [f"{f['fmt']}: {f['paths']} paths, {len(f['disagreements'])} disagreements" for f in r["filesystems"]]
        extra = []
        if r.get("crash"):
            extra.append(f"CRASH {r['crash']}")
        if r.get("dissect_alone"):
            extra.append(f"no ext4 found by imgdiff; {r['dissect_alone']}")
        for f in r["filesystems"]:
            if f["imgdiff_errors"]:
                extra.append(f"imgdiff errors: {len(f['imgdiff_errors'])} (first: {_cell(f['imgdiff_errors'][0])})")
            if f["dissect_errors"]:
                extra.append(f"dissect errors: {len(f['dissect_errors'])} (first: {_cell(f['dissect_errors'][0])})")
            if f["skipped"]:
                extra.append("skipped: " + "; ".join(f["skipped"]))
        lines.append(f"{r['image']}  {r.get('seconds', '-')} s  " + "; ".join(parts + extra))
    lines += ["", "# disagreements: image | path | field | dissect | imgdiff", ""]
    for r in results:
        for f in r["filesystems"]:
            for d in f["disagreements"]:
                lines.append(
                    f"{r['image']} | {d['path']} | {d['field']} | {_cell(d['dissect'])} | {_cell(d['imgdiff'])}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory", nargs="?", type=Path, help="directory of *.img files")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per image (default 300)")
    ap.add_argument("--json", type=Path, help="also write the full results as JSON here")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one is not None:
        json.dump(check_one(args.one), sys.stdout)
        return 0
    if args.directory is None or not args.directory.is_dir():
        ap.error("a directory of images is required")
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]  # non-UTF-8 names
    results = run_all(args.directory, args.timeout)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

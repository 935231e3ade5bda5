#!/usr/bin/env python3
"""Fuzz imgdiff with damaged images: mutate the fixture images and run ``imgdiff explain --json`` on each pair.

Mutations (one to three per image, recorded as a replayable recipe): bit flips and hostile values (0, 1, 0x7f…,
0xff…) in metadata fields (the field extents of the parsed fixture, so flips land in superblocks, BPBs, GPT
headers, inodes, directory entries rather than in file data), zeroed, random or swapped metadata sectors,
truncation (at field boundaries ± a few bytes, small sizes, anywhere) and appended bytes.  Scenarios: a clean
image against its corrupt copy, a real pair with one or both sides corrupt.

Each run forks a child that calls :func:`imgdiff.cli.main` in-process (the imports are paid once), with
``IMGDIFF_DEBUG=1`` (an internal error shows its traceback), a memory limit, and ``faulthandler`` dumping the
stack of a run still busy after 20 s; the parent kills it at the hard timeout.  Checks:

- the exit status is 0, 1 or 2, and no traceback / internal error is printed;
- exit 2 prints exactly one ``imgdiff: error:`` line and nothing on stdout;
- exit 0/1: stdout is JSON that parses after a strict UTF-8 decode; ``bytes_differing`` equals the count of
  differing bytes the harness computes itself (``cmp -l | wc -l`` plus the size difference); ``identical`` and
  the exit status agree with it; the findings' bytes add up to ``bytes_differing``; ``bytes_unexplained`` is at
  most ``bytes_differing``;
- no run takes more than 20 s (slow) or reaches the hard timeout (hang); peak memory and JSON size are recorded;
- the input images are unchanged (size, mtime, ctime).

Usage (after ``bash .ci/setup``, which unpacks the fixtures; one process, fine on a shared machine)::

    .venv/bin/python bench/fuzz_inputs.py --minutes 20 [--seed N] [--pairs ext4-defaults,vfat-volid] [--work DIR]
    .venv/bin/python bench/fuzz_inputs.py --minutes 8 --ops flip,set,zero,swap,extend   # no truncation
    .venv/bin/python bench/fuzz_inputs.py --replay DIR/findings.jsonl --index 3    # rerun one finding verbosely

Findings go to ``DIR/findings.jsonl`` (default DIR: bench/work/fuzz, not committed), each with its recipe (the
fixture and the ops, enough to rebuild the images: ``--replay``) and the stderr tail (``DIR/keep/<n>.stderr``
in full).  This is a search, not a test: it exits 0 whatever it finds.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAIRS = ROOT / "fixtures" / "pairs"
sys.path.insert(0, str(ROOT))

SLOW = 20.0
"""A run longer than this is a finding (a hang in the making)."""
HARD = 60.0
"""A run still going after this is killed and reported as a hang."""
MEMORY = 3 << 30
"""RLIMIT_AS of a run: a MemoryError past it is reported by the run itself (exit 2) and counted here."""
HUGE_JSON = 20 << 20
"""A JSON result larger than this is recorded (the 'truncated ext4 yields 70 MB of JSON' issue is known)."""
SKIP_FIELDS = {"data", "free", "unused", "padding", "slack"}

Op = list[Any]
"""One mutation: ``["flip", offset, mask]``, ``["set", offset, hexbytes]``, ``["zero", offset, n]``,
``["swap", off1, off2, n]``, ``["trunc", size]``, ``["extend", n, fill]``."""


# --------------------------------------------------------------------------------------------------------------
# images


def sparse_copy(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` keeping holes (the fixtures are tens of MB of mostly holes)."""
    size = src.stat().st_size
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        fo.truncate(size)
        fd = fi.fileno()
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            fi.seek(data)
            fo.seek(data)
            left = hole - data
            while left:
                chunk = fi.read(min(left, 1 << 20))
                if not chunk:
                    break
                fo.write(chunk)
                left -= len(chunk)
            pos = hole


def apply(path: Path, ops: list[Op]) -> None:
    """Apply mutation ``ops`` to the image at ``path`` in place."""
    with open(path, "r+b") as fh:
        for op in ops:
            size = os.fstat(fh.fileno()).st_size
            kind = op[0]
            if kind == "flip":
                _, off, mask = op
                if off < size:
                    fh.seek(off)
                    b = fh.read(1)[0]
                    fh.seek(off)
                    fh.write(bytes([b ^ mask]))
            elif kind == "set":
                _, off, hexbytes = op
                data = bytes.fromhex(hexbytes)[: max(0, size - off)]
                fh.seek(off)
                fh.write(data)
            elif kind == "zero":
                _, off, n = op
                fh.seek(off)
                fh.write(bytes(max(0, min(n, size - off))))
            elif kind == "swap":
                _, o1, o2, n = op
                fh.seek(o1)
                x = fh.read(n)
                fh.seek(o2)
                y = fh.read(n)
                if len(x) == len(y) == n:
                    fh.seek(o1)
                    fh.write(y)
                    fh.seek(o2)
                    fh.write(x)
            elif kind == "trunc":
                fh.truncate(min(op[1], size))
            elif kind == "extend":
                _, n, fill = op
                fh.seek(size)
                fh.write(bytes([fill]) * n if fill >= 0 else random.Random(n).randbytes(n))
            else:
                raise ValueError(f"unknown op {op!r}")


def count_differing(a: Path, b: Path) -> int:
    """Return the number of differing bytes, as ``cmp -l | wc -l`` plus the size difference (independent of
    imgdiff: plain reads, no hole skipping)."""
    sa, sb = a.stat().st_size, b.stat().st_size
    common = min(sa, sb)
    total = max(sa, sb) - common
    with open(a, "rb") as fa, open(b, "rb") as fb:
        pos = 0
        while pos < common:
            n = min(1 << 20, common - pos)
            x, y = fa.read(n), fb.read(n)
            if x != y:
                v = (int.from_bytes(x, "little") ^ int.from_bytes(y, "little")).to_bytes(n, "little")
                total += n - v.count(0)
            pos += n
    return total


@dataclass
class Fixture:
    """One fixture image and the extents of its metadata fields (where mutations land)."""

    path: Path
    size: int
    fields: list[tuple[int, int]]
    bounds: list[int]


def metadata_fields(path: Path) -> list[tuple[int, int]]:
    """Return ``(offset, length)`` of every metadata field of the parsed image (file data, free space skipped)."""
    from imgdiff.formats import parse_image
    from imgdiff.formats.base import ParseContext
    from imgdiff.source import ImageSource

    out: list[tuple[int, int]] = []
    with ImageSource(str(path)) as src:
        ctx = ParseContext(src=src)
        root = parse_image(ctx)
        for _key, node in root.walk():
            for f in node.all_fields():
                if f.name in SKIP_FIELDS:
                    continue
                for e in f.extents:
                    # decoded spaces (offsets from VBASE on: squashfs metadata, decompressed streams) are not
                    # bytes of the image file and cannot be mutated in place
                    if 0 < e.length <= 65536 and e.offset + e.length <= src.size:
                        out.append((e.offset, e.length))
    return sorted(set(out))


def load_fixture(path: Path, cache: dict[Path, Fixture]) -> Fixture:
    if path not in cache:
        fields = metadata_fields(path)
        bounds = sorted({o for o, _ in fields} | {o + n for o, n in fields})
        cache[path] = Fixture(path, path.stat().st_size, fields, bounds)
    return cache[path]


# --------------------------------------------------------------------------------------------------------------
# mutations

HOSTILE = [b"\x00", b"\x01", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f",
           b"\x00\x00\x00\x80", b"\x01\x00\x00\x00", b"\xff\xff", b"\x00\x10", b"\xff" * 8, b"\x00" * 8]


def one_op(rng: random.Random, fx: Fixture) -> Op:
    """Return one random mutation of ``fx``."""
    fields = fx.fields or [(0, 512)]
    off, n = rng.choice(fields)
    r = rng.random()
    if r < 0.30:
        return ["flip", off + rng.randrange(n), 1 << rng.randrange(8)]
    if r < 0.42:
        return ["flip", off + rng.randrange(n), rng.randrange(1, 256)]
    if r < 0.58:
        val = rng.choice(HOSTILE)[:n] if rng.random() < 0.8 else rng.randbytes(min(n, 8))
        at = off + (rng.randrange(0, n - len(val) + 1) if n > len(val) else 0)
        return ["set", at, val.hex()]
    if r < 0.66:
        return ["zero", off - off % 512, 512 * rng.choice((1, 1, 2, 8))]
    if r < 0.72:
        return ["set", off - off % 512, rng.randbytes(512).hex()]
    if r < 0.78:
        o2, _ = rng.choice(fields)
        unit = rng.choice((512, 4096))
        return ["swap", off - off % unit, o2 - o2 % unit, unit]
    if r < 0.95:
        p = rng.random()
        if p < 0.5 and fx.bounds:
            at = rng.choice(fx.bounds) + rng.choice((-2, -1, 0, 0, 1, 2, 7))
        elif p < 0.7:
            at = rng.randrange(0, 16384)
        else:
            at = rng.randrange(0, fx.size)
        return ["trunc", max(0, at)]
    return ["extend", rng.choice((1, 511, 512, 4096, 65536)), rng.choice((0, 0xFF, -1))]


ALLOWED: set[str] = {"flip", "set", "zero", "swap", "trunc", "extend"}
"""The op kinds a campaign uses (``--ops``)."""


def ops_for(rng: random.Random, fx: Fixture) -> list[Op]:
    ops: list[Op] = []
    count = rng.choice((1, 1, 1, 2, 2, 3))
    while len(ops) < count:
        op = one_op(rng, fx)
        if op[0] in ALLOWED:
            ops.append(op)
    ops.sort(key=lambda op: op[0] == "trunc")  # truncate last: the other ops land inside the image
    return ops


# --------------------------------------------------------------------------------------------------------------
# one run


@dataclass
class Result:
    rc: int | None
    signal: int | None
    elapsed: float
    maxrss_kb: int
    stdout: bytes
    stderr: bytes
    problems: list[str] = field(default_factory=list)


def run_child(argv: list[str], work: Path, hard: float) -> Result:
    """Run ``imgdiff`` with ``argv`` in a forked child; return its status, output and resources."""
    out, err = work / "stdout", work / "stderr"
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 70
        try:
            os.environ["IMGDIFF_DEBUG"] = "1"
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
            fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            faulthandler.dump_traceback_later(SLOW, exit=False, file=sys.stderr)
            from imgdiff.cli import main

            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - whatever escapes main is the finding
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    status = None
    rusage = None
    while True:
        wpid, status, rusage = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        if time.monotonic() - start > hard:
            os.kill(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return Result(rc, sig, elapsed, rusage.ru_maxrss, out.read_bytes(), err.read_bytes())


def stamp(p: Path) -> tuple[int, int, int]:
    st = p.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def check(res: Result, a: Path, b: Path, before: dict[Path, tuple[int, int, int]]) -> None:
    """Fill ``res.problems`` with every violated expectation."""
    p = res.problems
    if res.signal is not None:
        p.append(f"hang: killed after {res.elapsed:.0f} s" if res.signal == signal.SIGKILL else f"signal {res.signal}")
        return
    err = res.stderr.decode("utf-8", "replace")
    if "Traceback" in err or "internal error" in err:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        p.append("traceback: " + (lines[-1] if lines else "?"))
    if "Thread 0x" in err or "Current thread" in err:
        p.append(f"slow: still running after {SLOW:.0f} s (stack dumped)")
    if res.rc not in (0, 1, 2):
        p.append(f"exit status {res.rc}")
    if res.elapsed > SLOW:
        p.append(f"slow: {res.elapsed:.1f} s")
    for path, st in before.items():
        if stamp(path) != st:
            p.append(f"input changed: {path}")
    if res.rc == 2:
        if res.stdout or err.count("\n") != 1 or not err.startswith("imgdiff: error: "):
            p.append(f"exit 2 without exactly one error line: {err[:200]!r}")
        return
    if res.rc not in (0, 1):
        return
    try:
        doc = json.loads(res.stdout.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError) as exc:
        p.append(f"json: {type(exc).__name__}: {exc}")
        return
    s = doc["summary"]
    want = count_differing(a, b)
    compressed = any(doc["images"][side].get("decompressed") for side in "ab")
    if s["bytes_differing"] != want and not compressed:  # counts refer to the decompressed images
        p.append(f"count: bytes_differing {s['bytes_differing']} != cmp {want}")
    if doc["identical"] != (want == 0) or res.rc != (0 if want == 0 else 1):
        p.append(f"identical/exit status wrong: identical={doc['identical']} rc={res.rc} cmp={want}")
    total = sum(f["bytes"] for f in doc["findings"])
    if total != s["bytes_differing"]:
        p.append(f"attribution: findings add up to {total}, bytes_differing {s['bytes_differing']}")
    if s["bytes_unexplained"] > s["bytes_differing"]:
        p.append(f"bytes_unexplained {s['bytes_unexplained']} > bytes_differing {s['bytes_differing']}")
    if len(res.stdout) > HUGE_JSON:
        p.append(f"huge json: {len(res.stdout) >> 20} MiB")


# --------------------------------------------------------------------------------------------------------------
# the campaign


def choose_case(rng: random.Random, pairs: list[str], cache: dict[Path, Fixture]) -> dict[str, Any]:
    """Return a recipe: pair, scenario, and the ops applied to A and to B."""
    name = rng.choice(pairs)
    a, b = PAIRS / name / "a.img", PAIRS / name / "b.img"
    scenario = rng.choice(("clean-vs-corrupt", "clean-vs-corrupt", "corrupt-vs-clean", "pair-corrupt-b",
                           "pair-both-corrupt"))
    def mutated(img: Path) -> list[Any]:
        return [str(img), ops_for(rng, load_fixture(img, cache))]

    if scenario == "clean-vs-corrupt":
        sides = ([str(a), []], mutated(a))
    elif scenario == "corrupt-vs-clean":
        sides = (mutated(b), [str(b), []])
    elif scenario == "pair-corrupt-b":
        sides = ([str(a), []], mutated(b))
    else:
        sides = (mutated(a), mutated(b))
    return {"pair": name, "scenario": scenario, "a": sides[0], "b": sides[1]}


def materialise(case: dict[str, Any], work: Path) -> tuple[Path, Path]:
    """Return the A and B paths of ``case``: the fixture itself when unmutated, else a mutated sparse copy."""
    paths = []
    for side in ("a", "b"):
        src, ops = case[side]
        if not ops:
            paths.append(Path(src))
            continue
        dest = work / f"{side}.img"
        sparse_copy(Path(src), dest)
        apply(dest, ops)
        paths.append(dest)
    return paths[0], paths[1]


def run_case(case: dict[str, Any], work: Path, hard: float) -> Result:
    a, b = materialise(case, work)
    before = {p: stamp(p) for p in (a, b)}
    res = run_child(["explain", "--json", str(a), str(b)], work, hard)
    check(res, a, b, before)
    return res


def signature(problem: str) -> str:
    """Group problems: the kind plus the last traceback line without numbers."""
    import re

    return re.sub(r"\d+", "N", problem)[:160]


def campaign(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    keep = work / "keep"
    keep.mkdir(exist_ok=True)
    findings_path = work / "findings.jsonl"
    pairs = args.pairs.split(",") if args.pairs else sorted(p.name for p in PAIRS.iterdir() if (p / "a.img").exists())
    missing = [p for p in pairs if not (PAIRS / p / "a.img").exists()]
    if missing:
        sys.exit(f"fixture images not unpacked (run bash .ci/setup): {', '.join(missing)}")
    cache: dict[Path, Fixture] = {}
    deadline = time.monotonic() + args.minutes * 60
    runs = 0
    exits: Counter[str] = Counter()
    groups: dict[str, list[int]] = {}
    slowest: list[tuple[float, str]] = []
    peak_rss = 0
    biggest_json = 0
    n_findings = 0
    with open(findings_path, "a") as log:
        while time.monotonic() < deadline and (not args.runs or runs < args.runs):
            case = choose_case(rng, pairs, cache)
            res = run_case(case, work, args.hard)
            runs += 1
            exits[str(res.rc if res.rc is not None else f"sig{res.signal}")] += 1
            peak_rss = max(peak_rss, res.maxrss_kb)
            biggest_json = max(biggest_json, len(res.stdout))
            slowest = sorted([*slowest, (res.elapsed, json.dumps(case))], reverse=True)[:5]
            if res.problems:
                n_findings += 1
                (keep / f"{n_findings}.stderr").write_bytes(res.stderr[-20000:])
                record = {"n": n_findings, "case": case, "problems": res.problems, "rc": res.rc,
                          "elapsed": round(res.elapsed, 2), "maxrss_mb": res.maxrss_kb >> 10,
                          "stderr_tail": res.stderr.decode("utf-8", "replace")[-2000:]}
                log.write(json.dumps(record) + "\n")
                log.flush()
                for prob in res.problems:
                    groups.setdefault(signature(prob), []).append(n_findings)
            for side in ("a", "b"):
                with contextlib.suppress(FileNotFoundError):
                    (work / f"{side}.img").unlink()
            if runs % 50 == 0:
                print(f"{runs} runs, {n_findings} with findings, exits {dict(exits)}", flush=True)
    print(f"\n{runs} runs in {args.minutes} min (seed {args.seed}); exit statuses {dict(exits)}")
    print(f"peak RSS {peak_rss >> 10} MiB; largest JSON {biggest_json >> 10} KiB")
    print("slowest runs:")
    for t, c in slowest:
        print(f"  {t:6.1f} s  {c}")
    print(f"{n_findings} run(s) with findings ({findings_path}):")
    for sig, ns in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(ns):4}x  {sig}   e.g. #{', #'.join(map(str, ns[:5]))}")


def replay(args: argparse.Namespace) -> None:
    records = [json.loads(line) for line in Path(args.replay).read_text().splitlines()]
    rec = next(r for r in records if r["n"] == args.index)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    res = run_case(rec["case"], work, args.hard)
    print(json.dumps(rec["case"]))
    print(f"exit {res.rc} signal {res.signal} in {res.elapsed:.2f} s, {res.maxrss_kb >> 10} MiB")
    print(res.stderr.decode("utf-8", "replace")[-5000:])
    print("problems:", res.problems or "none")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=0, help="stop after this many runs (0: no limit)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pairs", default="", help="comma-separated fixture pairs (default: all)")
    ap.add_argument("--work", default=str(HERE / "work" / "fuzz"))
    ap.add_argument("--hard", type=float, default=HARD, help="kill a run after this many seconds")
    ap.add_argument("--replay", help="findings.jsonl to replay one record of")
    ap.add_argument("--index", type=int, default=1)
    ap.add_argument("--ops", default=",".join(sorted(ALLOWED)), help="op kinds to use, e.g. flip,set,zero,swap")
    args = ap.parse_args()
    ALLOWED.intersection_update(args.ops.split(","))
    if not ALLOWED:
        sys.exit("--ops: no known op kind")
    if args.replay:
        replay(args)
    else:
        campaign(args)


if __name__ == "__main__":
    main()

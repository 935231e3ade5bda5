#!/usr/bin/env python3
"""Compare ``imgdiff explain --json`` with ``cmp -l`` on the same large pairs, in one run; print the ratio.

Pairs are built under bench/work/ (not committed) with real tools on first use:
  gpt-sparse-2g : a 2 GiB sparse GPT disk (sgdisk, random GUIDs) with 64 MiB of random data in partition 1, twice
  ext4-1g-20k   : a 1 GiB GPT disk whose root partition is ext4 made by mke2fs -d from a tree of 20,000 files
                  (pinned UUID, hash seed and clock); B is a copy of A with 3 files' first bytes overwritten in place
                  and 1 file's mtime set with debugfs: few differences
  ext4-1g-20k-rebuilt : B built again from the same tree (3 files changed): mke2fs 1.47.0 -d copies every file's
                  ctime, so all 20,000 inodes differ; the worst case for attribution
The issue-10 pairs, all from a copy of /usr/share (~54,000 real files) unless said otherwise:
  usr-typical   : 1 GiB ext4 built twice, everything pinned but the directory hash seed (no -E hash_seed=)
  usr-rebuilt   : B built from a fresh copy of the same tree (new ctimes, which mke2fs 1.47.0 -d copies)
  usr-shifted   : B's tree has one more file at the root (/changed.txt): inode numbers and blocks of every later
                  file move (mke2fs -d hands them out in walk order)
  usr-checksums : 1.5 GiB ext4 built twice without -U: every metadata checksum (seeded from the UUID) differs
  many-subdirs  : an ext4 whose root holds 70,000 subdirectories (what e2fsprogs' f_many_subdirs exercises),
                  against a copy with one byte of one inode flipped
  gpt-10g-200k  : a 10 GiB sparse GPT disk whose root partition is an ext4 with 200,000 files; one file differs
  squashfs-usr-500m : a ~540 MB squashfs (mksquashfs 4.5.1, gzip, SOURCE_DATE_EPOCH pinned) of a copy of /usr/share,
                  /usr/bin and /usr/lib/x86_64-linux-gnu; B packs the same copy after 4 bytes in the middle of one
                  .gz file under /usr/share were changed (and so its mtime): its blocks change, and when their
                  stored length changes (or the file was a duplicate of another), every block after them moves
Usage: python bench/bench.py [--repeat N] [PAIR ...]    (needs sgdisk, mke2fs, mksquashfs, cmp; run after .ci/setup)
  --repeat N  run both tools N times per pair, alternating, and print the fastest run of each (and the highest
              peak RSS): on a shared machine one run of `cmp -l` varies by a factor of two.
imgdiff runs as ``python -m imgdiff`` from this tree, byte-compiled first (as an installed wheel is).
This is a measurement, not a test: nothing asserts on the numbers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
IMGDIFF = [sys.executable, "-m", "imgdiff", "explain", "--json"]


def sh(*cmd: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)


def build_gpt_sparse(d: Path) -> None:
    rnd = os.urandom(64 << 20)
    for side in "ab":
        img = d / f"{side}.img"
        with open(img, "wb") as fh:
            fh.truncate(2 << 30)
        sh("sgdisk", "-o", "-n", "1:2048:+1G", "-t", "1:8300", "-n", "2:0:0", "-t", "2:8304", str(img))
        with open(img, "r+b") as fh:
            fh.seek(2048 * 512 + (16 << 20))
            fh.write(rnd)


def _tree(d: Path) -> Path:
    tree = d / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    for i in range(20000):
        sub = tree / f"d{i % 200:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.txt").write_text(f"file {i}\n" * (1 + i % 50))
    subprocess.run(["find", str(tree), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"], check=True)
    return tree


def _mkfs(tree: Path, part: Path) -> None:
    env = dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000")
    part.unlink(missing_ok=True)
    sh("mke2fs", "-q", "-t", "ext4", "-U", "3f4e5a6b-0000-4000-8000-000000000001",
       "-E", "hash_seed=3f4e5a6b-0000-4000-8000-000000000002", "-d", str(tree), str(part), "1000M", env=env)


def _disk(part: Path, img: Path) -> None:
    with open(img, "wb") as fh:
        fh.truncate((1 << 30) + (2 << 20) + (64 << 10))
    sh("sgdisk", "-o", "-U", "11111111-1111-4111-8111-111111111111", "-n", "1:2048:+1000M", "-t", "1:8304",
       "-u", "1:22222222-2222-4222-8222-222222222222", str(img))
    sh("dd", f"if={part}", f"of={img}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none")
    part.unlink()


def build_ext4(d: Path) -> None:
    """A, and B = a copy of A with 3 files' first bytes overwritten in place and 1 file's mtime set (debugfs)."""
    tree = _tree(d)
    part_a, part_b = d / "root-a.ext4", d / "root-b.ext4"
    _mkfs(tree, part_a)
    shutil.rmtree(tree)
    sh("cp", "--sparse=always", str(part_a), str(part_b))
    for i in (7, 4242, 19999):
        out = subprocess.run(["debugfs", "-R", f"bmap /d{i % 200:03d}/f{i:05d}.txt 0", str(part_b)],
                             capture_output=True, text=True, check=True).stdout
        with open(part_b, "r+b") as fh:
            fh.seek(int(out.split()[-1]) * 4096)
            fh.write(b"FILE")
    sh("debugfs", "-w", "-R", "sif /d001/f00001.txt mtime 1700000999", str(part_b))
    _disk(part_a, d / "a.img")
    _disk(part_b, d / "b.img")


def build_ext4_rebuilt(d: Path) -> None:
    """The usual mke2fs 1.47.0 case: B rebuilt later from the same tree, so every inode's ctime (and the atimes
    that reading the tree for A changed) differ: all 20,000 inodes differ."""
    tree = _tree(d)
    _mkfs(tree, d / "root-a.ext4")
    _disk(d / "root-a.ext4", d / "a.img")
    for i in (7, 4242, 19999):
        p = tree / f"d{i % 200:03d}" / f"f{i:05d}.txt"
        p.write_text(p.read_text().replace("file", "FILE", 1))
    _mkfs(tree, d / "root-b.ext4")
    _disk(d / "root-b.ext4", d / "b.img")
    shutil.rmtree(tree)


USR_SHARE = Path("/usr/share")
UUID = "3f4e5a6b-0000-4000-8000-000000000001"
HASH_SEED = "3f4e5a6b-0000-4000-8000-000000000002"


def _usr_tree(dest: Path, extra: bool = False) -> Path:
    """A copy of /usr/share (regular files, directories and symlinks) with pinned mtimes and settled atimes."""
    if dest.exists():
        shutil.rmtree(dest)
    sh("cp", "-a", "--no-preserve=ownership", str(USR_SHARE), str(dest))
    if extra:
        (dest / "changed.txt").write_text("one more file\n")
    subprocess.run(["find", str(dest), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"], check=True)
    time.sleep(1.1)
    # read everything once: relatime updates an atime not newer than the mtime on the first read only
    subprocess.run(f"find {dest} -type f -print0 | xargs -0 cat > /dev/null; ls -R {dest} > /dev/null; "
                   f"find {dest} -type l -print0 | xargs -0 readlink > /dev/null",
                   shell=True, check=False)
    return dest


def _mke2fs(tree: Path, out: Path, size: str, uuid: str | None = UUID, seed: str | None = HASH_SEED,
            extra: tuple[str, ...] = ()) -> None:
    env = dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000")
    out.unlink(missing_ok=True)
    args = ["mke2fs", "-q", "-t", "ext4"]
    if uuid:
        args += ["-U", uuid]
    if seed:
        args += ["-E", f"hash_seed={seed}"]
    sh(*args, *extra, "-d", str(tree), str(out), size, env=env)


def build_usr_typical(d: Path) -> None:
    tree = _usr_tree(d / "tree")
    _mke2fs(tree, d / "a.img", "1G", seed=None)
    _mke2fs(tree, d / "b.img", "1G", seed=None)
    shutil.rmtree(tree)


def build_usr_rebuilt(d: Path) -> None:
    _mke2fs(_usr_tree(d / "tree"), d / "a.img", "1G")
    time.sleep(1.1)
    _mke2fs(_usr_tree(d / "tree"), d / "b.img", "1G")  # a fresh copy: every ctime is new
    shutil.rmtree(d / "tree")


def build_usr_shifted(d: Path) -> None:
    _mke2fs(_usr_tree(d / "tree"), d / "a.img", "1G")
    _mke2fs(_usr_tree(d / "tree", extra=True), d / "b.img", "1G")
    shutil.rmtree(d / "tree")


def build_usr_checksums(d: Path) -> None:
    tree = _usr_tree(d / "tree")
    _mke2fs(tree, d / "a.img", "1536M", uuid=None)
    _mke2fs(tree, d / "b.img", "1536M", uuid=None)
    shutil.rmtree(tree)


def build_many_subdirs(d: Path) -> None:
    tree = d / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    for i in range(70000):
        (tree / f"sub{i:05d}").mkdir()
    subprocess.run(["find", str(tree), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"], check=True)
    _mke2fs(tree, d / "a.img", "1G", extra=("-N", "100000"))  # one block and one inode per directory
    shutil.rmtree(tree)
    sh("cp", "--sparse=always", str(d / "a.img"), str(d / "b.img"))
    out = subprocess.run(["debugfs", "-R", "imap /sub34567", str(d / "b.img")], capture_output=True, text=True,
                         check=True).stdout
    # debugfs imap prints "Inode N is part of block group G" and "located at block B, offset 0xOOOO"
    found = re.search(r"located at block (\d+), offset (0x[0-9a-f]+)", out)
    if found is None:
        raise RuntimeError(f"debugfs imap: unexpected output {out!r}")
    block, offset = int(found.group(1)), int(found.group(2), 16)
    with open(d / "b.img", "r+b") as fh:
        fh.seek(block * 4096 + offset + 0x64)  # i_generation
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))


def build_gpt_10g_200k(d: Path) -> None:
    tree = d / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    for i in range(200000):
        sub = tree / f"d{i % 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:06d}.txt").write_text(f"file {i}\n" * (1 + i % 20))
    subprocess.run(["find", str(tree), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"], check=True)
    part = d / "root.ext4"
    _mke2fs(tree, part, "10000M")
    shutil.rmtree(tree)
    for side in "ab":
        img = d / f"{side}.img"
        with open(img, "wb") as fh:
            fh.truncate((10 << 30) + (4 << 20))
        sh("sgdisk", "-o", "-U", "11111111-1111-4111-8111-111111111111", "-n", "1:2048:+10000M", "-t", "1:8304",
           "-u", "1:22222222-2222-4222-8222-222222222222", str(img))
        sh("dd", f"if={part}", f"of={img}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none")
    out = subprocess.run(["debugfs", "-R", "bmap /d123/f100123.txt 0", str(part)], capture_output=True, text=True,
                         check=True).stdout
    with open(d / "b.img", "r+b") as fh:
        fh.seek((1 << 20) + int(out.split()[-1]) * 4096)
        fh.write(b"FILE")
    part.unlink()


def _squashfs_tree(d: Path) -> Path:
    tree = d / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    for src in ("/usr/share", "/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        # a few entries of a live /usr may vanish or be unreadable while copying: what was copied is the tree
        subprocess.run(["cp", "-a", "--parents", src, str(tree)], check=False, stderr=subprocess.DEVNULL)
    return tree


def _squash(tree: Path, img: Path) -> None:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    sh("mksquashfs", str(tree), str(img), "-noappend", "-quiet", "-no-progress", "-comp", "gzip", env=env)


def build_squashfs(d: Path) -> None:
    """A, then B after 4 bytes in the middle of one .gz file (the middle one in path order) were flipped."""
    tree = _squashfs_tree(d)
    _squash(tree, d / "a.img")
    found = sorted(p for p in (tree / "usr" / "share").rglob("*.gz")
                   if p.is_file() and not p.is_symlink() and p.stat().st_size >= 20000)
    victim = found[len(found) // 2]
    print(f"changed: {victim.relative_to(tree)}", file=sys.stderr)
    with open(victim, "r+b") as fh:
        fh.seek(victim.stat().st_size // 2)
        data = fh.read(4)
        fh.seek(victim.stat().st_size // 2)
        fh.write(bytes(x ^ 0x55 for x in data))
    _squash(tree, d / "b.img")
    shutil.rmtree(tree)


PAIRS = {
    "gpt-sparse-2g": build_gpt_sparse,
    "ext4-1g-20k": build_ext4,
    "ext4-1g-20k-rebuilt": build_ext4_rebuilt,
    "usr-typical": build_usr_typical,
    "usr-rebuilt": build_usr_rebuilt,
    "usr-shifted": build_usr_shifted,
    "usr-checksums": build_usr_checksums,
    "many-subdirs": build_many_subdirs,
    "gpt-10g-200k": build_gpt_10g_200k,
    "squashfs-usr-500m": build_squashfs,
}
GOALS = {
    "usr-typical": 2, "usr-rebuilt": 3, "usr-shifted": 1, "usr-checksums": 3, "gpt-10g-200k": 3,
    "ext4-1g-20k": 3, "ext4-1g-20k-rebuilt": 3, "gpt-sparse-2g": 3, "squashfs-usr-500m": 3,
}
"""The ratio each pair must stay within (issue 10); every pair: peak RSS <= 300 MiB, many-subdirs <= 150 MiB."""
RSS_GOALS = {"many-subdirs": 150}


def timed(cmd: list[str]) -> tuple[float, int, int]:
    """Return (seconds, exit status, peak RSS in KiB of that process).

    Output goes to a real file: GNU cmp stops at the first difference when its stdout is /dev/null.
    """
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
    return dt, proc.returncode, usage.ru_maxrss


def main() -> int:
    args = sys.argv[1:]
    build_only = "--build" in args
    repeat = 1
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = max(1, int(args[i + 1]))
        del args[i : i + 2]
    names = [a for a in args if not a.startswith("--")] or list(PAIRS)
    if not build_only:
        # Byte-compile the package first, as installing a wheel does: otherwise a shell with
        # PYTHONDONTWRITEBYTECODE=1 (or a read-only tree) compiles every module on every run (~0.25 s of startup).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "imgdiff")], check=False,
                       stdout=subprocess.DEVNULL, env={k: v for k, v in os.environ.items()
                                                       if k != "PYTHONDONTWRITEBYTECODE"})
        print(f"{'pair':20} {'size':>6} {'cmp -l s':>9} {'imgdiff s':>10} {'ratio':>6} {'goal':>5} "
              f"{'cmp RSS':>9} {'imgdiff RSS':>12} {'goal':>7}")
    for name in names:
        d = WORK / name
        if not (d / "b.img").exists():
            d.mkdir(parents=True, exist_ok=True)
            print(f"building {name} ...", file=sys.stderr)
            PAIRS[name](d)
        if build_only:
            continue
        a, b = str(d / "a.img"), str(d / "b.img")
        # warm the page cache equally for both tools
        subprocess.run(["cat", a, b], stdout=subprocess.DEVNULL, check=False)
        runs_cmp, runs_img = [], []
        for _ in range(repeat):
            runs_cmp.append(timed(["cmp", "-l", a, b]))
            runs_img.append(timed(IMGDIFF + [a, b]))
        t_cmp, rc_cmp = min(runs_cmp)[:2]
        t_img, rc_img = min(runs_img)[:2]
        rss_cmp, rss_img = max(r[2] for r in runs_cmp), max(r[2] for r in runs_img)
        size = os.path.getsize(a)
        goal = GOALS.get(name)
        rss_goal = RSS_GOALS.get(name, 300)
        ok = (goal is None or t_img / t_cmp <= goal) and rss_img / 1024 <= rss_goal
        print(f"{name:20} {size / 2**30:5.2f}G {t_cmp:9.2f} {t_img:10.2f} {t_img / t_cmp:6.2f} "
              f"{'<=' + str(goal) if goal else '-':>5} {rss_cmp / 1024:6.1f}MiB {rss_img / 1024:9.1f}MiB "
              f"{'<=' + str(rss_goal):>7}  {'ok' if ok else 'MISSED'}   (exit cmp={rc_cmp} imgdiff={rc_img})",
              flush=True)
    if not build_only:
        print("ratio = imgdiff seconds / cmp -l seconds on the same pair, page cache warm for both"
              + (f"; fastest of {repeat} alternating runs each" if repeat > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The byte comparison: exact counts across merged runs, holes, different sizes, read-only access."""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdiff.errors import ImageError
from imgdiff.model import Extent
from imgdiff.source import CHUNK, DiffMap, ImageSource, compare_regions


def make(path: Path, size: int, patches: dict[int, bytes]) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
        for off, data in patches.items():
            fh.seek(off)
            fh.write(data)
    return path


def test_exact_counts_with_merged_runs(tmp_path: Path) -> None:
    size = 3 * CHUNK + 123
    a = make(tmp_path / "a", size, {10: b"abcdef", 5000: b"x" * 100, CHUNK - 2: b"zzzz", size - 3: b"end"})
    b = make(tmp_path / "b", size, {10: b"abXdeY", 5000: b"y" * 100, CHUNK - 2: b"zzzz", size - 3: b"enD"})
    with ImageSource(str(a)) as sa, ImageSource(str(b)) as sb:
        dm = compare_regions(sa, sb, 0, 0, size)
        # b"abcdef" vs b"abXdeY": offsets 12 and 15 differ, merged into one range with an exact count of 2
        assert list(dm.ranges()) == [Extent(12, 4), Extent(5000, 100), Extent(size - 1, 1)]
        assert dm.counts == [2, 100, 1]
        assert dm.total == 103
        assert dm.count_in(Extent(13, 2)) == 0  # inside a merged range, re-read exactly
        assert dm.count_in(Extent(0, size)) == 103
        assert dm.count_in(Extent(5050, 10)) == 10


def test_holes_on_both_sides_are_skipped_and_sizes_may_differ(tmp_path: Path) -> None:
    a = make(tmp_path / "a", 1 << 30, {1 << 29: b"A"})
    b = make(tmp_path / "b", 1 << 30, {1 << 29: b"B"})
    with ImageSource(str(a)) as sa, ImageSource(str(b)) as sb:
        assert next(iter(sa.data_extents(0, sa.size)))[0] <= 1 << 29
        dm = compare_regions(sa, sb, 0, 0, sa.size)
        assert list(dm.ranges()) == [Extent(1 << 29, 1)]


def test_source_never_opens_for_writing(tmp_path: Path) -> None:
    a = make(tmp_path / "a", 4096, {0: b"x"})
    a.chmod(0o444)
    before = a.stat().st_mtime_ns
    with ImageSource(str(a)) as s:
        assert s.read(0, 2) == b"x\0"
        assert s.read(4095, 10) == b"\0"
        assert s.read(5000, 10) == b""
        assert fcntl.fcntl(s.fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
    assert a.stat().st_mtime_ns == before


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the test run) when the body blocks longer than ``seconds``."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def refused(path: str) -> str:
    with deadline(5), pytest.raises(ImageError) as err:
        ImageSource(path)
    return str(err.value)


def test_named_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "img.fifo"
    os.mkfifo(fifo)
    assert refused(str(fifo)) == (
        f"{fifo}: is a named pipe (FIFO), not an image file; save it to a file first (cmd > a.img) and pass that file"
    )


def test_fifo_swapped_in_after_stat_does_not_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: stat saw a regular file, then a FIFO took its place; open must not wait for a writer."""
    fifo = tmp_path / "img.fifo"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: regular if str(p) == str(fifo) else real_stat(p, *a, **k))
    assert refused(str(fifo)).startswith(f"{fifo}: is a named pipe (FIFO), not an image file;")


def test_pipe_by_descriptor_path_is_refused() -> None:
    """``<(cat a.img)`` hands the program /dev/fd/63, a pipe: it would be read once and compared as short."""
    r, w = os.pipe()
    try:
        os.write(w, b"x" * 100)
        for path in (f"/dev/fd/{r}", f"/proc/self/fd/{r}"):
            assert refused(path) == (
                f"{path}: is a pipe (from <(cmd) or a pipeline), not an image file; "
                "save it to a file first (cmd > a.img) and pass that file"
            )
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("dev", ["/dev/null", "/dev/zero"])
def test_character_devices_are_refused(dev: str) -> None:
    if not os.path.exists(dev):
        pytest.skip(f"{dev} missing")
    assert refused(dev) == f"{dev}: is a character device, not an image file or block device; pass one of those"


def test_socket_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert refused(str(path)).startswith(f"{path}: is a socket, not an image file;")


def test_block_device_is_read_only_and_sized(tmp_path: Path) -> None:
    """A read-only loop device over a file: same size and bytes as the file, opened O_RDONLY (root only)."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    img = make(tmp_path / "disk.img", 1 << 20, {0: b"head", (1 << 20) - 4: b"tail"})
    cmd = ["losetup", "--read-only", "--find", "--show", str(img)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    dev = r.stdout.strip()
    if r.returncode != 0 or not dev:
        pytest.skip(f"no loop device: {r.stderr.strip()}")
    try:
        assert stat.S_ISBLK(os.stat(dev).st_mode)
        with ImageSource(dev) as s, ImageSource(str(img)) as f:
            assert s.size == 1 << 20
            assert fcntl.fcntl(s.fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
            assert s.read(0, 4) == b"head" and s.read((1 << 20) - 4, 100) == b"tail"
            assert compare_regions(s, f, 0, 0, s.size).total == 0
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


def test_partial_counts_use_remembered_gaps_and_stay_exact(tmp_path: Path) -> None:
    import random

    rnd = random.Random(5)
    size = 1 << 16
    a = bytearray(rnd.randbytes(size))
    b = bytearray(a)
    for _ in range(3000):  # scattered differing bytes: most runs are merged across small equal gaps
        i = rnd.randrange(size)
        b[i] ^= 1 + rnd.randrange(255)
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    with ImageSource(str(tmp_path / "a")) as sa, ImageSource(str(tmp_path / "b")) as sb:
        dm = compare_regions(sa, sb, 0, 0, size)
    assert len(dm.gaps) > 100
    dm.src_a = dm.src_b = None  # a partial count that read the images would now be wrong: none may
    checked = 0
    for _ in range(3000):
        lo = rnd.randrange(size)
        hi = min(size, lo + rnd.randrange(1, 300))
        first = bisect.bisect_right(dm.ends, lo)
        last = bisect.bisect_left(dm.starts, hi)
        if any(dm.gaps.get(k, []) is None for k in range(first, last)):
            continue  # a run whose gaps were too many to keep
        assert dm.count_in(Extent(lo, hi - lo)) == sum(1 for k in range(lo, hi) if a[k] != b[k])
        checked += 1
    assert checked > 2500


def test_counts_in_runs_without_gap_lists_use_the_block_table(tmp_path: Path) -> None:
    import random

    rnd = random.Random(11)
    size = 64 * 4096
    a = rnd.randbytes(size)
    b = bytearray(rnd.randbytes(size))  # unrelated data: one long run, far more gaps than any list keeps
    b[:100] = a[:100]
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    truth = [0]
    for x, y in zip(a, b, strict=True):
        truth.append(truth[-1] + (x != y))
    with ImageSource(str(tmp_path / "a")) as sa, ImageSource(str(tmp_path / "b")) as sb:
        dm = compare_regions(sa, sb, 0, 0, size)
        assert list(dm.ranges()) == [Extent(100, size - 100)]
        assert dm.gaps == {0: None}
        assert len(dm.bstarts) == 64 and dm.bcum[-1] == truth[-1] == dm.total
        for _ in range(500):  # ranges that cut blocks: the cut blocks are read, the whole ones summed
            lo = rnd.randrange(size)
            hi = min(size, lo + rnd.randrange(1, 40000))
            assert dm.count_in(Extent(lo, hi - lo)) == truth[hi] - truth[lo]
        dm.src_a = dm.src_b = None  # whole blocks must come from the table, not from reading the images
        dm._xors.clear()
        assert dm.count_in(Extent(4096, 20 * 4096)) == truth[21 * 4096] - truth[4096]


def test_count_each_is_the_sum_of_count_in_in_any_order(tmp_path: Path) -> None:
    """``count_each`` (a group's 50,000 member fields in one pass) gives what ``count_in`` gives field by field:
    on disjoint fields in offset order, out of order (inode tables placed out of group order), past the last run
    and inside runs with gap lists, dense runs and no runs."""
    import random

    rnd = random.Random(7)
    size = 1 << 16
    a = bytearray(rnd.randbytes(size))
    b = bytearray(a)
    for start in range(0, size, 256):  # an inode table: a few differing bytes in every 256-byte slot
        for off in (8, 9, 12, 124, 130):
            if rnd.random() < 0.7:
                b[start + off] ^= 0x5A
    b[size - 3 :] = bytes(x ^ 0xFF for x in a[size - 3 :])
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    with ImageSource(str(tmp_path / "a")) as sa, ImageSource(str(tmp_path / "b")) as sb:
        dm = compare_regions(sa, sb, 0, 0, size)
    truth = [0]
    for k in range(size):
        truth.append(truth[-1] + (a[k] != b[k]))
    for off, n in ((8, 8), (124, 2), (130, 2), (200, 56)):
        fields = [Extent(s + off, n) for s in range(0, size, 256)]
        expect = sum(truth[e.end] - truth[e.offset] for e in fields)
        assert dm.count_each(fields) == expect == sum(map(dm.count_in, fields))
        shuffled = fields[:]
        rnd.shuffle(shuffled)
        assert dm.count_each(shuffled) == expect
    assert dm.count_each([Extent(size - 4, 4), Extent(size + 10, 4)]) == 3
    assert dm.count_each([Extent(16, 100)]) == 0
    assert DiffMap(base=0, length=size).count_each([Extent(0, size)]) == 0

"""The byte comparison: exact counts across merged runs, holes, different sizes, read-only access."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from imgdiff.model import Extent
from imgdiff.source import CHUNK, ImageSource, compare_regions


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
        assert list(sa.data_extents(0, sa.size))[0][0] <= 1 << 29
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

"""Read-only, streaming access to image files and the fast byte comparison of two images.

Nothing here ever opens an image for writing.  Memory stays bounded: images are read in chunks, holes are skipped
with ``SEEK_DATA``/``SEEK_HOLE``, and differing bytes are kept as merged ranges with exact counts.
"""

from __future__ import annotations

import bisect
import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Self

from imgdiff.errors import ImageError
from imgdiff.model import Extent, merge_extents

CHUNK = 1 << 20
"""Bytes compared per read."""
SUB = 4096
"""Granularity at which a differing chunk is narrowed before byte-exact scanning."""
MERGE_GAP = 16
"""Differing runs closer than this are merged into one range (the count stays exact)."""

_NONZERO = re.compile(rb"[^\x00]+")


def _check_kind(path: str, mode: int) -> None:
    """Raise :class:`ImageError` unless ``mode`` is a regular file or a block device (the only seekable inputs).

    A FIFO or a pipe (``<(cmd)`` is a ``/dev/fd/N`` path to one) would block or be read once; a character device
    such as ``/dev/zero`` or ``/dev/null`` has no size: all of them would be compared as empty or short images.
    """
    if stat.S_ISREG(mode) or stat.S_ISBLK(mode):
        return
    save = "save it to a file first (cmd > a.img) and pass that file"
    if stat.S_ISDIR(mode):
        raise ImageError(f"{path}: is a directory, not an image")
    if stat.S_ISFIFO(mode):
        what = "a pipe (from <(cmd) or a pipeline)" if _is_fd_path(path) else "a named pipe (FIFO)"
        raise ImageError(f"{path}: is {what}, not an image file; {save}")
    if stat.S_ISCHR(mode):
        raise ImageError(f"{path}: is a character device, not an image file or block device; pass one of those")
    if stat.S_ISSOCK(mode):
        raise ImageError(f"{path}: is a socket, not an image file; {save}")
    raise ImageError(f"{path}: is not a regular file or block device; {save}")


def _is_fd_path(path: str) -> bool:
    """Return True for a path naming an open descriptor: ``/dev/fd/N``, ``/proc/<pid>/fd/N``, ``/dev/stdin``."""
    return bool(re.match(r"^/(dev/fd|proc/[^/]+/fd)/\d+$|^/dev/std(in|out|err)$", os.path.normpath(path)))


class ImageSource:
    """One image opened read-only; ``read(offset, size)`` returns bytes (short at the end of the file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            st = os.stat(path)
        except OSError as exc:
            raise ImageError(f"{path}: {exc.strerror or exc}") from None
        _check_kind(path, st.st_mode)
        # O_NONBLOCK: should a FIFO take the place of the file between stat and open, open must not wait for a
        # writer (the type is checked again on the descriptor).  It changes nothing for files and block devices.
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        try:
            self.fd = os.open(path, flags)
        except OSError as exc:
            raise ImageError(f"{path}: {exc.strerror or exc}") from None
        try:
            st = os.fstat(self.fd)
            _check_kind(path, st.st_mode)
            if stat.S_ISBLK(st.st_mode):
                self.size = os.lseek(self.fd, 0, os.SEEK_END)
            else:
                self.size = st.st_size
        except BaseException:
            os.close(self.fd)
            raise

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes at ``offset``; fewer past the end of the image."""
        if offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        try:
            data = os.pread(self.fd, size, offset)
        except OSError as exc:
            raise ImageError(f"{self.path}: read error at offset {offset}: {exc.strerror or exc}") from None
        if len(data) < size:  # a short read in the middle: loop until satisfied or EOF
            parts = [data]
            got = len(data)
            while got < size:
                more = os.pread(self.fd, size - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Yield ``(offset, end)`` ranges that may hold data within ``[start, end)``; holes are skipped."""
        pos = start
        while pos < end:
            try:
                data = os.lseek(self.fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole up to EOF
                    return
                yield pos, end  # SEEK_DATA unsupported: treat all as data
                return
            if data >= end:
                return
            try:
                hole = os.lseek(self.fd, data, os.SEEK_HOLE)
            except OSError:
                hole = end
            yield data, min(hole, end)
            pos = hole

    def close(self) -> None:
        """Close the file descriptor."""
        os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(slots=True)
class DiffMap:
    """Differing byte ranges between two aligned regions, in the A-side offset space.

    ``starts``/``ends``/``counts`` are parallel sorted lists: the range ``[starts[i], ends[i])`` contains exactly
    ``counts[i]`` differing bytes (runs separated by fewer than :data:`MERGE_GAP` equal bytes are merged).
    ``delta`` converts an A offset into the B offset of the aligned byte (``b = a + delta``).
    """

    base: int
    length: int
    delta: int = 0
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    src_a: ImageSource | None = None
    src_b: ImageSource | None = None

    @property
    def total(self) -> int:
        """Return the number of differing bytes."""
        return sum(self.counts)

    def add_run(self, start: int, end: int) -> None:
        """Append a differing run (runs must arrive in increasing order)."""
        if self.ends and start - self.ends[-1] < MERGE_GAP:
            self.ends[-1] = end
            self.counts[-1] += end - start
        else:
            self.starts.append(start)
            self.ends.append(end)
            self.counts.append(end - start)

    def ranges(self) -> Iterator[Extent]:
        """Yield each differing range as an extent (A offsets)."""
        for s, e in zip(self.starts, self.ends, strict=True):
            yield Extent(s, e - s)

    def count_in(self, ext: Extent) -> int:
        """Return the exact number of differing bytes inside ``ext`` (A offsets)."""
        if not self.starts:
            return 0
        i = bisect.bisect_right(self.ends, ext.offset)
        total = 0
        while i < len(self.starts) and self.starts[i] < ext.end:
            s, e = self.starts[i], self.ends[i]
            if ext.offset <= s and e <= ext.end:
                total += self.counts[i]
            else:
                lo, hi = max(s, ext.offset), min(e, ext.end)
                total += self._exact(lo, hi)
            i += 1
        return total

    def intersects(self, ext: Extent) -> bool:
        """Return True if any differing range overlaps ``ext``."""
        i = bisect.bisect_right(self.ends, ext.offset)
        return i < len(self.starts) and self.starts[i] < ext.end

    def _exact(self, lo: int, hi: int) -> int:
        if self.src_a is None or self.src_b is None or hi <= lo:
            return max(0, hi - lo)
        a = self.src_a.read(lo, hi - lo)
        b = self.src_b.read(lo + self.delta, hi - lo)
        n = min(len(a), len(b))
        x = int.from_bytes(a[:n], "little") ^ int.from_bytes(b[:n], "little")
        diff = n - x.to_bytes(n, "little").count(0) if n else 0
        return diff + (hi - lo - n)


def _xor_runs(a: bytes, b: bytes) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` runs of differing bytes between two equal-length buffers."""
    n = len(a)
    x = (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(n, "little")
    for m in _NONZERO.finditer(x):
        yield m.start(), m.end()


def compare_regions(
    src_a: ImageSource,
    src_b: ImageSource,
    off_a: int,
    off_b: int,
    length: int,
    progress: Callable[[int, int], None] | None = None,
) -> DiffMap:
    """Compare ``length`` bytes at ``off_a`` in A with the same number at ``off_b`` in B.

    Returns a :class:`DiffMap` in A offsets.  Regions that are holes in both files are skipped without reading;
    bytes past the end of either file compare as zero (images of different sizes are handled by the caller).
    """
    dm = DiffMap(base=off_a, length=length, delta=off_b - off_a, src_a=src_a, src_b=src_b)
    end_a = off_a + length
    # Union of the data extents of both sides, in A offsets.
    spans = merge_extents(
        [Extent(s, e - s) for s, e in src_a.data_extents(off_a, end_a)]
        + [Extent(s - dm.delta, e - s) for s, e in src_b.data_extents(off_b, off_b + length)]
    )
    done = 0
    for span in spans:
        pos, e = span.offset, span.end
        while pos < e:
            n = min(CHUNK, e - pos)
            a = src_a.read(pos, n)
            b = src_b.read(pos + dm.delta, n)
            if len(a) < n:
                a = a + bytes(n - len(a))
            if len(b) < n:
                b = b + bytes(n - len(b))
            if a != b:
                for sub in range(0, n, SUB):
                    sa, sb = a[sub : sub + SUB], b[sub : sub + SUB]
                    if sa != sb:
                        for rs, re_ in _xor_runs(sa, sb):
                            dm.add_run(pos + sub + rs, pos + sub + re_)
            pos += n
            done += n
            if progress is not None:
                progress(done, length)
    return dm

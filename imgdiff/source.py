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
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, Self

from imgdiff.errors import ImageError
from imgdiff.model import Extent, merge_extents

CHUNK = 1 << 20
"""Bytes compared per read."""
VBASE = 1 << 56
"""Offsets from here on address decoded spaces (decompressed streams), not bytes of the input image.

Each decoded space gets a slot of :data:`SLOT` bytes, at the same offset on both sides, so that the whole engine
(field index, byte comparison, folding by covered extents) works on decoded data unchanged.  Byte counts reported
to a user (``bytes_differing``, a finding's ``bytes``) only ever count offsets below ``VBASE``: the input's bytes.
"""
SLOT = 1 << 44
"""Size of one decoded-space slot (16 TiB: larger than any decoded stream imgdiff accepts)."""
SUB = 4096
"""Granularity at which a differing chunk is narrowed before byte-exact scanning."""
MERGE_GAP = 16
"""Differing runs closer than this are merged into one range (the count stays exact)."""
MAX_GAPS = 64
"""Equal-byte gaps remembered per merged run (beyond this a partial count uses the block table)."""
XOR_CACHE = 256
"""Compared blocks whose XOR :class:`DiffMap` keeps for counting fields that cut them (256 x 4 KiB)."""

_NONZERO = re.compile(rb"[^\x00]+")
_ZEROS = re.compile(rb"\x00+")
_NONZERO_BYTE = re.compile(rb"[^\x00]")
_GAP = bytes(MERGE_GAP)
_DENSE = array("q")
"""Marks a run with no entry in :attr:`DiffMap.gaps` (every byte differs) in lookups."""
"""Equal bytes that end a differing run (shorter gaps are merged into it)."""


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

    @classmethod
    def adopt(cls, fd: int, path: str, size: int, decompressed: str = "") -> ImageSource:
        """Return a source over an already open descriptor (a decompressed scratch copy of ``path``)."""
        self = cls.__new__(cls)
        self.path, self.fd, self.size, self.decompressed = path, fd, size, decompressed
        return self

    decompressed: str = ""
    """The compression (``"zstd"``, ``"xz"``, ...) of the input whose decompressed copy this reads, or ``""``."""
    decode_error: str = ""
    """Why the decompression of a compressed input stopped early (its decoded part is what is compared)."""

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


class Int64s(array):  # type: ignore[type-arg]
    """A machine-integer array (typecode ``"q"``) that also compares equal to a list of the same integers."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return self.tolist() == other
        return bool(super().__eq__(other))

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True)
class DiffMap:
    """Differing byte ranges between two aligned regions, in the A-side offset space.

    ``starts``/``ends``/``counts`` are parallel sorted machine-integer arrays (a shifted image has millions of
    runs): the range ``[starts[i], ends[i])`` contains exactly
    ``counts[i]`` differing bytes (runs separated by fewer than :data:`MERGE_GAP` equal bytes are merged).
    ``delta`` converts an A offset into the B offset of the aligned byte (``b = a + delta``).
    """

    base: int
    length: int
    delta: int = 0
    starts: Int64s = field(default_factory=lambda: Int64s("q"))
    ends: Int64s = field(default_factory=lambda: Int64s("q"))
    counts: Int64s = field(default_factory=lambda: Int64s("q"))
    src_a: Source | None = None
    src_b: Source | None = None
    gaps: dict[int, array[int] | None] = field(default_factory=dict)
    """Per merged run (by index): the equal-byte gaps inside it as a flat ``start, end, start, end, ...`` array (a
    shifted image has millions: tuples cost 7x the memory), or None when there were too many to keep.

    A run without an entry is dense (every byte differs), so :meth:`count_in` counts a partial overlap without
    reading the images; runs with dropped gap lists are counted from the block table below."""
    bstarts: array[int] = field(default_factory=lambda: array("q"))
    blens: array[int] = field(default_factory=lambda: array("l"))
    bcum: array[int] = field(default_factory=lambda: array("q", [0]))
    """The differing blocks seen while comparing: ``bstarts[k]`` and ``blens[k]`` give a compared block (of at
    most :data:`SUB` bytes) that holds differing bytes, ``bcum[k + 1] - bcum[k]`` how many.  Within
    :attr:`scanned` a partial count sums whole blocks from this table and reads only the (at most two) blocks it
    cuts: a field of a moved file inside a run whose gaps were too many to keep is not read again."""
    scanned: list[tuple[int, int]] = field(default_factory=list)
    """The ``(start, end)`` ranges whose differing blocks are all in the block table."""
    _xors: dict[int, bytes] = field(default_factory=dict, repr=False)
    _finger: int = 0
    """The run index the last :meth:`count_in` started at: callers walk fields in offset order, so the next
    lookup usually lands in the same run or the next one and needs no binary search over the arrays."""

    def _first_run_after(self, off: int) -> int:
        """Return the index of the first run whose end is past ``off`` (``bisect_right(ends, off)``)."""
        ends = self.ends
        n = len(ends)
        i = self._finger
        if i < n and ends[i] > off and (i == 0 or ends[i - 1] <= off):
            return i
        i += 1
        if i < n and ends[i] > off and ends[i - 1] <= off:
            self._finger = i
            return i
        i = bisect.bisect_right(memoryview(ends), off)  # a view: bisect on an array subclass is 4x slower
        self._finger = i
        return i

    @property
    def total(self) -> int:
        """Return the number of differing bytes of the input images (decoded spaces excluded)."""
        i = bisect.bisect_left(self.starts, VBASE)
        return sum(self.counts[:i])

    def insert_runs(self, runs: DiffMap) -> None:
        """Add the runs of ``runs`` (all of them past every run held so far: a newly compared decoded space)."""
        if runs.starts and self.ends and runs.starts[0] < self.ends[-1]:
            raise ValueError("decoded-space runs must come after every run already held")
        shift = len(self.starts)
        self.starts.extend(runs.starts)
        self.ends.extend(runs.ends)
        self.counts.extend(runs.counts)
        for i, g in runs.gaps.items():
            self.gaps[i + shift] = g
        if runs.scanned and self.scanned and runs.scanned[0][0] < self.scanned[-1][1]:
            return  # out of order (never expected): its partial counts read the bytes instead of the table
        base = self.bcum[-1]
        self.bstarts.extend(runs.bstarts)
        self.blens.extend(runs.blens)
        self.bcum.extend(c + base for c in runs.bcum[1:])
        self.scanned.extend(runs.scanned)

    def add_run(self, start: int, end: int, count: int | None = None,
                inner: Iterable[tuple[int, int]] = ()) -> None:
        """Append a differing run (runs must arrive in increasing order).

        ``count`` is the number of differing bytes in it (default: every byte); when that is fewer, ``inner``
        yields its equal-byte gaps in order (consumed only while the run's gap list is kept).
        """
        n = end - start if count is None else count
        ends = self.ends
        if ends and start - ends[-1] < MERGE_GAP:
            i = len(ends) - 1
            if start > ends[-1]:
                self._note_gaps(i, ((ends[-1], start),))
            if n < end - start:
                self._note_gaps(i, inner)
            ends[-1] = end
            self.counts[-1] += n
        else:
            self.starts.append(start)
            ends.append(end)
            self.counts.append(n)
            if n < end - start:
                self._note_gaps(len(ends) - 1, inner)

    def _note_gaps(self, i: int, gaps: Iterable[tuple[int, int]]) -> None:
        """Remember equal-byte gaps inside run ``i``, or that it has too many to keep (None)."""
        kept = self.gaps
        g = kept.get(i)
        if g is None:
            if i in kept:
                return
            g = kept[i] = array("q")
        for gs, ge in gaps:
            if len(g) >= 2 * MAX_GAPS:
                kept[i] = None
                return
            g.append(gs)
            g.append(ge)

    def add_block(self, start: int, length: int, count: int) -> None:
        """Record a compared block of ``length`` bytes at ``start`` holding ``count`` differing bytes."""
        self.bstarts.append(start)
        self.blens.append(length)
        self.bcum.append(self.bcum[-1] + count)

    def ranges(self) -> Iterator[Extent]:
        """Yield each differing range as an extent (A offsets)."""
        for s, e in zip(self.starts, self.ends, strict=True):
            yield Extent(s, e - s)

    def count_in(self, ext: Extent) -> int:
        """Return the exact number of differing bytes inside ``ext`` (A offsets)."""
        starts = self.starts
        if not starts:
            return 0
        off, length = ext
        end = off + length
        i = self._first_run_after(off)
        if i >= len(starts) or starts[i] >= end:
            return 0
        if starts[i] <= off and self.ends[i] >= end and i not in self.gaps:
            return length  # the common case: a field inside one dense run
        total = 0
        ends, n = self.ends, len(starts)
        while i < n and starts[i] < end:
            s, e = starts[i], ends[i]
            if off <= s and e <= end:
                total += self.counts[i]
            else:
                total += self._part(self.gaps.get(i, _DENSE), max(s, off), min(e, end))
            i += 1
        return total

    def _part(self, g: array[int] | None, lo: int, hi: int) -> int:
        """Return the differing bytes of ``[lo, hi)`` inside one run whose gap list is ``g`` (:data:`_DENSE`: the
        run has none, every byte differs; None: too many to keep, counted from the block table)."""
        if g is _DENSE:
            return hi - lo
        if g is None:
            return self._exact(lo, hi)
        t = hi - lo
        for k in range(0, len(g), 2):  # sorted: skip the gaps before, stop at the first after
            gs, ge = g[k], g[k + 1]
            if ge <= lo:
                continue
            if gs >= hi:
                break
            t -= min(ge, hi) - max(gs, lo)
        return t

    def count_each(self, exts: Iterable[Extent]) -> int:
        """Return the sum of :meth:`count_in` over ``exts`` (disjoint; fastest in offset order: one pass over the
        runs, each extent counted over the runs it overlaps, without a binary search per extent)."""
        starts, ends, gaps, part = self.starts, self.ends, self.gaps, self._part
        n = len(starts)
        if not n:
            return 0
        view = memoryview(ends)
        total = 0
        i = 0
        prev = -1
        for ext in exts:
            off, length = ext
            if off < prev:
                i = 0  # out of order (inode tables placed out of group order): search from the start again
            prev = off
            if ends[i] <= off:  # the next field is usually a run or two further on
                i += 1
                if i < n and ends[i] <= off:
                    i += 1
                    if i < n and ends[i] <= off:
                        i = bisect.bisect_right(view, off, i + 1)
                if i >= n:
                    i = n - 1
                    continue
            end = off + length
            j = i
            while j < n and starts[j] < end:  # the runs the extent overlaps (usually one; a field reaching past a
                s, e = starts[j], ends[j]  # run's last differing byte touches the next one or none)
                lo = max(s, off)
                hi = min(e, end)
                j += 1
                if hi > lo:
                    total += part(gaps.get(j - 1, _DENSE), lo, hi)
        return total

    def intersects(self, ext: Extent) -> bool:
        """Return True if any differing range overlaps ``ext``."""
        off, length = ext
        i = self._first_run_after(off)
        return i < len(self.starts) and self.starts[i] < off + length

    def _exact(self, lo: int, hi: int) -> int:
        """Return the differing bytes in ``[lo, hi)``: from the block table where it covers them, else read."""
        if hi <= lo:
            return 0
        for s, e in self.scanned:
            if s <= lo and hi <= e:
                return self._from_blocks(lo, hi)
        return self._read_count(lo, hi)

    def _from_blocks(self, lo: int, hi: int) -> int:
        bs, bl, cum = self.bstarts, self.blens, self.bcum
        i = bisect.bisect_right(bs, lo) - 1
        if i < 0 or bs[i] + bl[i] <= lo:
            i += 1  # the first block that ends past lo
        j = bisect.bisect_left(bs, hi)  # blocks i .. j-1 start before hi
        if i >= j:
            return 0
        total = 0
        if bs[i] < lo:  # a block cut at the start
            cut = min(bs[i] + bl[i], hi)
            total += cut - lo - self._block_xor(i).count(0, lo - bs[i], cut - bs[i])
            i += 1
        if i < j and bs[j - 1] + bl[j - 1] > hi:  # a block cut at the end
            total += hi - bs[j - 1] - self._block_xor(j - 1).count(0, 0, hi - bs[j - 1])
            j -= 1
        if i < j:
            total += cum[j] - cum[i]
        return total

    def _block_xor(self, k: int) -> bytes:
        """Return the XOR of both sides' bytes of table block ``k`` (the last :data:`XOR_CACHE` are kept: the
        fields counted one after another usually lie in the same few blocks)."""
        cache = self._xors
        x = cache.get(k)
        if x is None:
            start, n = self.bstarts[k], self.blens[k]
            a = self.src_a.read(start, n) if self.src_a is not None else b""
            b = self.src_b.read(start + self.delta, n) if self.src_b is not None else b""
            a, b = a.ljust(n, b"\0"), b.ljust(n, b"\0")
            x = xor_bytes(a, b)
            if len(cache) >= XOR_CACHE:
                del cache[next(iter(cache))]
            cache[k] = x
        return x

    def _read_count(self, lo: int, hi: int) -> int:
        if self.src_a is None or self.src_b is None or hi <= lo:
            return max(0, hi - lo)
        total = 0
        for pos in range(lo, hi, CHUNK):  # chunked: a range inside a long run can span hundreds of MiB
            size = min(CHUNK, hi - pos)
            a = self.src_a.read(pos, size)
            b = self.src_b.read(pos + self.delta, size)
            n = min(len(a), len(b))
            total += n - xor_bytes(a[:n], b[:n]).count(0) + (size - n)
        return total


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """Return the bytewise XOR of two equal-length buffers (zero where they are equal), computed in C."""
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _xor_runs(a: bytes, b: bytes) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` runs of differing bytes between two equal-length buffers."""
    x = xor_bytes(a, b)
    for m in _NONZERO.finditer(x):
        yield m.start(), m.end()


def compare_regions(
    src_a: Source,
    src_b: Source,
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
                        _add_block(dm, pos + sub, sa, sb)
            pos += n
            done += n
            if progress is not None:
                progress(done, length)
    dm.scanned.append((off_a, end_a))
    return dm


def _add_block(dm: DiffMap, at: int, a: bytes, b: bytes) -> None:
    """Add the differing runs of one block of equal-length ``a`` and ``b`` at ``at`` (A offset) to ``dm``.

    A run ends at :data:`MERGE_GAP` equal bytes: those are found with ``bytes.find`` (C's fast search), so a
    noisy block (two unrelated files' data) costs a few calls, not one per differing byte.  A run's equal-byte
    gaps are listed only while its run keeps a gap list.
    """
    n = len(a)
    x = xor_bytes(a, b)
    same = x.count(0)
    dm.add_block(at, n, n - same)
    if not same:
        dm.add_run(at, at + n)
        return
    pos = 0
    while True:
        p = x.find(_GAP, pos)
        end = n if p < 0 else p
        if end > pos:  # x[pos:end] holds a differing byte; trim the (shorter than MERGE_GAP) equal edges
            s, e = pos, end
            while not x[s]:
                s += 1
            while not x[e - 1]:
                e -= 1
            zeros = x.count(0, s, e)
            if not zeros:
                dm.add_run(at + s, at + e)
            else:
                dm.add_run(at + s, at + e, e - s - zeros,
                           ((at + g.start(), at + g.end()) for g in _ZEROS.finditer(x, s, e)))
        if p < 0:
            return
        m = _NONZERO_BYTE.search(x, p + MERGE_GAP)
        if m is None:
            return
        pos = m.start()


# ----------------------------------------------------------------------------------------------------------------
# Sources other than a plain image file: in-memory bytes, a file's bytes through its extents, the layered view of
# one side (the input image plus its decoded spaces).


class Source(Protocol):
    """What parsers and the engine read bytes from (an image, a view into one, decoded data)."""

    path: str
    size: int

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes at ``offset`` (fewer past the end)."""
        ...

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Yield ``(offset, end)`` ranges within ``[start, end)`` that may hold non-zero data."""
        ...

    def close(self) -> None:
        """Release what the source holds."""
        ...


class BytesSource:
    """Bytes held in memory (a small decoded payload)."""

    def __init__(self, data: bytes, path: str = "<memory>") -> None:
        self.data = data
        self.path = path
        self.size = len(data)

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes at ``offset``."""
        if offset < 0 or size <= 0:
            return b""
        return self.data[offset : offset + size]

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Yield the whole requested range (no holes in memory)."""
        if start < min(end, self.size):
            yield start, min(end, self.size)

    def close(self) -> None:
        """Drop the bytes."""
        self.data = b""


class MappedSource:
    """A file's bytes read through its extents: offset ``k`` of the view is byte ``k`` of the file.

    ``extents`` are ranges of ``parent`` in file order.  By default they are contiguous in the file (the view is
    their concatenation); ``offsets`` gives each extent's file offset instead, and ``size`` the file size, for a
    sparse file: bytes in holes read as zero and map to no bytes of the parent.
    """

    def __init__(self, parent: Source, extents: tuple[Extent, ...], path: str = "",
                 offsets: tuple[int, ...] | None = None, size: int | None = None) -> None:
        self.parent = parent
        self.extents = extents
        self.path = path or parent.path
        self.starts: list[int] = []
        pos = 0
        if offsets is not None and len(offsets) == len(extents) and list(offsets) == sorted(offsets):
            self.starts = list(offsets)
            pos = max((o + e.length for o, e in zip(offsets, extents, strict=True)), default=0)
        else:
            for e in extents:
                self.starts.append(pos)
                pos += e.length
        self.size = max(pos, size or 0)
        self.sparse = any(
            self.starts[i] + self.extents[i].length != self.starts[i + 1] for i in range(len(self.extents) - 1)
        ) or (bool(self.starts) and self.starts[0] != 0) or self.size != pos

    def to_parent(self, offset: int, length: int) -> list[Extent]:
        """Return the parent extents holding view bytes ``[offset, offset + length)`` in order (holes omitted)."""
        out: list[Extent] = []
        if length <= 0:
            return out
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        end = offset + length
        while i < len(self.extents) and self.starts[i] < end:
            e, s = self.extents[i], self.starts[i]
            lo, hi = max(offset, s), min(end, s + e.length)
            if lo < hi:
                piece = Extent(e.offset + lo - s, hi - lo)
                if out and out[-1].end == piece.offset:
                    out[-1] = Extent(out[-1].offset, out[-1].length + piece.length)
                else:
                    out.append(piece)
            i += 1
        return out

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes of the view at ``offset`` (holes read as zero)."""
        size = min(size, self.size - offset)
        if offset < 0 or size <= 0:
            return b""
        if not self.sparse:
            return b"".join(self.parent.read(e.offset, e.length) for e in self.to_parent(offset, size))
        out = bytearray(size)
        end = offset + size
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        while i < len(self.extents) and self.starts[i] < end:
            e, s = self.extents[i], self.starts[i]
            lo, hi = max(offset, s), min(end, s + e.length)
            if lo < hi:
                data = self.parent.read(e.offset + lo - s, hi - lo)
                out[lo - offset : lo - offset + len(data)] = data
            i += 1
        return bytes(out)

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Yield the stored parts of ``[start, end)`` (holes of a sparse file are skipped)."""
        for i, e in enumerate(self.extents):
            lo, hi = max(start, self.starts[i]), min(end, self.starts[i] + e.length)
            if lo < hi:
                yield lo, hi

    def close(self) -> None:
        """A view owns nothing."""


class LayeredSource:
    """One side's bytes: the input image below :data:`VBASE`, its decoded spaces above (one slot each)."""

    def __init__(self, base: Source) -> None:
        self.base = base
        self.path = base.path
        self.size = base.size
        self.slots: dict[int, Source] = {}

    def attach(self, slot: int, src: Source) -> int:
        """Make ``src`` readable at the offset of decoded-space ``slot`` and return that offset."""
        self.slots[slot] = src
        return VBASE + slot * SLOT

    def _slot(self, offset: int) -> tuple[Source | None, int]:
        slot, rel = divmod(offset - VBASE, SLOT)
        return self.slots.get(slot), rel

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes at ``offset`` (of the image, or of the decoded space it falls in)."""
        if offset < VBASE:
            return self.base.read(offset, min(size, VBASE - offset))
        src, rel = self._slot(offset)
        return src.read(rel, size) if src is not None else b""

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Yield the ranges that may hold data (delegated to the image or the decoded space)."""
        if start < VBASE:
            yield from self.base.data_extents(start, min(end, VBASE))
            return
        src, rel = self._slot(start)
        if src is not None:
            for s, e in src.data_extents(rel, rel + end - start):
                yield start - rel + s, start - rel + e

    def close(self) -> None:
        """Close the decoded spaces (the image itself is closed by whoever opened it)."""
        for src in self.slots.values():
            src.close()
        self.slots.clear()

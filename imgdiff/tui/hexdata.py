"""Where the hex view gets bytes: the image files (read-only) or a saved result's ``hex_a``/``hex_b`` snippets.

A reader returns a window of ``size`` values for ``[offset, offset + size)``; a value is ``None`` where the byte
is not known (past the end of the image, before offset 0, or outside every snippet of a saved result).  This is
raw byte access only: nothing is parsed.
"""

from __future__ import annotations

import bisect
from typing import Protocol

from imgdiff.model import Difference, Report
from imgdiff.source import ImageSource

Window = list[int | None]


class ByteReader(Protocol):
    """Anything the hex view can read a window of bytes from."""

    def window(self, offset: int, size: int) -> Window:
        """Return ``size`` byte values starting at ``offset``; ``None`` for unknown bytes."""
        ...

    def raw(self, offset: int, size: int) -> bytes | None:
        """Return the bytes at ``offset`` (short at the end), or None when they are not all known."""
        ...

    def close(self) -> None:
        """Release what the reader holds."""
        ...


class ImageReader:
    """Bytes of one image file, opened read-only through :class:`ImageSource`."""

    def __init__(self, path: str) -> None:
        self.src = ImageSource(path)

    def window(self, offset: int, size: int) -> Window:
        """Return the window; bytes before 0 or past the end of the image are ``None``."""
        out: Window = [None] * size
        start = max(offset, 0)
        data = self.src.read(start, offset + size - start) if offset + size > start else b""
        out[start - offset : start - offset + len(data)] = list(data)
        return out

    def raw(self, offset: int, size: int) -> bytes | None:
        """Return the image bytes at ``offset``."""
        return self.src.read(offset, size) if offset >= 0 else None

    def close(self) -> None:
        """Close the image."""
        self.src.close()


class SourceReader:
    """Bytes of one side read through a report's open sources (decompressed inputs and decoded spaces included)."""

    def __init__(self, report: Report, side: str) -> None:
        self.report = report
        self.side = side

    def window(self, offset: int, size: int) -> Window:
        """Return the window; bytes before 0, past the end, or after the report was closed are ``None``."""
        out: Window = [None] * size
        start = max(offset, 0)
        data = self.report.read(self.side, start, offset + size - start) if offset + size > start else b""
        data = data or b""
        out[start - offset : start - offset + len(data)] = list(data)
        return out

    def raw(self, offset: int, size: int) -> bytes | None:
        """Return the bytes at ``offset``, or None when they cannot be read."""
        return self.report.read(self.side, offset, size) if offset >= 0 else None

    def close(self) -> None:
        """The report owns the sources: it closes them."""


class SnippetReader:
    """Bytes known from a saved result: the first bytes of every difference's first extent."""

    def __init__(self, pieces: dict[int, bytes]) -> None:
        self.starts = sorted(pieces)
        self.pieces = pieces

    @classmethod
    def from_report(cls, report: Report, side: str) -> SnippetReader:
        """Collect ``side``'s (``"a"``/``"b"``) snippets of every difference of a loaded saved result."""
        pieces: dict[int, bytes] = {}
        for f in report.findings:
            for d in f.causes + f.derived:
                got = snippet(d, side)
                if got is not None:
                    off, data = got
                    if len(data) > len(pieces.get(off, b"")):
                        pieces[off] = data
        return cls(pieces)

    def window(self, offset: int, size: int) -> Window:
        """Return the window with the snippet bytes that fall inside it."""
        out: Window = [None] * size
        end = offset + size
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        while i < len(self.starts) and self.starts[i] < end:
            start = self.starts[i]
            data = self.pieces[start]
            lo, hi = max(start, offset), min(start + len(data), end)
            if lo < hi:
                out[lo - offset : hi - offset] = list(data[lo - start : hi - start])
            i += 1
        return out

    def raw(self, offset: int, size: int) -> bytes | None:
        """Snippets cannot say where a long field first differs: always None."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def snippet(d: Difference, side: str) -> tuple[int, bytes] | None:
    """Return ``(offset, bytes)`` of the saved hex snippet of ``d`` on ``side``, where ``hex_snippets`` read it."""
    text = d.attrs.get(f"hex_{side}")
    if not isinstance(text, str):
        return None
    exts = (d.extents_a or d.extents_b) if side == "a" else (d.extents_b or d.extents_a)
    if not exts:
        return None
    try:
        return exts[0].offset, bytes.fromhex(text)
    except ValueError:
        return None


def first_mismatch(a: bytes, b: bytes) -> int | None:
    """Return the index of the first byte where ``a`` and ``b`` differ (a length difference counts), or None."""
    n = min(len(a), len(b))
    lo, hi = 0, n
    if a[:n] == b[:n]:
        return None if len(a) == len(b) else n
    while hi - lo > 64:  # halve with C-speed slice compares, then scan the last few bytes
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    return hi

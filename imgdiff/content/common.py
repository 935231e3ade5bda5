"""What every content recogniser shares: :class:`ContentField`, the :data:`Recognizer` signature, value display and
bounded decompression.

Recognisers see the head of both versions of a changed file (:data:`imgdiff.content.INSPECT_BYTES`); a
format's trailer or its compressed payload can only be inspected when the whole file is in the head, which
:func:`whole` tells.  Decompression is bounded by :data:`MAX_PAYLOAD` so a hostile image cannot exhaust memory.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from imgdiff.model import Value


@dataclass(frozen=True, slots=True)
class ContentField:
    """One differing field inside a file, at ``offset`` bytes from the start of the file."""

    kind: str
    field: str
    offset: int
    size: int
    a: Value
    b: Value
    display_a: str | None = None
    display_b: str | None = None
    derived: bool = False
    """True for a value computed from the rest of the file (PE CheckSum, gzip FHCRC, cpio c_check): it is
    folded into the cause that explains the file's other differing bytes."""
    change: str = "modified"
    """``"modified"``, or ``"moved"`` for identical data stored at another offset (a stream shifted by a
    longer header)."""


Recognizer = Callable[[str, bytes, bytes, int, int], list[ContentField]]
"""``fn(path, head_a, head_b, size_a, size_b) -> differing fields`` (empty when the format is not its own)."""

MAX_PAYLOAD = 64 << 20
"""Decompressed bytes a recogniser may produce per version of a file."""


def utc(seconds: int) -> str:
    """Return a Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (or the number when out of range)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def whole(head: bytes, size: int) -> bool:
    """Return True when ``head`` holds the entire file of ``size`` bytes."""
    return len(head) >= size


def gunzip(data: bytes, limit: int = MAX_PAYLOAD) -> bytes | None:
    """Return the payload of every gzip member in ``data``, or None when it is not complete, valid gzip."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(rest, limit - len(out) + 1)
        except zlib.error:
            return None
        if len(out) > limit or not d.eof:
            return None
        rest = d.unused_data
        if rest and rest.count(0) == len(rest):  # zero padding after the last member
            break
        if rest and rest[:2] != b"\x1f\x8b":
            return None
    return bytes(out)


def unxz(data: bytes, limit: int = MAX_PAYLOAD) -> bytes | None:
    """Return the payload of every xz stream in ``data``, or None when it is not complete, valid xz."""
    out = bytearray()
    rest = data
    while rest:
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            out += d.decompress(rest, limit - len(out) + 1)
        except lzma.LZMAError:
            return None
        if len(out) > limit or not d.eof:
            return None
        rest = d.unused_data
        if rest and rest.count(0) == len(rest):  # stream padding
            break
    return bytes(out)


def first_difference(a: bytes, b: bytes, start: int = 0) -> int | None:
    """Return the first offset at or after ``start`` where ``a`` and ``b`` differ (a length difference counts)."""
    n = min(len(a), len(b))
    i = start
    step = 4096
    while i < n:
        j = min(n, i + step)
        if a[i:j] != b[i:j]:
            for k in range(i, j):
                if a[k] != b[k]:
                    return k
        i = j
    return None if len(a) == len(b) else n

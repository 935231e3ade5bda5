"""Value decoders shared by the ISO 9660 modules: both-byte-order numbers, the two date formats, identifiers.

References:
    ECMA-119 7.2.3/7.3.3 (both-byte orders), 8.4.26.1 (dec-datetime, 17 bytes), 9.1.5 (directory record date,
    7 bytes), 7.4 (a-/d-characters); Joliet specification (UCS-2 big-endian identifiers); RRIP 4.1.6 (TF stamps use
    either form).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import struct
from collections.abc import Callable, Iterable

from imgdiff.model import Extent, Field

_LE16 = struct.Struct("<H")
_LE32 = struct.Struct("<I")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")

AREA_CHUNK = 1 << 20
"""Unstructured areas get one field per differing chunk of this size (relative to the volume start)."""


def both16(raw: bytes) -> int:
    """Return the little-endian half of a 7.2.3 both-byte-order 16-bit number (4 bytes)."""
    return int(_LE16.unpack_from(raw, 0)[0])


def both32(raw: bytes) -> int:
    """Return the little-endian half of a 7.3.3 both-byte-order 32-bit number (8 bytes)."""
    return int(_LE32.unpack_from(raw, 0)[0])


def both_ok(raw: bytes) -> bool:
    """Return True when the big-endian half of a both-byte-order number equals the little-endian half."""
    if len(raw) == 4:
        return bool(_LE16.unpack_from(raw, 0)[0] == _BE16.unpack_from(raw, 2)[0])
    return bool(_LE32.unpack_from(raw, 0)[0] == _BE32.unpack_from(raw, 4)[0])


def be32(raw: bytes) -> int:
    """Return a 7.3.2 big-endian 32-bit number."""
    return int(_BE32.unpack_from(raw, 0)[0])


def _tz(offset: int) -> str:
    """Return a 15-minute-interval GMT offset byte (signed) as ``+hh:mm``."""
    if offset > 127:
        offset -= 256
    minutes = offset * 15
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _tz_seconds(offset: int) -> int:
    if offset > 127:
        offset -= 256
    return offset * 15 * 60


def dec_datetime(raw: bytes) -> str:
    """Return the value of a 17-byte dec-datetime: its 16 digits ``YYYYMMDDhhmmsscc`` as text.

    The GMT offset byte is part of the field's bytes (a difference there shows as a byte difference with an
    equal value) and of :func:`dec_datetime_display`.
    """
    return bytes(raw[:16]).decode("ascii", errors="replace")


def dec_datetime_display(raw: bytes) -> str:
    """Return a dec-datetime as ``YYYY-MM-DD hh:mm:ss.cc +hh:mm`` (``unset`` for the all-zero-digits value)."""
    digits = bytes(raw[:16])
    if digits in (b"0" * 16, b"\0" * 16, b" " * 16):
        return "unset"
    t = digits.decode("ascii", errors="replace")
    return f"{t[0:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:14]}.{t[14:16]} {_tz(raw[16])}"


def dec_datetime_seconds(raw: bytes) -> int | None:
    """Return a dec-datetime as POSIX seconds (UTC), or None when unset or invalid."""
    try:
        t = bytes(raw[:16]).decode("ascii")
        y, mo, d, h, mi, s = (int(t[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14)))
        if y == 0:
            return None
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - _tz_seconds(raw[16])
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=4096)
def record_date(raw: bytes) -> int | None:
    """Return a 7-byte directory record date (9.1.5) as POSIX seconds (UTC), or None when unset or invalid."""
    y, mo, d, h, mi, s, tz = raw[:7]
    if y == mo == d == h == mi == s == 0:
        return None
    try:
        return calendar.timegm((1900 + y, mo, d, h, mi, s, 0, 0, 0)) - _tz_seconds(tz)
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=4096)
def record_date_display(raw: bytes) -> str:
    """Return a 7-byte directory record date as ``YYYY-MM-DD hh:mm:ss +hh:mm`` (``unset`` when all zero)."""
    y, mo, d, h, mi, s, tz = raw[:7]
    if y == mo == d == h == mi == s == 0:
        return "unset"
    return f"{1900 + y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d} {_tz(tz)}"


def record_date_value(raw: bytes) -> int:
    """Return the value of a 7-byte date field: POSIX seconds, or -1 when unset or invalid (a plain int)."""
    v = record_date(raw)
    return -1 if v is None else v


def text(raw: bytes) -> str:
    """Return an a-/d-character identifier without its space (or NUL) padding."""
    return bytes(raw).decode("latin-1").rstrip(" \0")


def ucs2(raw: bytes) -> str:
    """Return a Joliet UCS-2 big-endian identifier without its padding."""
    n = len(raw) - len(raw) % 2
    return bytes(raw[:n]).decode("utf-16-be", errors="replace").rstrip(" \0")


def iso_name(raw: bytes, joliet: bool = False) -> str:
    """Return a file identifier as a name: ``;1`` version and a trailing dot of an empty extension dropped."""
    name = ucs2(raw) if joliet else bytes(raw).decode("latin-1")
    if ";" in name:
        name = name[: name.rindex(";")]
    if name.endswith(".") and len(name) > 1:
        name = name[:-1]
    return name


def blob_display(data: bytes) -> str:
    """Return ``"N bytes, all zero"`` or ``"N bytes, K non-zero"``."""
    nz = len(data) - bytes(data).count(0)
    return f"{len(data)} bytes, all zero" if nz == 0 else f"{len(data)} bytes, {nz} non-zero"


def area_fields(
    name: str,
    exts: Iterable[Extent],
    base: int,
    read: Callable[[int, int], bytes],
    interesting: Callable[[Extent], bool] | None,
    what: Callable[[int], str],
) -> list[Field]:
    """Return the fields of an unstructured area (unused sectors, padding, slack spread over many extents).

    Bytes that do not differ form one field ``name`` valued by their count; each differing :data:`AREA_CHUNK`
    aligned chunk (relative to ``base``) becomes its own field ``name[0x<offset>]`` valued by the SHA-256 of its
    bytes, so that a difference says where it is without the engine rendering megabytes of equal values.
    Without a diff map (``interesting`` is None) the area is one field.
    """
    exts = [e for e in exts if e.length > 0]
    if not exts:
        return []
    if interesting is None:
        n = sum(e.length for e in exts)
        return [Field(name, n, tuple(exts), what(n))]
    rest: list[Extent] = []
    chunks: list[Field] = []
    for e in exts:
        if not interesting(e):
            rest.append(e)
            continue
        pos = e.offset
        while pos < e.end:
            rel = pos - base
            end = min(e.end, base + (rel // AREA_CHUNK + 1) * AREA_CHUNK)
            piece = Extent(pos, end - pos)
            if interesting(piece):
                blob = read(piece.offset, piece.length)
                disp = f"{piece.length} bytes at +0x{rel:x}, " + blob_display(blob).split(", ", 1)[1]
                chunks.append(Field(f"{name}[0x{rel:x}]", "sha256:" + hashlib.sha256(blob).hexdigest()[:16],
                                    (piece,), disp))
            else:
                rest.append(piece)
            pos = end
    out: list[Field] = []
    if rest:
        n = sum(e.length for e in rest)
        out.append(Field(name, n, tuple(_join(rest)), what(n)))
    return out + chunks


def _join(exts: list[Extent]) -> list[Extent]:
    out: list[Extent] = []
    for e in sorted(exts):
        if out and out[-1].end == e.offset:
            out[-1] = Extent(out[-1].offset, out[-1].length + e.length)
        else:
            out.append(e)
    return out

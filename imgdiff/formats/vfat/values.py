"""FAT value decoding: DOS dates and times, 8.3 short names with the DIR_NTRes case bits, LFN text and checksum.

References:
    Microsoft FAT specification (fatgen103), section 6 (DIR_Name, DIR_Attr, date and time formats) and section 7
    (long names: LDIR_Chksum, UTF-16 name units); Linux ``fs/fat/dir.c`` (DIR_NTRes case bits).
"""

from __future__ import annotations

import datetime as _dt

from imgdiff.formats.vfat.c_vfat import (
    ATTR_LONG_NAME,
    ATTR_LONG_NAME_MASK,
    DIRENT_KANJI_E5,
    NTRES_LOWER_BASE,
    NTRES_LOWER_EXT,
)
from imgdiff.model import Value

CODEPAGE = "cp850"
"""OEM code page of short names (mkfs.fat and mtools default; a total 256-character mapping)."""

ATTR_NAMES = (
    (0x01, "RO"),
    (0x02, "HIDDEN"),
    (0x04, "SYSTEM"),
    (0x08, "VOLUME_ID"),
    (0x10, "DIR"),
    (0x20, "ARCHIVE"),
    (0x40, "DEVICE"),
    (0x80, "RESERVED"),
)


def dos_date(d: int) -> str:
    """Return a FAT date (bits 15-9 year since 1980, 8-5 month, 4-0 day) as ``YYYY-MM-DD``."""
    if d == 0:
        return "unset"
    year, month, day = 1980 + (d >> 9), (d >> 5) & 0xF, d & 0x1F
    if not 1 <= month <= 12 or day == 0:
        return f"invalid date 0x{d:04x}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def dos_time(t: int) -> str:
    """Return a FAT time (bits 15-11 hours, 10-5 minutes, 4-0 two-second count) as ``HH:MM:SS``."""
    h, m, s = t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2
    if h > 23 or m > 59 or s > 59:
        return f"invalid time 0x{t:04x}"
    return f"{h:02d}:{m:02d}:{s:02d}"


def dos_datetime(d: int, t: int) -> str:
    """Return a FAT date and time as ``YYYY-MM-DD HH:MM:SS`` (local time of whoever wrote it)."""
    return f"{dos_date(d)} {dos_time(t)}"


def dos_seconds(d: int, t: int) -> int | None:
    """Return a FAT date and time as seconds since 1980-01-01 in the writer's local time, or None if invalid."""
    year, month, day = 1980 + (d >> 9), (d >> 5) & 0xF, d & 0x1F
    h, m, s = t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2
    try:
        when = _dt.datetime(year, month, day, h, m, min(s, 59))
    except ValueError:
        return None
    return int((when - _dt.datetime(1980, 1, 1)).total_seconds())


def lfn_checksum(name11: bytes) -> int:
    """Return the LDIR_Chksum of a short name (fatgen103 section 7: rotate right, add)."""
    s = 0
    for b in name11:
        s = (((s & 1) << 7) + (s >> 1) + b) & 0xFF
    return s


def short_name(raw: bytes, ntres: int = 0) -> str:
    """Return the displayed 8.3 name of DIR_Name, applying the DIR_NTRes lower-case bits."""
    first = bytes([0xE5]) if raw[:1] == bytes([DIRENT_KANJI_E5]) else raw[:1]
    base = (first + raw[1:8]).decode(CODEPAGE).rstrip(" ")
    ext = raw[8:11].decode(CODEPAGE).rstrip(" ")
    if ntres & NTRES_LOWER_BASE:
        base = base.lower()
    if ntres & NTRES_LOWER_EXT:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def attr_display(a: int) -> str:
    """Return the DIR_Attr bits by name."""
    if a & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
        return "LONG_NAME"
    names = [n for bit, n in ATTR_NAMES if a & bit]
    return ",".join(names) if names else "none"


def lfn_text(raw: bytes) -> str:
    """Return the UTF-16 characters of LFN name bytes up to the terminating NUL (0xFFFF padding dropped)."""
    units = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    out = bytearray()
    for u in units:
        if u == b"\x00\x00" or u == b"\xff\xff":
            break
        out += u
    return out.decode("utf-16-le", errors="replace")


def join(parent: str, name: str) -> str:
    """Return the path of ``name`` inside directory ``parent``."""
    return f"{parent.rstrip('/')}/{name}"


def text(v: Value) -> Value:
    """Return a fixed-size name field (BS_OEMName, BS_VolLab, DIR_Name) as text in :data:`CODEPAGE`."""
    return bytes(v).decode(CODEPAGE) if isinstance(v, (bytes, bytearray)) else v

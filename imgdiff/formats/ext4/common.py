"""Shared by the ext4 modules: limits, the compiled struct layouts of the on-disk structures, value and display helpers."""

from __future__ import annotations

import functools
import hashlib
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from imgdiff.formats.compiled import BLOB_INLINE, Compiled
from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.formats.ext4.c_ext4 import (
    DX_COUNTLIMIT,
    DX_ENTRY,
    DX_ROOT_INFO,
    DX_TAIL,
    EXT4_DIR_ENTRY_2,
    EXT4_DIR_ENTRY_TAIL,
    EXT4_EXTENT,
    EXT4_EXTENT_HEADER,
    EXT4_EXTENT_IDX,
    EXT4_EXTENT_TAIL,
    EXT4_GOOD_OLD_INODE_SIZE,
    EXT4_GROUP_DESC,
    EXT4_INODE,
    EXT4_ORPHAN_BLOCK_TAIL,
    EXT4_SUPER_BLOCK,
    EXT4_XATTR_ENTRY,
    EXT4_XATTR_HEADER,
    EXT4_XATTR_IBODY_HEADER,
    EXT4_XATTR_INDEX_SYSTEM_DATA,
    EXT4_XATTR_MAGIC,
    EXT_INIT_MAX_LEN,
    FAKE_DIRENT,
    INODE_FLAGS,
    JBD2_COMMIT_HEADER,
    JBD2_REVOKE_HEADER,
    JOURNAL_BLOCK_TAG,
    JOURNAL_BLOCK_TAG3,
    JOURNAL_HEADER,
    JOURNAL_SUPERBLOCK,
    MODE_TYPES,
    S_IFMT,
)
from imgdiff.model import Extent, Field, Value, subtract_extents

MAX_GROUPS = 1 << 22

"""Refuse more block groups than this (a hostile superblock); 4 Mi groups is a 512 TiB filesystem at 4 KiB."""

MAX_EXTENT_DEPTH = 5

"""The kernel's extent trees never exceed depth 5 (``EXT4_MAX_EXTENT_DEPTH``)."""

MAX_TREE_BLOCKS = 1 << 20

"""Extent/indirect tree blocks visited per inode at most."""

MAX_DIR_ENTRIES = 20_000_000

"""Directory entries walked per filesystem at most (bounds a hostile or looping tree)."""

MAX_PATH_DEPTH = 2048

READ_CHUNK = 8 << 20

SYMLINK_MAX = 4096

"""Longest symlink target shown as text (``PATH_MAX``); a longer "target" is shown as a digest."""

SHA_FULL_LIMIT = 16 << 30

"""Files with more logical bytes than this are hashed over their mapped bytes only (holes are skipped)."""

_CSUM_SEEDS = ("ext4.superblock:s_uuid",)

C_SB = Compiled(EXT4_SUPER_BLOCK)

C_GD = Compiled(EXT4_GROUP_DESC)

C_INODE = Compiled(EXT4_INODE)

C_DIRENT = Compiled(EXT4_DIR_ENTRY_2)

C_DIRTAIL = Compiled(EXT4_DIR_ENTRY_TAIL)

C_FAKE = Compiled(FAKE_DIRENT)

C_DXINFO = Compiled(DX_ROOT_INFO)

C_DXCL = Compiled(DX_COUNTLIMIT)

C_DXENTRY = Compiled(DX_ENTRY)

C_DXTAIL = Compiled(DX_TAIL)

C_EH = Compiled(EXT4_EXTENT_HEADER)

C_EI = Compiled(EXT4_EXTENT_IDX)

C_EE = Compiled(EXT4_EXTENT)

C_ET = Compiled(EXT4_EXTENT_TAIL)

C_XH = Compiled(EXT4_XATTR_HEADER)

C_XIH = Compiled(EXT4_XATTR_IBODY_HEADER)

C_XE = Compiled(EXT4_XATTR_ENTRY)

C_OBT = Compiled(EXT4_ORPHAN_BLOCK_TAIL)

C_JSB = Compiled(JOURNAL_SUPERBLOCK, ">")

C_JH = Compiled(JOURNAL_HEADER, ">")

C_JCOMMIT = Compiled(JBD2_COMMIT_HEADER, ">")

C_JTAG3 = Compiled(JOURNAL_BLOCK_TAG3, ">")

C_JTAG = Compiled(JOURNAL_BLOCK_TAG, ">")

C_JREVOKE = Compiled(JBD2_REVOKE_HEADER, ">")

_SCAN, _SCAN_NAMES = C_INODE.subset(
    (
        "i_mode", "i_size_lo", "i_links_count", "i_blocks_lo", "i_flags", "i_block", "i_generation",
        "i_file_acl_lo", "i_size_high", "i_file_acl_high",
    )
)

_SCAN_EXTRA = C_INODE.span("i_extra_isize")

_SKIP_IBLOCK = frozenset({"i_block"})

_DIRENT = struct.Struct("<IHBB")

_EH = C_EH.struct

_EE = C_EE.struct

_EI = C_EI.struct

_GD_SCAN, _GD_SCAN_NAMES = C_GD.subset(
    ("bg_block_bitmap_lo", "bg_inode_bitmap_lo", "bg_inode_table_lo", "bg_flags", "bg_itable_unused_lo")
)

_GD_SCAN_HI, _GD_SCAN_HI_NAMES = C_GD.subset(
    ("bg_block_bitmap_hi", "bg_inode_bitmap_hi", "bg_inode_table_hi", "bg_itable_unused_hi")
)

def _cstr(raw: bytes) -> str:
    # surrogateescape: a byte that is not UTF-8 survives losslessly (os.fsencode gives it back); see _name
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", errors="surrogateescape")

def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=bytes(raw)))

def _hash_seed(words: tuple[int, ...]) -> str:
    return str(uuid.UUID(bytes=struct.pack("<4I", *words)))

@functools.lru_cache(maxsize=1 << 14)
def _seconds_text(seconds: int) -> str | None:
    """Return ``YYYY-MM-DDTHH:MM:SS`` of a UTC time, or None when out of range (memoized: files share seconds)."""
    try:
        t = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S")

def _time_text(seconds: int, nsec: int | None = None) -> str:
    text = _seconds_text(seconds)
    if text is None:
        return f"{seconds} (out of range)"
    if nsec:
        return f"{text}.{nsec:09d}Z"
    return text + "Z"

def _time_hi_text(seconds: int, hi: int) -> str:
    """Return the text of a superblock time whose ``_hi`` byte extends it past 2038."""
    return _time_text(seconds + (hi << 32))

def _time_extra_text(seconds: int, extra: int) -> str:
    """Return the text of an inode time with its ``_extra`` word (nanoseconds and epoch bits)."""
    return _time_text(*_extra_time(seconds, extra))

def _inode_plan(limit: int) -> tuple[tuple[str, int, int, int, int, int], ...]:
    """Return, for inodes whose fixed fields end at ``limit``, each member's field recipe.

    ``(name, offset, size, value index, display code, index of the time's _extra word or -1)``; ``i_block`` is
    left out (:meth:`Ext4._iblock_fields` describes it).  Display codes: see :func:`_inode_fields`.
    """
    plan = _INODE_PLANS.get(limit)
    if plan is not None:
        return plan
    codes = {"i_mode": 1, "i_flags": 2, "i_dtime": 3}
    for name, xname in _INODE_TIME_EXTRA.items():
        codes[name] = 4
        codes[xname] = 5
    out = []
    for name, moff, size, i, _n, kind in C_INODE.members:
        if moff + size > limit:
            break
        if name == "i_block":
            continue
        assert kind == "int"
        xi = -1
        if name in _INODE_TIME_EXTRA:
            _xn, xo, xs, xidx, _xc, _xk = C_INODE._index[_INODE_TIME_EXTRA[name]]
            xi = xidx if xo + xs <= limit else -1
        out.append((name, moff, size, i, codes.get(name, 0), xi))
    plan = tuple(out)
    _INODE_PLANS[limit] = plan
    return plan

_INODE_PLANS: dict[int, tuple[tuple[str, int, int, int, int, int], ...]] = {}

def _inode_fields(raw: bytes, absoff: int, limit: int) -> list[Field]:
    """Return the fields of an inode's fixed members up to ``limit`` (``i_block`` excepted) with displays.

    Equivalent to ``C_INODE.fields(..., skip={"i_block"}, display=...)`` with the inode displays, without the
    per-member dictionary lookups: inode tables hold tens of thousands of inodes.
    """
    if len(raw) < C_INODE.size:
        raw = bytes(raw) + bytes(C_INODE.size - len(raw))
    return _inode_member_fields(C_INODE.struct.unpack_from(raw, 0), absoff, limit)


def _inode_member_fields(vals: tuple[Any, ...], absoff: int, limit: int) -> list[Field]:
    """Return the fields of the unpacked inode ``vals`` up to ``limit``."""
    out: list[Field] = []
    append = out.append
    for name, moff, size, i, code, xi in _inode_plan(limit):
        v = vals[i]
        disp = _inode_display(code, v, vals, xi) if code else None
        # tuple.__new__ directly: the same named tuples without the Python-level __new__ of each
        append(_new(Field, (name, v, (_new(Extent, (absoff + moff, size)),), disp)))
    return out


def _inode_step_field(vals: tuple[Any, ...], absoff: int, step: tuple[str, int, int, int, int, int]) -> Field:
    """Return one member's field by its recipe (see :func:`_inode_plan`)."""
    name, moff, size, i, code, xi = step
    v = vals[i]
    disp = _inode_display(code, v, vals, xi) if code else None
    return _new(Field, (name, v, (_new(Extent, (absoff + moff, size)),), disp))


def _inode_display(code: int, v: int, vals: tuple[Any, ...], xi: int) -> str | None:
    """Return the display of an inode member by its display code (see :func:`_inode_plan`)."""
    if code == 4:
        return _time_extra_text(v, vals[xi] if xi >= 0 else 0)
    if code == 5:
        return f"nsec={v >> 2} epoch={v & 3}"
    if code == 1:
        return _mode_text(v)
    if code == 2:
        return _flags_text(v, INODE_FLAGS)
    return _time_text(v) if v else None

_new = tuple.__new__

def _flags_text(value: int, names: dict[int, str]) -> str:
    out = [n for bit, n in names.items() if value & bit]
    rest = value & ~sum(names)
    if rest:
        out.append(f"0x{rest:x}")
    return ",".join(out) if out else "none"

def _signed32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v

def _extra_time(base_sec: int, extra: int) -> tuple[int, int]:
    """Return ``(seconds, nsec)`` of an inode time with its ``_extra`` word (epoch bits + nanoseconds)."""
    sec = _signed32(base_sec) + ((extra & 3) << 32)
    return sec, extra >> 2

def _mode_text(mode: int) -> str:
    return f"{MODE_TYPES.get(mode & S_IFMT, 'unknown')} {mode & 0o7777:04o}"

def _runs_text(bits: bytes, nbits: int, limit: int = 48) -> str:
    """Return the set bits of a little-endian bitmap as ``"0-1023,2048"``; long lists end in a digest."""
    runs: list[tuple[int, int]] = []
    start = -1
    value = int.from_bytes(bits, "little")
    i = 0
    while i < nbits:
        if value >> i == 0:
            break
        if (value >> i) & 1:
            if start < 0:
                start = i
        elif start >= 0:
            runs.append((start, i - 1))
            start = -1
        i += 1
    if start >= 0:
        runs.append((start, i - 1))
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    text = ",".join(parts) if parts else "none"
    if len(runs) > limit:
        text += f",... (+{len(runs) - limit} runs, sha256:{hashlib.sha256(bits).hexdigest()[:12]})"
    return text

def _gap_fields(fields: list[Field], start: int, end: int, name: str, read: Callable[[int, int], bytes]) -> None:
    """Append blob fields named ``name`` (``name.1``, ...) for bytes in ``[start, end)`` no field covers."""
    taken = [e for f in fields for e in f.extents]
    for k, gap in enumerate(subtract_extents(Extent(start, end - start), taken)):
        data = read(gap.offset, gap.length)
        fields.append(Field(name if k == 0 else f"{name}.{k}", _blob(data), (gap,), _blob_display(data)))

# Superblock field decoding (raw value -> field value, raw value -> display).
_SB_DECODE: dict[str, Callable[[Any], Value]] = {
    "s_uuid": _uuid,
    "s_journal_uuid": _uuid,
    "s_hash_seed": _hash_seed,
    "s_volume_name": _cstr,
    "s_last_mounted": _cstr,
    "s_mount_opts": _cstr,
    "s_first_error_func": _cstr,
    "s_last_error_func": _cstr,
    "s_encrypt_algos": bytes,
    "s_encrypt_pw_salt": bytes,
}

_SB_TIMES = ("s_mtime", "s_wtime", "s_lastcheck", "s_mkfs_time", "s_first_error_time", "s_last_error_time")

_INODE_TIMES = ("i_atime", "i_ctime", "i_mtime", "i_crtime")

_INODE_TIME_EXTRA = {"i_atime": "i_atime_extra", "i_ctime": "i_ctime_extra", "i_mtime": "i_mtime_extra",
                     "i_crtime": "i_crtime_extra"}

def _old_decode_dev(v: int) -> str:
    """Return ``major:minor`` of the 16-bit device encoding in ``i_block[0]`` (``old_decode_dev``)."""
    return f"{(v >> 8) & 0xFF}:{v & 0xFF}"

def _new_decode_dev(v: int) -> str:
    """Return ``major:minor`` of the 32-bit device encoding in ``i_block[1]`` (``new_decode_dev``)."""
    return f"{(v & 0xFFF00) >> 8}:{(v & 0xFF) | ((v >> 12) & 0xFFF00)}"

def _device_fields(ib: bytes, a: int) -> list[Field]:
    """Return the device number fields of a character/block device's ``i_block``.

    The kernel reads ``i_block[0]`` with ``old_decode_dev`` when it is non-zero and ``i_block[1]`` with
    ``new_decode_dev`` otherwise (fs/ext4/inode.c ``__ext4_iget``); mke2fs -d writes the old form for majors and
    minors below 256 and the new one for larger numbers (misc/create_inode.c ``do_mknod_internal``).
    """
    old, new = struct.unpack_from("<2I", ib)
    if old:
        d0, d1 = f"device {_old_decode_dev(old)}", "not used (i_block[0] is set)" if new else None
    else:
        d0, d1 = "not used (the number is in i_block[1])", f"device {_new_decode_dev(new)}"
    rest = ib[8:]
    return [Field("i_block[0]", old, (Extent(a, 4),), d0), Field("i_block[1]", new, (Extent(a + 4, 4),), d1),
            Field("i_block.unused", _blob(rest), (Extent(a + 8, len(rest)),), _blob_display(rest))]

def _inline_xattr(raw: bytes, isz: int) -> tuple[int, int] | str | None:
    """Return ``(offset in the inode, size)`` of the ``system.data`` value in an inode's xattr area.

    None when the inode has no such attribute, a message when the area is damaged.
    """
    if isz <= EXT4_GOOD_OLD_INODE_SIZE or len(raw) < isz:
        return None
    extra = struct.unpack_from("<H", raw, EXT4_GOOD_OLD_INODE_SIZE)[0]
    start = EXT4_GOOD_OLD_INODE_SIZE + extra
    if extra % 4 or start + 4 > isz or struct.unpack_from("<I", raw, start)[0] != EXT4_XATTR_MAGIC:
        return None
    first = start + 4
    pos = first
    for _ in range(isz // 16):
        if pos + 4 > isz or struct.unpack_from("<I", raw, pos)[0] == 0:
            return None
        if pos + 16 > isz:
            return "xattr entry runs past the end of the inode"
        nlen, index, voffs, vinum, vsize, _hash = struct.unpack_from("<BBHIII", raw, pos)
        if pos + 16 + nlen > isz:
            return "xattr name runs past the end of the inode"
        if index == EXT4_XATTR_INDEX_SYSTEM_DATA and raw[pos + 16 : pos + 16 + nlen] == b"data":
            if vinum or (vsize and (first + voffs < pos + 16 + nlen or first + voffs + vsize > isz)):
                return f"system.data value at +{first + voffs} size {vsize} lies outside the inode"
            return first + voffs, vsize
        pos += (16 + nlen + 3) & ~3
    return None

JBD2_INCOMPAT_NAMES = {0x01: "revoke", 0x02: "64bit", 0x04: "async_commit", 0x08: "csum_v2", 0x10: "csum_v3",
                       0x20: "fast_commit"}

def _reader(data: bytes, base: int) -> Callable[[int, int], bytes]:
    """Return ``read(offset, n)`` over ``data`` that starts at absolute offset ``base``."""

    def read(offset: int, n: int) -> bytes:
        return data[offset - base : offset - base + n]

    return read

def _name(raw: bytes) -> str:
    # surrogateescape (PEP 383), as Python decodes file names: lossless; the JSON writes such a byte as \udcff,
    # text and markdown show it as \xff (report.text.printable)
    return bytes(raw).decode("utf-8", errors="surrogateescape")

def _int_suffix(key: str) -> int | None:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None

def _fkey(f: Field) -> int:
    return f.extents[0].offset if f.extents else -1

def _ee_len_text(v: int) -> str:
    return f"{v - EXT_INIT_MAX_LEN} blocks, unwritten" if v > EXT_INIT_MAX_LEN else f"{v} blocks"

_EE_DISPLAY: dict[str, Callable[[Any], str | None]] = {"ee_len": _ee_len_text}

def _xattr_value(val: bytes) -> Value:
    if len(val) <= BLOB_INLINE:
        return bytes(val)
    return "sha256:" + hashlib.sha256(val).hexdigest()[:16]

def _xattr_value_display(val: bytes) -> str | None:
    text = bytes(val).rstrip(b"\0")
    if text and all(32 <= ch < 127 for ch in text):
        return text.decode("ascii")
    return f"{len(val)} bytes"

def _disjoint(fields: list[Field], errors: list[str]) -> list[Field]:
    """Drop fields that overlap an earlier one (only hostile input produces them)."""
    out: list[Field] = []
    taken: list[Extent] = []
    for f in fields:
        if any(e.offset < t.end and t.offset < e.end for e in f.extents for t in taken):
            errors.append(f"field {f.name} overlaps another structure; dropped")
            continue
        out.append(f)
        taken.extend(f.extents)
    return out

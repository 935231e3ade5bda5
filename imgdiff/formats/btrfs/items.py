"""Leaf item payloads: one decoder per item key type, turning a payload into named fields at absolute offsets.

``DECODERS`` maps a key type (``BTRFS_INODE_ITEM_KEY``, ...) to a decoder; a decoder gets the payload bytes, the
absolute offset of the payload and the item key, and returns the node kind (``btrfs.inode_item``), the fields and
any :class:`~imgdiff.model.Derived` declarations.  Every payload byte ends up in exactly one field: bytes after the
structure a decoder knows become ``trailing``.  Field names are the kernel's member names; variable-length parts
are numbered (``ref[1].name``, ``stripe[0].dev_uuid``, ``csum[3]``).

Checksum items (EXTENT_CSUM in the csum tree) hold one checksum per data sector starting at logical ``key.offset``:
each run of checksums is declared derived from the data sectors it covers.

References:
    include/uapi/linux/btrfs_tree.h (the payload structures and BTRFS_*_KEY)
    fs/btrfs/accessors.h, fs/btrfs/print-tree.c, btrfs-progs kernel-shared/print-tree.c (how dump-tree shows them)
    https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imgdiff.formats.btrfs.blocks import Key
from imgdiff.formats.btrfs.c_btrfs import (
    BLOCK_GROUP_NAMES,
    BTRFS_BLOCK_GROUP_ITEM,
    BTRFS_BLOCK_GROUP_ITEM_KEY,
    BTRFS_CHUNK,
    BTRFS_CHUNK_ITEM_KEY,
    BTRFS_DEV_EXTENT,
    BTRFS_DEV_EXTENT_KEY,
    BTRFS_DEV_ITEM,
    BTRFS_DEV_ITEM_KEY,
    BTRFS_DIR_INDEX_KEY,
    BTRFS_DIR_ITEM,
    BTRFS_DIR_ITEM_KEY,
    BTRFS_EXTENT_CSUM_KEY,
    BTRFS_EXTENT_DATA_KEY,
    BTRFS_EXTENT_DATA_REF,
    BTRFS_EXTENT_DATA_REF_KEY,
    BTRFS_EXTENT_FLAG_TREE_BLOCK,
    BTRFS_EXTENT_ITEM,
    BTRFS_EXTENT_ITEM_KEY,
    BTRFS_EXTENT_OWNER_REF_KEY,
    BTRFS_FILE_EXTENT_INLINE,
    BTRFS_FILE_EXTENT_ITEM_HEAD,
    BTRFS_FILE_EXTENT_ITEM_REG,
    BTRFS_FREE_SPACE_BITMAP_KEY,
    BTRFS_FREE_SPACE_EXTENT_KEY,
    BTRFS_FREE_SPACE_INFO,
    BTRFS_FREE_SPACE_INFO_KEY,
    BTRFS_INODE_EXTREF,
    BTRFS_INODE_EXTREF_KEY,
    BTRFS_INODE_ITEM,
    BTRFS_INODE_ITEM_KEY,
    BTRFS_INODE_REF,
    BTRFS_INODE_REF_KEY,
    BTRFS_METADATA_ITEM_KEY,
    BTRFS_ORPHAN_ITEM_KEY,
    BTRFS_PERSISTENT_ITEM_KEY,
    BTRFS_ROOT_BACKREF_KEY,
    BTRFS_ROOT_ITEM,
    BTRFS_ROOT_ITEM_KEY,
    BTRFS_ROOT_REF,
    BTRFS_ROOT_REF_KEY,
    BTRFS_SHARED_BLOCK_REF_KEY,
    BTRFS_SHARED_DATA_REF,
    BTRFS_SHARED_DATA_REF_KEY,
    BTRFS_STRIPE,
    BTRFS_TREE_BLOCK_INFO,
    BTRFS_TREE_BLOCK_REF_KEY,
    BTRFS_UUID_KEY_RECEIVED_SUBVOL,
    BTRFS_UUID_KEY_SUBVOL,
    BTRFS_XATTR_ITEM_KEY,
    COMPRESSION_TYPES,
    EXTENT_FLAG_NAMES,
    FILE_EXTENT_TYPES,
    FT_NAMES,
    INODE_FLAG_NAMES,
    KEY_TYPE_NAMES,
    MODE_TYPES,
    OBJECTID_NAMES,
    S_IFMT,
)
from imgdiff.formats.compiled import Compiled, blob_display, blob_value
from imgdiff.model import Derived, Extent, Field, Value

C_INODE = Compiled(BTRFS_INODE_ITEM)
C_INODE_REF = Compiled(BTRFS_INODE_REF)
C_INODE_EXTREF = Compiled(BTRFS_INODE_EXTREF)
C_DIR_ITEM = Compiled(BTRFS_DIR_ITEM)
C_FE_HEAD = Compiled(BTRFS_FILE_EXTENT_ITEM_HEAD)
C_FE_REG = Compiled(BTRFS_FILE_EXTENT_ITEM_REG)
C_ROOT_ITEM = Compiled(BTRFS_ROOT_ITEM)
C_ROOT_REF = Compiled(BTRFS_ROOT_REF)
C_EXTENT_ITEM = Compiled(BTRFS_EXTENT_ITEM)
C_TREE_BLOCK_INFO = Compiled(BTRFS_TREE_BLOCK_INFO)
C_EXTENT_DATA_REF = Compiled(BTRFS_EXTENT_DATA_REF)
C_SHARED_DATA_REF = Compiled(BTRFS_SHARED_DATA_REF)
C_BLOCK_GROUP = Compiled(BTRFS_BLOCK_GROUP_ITEM)
C_FREE_SPACE_INFO = Compiled(BTRFS_FREE_SPACE_INFO)
C_DEV_EXTENT = Compiled(BTRFS_DEV_EXTENT)
C_DEV_ITEM = Compiled(BTRFS_DEV_ITEM)
C_CHUNK = Compiled(BTRFS_CHUNK)
C_STRIPE = Compiled(BTRFS_STRIPE)

MAX_ENTRIES = 4096
"""Entries decoded per packed item at most (refs, dir entries, stripes, inline back references)."""

# --------------------------------------------------------------------------------------------------------------
# value helpers


def uuid_text(raw: bytes) -> str:
    """Return the canonical text of a btrfs UUID (stored in RFC 4122 byte order)."""
    return str(uuid.UUID(bytes=bytes(raw)))


def time_text(sec: int) -> str | None:
    """Return ``YYYY-MM-DDTHH:MM:SSZ`` of a UTC second count, or None when out of range."""
    if sec >= 1 << 63:
        sec -= 1 << 64
    try:
        return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def flags_text(value: int, names: dict[int, str]) -> str:
    """Return ``A|B|0x40`` for a flag word (``none`` when zero)."""
    out = [n for bit, n in names.items() if value & bit]
    rest = value & ~sum(names)
    if rest:
        out.append(f"0x{rest:x}")
    return "|".join(out) if out else "none"


def objectid_text(obj: int) -> str:
    """Return the dump-tree name of a well-known objectid, else the number."""
    return OBJECTID_NAMES.get(obj, str(obj))


def key_type_text(t: int) -> str:
    """Return the name of an item key type (``INODE_ITEM``), else the number."""
    return KEY_TYPE_NAMES.get(t, f"UNKNOWN.{t}")


def key_objectid_text(obj: int, t: int) -> str:
    """Return a key's objectid as dump-tree prints it, which depends on the key type (print_objectid)."""
    if t == BTRFS_DEV_EXTENT_KEY:
        return str(obj)
    if t == BTRFS_DEV_ITEM_KEY and obj == 1:
        return "DEV_ITEMS"
    if t == BTRFS_CHUNK_ITEM_KEY and obj == 256:
        return "FIRST_CHUNK_TREE"
    if t in (BTRFS_EXTENT_ITEM_KEY, BTRFS_METADATA_ITEM_KEY, BTRFS_BLOCK_GROUP_ITEM_KEY,
             BTRFS_FREE_SPACE_INFO_KEY, BTRFS_FREE_SPACE_EXTENT_KEY, BTRFS_FREE_SPACE_BITMAP_KEY):
        return str(obj)
    return objectid_text(obj)


def key_text(key: Key) -> str:
    """Return a key as dump-tree prints it: ``(FS_TREE ROOT_ITEM 0)``, ``(DEV_ITEMS DEV_ITEM 1)``."""
    obj, t, off = key
    if t == BTRFS_UUID_KEY_SUBVOL or t == BTRFS_UUID_KEY_RECEIVED_SUBVOL:
        return f"(0x{obj:016x} {key_type_text(t)} 0x{off:016x})"
    return f"({key_objectid_text(obj, t)} {key_type_text(t)} {off})"


def mode_text(mode: int) -> str:
    """Return ``reg 0644`` for an inode mode."""
    return f"{MODE_TYPES.get(mode & S_IFMT, 'unknown')} {mode & 0o7777:04o}"


def name_text(raw: bytes) -> str:
    """Return a file name as text (undecodable bytes escaped)."""
    return bytes(raw).decode("utf-8", errors="backslashreplace")


_TIME_DISPLAY: dict[str, Callable[[Any], str | None]] = {
    f"{t}.sec": time_text for t in ("atime", "ctime", "mtime", "otime", "stime", "rtime")
}
_INODE_DISPLAY: dict[str, Callable[[Any], str | None]] = {
    **_TIME_DISPLAY,
    "mode": mode_text,
    "flags": lambda v: flags_text(v, INODE_FLAG_NAMES),
}
_ROOT_DISPLAY: dict[str, Callable[[Any], str | None]] = {
    **{f"inode.{k}": v for k, v in _INODE_DISPLAY.items()},
    **_TIME_DISPLAY,
    "drop_progress.type": key_type_text,
}
_UUID_DECODE: dict[str, Callable[[Any], Value]] = {
    n: uuid_text for n in ("uuid", "parent_uuid", "received_uuid", "fsid", "chunk_tree_uuid", "dev_uuid")
}
_KEY_DISPLAY: dict[str, Callable[[Any], str | None]] = {
    "location.objectid": objectid_text,
    "location.type": key_type_text,
}

# --------------------------------------------------------------------------------------------------------------
# the decoders


@dataclass(slots=True)
class ItemContext:
    """What payload decoders need beyond the payload: geometry and the logical -> physical map of data."""

    sectorsize: int
    csum_size: int
    data_extents: Callable[[int, int], tuple[Extent, ...]]
    """``(logical, length)`` -> absolute physical extents of the first copy (empty when unmapped)."""
    differs: Callable[[Extent], bool]


@dataclass(slots=True)
class Decoded:
    """A decoded payload: the node kind, its fields (absolute extents), derived fields and extra attributes."""

    kind: str
    fields: list[Field] = field(default_factory=list)
    derived: list[Derived] = field(default_factory=list)
    attrs: dict[str, Value] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


Decoder = Callable[[ItemContext, bytes, int, Key], Decoded]


def _fields(comp: Compiled, data: bytes, pos: int, base: int, out: Decoded, prefix: str = "",
            display: dict[str, Callable[[Any], str | None]] | None = None,
            decode: dict[str, Callable[[Any], Value]] | None = None) -> int:
    """Append the fields of ``comp`` at ``data[pos:]`` (members that do not fit are left out); return the end."""
    room = len(data) - pos
    if room <= 0:
        return pos
    dec = {k: v for k, v in (decode or _UUID_DECODE).items() if k in comp._index}
    out.fields.extend(comp.fields(data, pos, base + pos, limit=room, prefix=prefix, display=display, decode=dec))
    end = pos + min(room, comp.size)
    if room < comp.size:
        # members cut by the end of the payload: whatever bytes remain become part of the trailing field
        last = max((f.extents[0].end for f in out.fields if f.name.startswith(prefix)), default=base + pos)
        return last - base
    return end


def _blob_field(name: str, data: bytes, pos: int, end: int, base: int) -> Field:
    raw = data[pos:end]
    return Field(name, blob_value(raw), (Extent(base + pos, end - pos),), blob_display(raw))


def _trailing(data: bytes, pos: int, base: int, out: Decoded) -> None:
    if pos < len(data):
        out.fields.append(_blob_field("trailing", data, pos, len(data), base))


def _name_field(name: str, data: bytes, pos: int, n: int, base: int) -> Field:
    raw = data[pos : pos + n]
    return Field(name, name_text(raw), (Extent(base + pos, len(raw)),))


def dec_inode_item(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """INODE_ITEM: ``struct btrfs_inode_item``."""
    out = Decoded("btrfs.inode_item")
    pos = _fields(C_INODE, data, 0, base, out, display=_INODE_DISPLAY)
    if len(data) >= C_INODE.size:
        out.attrs["file_type"] = MODE_TYPES.get(C_INODE.unpack(data)["mode"] & S_IFMT, "unknown")
    else:
        out.errors.append(f"inode item of {len(data)} bytes is shorter than {C_INODE.size}")
    _trailing(data, pos, base, out)
    return out


def dec_inode_ref(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """INODE_REF: packed ``struct btrfs_inode_ref`` + name, one per name in the parent ``key.offset``."""
    out = Decoded("btrfs.inode_ref")
    pos = 0
    i = 0
    names: list[str] = []
    while pos + C_INODE_REF.size <= len(data) and i < MAX_ENTRIES:
        prefix = f"ref[{i}]." if i else ""
        v = C_INODE_REF.unpack(data, pos)
        _fields(C_INODE_REF, data, pos, base, out, prefix=prefix)
        pos += C_INODE_REF.size
        f = _name_field(prefix + "name", data, pos, v["name_len"], base)
        out.fields.append(f)
        names.append(str(f.value))
        pos += f.size
        i += 1
    out.attrs["names"] = tuple(names)
    _trailing(data, pos, base, out)
    return out


def dec_inode_extref(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """INODE_EXTREF: packed ``struct btrfs_inode_extref`` + name (refs keyed by a hash of parent and name)."""
    out = Decoded("btrfs.inode_extref")
    pos = 0
    i = 0
    while pos + C_INODE_EXTREF.size <= len(data) and i < MAX_ENTRIES:
        prefix = f"ref[{i}]." if i else ""
        v = C_INODE_EXTREF.unpack(data, pos)
        _fields(C_INODE_EXTREF, data, pos, base, out, prefix=prefix)
        pos += C_INODE_EXTREF.size
        f = _name_field(prefix + "name", data, pos, v["name_len"], base)
        out.fields.append(f)
        pos += f.size
        i += 1
    _trailing(data, pos, base, out)
    return out


def dir_entries(data: bytes) -> list[tuple[int, dict[str, Any], bytes, bytes]]:
    """Return ``(offset, header, name, data)`` of each ``struct btrfs_dir_item`` packed in a payload."""
    out: list[tuple[int, dict[str, Any], bytes, bytes]] = []
    pos = 0
    while pos + C_DIR_ITEM.size <= len(data) and len(out) < MAX_ENTRIES:
        v = C_DIR_ITEM.unpack(data, pos)
        n0 = pos + C_DIR_ITEM.size
        name = data[n0 : n0 + v["name_len"]]
        val = data[n0 + v["name_len"] : n0 + v["name_len"] + v["data_len"]]
        out.append((pos, v, name, val))
        pos = n0 + v["name_len"] + v["data_len"]
    return out


def dec_dir_item(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """DIR_ITEM / DIR_INDEX / XATTR_ITEM: packed ``struct btrfs_dir_item`` + name (+ xattr value)."""
    xattr = key[1] == BTRFS_XATTR_ITEM_KEY
    out = Decoded("btrfs.xattr_item" if xattr else "btrfs.dir_item")
    pos = 0
    names: list[str] = []
    for i, (p, v, name, val) in enumerate(dir_entries(data)):
        prefix = f"entry[{i}]." if i else ""
        _fields(C_DIR_ITEM, data, p, base, out, prefix=prefix,
                display={**_KEY_DISPLAY, "type": lambda t: FT_NAMES.get(t & 0x7F, str(t))})
        n0 = p + C_DIR_ITEM.size
        out.fields.append(Field(prefix + "name", name_text(name), (Extent(base + n0, len(name)),)))
        names.append(name_text(name))
        if v["data_len"]:
            out.fields.append(Field(prefix + "data", blob_value(val), (Extent(base + n0 + len(name), len(val)),),
                                    _value_display(val)))
        pos = n0 + len(name) + len(val)
        if i == 0:
            out.attrs["entry_type"] = FT_NAMES.get(v["type"] & 0x7F, str(v["type"]))
    out.attrs["names"] = tuple(names)
    _trailing(data, pos, base, out)
    return out


def _value_display(val: bytes) -> str | None:
    text = bytes(val).rstrip(b"\0")
    if text and all(32 <= ch < 127 for ch in text):
        return text.decode("ascii")
    return f"{len(val)} bytes"


def dec_file_extent(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """EXTENT_DATA: ``struct btrfs_file_extent_item``; inline data follows ``type``, else the disk extent."""
    out = Decoded("btrfs.file_extent_item")
    disp: dict[str, Callable[[Any], str | None]] = {
        "type": lambda t: FILE_EXTENT_TYPES.get(t, str(t)),
        "compression": lambda t: COMPRESSION_TYPES.get(t, str(t)),
    }
    pos = _fields(C_FE_HEAD, data, 0, base, out, display=disp)
    if len(data) < C_FE_HEAD.size:
        out.errors.append("file extent item is too short")
        _trailing(data, pos, base, out)
        return out
    head = C_FE_HEAD.unpack(data)
    out.attrs["extent_type"] = FILE_EXTENT_TYPES.get(head["type"], str(head["type"]))
    if head["type"] == BTRFS_FILE_EXTENT_INLINE:
        raw = data[pos:]
        plain = head["compression"] == 0 and head["encryption"] == 0
        name = "data" if plain else "compressed_data"
        out.fields.append(Field(name, blob_value(raw), (Extent(base + pos, len(raw)),), blob_display(raw)))
        out.attrs["inline"] = True
        if plain:
            out.attrs["content"] = True
        return out
    pos = _fields(C_FE_REG, data, pos, base, out)
    _trailing(data, pos, base, out)
    return out



def dec_root_ref(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """ROOT_REF / ROOT_BACKREF: ``struct btrfs_root_ref`` + name."""
    out = Decoded("btrfs.root_ref")
    pos = _fields(C_ROOT_REF, data, 0, base, out)
    if len(data) >= C_ROOT_REF.size:
        f = _name_field("name", data, pos, C_ROOT_REF.unpack(data)["name_len"], base)
        out.fields.append(f)
        pos += f.size
    _trailing(data, pos, base, out)
    return out


_INLINE_REF_SIZES = {
    BTRFS_TREE_BLOCK_REF_KEY: 8,
    BTRFS_SHARED_BLOCK_REF_KEY: 8,
    BTRFS_EXTENT_DATA_REF_KEY: C_EXTENT_DATA_REF.size,
    BTRFS_SHARED_DATA_REF_KEY: 8 + C_SHARED_DATA_REF.size,
    BTRFS_EXTENT_OWNER_REF_KEY: 8,
}


def dec_extent_item(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """EXTENT_ITEM / METADATA_ITEM: ``struct btrfs_extent_item`` and its inline back references."""
    out = Decoded("btrfs.extent_item")
    pos = _fields(C_EXTENT_ITEM, data, 0, base, out, display={"flags": lambda v: flags_text(v, EXTENT_FLAG_NAMES)})
    if len(data) < C_EXTENT_ITEM.size:
        _trailing(data, pos, base, out)
        return out
    flags = C_EXTENT_ITEM.unpack(data)["flags"]
    if key[1] == BTRFS_EXTENT_ITEM_KEY and flags & BTRFS_EXTENT_FLAG_TREE_BLOCK:
        pos = _fields(C_TREE_BLOCK_INFO, data, pos, base, out, prefix="tree_block.")
    i = 0
    while pos < len(data) and i < MAX_ENTRIES:
        rtype = data[pos]
        size = _INLINE_REF_SIZES.get(rtype)
        if size is None or pos + 1 + size > len(data):
            break
        prefix = f"ref[{i}]."
        out.fields.append(Field.at(prefix + "type", rtype, base + pos, 1, key_type_text(rtype)))
        body = pos + 1
        if rtype == BTRFS_EXTENT_DATA_REF_KEY:
            _fields(C_EXTENT_DATA_REF, data, body, base, out, prefix=prefix,
                    display={"root": objectid_text})
        elif rtype == BTRFS_SHARED_DATA_REF_KEY:
            out.fields.append(Field.at(prefix + "offset", struct.unpack_from("<Q", data, body)[0], base + body, 8))
            _fields(C_SHARED_DATA_REF, data, body + 8, base, out, prefix=prefix)
        else:
            v = struct.unpack_from("<Q", data, body)[0]
            disp = objectid_text(v) if rtype in (BTRFS_TREE_BLOCK_REF_KEY, BTRFS_EXTENT_OWNER_REF_KEY) else None
            out.fields.append(Field.at(prefix + "offset", v, base + body, 8, disp))
        pos = body + size
        i += 1
    _trailing(data, pos, base, out)
    return out




def dec_fixed(kind: str, compiled: Compiled, display: dict[str, Callable[[Any], str | None]] | None = None) -> Decoder:
    """Return a decoder for items that are one fixed structure (``compiled``), any bytes after it trailing."""

    def dec(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
        out = Decoded(kind)
        _trailing(data, _fields(compiled, data, 0, base, out, display=display), base, out)
        return out

    return dec


def dec_empty(kind: str) -> Decoder:
    """Return a decoder for items whose key says everything (the payload is normally empty)."""

    def dec(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
        out = Decoded(kind)
        _trailing(data, 0, base, out)
        return out

    return dec




def dec_free_space_bitmap(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """FREE_SPACE_BITMAP: one bit per sector of ``[key.objectid, + key.offset)``."""
    out = Decoded("btrfs.free_space_bitmap")
    if data:
        out.fields.append(_blob_field("bitmap", data, 0, len(data), base))
    return out



def dec_dev_item(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """DEV_ITEM: ``struct btrfs_dev_item``."""
    out = Decoded("btrfs.dev_item")
    pos = _fields(C_DEV_ITEM, data, 0, base, out)
    out.derived.append(Derived("fsid", seeds=("btrfs.superblock:fsid",)))  # the device's copy of the fsid
    _trailing(data, pos, base, out)
    return out


def chunk_fields(data: bytes, pos: int, base: int, out: Decoded, prefix: str = "") -> int:
    """Append the fields of a ``struct btrfs_chunk`` and its stripes at ``data[pos:]``; return the end offset."""
    end = _fields(C_CHUNK, data, pos, base, out, prefix=prefix,
                  display={"type": lambda v: flags_text(v, BLOCK_GROUP_NAMES), "owner": objectid_text})
    if pos + C_CHUNK.size > len(data):
        return end
    n = C_CHUNK.unpack(data, pos)["num_stripes"]
    p = pos + C_CHUNK.size
    for i in range(min(n, MAX_ENTRIES)):
        if p + C_STRIPE.size > len(data):
            out.errors.append(f"chunk stripe {i} is cut off")
            break
        _fields(C_STRIPE, data, p, base, out, prefix=f"{prefix}stripe[{i}].")
        p += C_STRIPE.size
    return p


def dec_chunk(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """CHUNK_ITEM: ``struct btrfs_chunk`` with ``num_stripes`` ``struct btrfs_stripe``."""
    out = Decoded("btrfs.chunk_item")
    pos = chunk_fields(data, 0, base, out)
    _trailing(data, pos, base, out)
    return out


def dec_csum(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """EXTENT_CSUM: one checksum per data sector from logical ``key.offset`` on, each derived from its sector.

    Checksums whose bytes differ get a field each (``csum[k]``); runs of equal ones are one field
    (``csum[a:b]``), derived from the data sectors of the run.
    """
    out = Decoded("btrfs.csum_item")
    cs = ctx.csum_size
    n = len(data) // cs if cs else 0
    start = key[2]
    i = 0
    while i < n:
        j = i + 1
        if ctx.differs(Extent(base + i * cs, cs)):
            name = f"csum[{i}]"
        else:
            while j < n and not ctx.differs(Extent(base + j * cs, cs)):
                j += 1
            name = f"csum[{i}]" if j == i + 1 else f"csum[{i}:{j}]"
        raw = data[i * cs : j * cs]
        out.fields.append(Field(name, blob_value(raw), (Extent(base + i * cs, (j - i) * cs),)))
        covers = ctx.data_extents(start + i * ctx.sectorsize, (j - i) * ctx.sectorsize)
        out.derived.append(Derived(name, covers=covers))
        i = j
    _trailing(data, n * cs, base, out)
    return out


def dec_uuid_item(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """UUID_KEY_SUBVOL / UUID_KEY_RECEIVED_SUBVOL: the subvolume ids carrying the UUID in the key."""
    out = Decoded("btrfs.uuid_item")
    n = min(len(data) // 8, MAX_ENTRIES)
    ids = struct.unpack_from(f"<{n}Q", data) if n else ()
    for i, v in enumerate(ids):
        out.fields.append(Field.at(f"subvol_id[{i}]", v, base + 8 * i, 8, objectid_text(v)))
    out.attrs["subvol_ids"] = tuple(ids)
    _trailing(data, 8 * n, base, out)
    return out


def dec_persistent(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """PERSISTENT_ITEM (device statistics): an array of u64 counters."""
    out = Decoded("btrfs.dev_stats_item")
    n = min(len(data) // 8, MAX_ENTRIES)
    for i in range(n):
        out.fields.append(Field.at(f"values[{i}]", struct.unpack_from("<Q", data, 8 * i)[0], base + 8 * i, 8))
    _trailing(data, 8 * n, base, out)
    return out


def dec_generic(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """Any other item: the payload as one field."""
    out = Decoded("btrfs.item")
    if data:
        out.fields.append(_blob_field("payload", data, 0, len(data), base))
    return out


DECODERS: dict[int, Decoder] = {
    BTRFS_INODE_ITEM_KEY: dec_inode_item,
    BTRFS_INODE_REF_KEY: dec_inode_ref,
    BTRFS_INODE_EXTREF_KEY: dec_inode_extref,
    BTRFS_XATTR_ITEM_KEY: dec_dir_item,
    BTRFS_ORPHAN_ITEM_KEY: dec_empty("btrfs.orphan_item"),
    BTRFS_DIR_ITEM_KEY: dec_dir_item,
    BTRFS_DIR_INDEX_KEY: dec_dir_item,
    BTRFS_EXTENT_DATA_KEY: dec_file_extent,
    BTRFS_EXTENT_CSUM_KEY: dec_csum,
    BTRFS_ROOT_ITEM_KEY: dec_fixed("btrfs.root_item", C_ROOT_ITEM, _ROOT_DISPLAY),  # 439 bytes, 239 legacy
    BTRFS_ROOT_BACKREF_KEY: dec_root_ref,
    BTRFS_ROOT_REF_KEY: dec_root_ref,
    BTRFS_EXTENT_ITEM_KEY: dec_extent_item,
    BTRFS_METADATA_ITEM_KEY: dec_extent_item,
    BTRFS_TREE_BLOCK_REF_KEY: dec_empty("btrfs.tree_block_ref"),
    BTRFS_SHARED_BLOCK_REF_KEY: dec_empty("btrfs.shared_block_ref"),
    BTRFS_EXTENT_DATA_REF_KEY: dec_fixed("btrfs.extent_data_ref", C_EXTENT_DATA_REF, {"root": objectid_text}),
    BTRFS_SHARED_DATA_REF_KEY: dec_fixed("btrfs.shared_data_ref", C_SHARED_DATA_REF),
    BTRFS_BLOCK_GROUP_ITEM_KEY: dec_fixed("btrfs.block_group_item", C_BLOCK_GROUP,
                                          {"flags": lambda v: flags_text(v, BLOCK_GROUP_NAMES)}),
    BTRFS_FREE_SPACE_INFO_KEY: dec_fixed("btrfs.free_space_info", C_FREE_SPACE_INFO),
    BTRFS_FREE_SPACE_EXTENT_KEY: dec_empty("btrfs.free_space_extent"),
    BTRFS_FREE_SPACE_BITMAP_KEY: dec_free_space_bitmap,
    BTRFS_DEV_EXTENT_KEY: dec_fixed("btrfs.dev_extent", C_DEV_EXTENT, {"chunk_tree": objectid_text}),
    BTRFS_DEV_ITEM_KEY: dec_dev_item,
    BTRFS_CHUNK_ITEM_KEY: dec_chunk,
    BTRFS_PERSISTENT_ITEM_KEY: dec_persistent,
    BTRFS_UUID_KEY_SUBVOL: dec_uuid_item,
    BTRFS_UUID_KEY_RECEIVED_SUBVOL: dec_uuid_item,
}
"""Item key type -> payload decoder; types not listed use :func:`dec_generic`."""


def decode(ctx: ItemContext, data: bytes, base: int, key: Key) -> Decoded:
    """Decode one item payload with the decoder of its key type."""
    return DECODERS.get(key[1], dec_generic)(ctx, data, base, key)

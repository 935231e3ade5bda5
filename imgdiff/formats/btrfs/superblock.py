"""The btrfs superblock (64 KiB into the device) and its mirrors (64 MiB, 256 GiB), with the system chunk array.

The primary superblock is parsed field by field, ``sys_chunk_array`` entry by entry (a key, a ``struct
btrfs_chunk`` and its stripes each: the chunks that hold the chunk tree) and ``super_roots`` (the four backup
root sets) member by member.  A mirror is a copy of the primary written at the same transaction: its fields are
declared :class:`~imgdiff.model.Derived` from the primary's same-named field (only ``bytenr``, its own location,
and ``csum`` legitimately differ from the primary).  ``csum`` covers bytes 32..4095 of its own copy.

References:
    include/uapi/linux/btrfs_tree.h (struct btrfs_super_block, btrfs_dev_item, btrfs_root_backup)
    fs/btrfs/disk-io.c (btrfs_sb_offset, write_all_supers), fs/btrfs/volumes.c (btrfs_read_sys_array)
    https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (Superblock)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from imgdiff.errors import ParseError
from imgdiff.formats.btrfs.blocks import Key
from imgdiff.formats.btrfs.c_btrfs import (
    BTRFS_CHUNK_ITEM_KEY,
    BTRFS_CSUM_SIZE,
    BTRFS_DISK_KEY,
    BTRFS_MAGIC,
    BTRFS_SUPER_BLOCK,
    BTRFS_SUPER_INFO_OFFSET,
    BTRFS_SUPER_INFO_SIZE,
    BTRFS_SYSTEM_CHUNK_ARRAY_SIZE,
    COMPAT_RO_NAMES,
    CSUM_TYPES,
    INCOMPAT_NAMES,
    SUPER_FLAG_NAMES,
)
from imgdiff.formats.btrfs.chunks import Chunk, Stripe
from imgdiff.formats.btrfs.items import (
    C_CHUNK,
    C_STRIPE,
    Decoded,
    chunk_fields,
    flags_text,
    key_type_text,
    objectid_text,
    uuid_text,
)
from imgdiff.formats.compiled import Compiled, blob_display, blob_value
from imgdiff.model import Derived, Extent, Field, Node, Value

C_SB = Compiled(BTRFS_SUPER_BLOCK)
C_DISK_KEY = Compiled(BTRFS_DISK_KEY)
SYS_ARRAY_OFFSET = C_SB.offset("sys_chunk_array")

_SB_DECODE: dict[str, Any] = {
    "fsid": uuid_text,
    "metadata_uuid": uuid_text,
    "dev_item.uuid": uuid_text,
    "dev_item.fsid": uuid_text,
    "label": lambda raw: bytes(raw).split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace"),
    "magic": bytes,
}
_SB_DISPLAY: dict[str, Any] = {
    "flags": lambda v: flags_text(v, SUPER_FLAG_NAMES),
    "compat_ro_flags": lambda v: flags_text(v, COMPAT_RO_NAMES),
    "incompat_flags": lambda v: flags_text(v, INCOMPAT_NAMES),
    "csum_type": lambda v: CSUM_TYPES.get(v, (str(v), 0))[0],
    "root_dir_objectid": objectid_text,
}


def read_super(raw: bytes) -> dict[str, Any]:
    """Return the primary superblock's members; raises ParseError naming the field that makes it unusable."""
    if len(raw) < BTRFS_SUPER_INFO_SIZE:
        raise ParseError("btrfs superblock is truncated", BTRFS_SUPER_INFO_OFFSET)
    sb = C_SB.unpack(raw)
    if sb["magic"] != BTRFS_MAGIC:
        raise ParseError("btrfs superblock magic is wrong", BTRFS_SUPER_INFO_OFFSET + C_SB.offset("magic"), "magic")
    ss, ns = sb["sectorsize"], sb["nodesize"]
    if ss < 4096 or ss > 65536 or ss & (ss - 1):
        raise ParseError(f"sectorsize {ss} is not a power of two in 4 KiB..64 KiB", None, "sectorsize")
    if ns < ss or ns > 65536 or ns & (ns - 1):
        raise ParseError(f"nodesize {ns} is not a power of two in sectorsize..64 KiB", None, "nodesize")
    if sb["csum_type"] not in CSUM_TYPES:
        raise ParseError(f"unknown csum_type {sb['csum_type']}", None, "csum_type")
    if sb["sys_chunk_array_size"] > BTRFS_SYSTEM_CHUNK_ARRAY_SIZE:
        raise ParseError("sys_chunk_array_size is larger than the array", None, "sys_chunk_array_size")
    return sb


def sys_chunks(raw: bytes, errors: list[str]) -> list[tuple[Key, Chunk]]:
    """Return the (key, chunk) entries of the superblock's ``sys_chunk_array``."""
    arr_size = struct.unpack_from("<I", raw, C_SB.offset("sys_chunk_array_size"))[0]
    arr = raw[SYS_ARRAY_OFFSET : SYS_ARRAY_OFFSET + min(arr_size, BTRFS_SYSTEM_CHUNK_ARRAY_SIZE)]
    out: list[tuple[Key, Chunk]] = []
    pos = 0
    while pos + C_DISK_KEY.size + C_CHUNK.size <= len(arr):
        k = C_DISK_KEY.unpack(arr, pos)
        key = (k["objectid"], k["type"], k["offset"])
        pos += C_DISK_KEY.size
        if key[1] != BTRFS_CHUNK_ITEM_KEY:
            errors.append(f"sys_chunk_array: unexpected key type {key[1]}")
            break
        ch = C_CHUNK.unpack(arr, pos)
        pos += C_CHUNK.size
        n = ch["num_stripes"]
        if n == 0 or pos + n * C_STRIPE.size > len(arr):
            errors.append("sys_chunk_array: chunk stripes are cut off")
            break
        stripes = []
        for _ in range(n):
            s = C_STRIPE.unpack(arr, pos)
            stripes.append(Stripe(s["devid"], s["offset"], bytes(s["dev_uuid"])))
            pos += C_STRIPE.size
        out.append((key, Chunk(key[2], ch["length"], ch["type"], ch["stripe_len"], ch["sub_stripes"],
                               tuple(stripes))))
    return out


Unused = Callable[[str, list[tuple[Extent, bytes]], int], tuple[list[Field], list[Derived]]]
"""Splits unused bytes into fields (stale identifier copies named apart): the parser's ``_unused_fields``."""


def super_fields(raw: bytes, absoff: int, errors: list[str],
                 unused: Unused | None = None) -> tuple[list[Field], list[Derived]]:
    """Return every field of a superblock copy at absolute ``absoff`` (the system chunk array entry by entry)."""
    fields = C_SB.fields(raw, 0, absoff, skip=("sys_chunk_array",), decode=_SB_DECODE, display=_SB_DISPLAY)
    more, derived = _sys_array_fields(raw, absoff, errors, unused)
    fields.extend(more)
    return fields, derived


def _sys_array_fields(raw: bytes, absoff: int, errors: list[str],
                      unused: Unused | None) -> tuple[list[Field], list[Derived]]:
    arr_size = min(struct.unpack_from("<I", raw, C_SB.offset("sys_chunk_array_size"))[0],
                   BTRFS_SYSTEM_CHUNK_ARRAY_SIZE)
    arr = raw[SYS_ARRAY_OFFSET : SYS_ARRAY_OFFSET + arr_size]
    base = absoff + SYS_ARRAY_OFFSET
    out = Decoded("btrfs.superblock")
    pos = 0
    i = 0
    while pos + C_DISK_KEY.size + C_CHUNK.size <= len(arr):
        prefix = f"sys_chunk_array[{i}]."
        out.fields.extend(C_DISK_KEY.fields(arr, pos, base + pos, prefix=prefix + "key.",
                                            display={"objectid": objectid_text, "type": key_type_text}))
        pos = chunk_fields(arr, pos + C_DISK_KEY.size, base, out, prefix=prefix)
        i += 1
    errors.extend(out.errors)
    end = min(pos, len(arr))
    derived: list[Derived] = []
    if end < BTRFS_SYSTEM_CHUNK_ARRAY_SIZE:
        rest = raw[SYS_ARRAY_OFFSET + end : SYS_ARRAY_OFFSET + BTRFS_SYSTEM_CHUNK_ARRAY_SIZE]
        ext = Extent(base + end, BTRFS_SYSTEM_CHUNK_ARRAY_SIZE - end)
        if unused is not None:
            more, derived = unused("sys_chunk_array.unused", [(ext, rest)], absoff)
            out.fields.extend(more)
        else:
            out.fields.append(Field("sys_chunk_array.unused", blob_value(rest), (ext,), blob_display(rest)))
    return out.fields, derived


def super_node(raw: bytes, absoff: int, mirror: int, primary: list[Field] | None, errors: list[str],
               unused: Unused | None = None) -> Node:
    """Return the node of superblock copy ``mirror`` (0 = primary) at absolute ``absoff``.

    ``primary`` (for a mirror) are the primary's fields: each mirror field is declared a copy of the same-named one.
    """
    errs: list[str] = []
    fields, id_copies = super_fields(raw, absoff, errs, unused)
    if raw[C_SB.offset("magic") : C_SB.offset("magic") + 8] != BTRFS_MAGIC:
        errs.append(f"superblock mirror {mirror} has no magic")
    derived: list[Derived] = [
        Derived("csum", covers=(Extent(absoff + BTRFS_CSUM_SIZE, BTRFS_SUPER_INFO_SIZE - BTRFS_CSUM_SIZE),)),
        Derived("dev_item.fsid", seeds=("btrfs.superblock:fsid",)),  # the device item's copy of the fsid
        *id_copies,
    ]
    if primary is not None:
        by_name = {f.name: f.extents for f in primary}
        derived = [Derived(f.name, covers=by_name[f.name]) for f in fields if f.name in by_name]
    attrs: dict[str, Value] = {"mirror": mirror, "backup": mirror != 0}
    errors.extend(errs)
    return Node(
        kind="btrfs.superblock",
        key="superblock" if mirror == 0 else f"superblock@mirror:{mirror}",
        label="superblock" if mirror == 0 else f"superblock mirror {mirror}",
        extents=(Extent(absoff, BTRFS_SUPER_INFO_SIZE),),
        fields=tuple(fields),
        derived=tuple(derived),
        attrs=attrs,
        errors=errs,
    )

"""External extended-attribute blocks (shared by every inode whose ``i_file_acl`` points to them)."""

from __future__ import annotations

import struct

from imgdiff.formats.ext4.c_ext4 import EXT4_XATTR_MAGIC
from imgdiff.formats.ext4.common import C_XH, _fkey, _gap_fields, _reader
from imgdiff.formats.ext4.inodes import xattr_fields
from imgdiff.formats.ext4.volume import Volume
from imgdiff.model import Derived, Extent, Node, merge_extents, subtract_extents


def xattrs_node(vol: Volume) -> Node:
    exts = merge_extents(Extent(vol.abs(b), vol.bs) for b in vol.xattr_owners)
    node = Node(kind="ext4.xattr_blocks", key="xattrs", label="extended attribute blocks", extents=exts)
    by_key = {vol.key_of(owners[0]): blk for blk, owners in vol.xattr_owners.items()}

    def build(key: str) -> Node | None:
        blk = by_key.get(key)
        return xattr_block_node(vol, blk) if blk is not None else None

    vol.lazy(node, build)
    return node

def xattr_block_node(vol: Volume, blk: int) -> Node:
    data = vol.read(blk * vol.bs, vol.bs)
    a = vol.abs(blk)
    errors: list[str] = []
    fields = C_XH.fields(data, 0, a, decode={"h_reserved": tuple})
    if struct.unpack_from("<I", data)[0] == EXT4_XATTR_MAGIC:
        fields.extend(xattr_fields(vol, data, 32, 0, vol.bs, a, errors))
    else:
        errors.append(f"xattr block {blk}: bad h_magic")
    _gap_fields(fields, a, a + vol.bs, "unused", _reader(data, a))
    owners = vol.xattr_owners[blk]
    attrs = vol.path_attrs(owners[0])
    attrs["owners"] = tuple(vol.key_of(o) for o in owners)
    derived: tuple[Derived, ...] = ()
    if vol.csum:
        co, _ = C_XH.span("h_checksum")
        derived = (Derived("h_checksum", covers=tuple(subtract_extents(Extent(a, vol.bs), [Extent(a + co, 4)])),
                           seeds=vol.seeds),)
    return Node(kind="ext4.xattr_block", key=vol.key_of(owners[0]), label=f"xattr block of {vol.key_of(owners[0])}",
                extents=(Extent(a, vol.bs),), fields=tuple(sorted(fields, key=_fkey)), derived=derived,
                attrs=attrs, errors=errors)

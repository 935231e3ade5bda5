"""Extent trees (header, index and leaf entries, tail checksum) and indirect blocks as fields and nodes."""

from __future__ import annotations

import struct

from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.formats.ext4.common import _EE_DISPLAY, _EH, C_EE, C_EH, C_EI, C_ET, _fkey, _gap_fields, _reader
from imgdiff.formats.ext4.volume import InodeInfo, Volume
from imgdiff.model import Derived, Extent, Field, Node


def extent_node_fields(vol: Volume, buf: bytes, off: int, absoff: int, size: int, prefix: str) -> list[Field]:
    """Return the fields of an extent header and its entries (in ``i_block`` or an extent block)."""
    fields = C_EH.fields(buf, off, absoff, prefix=prefix)
    _magic, entries, emax, depth, _gen = _EH.unpack_from(buf, off)
    room = (size - 12) // 12
    n = min(entries, emax, room)
    for i in range(n):
        eoff = 12 + 12 * i
        if depth == 0:
            fields.extend(C_EE.fields(buf, off + eoff, absoff + eoff, prefix=f"{prefix}extent[{i}].",
                                      display=_EE_DISPLAY))
        else:
            fields.extend(C_EI.fields(buf, off + eoff, absoff + eoff, prefix=f"{prefix}index[{i}]."))
    used = 12 + 12 * n
    end = size if prefix == "i_block." else min(size, 12 + 12 * min(emax, room))
    if end > used:
        rest = buf[off + used : off + end]
        fields.append(Field(f"{prefix}unused", _blob(rest), (Extent(absoff + used, end - used),),
                            _blob_display(rest)))
    return fields

def tree_nodes(vol: Volume, info: InodeInfo, errors: list[str]) -> list[Node]:
    """Return the extent-tree / indirect block nodes of an inode."""
    out: list[Node] = []
    for blk, level, lblk, kind in info.tree:
        data = vol.read(blk * vol.bs, vol.bs)
        a = vol.abs(blk)
        if kind == "eb":
            fields = extent_node_fields(vol, data, 0, a, vol.bs, "")
            _m, _n, emax, _d, _g = _EH.unpack_from(data, 0)
            tail = 12 + 12 * emax
            derived: tuple[Derived, ...] = ()
            if vol.csum and tail + 4 <= vol.bs:
                fields.extend(C_ET.fields(data, tail, a + tail))
                derived = (Derived("eb_checksum", covers=(Extent(a, tail),),
                                   seeds=vol.seeds + ("ext4.inode:i_generation",)),)
                tail += 4
            _gap_fields(fields, a, a + vol.bs, "padding", _reader(data, a))
            out.append(Node(kind="ext4.extent_block", key=f"eb:{level}:{lblk}",
                            label=f"extent tree block (depth {level}, from block {lblk})",
                            extents=(Extent(a, vol.bs),), fields=tuple(sorted(fields, key=_fkey)),
                            derived=derived, attrs={"depth": level, "lblk": lblk, **vol.path_attrs(info.ino)}))
        else:
            words = struct.unpack_from(f"<{vol.bs // 4}I", data)
            nz = sum(1 for w in words if w)
            out.append(Node(kind="ext4.indirect_block", key=f"ind:{level}:{lblk}",
                            label=f"indirect block (level {level}, from block {lblk})",
                            extents=(Extent(a, vol.bs),),
                            fields=(Field("entries", _blob(data), (Extent(a, vol.bs),),
                                          f"{nz} block numbers"),),
                            attrs={"level": level, "lblk": lblk, **vol.path_attrs(info.ino)}))
    del errors
    return out

"""The jbd2 journal (superblock, descriptor, commit and revoke blocks, copies) and the orphan file."""

from __future__ import annotations

import struct
from typing import Any

from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.formats.ext4.c_ext4 import (
    EXT4_ORPHAN_BLOCK_MAGIC,
    JBD2_BLOCKTYPES,
    JBD2_COMMIT_BLOCK,
    JBD2_DESCRIPTOR_BLOCK,
    JBD2_FEATURE_INCOMPAT_64BIT,
    JBD2_FEATURE_INCOMPAT_CSUM_V2,
    JBD2_FEATURE_INCOMPAT_CSUM_V3,
    JBD2_FLAG_LAST_TAG,
    JBD2_FLAG_SAME_UUID,
    JBD2_MAGIC_NUMBER,
    JBD2_REVOKE_BLOCK,
)
from imgdiff.formats.ext4.common import (
    C_JCOMMIT,
    C_JH,
    C_JREVOKE,
    C_JSB,
    C_JTAG,
    C_JTAG3,
    C_OBT,
    JBD2_INCOMPAT_NAMES,
    _disjoint,
    _fkey,
    _flags_text,
    _gap_fields,
    _int_suffix,
    _reader,
    _uuid,
)
from imgdiff.formats.ext4.extents import tree_nodes
from imgdiff.formats.ext4.volume import InodeInfo, Volume
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents


def journal_lblks(vol: Volume, b0: int, b1: int) -> list[int]:
    info = vol.inodes[vol.journal_ino]
    out = vol._lblks_of(info, b0, b1)
    return [lb for lb in out if lb > 0]

def journal_node(vol: Volume) -> Node:
    info = vol.inodes[vol.journal_ino]
    errors: list[str] = list(info.errors or [])
    exts = [Extent(vol.abs(p), n * vol.bs) for _l, p, n, _u in info.runs]
    exts.extend(Extent(vol.abs(b), vol.bs) for b, _lv, _l, _k in info.tree)
    fields: list[Field] = []
    derived: tuple[Derived, ...] = ()
    jsb: dict[str, Any] = {}
    first = vol._lblk_to_pblk(info, 0)
    if first is not None:
        data = vol.read(first * vol.bs, vol.bs)
        a = vol.abs(first)
        jsb = C_JSB.unpack(data)
        fields = C_JSB.fields(data, 0, a, decode={"s_uuid": _uuid},
                              display={"h_blocktype": lambda v: JBD2_BLOCKTYPES.get(v, str(v)),
                                       "s_feature_incompat": lambda v: _flags_text(v, JBD2_INCOMPAT_NAMES)})
        if vol.bs > 1024:
            pad = data[1024:]
            fields.append(Field("padding", _blob(pad), (Extent(a + 1024, len(pad)),), _blob_display(pad)))
        if jsb["h_magic"] != JBD2_MAGIC_NUMBER:
            errors.append("journal superblock magic is wrong")
        derived = (Derived("s_uuid", seeds=("ext4.superblock:s_uuid",)),)
        if jsb["s_feature_incompat"] & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3):
            co, _ = C_JSB.span("s_checksum")
            derived += (Derived("s_checksum", covers=(Extent(a, co), Extent(a + co + 4, 1024 - co - 4))),)
    node = Node(kind="ext4.journal", key="journal", label="journal", extents=merge_extents(exts), fields=tuple(fields),
                derived=derived, attrs={**vol.path_attrs(vol.journal_ino),
                                        "maxlen": jsb.get("s_maxlen", 0), "start": jsb.get("s_start", 0)},
                errors=errors)
    node.children.extend(tree_nodes(vol, info, errors))

    def build(key: str) -> Node | None:
        if not key.startswith("jblk:"):
            return None
        n = _int_suffix(key)
        if n is None or n <= 0:
            return None
        pb = vol._lblk_to_pblk(info, n)
        return journal_block_node(vol, n, pb, jsb, info) if pb is not None else None

    vol.lazy(node, build)
    return node

def journal_block_node(vol: Volume, n: int, pblk: int, jsb: dict[str, Any], info: InodeInfo) -> Node:
    data = vol.read(pblk * vol.bs, vol.bs)
    a = vol.abs(pblk)
    fields: list[Field] = []
    attrs: dict[str, Value] = {"jblock": n}
    errors: list[str] = []
    incompat = jsb.get("s_feature_incompat", 0)
    csum = bool(incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3))
    magic, btype, seq = C_JH.struct.unpack_from(data, 0)
    derived: list[Derived] = []
    jseeds = ("ext4.journal:s_uuid",)
    tail = (Extent(a, vol.bs - 4),)
    if magic == JBD2_MAGIC_NUMBER:
        attrs["blocktype"] = JBD2_BLOCKTYPES.get(btype, str(btype))
        attrs["sequence"] = seq
        disp = {"h_blocktype": lambda v: JBD2_BLOCKTYPES.get(v, str(v))}
        if btype == JBD2_DESCRIPTOR_BLOCK:
            fields.extend(C_JH.fields(data, 0, a, display=disp))
            tags = journal_tags(vol, data, a, incompat, csum)
            fields.extend(tags)
            # Tag i describes the i-th journal block after the descriptor (the log wraps at s_maxlen).
            first, maxlen = jsb.get("s_first", 1) or 1, jsb.get("s_maxlen", 0)
            k = 0
            for f in tags:
                if f.name.endswith(".t_checksum"):
                    jb = n + 1 + k
                    if maxlen and jb >= maxlen:
                        jb = first + (jb - maxlen)
                    pb = vol._lblk_to_pblk(info, jb)
                    cov = (Extent(vol.abs(pb), vol.bs),) if pb is not None else ()
                    derived.append(Derived(f.name, covers=cov, seeds=jseeds))
                    k += 1
            if csum:
                derived.append(Derived("t_checksum", covers=tail, seeds=jseeds))
        elif btype == JBD2_COMMIT_BLOCK:
            fields.extend(C_JCOMMIT.fields(data, 0, a, display=disp, decode={"h_padding": bytes,
                                                                             "h_chksum": tuple}))
            co, cs = C_JCOMMIT.span("h_chksum")
            derived.append(Derived("h_chksum", covers=(Extent(a, co), Extent(a + co + cs, vol.bs - co - cs)),
                                   seeds=jseeds))
        elif btype == JBD2_REVOKE_BLOCK:
            fields.extend(C_JREVOKE.fields(data, 0, a, display=disp))
            r_count = struct.unpack_from(">I", data, 12)[0]
            rsize = 8 if incompat & JBD2_FEATURE_INCOMPAT_64BIT else 4
            end = min(r_count, vol.bs - (4 if csum else 0))
            if end > 16:
                recs = struct.unpack_from(f">{(end - 16) // rsize}{'Q' if rsize == 8 else 'I'}", data, 16)
                fields.append(Field("r_blocks", tuple(recs), (Extent(a + 16, len(recs) * rsize),),
                                    f"{len(recs)} revoked blocks"))
            if csum:
                fields.append(Field.at("t_checksum", struct.unpack_from(">I", data, vol.bs - 4)[0],
                                       a + vol.bs - 4, 4))
                derived.append(Derived("t_checksum", covers=tail, seeds=jseeds))
        else:
            fields.extend(C_JH.fields(data, 0, a, display=disp))
    _gap_fields(fields, a, a + vol.bs, "data" if magic != JBD2_MAGIC_NUMBER else "unused",
                _reader(data, a))
    return Node(kind="ext4.journal_block", key=f"jblk:{n}", label=f"journal block {n}",
                extents=(Extent(a, vol.bs),), fields=tuple(sorted(_disjoint(fields, errors), key=_fkey)),
                derived=tuple(derived), attrs=attrs, errors=errors)

def journal_tags(vol: Volume, data: bytes, a: int, incompat: int, csum: bool) -> list[Field]:
    fields: list[Field] = []
    end = vol.bs - (4 if csum else 0)
    if incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3:
        comp, tsize = C_JTAG3, 16
    else:
        comp = C_JTAG
        tsize = 12 if incompat & JBD2_FEATURE_INCOMPAT_64BIT else 8
    pos = 12
    i = 0
    while pos + tsize <= end and i < vol.bs // 8:
        vals = comp.unpack(data, pos)
        flags = vals["t_flags"]
        fields.extend(f for f in comp.fields(data, pos, a + pos, prefix=f"tag[{i}].")
                      if f.extents[0].end <= a + pos + tsize)
        pos += tsize
        if not flags & JBD2_FLAG_SAME_UUID and pos + 16 <= end:
            fields.append(Field(f"tag[{i}].uuid", _uuid(data[pos : pos + 16]), (Extent(a + pos, 16),)))
            pos += 16
        i += 1
        if flags & JBD2_FLAG_LAST_TAG:
            break
    if csum:
        fields.append(Field.at("t_checksum", struct.unpack_from(">I", data, vol.bs - 4)[0], a + vol.bs - 4, 4))
    return fields

def orphan_node(vol: Volume) -> Node:
    info = vol.inodes[vol.orphan_ino]
    exts = [Extent(vol.abs(p), n * vol.bs) for _l, p, n, _u in info.runs]
    exts.extend(Extent(vol.abs(b), vol.bs) for b, _lv, _l, _k in info.tree)
    errors: list[str] = list(info.errors or [])
    node = Node(kind="ext4.orphan_file", key="orphan", label="orphan file", extents=merge_extents(exts),
                attrs=vol.path_attrs(vol.orphan_ino), errors=errors)
    node.children.extend(tree_nodes(vol, info, errors))

    def build(key: str) -> Node | None:
        lb = _int_suffix(key) if key.startswith("blk:") else None
        pb = vol._lblk_to_pblk(info, lb) if lb is not None else None
        if pb is None or lb is None:
            return None
        data = vol.read(pb * vol.bs, vol.bs)
        a = vol.abs(pb)
        t = vol.bs - 8
        nent = t // 4
        words = struct.unpack_from(f"<{nent}I", data)
        fields = [Field("entries", tuple(w for w in words if w) or _blob(data[:t]), (Extent(a, t),),
                        f"{sum(1 for w in words if w)} orphan inodes")]
        fields.extend(C_OBT.fields(data, t, a + t))
        berr = [] if struct.unpack_from("<I", data, t)[0] == EXT4_ORPHAN_BLOCK_MAGIC else ["bad ob_magic"]
        derived = (Derived("ob_checksum", covers=(Extent(a, t + 4),), seeds=vol.seeds),) if vol.csum else ()
        return Node(kind="ext4.orphan_block", key=key, label=f"orphan file block {lb}",
                    extents=(Extent(a, vol.bs),), fields=tuple(fields), derived=derived,
                    attrs={"lblk": lb}, errors=berr)

    vol.lazy(node, build)
    return node

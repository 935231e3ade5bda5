"""Directories: linear and htree (dx_root, dx_node) blocks, live and deleted entries, tails."""

from __future__ import annotations

import re
import struct

from imgdiff.formats.compiled import Record
from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.formats.ext4.c_ext4 import DIRENT_FILE_TYPES, EXT4_DIR_TAIL_FT, EXT4_INDEX_FL, HASH_VERSIONS
from imgdiff.formats.ext4.common import (
    _DIRENT,
    C_DIRENT,
    C_DIRTAIL,
    C_DXCL,
    C_DXENTRY,
    C_DXINFO,
    C_DXTAIL,
    C_FAKE,
    _fkey,
    _gap_fields,
    _name,
    _reader,
)
from imgdiff.formats.ext4.extents import tree_nodes
from imgdiff.formats.ext4.volume import InodeInfo, Volume
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents


def dir_node(vol: Volume, ino: int) -> Node:
    info = vol.inodes[ino]
    dpath = vol.key_of(ino)
    errors: list[str] = list(info.errors or [])
    children: list[Node] = []
    dx = dx_blocks(vol, info, errors)
    used_keys: dict[str, int] = {}
    entry_count = 0
    # A directory built because a byte of it differs gets the entries of its differing blocks only; one looked up
    # although nothing in it differs (a browser opening it) gets every entry.
    partial = not info.inline and vol._dir_differs(info)
    for k, (off, n) in enumerate(info.inline):
        data = vol.read(off, n)
        a = vol.base + off
        extra: list[Field] = []
        if k == 0:  # i_block starts with the parent directory's inode number (the ".." entry)
            extra = [Field("parent_inode", struct.unpack_from("<I", data)[0], (Extent(a, 4),), ".. entry")]
            data, a = data[4:], a + 4
        nodes = leaf_nodes(vol, data, a, k, dpath, info, used_keys, errors, inline=True, block_fields=extra)
        entry_count += sum(1 for c in nodes if c.kind == "ext4.dirent")
        children.extend(nodes)
    for lblk, pblk, length, unwritten in info.runs:
        if unwritten:
            continue
        for k in range(length):
            lb, pb = lblk + k, pblk + k
            data = vol.read(pb * vol.bs, vol.bs)
            a = vol.abs(pb)
            if lb in dx:
                children.extend(dx_block_nodes(vol, data, a, lb, dx[lb], dpath, info, used_keys, errors))
            else:
                unbuilt = [0]
                nodes = leaf_nodes(vol, data, a, lb, dpath, info, used_keys, errors,
                                   unbuilt=unbuilt if partial else None)
                entry_count += sum(1 for n in nodes if n.kind == "ext4.dirent") + unbuilt[0]
                children.extend(nodes)
    children.extend(tree_nodes(vol, info, errors))
    exts = [Extent(vol.abs(p), n * vol.bs) for _l, p, n, _u in info.runs]
    exts.extend(Extent(vol.abs(b), vol.bs) for b, _lv, _l, _k in info.tree)
    exts.extend(Extent(vol.base + o, n) for o, n in info.inline)
    attrs = vol.path_attrs(ino)
    attrs.update({"htree": bool(dx), "entries": entry_count})
    if info.inline:
        attrs["inline_data"] = True
    node = Node(
        kind="ext4.directory",
        key=dpath,
        label=f"directory {dpath}",
        extents=merge_extents(exts),
        children=children,
        attrs=attrs,
        errors=errors,
    )
    return node

def dx_blocks(vol: Volume, info: InodeInfo, errors: list[str]) -> dict[int, tuple[str, int]]:
    """Return ``{logical block: ("root" | "node", level)}`` of an indexed directory's interior blocks."""
    if not info.flags & EXT4_INDEX_FL or not info.runs or info.runs[0][0] != 0:
        return {}
    pblk = info.runs[0][1]
    root = vol.read(pblk * vol.bs, vol.bs)
    info_len = root[24 + 5]
    levels = root[24 + 6]
    if root[24 + 5] != 8 or levels > 3:
        errors.append(f"dx_root: info_length {info_len} / indirect_levels {levels} not plausible; read linearly")
        return {}
    out: dict[int, tuple[str, int]] = {0: ("root", 0)}
    frontier = [(0, root, 24 + info_len)]
    for level in range(1, levels + 1):
        nxt = []
        for _lb, data, cl_off in frontier:
            limit, count = struct.unpack_from("<HH", data, cl_off)
            if count > limit or cl_off + 8 * limit > vol.bs:
                errors.append(f"dx count {count} / limit {limit} not plausible")
                continue
            for i in range(count):
                blk = struct.unpack_from("<I", data, cl_off + 8 * i + 4)[0]
                if blk in out:
                    continue
                out[blk] = ("node", level)
                pb = vol._lblk_to_pblk(info, blk)
                if pb is not None:
                    nxt.append((blk, vol.read(pb * vol.bs, vol.bs), 8))
        frontier = nxt
    return out

def dirent_key(vol: Volume, dpath: str, name: str, used: dict[str, int], deleted: bool = False) -> str:
    path = ("/" if dpath == "/" else dpath + "/") + name
    key = f"deleted:{path}" if deleted else path
    n = used.get(key, 0) + 1
    used[key] = n
    return key if n == 1 else f"{key}#{n}"

_DIRENT_DISPLAY = {"file_type": lambda v: DIRENT_FILE_TYPES.get(v, str(v))}
"""How a directory entry's members are shown (one mapping for every entry)."""


def dirent_node(vol: Volume, data: bytes, pos: int, end: int, a: int, lb: int, dpath: str,
                 used: dict[str, int], deleted: bool, htree: bool, slack_scan: bool = True) -> list[Node]:
    """Return the node of the entry at ``pos`` owning ``[pos, end)``, plus deleted entries in its slack."""
    ino, _rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
    if not vol.filetype:
        name_len |= ftype << 8
    name = _name(data[pos + 8 : pos + 8 + name_len])
    record: Record | None = None
    if vol.filetype:  # the four fixed members are a record: built as fields only where they differ
        record = Record(C_DIRENT, data[pos : pos + 8], a + pos, display=_DIRENT_DISPLAY)
        fields: list[Field] = []
    else:  # no file type: name_len is 16 bits
        fields = [f for f in C_DIRENT.fields(data, pos, a + pos) if f.name not in ("name_len", "file_type")]
        fields.append(Field.at("name_len", name_len, a + pos + 6, 2))
    if name_len:
        fields.append(Field.at("name", name, a + pos + 8, name_len))
    nodes: list[Node] = []
    slack_start = pos + 8 + name_len
    my_end = end
    if slack_scan and end - slack_start >= 12:
        hidden = hidden_entries(vol, data, slack_start, end)
        if hidden:
            my_end = hidden[0]
            for i, hpos in enumerate(hidden):
                hend = hidden[i + 1] if i + 1 < len(hidden) else end
                nodes.extend(dirent_node(vol, data, hpos, hend, a, lb, dpath, used, True, htree,
                                               slack_scan=False))
    if my_end > slack_start:
        s = data[slack_start:my_end]
        fields.append(Field("slack", _blob(s), (Extent(a + slack_start, my_end - slack_start),), _blob_display(s)))
    if ino == 0 and not name_len:
        key = f"{dpath.rstrip('/')}/#unused@{lb}:{pos}"
        path = ""
    else:
        key = dirent_key(vol, dpath, name, used, deleted or ino == 0)
        path = ("/" if dpath == "/" else dpath + "/") + name
    attrs: dict[str, Value] = {
        "path": path,
        "parent": dpath,
        "ino": ino,
        "file_type": DIRENT_FILE_TYPES.get(ftype, str(ftype)) if vol.filetype else "unknown",
        "lblk": lb,
        "htree": htree,
    }
    if deleted or ino == 0:
        attrs["deleted"] = True
    nodes.insert(0, Node(
        kind="ext4.dirent",
        key=key,
        label=f"directory entry {path or key}" + (" (deleted)" if deleted or ino == 0 else ""),
        extents=(Extent(a + pos, my_end - pos),),
        fields=tuple(fields),
        attrs=attrs,
        record=record,
    ))
    return nodes

def _walk_dirent(vol: Volume, data: bytes, pos: int, end: int, dpath: str, used: dict[str, int], deleted: bool,
                 slack_scan: bool = True) -> int:
    """Do what :func:`dirent_node` does to ``used`` for the entry at ``pos`` (and the deleted entries in its
    slack), without building a node; return how many entry nodes it would have made."""
    ino, _rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
    if not vol.filetype:
        name_len |= ftype << 8
    made = 1
    slack_start = pos + 8 + name_len
    if slack_scan and end - slack_start >= 12:
        hidden = hidden_entries(vol, data, slack_start, end)
        for i, hpos in enumerate(hidden):
            hend = hidden[i + 1] if i + 1 < len(hidden) else end
            made += _walk_dirent(vol, data, hpos, hend, dpath, used, True, slack_scan=False)
    if ino or name_len:
        dirent_key(vol, dpath, _name(data[pos + 8 : pos + 8 + name_len]), used, deleted or ino == 0)
    return made


_NONZERO_BYTE = re.compile(rb"[^\x00]")


def hidden_entries(vol: Volume, data: bytes, start: int, end: int) -> list[int]:
    """Return positions of deleted entries left in ``[start, end)`` (the slack of a live entry)."""
    out: list[int] = []
    pos = (start + 3) & ~3
    while pos + 12 <= end:
        # an entry's inode number is not zero: skip to the 4-byte word holding the next non-zero byte (the slack
        # of a directory block's last entry is mostly zeros: thousands of words)
        m = _NONZERO_BYTE.search(data, pos, end)
        if m is None:
            break
        pos = max(pos, m.start() & ~3)
        if pos + 12 > end:
            break
        ino, rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
        if (0 < ino <= vol.inodes_count and rec_len >= 12 and rec_len % 4 == 0 and pos + rec_len <= end
                and 0 < name_len and 8 + name_len <= rec_len and ftype <= 7):
            name = data[pos + 8 : pos + 8 + name_len]
            if b"\0" not in name and b"/" not in name:
                out.append(pos)
                pos += (8 + name_len + 3) & ~3
                continue
        pos += 4
    return out

def leaf_nodes(vol: Volume, data: bytes, a: int, lb: int, dpath: str, info: InodeInfo,
                used: dict[str, int], errors: list[str], inline: bool = False,
                block_fields: list[Field] | None = None, unbuilt: list[int] | None = None) -> list[Node]:
    """Return the entries of one directory block (or one part of an inline directory, ``inline=True``).

    An inline part has no checksum tail and starts at ``data[0]`` (the caller hands in ``i_block`` without its
    4-byte parent inode, or the ``system.data`` value); ``block_fields`` are extra fields of its block node.

    With ``unbuilt`` given, a block whose entries are byte for byte the other side's (only its checksum tail
    differs: an image whose every metadata checksum changed) gets its block node but no entry nodes; the entries
    are still walked for their keys, problems and count, which ``unbuilt[0]`` is increased by.
    """
    nodes: list[Node] = []
    end = len(data) if inline else vol.bs
    htree = bool(info.flags & EXT4_INDEX_FL)
    block_fields = list(block_fields or [])
    derived: tuple[Derived, ...] = ()
    if vol.csum and end >= 12 and not inline:
        t_ino, t_rec, t_nl, t_ft = _DIRENT.unpack_from(data, end - 12)
        if t_ino == 0 and t_rec == 12 and t_nl == 0 and t_ft == EXT4_DIR_TAIL_FT:
            end -= 12
            block_fields = C_DIRTAIL.fields(data, end, a + end)
            derived = (Derived("det_checksum", covers=(Extent(a, end),),
                               seeds=vol.seeds + ("ext4.inode:i_generation",)),)
        else:
            errors.append(f"{dpath} block {lb}: no dirent checksum tail")
    skip = unbuilt is not None and not inline and end > 0 and not vol.ctx.interesting(Extent(a, end))
    pos = 0
    while pos < end:
        if pos + 8 > end:
            break
        _ino, rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
        if not vol.filetype:
            name_len |= ftype << 8
        if rec_len < 8 or rec_len % 4 or pos + rec_len > end or 8 + name_len > rec_len:
            errors.append(f"{dpath} block {lb}: bad entry at +{pos} (rec_len {rec_len}, name_len {name_len})")
            break
        if skip:
            assert unbuilt is not None
            unbuilt[0] += _walk_dirent(vol, data, pos, pos + rec_len, dpath, used, False)
        else:
            nodes.extend(dirent_node(vol, data, pos, pos + rec_len, a, lb, dpath, used, False, htree))
        pos += rec_len
    if pos < end:
        rest = data[pos:end]
        block_fields.append(Field("unparsed", _blob(rest), (Extent(a + pos, end - pos),), _blob_display(rest)))
    if block_fields:
        exts = merge_extents(e for f in block_fields for e in f.extents)
        key, label = (f"inline:{lb}", f"inline directory data {lb} of {dpath}") if inline else (
            f"blk:{lb}", f"directory block {lb} of {dpath}")
        nodes.append(Node(kind="ext4.dir_block", key=key, label=label,
                          extents=exts, fields=tuple(sorted(block_fields, key=_fkey)), derived=derived,
                          attrs={"path": dpath, "lblk": lb, "ino": info.ino, "file_type": "dir",
                                 "htree": htree},
                          raw=any(f.name == "unparsed" for f in block_fields)))
    return nodes

def dx_block_nodes(vol: Volume, data: bytes, a: int, lb: int, what: tuple[str, int], dpath: str, info: InodeInfo,
                    used: dict[str, int], errors: list[str]) -> list[Node]:
    nodes: list[Node] = []
    fields: list[Field] = []
    if what[0] == "root":
        for pos, name in ((0, "."), (12, "..")):
            ino, _rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
            dfields = C_DIRENT.fields(data, pos, a + pos, display=_DIRENT_DISPLAY)
            dfields.append(Field.at("name", _name(data[pos + 8 : pos + 8 + min(name_len, 4)]), a + pos + 8, 4))
            path = ("/" if dpath == "/" else dpath + "/") + name
            nodes.append(Node(kind="ext4.dirent", key=dirent_key(vol, dpath, name, used),
                              label=f"directory entry {path}", extents=(Extent(a + pos, 12),),
                              fields=tuple(dfields),
                              attrs={"path": path, "parent": dpath, "ino": ino, "lblk": lb, "htree": True,
                                     "file_type": DIRENT_FILE_TYPES.get(ftype, str(ftype))}))
        fields.extend(C_DXINFO.fields(data, 24, a + 24,
                                      display={"hash_version": lambda v: HASH_VERSIONS.get(v, str(v))}))
        cl = 24 + data[24 + 5]
        kind = "ext4.dx_root"
    else:
        fields.extend(C_FAKE.fields(data, 0, a, prefix="fake."))
        cl = 8
        kind = "ext4.dx_node"
    limit, count = struct.unpack_from("<HH", data, cl)
    ok = count <= limit and cl + 8 * limit <= vol.bs
    if not ok:
        errors.append(f"{dpath} dx block {lb}: count {count} / limit {limit} not plausible")
        limit = count = 0
    fields.extend(C_DXCL.fields(data, cl, a + cl))
    if count:
        fields.append(Field.at("block", struct.unpack_from("<I", data, cl + 4)[0], a + cl + 4, 4))
    for i in range(1, count):
        fields.extend(C_DXENTRY.fields(data, cl + 8 * i, a + cl + 8 * i, prefix=f"entries[{i}]."))
    used_end = cl + 8 * max(count, 1 if ok and limit else 0)
    tail = cl + 8 * limit
    if tail > used_end:
        rest = data[used_end:tail]
        fields.append(Field("unused", _blob(rest), (Extent(a + used_end, tail - used_end),), _blob_display(rest)))
    derived: tuple[Derived, ...] = ()
    if vol.csum and ok and tail + 8 <= vol.bs:
        fields.extend(C_DXTAIL.fields(data, tail, a + tail))
        derived = (Derived("dt_checksum", covers=(Extent(a, cl + 8 * count), Extent(a + tail, 4)),
                           seeds=vol.seeds + ("ext4.inode:i_generation",)),)
    start = 24 if what[0] == "root" else 0
    _gap_fields(fields, a + start, a + vol.bs, "padding", _reader(data, a))
    exts = merge_extents(e for f in fields for e in f.extents)
    nodes.append(Node(kind=kind, key=f"blk:{lb}",
                      label=f"{'htree root' if what[0] == 'root' else 'htree node'} block {lb} of {dpath}",
                      extents=exts, fields=tuple(sorted(fields, key=_fkey)), derived=derived,
                      attrs={"path": dpath, "lblk": lb, "level": what[1], "ino": info.ino, "file_type": "dir",
                             "htree": True}))
    return nodes

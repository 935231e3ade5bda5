"""Regular files and symlinks: their data, slack and unwritten extents as fields of one node per file."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from imgdiff.formats.compiled import BLOB_INLINE
from imgdiff.formats.ext4.c_ext4 import EXT4_RESIZE_INO, S_IFDIR, S_IFLNK, S_IFMT
from imgdiff.formats.ext4.common import SYMLINK_MAX, _name
from imgdiff.formats.ext4.extents import tree_nodes
from imgdiff.formats.ext4.volume import Kind, Volume
from imgdiff.model import Extent, Field, Node, Value, merge_extents


def container(vol: Volume, key: str, kind: str, label: str, build: Callable[[int], Node | None], dirs: bool) -> Node:
    # the blocks the owner map gives to files (or directories), and the inline contents in inode slots
    exts = vol.owned_extents((Kind.DIR,) if dirs else (Kind.FILE,))
    inline = [
        Extent(vol.base + o, n)
        for ino, info in vol.inodes.items()
        if info.inline and (info.mode & S_IFMT == S_IFDIR) == dirs and ino not in (vol.journal_ino, vol.orphan_ino)
        for o, n in info.inline
    ]
    node = Node(kind=kind, key=key, label=label, extents=merge_extents([*exts, *inline]) if inline else exts)

    def by_key(k: str) -> Node | None:
        ino = vol.ino_of(k)
        if ino is None or ino not in vol.inodes:
            return None
        info = vol.inodes[ino]
        if ino in (vol.journal_ino, vol.orphan_ino, EXT4_RESIZE_INO):
            return None
        stored = info.runs or info.tree or info.inline
        if (info.mode & S_IFMT == S_IFDIR) != dirs or not (stored or (info.size and info.mode & S_IFMT == 0o100000)):
            return None
        return build(ino)

    vol.lazy(node, by_key)
    return node

def file_node(vol: Volume, ino: int) -> Node:
    info = vol.inodes[ino]
    bs = vol.bs
    data_ext: list[Extent] = []
    offsets: list[int] = []
    slack_ext: list[Extent] = []
    unwritten_ext: list[Extent] = []
    beyond_ext: list[Extent] = []
    size = info.size
    pos = 0
    for off, n in info.inline:  # i_block, then the system.data value
        inside = max(0, min(n, size - pos))
        if inside:
            data_ext.append(Extent(vol.base + off, inside))
            offsets.append(pos)
        if inside < n:
            slack_ext.append(Extent(vol.base + off + inside, n - inside))
        pos += n
    for lblk, pblk, length, unwritten in info.runs:
        fstart = lblk * bs
        a = vol.abs(pblk)
        nbytes = length * bs
        if unwritten:
            unwritten_ext.append(Extent(a, nbytes))
            continue
        inside = max(0, min(nbytes, size - fstart))
        if inside:
            data_ext.append(Extent(a, inside))
            offsets.append(fstart)
        if inside < nbytes:
            tail_len = (-inside) % bs if inside else 0
            if tail_len:
                slack_ext.append(Extent(a + inside, tail_len))
            rest = nbytes - inside - tail_len
            if rest:
                beyond_ext.append(Extent(a + inside + tail_len, rest))
    value: Value = vol.content_sha256(info)
    disp = f"{size} bytes"
    if info.mode & S_IFMT == S_IFLNK and size <= SYMLINK_MAX:  # a slow (or inline) symlink: show the target
        target = vol.read_content(info, SYMLINK_MAX)
        if target is not None:
            value, disp = _name(target), "symlink target"
    if data_ext:
        fields = [Field("data", value, tuple(data_ext), disp)]
    elif size and info.mode & S_IFMT == 0o100000:
        # nothing written (unwritten extents or holes only): the content is zeros, stored nowhere; still a value,
        # so that the same bytes written out in the other image compare equal (e2fsprogs f_eofblocks, i_bitmaps)
        fields = [Field("data", value, (), f"{size} bytes, none stored (zeros)")]
    else:
        fields = []
    for name, exts in (("slack", slack_ext), ("unwritten", unwritten_ext), ("beyond_eof", beyond_ext)):
        if exts:
            h = hashlib.sha256()
            nz = 0
            total = 0
            for e in exts:
                chunk = vol.ctx.read(e.offset, e.length)
                h.update(chunk)
                nz += e.length - chunk.count(0)
                total += e.length
            value = "sha256:" + h.hexdigest()[:16]
            if total <= BLOB_INLINE:
                value = b"".join(vol.ctx.read(e.offset, e.length) for e in exts)
            fields.append(Field(name, value, tuple(exts),
                                f"{total} bytes, all zero" if nz == 0 else f"{total} bytes, {nz} non-zero"))
    errors: list[str] = list(info.errors or [])
    children = tree_nodes(vol, info, errors)
    attrs = vol.path_attrs(ino)
    attrs.update({"content": True, "size": size, "file_offsets": tuple(offsets)})
    if info.inline:
        attrs["inline_data"] = True
    exts_all = [e for f in fields for e in f.extents] + [e for ch in children for e in ch.extents]
    return Node(
        kind="ext4.file",
        key=vol.key_of(ino),
        label=f"file data of {vol.key_of(ino)}",
        extents=merge_extents(exts_all),
        fields=tuple(fields),
        children=children,
        attrs=attrs,
        errors=errors,
    )

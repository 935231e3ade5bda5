"""What differs, as typed targets, and which builder makes each target's node (the ext4 root node)."""

from __future__ import annotations

import functools
from typing import Any

from imgdiff.formats.ext4.c_ext4 import EXT4_RESIZE_INO, EXT4_SUPERBLOCK_OFFSET, S_IFDIR, S_IFMT
from imgdiff.formats.ext4.common import _int_suffix, _uuid
from imgdiff.formats.ext4.dirs import dir_node
from imgdiff.formats.ext4.files import container, file_node
from imgdiff.formats.ext4.free import beyond_node, free_node, unowned_node
from imgdiff.formats.ext4.groups import bitmap_node, boot_node, gdt_node, resize_node, rgdt_node, sb_node
from imgdiff.formats.ext4.inodes import inodes_node
from imgdiff.formats.ext4.journal import journal_lblks, journal_node, orphan_node
from imgdiff.formats.ext4.volume import Volume
from imgdiff.formats.ext4.xattrs import xattrs_node
from imgdiff.model import Extent, Node


def targets(vol: Volume, ranges: list[tuple[int, int]]) -> set[tuple[Any, ...]]:
    """Return the objects whose bytes intersect ``ranges`` (absolute offsets)."""
    out: set[tuple[Any, ...]] = set()
    bs = vol.bs
    for s, e in ranges:
        rs, re_ = s - vol.base, min(e - vol.base, vol.limit)
        if rs >= re_:
            continue
        if re_ > vol.fs_bytes:
            out.add(("beyond",))
            re_ = vol.fs_bytes
            if rs >= re_:
                continue
        if rs < EXT4_SUPERBLOCK_OFFSET:
            out.add(("boot",))
        if rs < 2048 and re_ > EXT4_SUPERBLOCK_OFFSET:
            out.add(("sb", 0))
        if bs > 1024 and rs < bs and re_ > 2048:
            out.add(("sb", 0))
        b0, b1 = rs // bs, -(-re_ // bs)
        for sb0, sb1, tag in vol.owners(b0, b1):
            lo = max(rs, sb0 * bs)
            hi = min(re_, sb1 * bs)
            classify(vol, out, sb0, sb1, tag, lo, hi)
    return out

def classify(vol: Volume, out: set[tuple[Any, ...]], b0: int, b1: int, tag: tuple[Any, ...] | None,
              lo: int, hi: int) -> None:
    bs = vol.bs
    if tag is None:
        classify_unowned(vol, out, b0, b1)
        return
    kind = tag[0]
    if kind == "sb":
        if tag[1] != 0:
            out.add(tag)
    elif kind == "gdt":
        key, first = tag[1], tag[2]
        block_of = gdt_block_of(vol, key, first)
        d0 = first + (lo - block_of * bs) // vol.desc_size
        d1 = first + (hi - 1 - block_of * bs) // vol.desc_size
        for d in range(d0, d1 + 1):
            out.add(("gd", key, d) if d < vol.groups else ("gdt", key))
    elif kind == "itable":
        g = tag[1]
        start = vol.gd[g][2] * bs
        i0 = (lo - start) // vol.inode_size
        i1 = (hi - 1 - start) // vol.inode_size
        for idx in range(max(0, i0), min(vol.ipg - 1, i1) + 1):
            ino = g * vol.ipg + idx + 1
            out.add(("inode", ino))
            info = vol.inodes.get(ino)
            if info is not None and info.inline:  # its content lives in the inode
                isdir = info.mode & S_IFMT == S_IFDIR
                out.add(("dir", ino) if isdir else ("file", ino))
                out.add(("dirs",) if isdir else ("files",))
    elif kind in ("dir", "file"):
        out.add(tag)
        out.add(("dirs",) if kind == "dir" else ("files",))
    elif kind == "journal":
        out.add(("journal_blocks", b0, b1))
    elif kind == "orphan":
        out.add(("orphan_blocks", b0, b1))
    else:
        out.add(tag)

def gdt_block_of(vol: Volume, key: str, first: int) -> int:
    for blk, f in vol.gdt_copies.get(key, []):
        if f == first:
            return blk
    return 0

def classify_unowned(vol: Volume, out: set[tuple[Any, ...]], b0: int, b1: int) -> None:
    blk = b0
    while blk < b1:
        if blk < vol.first_data_block:
            out.add(("boot",))
            blk += 1
            continue
        g = (blk - vol.first_data_block) // vol.bpg
        gend = min(b1, vol.group_first_block(g) + vol.bpg)
        bits = vol.bitmap("b", g)
        value = int.from_bytes(bits, "little")
        r = vol.cluster_ratio
        c0 = (blk - vol.group_first_block(g)) // r
        c1 = -(-(gend - vol.group_first_block(g)) // r)
        mask = ((1 << (c1 - c0)) - 1) << c0
        if value & mask:
            out.add(("unowned", g))
        if (~value) & mask:
            out.add(("free", g))
        blk = gend

def build(vol: Volume, label: str) -> Node:
    """Return the filesystem node with detail for every differing object (everything when no diff)."""
    vol.region_label = label
    ranges = vol._ranges()
    full = ranges is None
    wanted = targets(vol, ranges) if ranges is not None else set()
    errors = vol.ctx.errors
    root = Node(
        kind="ext4",
        key="ext4",
        label="ext4",
        extents=(Extent(vol.base, vol.size),),
        attrs={
            "scope": True,
            "fs": "ext4",
            "block_size": vol.bs,
            "uuid": _uuid(vol.sb["s_uuid"]),
            "features": " ".join(vol.feature_names()),
            "region": label,
        },
    )
    top = vol.lazy(root, functools.partial(build_top, vol))
    groups_with_super = [g for g in range(vol.groups) if vol.has_super(g)]

    def want(t: tuple[Any, ...]) -> bool:
        return full or t in wanted

    if want(("boot",)):
        top.add("boot")
    top.add("superblock")
    for g in groups_with_super[1:]:
        if want(("sb", g)):
            top.add(f"superblock@group:{g}")
    # Descriptor tables (children built for differing descriptors).
    gd_wanted: dict[str, set[int]] = {}
    for t in wanted:
        if t[0] == "gd":
            gd_wanted.setdefault(t[1], set()).add(t[2])
        elif t[0] == "gdt":
            gd_wanted.setdefault(t[1], set())
    for key in vol.gdt_copies:
        if full or key == "gdt" or key in gd_wanted:
            top.add(key)
            node = top.made.get(key)
            if node is not None and node.expand is not None:
                for d in sorted(range(vol.groups) if full else gd_wanted.get(key, ())):
                    vol.add(node, f"gd:{d}")
    if vol.rgdt_blocks:
        for g in groups_with_super:
            if want(("rgdt", g)):
                top.add("rgdt" if g == 0 else f"rgdt@group:{g}")
    for g in range(vol.groups):
        if want(("bbitmap", g)):
            top.add(f"bbitmap:{g}")
        if want(("ibitmap", g)):
            top.add(f"ibitmap:{g}")
    # Inodes, directories, files.
    top.add("inodes")
    inodes = top.made["inodes"]
    if inodes is not None:
        inos = sorted(vol.inodes) if full else sorted(t[1] for t in wanted if t[0] == "inode")
        for ino in inos:
            key = vol.key_of(ino)
            vol.add(inodes, key)
    top.add("dirs")
    top.add("files")
    dirs, files = top.made["dirs"], top.made["files"]
    for ino, info in sorted(vol.inodes.items()) if full else []:
        if ino in (vol.journal_ino, vol.orphan_ino, EXT4_RESIZE_INO):
            continue
        if info.mode & S_IFMT == S_IFDIR and dirs is not None:
            vol.add(dirs, vol.key_of(ino))
        elif (info.runs or info.inline) and files is not None:
            vol.add(files, vol.key_of(ino))
    for t in sorted(wanted, key=repr):
        if t[0] == "dir" and dirs is not None:
            vol.add(dirs, vol.key_of(t[1]))
        elif t[0] == "file" and files is not None:
            vol.add(files, vol.key_of(t[1]))
    if vol.xattr_owners:
        top.add("xattrs")
        xnode = top.made.get("xattrs")
        if xnode is not None:
            for blk, owners in sorted(vol.xattr_owners.items()):
                if full or ("xattr", blk) in wanted:
                    vol.add(xnode, vol.key_of(owners[0]))
    if vol.journal_ino and vol.journal_ino in vol.inodes:
        top.add("journal")
        jnode = top.made.get("journal")
        if jnode is not None:
            for t in wanted:
                if t[0] == "journal_blocks":
                    for jb in journal_lblks(vol, t[1], t[2]):
                        vol.add(jnode, f"jblk:{jb}")
    if vol.orphan_ino and vol.orphan_ino in vol.inodes:
        top.add("orphan")
        onode = top.made.get("orphan")
        if onode is not None:
            info = vol.inodes[vol.orphan_ino]
            for t in wanted:
                if t[0] == "orphan_blocks":
                    for lb in vol._lblks_of(info, t[1], t[2]):
                        vol.add(onode, f"blk:{lb}")
            if full:
                for lb, _p, n, _u in info.runs:
                    for k in range(n):
                        vol.add(onode, f"blk:{lb + k}")
    if want(("resize",)) and EXT4_RESIZE_INO in vol.inodes and vol.inodes[EXT4_RESIZE_INO].tree:
        top.add("resize:dind")
    for g in range(vol.groups):
        if want(("free", g)):
            top.add(f"free:{g}")
        if ("unowned", g) in wanted:
            top.add(f"unowned:{g}")
    if ("beyond",) in wanted or (full and vol.size > vol.fs_bytes):
        top.add("beyond")
    msgs = list(dict.fromkeys(vol.errors + vol._missing_errors()))
    for info in vol.inodes.values():
        if info.errors:
            msgs.extend(f"{vol._label(info.ino)}: {m}" for m in info.errors)
    root.errors.extend(msgs)
    errors.extend(f"ext4 ({label}): {m}" for m in msgs)
    return root

def build_top(vol: Volume, key: str) -> Node | None:
    """Build a direct child of the ext4 node by key."""
    if key == "boot":
        return boot_node(vol)
    if key == "superblock":
        return sb_node(vol, 0)
    if key.startswith("superblock@group:"):
        g = _int_suffix(key)
        return sb_node(vol, g) if g is not None and 0 < g < vol.groups and vol.has_super(g) else None
    if key == "gdt" or key.startswith("gdt@group:"):
        return gdt_node(vol, key) if key in vol.gdt_copies else None
    if key == "rgdt" or key.startswith("rgdt@group:"):
        g = 0 if key == "rgdt" else _int_suffix(key)
        if g is None or not 0 <= g < vol.groups or not vol.has_super(g) or not vol.rgdt_blocks:
            return None
        return rgdt_node(vol, g, key)
    if key.startswith(("bbitmap:", "ibitmap:")):
        g = _int_suffix(key)
        return bitmap_node(vol, key[0], g) if g is not None and 0 <= g < vol.groups else None
    if key == "inodes":
        return inodes_node(vol)
    if key == "dirs":
        return container(vol, "dirs", "ext4.directories", "directories", functools.partial(dir_node, vol), True)
    if key == "files":
        return container(vol, "files", "ext4.files", "files", functools.partial(file_node, vol), False)
    if key == "xattrs":
        return xattrs_node(vol)
    if key == "journal":
        return journal_node(vol) if vol.journal_ino in vol.inodes else None
    if key == "orphan":
        return orphan_node(vol) if vol.orphan_ino in vol.inodes else None
    if key == "resize:dind":
        info = vol.inodes.get(EXT4_RESIZE_INO)
        return resize_node(vol) if info is not None and info.tree else None
    if key.startswith("free:"):
        g = _int_suffix(key)
        return free_node(vol, g) if g is not None and 0 <= g < vol.groups else None
    if key.startswith("unowned:"):
        g = _int_suffix(key)
        return unowned_node(vol, g) if g is not None and 0 <= g < vol.groups else None
    if key == "beyond":
        return beyond_node(vol)
    return None

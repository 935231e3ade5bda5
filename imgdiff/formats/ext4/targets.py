"""What differs, as typed targets, and which builder makes each target's node (the ext4 root node)."""

from __future__ import annotations

import functools
import operator
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

from imgdiff.formats.ext4.c_ext4 import EXT4_RESIZE_INO, EXT4_SUPERBLOCK_OFFSET, S_IFDIR, S_IFMT
from imgdiff.formats.ext4.common import _int_suffix, _uuid
from imgdiff.formats.ext4.dirs import dir_node
from imgdiff.formats.ext4.files import container, file_node
from imgdiff.formats.ext4.free import beyond_node, free_node, unowned_node
from imgdiff.formats.ext4.grouped import (
    checksum_only,
    dir_group_node,
    group_node,
    shared_group,
    tail_only_dirs,
    time_group_node,
    times_only,
    twin_node,
)
from imgdiff.formats.ext4.groups import bitmap_node, boot_node, gdt_node, resize_node, rgdt_node, sb_node
from imgdiff.formats.ext4.inodes import inode_node, inodes_node
from imgdiff.formats.ext4.journal import journal_lblks, journal_node, orphan_node
from imgdiff.formats.ext4.volume import Kind, Owner, Target, Volume, _Lazy
from imgdiff.formats.ext4.xattrs import xattrs_node
from imgdiff.model import Extent, Node


def targets(vol: Volume, ranges: list[tuple[int, int]]) -> set[Target]:
    """Return the objects whose bytes intersect ``ranges`` (absolute offsets)."""
    out: set[Target] = set()
    bs = vol.bs
    seg: tuple[int, int, Owner] | None = None
    classify: Classifier = _same
    isz = vol.inode_size
    table = last = -1  # the inode table of ``seg`` (byte offset) and the slot the last run ended in
    for s, e in ranges:
        rs, re_ = s - vol.base, min(e - vol.base, vol.limit)
        if rs >= re_:
            continue
        if re_ > vol.fs_bytes:
            out.add(Target(Kind.BEYOND))
            re_ = vol.fs_bytes
            if rs >= re_:
                continue
        if rs < EXT4_SUPERBLOCK_OFFSET:
            out.add(Target(Kind.BOOT))
        if rs < 2048 and re_ > EXT4_SUPERBLOCK_OFFSET:
            out.add(Target(Kind.SB, 0))
        if bs > 1024 and rs < bs and re_ > 2048:
            out.add(Target(Kind.SB, 0))
        b0, b1 = rs // bs, -(-re_ // bs)
        if seg is not None and seg[0] <= b0 and b1 <= seg[1]:
            # inside the owner segment of the previous range (an inode table holds thousands of differing
            # runs): classified as that owner's bytes, without looking the owner up again; a run inside the
            # inode slot the previous run ended in adds nothing
            first = (rs - table) // isz
            if first == last and (re_ - 1 - table) // isz == last:
                continue
            classify(vol, out, seg[2], seg[0], seg[1], rs, re_)
            last = (re_ - 1 - table) // isz
            continue
        for sb0, sb1, owner in vol.owners(b0, b1):
            lo = max(rs, sb0 * bs)
            hi = min(re_, sb1 * bs)
            if owner is None:
                classify_unowned(vol, out, sb0, sb1)
                seg = None
            else:
                classify = CLASSIFY.get(owner.kind, _same)
                classify(vol, out, owner, sb0, sb1, lo, hi)
                seg = (*vol.owner_span(sb0), owner) if owner.kind in _BULK else None
                if seg is not None:
                    table = vol.gd[owner.n][2] * bs
                    last = (hi - 1 - table) // isz
    return out


_BULK = frozenset({Kind.ITABLE})
"""Owners whose blocks hold many differing runs, each classified by offset: see :meth:`Volume.owner_span`.
(Only inode tables: the fast path in :func:`targets` reckons in inode slots.)"""


Classifier = Callable[[Volume, set[Target], Owner, int, int, int, int], None]


def _same(vol: Volume, out: set[Target], owner: Owner, b0: int, b1: int, lo: int, hi: int) -> None:
    """The owner itself is the target (bitmaps, reserved GDT, xattr blocks, the resize inode's block)."""
    out.add(Target(owner.kind, owner.n, owner.copy))


def _superblock(vol: Volume, out: set[Target], owner: Owner, b0: int, b1: int, lo: int, hi: int) -> None:
    if owner.n != 0:  # the primary superblock is always built
        out.add(Target(Kind.SB, owner.n))


def _descriptors(vol: Volume, out: set[Target], owner: Owner, b0: int, b1: int, lo: int, hi: int) -> None:
    """The descriptors of a descriptor table block that the bytes fall in (or its padding: the table itself)."""
    key, first, bs = owner.copy, owner.n, vol.bs
    block_of = gdt_block_of(vol, key, first)
    d0 = first + (lo - block_of * bs) // vol.desc_size
    d1 = first + (hi - 1 - block_of * bs) // vol.desc_size
    for d in range(d0, d1 + 1):
        out.add(Target(Kind.GD, d, key) if d < vol.groups else Target(Kind.GDT, 0, key))


def _inode_slots(vol: Volume, out: set[Target], owner: Owner, b0: int, b1: int, lo: int, hi: int) -> None:
    """The inodes whose slots the bytes fall in (and the file or directory whose inline content is there)."""
    g, bs = owner.n, vol.bs
    start = vol.gd[g][2] * bs
    i0 = (lo - start) // vol.inode_size
    i1 = (hi - 1 - start) // vol.inode_size
    for idx in range(max(0, i0), min(vol.ipg - 1, i1) + 1):
        ino = g * vol.ipg + idx + 1
        out.add(_new(Target, (Kind.INODE, ino, "", 0)))  # (one per differing slot: without NamedTuple.__new__)
        info = vol.inodes.get(ino)
        if info is not None and info.inline:  # its content lives in the inode
            out.add(Target(Kind.DIR if info.mode & S_IFMT == S_IFDIR else Kind.FILE, ino))


def _block_range(vol: Volume, out: set[Target], owner: Owner, b0: int, b1: int, lo: int, hi: int) -> None:
    """Journal or orphan file blocks: the block range, resolved to the file's blocks by the builder."""
    out.add(Target(owner.kind, b0, "", b1))


CLASSIFY: dict[Kind, Classifier] = {
    Kind.SB: _superblock,
    Kind.GDT: _descriptors,
    Kind.ITABLE: _inode_slots,
    Kind.JOURNAL: _block_range,
    Kind.ORPHAN: _block_range,
}
"""How the bytes of a block owner become targets (the default: the owner itself)."""


def gdt_block_of(vol: Volume, key: str, first: int) -> int:
    for blk, f in vol.gdt_copies.get(key, []):
        if f == first:
            return blk
    return 0


def classify_unowned(vol: Volume, out: set[Target], b0: int, b1: int) -> None:
    """Blocks no structure owns: free blocks, or allocated blocks nothing refers to, per group."""
    blk = b0
    while blk < b1:
        if blk < vol.first_data_block:
            out.add(Target(Kind.BOOT))
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
            out.add(Target(Kind.UNOWNED, g))
        if (~value) & mask:
            out.add(Target(Kind.FREE, g))
        blk = gend


def build(vol: Volume, label: str) -> Node:
    """Return the filesystem node with detail for every differing object (everything when no diff)."""
    vol.region_label = label
    ranges = vol._ranges()
    full = ranges is None
    wanted: dict[Kind, list[Target]] = defaultdict(list)
    for t in targets(vol, ranges) if ranges is not None else ():
        wanted[t.kind].append(t)
    for found in wanted.values():  # per kind (100,000 inodes of a rebuilt image): a key made in C
        found.sort(key=_TARGET_ORDER)
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
    job = _Build(vol, top, wanted, full)
    for section in SECTIONS:
        section(job)
    msgs = list(dict.fromkeys(vol.errors + vol._missing_errors()))
    for info in vol.inodes.values():
        if info.errors:
            msgs.extend(f"{vol._label(info.ino)}: {m}" for m in info.errors)
    root.errors.extend(msgs)
    errors.extend(f"ext4 ({label}): {m}" for m in msgs)
    return root


_new = tuple.__new__

_TARGET_ORDER = operator.attrgetter("copy", "n", "end")
"""The order targets of one kind are built in: descriptor copy, number, end block."""


class _Build(NamedTuple):
    """One build of the ext4 root's children: the volume, its lazy top level and the targets by kind."""

    vol: Volume
    top: _Lazy
    wanted: dict[Kind, list[Target]]
    full: bool

    def want(self, kind: Kind, n: int = 0) -> bool:
        """Return True when everything is built, or a target of ``kind`` (number ``n``) differs."""
        return self.full or any(t.n == n for t in self.wanted.get(kind, ()))

    def numbers(self, kind: Kind) -> list[int]:
        """Return the numbers of the differing targets of ``kind``."""
        return [t.n for t in self.wanted.get(kind, ())]


def _boot_and_superblocks(job: _Build) -> None:
    vol, top = job.vol, job.top
    if job.want(Kind.BOOT):
        top.add("boot")
    top.add("superblock")
    for g in range(1, vol.groups):
        if vol.has_super(g) and job.want(Kind.SB, g):
            top.add(f"superblock@group:{g}")


def _descriptor_tables(job: _Build) -> None:
    """Every copy of the descriptor table that differs (the primary always), with its differing descriptors."""
    vol, top = job.vol, job.top
    gd_wanted: dict[str, set[int]] = {}
    for t in job.wanted.get(Kind.GD, ()):
        gd_wanted.setdefault(t.copy, set()).add(t.n)
    for t in job.wanted.get(Kind.GDT, ()):
        gd_wanted.setdefault(t.copy, set())
    for key in vol.gdt_copies:
        if job.full or key == "gdt" or key in gd_wanted:
            top.add(key)
            node = top.made.get(key)
            if node is not None and node.expand is not None:
                for d in sorted(range(vol.groups) if job.full else gd_wanted.get(key, ())):
                    vol.add(node, f"gd:{d}")


def _reserved_gdt_and_bitmaps(job: _Build) -> None:
    vol, top = job.vol, job.top
    if vol.rgdt_blocks:
        for g in range(vol.groups):
            if vol.has_super(g) and job.want(Kind.RGDT, g):
                top.add("rgdt" if g == 0 else f"rgdt@group:{g}")
    for g in range(vol.groups):
        if job.want(Kind.BBITMAP, g):
            top.add(f"bbitmap:{g}")
        if job.want(Kind.IBITMAP, g):
            top.add(f"ibitmap:{g}")


def _inodes_dirs_files(job: _Build) -> None:
    vol, top = job.vol, job.top
    top.add("inodes")
    inodes = top.made["inodes"]
    if inodes is not None:
        inos = sorted(vol.inodes) if job.full else sorted(job.numbers(Kind.INODE))
        node: Node | None = None
        times: Node | None = None
        if not job.full:  # thousands of slots differing only in their checksums, or in their times: one node each
            inos, node = _grouped(vol, "inodes", inos, checksum_only, group_node)
            inos, times = _grouped(vol, "inodes-times", inos, times_only, time_group_node)
        vol.add_inodes(inodes, inos, inode_node)
        _attach(vol, inodes, node)
        _attach(vol, inodes, times)
    top.add("dirs")
    top.add("files")
    dirs, files = top.made["dirs"], top.made["files"]
    for ino, info in sorted(vol.inodes.items()) if job.full else []:
        if ino in (vol.journal_ino, vol.orphan_ino, EXT4_RESIZE_INO):
            continue
        if info.mode & S_IFMT == S_IFDIR and dirs is not None:
            vol.add(dirs, vol.key_of(ino))
        elif (info.runs or info.inline) and files is not None:
            vol.add(files, vol.key_of(ino))
    dir_inos = sorted(job.numbers(Kind.DIR))
    node = None
    if not job.full and dirs is not None:  # thousands of blocks differing only in their checksum tails: one node
        dir_inos, node = _grouped(vol, "dirs", dir_inos, tail_only_dirs, dir_group_node)
    for ino in dir_inos:
        if dirs is not None:
            vol.add(dirs, vol.key_of(ino))
    if dirs is not None:
        _attach(vol, dirs, node)
    for ino in sorted(job.numbers(Kind.FILE)):
        if files is not None:
            vol.add(files, vol.key_of(ino))


def _grouped(vol: Volume, key: str, inos: list[int], search: Callable[[Volume, list[int]], list[Any]],
             make: Callable[[Volume, list[Any]], Node]) -> tuple[list[int], Node | None]:
    """Return the inodes of ``inos`` left to build one by one, and the group node standing for the others.

    ``search`` finds the members (tuples whose first item is the inode) and ``make`` builds their node; side B
    takes side A's members instead when :func:`shared_group` allows and they are among B's differing inodes.
    """
    shared = shared_group(vol, key)
    wanted = set(inos)
    if shared is not None and all(m[0] in wanted and m[0] in vol.inodes for m in shared[0]):
        members, node = shared[0], twin_node(vol, shared[1]) if shared[1] is not None else None
    else:
        members = search(vol, inos)
        node = make(vol, members) if members else None
    vol.groups_made[key] = (members, node)
    if members:
        taken = {m[0] for m in members}
        inos = [ino for ino in inos if ino not in taken]
    return inos, node


def _attach(vol: Volume, container: Node, node: Node | None) -> None:
    """Attach a group node to its container (made by :meth:`Volume.lazy`), where lookups by key find it too."""
    if node is not None:
        vol._lazy_of[id(container)].made[node.key] = node
        container.children.append(node)


def _xattr_blocks(job: _Build) -> None:
    vol, top = job.vol, job.top
    if vol.xattr_owners:
        top.add("xattrs")
        xnode = top.made.get("xattrs")
        if xnode is not None:
            for blk, owners in sorted(vol.xattr_owners.items()):
                if job.want(Kind.XATTR, blk):
                    vol.add(xnode, vol.key_of(owners[0]))


def _journal_and_orphan(job: _Build) -> None:
    vol, top = job.vol, job.top
    if vol.journal_ino and vol.journal_ino in vol.inodes:
        top.add("journal")
        jnode = top.made.get("journal")
        if jnode is not None:
            for t in job.wanted.get(Kind.JOURNAL, ()):
                for jb in journal_lblks(vol, t.n, t.end):
                    vol.add(jnode, f"jblk:{jb}")
    if vol.orphan_ino and vol.orphan_ino in vol.inodes:
        top.add("orphan")
        onode = top.made.get("orphan")
        if onode is not None:
            info = vol.inodes[vol.orphan_ino]
            for t in job.wanted.get(Kind.ORPHAN, ()):
                for lb in vol._lblks_of(info, t.n, t.end):
                    vol.add(onode, f"blk:{lb}")
            if job.full:
                for lb, _p, n, _u in info.runs:
                    for k in range(n):
                        vol.add(onode, f"blk:{lb + k}")


def _free_space(job: _Build) -> None:
    vol, top = job.vol, job.top
    if job.want(Kind.RESIZE) and EXT4_RESIZE_INO in vol.inodes and vol.inodes[EXT4_RESIZE_INO].tree:
        top.add("resize:dind")
    for g in range(vol.groups):
        if job.want(Kind.FREE, g):
            top.add(f"free:{g}")
        if not job.full and job.want(Kind.UNOWNED, g):
            top.add(f"unowned:{g}")
    if (not job.full and job.want(Kind.BEYOND)) or (job.full and vol.size > vol.fs_bytes):
        top.add("beyond")


SECTIONS: tuple[Callable[[_Build], None], ...] = (
    _boot_and_superblocks,
    _descriptor_tables,
    _reserved_gdt_and_bitmaps,
    _inodes_dirs_files,
    _xattr_blocks,
    _journal_and_orphan,
    _free_space,
)
"""The children of the ext4 node, in tree order: each section builds what differs of its objects."""


Builder = Callable[[Volume, str, int | None], Node | None]


def _group_ok(vol: Volume, g: int | None) -> bool:
    return g is not None and 0 <= g < vol.groups


def _top_superblock(vol: Volume, key: str, g: int | None) -> Node | None:
    if key == "superblock":
        return sb_node(vol, 0)
    if g is None or not 0 < g < vol.groups or not vol.has_super(g):
        return None
    return sb_node(vol, g)


def _top_rgdt(vol: Volume, key: str, g: int | None) -> Node | None:
    g = 0 if key == "rgdt" else g
    if g is None or not 0 <= g < vol.groups or not vol.has_super(g) or not vol.rgdt_blocks:
        return None
    return rgdt_node(vol, g, key)


def _top_resize(vol: Volume, key: str, g: int | None) -> Node | None:
    info = vol.inodes.get(EXT4_RESIZE_INO)
    return resize_node(vol) if key == "resize:dind" and info is not None and info.tree else None


TOP: dict[str, Builder] = {
    "boot": lambda vol, key, g: boot_node(vol),
    "superblock": _top_superblock,
    "gdt": lambda vol, key, g: gdt_node(vol, key) if key in vol.gdt_copies else None,
    "rgdt": _top_rgdt,
    "bbitmap": lambda vol, key, g: bitmap_node(vol, "b", g) if g is not None and _group_ok(vol, g) else None,
    "ibitmap": lambda vol, key, g: bitmap_node(vol, "i", g) if g is not None and _group_ok(vol, g) else None,
    "inodes": lambda vol, key, g: inodes_node(vol),
    "dirs": lambda vol, key, g: container(vol, "dirs", "ext4.directories", "directories",
                                          functools.partial(dir_node, vol), True),
    "files": lambda vol, key, g: container(vol, "files", "ext4.files", "files",
                                           functools.partial(file_node, vol), False),
    "xattrs": lambda vol, key, g: xattrs_node(vol),
    "journal": lambda vol, key, g: journal_node(vol) if vol.journal_ino in vol.inodes else None,
    "orphan": lambda vol, key, g: orphan_node(vol) if vol.orphan_ino in vol.inodes else None,
    "resize": _top_resize,
    "free": lambda vol, key, g: free_node(vol, g) if g is not None and _group_ok(vol, g) else None,
    "unowned": lambda vol, key, g: unowned_node(vol, g) if g is not None and _group_ok(vol, g) else None,
    "beyond": lambda vol, key, g: beyond_node(vol),
}
"""Builders of the ext4 node's direct children by key stem: ``superblock@group:8`` -> ``superblock``, group 8."""


def build_top(vol: Volume, key: str) -> Node | None:
    """Build a direct child of the ext4 node by key (``free:3``, ``gdt@group:1``, ``inodes``, ...)."""
    stem, sep, rest = key.partition("@group:")
    if not sep:
        stem, sep, rest = key.partition(":")
    builder = TOP.get(stem)
    if builder is None:
        return None
    g = _int_suffix(key) if sep and rest.isdigit() else None
    if sep and stem not in ("resize",) and g is None:
        return None
    return builder(vol, key, g)

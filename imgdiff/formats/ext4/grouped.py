"""Inode slots and directory blocks whose only differing bytes are their checksums, described by group nodes.

A filesystem made twice without a fixed UUID (``mke2fs`` without ``-U``, systemd-repart without a seed) differs in
``s_uuid``, and with ``metadata_csum`` every checksum is seeded from it: every used inode's ``i_checksum_lo`` and
``i_checksum_hi`` change while nothing else in its slot does.  One node per inode and one difference per checksum
(a 54,000-file image: 54,000 nodes per side and 108,000 differences) say nothing more than one node that stands for
them all: two fields whose extents are every member's checksum bytes, derived from the checksum seed like each
inode's own (:class:`~imgdiff.model.Derived` with the slots as covers).  The engine turns each field into one
difference with :attr:`~imgdiff.model.Difference.count` members; its byte count is exact.

The groups are looked for only when a checksum seed differs (``s_uuid``, or ``s_checksum_seed``), the cause that
changes every checksum at once.  A slot joins the group only when nothing but its checksum bytes differs from the
other image's slot at the aligned offset, the inode is used and not reserved, its ``i_extra_isize`` holds
``i_checksum_hi``, and the two images agree on where the inode tables and inode bitmaps are (their superblock
geometry and descriptor fields are equal bytes): so both sides form the same group from the same bytes.  Fewer than :data:`GROUP_MIN` such slots stay
individual inode nodes.  An individual member is still built on request (the ``inodes`` container expands any
inode key).

Directory leaf blocks change the same way: their entries stay, the ``det_checksum`` of their tail changes.  A
directory every differing block of which is such a block (and whose inode maps its blocks the same on both sides:
equal ``i_mode``, ``i_size``, ``i_flags``, ``i_block`` and extent tree) joins the directory-block group instead of
being built with its entries, from :data:`GROUP_MIN` blocks up.

References: Documentation/filesystems/ext4/inodes.rst (``i_checksum_lo``/``i_checksum_hi``, ``i_extra_isize``),
checksums.rst; e2fsprogs lib/ext2fs/csum.c (``ext2fs_inode_csum``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from imgdiff.formats.ext4.c_ext4 import EXT4_GOOD_OLD_INODE_SIZE, EXT4_INDEX_FL
from imgdiff.formats.ext4.common import C_GD, C_INODE, C_SB
from imgdiff.formats.ext4.groups import gd_location
from imgdiff.model import Derived, Extent, Field, Node, merge_extents
from imgdiff.source import VBASE

if TYPE_CHECKING:
    from imgdiff.formats.ext4.volume import Volume

GROUP_MIN = 64
"""Fewer checksum-only slots than this are built as inode nodes of their own (a small image lists them)."""

GROUP_KEY = "(checksums only)"
"""The group node's key among the inode nodes (inode keys are paths or ``ino:N``)."""

_LO_OFF, _LO_LEN = C_INODE.span("i_checksum_lo")
_HI_OFF, _HI_LEN = C_INODE.span("i_checksum_hi")
_XI_OFF, _XI_LEN = C_INODE.span("i_extra_isize")

_SB_GEOMETRY = ("s_inodes_count", "s_first_data_block", "s_log_block_size", "s_blocks_per_group",
                "s_inodes_per_group", "s_first_ino", "s_inode_size", "s_feature_incompat", "s_desc_size")
"""Superblock members that decide where each inode slot lies."""

_SB_NAMES = frozenset(m[0] for m in C_SB.members)

_GD_PLACES = ("bg_inode_bitmap_lo", "bg_inode_table_lo", "bg_inode_bitmap_hi", "bg_inode_table_hi")
"""Descriptor members that place a group's inode bitmap and table (the ``_hi`` halves with 64-byte descriptors)."""

_MASKS: dict[tuple[int, int], int] = {}


def _mask(isz: int, n: int) -> int:
    """Return a little-endian integer over ``n`` slots of ``isz`` bytes: 0xFF everywhere but the checksum bytes."""
    found = _MASKS.get((isz, n))
    if found is None:
        one = bytearray(b"\xff" * isz)
        one[_LO_OFF : _LO_OFF + _LO_LEN] = bytes(_LO_LEN)
        one[_HI_OFF : _HI_OFF + _HI_LEN] = bytes(_HI_LEN)
        if len(_MASKS) > 64:
            _MASKS.clear()
        found = _MASKS[(isz, n)] = int.from_bytes(bytes(one) * n, "little")
    return found


@functools.cache
def _window(isz: int) -> bytes:
    """Return one byte per slot byte: 1 outside ``[i_checksum_lo, i_checksum_hi]``, 0 inside."""
    return bytes(b"\x01" * _LO_OFF + bytes(_HI_OFF + _HI_LEN - _LO_OFF) + b"\x01" * (isz - _HI_OFF - _HI_LEN))


def checksum_only(vol: Volume, inos: list[int]) -> list[tuple[int, bool, bool]]:
    """Return ``(ino, lo, hi)`` for the inodes of ``inos`` (slots with differing bytes, ascending) that form the
    checksum group: ``lo``/``hi`` say whether ``i_checksum_lo``/``i_checksum_hi`` differ.

    Empty when fewer than :data:`GROUP_MIN` qualify or the group cannot be formed here (see the module text).
    """
    if len(inos) < GROUP_MIN or not vol.csum or not _seed_differs(vol) or not _placed_alike(vol):
        return []
    isz = vol.inode_size
    out: list[tuple[int, bool, bool]] = []
    by_group: dict[int, list[int]] = {}
    for ino in inos:
        info = vol.inodes.get(ino)
        if info is None or info.errors or ino < vol.first_ino:
            continue
        by_group.setdefault((ino - 1) // vol.ipg, []).append(ino)
    end = min(vol.limit, vol.avail)  # slots cut by the end of either image stay individual nodes
    candidates: dict[int, list[int]] = {}
    for g, members in by_group.items():
        members = [i for i in members if vol.inode_offset(i) + isz <= end]
        if not members:
            continue
        # first without reading: a slot whose differing runs reach a byte outside the checksums' window is out
        # (the runs are exact at their ends; inside they may span the 4 bytes between i_checksum_lo and _hi)
        start = vol.inode_offset(members[0])
        found = vol._differing_slots(start, vol.inode_offset(members[-1]) + isz - start, isz, _window(isz))
        if found is not None:
            members = [i for i in members if (vol.inode_offset(i) - start) // isz not in found[1]]
        if members:
            candidates[g] = members
    if sum(map(len, candidates.values())) < GROUP_MIN:
        return []
    for g, members in candidates.items():
        if _differs(vol, *_bitmap_extent(vol, g)):
            continue  # the used inodes may differ: leave the group's slots to their own nodes
        first = vol.inode_offset(members[0])
        last = vol.inode_offset(members[-1]) + isz
        n = (last - first) // isz
        own = vol.read(first, last - first)
        other = _read_other(vol, first, last - first)
        if len(other) != len(own):
            continue
        x = int.from_bytes(own, "little") ^ int.from_bytes(other, "little")
        xb = x.to_bytes(len(own), "little")
        masked = (x & _mask(isz, n)).to_bytes(len(own), "little")
        zero = bytes(isz)
        for ino in members:
            rel = vol.inode_offset(ino) - first
            if masked[rel : rel + isz] != zero:
                continue  # another byte of the slot differs too (one slice compare: a regex over megabytes of
                # zeros cost more)
            extra = own[rel + _XI_OFF] | own[rel + _XI_OFF + 1] << 8
            if extra < _HI_OFF + _HI_LEN - EXT4_GOOD_OLD_INODE_SIZE or extra % 4 or EXT4_GOOD_OLD_INODE_SIZE + extra > isz:
                continue  # no i_checksum_hi in this slot: those bytes are something else
            lo = xb.count(0, rel + _LO_OFF, rel + _LO_OFF + _LO_LEN) < _LO_LEN
            hi = xb.count(0, rel + _HI_OFF, rel + _HI_OFF + _HI_LEN) < _HI_LEN
            if lo or hi:  # (else equal after all: a merged run reached into the slot)
                out.append((ino, lo, hi))
    return out if len(out) >= GROUP_MIN else []


def group_node(vol: Volume, members: list[tuple[int, bool, bool]]) -> Node:
    """Return the node standing for ``members`` (from :func:`checksum_only`).

    Each field's extents are those of the members whose field differs, so a field's member count is the number
    of its extents; the node's extents are every member's slot.
    """
    base, isz = vol.base, vol.inode_size
    offs = [(base + vol.inode_offset(ino), lo, hi) for ino, lo, hi in members]
    slots = merge_extents(Extent(o, isz) for o, _lo, _hi in offs)
    fields: list[Field] = []
    derived: list[Derived] = []
    inos = [ino for ino, _lo, _hi in members]
    for name, moff, mlen, which in (("i_checksum_lo", _LO_OFF, _LO_LEN, 1), ("i_checksum_hi", _HI_OFF, _HI_LEN, 2)):
        exts = tuple(Extent(m[0] + moff, mlen) for m in offs if m[which])
        if not exts:
            continue
        first = exts[0].offset - moff
        k = next(i for i, m in enumerate(offs) if m[which])
        v = int.from_bytes(vol.read(first - base + moff, mlen), "little")
        more = f" (inode {inos[k]}; {len(exts) - 1:,} more inodes)" if len(exts) > 1 else f" (inode {inos[k]})"
        fields.append(Field(name, v, exts, f"{v:#0{2 + 2 * mlen}x}{more}"))
        derived.append(Derived(name, slots, vol.seeds))
    lst = vol.ino_paths.get(inos[0])
    n = len(members)
    return Node(
        kind="ext4.inode",
        key=GROUP_KEY,
        label=f"{n:,} inodes (only their checksums differ)",
        extents=slots,
        fields=tuple(fields),
        derived=tuple(derived),
        attrs={"group_size": n, "first_ino": inos[0], "last_ino": inos[-1], "first_path": lst[0] if lst else ""},
    )


def shared_group(vol: Volume, key: str) -> tuple[list[Any], Node | None] | None:
    """Return side A's members and group node of ``key`` (``"inodes"``, ``"dirs"``) for side B to take, or None.

    Both sides form a group from the same bytes, so when B's volume is A's region (``vol.peer``: same geometry and
    descriptors) at the same offset with the same checksum seeds, A's members are B's: B skips the search.
    """
    peer = vol.peer
    diff = vol.ctx.diff
    if peer is None or diff is None or diff.delta != 0 or peer.base != vol.base or peer.seeds != vol.seeds:
        return None
    return peer.groups_made.get(key)


def twin_node(vol: Volume, node: Node) -> Node:
    """Return side B's group node for side A's ``node``: the same places, B's value of each field's first member."""
    fields = []
    for f in node.fields:
        first = f.extents[0]
        v = int.from_bytes(vol.read(first.offset - vol.base, first.length), "little")
        rest = (f.display or "").partition(" ")[2]
        fields.append(Field(f.name, v, f.extents, f"{v:#0{2 + 2 * first.length}x}" + (f" {rest}" if rest else "")))
    return Node(kind=node.kind, key=node.key, label=node.label, extents=node.extents, fields=tuple(fields),
                derived=node.derived, attrs=node.attrs)


_MAPPING = tuple(C_INODE.span(name) for name in ("i_mode", "i_size_lo", "i_flags", "i_block", "i_size_high"))
"""Inode members that decide which blocks a directory owns and how they are read."""


def tail_only_dirs(vol: Volume, inos: list[int]) -> list[tuple[int, list[int]]]:
    """Return ``(ino, member blocks)`` for the directories of ``inos`` (differing, ascending) whose differing blocks
    are all leaf blocks differing in their tail's ``det_checksum`` only; empty when fewer than :data:`GROUP_MIN`
    blocks qualify or the group cannot be formed here."""
    if not vol.csum:
        return []
    most = sum(n for ino in inos if (info := vol.inodes.get(ino)) is not None for _l, _p, n, _u in info.runs)
    if most < GROUP_MIN or not _seed_differs(vol) or not _placed_alike(vol):
        return []  # (too few blocks to group, even if every one qualified)
    diff = vol.ctx.diff
    assert diff is not None
    shift = _a_shift(vol)
    bs = vol.bs
    out: list[tuple[int, list[int]]] = []
    total = 0
    for ino in inos:
        info = vol.inodes.get(ino)
        if info is None or info.errors or info.inline or not info.runs or info.flags & EXT4_INDEX_FL:
            continue  # (an htree's interior blocks have their checksum elsewhere: built as they are)
        slot = vol.base + vol.inode_offset(ino) - shift
        if any(diff.count_in(Extent(slot + off, n)) for off, n in _MAPPING):
            continue
        if any(vol._differs(b * bs, bs) for b, _v, _l, _k in info.tree) or vol._dir_entries_differ(info):
            continue
        blocks = [p + k for _l, p, n, u in info.runs if not u for k in range(n)
                  if diff.count_in(Extent(vol.base + (p + k + 1) * bs - 4 - shift, 4))]
        if blocks and all((p + n) * bs <= min(vol.limit, vol.avail) for _l, p, n, u in info.runs if not u):
            # (a directory cut by the end of either image stays a node of its own)
            out.append((ino, blocks))
            total += len(blocks)
    return out if total >= GROUP_MIN else []


def dir_group_node(vol: Volume, dirs: list[tuple[int, list[int]]]) -> Node:
    """Return the node standing for the directory blocks of ``dirs`` (from :func:`tail_only_dirs`)."""
    bs = vol.bs
    blocks = sorted(b for _ino, bl in dirs for b in bl)
    tails = tuple(Extent(vol.abs(b, bs - 4), 4) for b in blocks)
    first = int.from_bytes(vol.read((blocks[0] + 1) * bs - 4, 4), "little")
    n = len(blocks)
    more = f" ({n - 1:,} more blocks)" if n > 1 else ""
    whole = merge_extents(Extent(vol.abs(b), bs) for b in blocks)
    lst = vol.ino_paths.get(dirs[0][0])
    return Node(
        kind="ext4.dir_block",
        key=GROUP_KEY,
        label=f"{n:,} directory blocks of {len(dirs):,} directories (only their checksums differ)",
        extents=whole,
        fields=(Field("det_checksum", first, tails, f"{first:#010x}{more}"),),
        derived=(Derived("det_checksum", whole, vol.seeds + ("ext4.inode:i_generation",)),),
        attrs={"group_size": n, "file_type": "dir", "directories": len(dirs), "first_path": lst[0] if lst else ""},
    )


def _seed_differs(vol: Volume) -> bool:
    """Return True when a checksum seed (``s_uuid``, or ``s_checksum_seed`` with the csum_seed feature) differs.

    That is what changes every checksum at once; without it, checksum-only differences are rare oddities (and
    searching for them in a rebuilt image's 54,000 differing slots cost 0.16 s for nothing).
    """
    for ref in vol.seeds:
        kind, _, name = ref.partition(":")
        if kind == "ext4.superblock" and name in _SB_NAMES:
            off, n = C_SB.span(name)
            if _differs(vol, 1024 + off, n):
                return True
    return False


def _placed_alike(vol: Volume) -> bool:
    """Return True when both images place every inode slot and inode bitmap at the same offsets (equal bytes)."""
    diff = vol.ctx.diff
    if (diff is None or diff.src_a is None or diff.src_b is None or not vol.csum or vol.inode_size <= EXT4_GOOD_OLD_INODE_SIZE
            or vol.base + vol.size > VBASE):
        return False
    for name in _SB_GEOMETRY:
        off, n = C_SB.span(name)
        if _differs(vol, 1024 + off, n):
            return False
    for g in range(vol.groups):
        at = gd_location(vol, "gdt", g)
        if at is None:
            return False
        for name in _GD_PLACES:
            off, n = C_GD.span(name)
            if off + n <= vol.desc_size and _differs(vol, at + off, n):
                return False
    return True


def _bitmap_extent(vol: Volume, g: int) -> tuple[int, int]:
    """Return the filesystem offset and size of group ``g``'s inode bitmap (nothing when uninitialised)."""
    ib = vol.gd[g][1]
    if not 0 < ib < vol.blocks_count:
        return 0, 0
    return ib * vol.bs, vol.ipg // 8


def _differs(vol: Volume, off: int, n: int) -> bool:
    """Return True when a byte of ``[off, off + n)`` (filesystem offsets) differs, counted exactly.

    Not :meth:`Volume._differs`: that answers from merged runs, which reach over up to 15 equal bytes, so a field
    next to a differing one (``s_inodes_count`` beside the free counts) would count as differing.
    """
    return n > 0 and vol.ctx.diff is not None and vol.ctx.diff.count_in(Extent(vol.base + off - _a_shift(vol), n)) > 0


def _a_shift(vol: Volume) -> int:
    """Return what turns this side's offsets into side A's (the diff map's offsets)."""
    diff = vol.ctx.diff
    return diff.delta if diff is not None and vol.ctx.side == "b" else 0


def _read_other(vol: Volume, off: int, n: int) -> bytes:
    """Return ``n`` bytes of the other image aligned with this side's filesystem offset ``off``."""
    diff = vol.ctx.diff
    assert diff is not None and diff.src_a is not None and diff.src_b is not None
    if vol.ctx.side == "a":
        return diff.src_b.read(vol.base + off + diff.delta, n)
    return diff.src_a.read(vol.base + off - diff.delta, n)

"""Inode slots and directory blocks that differ alike (only in their checksums, or only in their times), as group nodes.

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

Inode slots differ in their times alone when a tree is staged anew for each build: ``mke2fs -d`` copies each
file's ``st_ctime`` (which nobody can set) and ``st_atime`` into ``i_ctime``/``i_atime`` and stamps ``i_crtime``
with its own clock (a 54,000-file image rebuilt: 54,000 inodes, 104,000 time causes).  Those slots form the time
group (:func:`times_only`), one field per time and checksum.  Unlike a checksum, a time is a cause that rules
match, so a group field must be matched the way each member's field would be: the group holds only inodes that
every rule treats alike (one path naming the same inode in both images, one link unless a directory, ``i_mtime``
and ``i_generation`` equal, and when ``s_mkfs_time`` differs, times that are the mkfs clock on both sides in all
members of a field or in none), and ``tests/test_ext4.py`` checks on every ext4 fixture pair that grouping
changes no finding, byte, field or path.

References: Documentation/filesystems/ext4/inodes.rst (``i_checksum_lo``/``i_checksum_hi``, ``i_extra_isize``),
checksums.rst; e2fsprogs lib/ext2fs/csum.c (``ext2fs_inode_csum``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from imgdiff.formats.ext4.c_ext4 import EXT4_GOOD_OLD_INODE_SIZE, EXT4_INDEX_FL, S_IFDIR, S_IFMT
from imgdiff.formats.ext4.common import C_GD, C_INODE, C_SB, _time_extra_text, _time_text
from imgdiff.formats.ext4.groups import gd_location
from imgdiff.model import Derived, Extent, Field, Node, merge_extents
from imgdiff.ruleset.predicates_ext4 import MKFS_SLACK
from imgdiff.source import VBASE

if TYPE_CHECKING:
    from imgdiff.formats.ext4.volume import InodeInfo, Volume

GROUP_MIN = 64
"""Fewer checksum-only slots than this are built as inode nodes of their own (a small image lists them)."""

GROUP_KEY = "(checksums only)"
"""The group node's key among the inode nodes (inode keys are paths or ``ino:N``)."""

TIME_KEY = "(times only)"
"""The key of the node standing for the inodes whose times (and checksums) alone differ."""

_LO_OFF, _LO_LEN = C_INODE.span("i_checksum_lo")
_HI_OFF, _HI_LEN = C_INODE.span("i_checksum_hi")
_XI_OFF, _XI_LEN = C_INODE.span("i_extra_isize")
_CSUM_SPANS = ((_LO_OFF, _LO_LEN), (_HI_OFF, _HI_LEN))

_new = tuple.__new__
"""Named tuples without their Python-level ``__new__`` (an extent per member and field)."""

_TIMES = ("i_atime", "i_ctime", "i_crtime")
"""The timestamps a slot of the time group may differ in (each with its ``_extra``): set from the staging tree's
``st_atime``/``st_ctime`` or the mkfs clock, never by the data, owner or mode (``i_mtime`` has rules of its own)."""
_TIME_MEMBERS = _TIMES + tuple(f"{t}_extra" for t in _TIMES)
_TIME_SPANS = tuple(C_INODE.span(name) for name in _TIME_MEMBERS)
_EXTRA_NEED = max(off + n for off, n in _TIME_SPANS) - EXT4_GOOD_OLD_INODE_SIZE
"""The ``i_extra_isize`` a slot needs for every ``_extra`` time to be what its bytes are."""

_SB_GEOMETRY = ("s_inodes_count", "s_first_data_block", "s_log_block_size", "s_blocks_per_group",
                "s_inodes_per_group", "s_first_ino", "s_inode_size", "s_feature_incompat", "s_desc_size")
"""Superblock members that decide where each inode slot lies."""

_SB_NAMES = frozenset(m[0] for m in C_SB.members)

_GD_PLACES = ("bg_inode_bitmap_lo", "bg_inode_table_lo", "bg_inode_bitmap_hi", "bg_inode_table_hi")
"""Descriptor members that place a group's inode bitmap and table (the ``_hi`` halves with 64-byte descriptors)."""

_REPEATS: dict[tuple[int, int, int], int] = {}


def _mask(isz: int, which: int) -> int:
    """Return the one-slot mask of group kind ``which`` (1: checksums, 2: times and checksums, 3: times) as a
    little-endian integer: 0xFF for every slot byte that must be equal for a slot to join, 0 for those that may
    differ."""
    one = bytearray(b"\xff" * isz)
    for off, n in {1: _CSUM_SPANS, 2: _TIME_SPANS + _CSUM_SPANS, 3: _TIME_SPANS}[which]:
        one[off : off + n] = bytes(n)
    return int.from_bytes(bytes(one), "little")


def _repeat(one: int, isz: int, n: int) -> int:
    """Return the slot mask ``one`` repeated over ``n`` consecutive slots (cached: one per inode table size)."""
    found = _REPEATS.get((one, isz, n))
    if found is None:
        if len(_REPEATS) > 64:
            _REPEATS.clear()
        found = _REPEATS[(one, isz, n)] = int.from_bytes(one.to_bytes(isz, "little") * n, "little")
    return found


@functools.cache
def _window(isz: int) -> bytes:
    """Return one byte per slot byte: 1 outside ``[i_checksum_lo, i_checksum_hi]``, 0 inside."""
    return bytes(b"\x01" * _LO_OFF + bytes(_HI_OFF + _HI_LEN - _LO_OFF) + b"\x01" * (isz - _HI_OFF - _HI_LEN))


@functools.cache
def _time_window(isz: int) -> bytes:
    """Return one byte per slot byte: 0 over ``i_atime``-``i_ctime`` and ``i_checksum_lo``-``i_crtime_extra`` (the
    spans the times and checksums lie in, with what a differing run may reach over between them), 1 elsewhere."""
    w = bytearray(b"\x01" * isz)
    for lo, hi in ((_TIME_SPANS[0][0], _TIME_SPANS[1][0] + 4), (_LO_OFF, min(isz, EXT4_GOOD_OLD_INODE_SIZE + _EXTRA_NEED))):
        w[lo:hi] = bytes(hi - lo)
    return bytes(w)


def checksum_only(vol: Volume, inos: list[int]) -> list[tuple[int, bool, bool]]:
    """Return ``(ino, lo, hi)`` for the inodes of ``inos`` (slots with differing bytes, ascending) that form the
    checksum group: ``lo``/``hi`` say whether ``i_checksum_lo``/``i_checksum_hi`` differ.

    Empty when fewer than :data:`GROUP_MIN` qualify or the group cannot be formed here (see the module text).
    """
    if len(inos) < GROUP_MIN or not vol.csum or not _seed_differs(vol) or not _placed_alike(vol):
        return []
    isz = vol.inode_size
    candidates = _candidates(vol, inos, _window(isz))
    if sum(map(len, candidates.values())) < GROUP_MIN:
        return []
    out: list[tuple[int, bool, bool]] = []
    hi_need = _HI_OFF + _HI_LEN - EXT4_GOOD_OLD_INODE_SIZE  # (i_checksum_hi inside the slot)
    for ino, _own, _xb, _rel, f in _alike_slots(vol, candidates, 1, _CSUM_SPANS, hi_need):
        if f:  # (else equal after all: a merged run reached into the slot)
            out.append((ino, bool(f & 1), bool(f & 2)))
    return out if len(out) >= GROUP_MIN else []


def _candidates(vol: Volume, inos: list[int], window: bytes) -> dict[int, list[int]]:
    """Return, per block group, the inodes of ``inos`` that may join a group: used, not reserved, wholly inside
    both images, and differing (by the differing runs) in no slot byte that ``window`` marks with 1."""
    isz, ipg, first_ino, inodes = vol.inode_size, vol.ipg, vol.first_ino, vol.inodes
    by_group: dict[int, list[int]] = {}
    for ino in inos:
        if ino < first_ino:
            continue
        info = inodes.get(ino)
        if info is None or info.errors:
            continue
        by_group.setdefault((ino - 1) // ipg, []).append(ino)
    end = min(vol.limit, vol.avail)  # slots cut by the end of either image stay individual nodes
    candidates: dict[int, list[int]] = {}
    for g, members in by_group.items():
        origin = vol.inode_offset(g * ipg + 1) - (g * ipg + 1) * isz  # inode i's slot: origin + i * isz
        if origin + members[-1] * isz + isz > end:
            members = [i for i in members if origin + i * isz + isz <= end]
            if not members:
                continue
        # first without reading: a slot whose differing runs reach a byte outside the window is out (the runs
        # are exact at their ends; inside they may span up to 15 equal bytes, which the window must allow for)
        first = members[0]
        start = origin + first * isz
        found = vol._differing_slots(start, (members[-1] - first + 1) * isz, isz, window)
        if found is not None and found[1]:
            out = found[1]
            members = [i for i in members if i - first not in out]
        if members:
            candidates[g] = members
    return candidates


def _alike_slots(vol: Volume, candidates: dict[int, list[int]], which: int, spans: tuple[tuple[int, int], ...],
                 extra_need: int) -> Iterator[tuple[int, bytes, bytes, int, int]]:
    """Yield ``(ino, own, xor, rel, fields)`` for each slot of ``candidates`` that differs from the other image's
    only where group kind ``which`` allows (see :func:`_mask`) and whose ``i_extra_isize`` (at least
    ``extra_need``, a multiple of 4, inside the slot) makes those bytes what they are named.

    Per block group whose inode bitmap is equal, the slots from the first member's to the last one's are read
    once: ``own`` is this side's bytes, ``xor`` their XOR with the other image's, ``rel`` the slot's offset in
    them, and ``fields`` has bit ``i`` set when a byte of ``spans[i]`` differs (see :func:`_field_bits`).
    """
    isz = vol.inode_size
    one = _mask(isz, which)
    zero = bytes(isz)
    for g, members in candidates.items():
        if _differs(vol, *_bitmap_extent(vol, g)):
            continue  # the used inodes may differ: leave the group's slots to their own nodes
        first = vol.inode_offset(members[0])
        last = vol.inode_offset(members[-1]) + isz
        own = vol.read(first, last - first)
        other = _read_other(vol, first, last - first)
        if len(other) != len(own):
            continue
        x = int.from_bytes(own, "little") ^ int.from_bytes(other, "little")
        xb = x.to_bytes(len(own), "little")
        masked = (x & _repeat(one, isz, (last - first) // isz)).to_bytes(len(own), "little")
        bits = _field_bits(xb, isz, spans)
        m0 = members[0]
        for ino in members:
            rel = (ino - m0) * isz  # (the slots of one block group's table are consecutive)
            if masked[rel : rel + isz] != zero:
                continue  # another byte of the slot differs too (one slice compare: a regex over megabytes of
                # zeros cost more)
            extra = own[rel + _XI_OFF] | own[rel + _XI_OFF + 1] << 8
            if extra < extra_need or extra % 4 or EXT4_GOOD_OLD_INODE_SIZE + extra > isz:
                continue  # the allowed fields are not all in this slot: those bytes are something else
            yield ino, own, xb, rel, bits[rel // isz]


def _slot_offsets(vol: Volume, inos: list[int]) -> list[int]:
    """Return the image offset of each inode's slot (one table lookup per block group, not per inode)."""
    ipg, isz = vol.ipg, vol.inode_size
    out: list[int] = []
    group, origin = -1, 0
    for ino in inos:
        g = (ino - 1) // ipg
        if g != group:
            group, origin = g, vol.base + vol.inode_offset(g * ipg + 1) - (g * ipg + 1) * isz
        out.append(origin + ino * isz)
    return out


def _slot_runs(offs: list[int], isz: int) -> tuple[Extent, ...]:
    """Return the slots at ``offs`` as merged extents (consecutive slots join; unsorted offsets are merged)."""
    if any(b <= a for a, b in itertools.pairwise(offs)):
        return merge_extents(_new(Extent, (o, isz)) for o in offs)
    out: list[Extent] = []
    start = prev = offs[0]
    for o in offs[1:]:
        if o != prev + isz:
            out.append(_new(Extent, (start, prev + isz - start)))
            start = o
        prev = o
    out.append(_new(Extent, (start, prev + isz - start)))
    return tuple(out)


def group_node(vol: Volume, members: list[tuple[int, bool, bool]]) -> Node:
    """Return the node standing for ``members`` (from :func:`checksum_only`).

    Each field's extents are those of the members whose field differs, so a field's member count is the number
    of its extents; the node's extents are every member's slot.
    """
    base, isz = vol.base, vol.inode_size
    inos = [ino for ino, _lo, _hi in members]
    at = _slot_offsets(vol, inos)
    offs = [(o, lo, hi) for o, (_ino, lo, hi) in zip(at, members, strict=True)]
    slots = _slot_runs(at, isz)
    fields: list[Field] = []
    derived: list[Derived] = []
    for name, moff, mlen, which in (("i_checksum_lo", _LO_OFF, _LO_LEN, 1), ("i_checksum_hi", _HI_OFF, _HI_LEN, 2)):
        exts = tuple([_new(Extent, (m[0] + moff, mlen)) for m in offs if m[which]])
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
        label=_label(vol, inos, "checksums"),
        extents=slots,
        fields=tuple(fields),
        derived=tuple(derived),
        attrs={"group_size": n, "first_ino": inos[0], "last_ino": inos[-1], "first_path": lst[0] if lst else ""},
    )


def times_only(vol: Volume, inos: list[int]) -> list[tuple[int, int]]:
    """Return ``(ino, fields)`` for the inodes of ``inos`` (differing slots, ascending) that form the time group:
    ``fields`` has bit ``i`` set when ``_TIME_MEMBERS[i]`` differs (bits 6 and 7: ``i_checksum_lo``/``_hi``).

    A slot joins when nothing but its ``i_atime``, ``i_ctime``, ``i_crtime`` (seconds or ``_extra``) and checksum
    bytes differs and at least one time does; it is a used, non-reserved, non-inline inode with one path (and one
    link, unless a directory); every directory on that path reads the same entries on both sides (so the path
    names this inode in both images: a renamed file stays a node of its own); and its times are alike for the
    rules: when ``s_mkfs_time`` differs, a time that is the mkfs clock on both sides (what EXT003 takes) and one
    that is not do not share a group field (see :func:`_alike_for_rules`).  Empty when fewer than
    :data:`GROUP_MIN` qualify.
    """
    isz = vol.inode_size
    if len(inos) < GROUP_MIN or isz < EXT4_GOOD_OLD_INODE_SIZE + _EXTRA_NEED or not _placed_alike(vol, csum=False):
        return []
    candidates = _candidates(vol, inos, _time_window(isz))
    if sum(map(len, candidates.values())) < GROUP_MIN:
        return []
    spans = _TIME_SPANS + (_CSUM_SPANS if vol.csum else ())
    times_bits = (1 << len(_TIME_SPANS)) - 1
    stable = _StablePaths(vol)
    mkfs = _mkfs_clocks(vol)
    out: list[tuple[int, int]] = []
    values: dict[int, tuple[tuple[int, int], ...]] = {}
    for ino, own, xb, rel, fields in _alike_slots(vol, candidates, 2 if vol.csum else 3, spans, _EXTRA_NEED):
        info = vol.inodes[ino]
        ftype = info.mode & S_IFMT
        if not ftype or (info.links != 1 and ftype != S_IFDIR) or info.inline:
            continue  # hard links (EXT010 reads their paths) stay their own nodes
        if not fields & times_bits:
            continue  # (checksums only, or equal after all: a merged run reached into the slot)
        lst = vol.ino_paths.get(ino)
        if not lst or len(lst) != 1 or not stable.same(lst[0]):
            continue
        out.append((ino, fields))
        if mkfs is not None:
            words = []
            for off, _n in _TIME_SPANS[: len(_TIMES)]:
                mine = int.from_bytes(own[rel + off : rel + off + 4], "little")
                words.append((mine, mine ^ int.from_bytes(xb[rel + off : rel + off + 4], "little")))
            values[ino] = tuple(words)
    if mkfs is not None:
        out = _alike_for_rules(out, values, mkfs)
    return out if len(out) >= GROUP_MIN else []


_FLAGS = tuple(bytes.maketrans(bytes(range(256)), bytes([0]) + bytes([1 << i]) * 255) for i in range(8))
"""Per bit ``i``: the translation of a byte to 0 when it is 0, else to ``1 << i``."""


def _field_bits(xb: bytes, isz: int, spans: tuple[tuple[int, int], ...]) -> bytes:
    """Return one byte per slot of ``xb`` (the XOR of two stretches of slots): bit ``i`` set when a byte of
    ``spans[i]`` differs.  Column by column (a slice per field byte), not slot by slot."""
    n = len(xb) // isz
    acc = 0
    for i, (off, size) in enumerate(spans):
        col = 0
        for k in range(size):
            col |= int.from_bytes(xb[off + k :: isz], "little")
        acc |= int.from_bytes(col.to_bytes(n, "little").translate(_FLAGS[i]), "little")
    return acc.to_bytes(n, "little")


def _mkfs_clocks(vol: Volume) -> tuple[int, int] | None:
    """Return this side's and the other side's ``s_mkfs_time`` when they differ (EXT003 then names the inode times
    equal to them), else None."""
    off, n = C_SB.span("s_mkfs_time")
    own = int.from_bytes(vol.read(1024 + off, n), "little")
    other = int.from_bytes(_read_other(vol, 1024 + off, n), "little")
    return (own, other) if own != other else None


def _alike_for_rules(members: list[tuple[int, int]], values: dict[int, tuple[tuple[int, int], ...]],
                     mkfs: tuple[int, int]) -> list[tuple[int, int]]:
    """Return the members whose differing times a rule would tell apart the same way as the group's.

    A group field is matched like one member's field: a rule that asks whether a time is the mkfs clock on both
    sides (``ext4_time_is_mkfs_clock``) reads the group's seconds field, and for an ``_extra`` field the seconds
    field beside it, when that differs.  So every member whose seconds field differs must give the answer most of
    them give, and a member whose ``_extra`` differs alone (seconds equal: never the mkfs clock) may join only
    when the group's answer for that time is no.  Members are dropped until that holds.
    """
    k = len(_TIMES)

    def near(ino: int, t: int) -> bool:
        own, other = values[ino][t]
        return abs(own - mkfs[0]) <= MKFS_SLACK and abs(other - mkfs[1]) <= MKFS_SLACK

    answer = []
    for t in range(k):
        votes = [near(ino, t) for ino, fields in members if fields >> t & 1]
        answer.append(2 * sum(votes) > len(votes))
    while True:
        has_seconds = [any(f >> t & 1 for _i, f in members) for t in range(k)]
        kept = []
        for ino, fields in members:
            ok = True
            for t in range(k):
                if fields >> t & 1:
                    ok = near(ino, t) == answer[t]
                elif fields >> (t + k) & 1:
                    ok = not (has_seconds[t] and answer[t])
                if not ok:
                    break
            if ok:
                kept.append((ino, fields))
        if len(kept) == len(members):
            return kept
        members = kept


class _StablePaths:
    """Which directory paths read the same entries in both images, from the root down (memoised per path)."""

    def __init__(self, vol: Volume) -> None:
        self.vol = vol
        self.known: dict[str, bool] = {}

    def same(self, path: str) -> bool:
        """Return True when every directory above ``path`` holds the same entries in both images."""
        parent = path.rsplit("/", 1)[0] or "/"
        return self._dir(parent)

    def _dir(self, path: str) -> bool:
        known = self.known
        found = known.get(path)
        if found is not None:
            return found
        todo = [path]  # the path and its ancestors not decided yet, deepest first (no recursion: paths nest deep)
        while todo[-1] != "/" and (up := todo[-1].rsplit("/", 1)[0] or "/") not in known:
            todo.append(up)
        vol = self.vol
        for p in reversed(todo):
            up = p.rsplit("/", 1)[0] or "/"
            ino = vol.paths.get(p)
            info = vol.inodes.get(ino) if ino is not None else None
            known[p] = (ino is not None and info is not None and (p == "/" or known[up])
                        and _entries_alike(vol, ino, info))
        return known[path]


def _entries_alike(vol: Volume, ino: int, info: InodeInfo) -> bool:
    """Return True when directory ``ino`` maps the same blocks on both sides and its entries read the same."""
    if info.errors or info.mode & S_IFMT != S_IFDIR:
        return False
    if vol.ctx.diff is None or _mapping_differs(vol, ino):
        return False
    if not all(vol.maps_alike(b, kind) for b, _v, _l, kind in info.tree):
        return False
    return not vol._dir_entries_differ(info) or _visible_entries_same(vol, info)


def _visible_entries_same(vol: Volume, info: InodeInfo) -> bool:
    """Return True when every differing byte of the directory's blocks lies outside what a reader of its live
    entries sees: the 8-byte header and the name of each entry along the block's ``rec_len`` chain.

    What the chain steps over is never read as an entry: an htree block's index behind its fake entry (a dx_root
    after ``..``, a dx_node after an empty entry spanning the block, with their ``dt_checksum``), a leaf tail's
    ``det_checksum``, the slack of deleted entries.  The visible bytes being equal, both sides walk the same chain
    and read the same names and inode numbers (an image with another UUID differs in every htree's checksums).
    """
    if info.inline or vol.ctx.diff is None:
        return False
    bs = vol.bs
    for _l, p, n, unwritten in info.runs:
        for k in range(n):
            off = (p + k) * bs
            if not vol._differs(off, bs):
                continue
            if unwritten:
                return False  # (read as zeros, whatever its bytes: not a directory's to change)
            block = vol.read(off, bs)
            if len(block) < bs:
                return False
            pos = 0
            while pos < bs:
                rec_len = block[pos + 4] | block[pos + 5] << 8 if pos + 8 <= bs else 0
                name_len = block[pos + 6] if pos + 8 <= bs else 0
                if rec_len < 8 or rec_len % 4 or pos + rec_len > bs or 8 + name_len > rec_len:
                    return False  # not a chain this check can follow (65,536-byte blocks, damage): read it all
                if _differs(vol, off + pos, 8 + name_len):
                    return False
                pos += rec_len
    return True


def _member_text(vol: Volume, name: str, v: int, slot: int) -> str:
    """Return the display of a group field's first value as its inode's own field shows it."""
    if name.startswith("i_checksum"):
        return f"{v:#06x}"
    if name.endswith("_extra"):
        return f"nsec={v >> 2} epoch={v & 3}"
    xoff, _n = C_INODE.span(f"{name}_extra")
    return _time_extra_text(v, int.from_bytes(vol.read(slot + xoff, 4), "little"))


def _group_text(vol: Volume, name: str, exts: tuple[Extent, ...], first_ino: int) -> str:
    """Return the display of a group field on this side: its first member's value, and for a time the earliest
    and latest of all members' values (what a reader of the times needs: one moment, or spread)."""
    moff = C_INODE.span(name)[0]
    slot = exts[0].offset - moff - vol.base
    v = int.from_bytes(vol.read(slot + moff, exts[0].length), "little")
    text = _member_text(vol, name, v, slot)
    n = len(exts)
    if n == 1:
        return f"{text} (inode {first_ino})"
    more = f"inode {first_ino}; {n - 1:,} more inodes"
    if name in _TIMES:
        lo, hi = _time_range(vol, exts, moff, C_INODE.span(f"{name}_extra")[0])
        more += f"; all {_time_text(lo)} … {_time_text(hi)}" if lo != hi else f"; all {_time_text(lo)}"
    return f"{text} ({more})"


def _ino_at(vol: Volume, at: int, name: str) -> int:
    """Return the inode whose field ``name`` lies at filesystem offset ``at`` (a member of a group: in a table)."""
    slot = at - C_INODE.span(name)[0]
    for g in range(vol.groups):
        rel = slot - vol.gd[g][2] * vol.bs
        if 0 <= rel < vol.ipg * vol.inode_size:
            return g * vol.ipg + rel // vol.inode_size + 1
    return 0


def _time_range(vol: Volume, exts: tuple[Extent, ...], moff: int, xoff: int) -> tuple[int, int]:
    """Return the earliest and latest second of a time field over the slots of ``exts`` (the field's extents),
    with each ``_extra`` word's epoch bits; the slots are read per stretch of table, as 32-bit words."""
    lo, hi = 1 << 62, -(1 << 62)
    k, n = 0, len(exts)
    si, xi = moff // 4, xoff // 4
    while k < n:
        first = exts[k].offset
        j = k
        while j + 1 < n and exts[j + 1].offset - first < (1 << 20):  # one read per MiB of slots
            j += 1
        size = exts[j].offset - first + vol.inode_size
        buf = vol.read(first - moff - vol.base, size)
        words = memoryview(buf + bytes(-len(buf) % 4 + max(0, size - len(buf)))).cast("I")
        at = [(e.offset - first) // 4 for e in exts[k : j + 1]]
        # signed seconds, plus the _extra word's epoch bits
        secs = [words[w + si] - ((words[w + si] & 0x80000000) << 1) + ((words[w + xi] & 3) << 32) for w in at]
        lo, hi = min(lo, *secs), max(hi, *secs)
        k = j + 1
    return lo, hi


def time_group_node(vol: Volume, members: list[tuple[int, int]]) -> Node:
    """Return the node standing for ``members`` (from :func:`times_only`): one field per time (and checksum) that
    differs in any member, whose extents are those members' bytes of it; the node's extents are every slot.

    ``member_paths`` names every member (a finding lists the paths of the files it is about).
    """
    base, isz = vol.base, vol.inode_size
    offs = _slot_offsets(vol, [ino for ino, _f in members])
    slots = _slot_runs(offs, isz)
    names = _TIME_MEMBERS + (("i_checksum_lo", "i_checksum_hi") if vol.csum else ())
    spans = _TIME_SPANS + (_CSUM_SPANS if vol.csum else ())
    fields: list[Field] = []
    derived: list[Derived] = []
    alike: dict[int, list[int]] = {}  # members by the fields that differ (a handful of combinations)
    for k, (_ino, f) in enumerate(members):
        alike.setdefault(f, []).append(k)
    order = sorted(range(len(names)), key=lambda i: spans[i][0])  # fields in slot order, as a slot's own
    for i in order:
        name, (moff, mlen) = names[i], spans[i]
        parts = [ks for f, ks in alike.items() if f >> i & 1]
        if not parts:
            continue
        which = parts[0] if len(parts) == 1 else sorted(itertools.chain.from_iterable(parts))
        exts = tuple([_new(Extent, (offs[k] + moff, mlen)) for k in which])
        v = int.from_bytes(vol.read(offs[which[0]] - base + moff, mlen), "little")
        fields.append(Field(name, v, exts, _group_text(vol, name, exts, members[which[0]][0])))
        if name.startswith("i_checksum"):
            derived.append(Derived(name, slots, vol.seeds))
    inos = [ino for ino, _f in members]
    paths = tuple(vol.ino_paths[ino][0] for ino in inos)
    n = len(members)
    return Node(
        kind="ext4.inode",
        key=TIME_KEY,
        label=_label(vol, inos, "times and checksums" if vol.csum else "times"),
        extents=slots,
        fields=tuple(fields),
        derived=tuple(derived),
        attrs={"group_size": n, "first_ino": inos[0], "last_ino": inos[-1], "first_path": paths[0],
               "member_paths": paths},
    )


def _label(vol: Volume, inos: list[int], what: str) -> str:
    """Return a group node's label: what its members differ in, or the one member's own label (a group of one
    forms only with :data:`GROUP_MIN` lowered, and is then placed like that inode)."""
    if len(inos) == 1:
        lst = vol.ino_paths.get(inos[0])
        return f"inode {inos[0]} ({lst[0]})" if lst else f"inode {inos[0]}"
    return f"{len(inos):,} inodes (only their {what} differ)"


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
        at = first.offset - vol.base
        v = int.from_bytes(vol.read(at, first.length), "little")
        if node.key == TIME_KEY:  # B's own first value and range, at A's places
            fields.append(Field(f.name, v, f.extents, _group_text(vol, f.name, f.extents, _ino_at(vol, at, f.name))))
            continue
        text = f.display or ""
        rest = text[text.find(" ("):] if " (" in text else ""  # "(inode 11; 426 more inodes)": A's, the same places
        fields.append(Field(f.name, v, f.extents, f"{v:#0{2 + 2 * first.length}x}" + rest))
    return Node(kind=node.kind, key=node.key, label=node.label, extents=node.extents, fields=tuple(fields),
                derived=node.derived, attrs=node.attrs)


_MAPPING = tuple(C_INODE.span(name) for name in ("i_mode", "i_size_lo", "i_flags", "i_block", "i_size_high"))
"""Inode members that decide which blocks a directory owns and how they are read."""


def _mapping_differs(vol: Volume, ino: int) -> bool:
    """Return True when a byte of inode ``ino``'s :data:`_MAPPING` members differs (counted exactly)."""
    off = vol.inode_offset(ino)
    return any(_differs(vol, off + moff, n) for moff, n in _MAPPING)


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
        if _mapping_differs(vol, ino):
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


def _placed_alike(vol: Volume, csum: bool = True) -> bool:
    """Return True when both images place every inode slot and inode bitmap at the same offsets (equal bytes).

    ``csum``: and the filesystem has metadata checksums (the checksum groups' condition)."""
    diff = vol.ctx.diff
    if (diff is None or diff.src_a is None or diff.src_b is None or (csum and not vol.csum)
            or vol.inode_size <= EXT4_GOOD_OLD_INODE_SIZE
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

"""btrfs tree blocks: header and item-header decoding, the validity checks, and the walk over one tree.

A tree block (``nodesize`` bytes, addressed by its logical ``bytenr``) starts with ``struct btrfs_header``.  A leaf
(level 0) continues with ``nritems`` item headers (``struct btrfs_item``: key, offset, size) whose payloads are
packed from the end of the block towards the headers; a node (level > 0) continues with ``nritems`` key pointers
(``struct btrfs_key_ptr``) to child blocks one level down.  Nothing here builds result nodes: this module reads and
checks blocks and hands the decoded item headers to the caller (the parser collects chunks, roots, paths and file
extents from them during the walk, and builds nodes later, only where bytes differ).

References:
    include/uapi/linux/btrfs_tree.h (struct btrfs_header, btrfs_item, btrfs_key_ptr, btrfs_leaf, btrfs_node)
    fs/btrfs/tree-checker.c (btrfs_check_leaf, btrfs_check_node: the checks mirrored by :func:`check_header`)
    https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (Tree blocks)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imgdiff.formats.btrfs.c_btrfs import BTRFS_HEADER, BTRFS_ITEM, BTRFS_KEY_PTR, BTRFS_MAX_LEVEL
from imgdiff.formats.compiled import Compiled
from imgdiff.model import Extent

C_HEADER = Compiled(BTRFS_HEADER)
C_ITEM = Compiled(BTRFS_ITEM)
C_KEY_PTR = Compiled(BTRFS_KEY_PTR)
HEADER_SIZE = C_HEADER.size
ITEM_SIZE = C_ITEM.size
KEY_PTR_SIZE = C_KEY_PTR.size

_HDR = struct.Struct("<32s16sQQ16sQQIB")
_ITEM = struct.Struct("<QBQII")
_PTR = struct.Struct("<QBQQQ")

MAX_TREE_BLOCKS = 1 << 22
"""Tree blocks visited per filesystem at most (4 Mi blocks = 64 GiB of metadata at 16 KiB)."""

Key = tuple[int, int, int]
"""A btrfs key: ``(objectid, type, offset)``."""


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded ``struct btrfs_header`` of one tree block."""

    csum: bytes
    fsid: bytes
    bytenr: int
    flags: int
    chunk_tree_uuid: bytes
    generation: int
    owner: int
    nritems: int
    level: int


@dataclass(frozen=True, slots=True)
class ItemRef:
    """One item header of a leaf: its key and where its payload is (offset from the block start, size)."""

    index: int
    key: Key
    data_off: int
    size: int


@dataclass(frozen=True, slots=True)
class PtrRef:
    """One key pointer of a node."""

    index: int
    key: Key
    blockptr: int
    generation: int


@dataclass(slots=True)
class BlockInfo:
    """A live tree block found by the walk: where it is and what it holds (no payload bytes are kept)."""

    logical: int
    tree: int
    level: int
    copies: list[tuple[Extent, ...]]
    """Absolute physical extents of every copy on this device; ``copies[0]`` is the one that was read."""
    generation: int
    nritems: int
    first_key: Key | None
    parent: int | None = None
    errors: list[str] = field(default_factory=list)
    shared: bool = False
    """Reached from a second tree (a snapshot sharing the block): walked, but owned by the first tree."""


def parse_header(data: bytes) -> Header:
    """Decode the header at the start of ``data`` (at least 101 bytes)."""
    return Header(*_HDR.unpack_from(data, 0))


def check_header(h: Header, logical: int | None, fsid: bytes, nodesize: int, level: int | None) -> str | None:
    """Return why ``h`` is not a valid tree block header (None when it is).

    ``logical``/``level`` are what the referring pointer expects (None: no expectation, e.g. a stale block).
    """
    if h.fsid != fsid:
        return "fsid does not match the superblock"
    if logical is not None and h.bytenr != logical:
        return f"bytenr {h.bytenr} != expected {logical}"
    if h.level >= BTRFS_MAX_LEVEL:
        return f"level {h.level} is out of range"
    if level is not None and h.level != level:
        return f"level {h.level} != expected {level}"
    cap = (nodesize - HEADER_SIZE) // (ITEM_SIZE if h.level == 0 else KEY_PTR_SIZE)
    if h.nritems > cap:
        return f"nritems {h.nritems} exceeds the {cap} that fit"
    if h.level > 0 and h.nritems == 0:
        return "a node without pointers"
    return None


def leaf_items(data: bytes, nritems: int, nodesize: int, errors: list[str]) -> list[ItemRef]:
    """Return the item headers of a leaf whose payloads lie inside the block (bad ones are reported, skipped)."""
    out: list[ItemRef] = []
    end_headers = HEADER_SIZE + nritems * ITEM_SIZE
    for i in range(nritems):
        obj, typ, off, doff, size = _ITEM.unpack_from(data, HEADER_SIZE + i * ITEM_SIZE)
        start = HEADER_SIZE + doff
        if start < end_headers or start + size > nodesize:
            errors.append(f"item {i} payload [{doff}, +{size}) lies outside the leaf's data area")
            continue
        out.append(ItemRef(i, (obj, typ, off), start, size))
    return out


def node_ptrs(data: bytes, nritems: int) -> list[PtrRef]:
    """Return the key pointers of a node."""
    out: list[PtrRef] = []
    for i in range(nritems):
        obj, typ, off, ptr, gen = _PTR.unpack_from(data, HEADER_SIZE + i * KEY_PTR_SIZE)
        out.append(PtrRef(i, (obj, typ, off), ptr, gen))
    return out


ReadBlock = Callable[[int, int | None], tuple[bytes, Header, list[tuple[Extent, ...]]] | str]
Walked = tuple[BlockInfo, bytes, Header, list[ItemRef]]
"""``read(logical, expected level)`` -> (bytes of the good copy, its header, every copy's extents) or why not."""


def walk_tree(
    root: int,
    level: int | None,
    tree: int,
    read: ReadBlock,
    owner_of: dict[int, int],
    may_share: Callable[[int, int], bool],
    budget: list[int],
    errors: list[str],
) -> Iterator[Walked]:
    """Yield every block of the tree rooted at logical ``root`` (depth first, in key order) with its bytes.

    Leaves come with their item headers (nodes with an empty list).  A pointer must lead one level down, so a tree
    cannot loop; ``owner_of`` maps blocks already walked to their tree: a block another tree holds is walked again
    (flagged ``shared``) only when ``may_share(other tree, this tree)`` (snapshots share blocks), else reported.
    ``budget[0]`` bounds the number of blocks over all trees.
    """
    stack: list[tuple[int, int | None, int | None]] = [(root, level, None)]
    mine: set[int] = set()
    while stack:
        logical, want, parent = stack.pop()
        other = owner_of.get(logical)
        if logical in mine or (other is not None and not may_share(other, tree)):
            errors.append(f"tree {tree}: block {logical} is referenced twice; not walked again")
            continue
        if budget[0] <= 0:
            errors.append("too many tree blocks; the walk stopped")
            return
        budget[0] -= 1
        got = read(logical, want)
        if isinstance(got, str):
            errors.append(f"tree {tree}: block {logical}: {got}")
            continue
        data, h, copies = got
        mine.add(logical)
        info = BlockInfo(logical, tree, h.level, copies, h.generation, h.nritems, None, parent, shared=other is not None)
        items: list[ItemRef] = []
        if h.level == 0:
            items = leaf_items(data, h.nritems, len(data), info.errors)
            info.first_key = items[0].key if items else None
        else:
            ptrs = node_ptrs(data, h.nritems)
            info.first_key = ptrs[0].key if ptrs else None
            for p in reversed(ptrs):  # pushed in reverse so that children are visited in key order
                stack.append((p.blockptr, h.level - 1, logical))
        yield info, data, h, items

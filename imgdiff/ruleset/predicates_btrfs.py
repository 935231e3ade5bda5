"""btrfs checks for rules: which random identifier a value is a copy of, which clock a time came from, and which
differences follow from inode numbers and item order.

The btrfs parser (:mod:`imgdiff.formats.btrfs`) puts ``tree`` (``FS_TREE``, ``ROOT_TREE``, ``DATA_RELOC_TREE``,
a subvolume id), ``item_type``, ``objectid`` and, in file-system trees, ``path``, ``ino``, ``file_type``,
``root_dir`` (the tree's top directory) and, on inode items, ``otime``/``mtime`` on item differences; ``stale`` marks
tree blocks found in free space.  The checks compare values with the live identifiers of the same image side,
found among the differences of the same filesystem scope:

* the device UUID (superblock ``dev_item.uuid``), the fsid and the chunk tree UUID (any block header): a stripe's
  ``dev_uuid``, a DEV_ITEM ``uuid`` or a DEV_EXTENT ``chunk_tree_uuid`` is folded only when it equals, on each side,
  that side's value;
* the mkfs clock: the FS_TREE root item's ``otime`` (``time(NULL)`` in btrfs-progs ``mkfs/common.c``); inodes mkfs
  makes itself (ROOT_TREE_DIR, the data relocation tree's directory, a top directory whose ``otime`` is set) carry
  times within :data:`MKFS_SLACK` seconds of it;
* copied staging times: an inode copied from the ``--rootdir`` tree has ``otime`` 0 (btrfs-progs never sets it
  there) and its atime/ctime differ while its mtime does not;
* renumbering: an item keyed by the same path whose inode number (key objectid) differs.
"""

from __future__ import annotations

import struct
import uuid
from collections import defaultdict
from typing import Any

from imgdiff.model import Change, Difference
from imgdiff.ruleset.predicates import PREDICATES, ExplainContext, predicate

MKFS_SLACK = 120
"""Seconds between mkfs.btrfs stamping the root items and the directories it creates (the --rootdir copy of a
large tree runs in between in newer versions)."""

_FS_ITEM_KINDS = frozenset({
    "btrfs.inode_item", "btrfs.inode_ref", "btrfs.inode_extref", "btrfs.dir_item", "btrfs.xattr_item",
    "btrfs.file_extent_item", "btrfs.orphan_item", "btrfs.item",
})
_TIMES = ("atime", "ctime", "mtime", "otime")


def _is_time(field: str) -> bool:
    base, _, part = field.partition(".")
    return base in _TIMES and part in ("sec", "nsec")


def _ints(d: Difference) -> bool:
    return isinstance(d.a, int) and isinstance(d.b, int) and not isinstance(d.a, bool)


class _Index:
    """The btrfs differences of one comparison grouped by node and the live identifiers per scope."""

    def __init__(self, diffs: list[Difference]) -> None:
        self.by_node: dict[str, dict[str, Difference]] = defaultdict(dict)
        self.dev_uuid: dict[str, tuple[Any, Any]] = {}
        self.fsid: dict[str, tuple[Any, Any]] = {}
        self.chunk_uuid: dict[str, tuple[Any, Any]] = {}
        self.subvol_uuids: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        self.mkfs: dict[str, tuple[Any, Any]] = {}
        self.content: dict[str, set[str]] = defaultdict(set)
        self.renumbered: set[str] = set()
        for d in diffs:
            if not d.kind.startswith("btrfs."):
                continue
            self.by_node[d.node_path][d.field] = d
            if d.kind == "btrfs.inode_item" and d.field == "item.key.objectid" and d.change == Change.MODIFIED:
                self.renumbered.add(d.scope)
            if _genuine(d) and (
                (d.kind == "btrfs.file" and d.field in ("data", "compressed_data", "prealloc", "(node)"))
                or (d.kind == "btrfs.file_extent_item" and d.field in ("data", "compressed_data"))
            ):
                self.content[d.scope].add(str(d.attrs.get("path", "")))
            if d.change != Change.MODIFIED or d.derived:
                continue
            if d.kind == "btrfs.superblock" and not d.attrs.get("backup"):
                if d.field == "dev_item.uuid":
                    self.dev_uuid[d.scope] = (d.a, d.b)
                elif d.field == "fsid":
                    self.fsid[d.scope] = (d.a, d.b)
            elif d.kind in ("btrfs.leaf", "btrfs.node") and d.field == "chunk_tree_uuid":
                self.chunk_uuid.setdefault(d.scope, (d.a, d.b))
            elif d.kind == "btrfs.root_item" and d.field == "uuid":
                self.subvol_uuids[d.scope].append((d.a, d.b))
            elif (d.kind == "btrfs.root_item" and d.field == "otime.sec" and d.attrs.get("objectid") == 5
                  and not d.attrs.get("stale")):
                self.mkfs[d.scope] = (d.a, d.b)

    def sibling(self, d: Difference, name: str) -> Difference | None:
        """Return the difference of field ``name`` on the same node as ``d``."""
        return self.by_node.get(d.node_path, {}).get(name)


def _genuine(d: Difference) -> bool:
    """True for a value change of a field both images hold (or a node one holds), not for bytes the engine only
    attributed by offset (another structure sits there in the other image: such differences carry A extents only).
    """
    if d.change == Change.MOVED or d.derived:
        return False
    if d.change == Change.MODIFIED:
        return bool(d.extents_a) and bool(d.extents_b)
    return True


def _index(ctx: ExplainContext) -> _Index:
    key = "btrfs-index"
    cached = ctx.cache.get(key)
    if cached is None or cached[0] is not ctx.differences:
        cached = (ctx.differences, _Index(ctx.differences))
        ctx.cache[key] = cached
    return cached[1]  # type: ignore[no-any-return]


def _same_pair(d: Difference, pair: tuple[Any, Any] | None) -> bool:
    return pair is not None and d.change == Change.MODIFIED and (d.a, d.b) == pair


@predicate
def btrfs_is_dev_uuid(d: Difference, ctx: ExplainContext) -> bool:
    """True when a value is, on each side, that image's device UUID (superblock ``dev_item.uuid``)."""
    return _same_pair(d, _index(ctx).dev_uuid.get(d.scope))


@predicate
def btrfs_fsid_not_from_repart(d: Difference, ctx: ExplainContext) -> bool:
    """True when the fsids are not what systemd-repart derives from the partitions' GUIDs (then mkfs drew them).

    A partition's filesystem whose fsid is repart's HMAC of its partition GUID got it from repart's -U; a random
    fsid then means a random partition GUID (no --seed), which the GPT finding names.
    """
    derived = PREDICATES.get("fs_id_derived_from_partition_guid")
    return derived is None or not derived(d, ctx)


@predicate
def btrfs_is_chunk_tree_uuid(d: Difference, ctx: ExplainContext) -> bool:
    """True when a value is, on each side, that image's chunk tree UUID (as every block header carries it)."""
    return _same_pair(d, _index(ctx).chunk_uuid.get(d.scope))


def _uuid_halves(text: Any) -> tuple[int, int] | None:
    try:
        raw = uuid.UUID(str(text)).bytes
    except ValueError:
        return None
    lo, hi = struct.unpack("<QQ", raw)
    return lo, hi


@predicate
def btrfs_uuid_tree_key(d: Difference, ctx: ExplainContext) -> bool:
    """True for a UUID tree item key that is, on each side, a differing subvolume UUID (objectid/offset halves)."""
    if d.kind != "btrfs.uuid_item" or d.field not in ("item.key.objectid", "item.key.offset") or not _ints(d):
        return False
    part = 0 if d.field == "item.key.objectid" else 1
    for ua, ub in _index(ctx).subvol_uuids.get(d.scope, ()):
        ha, hb = _uuid_halves(ua), _uuid_halves(ub)
        if ha is not None and hb is not None and (ha[part], hb[part]) == (d.a, d.b):
            return True
    return False


@predicate
def btrfs_root_item_clock(d: Difference, ctx: ExplainContext) -> bool:
    """True for a root item's ctime/otime that mkfs set from its clock (non-zero on both sides)."""
    del ctx
    if d.kind != "btrfs.root_item" or d.field not in ("ctime.sec", "otime.sec") or not _ints(d):
        return False
    return bool(d.a) and bool(d.b)


def _mkfs_made(d: Difference) -> bool:
    """True for an inode mkfs.btrfs creates itself rather than copies from the staging tree."""
    tree = d.attrs.get("tree")
    if tree == "ROOT_TREE" and d.attrs.get("objectid") == 6:
        return True
    if tree == "DATA_RELOC_TREE":
        return True
    # btrfs_make_root_dir() sets otime; stat_to_inode_item() (the --rootdir copy) leaves it 0
    return bool(d.attrs.get("root_dir")) and bool(d.attrs.get("otime"))


@predicate
def btrfs_mkfs_clock_inode(d: Difference, ctx: ExplainContext) -> bool:
    """True for a time of an inode mkfs made itself that equals, on each side, that image's mkfs clock."""
    if d.kind != "btrfs.inode_item" or not _is_time(d.field) or d.change != Change.MODIFIED or not _mkfs_made(d):
        return False
    idx = _index(ctx)
    clock = idx.mkfs.get(d.scope)
    if clock is None or not _ints(d):
        return False
    ns = d if d.field.endswith(".nsec") else idx.sibling(d, d.field.partition(".")[0] + ".nsec")
    if ns is not None and _ints(ns) and ns.a and ns.b:
        return False  # mkfs writes 0 nanoseconds: the kernel changed this time afterwards
    if d.field.endswith(".nsec"):
        return True
    return abs(d.a - clock[0]) <= MKFS_SLACK and abs(d.b - clock[1]) <= MKFS_SLACK  # type: ignore[operator]


@predicate
def btrfs_staging_time_copied(d: Difference, ctx: ExplainContext) -> bool:
    """True for atime/ctime of an inode copied from the staging tree whose mtime did not change."""
    if d.kind != "btrfs.inode_item" or d.change != Change.MODIFIED or not _ints(d):
        return False
    if d.field.partition(".")[0] not in ("atime", "ctime") or not _is_time(d.field) or _mkfs_made(d):
        return False
    if "path" not in d.attrs:
        return False
    idx = _index(ctx)
    if _kernel_made(d, idx):
        return False  # not copied from a staging tree: the kernel created it
    if d.field.startswith("ctime") and str(d.attrs.get("path")) in idx.content.get(d.scope, ()):
        return False  # rewriting the file set its ctime
    m = idx.sibling(d, "mtime.sec")
    return m is None or m.change != Change.MODIFIED or not _ints(m)


@predicate
def btrfs_copied_mtime(d: Difference, ctx: ExplainContext) -> bool:
    """True for the mtime of an inode copied from the staging tree (not one mkfs made, not a changed file)."""
    if d.kind != "btrfs.inode_item" or d.field != "mtime.sec" or d.change != Change.MODIFIED or not _ints(d):
        return False
    if _mkfs_made(d) or "path" not in d.attrs or _kernel_made(d, _index(ctx)):
        return False
    return str(d.attrs.get("path")) not in _index(ctx).content.get(d.scope, ())


@predicate
def btrfs_mtime_companion(d: Difference, ctx: ExplainContext) -> bool:
    """True for the other times of an inode whose (copied) mtime differs."""
    if d.kind != "btrfs.inode_item" or not _is_time(d.field) or d.field == "mtime.sec" or _mkfs_made(d):
        return False
    m = _index(ctx).sibling(d, "mtime.sec")
    return m is not None and btrfs_copied_mtime(m, ctx)


def _fs_tree_name(tree: Any) -> bool:
    """Return True for the name of a file-system tree (FS_TREE, a subvolume id, DATA_RELOC_TREE)."""
    return tree in ("FS_TREE", "DATA_RELOC_TREE") or str(tree).isdigit()


def _fs_item(d: Difference) -> bool:
    return d.kind in _FS_ITEM_KINDS and "path" in d.attrs


@predicate
def btrfs_inode_renumbered(d: Difference, ctx: ExplainContext) -> bool:
    """True when an inode item at the same path has another inode number (key objectid) on the other side."""
    del ctx
    if d.kind != "btrfs.inode_item" or d.field != "item.key.objectid" or d.change != Change.MODIFIED:
        return False
    return _ints(d) and d.a >= 256 and d.b >= 256 and not str(d.attrs.get("path", "")).startswith("ino:")  # type: ignore[operator]


@predicate
def btrfs_dir_index_reordered(d: Difference, ctx: ExplainContext) -> bool:
    """True when a directory entry's DIR_INDEX number (its position in the directory) differs."""
    del ctx
    return (d.kind == "btrfs.dir_item" and d.attrs.get("item_type") == "DIR_INDEX" and d.field == "item.key.offset"
            and d.change == Change.MODIFIED and _ints(d))


_NUMBER_FIELDS = frozenset({"item.key.objectid", "location.objectid", "index", "item.offset"})


@predicate
def btrfs_walk_order_consequence(d: Difference, ctx: ExplainContext) -> bool:
    """True for what inode numbers and item order determine: numbers that name inodes, item positions, moves.

    Inode numbers (key objectids, directory entry locations, INODE_REF parents, the owner of a data extent's back
    reference), directory index numbers, where an item sits in its leaf (``item.offset``) and bytes that another
    item occupies on the other side.  A genuine value change of any other field is never taken.
    """
    if d.change == Change.MOVED:
        return _fs_item(d) or d.kind in ("btrfs.leaf", "btrfs.node", "btrfs.block_copy")
    if d.change != Change.MODIFIED:
        return False
    if d.kind == "btrfs.block_copy":
        # bytes of a block's second copy where the two images hold different items (their primaries moved)
        return not d.derived and isinstance(d.a, str) and isinstance(d.b, str) and _fs_tree_name(d.attrs.get("tree"))
    if d.kind in ("btrfs.extent_item", "btrfs.extent_data_ref"):
        return (d.field.endswith(".objectid") or d.field == "objectid") and _ints(d)
    if not _fs_item(d):
        return False
    name = d.field.split("].", 1)[-1] if d.field.startswith("ref[") else d.field
    if name in _NUMBER_FIELDS or (name == "item.key.offset" and d.kind in ("btrfs.inode_ref", "btrfs.dir_item")):
        return _ints(d)
    # bytes of this item compared with another item's bytes at the same place (the engine shows a hex excerpt)
    moved = _index(ctx).sibling(d, "item.offset")
    return isinstance(d.a, str) and isinstance(d.b, str) and moved is not None and moved.change == Change.MODIFIED


@predicate
def btrfs_content_change(d: Difference, ctx: ExplainContext) -> bool:
    """True for a file's data difference (regular extent or inline)."""
    del ctx
    if not _genuine(d):
        return False
    if d.kind == "btrfs.file":
        return d.field in ("data", "compressed_data", "prealloc", "slack", "(node)")
    return d.kind == "btrfs.file_extent_item" and d.field in ("data", "compressed_data")


@predicate
def btrfs_item_of_changed_file(d: Difference, ctx: ExplainContext) -> bool:
    """True for the ctime/mtime of a file whose data differs (writing the file set them; reading sets atime)."""
    return (d.kind == "btrfs.inode_item" and _is_time(d.field) and d.field.startswith(("ctime", "mtime"))
            and str(d.attrs.get("path", "")) in _index(ctx).content.get(d.scope, ()))


@predicate
def btrfs_uninitialized_transid(d: Difference, ctx: ExplainContext) -> bool:
    """True for a directory entry's transid that no transaction wrote: 0 or newer than the leaf on each side.

    btrfs-progs < 6.10 never set ``btrfs_dir_item.transid`` (btrfs_insert_dir_item), leaving whatever the leaf
    buffer held; a real transid is between 1 and the leaf's generation.
    """
    del ctx
    if d.kind != "btrfs.dir_item" or not d.field.endswith("transid") or d.change != Change.MODIFIED or not _ints(d):
        return False
    gen = d.attrs.get("leaf_generation")
    if not isinstance(gen, int):
        return False
    return all(v == 0 or v > gen for v in (d.a, d.b))  # type: ignore[operator]


_FEATURE_FIELDS = frozenset({"compat_flags", "compat_ro_flags", "incompat_flags", "nodesize", "sectorsize",
                             "stripesize", "csum_type"})
_IDENTITY_PARTS = ("uuid", "fsid")


@predicate
def btrfs_feature_change(d: Difference, ctx: ExplainContext) -> bool:
    """True when the primary superblock's feature flags, block sizes or checksum type differ."""
    del ctx
    return (d.kind == "btrfs.superblock" and d.field in _FEATURE_FIELDS and d.change == Change.MODIFIED
            and not d.attrs.get("backup"))


@predicate
def btrfs_layout_consequence(d: Difference, ctx: ExplainContext) -> bool:
    """True for what the filesystem's layout determines when mkfs options or features differ.

    Which trees and items exist, where blocks are allocated and what earlier transactions left in free space:
    added, removed and moved structures, and the addresses, sizes, counters and generations that follow from
    them.  Times, UUIDs, the inode numbers of files and file data keep their own findings.
    """
    del ctx
    if d.change in (Change.ADDED, Change.REMOVED, Change.MOVED):
        return d.kind.startswith("btrfs.") and d.kind != "btrfs.file"
    if d.change != Change.MODIFIED or not d.kind.startswith("btrfs.") or d.kind == "btrfs.uuid_item":
        return False
    name = d.field.rsplit("/", 1)[-1].rsplit(".", 1)[-1] if "/" in d.field else d.field
    if _is_time(d.field.rsplit("/", 1)[-1]) or any(p in d.field for p in _IDENTITY_PARTS):
        return False
    if d.kind in ("btrfs.file",) or (d.kind == "btrfs.file_extent_item" and d.field in ("data", "compressed_data")):
        return False
    if d.kind == "btrfs.dir_item" and d.field.endswith("transid"):
        return False
    if _fs_item(d):
        return name in ("generation", "transid", "item.offset", "offset", "disk_bytenr") or d.field in (
            "item.offset", "item.size")
    return True


@predicate
def btrfs_stale_bytes(d: Difference, ctx: ExplainContext) -> bool:
    """True for differing bytes in space no structure uses (no stale tree block recognised there)."""
    del ctx
    return d.kind in ("btrfs.free", "btrfs.unallocated", "btrfs.beyond_end") and d.field == "unused"


def _positional(d: Difference, idx: _Index) -> bool:
    """True for bytes that differ because an item sits elsewhere in its leaf, not because a value changed."""
    if d.change == Change.MOVED or d.field in ("item.offset", "free"):
        return True
    if d.change != Change.MODIFIED or d.derived or not (isinstance(d.a, str) and isinstance(d.b, str)):
        return False
    if d.kind == "btrfs.block_copy":
        return True
    moved = idx.sibling(d, "item.offset")
    return moved is not None and moved.change == Change.MODIFIED


@predicate
def btrfs_content_layout(d: Difference, ctx: ExplainContext) -> bool:
    """True for what a file's new size determines: its own items, where later items sit, space bookkeeping.

    A file that grew or shrank (or crossed the inline limit, sectorsize) has other EXTENT_DATA and inode sizes,
    moves the items after it in its leaf, and changes the extent, checksum and free-space trees, block group and
    superblock usage counters and the free space.  Positions inside file-system leaves are left to the
    renumbering finding when inodes were renumbered too.  Times, UUIDs and inode numbers keep their own findings.
    """
    idx = _index(ctx)
    content = idx.content.get(d.scope)
    if not content or not d.kind.startswith("btrfs."):
        return False
    if d.kind == "btrfs.file":
        # file data stored elsewhere because the allocation before it changed
        return d.change in (Change.MOVED, Change.MODIFIED) and not _genuine(d)
    tree = d.attrs.get("tree")
    if _fs_item(d) or (d.kind in ("btrfs.leaf", "btrfs.node", "btrfs.block_copy") and _fs_tree_name(tree)):
        mine = str(d.attrs.get("path", "")) in content
        if mine and d.change in (Change.ADDED, Change.REMOVED):
            return True
        if mine and d.change == Change.MODIFIED and not _is_time(d.field) and d.field not in (
                "item.key.objectid", "location.objectid"):
            return True
        if d.kind == "btrfs.file_extent_item" and d.field == "disk_bytenr" and _ints(d):
            return True  # another file's data allocated after the changed one moved
        return _positional(d, idx) and d.scope not in idx.renumbered
    return btrfs_layout_consequence(d, ctx)


def _kernel_made(d: Difference, idx: _Index) -> bool:
    """True for an inode the kernel created: btrfs-progs never writes nanoseconds, the kernel's otime has them."""
    if d.attrs.get("otime_nsec"):
        return True
    o = idx.sibling(d, "otime.nsec")
    return o is not None and _ints(o) and bool(o.a) and bool(o.b)


@predicate
def btrfs_kernel_inode(d: Difference, ctx: ExplainContext) -> bool:
    """True for the creation time (otime) of an inode the kernel created, differing between the images."""
    if d.kind != "btrfs.inode_item" or not d.field.startswith("otime.") or d.change != Change.MODIFIED:
        return False
    return _ints(d) and _kernel_made(d, _index(ctx))


@predicate
def btrfs_kernel_written(d: Difference, ctx: ExplainContext) -> bool:
    """True for what the kernel writes when files are created through a mount: the times, sequence and
    transaction numbers of inodes it created or changed (nanoseconds set), and the root items' ctime it bumps."""
    if d.change != Change.MODIFIED or not _ints(d):
        return False
    idx = _index(ctx)
    if d.kind == "btrfs.root_item" and d.field.startswith("ctime."):
        ns = d if d.field == "ctime.nsec" else idx.sibling(d, "ctime.nsec")
        return ns is not None and _ints(ns) and bool(ns.a) and bool(ns.b)
    if d.kind == "btrfs.dir_item" and d.field.endswith("transid"):
        return not btrfs_uninitialized_transid(d, ctx)
    if d.kind != "btrfs.inode_item":
        return False
    if _kernel_made(d, idx):
        return _is_time(d.field) or d.field in ("sequence", "generation", "transid")
    if _is_time(d.field) or d.field in ("sequence", "transid"):
        # an inode mkfs made that the kernel then changed (a directory that got entries): nanoseconds say so
        base = d.field.partition(".")[0]
        ns = idx.sibling(d, f"{base}.nsec") if _is_time(d.field) else None
        return (ns is not None and _ints(ns) and bool(ns.a) and bool(ns.b)) or d.field in ("sequence", "transid")
    return False

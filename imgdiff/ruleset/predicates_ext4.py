"""ext4 checks for rules: which clock a differing timestamp came from, and how inode differences relate.

The ext4 parser (:mod:`imgdiff.formats.ext4`) puts ``path``, ``ino``, ``file_type`` (``dir``, ``reg``, ...),
``reserved`` (inodes below ``s_first_ino``) and, for hard-linked inodes, ``paths`` on inode differences.  The checks
here look at the other differences of the same comparison (same node, same filesystem scope) to tell apart:

* the mke2fs clock: a time equal to that image's ``s_mkfs_time`` (root, lost+found, reserved inodes, ``i_crtime``);
* directories stamped at build time: a directory whose ``i_mtime`` equals its own ``i_ctime`` on both sides (it
  was created or filled during the build and nobody set its time: systemd-repart < v256 ``mkdir_p_root``);
* copied staging-tree times: ``i_ctime``/``i_atime`` differ while ``i_mtime`` does not (``mke2fs -d`` copies
  ``st_ctime``/``st_atime``; e2fsprogs < 1.47.1 cannot clamp them);
* one or a few files whose ``i_mtime`` differs (an input file changed) versus many (an unclamped tree);
* inode renumbering (a path points to another inode number) versus hard links (a path that is a second name of
  one inode on one side and its own inode on the other);
* what a cause determines and may fold (the folding principle): a file's data determines its size, block count
  and block map but not its mode, owner, generation, times or other xattrs; a symlink's target its size and
  storage; allocation (kernel population, creation order, the htree hash) block maps and placement, never a
  symlink target, a device number, a changed file's data or a live directory entry;
* free space that moved (blocks allocated or released) versus stale bytes (differing bytes in blocks free on both
  sides, checked against the byte comparison);
* a filesystem grown after mkfs (resize2fs's own traces in the superblock) versus one made at another size.

All timestamps compared are the 32-bit seconds fields; ``_extra`` (nanoseconds) differences follow their base field.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from imgdiff.model import Change, Difference, Extent, Finding, Node, merge_extents
from imgdiff.ruleset.predicates import ExplainContext, annotation, predicate

MKFS_SLACK = 2
"""Seconds between mke2fs reading its clock for the superblock and for an inode it creates."""
SAME_TIME = 2
"""Seconds within which a directory's mtime counts as equal to its ctime (both stamped by the same build step)."""
FEW_FILES = 3
"""At most this many files with a differing i_mtime is "a file changed"; more is "the tree's times leak"."""

_TIME_FIELDS = ("i_atime", "i_ctime", "i_mtime", "i_crtime")
_ALLOCATION_FIELDS = frozenset({"i_blocks_lo", "i_blocks_high", "i_size_lo", "i_size_high"})
"""Inode fields that change when a file's data needs another number of blocks."""
_CONTENT_INODE_FIELDS = _ALLOCATION_FIELDS | {"(node)"}
_MAP_FLAGS = 0x00040000 | 0x00080000 | 0x10000000
"""``EXT4_HUGE_FILE_FL | EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL``: how the data is stored, set by its size."""
_INLINE_XATTR = "xattr[system.data]."
"""Field prefix of the ``system.data`` xattr: the part of an inline-data file past the 60 bytes of ``i_block``."""
_SB_CLOCK = ("s_mkfs_time", "s_wtime", "s_lastcheck", "s_mkfs_time_hi", "s_wtime_hi", "s_lastcheck_hi")


class _Index:
    """The ext4 differences of one comparison grouped by node and by scope."""

    def __init__(self, diffs: list[Difference]) -> None:
        self.by_node: dict[str, dict[str, Difference]] = defaultdict(dict)
        self.mkfs: dict[str, tuple[Any, Any]] = {}
        self.file_mtimes: dict[str, set[str]] = defaultdict(set)
        self.alias_paths: dict[str, set[str]] = defaultdict(set)
        self.added_removed: dict[str, set[str]] = defaultdict(set)
        self.content: dict[str, set[str]] = defaultdict(set)
        self.resized: dict[str, set[str]] = defaultdict(set)
        self.links: dict[str, set[str]] = defaultdict(set)
        self.kernel: set[str] = set()
        self.renumbered: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        """Per scope: ``(path, A inode, B inode)`` of every directory entry that points to another inode number."""
        self._shift: dict[str, bool] = {}
        by_node = self.by_node
        for d in diffs:  # a rebuilt image has 200,000 differences: each is looked at once, through locals
            kind = d.kind
            if not kind.startswith("ext4."):
                continue
            field = d.field
            by_node[d.node_path][field] = d
            attrs = d.attrs
            if kind == "ext4.inode":
                if field == "i_generation":
                    self.kernel.add(d.scope)
                elif field == "i_mtime" and attrs.get("file_type") != "dir" and not attrs.get("reserved"):
                    self.file_mtimes[d.scope].add(d.node_path)
                paths = attrs.get("paths")
                if isinstance(paths, tuple):
                    self.alias_paths[d.scope].update(str(p) for p in paths)
                if field == "(node)":
                    if d.change in (Change.ADDED, Change.REMOVED):
                        self.added_removed[d.scope].add(str(attrs.get("path", "")))
                elif field in _ALLOCATION_FIELDS:
                    self.resized[d.scope].add(str(attrs.get("path", "")))
            elif kind == "ext4.superblock":
                if field == "s_mkfs_time" and not attrs.get("backup"):
                    self.mkfs[d.scope] = (d.a, d.b)
            elif kind == "ext4.dirent":
                if (field == "inode" and d.change == Change.MODIFIED
                        and isinstance(d.a, int) and isinstance(d.b, int) and d.a and d.b):
                    self.renumbered[d.scope].append((str(attrs.get("path", "")), d.a, d.b))
            elif kind == "ext4.file" and field in ("data", "(node)") and d.change != Change.MOVED:
                self.content[d.scope].add(str(attrs.get("path", "")))
                if field == "(node)":
                    self.resized[d.scope].add(str(attrs.get("path", "")))
            if field in ("i_block", "data") and attrs.get("file_type") == "lnk" and d.change == Change.MODIFIED:
                self.links[d.scope].add(str(attrs.get("path", "")))

    def sibling(self, d: Difference, name: str) -> Difference | None:
        """Return the difference of field ``name`` on the same node as ``d``."""
        return self.by_node.get(d.node_path, {}).get(name)

    def shifted(self, scope: str) -> bool:
        """Return True when paths were added or removed and every renumbered path kept its place in the order.

        mke2fs -d hands out inode numbers in its (sorted) walk order: a file added early in the walk gives every
        later path the next number, so the A -> B renumbering is one increasing function.  A different order
        of creation (EXT009) permutes the numbers instead.
        """
        found = self._shift.get(scope)
        if found is None:
            pairs = self.renumbered.get(scope, [])
            found = bool(self.added_removed.get(scope)) and bool(pairs)
            if found:
                mapping: dict[int, int] = {}
                for _path, a, b in pairs:
                    if mapping.setdefault(a, b) != b:
                        found = False
                        break
                if found:
                    bs = [mapping[a] for a in sorted(mapping)]
                    found = all(x < y for x, y in itertools.pairwise(bs))
            self._shift[scope] = found
        return found


def _index(ctx: ExplainContext) -> _Index:
    key = "ext4-index"
    cached = ctx.cache.get(key)
    if cached is None or cached[0] is not ctx.differences:
        cached = (ctx.differences, _Index(ctx.differences))
        ctx.cache[key] = cached
    return cached[1]  # type: ignore[no-any-return]


def _base(field: str) -> str:
    """Return the seconds field of a timestamp field (``i_mtime_extra`` -> ``i_mtime``)."""
    return field.removesuffix("_extra")


def _near(a: Any, b: Any, slack: int) -> bool:
    return isinstance(a, int) and isinstance(b, int) and abs(a - b) <= slack


def _time_pair(idx: _Index, d: Difference, name: str) -> tuple[Any, Any] | None:
    """Return the (A, B) values of timestamp ``name`` on ``d``'s node when that field differs."""
    if d.field == name:
        return d.a, d.b
    other = idx.sibling(d, name)
    return (other.a, other.b) if other is not None and other.change == Change.MODIFIED else None


@predicate
def ext4_time_is_mkfs_clock(d: Difference, ctx: ExplainContext) -> bool:
    """True when a superblock or inode time equals, on each side, that image's differing ``s_mkfs_time``."""
    if d.change != Change.MODIFIED:
        return False
    base = _base(d.field)
    if base not in _TIME_FIELDS and base.removesuffix("_hi") not in _SB_CLOCK:
        return False
    idx = _index(ctx)
    mkfs = idx.mkfs.get(d.scope)
    if mkfs is None:
        return False
    if d.kind == "ext4.superblock":
        return base in _SB_CLOCK
    pair = _time_pair(idx, d, base)
    return pair is not None and _near(pair[0], mkfs[0], MKFS_SLACK) and _near(pair[1], mkfs[1], MKFS_SLACK)


@predicate
def ext4_dir_mtime_is_build_time(d: Difference, ctx: ExplainContext) -> bool:
    """True for a directory whose i_mtime equals its own i_ctime on both sides (stamped during the build)."""
    if d.attrs.get("file_type") != "dir" or _base(d.field) not in _TIME_FIELDS:
        return False
    idx = _index(ctx)
    mtime = _time_pair(idx, d, "i_mtime")
    ctime = _time_pair(idx, d, "i_ctime")
    if mtime is None or ctime is None:
        return False
    return _near(mtime[0], ctime[0], SAME_TIME) and _near(mtime[1], ctime[1], SAME_TIME)


@predicate
def ext4_staging_time_copied(d: Difference, ctx: ExplainContext) -> bool:
    """True for i_ctime/i_atime of a populated inode whose i_mtime (and i_generation) did not change."""
    if d.kind != "ext4.inode" or d.change != Change.MODIFIED or d.attrs.get("reserved"):
        return False
    if _base(d.field) not in ("i_ctime", "i_atime"):
        return False
    idx = _index(ctx)
    return idx.sibling(d, "i_mtime") is None and idx.sibling(d, "i_generation") is None


@predicate
def ext4_few_file_mtimes(d: Difference, ctx: ExplainContext) -> bool:
    """True for the i_mtime of a file when at most ``FEW_FILES`` files of this filesystem have a differing one."""
    if d.kind != "ext4.inode" or _base(d.field) != "i_mtime" or d.attrs.get("file_type") == "dir":
        return False
    if d.attrs.get("reserved"):
        return False
    n = len(_index(ctx).file_mtimes.get(d.scope, ()))
    return 0 < n <= FEW_FILES


@predicate
def ext4_many_file_mtimes(d: Difference, ctx: ExplainContext) -> bool:
    """True for the i_mtime of a file when more than ``FEW_FILES`` files of this filesystem have a differing one."""
    if d.kind != "ext4.inode" or _base(d.field) != "i_mtime" or d.attrs.get("file_type") == "dir":
        return False
    if d.attrs.get("reserved"):
        return False
    return len(_index(ctx).file_mtimes.get(d.scope, ())) > FEW_FILES


@predicate
def ext4_mtime_companion(d: Difference, ctx: ExplainContext) -> bool:
    """True for the other times (ctime, atime, nanoseconds) of a file (not a directory) whose i_mtime differs."""
    if d.kind != "ext4.inode" or _base(d.field) not in _TIME_FIELDS or d.field == "i_mtime":
        return False
    if d.attrs.get("file_type") == "dir" or d.attrs.get("reserved"):
        return False
    idx = _index(ctx)
    if idx.sibling(d, "i_generation") is not None:
        return False  # the kernel population explains these times
    return idx.sibling(d, "i_mtime") is not None


@predicate
def ext4_inode_of_changed_file(d: Difference, ctx: ExplainContext) -> bool:
    """True for what a file's data change determines in its inode: size, block count and block map.

    That is ``i_size_*``, ``i_blocks_*``, ``i_block`` (extent root or block pointers), the storage flags
    (extents/inline/huge) when only those bits differ, the ``system.data`` xattr (inline data past 60 bytes), the
    inode itself when the file is added or removed, and the file's extent-tree blocks.  Mode, owner, generation,
    times and other xattrs are not set by the data and keep their own findings.
    """
    if d.kind not in ("ext4.inode", "ext4.extent_block"):
        return False
    if str(d.attrs.get("path", "")) not in _index(ctx).content.get(d.scope, ()):
        return False
    if d.kind == "ext4.extent_block":
        return True
    name = d.field
    if name in _CONTENT_INODE_FIELDS or name == "i_block" or name.startswith(("i_block.", _INLINE_XATTR)):
        return True
    if name == "i_flags":
        return isinstance(d.a, int) and isinstance(d.b, int) and not (d.a ^ d.b) & ~_MAP_FLAGS
    return False


@predicate
def ext4_content_reallocated(d: Difference, ctx: ExplainContext) -> bool:
    """True when a file whose data differs also changed its block count or appeared/disappeared in this scope.

    Used for the block bitmap and free space a content change moves: a file that keeps its blocks allocates
    nothing, so a bitmap or free-space difference beside it has another cause.
    """
    idx = _index(ctx)
    content = idx.content.get(d.scope)
    return content is not None and not content.isdisjoint(idx.resized.get(d.scope, ()))


@predicate
def ext4_inode_renumbered(d: Difference, ctx: ExplainContext) -> bool:
    """True when a directory entry's path points to another inode number and the path exists on both sides."""
    if d.kind != "ext4.dirent" or d.field != "inode" or d.change != Change.MODIFIED:
        return False
    if not (isinstance(d.a, int) and isinstance(d.b, int) and d.a and d.b):
        return False
    idx = _index(ctx)
    if d.scope in idx.kernel:
        return False  # a kernel-populated filesystem: its allocation is part of that finding
    path = str(d.attrs.get("path", ""))
    if idx.shifted(d.scope):
        return False  # an added or removed file moved everything after it (EXT019), not another creation order
    return path not in idx.alias_paths.get(d.scope, ()) and path not in idx.added_removed.get(d.scope, ())


@predicate
def ext4_shifted_by_added_path(d: Difference, ctx: ExplainContext) -> bool:
    """True for what an added or removed path moved: renumbered entries when the renumbering kept its order
    (:meth:`_Index.shifted`), and the entries, blocks and slots of the directories that gained or lost an entry."""
    idx = _index(ctx)
    if not idx.shifted(d.scope):
        return False
    if d.kind in ("ext4.dirent", "ext4.dir_block") and d.change == Change.MOVED:
        return True
    if d.kind == "ext4.dirent" and d.field == "inode":
        return d.change == Change.MODIFIED
    if d.kind in ("ext4.dirent", "ext4.dir_block"):
        path = str(d.attrs.get("path", ""))
        directory = path.rsplit("/", 1)[0] or "/" if d.kind == "ext4.dirent" else path
        return any((p.rsplit("/", 1)[0] or "/") == directory for p in idx.added_removed.get(d.scope, ()))
    return False


@predicate
def ext4_path_added_or_removed(d: Difference, ctx: ExplainContext) -> bool:
    """True for a path (not a free inode slot) that only one side holds."""
    del ctx
    return d.change in (Change.ADDED, Change.REMOVED) and bool(d.attrs.get("path")) and not d.attrs.get("unused")


@annotation
def ext4_file_set_note(f: Finding, ctx: ExplainContext) -> str:
    """Name the added and removed paths and count what moved because of them."""
    added = sorted({str(d.attrs.get("path", "")) for d in f.causes if d.change == Change.ADDED})
    removed = sorted({str(d.attrs.get("path", "")) for d in f.causes if d.change == Change.REMOVED})
    moved = {str(d.attrs.get("path", "")) for d in f.derived
             if d.kind == "ext4.dirent" and d.field == "inode" and not str(d.attrs.get("path", "")).endswith(("/.", "/.."))}
    relocated = {str(d.attrs.get("path", "")) for d in f.derived if d.kind == "ext4.file"} - set(added) - set(removed)
    del ctx
    parts = []
    if added:
        parts.append("added: " + ", ".join(added[:5]) + (f" (+{len(added) - 5} more)" if len(added) > 5 else ""))
    if removed:
        parts.append("removed: " + ", ".join(removed[:5]) + (f" (+{len(removed) - 5} more)" if len(removed) > 5 else ""))
    if moved or relocated:
        parts.append(f"{len(moved)} path(s) got other inode numbers and {len(relocated)} file(s) other data blocks, "
                     "with equal content")
    return "; ".join(parts)


@predicate
def ext4_hardlink_alias(d: Difference, ctx: ExplainContext) -> bool:
    """True for a difference at a path that is a second name of one inode on one side (hard link vs. copy)."""
    idx = _index(ctx)
    path = str(d.attrs.get("path", ""))
    return bool(path) and path in idx.alias_paths.get(d.scope, ())


@predicate
def ext4_regular_file(d: Difference, ctx: ExplainContext) -> bool:
    """True for a difference on a non-directory, non-reserved inode."""
    del ctx
    return d.attrs.get("file_type") not in ("dir", None) and not d.attrs.get("reserved")


@predicate
def ext4_permission_bits(d: Difference, ctx: ExplainContext) -> bool:
    """True when ``i_mode`` differs in permission bits only (same file type)."""
    del ctx
    if d.field != "i_mode" or not isinstance(d.a, int) or not isinstance(d.b, int):
        return False
    return (d.a & 0o170000) == (d.b & 0o170000) and (d.a & 0o7777) != (d.b & 0o7777)


@predicate
def ext4_content_change(d: Difference, ctx: ExplainContext) -> bool:
    """True for a file's data difference (not merely stored elsewhere, not a hard link turned into a copy)."""
    if d.kind != "ext4.file" or d.change == Change.MOVED:
        return False
    return not ext4_hardlink_alias(d, ctx)


@predicate
def ext4_xattr_difference(d: Difference, ctx: ExplainContext) -> bool:
    """True for an extended-attribute field of an inode, or anything of an external xattr block.

    ``system.data`` is not an attribute anybody set: ext4 keeps the part of an inline-data file or directory past
    the 60 bytes of ``i_block`` there (kernel fs/ext4/inline.c, e2fsprogs lib/ext2fs/inline_data.c), so it is
    content, never a leaked attribute.
    """
    del ctx
    if d.kind in ("ext4.xattr_block", "ext4.xattr_blocks"):
        return True
    return d.kind == "ext4.inode" and d.field.startswith("xattr") and not d.field.startswith(_INLINE_XATTR)


@predicate
def ext4_xattr_block_companion(d: Difference, ctx: ExplainContext) -> bool:
    """True for ``i_blocks_*`` of an inode whose external xattr block (``i_file_acl``) was added or removed."""
    if d.kind != "ext4.inode" or d.field not in ("i_blocks_lo", "i_blocks_high"):
        return False
    idx = _index(ctx)
    return idx.sibling(d, "i_file_acl_lo") is not None or idx.sibling(d, "i_file_acl_high") is not None


@predicate
def ext4_unused_inode_slot(d: Difference, ctx: ExplainContext) -> bool:
    """True for an inode-table slot that is free in one image and used (by another path) in the other."""
    del ctx
    return d.kind == "ext4.inode" and bool(d.attrs.get("unused"))


def _free_extents(d: Difference, ctx: ExplainContext) -> tuple[list[Extent], list[Extent]] | None:
    """Return the free-space extents of both sides of ``d`` in A offsets, or None without a byte comparison."""
    dm = ctx.diffmap
    if dm is None:
        return None
    return list(merge_extents(d.extents_a)), list(merge_extents(e.shifted(-dm.delta) for e in d.extents_b))


@predicate
def ext4_free_space_moved(d: Difference, ctx: ExplainContext) -> bool:
    """True for free space whose blocks are not the same in A and B (blocks were allocated or released)."""
    if d.kind != "ext4.free" or d.change != Change.MODIFIED:
        return False
    sides = _free_extents(d, ctx)
    return sides is not None and sides[0] != sides[1]


@predicate
def ext4_stale_free_bytes(d: Difference, ctx: ExplainContext) -> bool:
    """True when bytes differ inside blocks that are free in both images (what is left there from before).

    A block free on one side and in use on the other differs because of that use, not because of stale bytes:
    only the blocks free on both sides count.
    """
    if d.kind not in ("ext4.free", "ext4.beyond_end") or d.change != Change.MODIFIED:
        return False
    sides = _free_extents(d, ctx)
    dm = ctx.diffmap
    if sides is None or dm is None:
        return False
    a, b = sides
    both: list[Extent] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i].offset, b[j].offset), min(a[i].end, b[j].end)
        if lo < hi:
            both.append(Extent(lo, hi - lo))
        if a[i].end <= b[j].end:
            i += 1
        else:
            j += 1
    return any(dm.count_in(e) for e in both)


@predicate
def ext4_content_reallocated_free(d: Difference, ctx: ExplainContext) -> bool:
    """True for free space that moved while a file whose data differs changed its block count."""
    return ext4_free_space_moved(d, ctx) and ext4_content_reallocated(d, ctx)


@predicate
def ext4_device_node(d: Difference, ctx: ExplainContext) -> bool:
    """True for a difference on a character or block device inode."""
    del ctx
    return d.kind == "ext4.inode" and d.attrs.get("file_type") in ("chr", "blk")


@predicate
def ext4_symlink_storage(d: Difference, ctx: ExplainContext) -> bool:
    """True for what a symlink's target determines: its size, block count and where the target is stored.

    Only for a link whose target differs (a fast link's ``i_block`` or a slow link's ``data``); its mode, owner and
    times keep their own findings.
    """
    if d.attrs.get("file_type") != "lnk" or str(d.attrs.get("path", "")) not in _index(ctx).links.get(d.scope, ()):
        return False
    if d.kind in ("ext4.file", "ext4.extent_block"):
        return True
    name = d.field
    if name in _CONTENT_INODE_FIELDS or name.startswith(("i_block", _INLINE_XATTR)):
        return True
    if name == "i_flags":
        return isinstance(d.a, int) and isinstance(d.b, int) and not (d.a ^ d.b) & ~_MAP_FLAGS
    return False


# -- a filesystem grown after mkfs -----------------------------------------------------------------------------

_COMPAT_RESIZE_INODE = 0x0010
_INCOMPAT_64BIT = 0x0080
_GEOMETRY_SB_FIELDS = frozenset({
    "s_blocks_count_lo", "s_blocks_count_hi", "s_r_blocks_count_lo", "s_r_blocks_count_hi", "s_inodes_count",
    "s_free_blocks_count_lo", "s_free_blocks_count_hi", "s_free_inodes_count", "s_overhead_clusters",
    "s_reserved_gdt_blocks", "s_kbytes_written",
})
"""Superblock fields resize2fs sets from the new size (resize/resize2fs.c adjust_fs_info, adjust_reserved_gdt_blocks)
and the write counter its writes advance."""


def _sb_values(node: Node | None) -> dict[str, Any] | None:
    return {f.name: f.value for f in node.all_fields()} if node is not None else None


def _superblocks(ctx: ExplainContext, node_path: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return the field values of the superblock at ``node_path`` in both trees (cached per comparison)."""
    key = "ext4-superblocks"
    cached = ctx.cache.get(key)
    if cached is None or cached[0] is not ctx.differences:
        found: dict[str, list[Node | None]] = defaultdict(lambda: [None, None])
        for side, tree in enumerate((ctx.tree_a, ctx.tree_b)):
            if tree is None:
                continue
            for keys, node in tree.walk():
                if node.kind == "ext4.superblock" and node.key == "superblock":
                    found["/".join(keys)][side] = node
        cached = (ctx.differences, dict(found))
        ctx.cache[key] = cached
    pair = cached[1].get(node_path)
    if pair is None:
        return None
    a, b = _sb_values(pair[0]), _sb_values(pair[1])
    return (a, b) if a is not None and b is not None else None


def _blocks(sb: dict[str, Any]) -> int:
    hi = sb.get("s_blocks_count_hi", 0) if sb.get("s_feature_incompat", 0) & _INCOMPAT_64BIT else 0
    return int(sb["s_blocks_count_lo"]) | (int(hi) << 32)


def _desc_per_block(sb: dict[str, Any]) -> tuple[int, int]:
    """Return (block size, group descriptors per block)."""
    bs = 1024 << int(sb["s_log_block_size"])
    desc = (int(sb.get("s_desc_size") or 32)) if sb.get("s_feature_incompat", 0) & _INCOMPAT_64BIT else 32
    return bs, bs // max(desc, 32)


def _desc_blocks(sb: dict[str, Any]) -> int:
    _bs, dpb = _desc_per_block(sb)
    groups = -(-(_blocks(sb) - int(sb["s_first_data_block"])) // max(int(sb["s_blocks_per_group"]), 1))
    return -(-groups // dpb)


def _mkfs_reserved_gdt(sb: dict[str, Any]) -> int:
    """Return the s_reserved_gdt_blocks mke2fs chooses for this size (lib/ext2fs/initialize.c
    calc_reserved_gdt_blocks: room for 1024 times the size, at most one block of pointers)."""
    bs, dpb = _desc_per_block(sb)
    blocks = _blocks(sb)
    max_blocks = 0xFFFFFFFF
    if blocks < max_blocks // 1024:
        max_blocks = blocks * 1024
    rsv_groups = -(-(max_blocks - int(sb["s_first_data_block"])) // max(int(sb["s_blocks_per_group"]), 1))
    rsv = -(-rsv_groups // dpb) - _desc_blocks(sb)
    return min(rsv, bs // 4)


def _grown(small: dict[str, Any], large: dict[str, Any]) -> bool:
    """Return True when ``large`` is ``small``'s filesystem after resize2fs, by values only resize2fs leaves.

    * e2fsprogs >= 1.46.0 mke2fs records ``s_overhead_clusters`` and resize2fs sets it to 0 (commit 59037c53:
      misc/mke2fs.c, resize/resize2fs.c adjust_fs_info);
    * with resize_inode, resize2fs keeps the descriptor area (descriptor + reserved GDT blocks) constant
      (adjust_reserved_gdt_blocks), where mke2fs would reserve room for 1024 times the new size.
    """
    if large.get("s_overhead_clusters") == 0 and small.get("s_overhead_clusters"):
        return True
    if not small.get("s_feature_compat", 0) & large.get("s_feature_compat", 0) & _COMPAT_RESIZE_INODE:
        return False
    region_small = int(small["s_reserved_gdt_blocks"]) + _desc_blocks(small)
    region_large = int(large["s_reserved_gdt_blocks"]) + _desc_blocks(large)
    return (int(small["s_reserved_gdt_blocks"]) == _mkfs_reserved_gdt(small)
            and int(large["s_reserved_gdt_blocks"]) != _mkfs_reserved_gdt(large)
            and region_small == region_large)


@predicate
def ext4_grown_after_mkfs(d: Difference, ctx: ExplainContext) -> bool:
    """True for the block count of a primary superblock when one side is the other's filesystem grown later.

    The filesystem identity must be the same (s_uuid, s_mkfs_time, s_hash_seed do not differ), and the larger
    side must carry what resize2fs leaves behind (see :func:`_grown`); a filesystem made at another size by
    mke2fs does not match.
    """
    if d.kind != "ext4.superblock" or d.attrs.get("backup") or d.change != Change.MODIFIED:
        return False
    idx = _index(ctx)
    if any(idx.sibling(d, name) is not None for name in ("s_uuid", "s_mkfs_time", "s_hash_seed")):
        return False
    sbs = _superblocks(ctx, d.node_path)
    if sbs is None:
        return False
    a, b = sbs
    try:
        ba, bb = _blocks(a), _blocks(b)
        if ba == bb:
            return False
        return _grown(a, b) if ba < bb else _grown(b, a)
    except (KeyError, TypeError, ValueError):
        return False


@predicate
def ext4_geometry_superblock_field(d: Difference, ctx: ExplainContext) -> bool:
    """True for a superblock field resize2fs sets from the new size (counts, reserved blocks, overhead)."""
    del ctx
    return d.kind == "ext4.superblock" and d.field in _GEOMETRY_SB_FIELDS


@predicate
def ext4_group_added_or_removed(d: Difference, ctx: ExplainContext) -> bool:
    """True for a whole per-group structure present on one side only (a descriptor, bitmap, backup copy)."""
    del ctx
    return d.field == "(node)" and d.change in (Change.ADDED, Change.REMOVED)


@predicate
def ext4_resize_inode(d: Difference, ctx: ExplainContext) -> bool:
    """True for the resize inode (7) and its block map of reserved GDT blocks, which resize2fs rewrites."""
    del ctx
    return d.attrs.get("special") == "resize_inode"


# -- narrowing whole-kind folds ---------------------------------------------------------------------------------


@predicate
def ext4_block_map_field(d: Difference, ctx: ExplainContext) -> bool:
    """True for an inode's block map in ``i_block`` (extent root or block pointers), which allocation decides.

    Not a fast symlink's target (``i_block`` of a link), nor a device's numbers (``i_block[0]``/``[1]``): those are
    content with their own rules.
    """
    del ctx
    if d.kind != "ext4.inode" or not d.field.startswith("i_block"):
        return False
    ftype = d.attrs.get("file_type")
    if ftype == "lnk" and d.field in ("i_block", "i_block.unused"):
        return False
    return not (ftype in ("chr", "blk") and (d.field.startswith("i_block[") or d.field == "i_block.unused"))


@predicate
def ext4_data_relocated(d: Difference, ctx: ExplainContext) -> bool:
    """True for file data stored at other blocks with the same content (not a content change).

    The engine compares a file's ``data`` byte by byte and leaves ``detail`` empty when the content and the size
    are equal; bytes of one file found where the other image keeps another file's are ``moved``.
    """
    del ctx
    if d.kind == "ext4.extent_block" or d.change == Change.MOVED:
        return True
    if d.kind != "ext4.file" or d.change != Change.MODIFIED:
        return False
    return d.field != "data" or d.detail is None


@predicate
def ext4_htree_placement(d: Difference, ctx: ExplainContext) -> bool:
    """True for what the hash decides in an indexed directory: where entries sit, not which entries there are.

    Entries stored elsewhere (``moved``), the record lengths and slack that follow from the packing, the leaf
    block tails, and unused or deleted entries; a live entry added or removed, or pointing to another inode, is
    not the hash's doing.
    """
    del ctx
    if d.kind not in ("ext4.dirent", "ext4.dir_block") or str(d.attrs.get("htree")) != "True":
        return False
    if d.change == Change.MOVED or d.kind == "ext4.dir_block":
        return True
    if d.field == "(node)":
        return bool(d.attrs.get("deleted"))
    return d.field in ("rec_len", "slack")

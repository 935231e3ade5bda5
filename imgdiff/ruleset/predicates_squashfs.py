"""squashfs checks for rules: which superblock flag changed, whether files were stored in another order, and
whether differing inode times are the Nix store's epoch.

The squashfs parser (:mod:`imgdiff.formats.squashfs`) puts on each filesystem's root node the superblock
``flags`` and digests of what it found: ``file_set`` (every path), ``inode_order`` (paths in inode table order),
``data_order`` (files by data block position), ``fragment_order`` (files by fragment and offset) and
``fragments_in_order`` (fragment blocks stored in fragment-index order, as mksquashfs >= 4.4 does by default) and
``links`` (the sets of paths that name one inode: hard links).
The checks compare those values of A and B for the scope a difference belongs to, so a rule names a cause only when
the images show it.
"""

from __future__ import annotations

from typing import Any

from imgdiff.model import Change, Difference, Node
from imgdiff.ruleset.predicates import ExplainContext, predicate

FLAG_FRAGMENTS = (1 << 4) | (1 << 5) | (1 << 6)
"""NO_FRAG, ALWAYS_FRAG, DUPLICATE: tail packing and duplicate detection (-no-fragments, -always-use-fragments,
-no-duplicates)."""
FLAG_EXPORT = 1 << 7
FLAG_XATTRS = 1 << 9
FLAG_COMPRESSION = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 8) | (1 << 10) | (1 << 11)
"""NOI, NOD, NOF, NOX, COMP_OPT, NOID: which tables are stored uncompressed, and whether compressor options follow."""
NIX_EPOCH = frozenset({0, 1})
"""Store path times: 1 (Nix's canonical mtime) and 0 (SOURCE_DATE_EPOCH=0 clamping, or a store without it)."""


def _roots(ctx: ExplainContext) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Return scope path -> (A root attrs, B root attrs) of every squashfs in both trees (cached)."""
    cached = ctx.cache.get("squashfs-roots")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    found: dict[str, list[dict[str, Any]]] = {}
    for side, tree in enumerate((ctx.tree_a, ctx.tree_b)):
        if tree is None:
            continue
        for keys, node in _squashfs_roots(tree):
            found.setdefault("/".join(keys), [{}, {}])[side] = dict(node.attrs)
    out = {k: (v[0], v[1]) for k, v in found.items()}
    ctx.cache["squashfs-roots"] = out
    return out


def _squashfs_roots(tree: Node) -> list[tuple[tuple[str, ...], Node]]:
    """Return every squashfs root node of ``tree`` (nested ones too) with its key chain."""
    out: list[tuple[tuple[str, ...], Node]] = []
    stack: list[tuple[tuple[str, ...], Node]] = [((tree.key,), tree)]
    while stack:
        keys, node = stack.pop()
        if node.kind == "squashfs":
            out.append((keys, node))
        for c in node.children:
            stack.append(((*keys, c.key), c))
    return out


def _pair(d: Difference, ctx: ExplainContext) -> tuple[dict[str, Any], dict[str, Any]] | None:
    pair = _roots(ctx).get(d.scope)
    if pair is None or not pair[0] or not pair[1]:
        return None
    return pair


def _flags_differ(d: Difference, ctx: ExplainContext, mask: int) -> bool:
    pair = _pair(d, ctx)
    if pair is None:
        return False
    fa, fb = pair[0].get("flags"), pair[1].get("flags")
    return isinstance(fa, int) and isinstance(fb, int) and bool((fa ^ fb) & mask)


@predicate
def squashfs_fragment_flags(d: Difference, ctx: ExplainContext) -> bool:
    """True in a squashfs whose NO_FRAG / ALWAYS_FRAG / DUPLICATE superblock flags differ."""
    if d.kind == "squashfs.superblock" and d.field == "flags" and isinstance(d.a, int) and isinstance(d.b, int):
        return bool((d.a ^ d.b) & FLAG_FRAGMENTS)
    return _flags_differ(d, ctx, FLAG_FRAGMENTS)


@predicate
def squashfs_export_flag(d: Difference, ctx: ExplainContext) -> bool:
    """True in a squashfs whose EXPORT flag (the inode lookup table, -exports/-no-exports) differs."""
    return _flags_differ(d, ctx, FLAG_EXPORT)


@predicate
def squashfs_compression_settings(d: Difference, ctx: ExplainContext) -> bool:
    """True for a difference in the compression settings: the compressor, block size, compressor options, or the
    flags that store tables uncompressed (only the flag bits that are compression settings count)."""
    if d.kind == "squashfs.compressor_options":
        return True
    if d.kind != "squashfs.superblock":
        return False
    if d.field in ("compression", "block_size"):
        return True
    if d.field == "flags" and isinstance(d.a, int) and isinstance(d.b, int):
        return bool((d.a ^ d.b) & FLAG_COMPRESSION)
    return False


def _layout_consequence(d: Difference) -> bool:
    """Return True for what an order change can cause: a move, a renumbered inode, or a derived position or block
    (never a changed mode, owner, time or name)."""
    return d.change == Change.MOVED or d.derived or d.field in ("inode_number", "parent_inode")


@predicate
def squashfs_reordered(d: Difference, ctx: ExplainContext) -> bool:
    """True for a move, a renumbered inode or a derived position in a squashfs holding the same paths on both sides
    but in another inode, data or fragment order."""
    if not d.kind.startswith("squashfs."):
        return False
    if not _layout_consequence(d):
        return False
    pair = _pair(d, ctx)
    if pair is None:
        return False
    a, b = pair
    if any(a.get(k) != b.get(k) for k in ("file_set", "flags", "links")):
        return False
    if not (a.get("fragments_in_order") and b.get("fragments_in_order")):
        return False  # fragments out of index order: the parallel writer (squashfs_parallel_fragments)
    return any(a.get(k) != b.get(k) for k in ("inode_order", "data_order", "fragment_order"))


@predicate
def squashfs_parallel_fragments(d: Difference, ctx: ExplainContext) -> bool:
    """True for a move, a renumbered inode or a derived position in a squashfs with the same paths whose fragment
    blocks are stored out of fragment-index order on at least one side (written in completion order by parallel
    fragment compressors)."""
    if not d.kind.startswith("squashfs.") or not _layout_consequence(d):
        return False
    pair = _pair(d, ctx)
    if pair is None:
        return False
    a, b = pair
    return (a.get("file_set") == b.get("file_set") and a.get("links") == b.get("links")
            and not (a.get("fragments_in_order") and b.get("fragments_in_order")))


def _scope_mtimes(ctx: ExplainContext) -> dict[str, list[tuple[Any, Any]]]:
    cached = ctx.cache.get("squashfs-mtimes")
    if cached is None or cached[0] is not ctx.differences:
        by_scope: dict[str, list[tuple[Any, Any]]] = {}
        for x in ctx.differences:
            if x.kind == "squashfs.inode" and x.field == "mtime" and x.change == Change.MODIFIED:
                by_scope.setdefault(x.scope, []).append((x.a, x.b))
        cached = (ctx.differences, by_scope)
        ctx.cache["squashfs-mtimes"] = cached
    return cached[1]  # type: ignore[no-any-return]


@predicate
def squashfs_nix_epoch_mtimes(d: Difference, ctx: ExplainContext) -> bool:
    """True for inode mtimes when every differing mtime of the filesystem is 0 on one side and 1 on the other."""
    if d.kind != "squashfs.inode" or d.field != "mtime":
        return False
    pairs = _scope_mtimes(ctx).get(d.scope, [])
    return bool(pairs) and all({a, b} == NIX_EPOCH for a, b in pairs)


@predicate
def squashfs_tree_mtimes(d: Difference, ctx: ExplainContext) -> bool:
    """True for a differing inode mtime that is not the Nix store epoch pattern (0 versus 1)."""
    return d.kind == "squashfs.inode" and d.field == "mtime" and not squashfs_nix_epoch_mtimes(d, ctx)


@predicate
def squashfs_inode_type_changed(d: Difference, ctx: ExplainContext) -> bool:
    """True for a field of an inode whose ``inode_type`` differs (a basic inode became an extended one: other
    field widths and extra fields such as ``nlink``, ``sparse`` and ``xattr``)."""
    if d.kind != "squashfs.inode":
        return False
    cached = ctx.cache.get("squashfs-type-changed")
    if cached is None or cached[0] is not ctx.differences:
        nodes = {x.node_path for x in ctx.differences
                 if x.kind == "squashfs.inode" and x.field == "inode_type" and x.change == Change.MODIFIED}
        cached = (ctx.differences, nodes)
        ctx.cache["squashfs-type-changed"] = cached
    return d.node_path in cached[1]


@predicate
def squashfs_hardlinks(d: Difference, ctx: ExplainContext) -> bool:
    """True in a squashfs with the same paths on both sides whose hard links differ (paths that are one inode on
    one side and separate inodes on the other), for what that changes: an inode or file present on one side
    only, ``nlink``, the inode type (extended when ``nlink > 1``) and the fields of a retyped inode, and the
    moves, renumbering and positions that follow -- never a mode, owner, time or content."""
    if not d.kind.startswith("squashfs."):
        return False
    pair = _pair(d, ctx)
    if pair is None:
        return False
    a, b = pair
    if a.get("file_set") != b.get("file_set") or a.get("links") == b.get("links"):
        return False
    if d.field == "(node)" and d.change in (Change.ADDED, Change.REMOVED):
        return d.kind in ("squashfs.inode", "squashfs.file", "squashfs.export_entry", "squashfs.id")
    if d.kind == "squashfs.inode" and d.field in ("nlink", "inode_type"):
        return True
    return _layout_consequence(d) or squashfs_inode_type_changed(d, ctx)


@predicate
def squashfs_file_set_changed(d: Difference, ctx: ExplainContext) -> bool:
    """True in a squashfs whose set of paths differs between A and B (a path that only names another inode on
    the other side, a hard link, does not count)."""
    pair = _pair(d, ctx)
    return pair is not None and pair[0].get("file_set") != pair[1].get("file_set")

"""erofs checks: the mkfs clock versus a given time, equal xattr sets stored in another order, and a UUID that
systemd-repart derived from its partition.

systemd-repart formats erofs with ``-U`` set to v4(HMAC-SHA256(partition UUID, "file-system-uuid")) (the same
derivation as for ext4 and vfat, :mod:`imgdiff.ruleset.predicates_gpt`).
"""

from __future__ import annotations

from imgdiff.model import Change, Difference, Finding, Node, Value
from imgdiff.ruleset.predicates import ExplainContext, annotation, predicate
from imgdiff.ruleset.predicates_gpt import derive_fs_uuid


def _nodes(ctx: ExplainContext, side: str) -> dict[str, Node]:
    """Return ``{node path: node}`` of the built erofs superblocks and inodes of one side (once per comparison)."""
    key = f"erofs_nodes_{side}"
    cached = ctx.cache.get(key)
    if cached is None:
        root = ctx.tree_a if side == "a" else ctx.tree_b
        kinds = ("erofs.inode", "erofs.superblock")
        cached = {"/".join(k): n for k, n in root.walk() if n.kind in kinds} if root is not None else {}
        ctx.cache[key] = cached
    return cached  # type: ignore[no-any-return]


def _nsec(node: Node | None) -> int | None:
    f = node.field_named("build_time_nsec") if node is not None else None
    return f.value if f is not None and isinstance(f.value, int) else None


@predicate
def erofs_build_clock(d: Difference, ctx: ExplainContext) -> bool:
    """True when a side's build time has a sub-second part: mkfs.erofs read its clock (-T and SOURCE_DATE_EPOCH
    give whole seconds and a zero build_time_nsec)."""
    na, nb = _nsec(_nodes(ctx, "a").get(d.node_path)), _nsec(_nodes(ctx, "b").get(d.node_path))
    return bool(na) or bool(nb)


@predicate
def erofs_fixed_time_differs(d: Difference, ctx: ExplainContext) -> bool:
    """True when both build times are whole seconds (given by -T or SOURCE_DATE_EPOCH) and they differ."""
    na, nb = _nsec(_nodes(ctx, "a").get(d.node_path)), _nsec(_nodes(ctx, "b").get(d.node_path))
    return na == 0 and nb == 0


def _xattrs(node: Node | None) -> dict[str, Value] | None:
    if node is None:
        return None
    return {f.name.split("#")[0]: f.value for f in node.fields if f.name.startswith("xattr:")}


@predicate
def erofs_same_xattr_set(d: Difference, ctx: ExplainContext) -> bool:
    """True when the inode holds the same xattr names and values on both sides (only their order differs)."""
    paths = [p for p in (d.node_path, d.a, d.b) if isinstance(p, str) and p.startswith("disk")] or [d.node_path]
    for path in dict.fromkeys(paths):
        a, b = _xattrs(_nodes(ctx, "a").get(path)), _xattrs(_nodes(ctx, "b").get(path))
        if a is None or b is None or a != b:
            return False
    return True


def _partition_guid(root: Node | None, path: str) -> str | None:
    parts = path.split("/")
    if root is None or len(parts) < 2:
        return None
    node = next((c for c in root.children if c.key == parts[1] and c.kind == "partition"), None)
    guid = node.attrs.get("guid") if node is not None else None
    return str(guid) if guid else None


@predicate
def erofs_uuid_not_from_partition_guid(d: Difference, ctx: ExplainContext) -> bool:
    """True unless both sides' erofs UUID is systemd-repart's derivation from their partition GUID."""
    for root, value in ((ctx.tree_a, d.a), (ctx.tree_b, d.b)):
        guid = _partition_guid(root, d.node_path)
        if guid is None or str(value).lower() != derive_fs_uuid(guid):
            return True
    return False


# ----------------------------------------------------------------------------------------------------------------
# Content versus layout: an inode that became extended (64 bytes) or compact moves every later inode and block.

_KINDS = ("erofs.inode", "erofs.superblock", "erofs.file", "erofs.dirent", "erofs.dir_block", "erofs")


def _all(ctx: ExplainContext, side: str) -> dict[str, Node]:
    key = f"erofs_all_{side}"
    cached = ctx.cache.get(key)
    if cached is None:
        root = ctx.tree_a if side == "a" else ctx.tree_b
        cached = {"/".join(k): n for k, n in root.walk() if n.kind in _KINDS} if root is not None else {}
        ctx.cache[key] = cached
    return cached  # type: ignore[no-any-return]


def _value(ctx: ExplainContext, side: str, path: str, name: str) -> tuple[bool, Value]:
    node = _all(ctx, side).get(path)
    f = node.field_named(name) if node is not None else None
    return (f is not None, f.value if f is not None else None)


def _same_value(d: Difference, ctx: ExplainContext) -> bool:
    """True when the field holds the same decoded value in A and B (its bytes moved or were re-encoded)."""
    ha, va = _value(ctx, "a", d.node_path, d.field)
    hb, vb = _value(ctx, "b", d.node_path, d.field)
    return ha and hb and va == vb


@predicate
def erofs_content_change(d: Difference, ctx: ExplainContext) -> bool:
    """True for a file whose (decoded) data really differs, or that exists on one side only."""
    if d.change in (Change.ADDED, Change.REMOVED):
        return True
    return d.change == Change.MODIFIED and not _same_value(d, ctx)


def _version_changed(d: Difference) -> bool:
    return (d.kind == "erofs.inode" and d.field == "i_format" and isinstance(d.a, int) and isinstance(d.b, int)
            and bool((d.a ^ d.b) & 1))


@predicate
def erofs_inode_format_changed(d: Difference, ctx: ExplainContext) -> bool:
    """True for an inode stored compact (32 bytes) on one side and extended (64 bytes) on the other."""
    del ctx
    return _version_changed(d)


def _shift_scopes(ctx: ExplainContext) -> set[str]:
    cached = ctx.cache.get("erofs_shift_scopes")
    if cached is None:
        cached = {x.scope for x in ctx.differences if _version_changed(x)}
        ctx.cache["erofs_shift_scopes"] = cached
    return cached  # type: ignore[no-any-return]



@predicate
def erofs_follows_layout_shift(d: Difference, ctx: ExplainContext) -> bool:
    """True for what an inode format change in the same filesystem determines: fields stored elsewhere with equal
    values (later inodes, directory blocks, data), re-encoded equal values of the changed inodes, the extended
    inode's own mtime fields (compact inodes have none), block addresses and NIDs that moved, unused space."""
    if d.scope not in _shift_scopes(ctx) or not d.kind.startswith("erofs"):
        return False
    if d.change == Change.MOVED:
        return True
    if d.field in ("i_mtime", "i_mtime_nsec", "i_reserved", "i_reserved2") and d.change in (Change.ADDED,
                                                                                          Change.REMOVED):
        return True
    if d.field in ("i_reserved", "i_reserved2") and d.change == Change.MODIFIED:
        # compact inodes hold a 32-bit zero, extended ones 16 zero bytes: both unused
        return all(_zeroish(_value(ctx, s, d.node_path, d.field)[1]) for s in ("a", "b"))
    if d.field in ("i_u", "nid", "unused", "i_ino"):
        return d.field != "i_u" or _file_unchanged(d, ctx)
    return d.change == Change.MODIFIED and _same_value(d, ctx)


def _zeroish(v: Value) -> bool:
    return v == 0 or (isinstance(v, bytes) and not v.strip(b"\0"))


def _file_unchanged(d: Difference, ctx: ExplainContext) -> bool:
    """True when the file of an inode whose block address changed has the same data on both sides."""
    path = d.attrs.get("path")
    files = [p for p, n in _all(ctx, "a").items() if n.kind == "erofs.file" and n.attrs.get("path") == path]
    return all(_same_value_at(ctx, p, "data") for p in files)


def _same_value_at(ctx: ExplainContext, path: str, name: str) -> bool:
    ha, va = _value(ctx, "a", path, name)
    hb, vb = _value(ctx, "b", path, name)
    return ha and hb and va == vb


@annotation
def erofs_format_reason(finding: Finding, ctx: ExplainContext) -> str:
    """Say why mkfs.erofs made each changed inode extended: a 32-bit owner, its mtime, its size, its link count."""
    reasons: dict[str, list[str]] = {}
    for d in finding.causes:
        if not _version_changed(d):
            continue
        side = "b" if isinstance(d.b, int) and d.b & 1 else "a"
        node = _all(ctx, side).get(d.node_path)
        if node is None:
            continue
        f = {x.name: x.value for x in node.fields}
        why = []
        if any(isinstance(f.get(k), int) and int(f[k]) > 0xFFFF for k in ("i_uid", "i_gid")):  # type: ignore[arg-type]
            why.append("uid/gid above 65535")
        if isinstance(f.get("i_size"), int) and int(f["i_size"]) > 0xFFFFFFFF:  # type: ignore[arg-type]
            why.append("size above 4 GiB")
        if isinstance(f.get("i_nlink"), int) and int(f["i_nlink"]) > 0xFFFF:  # type: ignore[arg-type]
            why.append("more than 65535 links")
        if not why:
            why.append("its mtime differs from the build time")
        reasons.setdefault(", ".join(why), []).append(str(d.attrs.get("path", d.node_path)))
    parts = [f"extended because of {k}: {len(v)} inode(s) ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
             for k, v in reasons.items()]
    return "; ".join(parts)

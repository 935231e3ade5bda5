"""erofs checks: the mkfs clock versus a given time, equal xattr sets stored in another order, and a UUID that
systemd-repart derived from its partition.

systemd-repart formats erofs with ``-U`` set to v4(HMAC-SHA256(partition UUID, "file-system-uuid")) (the same
derivation as for ext4 and vfat, :mod:`imgdiff.ruleset.predicates_gpt`).
"""

from __future__ import annotations

from imgdiff.model import Difference, Node, Value
from imgdiff.ruleset.predicates import ExplainContext, predicate
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

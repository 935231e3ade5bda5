"""Partition-table checks: systemd-repart's seed derivation of the disk and partition GUIDs.

systemd-repart (src/partition/repart.c) derives, for a seed UUID ``seed``:
disk GUID = v4(HMAC-SHA256(seed, "disk-uuid")); the k-th partition of a type (k = 0, 1, ...) gets
v4(HMAC-SHA256(seed, type_uuid)) for k = 0 and v4(HMAC-SHA256(seed, type_uuid || le64(k))) otherwise, where
v4() takes the first 16 bytes and sets the version-4/RFC-variant bits.  The filesystem UUID of a partition is
v4(HMAC-SHA256(partition GUID, "file-system-uuid")); the vfat serial is its first 4 bytes (mkfs.fat -i).
All verified against systemd-repart 252 images (fixtures gpt-repart-two-seeds, repart-esp-root-random).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid

from imgdiff.model import Change, Difference, Finding, Node
from imgdiff.ruleset.predicates import ExplainContext, annotation, predicate


def _v4(digest: bytes) -> str:
    b = bytearray(digest[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def derive_disk_guid(seed: str) -> str:
    """Return the GPT disk GUID systemd-repart derives from ``seed``."""
    return _v4(hmac.new(uuid.UUID(seed).bytes, b"disk-uuid", hashlib.sha256).digest())


def derive_partition_guid(seed: str, type_guid: str, k: int) -> str:
    """Return the GUID systemd-repart derives for the ``k``-th (0-based) partition of ``type_guid``."""
    msg = uuid.UUID(type_guid).bytes + (struct.pack("<Q", k) if k else b"")
    return _v4(hmac.new(uuid.UUID(seed).bytes, msg, hashlib.sha256).digest())


def _gpt_guids(root: Node | None) -> tuple[str | None, list[tuple[int, str, str]]]:
    """Return (disk GUID, [(index, type GUID, unique GUID)]) from the primary (else backup) GPT of a tree."""
    if root is None:
        return None, []
    gpt = next((c for c in root.children if c.kind == "gpt"), None)
    if gpt is None:
        return None, []
    hdr = next((c for c in gpt.children if c.kind == "gpt.header"), None)
    ents = next((c for c in gpt.children if c.kind == "gpt.entries"), None)
    disk = str(hdr.field_named("DiskGUID").value) if hdr and hdr.field_named("DiskGUID") else None  # type: ignore[union-attr]
    parts: list[tuple[int, str, str]] = []
    for e in ents.children if ents else []:
        t = str(e.field_named("PartitionTypeGUID").value)  # type: ignore[union-attr]
        if t != "00000000-0000-0000-0000-000000000000":
            parts.append((int(e.attrs["index"]), t, str(e.field_named("UniquePartitionGUID").value)))  # type: ignore[arg-type,union-attr]
    return disk, parts


def seed_verdict(root: Node | None, seed: str) -> str:
    """Return how the GUIDs of one tree relate to ``seed``: all derived, none, or which ones."""
    disk, parts = _gpt_guids(root)
    if disk is None:
        return "no GPT"
    ok: list[str] = []
    bad: list[str] = []
    (ok if disk == derive_disk_guid(seed) else bad).append("disk GUID")
    seen: dict[str, int] = {}
    for index, t, u in parts:
        k = seen.get(t, 0)
        seen[t] = k + 1
        (ok if u == derive_partition_guid(seed, t, k) else bad).append(f"partition {index}")
    if not bad:
        return "all GUIDs are derived from this seed"
    if not ok:
        return "no GUID is derived from this seed (another seed, or random)"
    return f"derived from this seed: {', '.join(ok)}; not derived: {', '.join(bad)}"


@annotation
def gpt_seed_check(finding: Finding, ctx: ExplainContext) -> str:
    """With ``--seed``, say per image whether its GUIDs are what systemd-repart derives from that seed."""
    del finding
    seed = ctx.options.get("seed")
    if not seed:
        return "run with --seed UUID to check whether either image's GUIDs were derived from that seed"
    try:
        uuid.UUID(str(seed))
    except ValueError:
        return f"--seed {seed!r} is not a UUID; seed check skipped"
    return f"seed {seed}: A: {seed_verdict(ctx.tree_a, seed)}; B: {seed_verdict(ctx.tree_b, seed)}"


def derive_fs_uuid(partition_guid: str) -> str:
    """Return the filesystem UUID systemd-repart derives from a partition's GUID ("file-system-uuid")."""
    return _v4(hmac.new(uuid.UUID(partition_guid).bytes, b"file-system-uuid", hashlib.sha256).digest())


def _partition_guid(root: Node | None, scope: str) -> str | None:
    parts = scope.split("/")
    if root is None or len(parts) < 2:
        return None
    node = next((c for c in root.children if c.key == parts[1] and c.kind == "partition"), None)
    guid = node.attrs.get("guid") if node is not None else None
    return str(guid) if guid else None


def _fs_id_matches(value: object, expected_uuid: str) -> bool:
    if isinstance(value, str):
        return value.lower() == expected_uuid
    if isinstance(value, int):  # vfat serial: the first 4 bytes of the fs UUID, as mkfs.fat -i %08x
        return value == int(expected_uuid[:8], 16)
    return False


@predicate
def fs_id_derived_from_partition_guid(diff: Difference, ctx: ExplainContext) -> bool:
    """True when both sides' filesystem UUID (or vfat serial) is repart's derivation of their partition GUID."""
    for root, value in ((ctx.tree_a, diff.a), (ctx.tree_b, diff.b)):
        guid = _partition_guid(root, diff.scope)
        if guid is None or not _fs_id_matches(value, derive_fs_uuid(guid)):
            return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Partition-table structure checks: what a resized entry array, a stale CRC or a changed partition set determines.

ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def _table(ctx: ExplainContext) -> tuple[dict[str, Node], dict[str, Node]]:
    """Return ``{node path: node}`` of the disk-level nodes (MBR, GPT headers, entry arrays, entries, partitions).

    Only the top of each tree is walked (never into a partition's filesystem), once per comparison.
    """
    cached = ctx.cache.get("gpt_table")
    if cached is None:
        cached = (_table_paths(ctx.tree_a), _table_paths(ctx.tree_b))
        ctx.cache["gpt_table"] = cached
    return cached  # type: ignore[no-any-return]


def _table_paths(root: Node | None) -> dict[str, Node]:
    out: dict[str, Node] = {}
    if root is None:
        return out
    for child in root.children:
        out[f"{root.key}/{child.key}"] = child
        if child.kind != "gpt":
            continue
        for part in child.children:
            base = f"{root.key}/{child.key}/{part.key}"
            out[base] = part
            if part.kind == "gpt.entries":
                for ent in part.children:
                    out[f"{base}/{ent.key}"] = ent
    return out


def _ival(node: Node | None, name: str) -> int | None:
    f = node.field_named(name) if node is not None else None
    return f.value if f is not None and isinstance(f.value, int) else None


def _header(paths: dict[str, Node], key: str) -> Node | None:
    return next((n for p, n in paths.items() if n.kind == "gpt.header" and n.key == key), None)


def _entry_count(paths: dict[str, Node]) -> int | None:
    return _ival(_header(paths, "primary") or _header(paths, "backup"), "NumberOfPartitionEntries")


def _sector(ctx: ExplainContext, side: str) -> int:
    root = ctx.tree_a if side == "a" else ctx.tree_b
    size = root.attrs.get("sector_size") if root is not None else None
    return size if isinstance(size, int) and size > 0 else 512


def _array_sectors(hdr: Node | None, sector: int) -> int | None:
    n, size = _ival(hdr, "NumberOfPartitionEntries"), _ival(hdr, "SizeOfPartitionEntry")
    if n is None or size is None:
        return None
    return -(-n * size // sector)


def _used(node: Node | None) -> bool | None:
    """Return whether a GPT entry holds a partition (non-zero type GUID), None if it is not an entry."""
    if node is None or node.kind != "gpt.entry":
        return None
    f = node.field_named("PartitionTypeGUID")
    return f is not None and f.value != ZERO_GUID


def _layout_follows_array(paths: dict[str, Node], hdr: Node | None, field: str, sector: int) -> bool:
    """Return True when a header's ``field`` has the value its own entry-array size implies.

    FirstUsableLBA right after the primary array (both headers carry the primary's value), LastUsableLBA right
    before the backup array, the backup array right before the backup header (UEFI 5.3.2; gdisk
    GPTData::SetGPTSize/MoveSecondHeaderToEnd and libfdisk place them so).
    """
    sectors = _array_sectors(hdr, sector)
    value = _ival(hdr, field)
    if hdr is None or sectors is None or value is None:
        return False
    if field == "FirstUsableLBA":
        lba = _ival(_header(paths, "primary"), "PartitionEntryLBA")
        return value == (2 if lba is None else lba) + sectors
    if field == "LastUsableLBA":
        backup = _header(paths, "backup")
        lba = _ival(backup, "PartitionEntryLBA")
        if lba is None:  # no backup header: the backup array would start right below AlternateLBA
            alt = _ival(hdr, "AlternateLBA")
            return alt is not None and value == alt - sectors - 1
        return value == lba - 1
    if field == "PartitionEntryLBA" and hdr.key == "backup":
        my = _ival(hdr, "MyLBA")
        return my is not None and value == my - sectors
    return False


@predicate
def gpt_follows_array_size(d: Difference, ctx: ExplainContext) -> bool:
    """True for a consequence of a different NumberOfPartitionEntries.

    Header fields (FirstUsableLBA, LastUsableLBA, the backup PartitionEntryLBA) when on both sides they are what
    that side's array size implies; entries that exist on one side only because its array is longer, and are
    unused there; entries and raw bytes that lie in either side's entry array area.
    """
    ta, tb = _table(ctx)
    na, nb = _entry_count(ta), _entry_count(tb)
    if na is None or nb is None or na == nb:
        return False
    if d.kind == "gpt.header" and d.change == Change.MODIFIED:
        return all(
            _layout_follows_array(paths, paths.get(d.node_path), d.field, _sector(ctx, side))
            for side, paths in (("a", ta), ("b", tb))
        )
    if d.kind == "gpt.entry" and d.change in (Change.ADDED, Change.REMOVED):
        node = ta.get(d.node_path) if d.change == Change.REMOVED else tb.get(d.node_path)
        index = node.attrs.get("index") if node is not None else None
        return isinstance(index, int) and index > min(na, nb) and _used(node) is False
    if d.kind == "gpt.entry" and d.change == Change.MOVED:
        # an equal entry stored at another offset: the backup array starts elsewhere
        return _same_entry(ctx, d.a) and _same_entry(ctx, d.b)
    if d.change == Change.RAW:
        return _within_arrays(d, ta, tb)
    return False


def _same_entry(ctx: ExplainContext, path: object) -> bool:
    """Return True when the entry at ``path`` (or no entry) has equal fields in A and B."""
    if path is None:
        return True
    ta, tb = _table(ctx)
    a, b = ta.get(str(path)), tb.get(str(path))
    if a is None or b is None:
        return (a or b) is not None and _used(a or b) is False
    return [f.value for f in a.fields] == [f.value for f in b.fields]


def _within_arrays(d: Difference, ta: dict[str, Node], tb: dict[str, Node]) -> bool:
    """Return True when every extent of ``d`` lies in an entry-array area of A or B."""
    areas = [e for paths in (ta, tb) for n in paths.values() if n.kind == "gpt.entries" for e in n.extents]
    exts = list(d.extents_a) + list(d.extents_b)
    return bool(exts) and all(any(x.offset <= e.offset and e.end <= x.end for x in areas) for e in exts)


@predicate
def gpt_crc_mismatch(d: Difference, ctx: ExplainContext) -> bool:
    """True for a header CRC that does not match what it covers in A or in B (a stale or corrupted header)."""
    ta, tb = _table(ctx)
    attr = {"HeaderCRC32": "crc_ok", "PartitionEntryArrayCRC32": "entries_crc_ok"}.get(d.field)
    if attr is None:
        return False
    return any(
        (node := paths.get(d.node_path)) is not None and node.attrs.get(attr) is False for paths in (ta, tb)
    )


def _changed_partitions(ctx: ExplainContext) -> tuple[dict[str, Node], dict[str, Node]]:
    """Return ``{path: partition}`` present only in A (removed) and only in B (added, or of another type)."""
    cached = ctx.cache.get("gpt_changed_parts")
    if cached is None:
        ta, tb = _table(ctx)
        removed = {p: n for p, n in ta.items() if n.kind == "partition" and p not in tb}
        added = {p: n for p, n in tb.items() if n.kind == "partition" and p not in ta}
        cached = (removed, added)
        ctx.cache["gpt_changed_parts"] = cached
    return cached  # type: ignore[no-any-return]


@predicate
def gpt_partition_set_changed(d: Difference, ctx: ExplainContext) -> bool:
    """True for a partition that exists on one side only: a used entry added or removed, a type GUID that changed.

    An unused entry (type GUID zero) that exists on one side only is not a partition: its array is longer
    (GPT007).
    """
    if d.kind == "gpt.entry" and d.field == "PartitionTypeGUID" and d.change == Change.MODIFIED:
        return True
    if d.kind == "gpt.entry" and d.change in (Change.ADDED, Change.REMOVED):
        ta, tb = _table(ctx)
        node = ta.get(d.node_path) if d.change == Change.REMOVED else tb.get(d.node_path)
        other = tb if d.change == Change.REMOVED else ta
        # the other image has this entry array (a missing backup array is a truncated image, IMG001)
        return _used(node) is True and d.node_path.rsplit("/", 1)[0] in other
    return d.kind == "partition" and d.change in (Change.ADDED, Change.REMOVED)


@predicate
def gpt_inside_changed_partition(d: Difference, ctx: ExplainContext) -> bool:
    """True for a difference of a partition that exists on one side only: its nodes, its bytes, its entry.

    A partition added, removed or of another type (its key names the type) determines everything under its key,
    the bytes it covers, and the other fields of a GPT entry that is unused on the other side.
    """
    if d.kind == "gpt.entry" and d.change == Change.MODIFIED:
        ta, tb = _table(ctx)
        ua, ub = _used(ta.get(d.node_path)), _used(tb.get(d.node_path))
        return ua is not None and ub is not None and ua != ub
    removed, added = _changed_partitions(ctx)
    for parts, exts in ((removed, d.extents_a), (added, d.extents_b)):
        for path, part in parts.items():
            if d.node_path == path or d.node_path.startswith(path + "/"):
                return True
            if exts and all(any(x.offset <= e.offset and e.end <= x.end for x in part.extents) for e in exts):
                return True
    return False


@predicate
def gpt_entry_used_both(d: Difference, ctx: ExplainContext) -> bool:
    """True unless ``d`` is a field of a GPT entry that is unused on one side (an added or removed partition)."""
    if d.kind != "gpt.entry":
        return True
    ta, tb = _table(ctx)
    return _used(ta.get(d.node_path)) is True and _used(tb.get(d.node_path)) is True


@predicate
def gpt_gap_bytes(d: Difference, ctx: ExplainContext) -> bool:
    """True for raw bytes of unpartitioned space (between, before or after the partitions)."""
    del ctx
    return d.change == Change.RAW and d.node_path.rsplit("/", 1)[-1].startswith("gap@")


@predicate
def gpt_past_other_end(d: Difference, ctx: ExplainContext) -> bool:
    """True for a structure that exists on one side only because it lies past the end of the shorter image."""
    other = ctx.tree_b if d.change == Change.REMOVED else ctx.tree_a if d.change == Change.ADDED else None
    exts = d.extents_a if d.change == Change.REMOVED else d.extents_b
    if other is None or not other.extents or not exts:
        return False
    end = other.extents[0].end
    return all(e.offset >= end for e in exts)

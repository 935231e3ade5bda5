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

from imgdiff.model import Difference, Finding, Node
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

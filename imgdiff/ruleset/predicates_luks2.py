"""LUKS2 checks: whether a LUKS2 UUID is systemd-repart's derivation from its partition GUID.

systemd-repart (src/partition/repart.c ``partition_encrypt``) formats LUKS2 with the UUID
v4(HMAC-SHA256(partition UUID, "luks-uuid")); a LUKS2 UUID that is that derivation on both sides changes only
because the partition GUID changed (a seed difference), not because cryptsetup drew it.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from imgdiff.model import Difference, Node
from imgdiff.ruleset.predicates import ExplainContext, predicate


def derive_luks_uuid(partition_guid: str) -> str:
    """Return the LUKS2 UUID systemd-repart derives from a partition GUID."""
    b = bytearray(hmac.new(uuid.UUID(partition_guid).bytes, b"luks-uuid", hashlib.sha256).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def _partition_guid(root: Node | None, path: str) -> str | None:
    parts = path.split("/")
    if root is None or len(parts) < 2:
        return None
    node = next((c for c in root.children if c.key == parts[1] and c.kind == "partition"), None)
    guid = node.attrs.get("guid") if node is not None else None
    return str(guid) if guid else None


@predicate
def luks2_uuid_not_from_partition_guid(d: Difference, ctx: ExplainContext) -> bool:
    """True unless both sides' LUKS2 UUID is repart's derivation from their partition GUID."""
    for root, value in ((ctx.tree_a, d.a), (ctx.tree_b, d.b)):
        guid = _partition_guid(root, d.node_path)
        if guid is None or str(value).lower() != derive_luks_uuid(guid):
            return True
    return False

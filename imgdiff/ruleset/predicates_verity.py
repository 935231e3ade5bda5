"""dm-verity checks: whether the two images share systemd-repart's seed, for the note on a random salt.

systemd-repart >= 255 derives the verity salt as HMAC-SHA256(seed, "verity-salt") and the superblock UUID from
HMAC-SHA256(seed, "verity-uuid") (src/partition/repart.c, PR #28695); before that, and with veritysetup without
``--salt``/``--uuid``, both are random.  Equal GPT disk GUIDs mean an equal seed, so a salt that still differs is
random; different disk GUIDs leave both explanations open.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from imgdiff.model import Finding, Node
from imgdiff.ruleset.predicates import ExplainContext, annotation


def derive_salt(seed: str) -> str:
    """Return the verity salt (hex) systemd-repart >= 255 derives from ``seed``."""
    return hmac.new(uuid.UUID(seed).bytes, b"verity-salt", hashlib.sha256).hexdigest()


def _disk_guid(root: Node | None) -> str | None:
    if root is None:
        return None
    for c in root.children:
        if c.kind == "gpt":
            hdr = next((h for h in c.children if h.kind == "gpt.header"), None)
            f = hdr.field_named("DiskGUID") if hdr is not None else None
            return str(f.value) if f is not None else None
    return None


@annotation
def verity_seed_note(finding: Finding, ctx: ExplainContext) -> str:
    """Say whether the images share the repart seed (equal disk GUIDs), and check the salts against ``--seed``."""
    da, db = _disk_guid(ctx.tree_a), _disk_guid(ctx.tree_b)
    salts = [(d.a, d.b) for d in finding.causes if d.field == "salt"]
    notes: list[str] = []
    if da is None or db is None:
        notes.append("no GPT: the salt was chosen by whoever ran veritysetup (random unless --salt is given)")
    elif da == db:
        notes.append("the GPT disk GUIDs are equal (same repart seed), so the salt is random, not seed-derived")
    else:
        notes.append("the GPT disk GUIDs differ too: with systemd >= 255 the salt follows the seed (see GPT001)")
    seed = ctx.options.get("seed")
    if seed and salts:
        try:
            want = derive_salt(str(seed))
        except ValueError:
            want = ""
        if want:
            a, b = salts[0]
            verdict = {(True, True): "both", (True, False): "A only", (False, True): "B only"}.get(
                (a == want, b == want), "neither")
            notes.append(f"salt derived from seed {seed}: {verdict}")
    return "; ".join(notes)

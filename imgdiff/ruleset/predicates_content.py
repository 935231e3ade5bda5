"""Checks for the content rules that look at archives and streams decoded by the engine (cpio members).

A cpio archive inside a compressed stream is parsed as a nested format (:mod:`imgdiff.formats.cpio`): its members
are ``cpio.member`` nodes keyed by name, so a member stored at another position is a ``moved`` difference, while an
uncompressed cpio file is compared by the content recogniser (``content.cpio`` fields ``c_*`` and ``member order``).
"""

from __future__ import annotations

from imgdiff.model import Change, Difference
from imgdiff.ruleset.predicates import ExplainContext, predicate


@predicate
def cpio_member_order(d: Difference, ctx: ExplainContext) -> bool:
    """True for the recogniser's ``member order`` field, or for cpio member bytes that moved with equal values."""
    del ctx
    if d.kind == "content.cpio":
        return d.field == "member order"
    return d.kind in ("cpio.member", "cpio.trailer") and d.change == Change.MOVED

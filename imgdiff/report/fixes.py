"""Fixes as data: each rule's fix per builder, filled in with this pair's values, and the ordered "to fix" list.

A rule may carry a ``[fix_for]`` table (see rules/README.md) with one template per builder (``nixos``,
``repart``, ``mkosi``, ``plain``) and a short ``cause`` name.  Templates use ``{name}`` placeholders that are
filled from the finding and the report (:data:`imgdiff.ruleset.schema.PLACEHOLDERS`): the image paths, the byte
offset of the filesystem the finding lies in (so ``debugfs 'a.img?offset=N'`` and ``mtype -i a.img@@N`` run on a
whole-disk image), the first changed path, A's value to pin.  A placeholder that cannot be filled is written as
``<name>`` so that it is visibly still to be chosen.

Like every renderer this module only reads the :class:`~imgdiff.model.Report` (and the parser trees it carries,
to find where a filesystem starts); it never opens an image.
"""

from __future__ import annotations

import itertools
import re
import shlex
import uuid
from dataclasses import dataclass, field

from imgdiff.model import Difference, Extent, Finding, Node, Report, RuleInfo, merge_extents
from imgdiff.ruleset.schema import BUILDERS, PLACEHOLDERS, cause_name, fix_for
from imgdiff.source import VBASE

BUILDER_LABELS = {"nixos": "NixOS", "repart": "systemd-repart", "mkosi": "mkosi", "plain": "plain tools"}
"""How each builder is named in front of its fix."""

UNCLASSIFIED = "unclassified"
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SAFE_PATH = re.compile(r"^[^'\"\\\x00-\x1f\x7f]+$")
_SEARCH_BUDGET = 4000
"""Most tree nodes visited to find the filesystem a finding lies in."""


def fill(template: str, values: dict[str, str]) -> str:
    """Return ``template`` with each known ``{name}`` replaced; an unknown or unfillable one becomes ``<name>``.

    Only ``{identifier}`` is a placeholder: ``{}`` (as in ``find -exec ... {} +``) stays as it is.
    """

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        got = values.get(name)
        return got if got else f"<{name}>"

    return _PLACEHOLDER_RE.sub(one, template)


# -- where a finding lies -------------------------------------------------------------------------------------------


def _contains(node: Node, off: int) -> bool:
    return any(e.offset <= off < e.end for e in node.extents)


def filesystem_offset(root: Node | None, off: int) -> int | None:
    """Return the start of the innermost filesystem (a node with an ``fs`` attr) holding image offset ``off``.

    A bounded breadth-first walk down the nodes whose extents hold the offset.  None for decoded spaces (their
    bytes are not at one place in the image), for a filesystem that is not one contiguous range of the image (an
    image file stored in fragments: no ``?offset=`` reaches it), or when nothing holds it.
    """
    if root is None or off >= VBASE:
        return None
    found: int | None = None
    queue: list[tuple[Node, bool]] = [(root, True)]
    budget = _SEARCH_BUDGET
    while queue and budget > 0:
        nxt: list[tuple[Node, bool]] = []
        for node, whole in queue:
            budget -= 1
            if not _contains(node, off):
                continue
            if node.attrs.get("fs") and node.extents:
                merged = merge_extents(node.extents)
                found = merged[0].offset if whole and len(merged) == 1 else None
            if len(nxt) < budget:  # never queue more than can still be visited (a table of 54,000 inodes)
                piece = whole and _in_one_piece(node)
                nxt.extend((c, piece) for c in node.children[: budget - len(nxt)])
            if budget <= 0:
                break
        queue = nxt
    return found


def filesystem_by_chain(root: Node | None, chain: tuple[str, ...]) -> int | None:
    """Return the start of the filesystem named by a scope chain (for findings whose bytes all lie in decoded
    spaces, as squashfs tables do): the one node with an ``fs`` attr labelled ``chain[-1]`` whose ancestors carry
    the other labels of the chain in order, stored in one piece; None when there is no such single node."""
    if root is None or not chain:
        return None
    found: list[int | None] = []
    queue: list[tuple[Node, int, bool]] = [(root, 0, True)]
    budget = _SEARCH_BUDGET
    while queue and budget > 0:
        node, matched, whole = queue.pop(0)
        budget -= 1
        here = matched + (1 if matched < len(chain) - 1 and node.label == chain[matched] else 0)
        if node.attrs.get("fs") and node.label == chain[-1] and here == len(chain) - 1:
            merged = merge_extents(node.extents)
            found.append(merged[0].offset if whole and len(merged) == 1 and merged[0].offset < VBASE else None)
            continue
        queue.extend((c, here, whole and _in_one_piece(node)) for c in node.children[:256])
    return found[0] if len(found) == 1 else None


def _in_one_piece(node: Node) -> bool:
    """Return False for a file whose bytes are not one contiguous range of the image (a nested image in it has no
    single offset): its extents are several, or cover less than its size."""
    size = node.attrs.get("size")
    if not node.attrs.get("path") or not isinstance(size, int):
        return True
    merged = merge_extents(node.extents)
    return len(merged) == 1 and merged[0].length >= size


def _first_extent(f: Finding) -> Extent | None:
    for d in itertools.chain(f.causes, f.derived):
        for e in d.extents_a or d.extents_b:
            if e.offset < VBASE:
                return e
    return None


def _partition_number(report: Report, off: int) -> str:
    root = report.tree_a or report.tree_b
    if root is None:
        return ""
    for c in root.children:
        if c.kind == "partition" and _contains(c, off) and isinstance(c.attrs.get("index"), int):
            return str(c.attrs["index"])
    return ""


def _value(v: object, display: str | None) -> str:
    if display:
        return display
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    return "" if v is None else str(v)


def _quote(text: str) -> str:
    return shlex.quote(text)


def suggested_uuid(report: Report) -> str:
    """Return a fixed UUID to suggest for pinning (the same for every finding of a pair, stable across runs).

    Any fixed value does; this one is derived (UUIDv5) from what the two images are, so a report regenerated for
    the same pair suggests the same seed.
    """
    basis = f"{report.a.size}:{report.b.size}:" + ",".join(sorted({f.rule.id for f in report.findings}))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"imgdiff:seed:{basis}"))


def placeholders(report: Report, f: Finding) -> dict[str, str]:
    """Return the values a fix template of ``f`` can use (only those this pair has)."""
    out: dict[str, str] = {"image_a": _quote(report.a.path), "image_b": _quote(report.b.path)}
    ext = _first_extent(f)
    root = report.tree_a or report.tree_b
    base = filesystem_offset(root, ext.offset) if ext is not None else filesystem_by_chain(root, f.chain)
    if report.a.decompressed or report.b.decompressed:
        base = None  # offsets are in the decompressed image: no command reaches them in the compressed file
    if base is not None:
        out["partition_offset"] = str(base)
        for side, info in (("a", report.a), ("b", report.b)):
            out[f"fs_{side}"] = _quote(f"{info.path}?offset={base}" if base else info.path)
            out[f"mtools_{side}"] = _quote(f"{info.path}@@{base}" if base else info.path)
        part = _partition_number(report, ext.offset) if ext is not None else ""
        if part:
            out["partition"] = part
    safe = next((p for p in f.paths if _SAFE_PATH.match(p)), None)
    if safe is not None:
        out["path"] = safe
        name = re.sub(r"[^A-Za-z0-9._-]", "_", safe.rstrip("/").rsplit("/", 1)[-1]).lstrip(".") or "file"
        out["file"] = name
        out["paths"] = safe if len(f.paths) == 1 else f"{safe} and {len(f.paths) - 1} more"
    first: Difference | None = f.causes[0] if f.causes else None
    if first is not None:
        va, vb = _value(first.a, first.display_a), _value(first.b, first.display_b)
        if va:
            out["value_a"] = va
        if vb:
            out["value_b"] = vb
        if isinstance(first.a, str) and _UUID_RE.match(first.a):
            out["uuid_a"] = first.a.lower()
        if isinstance(first.a, int) and not isinstance(first.a, bool) and 0 <= first.a < 1 << 32:
            out["hex_a"] = f"{first.a:08X}"
    out["new_uuid"] = suggested_uuid(report)
    out["seed"] = report.context.get("seed") or out["new_uuid"]
    assert set(out) <= PLACEHOLDERS
    return out


# -- fixes and the "to fix" list ------------------------------------------------------------------------------------


def rule_fixes(info: RuleInfo, values: dict[str, str], builder: str | None = None) -> list[tuple[str, str]]:
    """Return ``(builder, text)`` pairs of a rule: all it has (NixOS first), or the one for ``builder``.

    A rule without an entry for the chosen builder falls back to ``plain``, then to its prose ``fix``.
    """
    table = fix_for(info)
    if builder is not None:
        for b in (builder, "plain"):
            if b in table:
                return [(b, fill(table[b], values))]
        return [("plain", fill(info.fix, values))] if info.fix else []
    if not table:
        return [("plain", fill(info.fix, values))] if info.fix else []
    return [(b, fill(table[b], values)) for b in BUILDERS if b in table]


def cause_label(report: Report, f: Finding, values: dict[str, str] | None = None) -> str:
    """Return the short name of the finding's cause (``"mke2fs hash seed"``, ``"/etc/motd content"``)."""
    if f.rule.id == UNCLASSIFIED:
        return "differences no rule explains"
    return fill(cause_name(f.rule), values if values is not None else placeholders(report, f))


@dataclass(slots=True)
class FixItem:
    """One entry of the "to fix" list: a rule and every finding of it, with its filled-in fixes."""

    rule: RuleInfo
    findings: list[Finding]
    bytes: int
    cause: str
    fixes: list[tuple[str, str]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    """The scopes the findings lie in (``"partition 2 (root-x86-64) ▸ ext4"``)."""


def fix_items(report: Report, builder: str | None = None) -> list[FixItem]:
    """Return the causes to fix, most impactful (most differing bytes, derived ones included) first.

    Findings of the same rule in several scopes are one item.  Unclassified findings are not causes: they are
    left out (the verdict counts their bytes as unexplained).
    """
    groups: dict[str, list[Finding]] = {}
    for f in report.findings:
        if f.rule.id != UNCLASSIFIED:
            groups.setdefault(f.rule.id, []).append(f)
    items: list[FixItem] = []
    for fs in groups.values():
        fs = sorted(fs, key=lambda x: -x.bytes)
        head = fs[0]
        values = placeholders(report, head)
        item = FixItem(
            rule=head.rule,
            findings=fs,
            bytes=sum(x.bytes for x in fs),
            cause=cause_label(report, head, values),
            fixes=rule_fixes(head.rule, values, builder),
            where=list(dict.fromkeys(scope_name(x) for x in fs)),
        )
        if len(fs) > 1 and "{paths}" in cause_name(head.rule):
            total = len({p for x in fs for p in x.paths})
            if total > 1:
                item.cause = fill(cause_name(head.rule), dict(values, paths=f"{values.get('path', '')} and {total - 1} more"))
        items.append(item)
    items.sort(key=lambda it: (-it.bytes, it.rule.id))
    return items


def scope_name(f: Finding) -> str:
    """Return where a finding lies as its scope chain (``"partition 1 (esp) ▸ vfat (FAT32)"``), ``disk`` at the top."""
    chain = f.chain
    return " ▸ ".join(chain) if chain else "disk"


__all__ = ["BUILDER_LABELS", "FixItem", "cause_label", "fill", "fix_items", "placeholders", "rule_fixes", "scope_name"]

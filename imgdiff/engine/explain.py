"""Apply the rule set to the differences: name causes, fold derived differences, keep the rest unclassified.

Order of work:
1. every non-derived difference is claimed by the first rule (priority order) that matches it;
2. a rule's ``explains`` folds other differences in the same scope, or nested in it, into its finding as derived;
3. every non-derived difference no rule claimed becomes a cause of an ``unclassified`` finding of its scope;
4. fields declared :class:`~imgdiff.model.Derived` (CRCs, checksums, copies) are folded, to a fixpoint, into the
   finding whose differing bytes they cover or whose seed field they depend on, unclassified findings included
   (a checksum over an unexplained change belongs to that change, never to a rule about stale checksums);
5. derived differences whose covered bytes did not change may still be matched by a rule (a derived rule); the
   fields derived from those are then folded in turn;
6. derived differences left over join the ``unclassified`` finding of their scope: nothing is dropped.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

from imgdiff.engine.attribute import count_bytes, disjoint
from imgdiff.model import Change, Difference, Extent, Finding, b_side_only, merge_extents, merged_bounds
from imgdiff.ruleset.predicates import ANNOTATIONS, ExplainContext
from imgdiff.ruleset.schema import UNCLASSIFIED, Match, Rule, RuleSet
from imgdiff.source import VBASE, DiffMap


class _Extents:
    """Sorted, merged extents with an overlap test (kept as two lists of offsets: a finding that folds a group's
    100,000 member fields would otherwise make as many extent objects every time it is indexed again)."""

    def __init__(self, extents: list[Extent]) -> None:
        self.starts, self.ends = merged_bounds(extents)

    def overlaps(self, ext: Extent) -> bool:
        i = bisect.bisect_right(self.ends, ext.offset)
        return i < len(self.starts) and self.starts[i] < ext.end

    def overlaps_any(self, exts: tuple[Extent, ...]) -> bool:
        """Return True when one of ``exts`` overlaps (the loop of :meth:`overlaps`, for 100,000 checksums)."""
        ends, starts, n = self.ends, self.starts, len(self.starts)
        for off, length in exts:
            i = bisect.bisect_right(ends, off)
            if i < n and starts[i] < off + length:
                return True
        return False


def explain(
    diffs: list[Difference],
    rules: RuleSet,
    ctx: ExplainContext,
    dm: DiffMap,
    progress: Callable[[int, int], None] | None = None,
) -> list[Finding]:
    """Return the findings for ``diffs``, ordered by the first byte they explain.

    ``progress(done, total)`` is called while the differences are matched against the rules.
    """
    ctx.differences = diffs
    ctx.diffmap = dm
    findings: dict[tuple[str, str], Finding] = {}
    rule_of: dict[str, Rule] = {}
    placed: set[int] = set()

    def add(rule: Rule, d: Difference, as_derived: bool = False) -> None:
        key = (rule.id, d.scope)
        found = findings.get(key)
        if found is None:
            found = findings[key] = Finding(rule=rule.info, location="", causes=[])
            rule_of[rule.id] = rule
        (found.derived if as_derived else found.causes).append(d)
        placed.add(d.uid)

    causes = [d for d in diffs if not d.derived]
    derived = [d for d in diffs if d.derived]
    # 1. root causes; the rules are tried in order, only those whose kind and field tests pass (cached)
    candidates: dict[tuple[str, str], list[Rule]] = {}
    for i, d in enumerate(causes):
        if progress is not None and i % 2000 == 0:
            progress(i, len(causes))
        cands = candidates.get((d.kind, d.field))
        if cands is None:
            cands = candidates[(d.kind, d.field)] = [
                r for r in rules.rules
                if not r.derived and r.match.kind_matches(d.kind) and r.match.field_matches(d.field)
            ]
        for rule in cands:
            if rule.match.matches_rest(d, ctx):  # kind and field passed: they chose the candidates
                add(rule, d)
                break
    # 2. rule-declared consequences in the same scope (the cause itself is never stolen from its own finding)
    owner: dict[int, Finding] = {d.uid: f for f in findings.values() for d in f.causes}
    all_kinds = {d.kind for d in diffs}
    for rule in rules.rules:
        if not rule.explains:
            continue
        kinds = {k for k in all_kinds if any(m.kind_matches(k) for m in rule.explains)}
        if not kinds:
            continue
        tests: dict[tuple[str, str], list[Match]] = {}  # the explains whose kind and field pass, per kind and field
        for (rid, scope), f in list(findings.items()):
            # a finding whose causes another rule's explains took over explains nothing itself
            if rid != rule.id or not any(owner.get(c.uid) is f for c in f.causes):
                continue
            for d in diffs:  # in their order (the derived lists keep it), skipping kinds no explains names
                if d.kind not in kinds or owner.get(d.uid) is f or not _within(d.scope, scope):
                    continue
                ms = tests.get((d.kind, d.field))
                if ms is None:
                    ms = tests[(d.kind, d.field)] = [
                        m for m in rule.explains if m.kind_matches(d.kind) and m.field_matches(d.field)
                    ]
                if ms and any(m.matches_rest(d, ctx) for m in ms):
                    owner[d.uid] = f
                    f.derived.append(d)
                    placed.add(d.uid)
    for f in findings.values():  # drop what another finding's explains took over
        f.causes = [d for d in f.causes if owner.get(d.uid) is f]
        f.derived = [d for d in f.derived if owner.get(d.uid) is f]
        if not f.causes:  # the finding goes away: what it had folded must find another home
            for d in f.derived:
                placed.discard(d.uid)
                owner.pop(d.uid, None)
    findings = {k: f for k, f in findings.items() if f.causes}
    # 3. unclassified causes
    unclassified: dict[str, Finding] = {}

    def leftover(d: Difference) -> None:
        bucket = unclassified.get(d.scope)
        if bucket is None:
            bucket = unclassified[d.scope] = Finding(rule=UNCLASSIFIED, location="", causes=[])
            findings[(UNCLASSIFIED.id, d.scope)] = bucket
        bucket.causes.append(d)
        placed.add(d.uid)

    for d in causes:
        if d.uid not in placed:
            leftover(d)
    # 4. derived fields fold into what they cover or depend on
    pending = [d for d in derived if d.uid not in placed]
    _fold_derived(pending, findings, placed)
    # 5. derived rules for what is left (e.g. a checksum over unchanged bytes)
    for d in diffs:
        if d.uid in placed or not d.derived:
            continue
        for rule in rules.rules:
            if rule.match.matches(d, ctx):
                add(rule, d)
                break
    # 5b. what a derived rule's finding now holds may in turn cover derived fields (a checksum over them)
    _fold_derived([d for d in derived if d.uid not in placed], findings, placed)
    # 6. unclassified derived differences
    for d in diffs:
        if d.uid not in placed:
            leftover(d)
    for key in [k for k in findings if k[0] == UNCLASSIFIED.id]:
        del findings[key]
    out = list(findings.values()) + list(unclassified.values())
    for f in out:
        # a group difference (many objects) is placed where its members are: its container
        f.location = _common_location([d.location.rsplit(" / ", 1)[0] if d.count > 1 else d.location for d in f.causes])
        both = f.causes + f.derived
        exts_a = [e for d in both for e in d.extents_a]
        exts_b = [e for d in both for e in b_side_only(d, dm.delta)]
        if not exts_b and disjoint(exts_a):
            f.bytes = sum(d.bytes for d in both)  # each difference counted its own bytes, none twice
        else:
            f.bytes = count_bytes(dm, exts_a, exts_b)
        source = rule_of.get(f.rule.id)
        if source is not None and source.annotate:
            f.note = ANNOTATIONS[source.annotate](f, ctx)
    if sum(f.bytes for f in out) > dm.total:
        _count_each_byte_once(out, dm)
    out.sort(key=lambda f: (_first_offset(f), f.rule.id))
    return out


def _count_each_byte_once(findings: list[Finding], dm: DiffMap) -> None:
    """Recount the findings' bytes so that each differing byte counts in exactly one finding.

    Two findings can own the same image byte: one through a field on the A side, the other through a field on
    the B side (a corrupt inode that A reads as ``/etc`` and B as an unnamed slot; the tail only the longer image
    has, which holds its files), or both on one side, one nested in the other (a compressed file's bytes, which
    are the file's data and the stream's compressed blocks).  Each byte goes to the first claim in this order:
    A-side ownership before B-side (as ``bytes_unexplained`` counts unowned bytes at A offsets), findings with a
    rule before unclassified ones, the more deeply nested field before its container, then the findings' own
    order.  The findings' bytes then add up to ``bytes_differing`` whenever every differing byte is owned
    (unowned bytes sit in the unclassified findings as raw differences).
    """
    import heapq

    claims: dict[tuple[int, int, int, int], list[Extent]] = defaultdict(list)  # rank -> extents; rank[-1]: finding
    for i, f in enumerate(findings):
        unclassified = int(f.rule.id == UNCLASSIFIED.id)
        for d in f.causes + f.derived:
            depth = -len(d.chain)
            if d.extents_a:
                claims[(0, unclassified, depth, i)].extend(e for e in d.extents_a if e.offset < VBASE)
            for e in b_side_only(d, dm.delta):  # a B extent at its A extent's place: the A side ranks first
                start = e.offset - dm.delta
                if 0 <= start < VBASE:
                    claims[(1, unclassified, depth, i)].append(Extent(start, e.length))
    # the claims of one rank are merged first (equivalent for the sweep, and far fewer events)
    events = [(e.offset, min(e.end, VBASE), rank) for rank, exts in claims.items() for e in merge_extents(exts)]
    events.sort()
    counts = [0] * len(findings)
    active: list[tuple[tuple[int, int, int, int], int]] = []  # (rank, end), best rank on top
    pos = 0
    k = 0
    while k < len(events) or active:
        while active and active[0][1] <= pos:
            heapq.heappop(active)
        if not active:
            if k >= len(events):
                break
            pos = max(pos, events[k][0])
        while k < len(events) and events[k][0] <= pos:
            _, end, rank = events[k]
            if end > pos:
                heapq.heappush(active, (rank, end))
            k += 1
        while active and active[0][1] <= pos:
            heapq.heappop(active)
        if not active:
            continue
        rank, end = active[0]
        stop = min(end, events[k][0]) if k < len(events) else end
        counts[rank[3]] += dm.count_in(Extent(pos, stop - pos))
        pos = stop
    for i, f in enumerate(findings):
        f.bytes = counts[i]


def _fold_derived(pending: list[Difference], findings: dict[tuple[str, str], Finding], placed: set[int]) -> None:
    """Attach derived differences to findings by covered bytes or seeds, until nothing moves.

    A seed reference (``"<kind>:<field>"``) goes to the first finding, in the order they took it on, that holds
    that field in the same or an enclosing scope; covered bytes go to the first finding whose extents they overlap.
    """
    if not pending:
        return
    refs: dict[tuple[str, str], str] = {}
    """``"<kind>:<field>"`` per kind and field, made once (100,000 checksums share a few)."""
    seeds_of: dict[str, dict[int, Finding]] = defaultdict(dict)
    scopes_of: dict[int, set[str]] = {}
    for f in findings.values():
        scopes_of[id(f)] = {d.scope for d in f.causes} | {d.scope for d in f.derived}
        for d in f.causes + f.derived:
            seeds_of[f"{d.kind}:{d.field}"].setdefault(id(f), f)
    spans_a = {id(f): [e for d in f.causes + f.derived for e in d.extents_a] for f in findings.values()}
    spans_b = {id(f): [e for d in f.causes + f.derived for e in d.extents_b] for f in findings.values()}
    changed = True
    index_a: dict[int, _Extents] = {}
    index_b: dict[int, _Extents] = {}
    dirty = set(spans_a)
    while changed and pending:
        changed = False
        for k in dirty:  # only the findings that took something on in the last pass are indexed again
            index_a[k] = _Extents(spans_a[k])
            index_b[k] = _Extents(spans_b[k])
        dirty = set()
        rest: list[Difference] = []
        for d in pending:
            target = None
            for s in d.seeds:
                holders = seeds_of.get(s)
                if holders is None:
                    continue
                for f in holders.values():
                    if any(_within(d.scope, sc) for sc in scopes_of[id(f)]):
                        target = f
                        break
                if target is not None:
                    break
            if target is None:
                for f in findings.values():
                    if index_a[id(f)].overlaps_any(d.covers_a) or index_b[id(f)].overlaps_any(d.covers_b):
                        target = f
                        break
            if target is None:
                rest.append(d)
                continue
            target.derived.append(d)
            placed.add(d.uid)
            ref = refs.get((d.kind, d.field))
            if ref is None:
                ref = refs[(d.kind, d.field)] = f"{d.kind}:{d.field}"
            seeds_of[ref].setdefault(id(target), target)
            scopes_of[id(target)].add(d.scope)
            spans_a[id(target)].extend(d.extents_a)
            spans_b[id(target)].extend(d.extents_b)
            dirty.add(id(target))
            changed = True
        pending[:] = rest


def _within(inner: str, outer: str) -> bool:
    """Return True when scope ``inner`` is ``outer`` or nested in it (a partition's filesystem in the disk)."""
    return inner == outer or inner.startswith(outer + "/")


def _common_location(locs: list[str]) -> str:
    if not locs:
        return ""
    common = locs[0].split(" / ")
    n = len(common)
    prefix = locs[0]
    for loc in locs:  # a finding of a rebuilt image has 100,000 causes: most share the prefix found so far
        if loc == prefix or loc.startswith(prefix + " / "):
            continue
        parts = loc.split(" / ")
        k = 0
        while k < n and k < len(parts) and parts[k] == common[k]:
            k += 1
        n = k
        if not n:
            break
        prefix = " / ".join(common[:n])
    return " / ".join(common[:n]) if n else "disk"


def _first_offset(f: Finding) -> int:
    offs = [e.offset for d in f.causes for e in (d.extents_a or d.extents_b)]
    return min(offs) if offs else 1 << 62


__all__ = ["Change", "explain"]

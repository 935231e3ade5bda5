"""The TUI's view model: the structure tree, the difference index and text search, built only from a Report.

Nothing here parses an image.  A live analysis gives ``report.tree_a``/``tree_b`` (parser :class:`Node` trees);
they are merged by key into one :class:`Entry` tree (nodes only in B are appended after A's).  A saved JSON result
has no trees, so the tree is rebuilt from the differences' locations (``"GPT / primary GPT header"``).  Every
difference is attached to the entry of its node; an entry *differs* when it or a descendant holds a difference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from imgdiff.model import Difference, Extent, Finding, Node, Report
from imgdiff.report.values import short

ROOT_KEY = "disk"

_LOC_SPLIT = re.compile(r" / (?!/ )")
"""Location parts are joined by ``" / "``; a label may itself end in ``"/"`` (``"directory /"``)."""


def split_location(location: str) -> list[str]:
    """Return the labels of a human location (``"vfat (FAT16) / directory / / entry /EFI"`` -> 3 labels)."""
    return [p for p in _LOC_SPLIT.split(location) if p] if location else []


@dataclass(eq=False, slots=True)
class Entry:
    """One structure node as the TUI shows it: A's and B's parser nodes merged by key, plus its differences."""

    key: str
    """Identity: the node path (``"disk/gpt/primary"``) or, for a saved result, the location chain."""
    label: str
    kind: str = ""
    node_a: Node | None = None
    node_b: Node | None = None
    parent: Entry | None = None
    children: list[Entry] = field(default_factory=list)
    diffs: list[Difference] = field(default_factory=list)
    """Differences of this node's own fields, in report order."""
    differs: bool = False
    """True when this entry or a descendant holds a difference."""

    @property
    def side(self) -> str:
        """Return ``"both"``, ``"a"`` (only in A) or ``"b"`` (only in B)."""
        if self.node_a is not None and self.node_b is None:
            return "a"
        if self.node_b is not None and self.node_a is None:
            return "b"
        return "both"

    @property
    def depth(self) -> int:
        """Return the number of ancestors."""
        n, p = 0, self.parent
        while p is not None:
            n, p = n + 1, p.parent
        return n

    def chain(self) -> list[Entry]:
        """Return the entries from the root down to this one."""
        out: list[Entry] = []
        e: Entry | None = self
        while e is not None:
            out.append(e)
            e = e.parent
        return out[::-1]

    def walk(self) -> Iterator[Entry]:
        """Yield this entry and every descendant, depth first (iteratively: trees can be deep and wide)."""
        stack = [self]
        while stack:
            e = stack.pop()
            yield e
            stack.extend(reversed(e.children))

    def extents(self, side: str) -> tuple[Extent, ...]:
        """Return the bytes the node owns on ``side`` (``"a"``/``"b"``), or its differences' when unparsed."""
        node = self.node_a if side == "a" else self.node_b
        if node is not None and node.extents:
            return node.extents
        out: list[Extent] = []
        for d in self.diffs:
            out.extend(d.extents_a if side == "a" else d.extents_b)
        return tuple(out)

    def haystack(self) -> str:
        """Return the lower-case text search matches against."""
        parts = [self.label, self.key, self.kind]
        for node in (self.node_a, self.node_b):
            if node is not None and node.attrs.get("path"):
                parts.append(str(node.attrs["path"]))
        return " ".join(parts).lower()


def diff_text(d: Difference) -> str:
    """Return the lower-case searchable text of one difference."""
    return " ".join(
        (
            d.ref,
            d.location,
            d.kind,
            d.change,
            short(d.a, d.display_a),
            short(d.b, d.display_b),
            str(d.attrs.get("path") or ""),
        )
    ).lower()


def finding_text(f: Finding) -> str:
    """Return the lower-case searchable text of a finding's own description (not its fields)."""
    r = f.rule
    return " ".join((r.id, r.name, r.title, r.layer, r.component, f.location, f.note, " ".join(f.paths))).lower()


@dataclass(slots=True)
class DiffRef:
    """Where a difference sits: its finding, whether it is a folded-in derived field, its structure entry."""

    diff: Difference
    finding: Finding
    derived: bool
    entry: Entry


class Structure:
    """The merged structure tree of a report and the index from differences to entries and findings."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.by_key: dict[str, Entry] = {}
        self.refs: dict[int, DiffRef] = {}
        """``id(difference)`` -> its :class:`DiffRef`."""
        self.order: list[Difference] = []
        """Every difference in findings order, causes before their derived fields (what ``n``/``p`` walk)."""
        self.live = report.tree_a is not None or report.tree_b is not None
        if self.live:
            self.root = self._merge(report.tree_a, report.tree_b, None)
        else:
            self.root = self._add(ROOT_KEY, report.a.format or "image", None, kind="disk")
        for f in report.findings:
            for derived, diffs in ((False, f.causes), (True, f.derived)):
                for d in diffs:
                    entry = self._entry_for(d)
                    entry.diffs.append(d)
                    self.refs[id(d)] = DiffRef(d, f, derived, entry)
                    self.order.append(d)
                    e: Entry | None = entry
                    while e is not None and not e.differs:
                        e.differs = True
                        e = e.parent

    # -- building ---------------------------------------------------------------------------------------------

    def _add(
        self, key: str, label: str, parent: Entry | None, kind: str = "", a: Node | None = None, b: Node | None = None
    ) -> Entry:
        e = Entry(key=key, label=label, kind=kind, node_a=a, node_b=b, parent=parent)
        if parent is not None:
            parent.children.append(e)
        self.by_key[key] = e
        return e

    def _merge(self, a: Node | None, b: Node | None, parent: Entry | None) -> Entry:
        """Merge A's and B's nodes of the same key (and, recursively, their children) into one entry."""
        top = a if a is not None else b
        assert top is not None
        root = self._add(top.key, top.label, parent, top.kind, a, b)
        stack: list[tuple[Entry, Node | None, Node | None]] = [(root, a, b)]
        while stack:
            entry, na, nb = stack.pop()
            kids_a = na.children if na is not None else []
            kids_b = {c.key: c for c in nb.children} if nb is not None else {}
            seen: set[str] = set()
            pending: list[tuple[Entry, Node | None, Node | None]] = []
            for ca in kids_a:
                if ca.key in seen:
                    continue
                seen.add(ca.key)
                cb = kids_b.get(ca.key)
                child = self._add(f"{entry.key}/{ca.key}", ca.label, entry, ca.kind, ca, cb)
                pending.append((child, ca, cb))
            if nb is not None:
                for cb in nb.children:
                    if cb.key in seen:
                        continue
                    seen.add(cb.key)
                    child = self._add(f"{entry.key}/{cb.key}", cb.label, entry, cb.kind, None, cb)
                    pending.append((child, None, cb))
            stack.extend(reversed(pending))
        return root

    def _entry_for(self, d: Difference) -> Entry:
        """Return the entry of ``d``'s node, creating it (under its nearest known ancestor) when unparsed."""
        if not self.live:
            return self._entry_from_location(d)
        found = self.by_key.get(d.node_path)
        if found is not None:
            return found
        parent = self.root
        path = d.node_path
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            if path in self.by_key:
                parent = self.by_key[path]
                break
        labels = split_location(d.location)
        label = labels[-1] if labels else d.node_path.rsplit("/", 1)[-1]
        if d.node_path == self.root.key:
            return self.root
        return self._add(d.node_path, label, parent, d.kind)

    def _entry_from_location(self, d: Difference) -> Entry:
        """Saved results have no trees: one entry per location prefix, under a synthetic disk root."""
        entry = self.root
        labels = split_location(d.location)
        if labels and labels[0] in ("image", "disk") and len(labels) == 1:
            return entry
        for i, label in enumerate(labels):
            key = " / ".join(labels[: i + 1])
            nxt = self.by_key.get(key)
            if nxt is None:
                nxt = self._add(key, label, entry)
            entry = nxt
        if not entry.kind:
            entry.kind = d.kind
        return entry

    # -- queries ----------------------------------------------------------------------------------------------

    def ref(self, d: Difference) -> DiffRef:
        """Return where difference ``d`` sits."""
        return self.refs[id(d)]

    def matching(self, query: str) -> set[int]:
        """Return ``id()`` of every entry that matches ``query`` or has a matching descendant or difference."""
        q = query.lower().strip()
        keep: set[int] = set()
        if not q:
            return keep
        for e in self.root.walk():
            if q in e.haystack() or any(self.diff_matches(d, q) for d in e.diffs):
                x: Entry | None = e
                while x is not None and id(x) not in keep:
                    keep.add(id(x))
                    x = x.parent
        return keep

    def diff_matches(self, d: Difference, query: str) -> bool:
        """Return True when ``query`` finds ``d`` by its own text or by its finding's (what the findings show)."""
        q = query.lower().strip()
        return not q or q in diff_text(d) or q in finding_text(self.ref(d).finding)

    def count(self) -> tuple[int, int]:
        """Return (entries, differing entries)."""
        total = differing = 0
        for e in self.root.walk():
            total += 1
            differing += e.differs
        return total, differing


def finding_matches(f: Finding, query: str) -> tuple[bool, list[Difference], list[Difference]]:
    """Return whether ``f`` matches ``query`` and which causes and derived fields to show under it."""
    q = query.lower().strip()
    if not q or q in finding_text(f):
        return True, list(f.causes), list(f.derived)
    causes = [d for d in f.causes if q in diff_text(d)]
    derived = [d for d in f.derived if q in diff_text(d)]
    return bool(causes or derived), causes, derived

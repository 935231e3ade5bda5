"""The TUI's view model: a lazily built structure tree, the difference index and text search, from a Report only.

Nothing here parses an image.  A live analysis gives ``report.tree_a``/``tree_b`` (parser :class:`Node` trees);
they are merged by key into :class:`Entry` objects *on demand*: an entry's children are listed (as cheap
``(key, node_a, node_b)`` triples) the first time they are asked for, and an :class:`Entry` object is made only for
a child that is shown or walked through, so an ext4 image with 50,000 differing inodes opens without building
50,000 entries.  Whether an entry *differs* (it or something below holds a difference) is answered from the sorted
node paths of the differences (one bisection), not by walking the tree.

A saved JSON result has no trees, so its tree is rebuilt eagerly from the differences' locations (a saved result
lists at most a few hundred differences per finding).

:meth:`Structure.search` is safe to run in a worker thread: it reads only immutable data and the search texts it
caches, and checks a ``cancelled`` callable as it goes.
"""

from __future__ import annotations

import bisect
import re
import threading
from array import array
from collections.abc import Callable, Iterator
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
    diffs: list[Difference] = field(default_factory=list)
    """Differences of this node's own fields, in report order."""
    differs: bool = False
    """True when this entry or a descendant holds a difference."""
    structure: Structure | None = None
    _kids: list[tuple[str, Node | None, Node | None]] | None = None
    _made: dict[int, Entry] = field(default_factory=dict)
    _extra: list[Entry] = field(default_factory=list)
    """Children not in either parser tree: unparsed regions holding differences, or a saved result's entries."""

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

    # -- children, built on demand --------------------------------------------------------------------------------

    def _list_kids(self) -> list[tuple[str, Node | None, Node | None]]:
        if self._kids is None:
            kids: list[tuple[str, Node | None, Node | None]] = []
            a, b = self.node_a, self.node_b
            by_b = {c.key: c for c in b.children} if b is not None else {}
            seen: set[str] = set()
            for ca in a.children if a is not None else ():
                if ca.key not in seen:
                    seen.add(ca.key)
                    kids.append((ca.key, ca, by_b.get(ca.key)))
            for cb in b.children if b is not None else ():
                if cb.key not in seen:
                    seen.add(cb.key)
                    kids.append((cb.key, None, cb))
            self._kids = kids
            if self.structure is not None:
                self.structure.orphans(self)
        return self._kids

    def child_count(self) -> int:
        """Return how many children the entry has (parser children plus unparsed regions)."""
        return len(self._list_kids()) + len(self._extra)

    def child_at(self, i: int) -> Entry:
        """Return the ``i``-th child (made now if needed)."""
        kids = self._list_kids()
        if i >= len(kids):
            return self._extra[i - len(kids)]
        made = self._made.get(i)
        if made is None:
            key, na, nb = kids[i]
            top = na if na is not None else nb
            assert top is not None and self.structure is not None
            made = self._made[i] = self.structure.make(f"{self.key}/{key}", top.label, self, top.kind, na, nb)
        return made

    @property
    def children(self) -> list[Entry]:
        """Return every child (makes them all: use :meth:`iter_children` to stop early on large nodes)."""
        return list(self.iter_children())

    def iter_children(self, start: int = 0) -> Iterator[Entry]:
        """Yield the children from ``start`` on, making each as it is reached."""
        for i in range(start, self.child_count()):
            yield self.child_at(i)

    def child_keyed(self, key: str) -> Entry | None:
        """Return the child whose full key is ``key`` (parser children are indexed on first use)."""
        assert self.structure is not None
        found = self.structure.by_key.get(key)
        if found is not None and found.parent is self:
            return found
        kids = self._list_kids()
        index = self.structure.kid_index(self, kids)
        i = index.get(key[len(self.key) + 1 :]) if key.startswith(self.key + "/") else None
        if i is not None:
            return self.child_at(i)
        return next((e for e in self._extra if e.key == key), None)

    def walk(self) -> Iterator[Entry]:
        """Yield this entry and every descendant, depth first (makes every entry: for small trees and tests)."""
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


def group_by_field(
    diffs: list[Difference], pause: Callable[[], None] | None = None
) -> list[tuple[tuple[str, str, str], list[Difference]]]:
    """Return the differences grouped by (node kind, field, change), in first-seen order (``pause()`` is called
    every :data:`WARM_STEP` differences)."""
    groups: dict[tuple[str, str, str], list[Difference]] = {}
    for i, d in enumerate(diffs):
        groups.setdefault((d.kind, d.field, d.change), []).append(d)
        if pause is not None and not i % WARM_STEP:
            pause()
    return list(groups.items())


def _index_of(items: list[Difference], pause: Callable[[], None] | None = None) -> dict[int, int]:
    """Return ``id(d) ->`` position of ``d`` in ``items`` (``pause()`` is called every :data:`WARM_STEP`)."""
    out: dict[int, int] = {}
    for i, d in enumerate(items):
        out[id(d)] = i
        if pause is not None and not i % WARM_STEP:
            pause()
    return out


WARM_STEP = 2048
"""Items built between two calls of the warm-up's ``pause`` (a few milliseconds of work)."""

SEP = "\x00"
"""Separates the search texts of two differences in :meth:`Structure.texts`."""


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
    """Return the lower-case searchable text of a finding's own description (not its fields nor their paths: a
    path finds the differences of that file, not every difference of a finding that also touches it)."""
    r = f.rule
    return f"{r.id} {r.name} {r.title} {r.layer} {r.component} {f.location} {f.note}".lower()


@dataclass(eq=False, slots=True)
class DiffRef:
    """Where a difference sits: its finding, whether it is a folded-in derived field, its structure entry."""

    diff: Difference
    finding: Finding
    derived: bool
    structure: Structure
    _entry: Entry | None = None

    @property
    def entry(self) -> Entry:
        """Return the structure entry of the difference's node (made, with its ancestors, on first use)."""
        if self._entry is None:
            self._entry = self.structure.entry_of(self.diff)
        return self._entry


@dataclass(slots=True)
class SearchResult:
    """What a search found: the matching differences per finding, and where they are in the structure."""

    query: str
    findings: list[tuple[Finding, list[Difference], list[Difference]]]
    """Each matching finding with the causes and derived fields to show under it."""
    order: list[Difference]
    """The matching differences in findings order (what ``n``/``p`` walk while the search is on)."""
    paths: list[str]
    """Sorted node paths of the matching differences (the structure tree keeps the entries leading to them)."""
    ids: set[int]
    """``id()`` of every matching difference."""


class Cancelled(Exception):
    """A search was superseded."""


class Structure:
    """The merged structure tree of a report (built on demand) and the index from differences to findings."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.by_key: dict[str, Entry] = {}
        self._refs: dict[int, tuple[Finding, bool]] = {}
        self._made_refs: dict[int, DiffRef] = {}
        self.order: list[Difference] = []
        """Every difference in findings order, causes before their derived fields (what ``n``/``p`` walk)."""
        self._position: dict[int, int] | None = None
        self._by_path: dict[str, list[Difference]] = {}
        self._kid_index: dict[int, dict[str, int]] = {}
        self._texts: tuple[str, array[int]] | None = None
        self._texts_lock = threading.Lock()
        self._groups: dict[tuple[int, bool], list[tuple[tuple[str, str, str], list[Difference]]]] = {}
        self._group_pos: dict[tuple[int, bool], dict[int, int]] = {}
        self.live = report.tree_a is not None or report.tree_b is not None
        for f in report.findings:
            for derived, diffs in ((False, f.causes), (True, f.derived)):
                for d in diffs:
                    self._refs[id(d)] = (f, derived)
                    self.order.append(d)
                    self._by_path.setdefault(d.node_path, []).append(d)
        self._paths = sorted(self._by_path)
        self._placed: set[str] = set()
        if self.live:
            top = report.tree_a if report.tree_a is not None else report.tree_b
            assert top is not None
            self.root = self.make(top.key, top.label, None, top.kind, report.tree_a, report.tree_b)
        else:
            self.root = self.make(ROOT_KEY, report.a.format or "image", None, "disk")
            for d in self.order:
                entry = self._entry_from_location(d)
                if d not in entry.diffs:
                    entry.diffs.append(d)
            for e in self.by_key.values():
                e.differs = True

    # -- building ---------------------------------------------------------------------------------------------

    def make(
        self, key: str, label: str, parent: Entry | None, kind: str = "", a: Node | None = None, b: Node | None = None
    ) -> Entry:
        """Return a new entry for ``key`` with its own differences and its ``differs`` flag."""
        e = Entry(key=key, label=label, kind=kind, node_a=a, node_b=b, parent=parent, structure=self)
        if self.live:
            e.diffs = self._by_path.get(key, [])
            e.differs = self.has_diffs_below(key)
            self._placed.add(key)
        else:
            e._kids = []
        self.by_key[key] = e
        return e

    def has_diffs_below(self, key: str) -> bool:
        """Return True when a difference lies at node path ``key`` or below it."""
        if key in self._by_path:
            return True
        i = bisect.bisect_left(self._paths, key + "/")
        return i < len(self._paths) and self._paths[i].startswith(key + "/")

    def _paths_below(self, key: str) -> list[str]:
        prefix = key + "/"
        lo = bisect.bisect_left(self._paths, prefix)
        hi = bisect.bisect_left(self._paths, prefix + "\U0010ffff")
        return self._paths[lo:hi]

    def first_diff_below(self, key: str) -> Difference | None:
        """Return a difference at or below node path ``key`` (the first in path order), or None."""
        if key in self._by_path:
            return self._by_path[key][0]
        below = self._paths_below(key)
        return self._by_path[below[0]][0] if below else None

    def kid_index(self, e: Entry, kids: list[tuple[str, Node | None, Node | None]]) -> dict[str, int]:
        """Return ``child key -> index`` for ``e``'s parser children (built once per entry)."""
        index = self._kid_index.get(id(e))
        if index is None:
            index = self._kid_index[id(e)] = {k: i for i, (k, _a, _b) in enumerate(kids)}
        return index

    def orphans(self, e: Entry) -> None:
        """Add, under ``e``, entries for differences whose nodes are below ``e`` but in no parser child of it."""
        kids = e._kids or []
        below = self._paths_below(e.key)
        if not below:
            return
        index = self.kid_index(e, kids)
        start = len(e.key) + 1
        under = "\x00"  # the last child key (plus "/") found holding a path: sorted paths below it come in a row
        for p in below:
            rest = p[start:]
            if rest.startswith(under) or rest in index:
                continue
            # under a parser child when some prefix of the rest (at a "/") is a child's key
            j = rest.find("/")
            while j >= 0 and rest[:j] not in index:
                j = rest.find("/", j + 1)
            if j >= 0:
                under = rest[: j + 1]
                continue
            if p in self._placed:
                continue
            diffs = self._by_path[p]
            labels = split_location(diffs[0].location)
            label = labels[-1] if labels else p.rsplit("/", 1)[-1]
            child = self.make(p, label, e, diffs[0].kind)
            child._kids = []
            e._extra.append(child)

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
                nxt = self.make(key, label, entry)
                entry._extra.append(nxt)
            entry = nxt
        if not entry.kind:
            entry.kind = d.kind
        return entry

    # -- queries ----------------------------------------------------------------------------------------------

    def ref(self, d: Difference) -> DiffRef:
        """Return where difference ``d`` sits."""
        got = self._made_refs.get(id(d))
        if got is None:
            f, derived = self._refs[id(d)]
            got = self._made_refs[id(d)] = DiffRef(d, f, derived, self)
        return got

    def finding_of(self, d: Difference) -> Finding:
        """Return the finding ``d`` belongs to."""
        return self._refs[id(d)][0]

    def is_derived(self, d: Difference) -> bool:
        """Return True when ``d`` is a derived field folded into its finding."""
        return self._refs[id(d)][1]

    def position(self, d: Difference) -> int:
        """Return the index of ``d`` in :attr:`order`."""
        return self.positions()[id(d)]

    def positions(self, pause: Callable[[], None] | None = None) -> dict[int, int]:
        """Return ``id(d) -> index in`` :attr:`order` for every difference (built once; ``pause()`` is called
        every :data:`WARM_STEP` differences while building)."""
        got = self._position
        if got is None:  # no lock, as for groups: the warm-up may build it twice, never half
            got = _index_of(self.order, pause)
            self._position = got
        return got

    def entry_of(self, d: Difference) -> Entry:
        """Return the entry of ``d``'s node, making the entries on the way down from the root."""
        if not self.live:
            return self._entry_from_location(d)
        path = d.node_path
        found = self.by_key.get(path)
        if found is not None:
            return found
        e = self.root
        if path == e.key:
            return e
        guard = 0
        while guard < 4096:
            guard += 1
            if not path.startswith(e.key + "/"):
                return e
            rest = path[len(e.key) + 1 :]
            nxt = None
            # the child's key may itself contain "/" (a file path): try each split, longest match wins
            cuts = [i for i, ch in enumerate(rest) if ch == "/"] + [len(rest)]
            for cut in reversed(cuts):
                cand = e.child_keyed(f"{e.key}/{rest[:cut]}")
                if cand is not None:
                    nxt = cand
                    break
            if nxt is None:
                return self.by_key.get(path, e)
            if nxt.key == path:
                return nxt
            e = nxt
        return e

    def texts(self, pause: Callable[[], None] | None = None) -> tuple[str, array[int]]:
        """Return the search text of every difference in :attr:`order`, joined, and where each one starts.

        The texts are separated by a NUL (a typed query has none, so a match never spans two differences).  Built
        once, under a lock: the app warms it in a thread after the first screen, and a search waits for that.
        ``pause()`` is called every :data:`WARM_STEP` differences while building.
        """
        with self._texts_lock:
            if self._texts is None:
                starts = array("q")
                parts: list[str] = []
                at = 0
                for i, d in enumerate(self.order):
                    text = diff_text(d).replace(SEP, " ")
                    starts.append(at)
                    parts.append(text)
                    at += len(text) + 1
                    if pause is not None and not i % WARM_STEP:
                        pause()
                self._texts = (SEP.join(parts), starts)
            return self._texts

    def groups(
        self, f: Finding, derived: bool, pause: Callable[[], None] | None = None
    ) -> list[tuple[tuple[str, str, str], list[Difference]]]:
        """Return ``f``'s causes (or derived fields) grouped by (node kind, field, change); built once each."""
        key = (id(f), derived)
        got = self._groups.get(key)
        if got is None:  # no lock: the event loop must never wait for the warm-up; a race only groups twice
            got = self._groups[key] = group_by_field(f.derived if derived else f.causes, pause)
        return got

    def group_positions(self, f: Finding, derived: bool, pause: Callable[[], None] | None = None) -> dict[int, int]:
        """Return ``id(d) -> index within its group`` for every group of :meth:`groups` (built once each)."""
        key = (id(f), derived)
        got = self._group_pos.get(key)
        if got is None:
            got = {}
            for _k, members in self.groups(f, derived, pause):
                got.update(_index_of(members, pause))
            self._group_pos[key] = got
        return got

    def warm(self, least: int = 0, pause: Callable[[], None] = lambda: None) -> None:
        """Build what the first opened large group, ``n``/``p`` and the first search need (the app runs this in a
        thread while the user reads the first screen): the groups (with positions) of the lists longer than
        ``least``, the position of every difference, and the search text.

        ``pause()`` is called every :data:`WARM_STEP` items: the app's pause sleeps there while the user is
        typing, so that the warm-up takes the GIL from the event loop only when it is idle.
        """
        # in the order a user is likely to need them: open the finding, then n/p, then search
        for f in self.report.findings:
            for derived, diffs in ((False, f.causes), (True, f.derived)):
                if len(diffs) > least:
                    self.group_positions(f, derived, pause)
        self.positions(pause)
        self.texts(pause)

    def _hits(self, q: str, cancelled: Callable[[], bool]) -> array[int]:
        """Return the indexes in :attr:`order` whose search text contains ``q``, ascending."""
        hay, starts = self.texts()
        hits = array("q")
        if SEP in q:
            return hits
        find, n = hay.find, len(starts)
        pos = find(q)
        while pos >= 0:
            k = bisect.bisect_right(starts, pos) - 1
            hits.append(k)
            if len(hits) & 0xFFF == 0 and cancelled():
                raise Cancelled
            pos = find(q, starts[k + 1]) if k + 1 < n else -1
        return hits

    def search(self, query: str, cancelled: Callable[[], bool] = lambda: False) -> SearchResult:
        """Return what ``query`` matches: raises :class:`Cancelled` as soon as ``cancelled()`` says so."""
        q = query.lower().strip()
        hits = self._hits(q, cancelled) if q else array("q")
        if cancelled():
            raise Cancelled
        findings: list[tuple[Finding, list[Difference], list[Difference]]] = []
        order: list[Difference] = []
        i = h = 0
        for f in self.report.findings:
            n = len(f.causes) + len(f.derived)
            if not q or q in finding_text(f):
                causes, derived = list(f.causes), list(f.derived)
                while h < len(hits) and hits[h] < i + n:
                    h += 1
            else:
                causes, derived = [], []
                split = i + len(f.causes)
                while h < len(hits) and hits[h] < i + n:
                    k = hits[h]
                    if k < split:
                        causes.append(f.causes[k - i])
                    else:
                        derived.append(f.derived[k - split])
                    h += 1
            i += n
            if cancelled():
                raise Cancelled
            if causes or derived:
                findings.append((f, causes, derived))
                order += causes + derived
        if not q:
            paths: list[str] = []
        elif len(order) == len(self.order):
            paths = self._paths  # everything matched (a word of every finding's title, say)
        else:
            paths = sorted({d.node_path for d in order})
        return SearchResult(q, findings, order, paths, {id(d) for d in order} if q else set())

    def matching(self, query: str) -> set[int]:
        """Return ``id()`` of every built entry that matches ``query`` or leads to a matching difference."""
        result = self.search(query)
        keep: set[int] = set()
        if not result.query:
            return keep
        for e in list(self.by_key.values()):
            if result.query in e.haystack() or path_matches(result.paths, e.key):
                keep.add(id(e))
        return keep

    def diff_matches(self, d: Difference, query: str) -> bool:
        """Return True when ``query`` finds ``d`` by its own text or by its finding's (what the findings show)."""
        q = query.lower().strip()
        return not q or q in diff_text(d) or q in finding_text(self.finding_of(d))

    def count(self) -> tuple[int, int]:
        """Return (entries, differing entries) of the whole tree (makes every entry: for small trees and tests)."""
        total = differing = 0
        for e in self.root.walk():
            total += 1
            differing += e.differs
        return total, differing


def path_matches(paths: list[str], key: str) -> bool:
    """Return True when a path in the sorted ``paths`` is ``key`` or lies below it."""
    i = bisect.bisect_left(paths, key)
    if i < len(paths) and paths[i] == key:
        return True
    i = bisect.bisect_left(paths, key + "/")
    return i < len(paths) and paths[i].startswith(key + "/")


def finding_matches(f: Finding, query: str) -> tuple[bool, list[Difference], list[Difference]]:
    """Return whether ``f`` matches ``query`` and which causes and derived fields to show under it."""
    q = query.lower().strip()
    if not q or q in finding_text(f):
        return True, list(f.causes), list(f.derived)
    causes = [d for d in f.causes if q in diff_text(d)]
    derived = [d for d in f.derived if q in diff_text(d)]
    return bool(causes or derived), causes, derived

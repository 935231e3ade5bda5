"""The browser's panes: the findings tree, the structure tree and the detail pane.

The trees are windows over sequences: a node's children are described by a :class:`Seq` (its length and how to
make item ``i``), and only a page of :data:`PAGE` items is put into the Textual tree at a time, with "… more" nodes
before and after the window (enter loads the next page; revealing an item far away moves the window).  A finding
with 100,000 fields therefore opens as fast as one with six: large lists are first folded into one group per
(node kind, field, change) with a count, and each group pages its differences.  The structure tree lists a node's
differing children the same way, making :class:`~imgdiff.tui.structure.Entry` objects only for the shown window.
"""

from __future__ import annotations

import bisect
import difflib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from rich.console import Console, Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from imgdiff.model import Change, Difference, Extent, Finding, Node
from imgdiff.report.fixes import BUILDER_LABELS
from imgdiff.report.values import short
from imgdiff.tui.hexview import SCROLL_BINDINGS
from imgdiff.tui.structure import DiffRef, Entry, SearchResult, Structure, group_by_field, path_matches

LAYER_STYLE = {
    "repart": "magenta",
    "mkfs": "cyan",
    "nixos-module": "blue",
    "content": "green",
    "bootloader": "yellow",
    "other": "white",
    "unknown": "red",
}

VALUE_WIDTH = 80
"""Cells of a value in a tree label before it is cut (a GUID, 36 cells, always fits; the pane cuts the rest)."""
PAGE = 100
"""Tree items put into a tree at a time under one node (two screens of a tall terminal: Textual measures every
line of an open node on each change, 0.04 ms a line, so a reveal that fills three levels costs 3 x PAGE of them)."""
GROUP_MIN = 60
"""A finding with more cause (or derived) fields than this lists them as groups (kind, field, change)."""


def human_bytes(n: int) -> str:
    """Return ``n`` bytes as ``"112 B"``, ``"4.0 KiB"``, ``"1.5 MiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def cut(text: str, width: int = VALUE_WIDTH) -> str:
    """Return ``text`` cut to ``width`` cells with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def relative_location(d: Difference, base: str) -> str:
    """Return ``d``'s location below ``base`` joined with its field name."""
    where = d.location
    if base and where.startswith(base):
        where = where[len(base) :].lstrip(" /")
    return f"{where} / {d.field}" if where else d.field


def change_text(d: Difference) -> str:
    """Return the one-line ``A -> B`` rendering of a difference's values."""
    if d.change == Change.RAW:
        return f"{d.bytes} unparsed bytes differ"
    if d.change == Change.MOVED:
        return f"moved: A {cut(short(d.a, d.display_a))}, B {cut(short(d.b, d.display_b))}"
    if d.change == Change.ADDED:
        return f"only in B: {cut(short(d.b, d.display_b))}"
    if d.change == Change.REMOVED:
        return f"only in A: {cut(short(d.a, d.display_a))}"
    return f"{cut(short(d.a, d.display_a))} → {cut(short(d.b, d.display_b))}"


# -- tree items --------------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class FindingItem:
    """A finding in the findings tree, with the causes and derived fields the search leaves visible."""

    finding: Finding
    causes: list[Difference]
    derived: list[Difference]


@dataclass(eq=False, slots=True)
class DerivedGroup:
    """The ``derived (n)`` node under a finding: recomputed fields folded into it."""

    finding: Finding
    diffs: list[Difference]


@dataclass(eq=False, slots=True)
class FieldGroup:
    """The differences of one (node kind, field, change) in a large finding, shown as one node with a count."""

    finding: Finding
    key: tuple[str, str, str]
    diffs: list[Difference]
    derived: bool
    _index: dict[int, int] | None = None
    """``id(d) ->`` position in the group; may hold the other groups of the finding too (see :meth:`index`)."""

    def index(self, d: Difference) -> int | None:
        """Return the position of ``d`` in the group (None when it is not in the group)."""
        if self._index is None:
            self._index = {id(x): i for i, x in enumerate(self.diffs)}
        i = self._index.get(id(d))
        return i if i is not None and i < len(self.diffs) and self.diffs[i] is d else None


@dataclass(eq=False, slots=True)
class DiffItem:
    """One difference: a cause or derived field in the findings tree, a field leaf in the structure tree."""

    ref: DiffRef

    @property
    def diff(self) -> Difference:
        """Return the difference."""
        return self.ref.diff


@dataclass(eq=False, slots=True)
class MoreItem:
    """A placeholder for the items of a node's list outside the loaded window; enter loads the next page."""

    before: bool
    count: int


TreeData = FindingItem | DerivedGroup | FieldGroup | DiffItem | Entry | MoreItem


class Seq(Protocol):
    """The children of one tree node: how many there are and how to make the ``i``-th."""

    def __len__(self) -> int:
        """Return the number of children."""
        ...

    def item(self, i: int) -> tuple[Text, TreeData, bool]:
        """Return ``(label, data, expandable)`` of child ``i``."""
        ...


@dataclass(slots=True)
class ListSeq:
    """A :class:`Seq` over a list, with a function that makes each item."""

    items: Sequence[object]
    make: Callable[[object], tuple[Text, TreeData, bool]]

    def __len__(self) -> int:
        return len(self.items)

    def item(self, i: int) -> tuple[Text, TreeData, bool]:
        """Make item ``i``."""
        return self.make(self.items[i])


@dataclass(slots=True)
class _Window:
    seq: Seq
    lo: int
    hi: int
    nodes: dict[int, TreeNode[TreeData]] = field(default_factory=dict)


def _no_item(_x: object) -> tuple[Text, TreeData, bool]:
    raise IndexError("empty sequence")


def empty_seq() -> ListSeq:
    """Return a sequence without items."""
    return ListSeq([], _no_item)


class LazyTree(Tree[TreeData]):
    """A tree whose nodes get their children when first expanded, a page at a time; → opens, ← closes or goes up."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right", "open", "Open", show=False),
        Binding("left", "close", "Close", show=False),
    ]

    def __init__(self, label: str, **kwargs: object) -> None:
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self._windows: dict[int, _Window] = {}

    def children_of(self, data: TreeData | None) -> Seq:
        """Return the children of a node holding ``data``."""
        return empty_seq()

    def load(self, node: TreeNode[TreeData], start: int = 0) -> None:
        """Add a page of ``node``'s children starting at ``start``, if that node has not been filled yet."""
        if node.id in self._windows:
            return
        seq = self.children_of(node.data)
        self._fill(node, seq, max(min(start, len(seq) - PAGE), 0) if start else 0)

    def _fill(self, node: TreeNode[TreeData], seq: Seq, lo: int) -> None:
        node.remove_children()
        hi = min(lo + PAGE, len(seq))
        win = self._windows[node.id] = _Window(seq, lo, hi)
        if lo > 0:
            node.add_leaf(self._more_label(True, lo), MoreItem(True, lo))
        for i in range(lo, hi):
            win.nodes[i] = self._add(node, *seq.item(i))
        if hi < len(seq):
            node.add_leaf(self._more_label(False, len(seq) - hi), MoreItem(False, len(seq) - hi))

    @staticmethod
    def _more_label(before: bool, count: int) -> Text:
        where = "earlier" if before else "more"
        return Text(f"… {count} {where} (enter shows {min(count, PAGE)})", style="dim italic")

    @staticmethod
    def _add(node: TreeNode[TreeData], label: Text, data: TreeData, expandable: bool, **kw: object) -> TreeNode[TreeData]:
        if expandable:
            return node.add(label, data, **kw)  # type: ignore[arg-type]
        return node.add_leaf(label, data, **kw)  # type: ignore[arg-type]

    def load_more(self, more: TreeNode[TreeData]) -> TreeNode[TreeData] | None:
        """Replace a "… more" node with the next page; return the first node added."""
        parent = more.parent
        item = more.data
        if parent is None or not isinstance(item, MoreItem) or parent.id not in self._windows:
            return None
        win = self._windows[parent.id]
        first: TreeNode[TreeData] | None = None
        if item.before:
            lo = max(win.lo - PAGE, 0)
            anchor = win.nodes[win.lo]
            for i in range(lo, win.lo):
                node = self._add(parent, *win.seq.item(i), before=anchor)
                win.nodes[i] = node
                first = first or node
            win.lo = lo
            more.remove()
            if lo > 0:
                parent.add_leaf(self._more_label(True, lo), MoreItem(True, lo), before=0)
        else:
            hi = min(win.hi + PAGE, len(win.seq))
            more.remove()
            for i in range(win.hi, hi):
                node = self._add(parent, *win.seq.item(i))
                win.nodes[i] = node
                first = first or node
            win.hi = hi
            if hi < len(win.seq):
                parent.add_leaf(self._more_label(False, len(win.seq) - hi), MoreItem(False, len(win.seq) - hi))
        return first

    def node_at(self, node: TreeNode[TreeData], i: int) -> TreeNode[TreeData] | None:
        """Return ``node``'s tree node of child ``i``, moving the window there if it is outside."""
        self.load(node, max(i - PAGE // 2, 0))  # a first load pages in around ``i`` at once
        win = self._windows.get(node.id)
        if win is None or not 0 <= i < len(win.seq):
            return None
        if not win.lo <= i < win.hi:
            self._fill(node, win.seq, max(i - PAGE // 2, 0))
            win = self._windows[node.id]
        return win.nodes.get(i)

    def reset_tree(self) -> None:
        """Remove every node under the root."""
        self.clear()
        self._windows = {}

    def action_open(self) -> None:
        """Expand the node under the cursor, or step into it when it is already open."""
        node = self.cursor_node
        if node is None:
            return
        if isinstance(node.data, MoreItem):
            first = self.load_more(node)
            if first is not None:
                self.move_cursor(first)
            return
        if not node.allow_expand:
            return
        if not node.is_expanded:
            node.expand()
        elif node.children:
            self.move_cursor(node.children[0])

    def action_close(self) -> None:
        """Collapse the node under the cursor, or go to its parent."""
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.allow_expand:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[TreeData]) -> None:
        """Fill a node when it opens."""
        self.load(event.node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[TreeData]) -> None:
        """Enter (or a click) on a "… more" node loads the next page."""
        if isinstance(event.node.data, MoreItem):
            first = self.load_more(event.node)
            if first is not None:
                self.move_cursor(first)

    def find_child(
        self, node: TreeNode[TreeData], match: Callable[[TreeData | None], bool]
    ) -> TreeNode[TreeData] | None:
        """Return ``node``'s first loaded child whose data satisfies ``match`` (loading the first page first)."""
        self.load(node)
        for child in node.children:
            if match(child.data):
                return child
        return None

    def goto(self, node: TreeNode[TreeData]) -> None:
        """Expand every ancestor of ``node`` and put the cursor on it."""
        parent = node.parent
        while parent is not None:
            if not parent.is_expanded and parent is not self.root:
                parent.expand()
            parent = parent.parent
        _ = self.last_line  # rebuild the line index so the node has a line number
        centre, self.center_scroll = self.center_scroll, True
        try:
            self.move_cursor(node)
            self.scroll_to_node(node, animate=False)
        finally:
            self.center_scroll = centre

    def visible_count(self) -> int:
        """Return the number of nodes shown (the root excluded), i.e. the tree's line count."""
        return self.last_line + 1


class FindingsTree(LazyTree):
    """Findings, each with its cause fields (grouped by field when many) and a ``derived`` group."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("findings", **kwargs)
        self.structure: Structure | None = None
        self.items: list[FindingItem] = []
        self.id_width = 8
        self._groups: dict[tuple[int, bool], list[object]] = {}

    def populate(self, structure: Structure, search: SearchResult | None = None) -> None:
        """Show the findings a search left (all without one)."""
        if structure is not self.structure:
            self._groups = {}
        self.structure = structure
        self.reset_tree()
        self.items = []
        self.id_width = max([8, *(len(f.rule.id) + 1 for f in structure.report.findings)])
        if search is None or not search.query:
            rows = [(f, f.causes, f.derived) for f in structure.report.findings]
        else:
            rows = search.findings
        for f, causes, derived in rows:
            item = FindingItem(f, list(causes), list(derived))
            self.items.append(item)
            self.root.add(self.finding_label(f), item, expand=False, allow_expand=bool(causes or derived))
        self.root.expand()
        self._windows[self.root.id] = _Window(ListSeq(self.items, _no_item), 0, len(self.items),
                                              dict(enumerate(self.root.children)))

    def finding_label(self, f: Finding) -> Text:
        """Return ``GPT001  repart  112 B  title  @ location``."""
        r = f.rule
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{r.id:<{self.id_width}}", style="bold")
        t.append(f"{r.layer:<13}", style=LAYER_STYLE.get(r.layer, ""))
        t.append(f"{human_bytes(f.bytes):>9}  ", style="dim")
        t.append(r.title)
        if f.location:
            t.append(f"  @ {f.location}", style="dim italic")
        return t

    def diff_label(self, d: Difference, f: Finding, derived: bool) -> Text:
        """Return ``≠ primary GPT header / DiskGUID  a → b``."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("⟲ " if derived else "≠ ", style="dim" if derived else "bold red")
        t.append(relative_location(d, f.location))
        t.append(f"  {change_text(d)}", style="dim")
        return t

    @staticmethod
    def group_label(g: FieldGroup) -> Text:
        """Return ``≠ i_ctime  ×54,197  (ext4.inode, modified)``."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("⟲ " if g.derived else "≠ ", style="dim" if g.derived else "bold red")
        t.append(g.key[1], style="bold")
        t.append(f"  ×{sum(d.count for d in g.diffs):,}", style="yellow")  # a group difference counts its members
        t.append(f"  ({g.key[0]}, {g.key[2]})", style="dim")
        return t

    def _diff_item(self, f: Finding, derived: bool) -> Callable[[object], tuple[Text, TreeData, bool]]:
        assert self.structure is not None
        structure = self.structure

        def make(d: object) -> tuple[Text, TreeData, bool]:
            assert isinstance(d, Difference)
            return self.diff_label(d, f, derived), DiffItem(structure.ref(d)), False

        return make

    def _grouped(self, f: Finding, diffs: list[Difference], derived: bool) -> list[object]:
        if len(diffs) <= GROUP_MIN:
            return list(diffs)
        whole = len(diffs) == len(f.derived if derived else f.causes)
        key = (id(f), derived)
        if whole and key in self._groups:  # the unfiltered list: grouped (and indexed) once per finding
            return list(self._groups[key])
        assert self.structure is not None
        if whole:
            pos = self.structure.group_positions(f, derived)
            groups: list[object] = [FieldGroup(f, k, m, derived, pos) for k, m in self.structure.groups(f, derived)]
        else:
            groups = [FieldGroup(f, k, members, derived) for k, members in group_by_field(diffs)]
        if whole:
            self._groups[key] = groups
        return groups

    def children_of(self, data: TreeData | None) -> Seq:
        """Causes (or groups of them), then the derived group; groups page their differences."""
        if isinstance(data, FindingItem):
            f = data.finding
            items: list[object] = self._grouped(f, data.causes, False)
            if data.derived:
                items.append(DerivedGroup(f, data.derived))
            make_diff = self._diff_item(f, False)

            def make(x: object) -> tuple[Text, TreeData, bool]:
                if isinstance(x, DerivedGroup):
                    return Text(f"⟲ derived ({sum(d.count for d in x.diffs):,}, folded in)", style="dim"), x, True
                if isinstance(x, FieldGroup):
                    return self.group_label(x), x, True
                return make_diff(x)

            return ListSeq(items, make)
        if isinstance(data, DerivedGroup):
            items = self._grouped(data.finding, data.diffs, True)
            make_derived = self._diff_item(data.finding, True)

            def make_d(x: object) -> tuple[Text, TreeData, bool]:
                if isinstance(x, FieldGroup):
                    return self.group_label(x), x, True
                return make_derived(x)

            return ListSeq(items, make_d)
        if isinstance(data, FieldGroup):
            return ListSeq(data.diffs, self._diff_item(data.finding, data.derived))
        return empty_seq()

    def reveal(self, d: Difference) -> TreeNode[TreeData] | None:
        """Put the cursor on difference ``d`` (expanding its finding); return its node, None when filtered out."""
        if self.structure is None:
            return None
        finding = self.structure.finding_of(d)
        derived = self.structure.is_derived(d)
        fnode = next((n for n in self.root.children
                      if isinstance(n.data, FindingItem) and n.data.finding is finding), None)
        if fnode is None or not isinstance(fnode.data, FindingItem):
            return None
        parent = fnode
        pool = fnode.data.derived if derived else fnode.data.causes
        if derived:
            group = self.find_child(fnode, lambda x: isinstance(x, DerivedGroup))
            if group is None:
                return None
            parent = group
        node = self._reveal_in(parent, d, len(pool) > GROUP_MIN)
        if node is not None:
            self.goto(node)
        return node

    def _reveal_in(self, parent: TreeNode[TreeData], d: Difference, grouped: bool) -> TreeNode[TreeData] | None:
        self.load(parent)
        win = self._windows[parent.id]
        seq = win.seq
        assert isinstance(seq, ListSeq)
        if grouped:
            key = (d.kind, d.field, d.change)
            gi = next((i for i, x in enumerate(seq.items) if isinstance(x, FieldGroup) and x.key == key), None)
            if gi is None:
                return None
            gnode = self.node_at(parent, gi)
            if gnode is None or not isinstance(gnode.data, FieldGroup):
                return None
            pos = gnode.data.index(d)
            return self.node_at(gnode, pos) if pos is not None else None
        pos = next((i for i, x in enumerate(seq.items) if x is d), None)
        return self.node_at(parent, pos) if pos is not None else None

    def reveal_finding(self, f: Finding) -> TreeNode[TreeData] | None:
        """Put the cursor on finding ``f``."""
        node = self.find_child(self.root, lambda x: isinstance(x, FindingItem) and x.finding is f)
        if node is not None:
            self.goto(node)
        return node


@dataclass(slots=True)
class _EntrySeq:
    """The children of a structure entry: its differing fields, then the child entries the filter leaves."""

    tree: StructureTree
    entry: Entry
    diffs: list[Difference]
    kids: list[int]
    """Indices of the visible children (into the entry's child list)."""

    def __len__(self) -> int:
        return len(self.diffs) + len(self.kids)

    def item(self, i: int) -> tuple[Text, TreeData, bool]:
        structure = self.tree.structure
        assert structure is not None
        if i < len(self.diffs):
            ref = structure.ref(self.diffs[i])
            return self.tree.field_label(ref), DiffItem(ref), False
        child = self.entry.child_at(self.kids[i - len(self.diffs)])
        return self.tree.entry_label(child), child, self.tree.expandable(child)

    def index_of_child(self, child: Entry) -> int | None:
        """Return the position of ``child`` in the sequence (None when the filter hides it)."""
        entry = self.entry
        kids = entry._list_kids()
        if child in entry._extra:
            own: int | None = len(kids) + entry._extra.index(child)
        else:
            structure = self.tree.structure
            assert structure is not None
            own = structure.kid_index(entry, kids).get(child.key[len(entry.key) + 1 :])
        if own is None:
            return None
        j = bisect.bisect_left(self.kids, own)
        return len(self.diffs) + j if j < len(self.kids) and self.kids[j] == own else None


class StructureTree(LazyTree):
    """Disk → partition table → partitions → filesystem → its structures, with the differing fields as leaves."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("structure", **kwargs)
        self.structure: Structure | None = None
        self.only_differing = True
        self.search: SearchResult | None = None
        self._seq_cache: dict[tuple[int, bool, str], _EntrySeq] = {}
        """Children of an entry per (entry, filter, search): a node with 50,000 children is filtered once."""

    @property
    def filter_text(self) -> str:
        """Return the active search text ('' when none)."""
        return self.search.query if self.search is not None else ""

    def populate(self, structure: Structure, only_differing: bool | None = None,
                 search: SearchResult | None | bool = False) -> None:
        """(Re)build the visible tree for the current filter (``search=False`` keeps the current search)."""
        if structure is not self.structure or len(self._seq_cache) > 4096:
            self._seq_cache = {}
        self.structure = structure
        if only_differing is not None:
            self.only_differing = only_differing
        if search is not False:
            self.search = search if isinstance(search, SearchResult) and search.query else None
        self.reset_tree()
        root = structure.root
        if self.shows(root):
            node = self.root.add(self.entry_label(root), root, expand=False)
            node.expand()
            self.load(node)
            # Open the first level that leads to differences so the tree starts useful.
            for child in list(node.children):
                if isinstance(child.data, Entry) and child.data.differs and child.allow_expand:
                    child.expand()
                    self.load(child)
        self.root.expand()
        self._windows[self.root.id] = _Window(ListSeq([root], _no_item), 0, 1, dict(enumerate(self.root.children)))

    def shows(self, e: Entry) -> bool:
        """Return True when the filters leave ``e`` in the tree."""
        if self.only_differing and not e.differs:
            return False
        s = self.search
        return s is None or path_matches(s.paths, e.key) or s.query in e.haystack()

    def _key_visible(self, key: str) -> bool:
        s = self.search
        if self.only_differing and self.structure is not None and not self.structure.has_diffs_below(key):
            return False
        return s is None or path_matches(s.paths, key)

    def expandable(self, e: Entry) -> bool:
        """Return True when ``e`` has something to show under it."""
        if e.diffs:
            return True
        if self.only_differing or self.search is not None:
            return e.differs and e.child_count() > 0
        return e.child_count() > 0

    @staticmethod
    def entry_label(e: Entry) -> Text:
        """Return the label of an entry, marked when it (or something below it) differs."""
        t = Text(no_wrap=True, overflow="ellipsis")
        if e.side == "b":
            t.append("+ ", style="green bold")
        elif e.side == "a":
            t.append("- ", style="red bold")
        t.append(e.label, style="bold" if e.diffs else ("" if e.differs else "dim"))
        if e.diffs:
            t.append(f"  ≠{len(e.diffs)}", style="red")
        elif e.differs:
            t.append("  •", style="yellow")
        return t

    @staticmethod
    def field_label(ref: DiffRef) -> Text:
        """Return the label of a field leaf."""
        d = ref.diff
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("⟲ " if ref.derived else "≠ ", style="dim" if ref.derived else "bold red")
        t.append(d.field, style="" if not ref.derived else "dim")
        t.append(f"  {change_text(d)}", style="dim")
        return t

    def children_of(self, data: TreeData | None) -> Seq:
        """Differing fields first, then the child entries the filter leaves visible."""
        if not isinstance(data, Entry) or self.structure is None:
            return empty_seq()
        s = self.search
        key = (id(data), self.only_differing, s.query if s is not None else "")
        cached = self._seq_cache.get(key)
        if cached is not None:
            return cached
        diffs = [d for d in data.diffs if s is None or id(d) in s.ids or s.query in data.haystack()]
        kids = data._list_kids()
        visible: list[int] = []
        for i in range(data.child_count()):
            if i < len(kids):
                made = data._made.get(i)
                if made is not None:
                    ok = self.shows(made)
                else:
                    ok = self._key_visible(f"{data.key}/{kids[i][0]}")
            else:
                ok = self.shows(data._extra[i - len(kids)])
            if ok:
                visible.append(i)
        seq = self._seq_cache[key] = _EntrySeq(self, data, diffs, visible)
        return seq

    def reveal(self, entry: Entry, d: Difference | None = None) -> TreeNode[TreeData] | None:
        """Expand down to ``entry`` (and its field leaf for ``d``) and put the cursor there."""
        chain = entry.chain()
        node = next((n for n in self.root.children if n.data is chain[0]), None)
        if node is None:
            return None
        for e in chain[1:]:
            self.load(node)
            seq = self._windows[node.id].seq
            pos = seq.index_of_child(e) if isinstance(seq, _EntrySeq) else None
            nxt = self.node_at(node, pos) if pos is not None else None
            if nxt is None:
                break
            node = nxt
        if d is not None and node.data is entry:
            self.load(node)
            seq = self._windows[node.id].seq
            if isinstance(seq, _EntrySeq):
                pos = next((i for i, x in enumerate(seq.diffs) if x is d), None)
                leaf = self.node_at(node, pos) if pos is not None else None
                if leaf is not None:
                    node = leaf
        self.goto(node)
        return node

    @property
    def cursor_label(self) -> str:
        """Return the plain label of the node under the cursor ('' when none)."""
        node = self.cursor_node
        if node is None:
            return ""
        label = node.label
        return label.plain if isinstance(label, Text) else str(label)


# -- detail pane ---------------------------------------------------------------------------------------------------


def _extents(exts: tuple[Extent, ...], limit: int = 4) -> str:
    if not exts:
        return "—"
    parts = [f"0x{e.offset:x}+{e.length}" for e in exts[:limit]]
    if len(exts) > limit:
        parts.append(f"… ({len(exts)} extents)")
    return ", ".join(parts)


def full(v: object) -> str:
    """Return a value in full (bytes as all their hex, up to 4 KiB of it), for the detail pane."""
    if isinstance(v, (bytes, bytearray)):
        h = bytes(v).hex()
        return h if len(h) <= 8192 else h[:8192] + f"… ({len(v)} bytes)"
    if isinstance(v, tuple):
        return "(" + ", ".join(full(x) for x in v) + ")"
    if isinstance(v, bool) or v is None:
        return str(v).lower() if v is not None else "-"
    if isinstance(v, int):
        return f"{v} (0x{v:x})" if v > 9 else str(v)
    return str(v)


def _value(v: object, display: str | None) -> Text:
    text = full(v)
    out = Text(text)
    if display and display != text:
        out.append(f"\n{display}", style="italic")
    return out


def _heading(text: str, style: str = "bold") -> Text:
    return Text(text, style=style)


def _is_text(data: bytes) -> bool:
    if b"\0" in data[:65536]:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f")
    return controls <= len(text[:65536]) // 100


def text_diff(path: str, a: bytes, b: bytes, limit: int = 400) -> Text | None:
    """Return a coloured unified diff of two text versions of a file, or None when either is not text."""
    if not (_is_text(a) and _is_text(b)):
        return None
    lines = list(difflib.unified_diff(a.decode().splitlines(), b.decode().splitlines(), f"a{path}", f"b{path}",
                                      n=3, lineterm=""))
    if not lines:
        return Text("(the files differ only in line endings or a final newline)", style="dim")
    out = Text()
    for ln in lines[:limit]:
        style = "green" if ln.startswith("+") else "red" if ln.startswith("-") else "cyan" if ln.startswith("@@") else ""
        out.append(ln + "\n", style=style)
    if len(lines) > limit:
        out.append(f"… {len(lines) - limit} more line(s)\n", style="dim")
    return out


class DetailPane(ScrollView, can_focus=True):
    """A, B values side by side with the rule's explanation, component, references, note and fix.

    The content is rendered to lines once per selection (and per width) and drawn line by line: a new selection
    changes only this pane's virtual size, never the screen's layout, so moving through 100,000 fields costs a
    render of this pane, not a relayout of the screen.
    """

    ALLOW_MAXIMIZE = True
    BINDINGS: ClassVar[list[BindingType]] = list(SCROLL_BINDINGS)
    DEFAULT_CSS = """
    DetailPane { overflow-x: hidden; overflow-y: scroll; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: list[Strip] = []
        self._width = 0
        self.subject: object = None
        """What is shown: a Finding, a Difference, an Entry or None."""
        self.parts: list[RenderableType] = []
        self.fixes: Callable[[Finding], list[tuple[str, str]]] | None = None
        """Returns a finding's filled-in fixes per builder (set by the app)."""
        self.contents: Callable[[Difference], tuple[bytes, bytes] | None] | None = None
        """Returns both versions of a changed file (set by the app), for the text diff."""
        self._summary: dict[int, tuple[list[str], list[tuple[str, int]]]] = {}

    def _set(self, subject: object, *parts: RenderableType) -> None:
        self.subject = subject
        self.parts = list(parts)
        self._render_parts()
        self.scroll_to(0, 0, animate=False, force=True)

    def _render_parts(self) -> None:
        width = max(self.scrollable_content_region.width, 20)
        self._width = width
        console = self.app.console
        options = console.options.update(width=width, min_width=width, max_width=width, height=None)
        lines = console.render_lines(Group(*self.parts), options, style=self.rich_style, pad=False)
        self._lines = [Strip(line) for line in lines]
        self.virtual_size = Size(width, len(self._lines))
        self.refresh()

    def on_resize(self) -> None:
        """Render the content again for the new width."""
        if self.scrollable_content_region.width != self._width and self.parts:
            self._render_parts()

    def notify_style_update(self) -> None:
        """Render again when the theme or focus styles change."""
        super().notify_style_update()
        if self.parts and self.is_mounted:
            self._render_parts()

    def render_line(self, y: int) -> Strip:
        """Draw one line of the rendered content."""
        scroll_x, scroll_y = self.scroll_offset
        i = scroll_y + y
        width = self.scrollable_content_region.width
        if i >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        return self._lines[i].crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def show_text(self, text: str) -> None:
        """Show a plain message."""
        self._set(None, Text(text))

    def _rule(self, f: Finding, full_text: bool = True) -> list[RenderableType]:
        r = f.rule
        out: list[RenderableType] = []
        head = Text()
        head.append(f"[{r.id}] ", style="bold")
        head.append(r.title, style="bold")
        out.append(head)
        meta = Text()
        meta.append("layer ", style="dim")
        meta.append(r.layer, style=LAYER_STYLE.get(r.layer, ""))
        if r.component:
            meta.append("  component ", style="dim")
            meta.append(r.component)
        if r.fixed_in:
            meta.append("  fixed in ", style="dim")
            meta.append(r.fixed_in)
        meta.append("  bytes ", style="dim")
        meta.append(str(f.bytes))
        out.append(meta)
        if f.location:
            out.append(Text.assemble(("at ", "dim"), f.location))
        if not full_text:
            return out
        if r.explanation:
            out += [Text(""), _heading("Why"), Text(r.explanation)]
        if f.note:
            out += [Text(""), _heading("Note"), Text(f.note)]
        fixes = self.fixes(f) if self.fixes is not None else ([("plain", r.fix)] if r.fix else [])
        if fixes:
            out += [Text(""), _heading("Fix", "bold green")]
            for b, text in fixes:
                out.append(Text.assemble((f"{BUILDER_LABELS.get(b, b)}: ", "bold"), text))
        if r.references:
            out += [Text(""), _heading("References")]
            out += [Text(f"• {ref}") for ref in r.references]
        return out

    @staticmethod
    def _diff_table(diffs: list[Difference], base: str, limit: int = 40) -> Table:
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False, padding=(0, 1))
        table.add_column("field", ratio=2, overflow="fold")
        table.add_column("A", ratio=2, overflow="fold")
        table.add_column("B", ratio=2, overflow="fold")
        for d in diffs[:limit]:
            table.add_row(relative_location(d, base), _value(d.a, d.display_a), _value(d.b, d.display_b))
        if len(diffs) > limit:
            table.add_row(Text(f"… and {len(diffs) - limit} more (expand the finding)", style="dim"), "", "")
        return table

    def _finding_summary(self, f: Finding) -> tuple[list[str], list[tuple[str, int]]]:
        """Return the finding's paths and its derived fields counted by field (computed once per finding)."""
        got = self._summary.get(id(f))
        if got is None:
            counts: dict[str, int] = {}
            for d in f.derived:
                counts[d.field] = counts.get(d.field, 0) + d.count
            got = self._summary[id(f)] = (f.paths, sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return got

    def show_finding(self, f: Finding, structure: Structure) -> None:
        """Show a finding: its rule, its cause fields with A and B values, its derived fields."""
        parts = self._rule(f, full_text=False)
        parts += [Text(""), _heading(f"Fields ({f.cause_count:,})"), self._diff_table(f.causes, f.location)]
        paths, derived = self._finding_summary(f)
        if paths:
            shown = ", ".join(paths[:20]) + (f" … ({len(paths):,} paths)" if len(paths) > 20 else "")
            parts += [Text.assemble(("paths ", "dim"), shown)]
        if derived:
            shown = ", ".join(f"{name} ×{n:,}" if n > 1 else name for name, n in derived[:12])
            shown += " …" if len(derived) > 12 else ""
            parts += [Text(""), _heading(f"Derived, folded in ({f.derived_count:,})", "bold dim"), Text(shown)]
        parts += self._rule(f)[3 if f.location else 2 :]
        self._set(f, *parts)

    def show_diff(self, ref: DiffRef, structure: Structure) -> None:
        """Show one difference side by side (full values; a text diff of a changed text file), then its finding."""
        d, f = ref.diff, ref.finding
        head = Text()
        head.append("⟲ " if ref.derived else "≠ ", style="dim" if ref.derived else "bold red")
        head.append(f"{d.location} / " if d.location else "", style="dim")
        head.append(d.field, style="bold")
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False, padding=(0, 1))
        table.add_column("", style="dim", width=8)
        table.add_column("A", ratio=1, overflow="fold")
        table.add_column("B", ratio=1, overflow="fold")
        table.add_row("value", _value(d.a, None), _value(d.b, None))
        if d.display_a or d.display_b:
            table.add_row("shown", Text(d.display_a or "—", style="italic"), Text(d.display_b or "—", style="italic"))
        table.add_row("bytes at", _extents(d.extents_a), _extents(d.extents_b))
        if d.covers_a or d.covers_b:
            table.add_row("over", _extents(d.covers_a, 2), _extents(d.covers_b, 2))
        parts: list[RenderableType] = [head, table]
        meta = Text()
        meta.append("change ", style="dim")
        meta.append(d.change)
        meta.append("  differing bytes ", style="dim")
        meta.append(str(d.bytes))
        if d.count > 1:  # a group: this field of d.count objects, one extent each; the values are the first's
            meta.append("  fields ", style="dim")
            meta.append(f"{d.count:,} (one per member; values: the first member's)")
        if d.kind:
            meta.append("  node ", style="dim")
            meta.append(d.kind)
        if d.attrs.get("path"):
            meta.append("  path ", style="dim")
            meta.append(str(d.attrs["path"]))
        parts.append(meta)
        if d.detail:
            parts += [Text(""), Text(d.detail)]
        if d.field == "data" and self.contents is not None:
            got = self.contents(d)
            if got is not None:
                diff = text_diff(str(d.attrs.get("path") or ""), *got)
                if diff is not None:
                    parts += [Text(""), _heading("Text diff"), diff]
        if ref.derived:
            why = Text("Derived: recomputed from other bytes, folded into the finding below", style="dim italic")
            if d.seeds:
                why.append(f"; seeded by {', '.join(d.seeds)}")
            parts += [Text(""), why]
        elif f.derived:
            _paths, derived = self._finding_summary(f)
            shown = ", ".join(name for name, _n in derived[:8]) + (" …" if len(derived) > 8 else "")
            parts += [Text(""), Text.assemble(("Recomputed because of this finding: ", "dim"), shown)]
        parts += [Text(""), *self._rule(f)]
        self._set(d, *parts)

    def show_entry(self, e: Entry, structure: Structure) -> None:
        """Show a structure node: kind, extents, its fields in A and B (differing ones marked)."""
        head = Text()
        head.append(e.label, style="bold")
        if e.kind:
            head.append(f"  {e.kind}", style="dim")
        parts: list[RenderableType] = [head]
        where = Text()
        where.append("A ", style="dim")
        where.append(_extents(e.extents("a"), 2) if e.node_a is not None or not structure.live else "absent")
        where.append("   B ", style="dim")
        where.append(_extents(e.extents("b"), 2) if e.node_b is not None or not structure.live else "absent")
        parts.append(where)
        if e.node_a is not None or e.node_b is not None:
            parts += self._fields(e.node_a, e.node_b, {d.field for d in e.diffs})
        elif e.diffs:
            parts += [Text(""), self._diff_table(e.diffs, "" if structure.live else e.key)]
        errors = [*(e.node_a.errors if e.node_a else []), *(e.node_b.errors if e.node_b else [])]
        if e.parent is None:
            errors += structure.report.errors  # the whole report's partial-result notes, on the root
        if errors:
            parts += [Text(""), _heading("Could not parse", "bold red"), *(Text(x) for x in dict.fromkeys(errors))]
        if e.diffs:
            rules = dict.fromkeys(
                f"[{structure.finding_of(d).rule.id}] {structure.finding_of(d).rule.title}" for d in e.diffs
            )
            parts += [Text(""), _heading("Explained by"), *(Text(r) for r in rules)]
        elif e.differs:
            parts += [Text(""), Text("Something below this node differs.", style="yellow")]
        else:
            parts += [Text(""), Text("Identical in A and B.", style="dim")]
        self._set(e, *parts)

    @staticmethod
    def _fields(a: Node | None, b: Node | None, differing: set[str], limit: int = 80) -> list[RenderableType]:
        fields_a = {f.name: f for f in (a.all_fields() if a else ())}
        fields_b = {f.name: f for f in (b.all_fields() if b else ())}
        names = list(fields_a)
        names += [n for n in fields_b if n not in fields_a]
        if not names:
            return []
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False, padding=(0, 1))
        table.add_column("field", ratio=2, overflow="fold")
        table.add_column("A", ratio=2, overflow="fold")
        table.add_column("B", ratio=2, overflow="fold")
        for name in names[:limit]:
            fa = fields_a.get(name)
            fb = fields_b.get(name)
            mark = name in differing
            table.add_row(
                Text(("≠ " if mark else "  ") + name, style="bold red" if mark else ""),
                _value(fa.value, fa.display) if fa else Text("—", style="dim"),
                _value(fb.value, fb.display) if fb else Text("—", style="dim"),
            )
        if len(names) > limit:
            table.add_row(Text(f"… {len(names) - limit} more fields", style="dim"), "", "")
        return [Text(""), table]

    def plain(self, width: int = 100) -> str:
        """Return the shown text without styles (for tests and debugging)."""
        out = io.StringIO()
        console = Console(width=width, file=out, color_system=None, legacy_windows=False)
        console.print(Group(*self.parts))
        return out.getvalue()


class KeyBar(Static):
    """The key hints on the bottom line: one widget that redraws its text when the active bindings change.

    Textual's ``Footer`` recomposes one widget per key on every focus change; measured on the usr-rebuilt pair
    (``bench/tui_latency.py``) that alone made ``tab`` cost 141 ms and ``escape`` 271 ms against 62 and 228 ms
    without it.  This bar builds one line of text, and only when the shown keys differ from the last ones.  A
    click on a key presses it, as in the footer.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"keybar--key", "keybar--description"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    KeyBar > .keybar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .keybar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.keys: tuple[tuple[str, str, str, bool], ...] = ()
        """What is shown: (key, key as displayed, description, enabled) per key."""
        self._spans: list[tuple[int, int, str]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: object) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        seen: set[str] = set()
        keys: list[tuple[str, str, str, bool]] = []
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            keys.append((binding.key, self.app.get_key_display(binding), binding.description, enabled))
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            _node, binding, enabled, _tooltip = palette
            keys.append((binding.key, self.app.get_key_display(binding), binding.description, enabled))
        shown = tuple(keys)
        if shown != self.keys:
            self.keys = shown
            self.refresh_text()

    def refresh_text(self) -> None:
        """Build the line from ``keys`` in the bar's current styles."""
        key_style = self.get_component_rich_style("keybar--key")
        text_style = self.get_component_rich_style("keybar--description")
        line = Text(no_wrap=True, end="")
        self._spans = []
        for key, display, description, enabled in self.keys:
            start = len(line)
            dim = Style(dim=True) if not enabled else Style()
            line.append(f" {display} ", key_style + dim)
            line.append(f"{description} ", text_style + dim)
            self._spans.append((start, len(line), key))
        self.update(line)

    def on_click(self, event: Click) -> None:
        """Press the key under the pointer."""
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return

"""The browser's panes: the findings tree, the structure tree and the detail pane.

The trees fill their children lazily (on expansion), so a filesystem with many thousands of inodes or a finding
with many thousands of fields opens instantly.  Their node data are the small item classes below; the app reacts
to cursor moves and keeps the other panes in step.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from imgdiff.model import Change, Difference, Extent, Finding, Node
from imgdiff.report.values import short
from imgdiff.tui.structure import DiffRef, Entry, Structure, finding_matches

LAYER_STYLE = {
    "repart": "magenta",
    "mkfs": "cyan",
    "nixos-module": "blue",
    "content": "green",
    "bootloader": "yellow",
    "other": "white",
    "unknown": "red",
}

VALUE_WIDTH = 28
"""Cells of a value in a tree label before it is cut."""


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
class DiffItem:
    """One difference: a cause or derived field in the findings tree, a field leaf in the structure tree."""

    ref: DiffRef

    @property
    def diff(self) -> Difference:
        """Return the difference."""
        return self.ref.diff


TreeData = FindingItem | DerivedGroup | DiffItem | Entry


class LazyTree(Tree[TreeData]):
    """A tree whose nodes get their children when first expanded; → opens a node, ← closes it or goes up."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right", "open", "Open", show=False),
        Binding("left", "close", "Close", show=False),
    ]

    def __init__(self, label: str, **kwargs: object) -> None:
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self._loaded: set[int] = set()

    def children_of(self, data: TreeData | None) -> Iterable[tuple[Text, TreeData, bool]]:
        """Yield ``(label, data, expandable)`` for the children of a node holding ``data``."""
        return ()

    def load(self, node: TreeNode[TreeData]) -> None:
        """Add ``node``'s children if that has not been done yet."""
        if node.id in self._loaded:
            return
        self._loaded.add(node.id)
        for label, data, expandable in self.children_of(node.data):
            if expandable:
                node.add(label, data)
            else:
                node.add_leaf(label, data)

    def reset_tree(self) -> None:
        """Remove every node under the root."""
        self.clear()
        self._loaded = set()

    def action_open(self) -> None:
        """Expand the node under the cursor, or step into it when it is already open."""
        node = self.cursor_node
        if node is None or not node.allow_expand:
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

    def find_child(
        self, node: TreeNode[TreeData], match: Callable[[TreeData | None], bool]
    ) -> TreeNode[TreeData] | None:
        """Return ``node``'s first child whose data satisfies ``match`` (loading the children first)."""
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
    """Findings, each with its cause fields and a ``derived`` group of the fields folded into it."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("findings", **kwargs)
        self.structure: Structure | None = None
        self.items: list[FindingItem] = []
        self.id_width = 8

    def populate(self, structure: Structure, query: str = "") -> None:
        """Show the findings that match ``query`` (all when empty)."""
        self.structure = structure
        self.reset_tree()
        self.items = []
        self.id_width = max([8, *(len(f.rule.id) + 1 for f in structure.report.findings)])
        for f in structure.report.findings:
            ok, causes, derived = finding_matches(f, query)
            if not ok:
                continue
            item = FindingItem(f, causes, derived)
            self.items.append(item)
            self.root.add(self.finding_label(f), item, expand=False, allow_expand=bool(causes or derived))
        self.root.expand()
        self._loaded.add(self.root.id)

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

    def children_of(self, data: TreeData | None) -> Iterable[tuple[Text, TreeData, bool]]:
        """Causes, then the derived group; the group's children are the derived fields."""
        assert self.structure is not None
        if isinstance(data, FindingItem):
            for d in data.causes:
                yield self.diff_label(d, data.finding, False), DiffItem(self.structure.ref(d)), False
            if data.derived:
                label = Text(f"⟲ derived ({len(data.derived)}, folded in)", style="dim")
                yield label, DerivedGroup(data.finding, data.derived), True
        elif isinstance(data, DerivedGroup):
            for d in data.diffs:
                yield self.diff_label(d, data.finding, True), DiffItem(self.structure.ref(d)), False

    def reveal(self, d: Difference) -> TreeNode[TreeData] | None:
        """Put the cursor on difference ``d`` (expanding its finding); return its node, None when filtered out."""
        if self.structure is None:
            return None
        ref = self.structure.ref(d)
        fnode = self.find_child(self.root, lambda x: isinstance(x, FindingItem) and x.finding is ref.finding)
        if fnode is None:
            return None
        parent = fnode
        if ref.derived:
            group = self.find_child(fnode, lambda x: isinstance(x, DerivedGroup))
            if group is None:
                return None
            parent = group
        node = self.find_child(parent, lambda x: isinstance(x, DiffItem) and x.diff is d)
        if node is not None:
            self.goto(node)
        return node

    def reveal_finding(self, f: Finding) -> TreeNode[TreeData] | None:
        """Put the cursor on finding ``f``."""
        node = self.find_child(self.root, lambda x: isinstance(x, FindingItem) and x.finding is f)
        if node is not None:
            self.goto(node)
        return node


class StructureTree(LazyTree):
    """Disk → partition table → partitions → filesystem → its structures, with the differing fields as leaves."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("structure", **kwargs)
        self.structure: Structure | None = None
        self.only_differing = True
        self.filter_text = ""
        self._keep: set[int] = set()

    def populate(self, structure: Structure, only_differing: bool | None = None, query: str | None = None) -> None:
        """(Re)build the visible tree for the current filter."""
        self.structure = structure
        if only_differing is not None:
            self.only_differing = only_differing
        if query is not None:
            self.filter_text = query.strip()
            self._keep = structure.matching(self.filter_text) if self.filter_text else set()
        self.reset_tree()
        root = structure.root
        if self._visible(root):
            node = self.root.add(self.entry_label(root), root, expand=False)
            node.expand()
            self.load(node)
            if self.filter_text:
                self._open_matches(node)
            else:
                # Open the first level that leads to differences so the tree starts useful.
                for child in node.children:
                    if isinstance(child.data, Entry) and child.data.differs and child.allow_expand:
                        child.expand()
                        self.load(child)
        self.root.expand()
        self._loaded.add(self.root.id)

    def _open_matches(self, top: TreeNode[TreeData], limit: int = 200) -> None:
        """Expand the nodes on the way to search matches (breadth first, at most ``limit`` of them)."""
        queue = [top]
        opened = 0
        while queue and opened < limit:
            node = queue.pop(0)
            for child in node.children:
                if isinstance(child.data, Entry) and child.allow_expand:
                    child.expand()
                    self.load(child)
                    opened += 1
                    queue.append(child)

    def _visible(self, e: Entry) -> bool:
        if self.only_differing and not e.differs:
            return False
        return not self.filter_text or id(e) in self._keep

    def _diff_visible(self, e: Entry, d: Difference) -> bool:
        assert self.structure is not None
        q = self.filter_text.lower()
        return not q or q in e.haystack() or self.structure.diff_matches(d, q)

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

    def children_of(self, data: TreeData | None) -> Iterable[tuple[Text, TreeData, bool]]:
        """Differing fields first, then the child entries the filter leaves visible."""
        if not isinstance(data, Entry) or self.structure is None:
            return
        for d in data.diffs:
            if self._diff_visible(data, d):
                yield self.field_label(self.structure.ref(d)), DiffItem(self.structure.ref(d)), False
        for child in data.children:
            if self._visible(child):
                has_kids = bool(child.diffs) or any(self._visible(c) for c in child.children)
                yield self.entry_label(child), child, has_kids

    def reveal(self, entry: Entry, d: Difference | None = None) -> TreeNode[TreeData] | None:
        """Expand down to ``entry`` (and its field leaf for ``d``) and put the cursor there."""
        chain = entry.chain()
        node = self.find_child(self.root, lambda x: x is chain[0])
        if node is None:
            return None
        for e in chain[1:]:
            nxt = self.find_child(node, lambda x, e=e: x is e)  # type: ignore[misc]
            if nxt is None:
                break
            node = nxt
        if d is not None and node.data is entry:
            leaf = self.find_child(node, lambda x: isinstance(x, DiffItem) and x.diff is d)
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


def _value(v: object, display: str | None) -> Text:
    text = short(v, None)  # type: ignore[arg-type]
    out = Text(text)
    if display and display != text:
        out.append(f"\n{display}", style="italic")
    return out


def _heading(text: str, style: str = "bold") -> Text:
    return Text(text, style=style)


class DetailPane(VerticalScroll):
    """A, B values side by side with the rule's explanation, component, references, note and fix."""

    ALLOW_MAXIMIZE = True

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.body = Static("", id="detail-body")
        self.subject: object = None
        """What is shown: a Finding, a Difference, an Entry or None."""
        self.parts: list[RenderableType] = []

    def compose(self):  # type: ignore[no-untyped-def]
        """The pane holds one Static."""
        yield self.body

    def _set(self, subject: object, *parts: RenderableType) -> None:
        self.subject = subject
        self.parts = list(parts)
        self.body.update(Group(*parts))
        self.scroll_home(animate=False)

    def show_text(self, text: str) -> None:
        """Show a plain message."""
        self._set(None, Text(text))

    @staticmethod
    def _rule(f: Finding, full: bool = True) -> list[RenderableType]:
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
        if not full:
            return out
        if r.explanation:
            out += [Text(""), _heading("Why"), Text(r.explanation)]
        if f.note:
            out += [Text(""), _heading("Note"), Text(f.note)]
        if r.fix:
            out += [Text(""), _heading("Fix", "bold green"), Text(r.fix)]
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

    def show_finding(self, f: Finding, structure: Structure) -> None:
        """Show a finding: its rule, its cause fields with A and B values, its derived fields."""
        parts = self._rule(f, full=False)
        parts += [Text(""), _heading(f"Fields ({len(f.causes)})"), self._diff_table(f.causes, f.location)]
        if f.paths:
            shown = ", ".join(f.paths[:20]) + (f" … ({len(f.paths)} paths)" if len(f.paths) > 20 else "")
            parts += [Text.assemble(("paths ", "dim"), shown)]
        if f.derived:
            names = sorted({relative_location(d, f.location) for d in f.derived})
            shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
            parts += [Text(""), _heading(f"Derived, folded in ({len(f.derived)})", "bold dim"), Text(shown)]
        parts += self._rule(f)[3 if f.location else 2 :]
        self._set(f, *parts)

    def show_diff(self, ref: DiffRef, structure: Structure) -> None:
        """Show one difference side by side, then the finding that explains it."""
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
        if d.kind:
            meta.append("  node ", style="dim")
            meta.append(d.kind)
        if d.attrs.get("path"):
            meta.append("  path ", style="dim")
            meta.append(str(d.attrs["path"]))
        parts.append(meta)
        if d.detail:
            parts += [Text(""), Text(d.detail)]
        if ref.derived:
            why = Text("Derived: recomputed from other bytes, folded into the finding below", style="dim italic")
            if d.seeds:
                why.append(f"; seeded by {', '.join(d.seeds)}")
            parts += [Text(""), why]
        elif f.derived:
            names = sorted({relative_location(x, f.location) for x in f.derived})
            shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
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
                f"[{structure.ref(d).finding.rule.id}] {structure.ref(d).finding.rule.title}" for d in e.diffs
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

"""Modal screens of the browser: the key help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("↑ ↓ ← →, enter", "move in a list or tree; enter/→ opens a node"),
    ("tab, shift+tab", "next / previous pane (findings, structure, detail, hex)"),
    ("n, p", "next / previous difference (causes, then their derived fields)"),
    ("/", "search: filter findings and the structure by text (esc clears)"),
    ("f", "structure: toggle between only differing nodes and all nodes"),
    ("e", "hex view: show the field's next extent"),
    ("z", "zoom the focused pane (again to restore)"),
    ("?", "this help"),
    ("q", "quit (exit status 0 identical, 1 different)"),
)

LEGEND = (
    ("≠", "a field that differs (a cause)"),
    ("⟲", "a derived field (checksum, copy) folded into its cause"),
    ("•", "something below this node differs"),
    ("+ / -", "node only in B / only in A"),
)


class HelpScreen(ModalScreen[None]):
    """Keys and symbols; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        """One scrollable box with the key table and the legend."""
        keys = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for k, what in KEYS:
            keys.add_row(k, what)
        legend = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        legend.add_column(style="bold", no_wrap=True)
        legend.add_column()
        for k, what in LEGEND:
            legend.add_row(k, what)
        with VerticalScroll(id="help-box") as box:
            box.border_title = "imgdiff tui — keys"
            box.border_subtitle = "esc closes"
            yield Static(keys)
            yield Static(Text(""))
            yield Static(legend)
            yield Static(Text("\nThe mouse works too: click a node, scroll a pane.", style="dim"))

"""Modal screens of the browser: the key help and the "go to offset" prompt."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

KEYS = (
    ("↑ ↓ ← →, enter", "move in a list or tree; enter/→ opens a node"),
    ("tab, shift+tab", "next / previous pane (findings, structure, detail, hex)"),
    ("n, p", "next / previous difference (causes, then their derived fields)"),
    ("/", "search: filter findings and the structure by text (esc clears)"),
    ("f", "structure: toggle between only differing nodes and all nodes"),
    ("e", "hex view: show the field's next extent"),
    ("], [", "hex view: next / previous differing byte (the whole region; scrolling slides along it too)"),
    ("g", "hex view: go to an offset (0x1f00, 7936, 36700160+0x10)"),
    ("c", "copy the selected value (A and B in full) or finding to the clipboard"),
    ("x", "export the selection as markdown (./imgdiff-<name>.md, also copied)"),
    ("z", "zoom the focused pane: full values, wide lists (again to restore)"),
    ("?", "this help"),
    ("q", "quit at once (exit status 0 identical, 1 different)"),
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


class GotoScreen(ModalScreen[str | None]):
    """Ask for an offset; enter returns the text, escape returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        """A one-line prompt."""
        with VerticalScroll(id="goto-box") as box:
            box.border_title = "go to offset"
            yield Label("Offset in the image (hex 0x…, decimal, or a sum such as 36700160+0x10):")
            yield Input(placeholder="0x100000", id="goto-input")

    def on_mount(self) -> None:
        """Focus the input."""
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Return what was typed."""
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Return nothing."""
        self.dismiss(None)

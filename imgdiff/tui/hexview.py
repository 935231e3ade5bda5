"""Side-by-side hex view: 16 bytes per row, A on the left, B on the right, differing and field bytes highlighted.

The view shows a window around one extent of the selected field (or node): up to :data:`MAX_WINDOW` bytes with
:data:`CONTEXT` rows before and after.  B's window is shifted by the offset delta between the field's A and B
extents, so the field starts in the same column on both sides (moved fields line up).  The row format adapts to
the width: spaced hex with ASCII when there is room, grouped hex without ASCII at 80 columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from imgdiff.model import Extent
from imgdiff.tui.hexdata import ByteReader, Window, first_mismatch

ROW = 16
CONTEXT = 2
"""Rows shown before and after the extent."""
MAX_WINDOW = 64 * 1024
"""Most bytes shown per extent; a longer field is shown from its first differing byte."""
SEEK_LIMIT = 16 * 1024 * 1024
"""Most bytes compared to find where a long field first differs."""
SEEK_CHUNK = 256 * 1024
LEAD = 8
"""Rows shown above the first differing byte when the window starts there."""


@dataclass(frozen=True, slots=True)
class HexTarget:
    """What to show: the extents to locate and the owning field's extents to highlight, per side."""

    title: str
    extents_a: tuple[Extent, ...]
    extents_b: tuple[Extent, ...]
    field_a: tuple[Extent, ...] = ()
    field_b: tuple[Extent, ...] = ()
    seek: bool = False
    """Start at the first byte that differs inside the extents (a long file's data), not at their start."""


@dataclass(frozen=True, slots=True)
class _Format:
    """One row layout: how bytes are grouped and whether the ASCII column is shown."""

    group: int
    """Bytes per group; groups are separated by one space."""
    spaced: bool
    """Bytes inside a group are separated by a space."""
    ascii: bool

    def side_width(self) -> int:
        """Return the cells one side takes."""
        per_byte = 3 if self.spaced else 2
        groups = ROW // self.group
        hexw = ROW * per_byte - (1 if self.spaced else 0) + (groups - 1)
        return hexw + (ROW + 1 if self.ascii else 0)


FORMATS = (
    _Format(8, True, True),
    _Format(8, True, False),
    _Format(4, False, False),
    _Format(8, False, False),
)
"""From the most to the least readable; the first that fits the width is used."""


def _in(extents: tuple[Extent, ...], base: int, size: int) -> bytearray:
    """Return per-position flags of ``[base, base + size)`` covered by ``extents``."""
    flags = bytearray(size)
    for e in extents:
        lo, hi = max(e.offset, base), min(e.end, base + size)
        if lo < hi:
            flags[lo - base : hi - base] = b"\x01" * (hi - lo)
    return flags


class HexView(ScrollView, can_focus=True):
    """Two columns of hex, A and B, with the bytes that differ and the owning field's bytes highlighted."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hexview--offset",
        "hexview--diff",
        "hexview--field",
        "hexview--field-diff",
        "hexview--zero",
        "hexview--unknown",
        "hexview--sep",
    }

    DEFAULT_CSS = """
    HexView { scrollbar-size-vertical: 1; overflow-y: scroll; }
    HexView > .hexview--offset { color: $text-muted; }
    HexView > .hexview--diff { color: $text-error; text-style: bold; }
    HexView > .hexview--field { background: $primary 30%; }
    HexView > .hexview--field-diff { background: $primary 30%; color: $text-error; text-style: bold underline; }
    HexView > .hexview--zero { color: $text-disabled; }
    HexView > .hexview--unknown { color: $text-disabled; }
    HexView > .hexview--sep { color: $primary; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("down", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "End", show=False),
        Binding("e", "next_extent", "Next extent"),
    ]

    class Shown(Message):
        """Posted after the view changes what it shows (for the pane title)."""

        def __init__(self, view: HexView) -> None:
            super().__init__()
            self.view = view

    def __init__(
        self, reader_a: ByteReader | None = None, reader_b: ByteReader | None = None, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reader_a = reader_a
        self.reader_b = reader_b
        self.target: HexTarget | None = None
        self.extent_index = 0
        self.seek_anchor: tuple[int, int] | None = None
        """(extent index, offset inside it) of the first differing byte, when the target asked to seek it."""
        self.offset_a: int | None = None
        """A offset of the shown extent (B's when the field exists only in B)."""
        self.offset_b: int | None = None
        self.base_a = 0
        self.base_b = 0
        self.size_shown = 0
        self.truncated = False
        self._a: Window = []
        self._b: Window = []
        self._field_a = bytearray()
        self._field_b = bytearray()
        self._diff = bytearray()
        self._format = FORMATS[-1]
        self._offw = 6
        self._styles: dict[str, Style] | None = None

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def extent_count(self) -> int:
        """Return how many extents the target has (the longer side's count)."""
        if self.target is None:
            return 0
        return max(len(self.target.extents_a), len(self.target.extents_b))

    @property
    def differing_bytes(self) -> int:
        """Return the number of differing bytes in the shown window."""
        return sum(self._diff)

    def show(self, target: HexTarget | None) -> None:
        """Show ``target`` (None clears the view) at its first extent, or where it first differs when asked."""
        self.target = target
        self.extent_index = 0
        self.seek_anchor = None
        if target is not None and target.seek:
            found = self._first_difference(target)
            if found is not None:
                self.extent_index, shift = found
                self.seek_anchor = (self.extent_index, shift)
        self._load()

    def _pair(self, t: HexTarget, i: int) -> tuple[Extent, Extent] | None:
        ea = t.extents_a[i] if i < len(t.extents_a) else None
        eb = t.extents_b[i] if i < len(t.extents_b) else None
        ea = ea or eb
        eb = eb or ea
        return (ea, eb) if ea is not None and eb is not None else None

    def _first_difference(self, t: HexTarget) -> tuple[int, int] | None:
        """Return (extent index, offset inside it) of the first differing byte, comparing raw bytes."""
        if self.reader_a is None or self.reader_b is None:
            return None
        budget = SEEK_LIMIT
        for i in range(self.extent_count):
            pair = self._pair(t, i)
            if pair is None:
                return None
            ea, eb = pair
            n = max(ea.length, eb.length)
            off = 0
            while off < n:
                if budget <= 0:
                    return None
                k = min(SEEK_CHUNK, n - off)
                a = self.reader_a.raw(ea.offset + off, min(k, max(ea.length - off, 0)))
                b = self.reader_b.raw(eb.offset + off, min(k, max(eb.length - off, 0)))
                if a is None or b is None:
                    return None
                hit = first_mismatch(a, b)
                if hit is not None:
                    return i, off + hit
                off += k
                budget -= k
        return None

    def action_next_extent(self) -> None:
        """Show the target's next extent (wrapping)."""
        if self.extent_count > 1:
            self.extent_index = (self.extent_index + 1) % self.extent_count
            self._load()

    def _load(self) -> None:
        t = self.target
        self._a, self._b = [], []
        self.offset_a = self.offset_b = None
        self.size_shown = 0
        self.truncated = False
        if t is None or not (t.extents_a or t.extents_b):
            self._finish(0)
            return
        i = self.extent_index
        pair = self._pair(t, i)
        assert pair is not None
        ea, eb = pair
        self.offset_a, self.offset_b = ea.offset, eb.offset
        length = max(ea.length, eb.length, 1)
        base = max(ea.offset - ea.offset % ROW - CONTEXT * ROW, 0)
        anchor = ea.offset
        if self.seek_anchor is not None and self.seek_anchor[0] == i:
            anchor = ea.offset + self.seek_anchor[1]
            if anchor - base >= MAX_WINDOW - LEAD * ROW:  # beyond the first window: start near the difference
                base = max(anchor - anchor % ROW - LEAD * ROW, 0)
        end = ea.offset + length
        end = end + (-end) % ROW + CONTEXT * ROW
        end = max(end, base + ROW * self.scrollable_content_region.height)  # fill the view with context
        size = end - base
        if size > MAX_WINDOW:
            size, self.truncated = MAX_WINDOW, True
        self.base_a, self.base_b = base, base + (eb.offset - ea.offset)
        self.size_shown = size
        self._a = self.reader_a.window(self.base_a, size) if self.reader_a else [None] * size
        self._b = self.reader_b.window(self.base_b, size) if self.reader_b else [None] * size
        self._field_a = _in(t.field_a, self.base_a, size)
        self._field_b = _in(t.field_b, self.base_b, size)
        self._diff = bytearray(
            1 if (x is not None and y is not None and x != y) else 0 for x, y in zip(self._a, self._b)
        )
        self._finish((size + ROW - 1) // ROW)
        # Scroll so the first differing row (or the extent's first row) sits just under the context rows.
        self.scroll_to(0, max((anchor - base) // ROW - CONTEXT, 0), animate=False, force=True)

    def _finish(self, rows: int) -> None:
        top = max(self.base_a + self.size_shown, self.base_b + self.size_shown, 1)
        self._offw = max(6, len(f"{top:x}"))
        self._choose_format()
        self.virtual_size = Size(self._row_width(), rows)
        self.scroll_to(0, 0, animate=False, force=True)
        self.refresh()
        self.post_message(self.Shown(self))

    def _row_width(self) -> int:
        return self._offw + 1 + 2 * self._format.side_width() + 3

    def _choose_format(self) -> None:
        # The vertical scrollbar is always shown (overflow-y: scroll), so the width does not depend on timing.
        width = self.scrollable_content_region.width
        for fmt in FORMATS:
            self._format = fmt
            if self._row_width() <= width:
                return

    def on_resize(self) -> None:
        """Pick the richest row format that fits the new width; read more context when the view grew taller."""
        if (
            self.target is not None
            and not self.truncated
            and self.size_shown < ROW * self.scrollable_content_region.height
        ):
            self._load()
            return
        old = self._format
        self._choose_format()
        if self._format != old:
            self.virtual_size = Size(self._row_width(), self.virtual_size.height)
            self.refresh()

    # -- rendering --------------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """Forget the cached row styles when the CSS (theme, focus) changes."""
        self._styles = None
        super().notify_style_update()

    def row_text(self, row: int) -> str:
        """Return row ``row`` as plain text (what tests and the screen reader see)."""
        return "".join(seg.text for seg in self._row_segments(row))

    def _row_segments(self, row: int) -> list[Segment]:
        styles = self._styles
        if styles is None:
            styles = {name: self.get_component_rich_style(name) for name in self.COMPONENT_CLASSES}
            styles[""] = self.rich_style
            self._styles = styles
        start = row * ROW
        fmt = self._format
        segs = [Segment(f"{self.base_a + start:0{self._offw}x} ", styles["hexview--offset"])]
        for side, (data, field) in enumerate(((self._a, self._field_a), (self._b, self._field_b))):
            if side:
                segs.append(Segment(" │ ", styles["hexview--sep"]))
            for i in range(ROW):
                pos = start + i
                if i:
                    if i % fmt.group == 0:
                        sep = "  " if fmt.spaced else " "
                    else:
                        sep = " " if fmt.spaced else ""
                    if sep:
                        joined = pos < len(field) and field[pos] and field[pos - 1]
                        segs.append(Segment(sep, styles["hexview--field"] if joined else styles[""]))
                segs.append(self._byte(data, field, pos, styles))
            if fmt.ascii:
                segs.append(Segment(" ", styles[""]))
                for i in range(ROW):
                    pos = start + i
                    v = data[pos] if pos < len(data) else None
                    ch = "·" if v is None else (chr(v) if 0x20 <= v < 0x7F else ".")
                    segs.append(Segment(ch, self._style(data, field, pos, styles)))
        return segs

    def _style(self, data: Window, field: bytearray, pos: int, styles: dict[str, Style]) -> Style:
        v = data[pos] if pos < len(data) else None
        if v is None:
            return styles["hexview--unknown"]
        differs = pos < len(self._diff) and self._diff[pos]
        infield = pos < len(field) and field[pos]
        if differs and infield:
            return styles["hexview--field-diff"]
        if differs:
            return styles["hexview--diff"]
        if infield:
            return styles["hexview--field"]
        if v == 0:
            return styles["hexview--zero"]
        return styles[""]

    def _byte(self, data: Window, field: bytearray, pos: int, styles: dict[str, Style]) -> Segment:
        v = data[pos] if pos < len(data) else None
        return Segment("··" if v is None else f"{v:02x}", self._style(data, field, pos, styles))

    def render_line(self, y: int) -> Strip:
        """Render one visible row."""
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if row * ROW >= self.size_shown:
            if row == 0 and self.size_shown == 0:
                text = "no bytes to show" if self.target is not None else "select a finding or a node"
                seg = Segment(text, self.get_component_rich_style("hexview--unknown"))
                return Strip([seg]).crop_extend(scroll_x, scroll_x + width, base)
            return Strip.blank(width, base)
        strip = Strip(self._row_segments(row)).apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

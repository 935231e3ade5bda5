"""Side-by-side hex view: 16 bytes per row, A on the left, B on the right, differing and field bytes highlighted.

The view shows a *region*: one extent of the selected field or node on each side.  It holds a window of up to
:data:`MAX_WINDOW` bytes of it in memory, with :data:`CONTEXT` rows before and after; scrolling past the window's
end or start slides the window along the region, so the whole region can be scrolled through.  B's window is
shifted by the offset delta between the field's A and B extents, so the field starts in the same column on both
sides (moved fields line up).  Runs of :data:`COLLAPSE_MIN` or more rows that repeat the row before them on both
sides (zero padding, free space) collapse into one ``… N identical rows`` line.

Keys: ``]``/``[`` go to the next/previous differing byte (searching the whole region, bounded per key press),
``g`` goes to an offset (a prompt), ``e`` shows the field's next extent.  The differing byte the view is on is the
*mark* (shown reversed).  The row format adapts to the width: spaced hex with ASCII when there is room, grouped hex
without ASCII at 80 columns.
"""

from __future__ import annotations

import bisect
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
"""Most bytes held per window; scrolling past its end slides it along the region."""
SEEK_LIMIT = 64 * 1024 * 1024
"""Most bytes compared per key press (or per selection) to find a differing byte."""
SEEK_CHUNK = 256 * 1024
LEAD = 8
"""Rows shown above the first differing byte when the window starts there."""
COLLAPSE_MIN = 4
"""Repeated rows collapse when at least this many follow each other."""
EDGE = 3
"""Rows from a window edge at which scrolling slides the window (when the region goes on)."""


SCROLL_BINDINGS: list[BindingType] = [
    Binding("up", "scroll_up", "Up", show=False),
    Binding("down", "scroll_down", "Down", show=False),
    Binding("pageup", "page_up", "Page up", show=False),
    Binding("pagedown", "page_down", "Page down", show=False),
    Binding("home", "scroll_home", "Top", show=False),
    Binding("end", "scroll_end", "End", show=False),
]
"""The keys that scroll a pane drawn line by line (the hex view, the detail pane)."""


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


def parse_offset(text: str) -> int | None:
    """Return an offset typed as ``0x1f00``, ``1f00h``, ``7936`` or ``36700160+0x10``; None when it is not one."""
    total = 0
    for part in text.replace(" ", "").split("+"):
        if not part:
            return None
        try:
            if part.lower().startswith("0x"):
                total += int(part, 16)
            elif part.lower().endswith("h"):
                total += int(part[:-1], 16)
            else:
                total += int(part, 10)
        except ValueError:
            return None
    return total if total >= 0 else None


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
        "hexview--mark",
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
    HexView > .hexview--mark { color: $text-error; text-style: bold reverse; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *SCROLL_BINDINGS,
        Binding("right_square_bracket", "next_difference", "Next diff byte", key_display="]"),
        Binding("left_square_bracket", "prev_difference", "Prev diff byte", key_display="["),
        Binding("g", "goto", "Go to offset"),
        Binding("e", "next_extent", "Next extent"),
    ]

    class Shown(Message):
        """Posted after the view changes what it shows (for the pane title)."""

        def __init__(self, view: HexView) -> None:
            super().__init__()
            self.view = view

    class GotoRequested(Message):
        """Posted when ``g`` is pressed: the app asks for an offset and calls :meth:`goto`."""

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
        self.region_a: Extent | None = None
        """The whole region (extent) on side A that the window slides along."""
        self.region_b: Extent | None = None
        self.mark: int | None = None
        """Position of the differing byte the view is on, relative to the region start."""
        self.base_a = 0
        self.base_b = 0
        self.size_shown = 0
        self.truncated = False
        self._a: Window = []
        self._b: Window = []
        self._field_a = bytearray()
        self._field_b = bytearray()
        self._diff = bytearray()
        self._disp: list[int] = []
        """Display row -> data row (``>= 0``), or ``-n`` for a line standing for ``n`` repeated rows."""
        self._first_row: list[int] = []
        """Display row -> first data row it stands for (sorted, for mapping data rows to display rows)."""
        self._format = FORMATS[-1]
        self._offw = 6
        self._styles: dict[str, Style] | None = None
        self._sliding = False

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def extent_count(self) -> int:
        """Return how many extents the target has (the longer side's count)."""
        if self.target is None:
            return 0
        return max(len(self.target.extents_a), len(self.target.extents_b))

    @property
    def differing_bytes(self) -> int:
        """Return the number of differing bytes in the window held now."""
        return sum(self._diff)

    def show(self, target: HexTarget | None) -> None:
        """Show ``target`` (None clears the view) at its first extent, or where it first differs when asked."""
        self.target = target
        self.extent_index = 0
        self.seek_anchor = None
        self.mark = None
        if target is not None and target.seek:
            found = self._first_difference(target)
            if found is not None:
                self.extent_index, shift = found
                self.seek_anchor = (self.extent_index, shift)
                self.mark = shift
        self._load()

    def _pair(self, t: HexTarget, i: int) -> tuple[Extent, Extent] | None:
        ea = t.extents_a[i] if i < len(t.extents_a) else None
        eb = t.extents_b[i] if i < len(t.extents_b) else None
        ea = ea or eb
        eb = eb or ea
        return (ea, eb) if ea is not None and eb is not None else None

    def _scan(self, ea: Extent, eb: Extent, start: int, forward: bool, budget: int) -> tuple[int | None, int]:
        """Return (position of the next differing byte from ``start`` in the region, bytes compared)."""
        if self.reader_a is None or self.reader_b is None:
            return None, 0
        n = max(ea.length, eb.length)
        used = 0
        if forward:
            off = start
            while off < n and used < budget:
                k = min(SEEK_CHUNK, n - off)
                a = self.reader_a.raw(ea.offset + off, min(k, max(ea.length - off, 0)))
                b = self.reader_b.raw(eb.offset + off, min(k, max(eb.length - off, 0)))
                if a is None or b is None:
                    return None, used
                hit = first_mismatch(a, b)
                if hit is not None and off + hit < n:
                    return off + hit, used
                off += k
                used += k
            return None, used
        end = start
        while end > 0 and used < budget:
            k = min(SEEK_CHUNK, end)
            lo = end - k
            a = self.reader_a.raw(ea.offset + lo, min(k, max(ea.length - lo, 0)))
            b = self.reader_b.raw(eb.offset + lo, min(k, max(eb.length - lo, 0)))
            if a is None or b is None:
                return None, used
            hit = first_mismatch(a[::-1], b[::-1]) if len(a) == len(b) else None
            if len(a) != len(b):  # past one side's end: the last byte present on one side only
                return lo + min(len(a), len(b)), used
            if hit is not None:
                return lo + len(a) - 1 - hit, used
            end = lo
            used += k
        return None, used

    def _first_difference(self, t: HexTarget) -> tuple[int, int] | None:
        """Return (extent index, offset inside it) of the first differing byte, comparing raw bytes."""
        budget = SEEK_LIMIT
        for i in range(self.extent_count):
            pair = self._pair(t, i)
            if pair is None:
                return None
            hit, used = self._scan(*pair, 0, True, budget)
            if hit is not None:
                return i, hit
            budget -= used
            if budget <= 0:
                return None
        return None

    def action_next_extent(self) -> None:
        """Show the target's next extent (wrapping)."""
        if self.extent_count > 1:
            self.extent_index = (self.extent_index + 1) % self.extent_count
            self.mark = None
            self._load()

    def _region_pos_of_top(self) -> int:
        """Return the region position of the first row on screen."""
        rows = self._first_row
        y = min(round(self.scroll_offset.y), len(rows) - 1) if rows else 0
        data_row = rows[y] if rows else 0
        assert self.region_a is not None
        return self.base_a + data_row * ROW - self.region_a.offset

    def action_next_difference(self) -> None:
        """Go to the next differing byte after the mark (or after the top row) in the whole region."""
        self._jump(True)

    def action_prev_difference(self) -> None:
        """Go to the previous differing byte before the mark (or before the top row)."""
        self._jump(False)

    def _jump(self, forward: bool) -> None:
        if self.target is None or self.region_a is None or self.region_b is None:
            return
        start = self.mark if self.mark is not None else self._region_pos_of_top()
        start = start + 1 if forward and self.mark is not None else start
        hit, _used = self._scan(self.region_a, self.region_b, max(start, 0), forward, SEEK_LIMIT)
        if hit is None:
            self.app.bell()
            self.notify("no more differing bytes in this region" if forward else
                        "no earlier differing byte in this region", timeout=2)
            return
        self.mark = hit
        self._window_at(hit)

    def action_goto(self) -> None:
        """Ask the app for an offset (``g``)."""
        self.post_message(self.GotoRequested(self))

    def goto(self, offset: int, size: int | None = None) -> None:
        """Show the bytes around absolute ``offset`` (the same offset on both sides), with the mark on it."""
        start = max(offset - offset % ROW - 64 * ROW, 0)
        length = 4 * MAX_WINDOW
        if size is not None:
            length = max(min(length, size - start), ROW)
        region = (Extent(start, length),)
        self.target = HexTarget(f"offset 0x{offset:x}", region, region)
        self.extent_index = 0
        self.seek_anchor = None
        self.mark = offset - start
        self._load()

    def _load(self) -> None:
        t = self.target
        self._a, self._b = [], []
        self.offset_a = self.offset_b = None
        self.region_a = self.region_b = None
        self.size_shown = 0
        self.truncated = False
        if t is None or not (t.extents_a or t.extents_b):
            self._disp, self._first_row = [], []
            self._finish()
            return
        pair = self._pair(t, self.extent_index)
        assert pair is not None
        ea, eb = pair
        self.offset_a, self.offset_b = ea.offset, eb.offset
        self.region_a, self.region_b = ea, eb
        anchor = self.mark if self.mark is not None else 0
        self._window_at(anchor, initial=True)

    def _window_at(self, pos: int, initial: bool = False) -> None:
        """Load the window holding region position ``pos`` and scroll so that it is on screen."""
        t = self.target
        ea, eb = self.region_a, self.region_b
        assert t is not None and ea is not None and eb is not None
        length = max(ea.length, eb.length, 1)
        start = max(ea.offset - ea.offset % ROW - CONTEXT * ROW, 0)
        end = ea.offset + length
        end = end + (-end) % ROW + CONTEXT * ROW
        end = max(end, start + ROW * self.scrollable_content_region.height)  # fill the view with context
        absolute = ea.offset + pos
        base = start
        if absolute - base >= MAX_WINDOW - LEAD * ROW:  # beyond the first window: start near the position
            base = max(absolute - absolute % ROW - LEAD * ROW, start)
        size = min(end - base, MAX_WINDOW)
        self.truncated = end - start > MAX_WINDOW
        self._read(base, size, eb.offset - ea.offset)
        data_row = (absolute - base) // ROW
        if initial and self.mark is None:
            data_row = (ea.offset - base) // ROW
        self._scroll_to_data_row(max(data_row - CONTEXT, 0))

    def _read(self, base: int, size: int, delta: int) -> None:
        t = self.target
        assert t is not None
        self.base_a, self.base_b = base, base + delta
        self.size_shown = size
        self._a = self.reader_a.window(self.base_a, size) if self.reader_a else [None] * size
        self._b = self.reader_b.window(self.base_b, size) if self.reader_b else [None] * size
        self._field_a = _in(t.field_a, self.base_a, size)
        self._field_b = _in(t.field_b, self.base_b, size)
        self._diff = bytearray(
            1 if (x is not None and y is not None and x != y) else 0 for x, y in zip(self._a, self._b)
        )
        self._collapse()
        self._finish()

    def _collapse(self) -> None:
        """Fold runs of rows that repeat the row before them (both sides, nothing differing or highlighted)."""
        rows = (self.size_shown + ROW - 1) // ROW
        disp: list[int] = []
        first: list[int] = []
        r = 0
        a, b, diff, fa = self._a, self._b, self._diff, self._field_a
        while r < rows:
            disp.append(r)
            first.append(r)
            lo = r * ROW
            run = r + 1
            while run < rows:
                s = run * ROW
                if (
                    a[s : s + ROW] != a[lo : lo + ROW]
                    or b[s : s + ROW] != b[lo : lo + ROW]
                    or any(diff[s : s + ROW])
                    or any(fa[s : s + ROW])
                    or any(diff[lo : lo + ROW])
                ):
                    break
                run += 1
            repeats = run - r - 1
            if repeats >= COLLAPSE_MIN:
                disp.append(-repeats)
                first.append(r + 1)
                r = run
            else:
                r += 1
        self._disp, self._first_row = disp, first

    def _finish(self) -> None:
        top = max(self.base_a + self.size_shown, self.base_b + self.size_shown, 1)
        self._offw = max(6, len(f"{top:x}"))
        self._choose_format()
        self.virtual_size = Size(self._row_width(), len(self._disp))
        self.refresh()
        self.post_message(self.Shown(self))

    def _scroll_to_data_row(self, data_row: int) -> None:
        y = max(bisect.bisect_right(self._first_row, data_row) - 1, 0)
        self._sliding = True
        try:
            self.scroll_to(0, y, animate=False, force=True)
        finally:
            self._sliding = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Slide the window along the region when the view reaches the window's end or start."""
        super().watch_scroll_y(old_value, new_value)
        if self._sliding or self.region_a is None or not self._disp:
            return
        height = self.scrollable_content_region.height
        y = round(new_value)
        at_end = y + height >= len(self._disp) - EDGE and new_value > old_value
        at_start = y <= EDGE and new_value < old_value
        if at_end or at_start:
            self.call_after_refresh(self._slide, at_end)

    def _slide(self, forward: bool) -> None:
        ea, eb = self.region_a, self.region_b
        if ea is None or eb is None or self._sliding:
            return
        length = max(ea.length, eb.length)
        lo = max(ea.offset - ea.offset % ROW - CONTEXT * ROW, 0)
        hi = ea.offset + length + (-(ea.offset + length)) % ROW + CONTEXT * ROW
        top_row = self._first_row[min(round(self.scroll_offset.y), len(self._first_row) - 1)]
        top = self.base_a + top_row * ROW
        if forward and self.base_a + self.size_shown >= hi:
            return
        if not forward and self.base_a <= lo:
            return
        base = max(top - MAX_WINDOW // 2, lo)
        base -= base % ROW
        size = min(hi - base, MAX_WINDOW)
        if base == self.base_a and size == self.size_shown:
            return
        self._read(base, size, eb.offset - ea.offset)
        self._scroll_to_data_row((top - base) // ROW)

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
        """Return data row ``row`` of the window as plain text (what tests and the screen reader see)."""
        return "".join(seg.text for seg in self._row_segments(row))

    def display_text(self, y: int) -> str:
        """Return display line ``y`` (a data row, or a collapsed run) as plain text."""
        if y >= len(self._disp):
            return ""
        r = self._disp[y]
        if r >= 0:
            return self.row_text(r)
        return "".join(seg.text for seg in self._collapsed_segments(y, -r))

    def _get_styles(self) -> dict[str, Style]:
        styles = self._styles
        if styles is None:
            styles = {name: self.get_component_rich_style(name) for name in self.COMPONENT_CLASSES}
            styles[""] = self.rich_style
            self._styles = styles
        return styles

    def _collapsed_segments(self, y: int, count: int) -> list[Segment]:
        styles = self._get_styles()
        first = self._first_row[y]
        lo = self.base_a + first * ROW
        text = f"{'*':<{self._offw}} … {count} identical rows (0x{lo:x}–0x{lo + count * ROW - 1:x}, same in A and B)"
        return [Segment(text, styles["hexview--unknown"])]

    def _row_segments(self, row: int) -> list[Segment]:
        styles = self._get_styles()
        start = row * ROW
        fmt = self._format
        mark = None
        if self.mark is not None and self.region_a is not None:
            mark = self.region_a.offset + self.mark - self.base_a
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
                seg = self._byte(data, field, pos, styles)
                if pos == mark:
                    seg = Segment(seg.text, styles["hexview--mark"])
                segs.append(seg)
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
        """Render one visible line."""
        scroll_x, scroll_y = self.scroll_offset
        line = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if line >= len(self._disp):
            if line == 0 and self.size_shown == 0:
                text = "no bytes to show" if self.target is not None else "select a finding or a node"
                seg = Segment(text, self.get_component_rich_style("hexview--unknown"))
                return Strip([seg]).crop_extend(scroll_x, scroll_x + width, base)
            return Strip.blank(width, base)
        r = self._disp[line]
        segs = self._row_segments(r) if r >= 0 else self._collapsed_segments(line, -r)
        return Strip(segs).apply_style(base).crop_extend(scroll_x, scroll_x + width, base)

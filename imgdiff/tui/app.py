"""``imgdiff tui A [B]``: an interactive Textual browser of the differences between two images.

The analysis (:func:`imgdiff.engine.analysis.analyze`, synchronous) runs in a thread worker that reports progress;
then four panes show the findings, the merged structure tree, the detail of the selection and a side-by-side hex
view.  A saved ``imgdiff explain --json`` result opens without the images: the hex view shows its snippets.
The TUI only reads a :class:`~imgdiff.model.Report` and raw bytes at given offsets; it never parses an image.

Responsiveness at scale: the trees are built on expand a page at a time (see :mod:`imgdiff.tui.widgets`), search
runs in a thread worker that a newer keystroke cancels (the event loop only swaps in the result), and nothing on
the event loop walks all differences, so keys are handled at once and ``q`` quits at once.

Exit status like ``imgdiff explain``: 0 identical, 1 different, 2 trouble (bad input, an analysis error, quitting
before the analysis finished).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.markup import escape
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, ProgressBar, Static, Tree
from textual.worker import get_current_worker

from imgdiff.errors import ImgdiffError
from imgdiff.model import Difference, Finding, Report
from imgdiff.ruleset.schema import RuleSet
from imgdiff.tui.hexdata import ByteReader, ImageReader, SnippetReader, SourceReader
from imgdiff.tui.hexview import HexTarget, HexView, parse_offset
from imgdiff.tui.screens import GotoScreen, HelpScreen
from imgdiff.tui.structure import Cancelled, Entry, SearchResult, Structure
from imgdiff.tui.widgets import (
    GROUP_MIN,
    DerivedGroup,
    DetailPane,
    DiffItem,
    FieldGroup,
    FindingItem,
    FindingsTree,
    KeyBar,
    StructureTree,
    TreeData,
    human_bytes,
)

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2
STAGES = ("comparing", "parsing", "nested images", "attributing", "explaining")
WARM_QUIET = 0.1
"""Seconds after a key press or mouse event during which the background warm-up waits."""
PROGRESS_EVERY = 1.0
"""Seconds between two progress redraws while analysing (stage changes are always drawn): each one is a repaint on
the event loop, and the analysis thread waits for the GIL meanwhile (every 50 ms cost 3 s of a 14 s analysis;
every 0.25 s with the elapsed time every 0.5 s, about 0.5 s of 7).  The elapsed time ticks at the same pace."""


class _Cancelled(Exception):
    """Raised from the progress callback to stop an analysis the user no longer waits for."""


def load_saved(path: str) -> Report:
    """Load a saved ``imgdiff explain --json`` result; raise ImgdiffError when it is not one."""
    from imgdiff.report.json import load_report

    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16).lstrip()
            if not head.startswith(b"{"):
                raise ImgdiffError(f"{path}: not a saved imgdiff JSON result (give two images to compare them)")
            data = json.loads(head + fh.read())
    except OSError as exc:
        raise ImgdiffError(f"{path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImgdiffError(f"{path}: not valid JSON: {exc}") from None
    try:
        return load_report(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ImgdiffError(f"{path}: not an imgdiff result: {exc}") from None


def _freeze_heap() -> None:
    """Move every object alive now (the report, its trees, the panes built from them) out of the collector's reach.

    They live until the app exits.  Left in the oldest generation, each full collection would traverse millions
    of them: on a 1 GiB ext4 pair with 54,000 differing inodes that was a 1.4 s pause while the first screen was
    drawn and a 1.6 s one on a later keystroke (bench/tui_latency.py).  Frozen, the collector scans only what is
    made afterwards.
    """
    gc.freeze()


class ImgdiffApp(App[int]):
    """The diff browser.  Give two image paths, or a loaded saved ``report`` (then no image is read)."""

    CSS_PATH = "imgdiff.tcss"
    TITLE = "imgdiff"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 - typed by App
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]  # noqa: RUF012 - typed by App

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "next_diff", "Next"),
        Binding("p", "prev_diff", "Prev"),
        Binding("f", "toggle_filter", "Only differing"),
        Binding("z", "zoom", "Zoom"),
        Binding("c", "copy", "Copy"),
        Binding("x", "export", "Export md"),
        Binding("escape", "escape", "Clear search", show=False),
    ]

    def __init__(
        self,
        a: str | None = None,
        b: str | None = None,
        *,
        seed: str | None = None,
        rules: RuleSet | None = None,
        report: Report | None = None,
        names: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.path_a, self.path_b = a, b
        self.seed = seed
        self.rules = rules
        self.report: Report | None = report
        self.saved = report is not None and report.tree_a is None and report.tree_b is None
        self.names = names
        self.structure: Structure | None = None
        self.error: str | None = None
        """One-line message of what went wrong (printed by :func:`run` after the screen is restored)."""
        self.current: Difference | None = None
        """The difference the selection is on (``n``/``p`` continue from it)."""
        self.search_text = ""
        self.search_result: SearchResult | None = None
        self._search_timer: Timer | None = None
        self._search_pending = ""
        self._fix_cache: dict[int, list[tuple[str, str]]] = {}
        self._order_pos: dict[int, int] | None = None
        self.searches = 0
        """How many search results were shown (tests wait for it)."""
        self.exports: list[str] = []
        """Files written by ``x`` (export as markdown)."""
        self.readers: list[ByteReader] = []
        self.load_seconds: float | None = None
        self.timings: dict[str, float] = {}
        """Seconds since start: ``analysis`` (the comparison finished), ``shown`` (panes filled), ``settled``."""
        self.settled = False
        """True once the report is shown and the first finding selected (tests wait for it)."""
        self._started = time.monotonic()
        self._last_stage = ""
        self._stage_text = "starting…"
        self._ticker: Timer | None = None
        self._last_input = 0.0

    # -- layout -----------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Status line, the loading box, the four panes, the search box, the key footer."""
        yield Static("", id="status")
        with Container(id="loading"), Vertical(id="loading-box"):
            yield Label("starting…", id="stage")
            yield ProgressBar(total=100, show_eta=False, id="bar")
        with Horizontal(id="main"):
            with Vertical(id="lists"):
                yield FindingsTree(id="findings")
                yield StructureTree(id="structure")
            with Vertical(id="views"):
                yield DetailPane(id="detail")
                yield HexView(id="hex")
        with Horizontal(id="searchbar"):
            yield Label("/", id="search-label")
            yield Input(placeholder="search findings and structure (enter: done, esc: clear)", id="search")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        """Start the analysis, or show a given report at once."""
        self.query_one("#findings").border_title = "Findings"
        self.query_one("#structure").border_title = "Structure"
        self.query_one("#detail").border_title = "Detail"
        self.query_one("#hex").border_title = "Hex"
        self.query_one("#main").display = False
        self.query_one("#searchbar").display = False
        self._status(f"{escape(self._display_name('a'))} ⇄ {escape(self._display_name('b'))}  analysing…")
        if self.report is not None:
            self._show(self.report, Structure(self.report))
        else:
            self._ticker = self.set_interval(PROGRESS_EVERY, self._tick)
            self.analyse()

    def _display_name(self, side: str) -> str:
        if self.names is not None:
            return self.names[0 if side == "a" else 1]
        if self.report is not None:
            return (self.report.a if side == "a" else self.report.b).path
        return str((self.path_a if side == "a" else self.path_b) or "")

    # -- analysis worker --------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, name="analyse")
    def analyse(self) -> None:
        """Run the analysis off the event loop; progress goes to the loading box.

        The analysis itself runs in a daemon thread that this worker waits on: ``analyze`` cannot be interrupted
        between progress reports, and quitting must not wait for a long explain step to finish.
        """
        from imgdiff.engine.analysis import analyze

        worker = get_current_worker()
        stop = threading.Event()
        done = threading.Event()
        result: dict[str, Any] = {}
        last = [0.0]

        def progress(stage: str, step: int, total: int) -> None:
            if stop.is_set():
                raise _Cancelled
            now = time.monotonic()
            if stage == self._last_stage and step < total and now - last[0] < PROGRESS_EVERY:
                return
            last[0] = now
            try:
                self.call_from_thread(self._progress, stage, step, total)
            except RuntimeError:  # the app is gone
                raise _Cancelled from None

        def body() -> None:
            assert self.path_a is not None and self.path_b is not None
            was = gc.isenabled()
            gc.disable()  # the report and its structure live as long as the app: see _freeze_heap
            try:
                report = analyze(self.path_a, self.path_b, seed=self.seed, rules=self.rules, progress=progress,
                                 keep_open=True)
                self.timings["analysis"] = time.monotonic() - self._started
                result["done"] = (report, Structure(report))
            except BaseException as exc:  # noqa: BLE001 - handed to the worker below
                result["error"] = exc
            finally:
                _freeze_heap()
                if was:
                    gc.enable()
                done.set()

        threading.Thread(target=body, name="imgdiff-analysis", daemon=True).start()
        while not done.wait(0.1):
            if worker.is_cancelled:
                stop.set()
                return
        if worker.is_cancelled:
            return
        exc = result.get("error")
        if exc is None:
            self.call_from_thread(self._show, *result["done"])
        elif isinstance(exc, _Cancelled):
            return
        elif isinstance(exc, (ImgdiffError, OSError, MemoryError)):
            self.call_from_thread(self._fail, str(exc))
        else:
            if os.environ.get("IMGDIFF_DEBUG"):
                raise exc
            self.call_from_thread(
                self._fail, f"internal error: {type(exc).__name__}: {exc} (IMGDIFF_DEBUG=1 shows more)"
            )

    def _progress(self, stage: str, done: int, total: int) -> None:
        self._last_stage = stage
        index = STAGES.index(stage) if stage in STAGES else 0
        frac = done / total if total else 1.0
        pct = 100 * (index + frac) / len(STAGES)
        self._stage_text = f"{stage}… {100 * frac:.0f}%  (step {index + 1} of {len(STAGES)})"
        self.query_one("#bar", ProgressBar).update(progress=pct)
        self._tick()

    def _tick(self) -> None:
        """Refresh the loading label with the elapsed time, so a long step visibly keeps going."""
        if self.report is not None:
            return
        elapsed = time.monotonic() - self._started
        self.query_one("#stage", Label).update(f"{self._stage_text}   {elapsed:.0f} s  (q quits)")

    def _fail(self, message: str) -> None:
        self.error = message
        self.exit(EXIT_TROUBLE)

    def _show(self, report: Report, structure: Structure) -> None:
        """The report is ready: fill the panes."""
        _freeze_heap()
        self.report, self.structure = report, structure
        self.load_seconds = time.monotonic() - self._started
        self.timings["shown"] = self.load_seconds
        if self._ticker is not None:
            self._ticker.stop()
        if self.saved:
            self.readers = [SnippetReader.from_report(report, "a"), SnippetReader.from_report(report, "b")]
        elif report.sources is not None:  # decompressed inputs and decoded spaces are read through the analysis
            self.readers = [SourceReader(report, "a"), SourceReader(report, "b")]
        elif self.path_a and self.path_b:
            try:
                self.readers = [ImageReader(self.path_a), ImageReader(self.path_b)]
            except ImgdiffError as exc:
                self._fail(str(exc))
                return
        hexview = self.query_one(HexView)
        if self.readers:
            hexview.reader_a, hexview.reader_b = self.readers
        self.query_one("#loading").display = False
        self.query_one("#main").display = True
        detail = self.query_one(DetailPane)
        detail.fixes = self._fixes
        detail.contents = self._contents
        findings = self.query_one(FindingsTree)
        findings.populate(structure)
        self.query_one(StructureTree).populate(structure, only_differing=True, search=None)
        self._update_titles()
        self._status_summary()
        self.refresh_bindings()
        findings.focus()
        # Select once the panes have a size, so the trees and the hex view scroll to the right place.
        self.call_after_refresh(self._select_first)

    def _fixes(self, f: Finding) -> list[tuple[str, str]]:
        """Return the finding's fixes per builder, filled in with this pair's values (cached per finding)."""
        from imgdiff.report.fixes import placeholders, rule_fixes

        got = self._fix_cache.get(id(f))
        if got is None and self.report is not None:
            got = self._fix_cache[id(f)] = rule_fixes(f.rule, placeholders(self.report, f))
        return got or []

    def _contents(self, d: Difference) -> tuple[bytes, bytes] | None:
        """Return both versions of a changed file: kept by the engine, or read through the open sources."""
        if d.content_a is not None and d.content_b is not None:
            return d.content_a, d.content_b
        if self.report is None or self.report.sources is None or not d.extents_a or not d.extents_b:
            return None
        limit = 1 << 20
        if sum(e.length for e in d.extents_a) > limit or sum(e.length for e in d.extents_b) > limit:
            return None
        try:
            a = b"".join(self.report.read("a", e.offset, e.length) or b"" for e in d.extents_a)
            b = b"".join(self.report.read("b", e.offset, e.length) or b"" for e in d.extents_b)
        except OSError:
            return None
        return a, b

    def _select_first(self) -> None:
        self._select_first_now()
        _freeze_heap()
        self.timings["settled"] = time.monotonic() - self._started
        self.settled = True
        if self.structure is not None:
            # Build the field groups, the positions and the search text while the user reads the first screen
            # (about 1 s for 212,000 fields), so that opening a group, n/p and the first search do not wait.
            threading.Thread(target=self.structure.warm, args=(GROUP_MIN, self._warm_pause), name="imgdiff-warm",
                             daemon=True).start()

    def _warm_pause(self) -> None:
        """Let the event loop have the GIL: always for a moment, and for as long as the user is typing."""
        time.sleep(0.0005)
        while time.monotonic() - self._last_input < WARM_QUIET and self.is_running:
            time.sleep(0.02)

    async def on_event(self, event: events.Event) -> None:
        """Note when the user last pressed a key or used the mouse (the warm-up keeps out of the way)."""
        if isinstance(event, events.InputEvent):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _select_first_now(self) -> None:
        findings = self.query_one(FindingsTree)
        report = self.report
        assert report is not None
        if findings.items:
            findings.move_cursor(findings.root.children[0])
            self.select_finding(findings.items[0].finding)
        else:
            detail = self.query_one(DetailPane)
            if report.identical:
                detail.show_text(f"The images are identical ({report.summary.bytes_compared} bytes).")
            else:
                detail.show_text("The images differ but no finding explains it; see the structure tree.")

    def on_unmount(self) -> None:
        """Close the images."""
        for r in self.readers:
            r.close()
        if self.report is not None:
            self.report.close()

    # -- status and titles --------------------------------------------------------------------------------------

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def _status_summary(self) -> None:
        r = self.report
        if r is None:
            return
        s = r.summary
        names = f"[b]{escape(self._display_name('a'))}[/b] ⇄ [b]{escape(self._display_name('b'))}[/b]"
        if r.identical:
            what = f"identical ({human_bytes(s.bytes_compared)})"
        else:
            n = len(r.findings)
            what = (
                f"{human_bytes(s.bytes_differing)} of {human_bytes(s.bytes_compared)} differ · "
                f"{n} finding{'s' if n != 1 else ''} · {human_bytes(s.bytes_unexplained)} unexplained"
            )
            if s.bytes_unexplained:
                what = what.replace(" unexplained", " [b red]unexplained[/]")
        saved = "[dim]saved:[/dim] " if self.saved else ""
        errors = f"  [red]{len(r.errors)} parse error(s)[/red]" if r.errors else ""
        self._status(f"{saved}{names}  {what}{errors}")

    def _update_titles(self) -> None:
        findings = self.query_one(FindingsTree)
        tree = self.query_one(StructureTree)
        total = len(self.report.findings) if self.report else 0
        shown = len(findings.items)
        findings.border_title = f"Findings ({shown}/{total})" if self.search_text else f"Findings ({total})"
        mode = "only differing" if tree.only_differing else "all nodes"
        tree.border_title = f"Structure · {mode}" + (f" · “{escape(self.search_text)}”" if self.search_text else "")

    @on(HexView.Shown)
    def _hex_title(self, event: HexView.Shown) -> None:
        v = event.view
        if v.target is None or v.offset_a is None:
            v.border_title = "Hex"
            v.border_subtitle = ""
            return
        where = f"0x{v.offset_a:x}"
        if v.offset_b is not None and v.offset_b != v.offset_a:
            where += f" │ B 0x{v.offset_b:x}"
        ext = f" · extent {v.extent_index + 1}/{v.extent_count} (e)" if v.extent_count > 1 else ""
        v.border_title = f"Hex · {escape(v.target.title)} @ {where}{ext}"
        sub = f"{v.differing_bytes} differing" + (" · first 64 KiB" if v.truncated else "")
        v.border_subtitle = sub + (" · saved snippets" if self.saved else "")

    @on(HexView.GotoRequested)
    def _ask_offset(self, event: HexView.GotoRequested) -> None:
        view = event.view
        size = self.report.a.size if self.report is not None else None

        def done(text: str | None) -> None:
            if text is None:
                return
            off = parse_offset(text)
            if off is None or (size is not None and off >= size):
                self.notify(f"not an offset in the image: {text!r}", severity="warning", timeout=3)
                return
            view.goto(off, size)
            view.focus()

        self.push_screen(GotoScreen(), done)

    # -- selection ----------------------------------------------------------------------------------------------

    def select_finding(self, f: Finding) -> None:
        """Show a finding; the structure tree and the hex view follow its first field."""
        assert self.structure is not None
        self.query_one(DetailPane).show_finding(f, self.structure)
        first = f.causes[0] if f.causes else (f.derived[0] if f.derived else None)
        if first is not None:
            self._follow(first)

    def select_diff(self, d: Difference, *, findings: bool = False, tree: bool = True) -> None:
        """Show a difference; move the structure tree (and the findings tree when asked) to it."""
        assert self.structure is not None
        ref = self.structure.ref(d)
        self.query_one(DetailPane).show_diff(ref, self.structure)
        if findings:
            self.query_one(FindingsTree).reveal(d)
        self._follow(d, tree=tree)

    def _follow(self, d: Difference, tree: bool = True) -> None:
        assert self.structure is not None
        self.current = d
        ref = self.structure.ref(d)
        if tree:
            self.query_one(StructureTree).reveal(ref.entry, d)
        self.query_one(HexView).show(self._diff_target(d))

    @staticmethod
    def _diff_target(d: Difference) -> HexTarget:
        title = f"{d.location.rsplit(' / ', 1)[-1]} / {d.field}" if d.location else d.field
        return HexTarget(title, d.extents_a, d.extents_b, d.extents_a, d.extents_b, seek=True)

    def select_entry(self, e: Entry) -> None:
        """Show a structure node and its bytes (starting at its first differing field when it is large)."""
        assert self.structure is not None
        self.query_one(DetailPane).show_entry(e, self.structure)
        ea, eb = e.extents("a"), e.extents("b")
        field_a = tuple(x for d in e.diffs for x in d.extents_a)
        field_b = tuple(x for d in e.diffs for x in d.extents_b)
        first = e.diffs[0] if e.diffs else self.structure.first_diff_below(e.key)
        if first is not None and ea and (first.extents_a or first.extents_b):
            # A large node (a partition, a whole filesystem): start at the first difference inside it.
            anchor_a = first.extents_a or first.extents_b
            anchor_b = first.extents_b or first.extents_a
            if ea[0].length > 4096 and not e.diffs:
                ea, eb = anchor_a, anchor_b
        self.query_one(HexView).show(HexTarget(e.label, ea, eb or ea, field_a, field_b) if (ea or eb) else None)

    def _already_shown(self, data: TreeData | None) -> bool:
        """True when a cursor move lands on the difference the panes already show (``n``/``p`` moved it)."""
        return isinstance(data, DiffItem) and self.query_one(DetailPane).subject is data.diff

    @on(Tree.NodeHighlighted, "#findings")
    def _finding_highlighted(self, event: Tree.NodeHighlighted[TreeData]) -> None:
        if not event.control.has_focus or self._already_shown(event.node.data):
            return
        data = event.node.data
        if isinstance(data, FindingItem):
            self.select_finding(data.finding)
        elif isinstance(data, DiffItem):
            self.select_diff(data.diff)
        elif isinstance(data, (DerivedGroup, FieldGroup)):
            assert self.structure is not None
            self.query_one(DetailPane).show_finding(data.finding, self.structure)
            if data.diffs:
                self._follow(data.diffs[0])

    @on(Tree.NodeHighlighted, "#structure")
    def _structure_highlighted(self, event: Tree.NodeHighlighted[TreeData]) -> None:
        if not event.control.has_focus or self._already_shown(event.node.data):
            return
        data = event.node.data
        if isinstance(data, DiffItem):
            self.select_diff(data.diff, findings=True, tree=False)
        elif isinstance(data, Entry):
            self.select_entry(data)

    # -- actions ------------------------------------------------------------------------------------------------

    def _visible_order(self) -> list[Difference]:
        assert self.structure is not None
        if self.search_result is not None and self.search_result.query:
            return self.search_result.order
        return self.structure.order

    def _position(self, order: list[Difference], d: Difference) -> int | None:
        assert self.structure is not None
        if order is self.structure.order:
            return self.structure.position(d) if id(d) in self.structure._refs else None
        if self._order_pos is None:
            self._order_pos = {id(x): i for i, x in enumerate(order)}
        return self._order_pos.get(id(d))

    def _step(self, delta: int) -> None:
        if self.structure is None:
            return
        order = self._visible_order()
        if not order:
            self.bell()
            return
        at = self._position(order, self.current) if self.current is not None else None
        i = at + delta if at is not None else (0 if delta > 0 else len(order) - 1)
        if not 0 <= i < len(order):
            self.bell()
            return
        self.select_diff(order[i], findings=True)

    def action_next_diff(self) -> None:
        """Go to the next difference."""
        self._step(1)

    def action_prev_diff(self) -> None:
        """Go to the previous difference."""
        self._step(-1)

    def action_toggle_filter(self) -> None:
        """Structure: only differing nodes ⇄ all nodes; the selection stays where it was."""
        if self.structure is None:
            return
        tree = self.query_one(StructureTree)
        cursor = tree.cursor_node.data if tree.cursor_node is not None else None
        tree.populate(self.structure, only_differing=not tree.only_differing)
        self._update_titles()
        if isinstance(cursor, DiffItem):
            tree.reveal(cursor.ref.entry, cursor.diff)
        elif isinstance(cursor, Entry):
            tree.reveal(cursor)

    def action_search(self) -> None:
        """Open the search box."""
        if self.structure is None:
            return
        self.query_one("#searchbar").display = True
        self.query_one("#search", Input).focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.apply_search(event.value, wait=0.12)

    @on(Input.Submitted, "#search")
    def _search_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#searchbar").display = False
        self.query_one(FindingsTree).focus()

    def apply_search(self, query: str, wait: float = 0.0) -> None:
        """Filter the findings and the structure tree by ``query`` (empty shows everything).

        The matching runs in a thread worker after ``wait`` seconds without a newer keystroke; a newer query
        cancels it.  An empty query is applied at once.
        """
        if self.structure is None:
            return
        if query.strip() == self._search_pending and query.strip().lower() == self.search_text:
            return  # already shown (escape clears the box, which reports the change once more)
        self._search_pending = query.strip()
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        if not self._search_pending:
            self.workers.cancel_group(self, "search")
            self._show_search(SearchResult("", [], [], [], set()))
        elif wait > 0:
            self._search_timer = self.set_timer(wait, lambda: self._search_worker(self._search_pending))
        else:
            self._search_worker(self._search_pending)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False, name="search")
    def _search_worker(self, query: str) -> None:
        """Match ``query`` off the event loop; give up as soon as a newer query arrives."""
        assert self.structure is not None
        worker = get_current_worker()

        def cancelled() -> bool:
            return worker.is_cancelled or query != self._search_pending

        try:
            result = self.structure.search(query, cancelled)
        except Cancelled:
            return
        if not cancelled():
            self.call_from_thread(self._show_search, result)

    def _show_search(self, result: SearchResult) -> None:
        """Swap in a search result (ignored when the query moved on meanwhile)."""
        if self.structure is None or result.query != self._search_pending.lower():
            return
        self.search_text = result.query
        self.search_result = result if result.query else None
        self._order_pos = None
        findings = self.query_one(FindingsTree)
        findings.populate(self.structure, self.search_result)
        tree = self.query_one(StructureTree)
        tree.populate(self.structure, search=self.search_result)
        self._update_titles()
        if self.current is not None and (
            self.search_result is None or id(self.current) in self.search_result.ids
        ) and findings.reveal(self.current) is not None:
            tree.reveal(self.structure.ref(self.current).entry, self.current)
        elif findings.items:
            # The selection was filtered out: go to the first match.
            findings.move_cursor(findings.root.children[0])
            item = findings.items[0]
            first = next(iter(item.causes or item.derived), None)
            if first is not None:
                self.select_diff(first)
            if item.causes or item.derived:
                self.query_one(DetailPane).show_finding(item.finding, self.structure)
        self.searches += 1

    def action_escape(self) -> None:
        """Leave a zoomed pane, or clear and close the search."""
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        bar = self.query_one("#searchbar")
        if bar.display or self.search_text:
            self.query_one("#search", Input).value = ""
            bar.display = False
            self.apply_search("")
            self.query_one(FindingsTree).focus()

    def action_zoom(self) -> None:
        """Zoom the focused pane to the whole screen, or restore the layout."""
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        focused: Widget | None = self.focused
        if focused is not None and focused.id in ("findings", "structure", "detail", "hex"):
            self.screen.maximize(focused, container=False)

    def _selection_text(self) -> tuple[str, str]:
        """Return ``(name, markdown)`` of what the detail pane shows."""
        from imgdiff.report.markdown import code, plain, table, values_ab

        detail = self.query_one(DetailPane)
        subject = detail.subject
        if isinstance(subject, Difference) and self.structure is not None:
            f = self.structure.finding_of(subject)
            a, b = values_ab(subject)
            rows = table(["Field", "A", "B", "Bytes"], [[plain(subject.location + " / " + subject.field), a, b,
                                                          str(subject.bytes)]])
            return subject.field, "\n".join([f"### {plain(f.rule.title)} ({f.rule.id})", "", *rows, ""])
        if isinstance(subject, Finding):
            from imgdiff.report.rows import group_rows

            body = []
            for r in group_rows(subject.causes)[:200]:
                a, b = values_ab(r.first)
                body.append([plain(r.first.location), code(r.first.field), a, b, str(r.count), str(r.bytes)])
            lines = [f"### {plain(subject.rule.title)} ({subject.rule.id})", "",
                     f"- where: {plain(subject.location)} ({subject.bytes} bytes differ)", "",
                     *table(["Where", "Field", "A", "B", "Count", "Bytes"], body), "", "**How to fix:**", ""]
            lines += [f"- {b}: {' '.join(t.split())}" for b, t in self._fixes(subject)]
            return subject.rule.id, "\n".join(lines) + "\n"
        if isinstance(subject, Entry):
            return subject.label, f"### {plain(subject.label)}\n\n- node: {code(subject.key)}\n"
        return "", ""

    def action_copy(self) -> None:
        """Copy the selected value (A and B in full) or finding to the clipboard (OSC 52)."""
        detail = self.query_one(DetailPane)
        subject = detail.subject
        if isinstance(subject, Difference):
            from imgdiff.tui.widgets import full

            text = f"A: {full(subject.a)}\nB: {full(subject.b)}"
        else:
            text = self._selection_text()[1]
        if not text:
            self.bell()
            return
        self.copy_to_clipboard(text)
        self.notify(f"copied {len(text)} characters", timeout=2)

    def action_export(self) -> None:
        """Write the selection as markdown to ./imgdiff-<name>.md (and copy it)."""
        import re as _re

        name, text = self._selection_text()
        if not text:
            self.bell()
            return
        base = _re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "selection"
        path = f"imgdiff-{base}.md"
        n = 1
        while os.path.exists(path):
            n += 1
            path = f"imgdiff-{base}-{n}.md"
        try:
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            self.notify(f"could not write {path}: {exc.strerror}", severity="error")
            return
        self.exports.append(path)
        self.copy_to_clipboard(text)
        self.notify(f"wrote {path} (and copied it)", timeout=3)

    def action_help(self) -> None:
        """Show the key help."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Quit at once with the exit status of the comparison (2 when it never finished)."""
        self.workers.cancel_group(self, "search")
        if self.report is None:
            self.error = self.error or "interrupted before the analysis finished"
            self.exit(EXIT_TROUBLE)
        else:
            self.exit(EXIT_SAME if self.report.identical else EXIT_DIFFERENT)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keep the browsing keys out of the footer until there is something to browse."""
        busy = ("next_diff", "prev_diff", "toggle_filter", "search", "zoom", "copy", "export")
        return not (action in busy and self.structure is None)


def run(a: str, b: str | None, seed: str | None = None, rules_dir: str | None = None) -> int:
    """Run the browser on two images, or on a saved JSON result when ``b`` is None; return the exit status."""
    try:
        app = _build(a, b, seed, rules_dir)
    except ImgdiffError as exc:
        sys.stderr.write(f"imgdiff: error: {exc}\n")
        return EXIT_TROUBLE
    status = app.run()
    if app.error:
        sys.stderr.write(f"imgdiff: error: {app.error}\n")
        return EXIT_TROUBLE
    return EXIT_TROUBLE if status is None else int(status)


def _build(a: str, b: str | None, seed: str | None, rules_dir: str | None) -> ImgdiffApp:
    """Check the input before the screen switches (errors are one line on stderr) and return the app."""
    if b is None:
        return ImgdiffApp(report=load_saved(a))
    from imgdiff.source import ImageSource

    for path in (a, b):
        ImageSource(path).close()  # raises ImageError: missing, unreadable, a directory
    from imgdiff.ruleset.schema import load_rules

    rules = load_rules(Path(rules_dir) if rules_dir else None)
    return ImgdiffApp(a, b, seed=seed, rules=rules)


def main(argv: list[str] | None = None) -> int:
    """``python -m imgdiff.tui.app A [B]`` (the CLI's ``imgdiff tui`` is the usual way in)."""
    args: list[Any] = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2:
        sys.stderr.write("usage: python -m imgdiff.tui.app A [B]\n")
        return EXIT_TROUBLE
    return run(args[0], args[1] if len(args) == 2 else None)


if __name__ == "__main__":
    raise SystemExit(main())

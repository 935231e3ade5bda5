#!/usr/bin/env python3
"""Measure the TUI on a large pair: time to the first screen and the latency of keystrokes (headless Textual).

Usage: python bench/tui_latency.py [A B]     (default: the usr-rebuilt pair of bench/bench.py under bench/work/,
                                              1 GiB ext4, every one of ~54,000 inodes differs)

The app runs under Textual's headless test driver at 160x48.  "first screen" is from the app's start to the first
finding selected and every pane drawn, with the analysis included (it runs in a worker meanwhile); the analysis
time and the rest are printed separately.  A keystroke's latency is from sending the key until the app is idle
again (the handler ran and the screen was refreshed); for the search the time until the result is shown is
printed too.  Run it on a quiet machine; this is a measurement, nothing asserts on the numbers.

A keystroke's latency is the event loop's CPU time from the key press until every message it caused has been
handled and the next frame has been composed and written (``time.thread_time`` of the event-loop thread; the loop
is single-threaded and the work CPU-bound, so on an idle machine this is the time until the screen shows the
result).  The wall time of Textual's ``Pilot.press`` is printed too: it sleeps in 20 ms steps until the process
looks idle, so it is at least ~40 ms more than the work itself.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from imgdiff.tui.app import ImgdiffApp
from imgdiff.tui.widgets import DerivedGroup, FieldGroup, FindingsTree, StructureTree


async def measure(a: str, b: str) -> None:
    app = ImgdiffApp(a, b, names=("a.img", "b.img"))
    rows: list[tuple[str, float]] = []
    walls: dict[str, list[float]] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.settled:
            await pilot.pause(0.05)
        t = app.timings
        print(f"first screen      {t['settled']:8.2f} s  (analysis {t['analysis']:.2f} s, panes "
              f"{t['settled'] - t['analysis']:.2f} s after it)")
        assert app.report is not None
        f = app.report.findings[0]
        print(f"findings          {len(app.report.findings)}; the first has {f.cause_count:,} fields "
              f"({len(f.causes):,} rows), {f.derived_count:,} derived ({len(f.derived):,} rows), {len(f.paths):,} paths")

        async def key(name: str, *keys: str) -> float:
            start, cpu = time.monotonic(), time.thread_time()
            await pilot.press(*keys)  # returns once every message the keys caused has been handled
            app.screen._on_timer_update()  # compose and write the next frame now
            took = time.thread_time() - cpu
            rows.append((name, took))
            walls.setdefault(name, []).append(time.monotonic() - start)
            await pilot.pause()  # settle before the next key (not timed)
            return took

        findings = app.query_one(FindingsTree)
        await key("enter (open the finding)", "enter")
        for _ in range(20):
            await key("n (next difference)", "n")
        for _ in range(10):
            await key("down (findings)", "down")
        fnode = findings.root.children[0]
        derived = next(c for c in fnode.children if isinstance(c.data, DerivedGroup))
        findings.move_cursor(derived)
        await pilot.pause()
        await key(f"enter (open derived, {len(f.derived):,} rows)", "enter")
        group = next((c for c in derived.children if isinstance(c.data, FieldGroup)), None)
        if group is not None:
            findings.move_cursor(group)
            await pilot.pause()
            await key(f"enter (open a group of {len(group.data.diffs):,})", "enter")
            for _ in range(10):
                await key("down (in the group)", "down")
        await key("tab (to structure)", "tab")
        for _ in range(10):
            await key("down (structure)", "down")
        tree = app.query_one(StructureTree)
        await key("right (open a node)", "right")
        del tree
        await key("shift+tab (back to findings)", "shift+tab")
        await key("/ (open search)", "slash")
        for ch in "usr/share/doc":
            await key("search keystroke", ch)
        last = time.monotonic()
        shown = app.searches
        while app.searches == shown and time.monotonic() - last < 60:
            await asyncio.sleep(0.002)
        rows.append(("search: last keystroke to result shown", time.monotonic() - last))
        await key("escape (clear search)", "escape")
        await key("tab tab tab (to hex)", "tab", "tab", "tab")
        for _ in range(5):
            await key("] (next differing byte)", "right_square_bracket")
        for _ in range(5):
            await key("pagedown (hex)", "pagedown")
        start = time.monotonic()
        await pilot.press("q")
        while app.is_running and time.monotonic() - start < 30:
            await asyncio.sleep(0.001)
        rows.append(("q (wall time until the app has exited)", time.monotonic() - start))
    by: dict[str, list[float]] = {}
    for name, took in rows:
        by.setdefault(name, []).append(took)
    print(f"{'keystroke':42} {'n':>3} {'median ms':>10} {'max ms':>8} {'press wall median ms':>21}")
    for name, times in by.items():
        wall = f"{1000 * statistics.median(walls[name]):21.1f}" if name in walls else ""
        print(f"{name:42} {len(times):3} {1000 * statistics.median(times):10.1f} {1000 * max(times):8.1f} {wall}")


def main() -> int:
    if len(sys.argv) == 3:
        a, b = sys.argv[1], sys.argv[2]
    else:
        d = HERE / "work" / "usr-rebuilt"
        if not (d / "b.img").exists():
            print("build the pair first: python bench/bench.py --build usr-rebuilt", file=sys.stderr)
            return 2
        a, b = str(d / "a.img"), str(d / "b.img")
    asyncio.run(measure(a, b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

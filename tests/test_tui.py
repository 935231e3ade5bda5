"""The Textual diff browser (``imgdiff tui``): key paths driven by Textual's Pilot, and SVG snapshots.

Snapshots live under tests/__snapshots__/test_tui/ (pytest-textual-snapshot); regenerate them after a deliberate
change with ``pytest tests/test_tui.py --snapshot-update`` and look at the SVGs before committing.  The apps are
given fixed display names so the SVGs do not depend on where the fixtures were unpacked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.app import App

from imgdiff.model import Extent, Report
from imgdiff.tui.app import ImgdiffApp, load_saved, run
from imgdiff.tui.hexdata import ImageReader, SnippetReader
from imgdiff.tui.hexview import HexTarget, HexView
from imgdiff.tui.structure import Entry, Structure, split_location
from imgdiff.tui.widgets import (
    DerivedGroup,
    DetailPane,
    DiffItem,
    FindingItem,
    FindingsTree,
    KeyBar,
    StructureTree,
)

NAMES = ("a.img", "b.img")


def make_app(pair: Any, name: str) -> ImgdiffApp:
    a, b = pair(name)
    return ImgdiffApp(str(a), str(b), names=NAMES)


async def ready(pilot: Any) -> None:
    """Wait until the analysis worker has finished, the first finding is selected and the panes are drawn."""
    await pilot.app.workers.wait_for_complete()
    for _ in range(200):
        if pilot.app.settled:
            break
        await pilot.pause(0.02)
    assert pilot.app.settled, "the app did not show the report"
    await pilot.pause()
    await pilot.pause()


async def searched(pilot: Any, query: str) -> None:
    """Wait until the search worker's result for ``query`` is shown (search runs off the event loop)."""
    app = pilot.app
    for _ in range(300):
        await pilot.pause(0.02)
        if app.search_text == query.strip().lower() and not any(w.name == "search" and w.is_running
                                                                 for w in app.workers):
            break
    assert app.search_text == query.strip().lower(), "the search result did not arrive"
    await pilot.pause()


def parts(app: ImgdiffApp) -> tuple[FindingsTree, StructureTree, DetailPane, HexView]:
    return app.query_one(FindingsTree), app.query_one(StructureTree), app.query_one(DetailPane), app.query_one(HexView)


# -- the view model (no Textual) ---------------------------------------------------------------------------------


def test_split_location_keeps_labels_that_end_in_a_slash() -> None:
    assert split_location("vfat (FAT16) / directory / / entry /EFI") == ["vfat (FAT16)", "directory /", "entry /EFI"]
    assert split_location("GPT / primary GPT header") == ["GPT", "primary GPT header"]
    assert split_location("") == []


def test_structure_merges_trees_and_indexes_every_difference(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("gpt-repart-random-seed")
    s = Structure(report)
    every = [d for f in report.findings for d in f.causes + f.derived]
    assert [id(d) for d in s.order] == [id(d) for d in every]
    for d in every:
        ref = s.ref(d)
        assert ref.entry.key == d.node_path and d in ref.entry.diffs
        assert all(e.differs for e in ref.entry.chain())
    total, differing = s.count()
    assert total > differing > 0
    assert not s.by_key["disk/gpt/primary-entries/entry:5"].differs


# -- the app -------------------------------------------------------------------------------------------------------


async def test_startup_shows_every_finding(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("gpt-name-attrs")
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.query_one("#loading").display  # the progress box shows until the worker is done
        await ready(pilot)
        findings, _tree, detail, _hexview = parts(app)
        assert not app.query_one("#loading").display and app.query_one("#main").display
        assert [item.finding.rule.id for item in findings.items] == [f.rule.id for f in report.findings]
        assert [n.data.finding.rule.id for n in findings.root.children] == ["GPT003", "GPT004"]  # type: ignore[union-attr]
        assert app.focused is findings
        assert isinstance(detail.subject, type(report.findings[0])) and "GPT003" in detail.plain()
        assert "24 B of 48.0 MiB differ · 2 findings · 0 B unexplained" in str(app.query_one("#status").render())


async def test_selecting_a_finding_moves_tree_and_hex(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("gpt-name-attrs")
    attrs = next(f for f in report.findings if f.rule.id == "GPT004")
    first = attrs.causes[0]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, detail, hexview = parts(app)
        await pilot.press("down")  # GPT003 -> GPT004
        await pilot.pause()
        node = findings.cursor_node
        assert isinstance(node.data, FindingItem) and node.data.finding.rule.id == "GPT004"  # type: ignore[union-attr]
        # The structure tree expanded to the node of the first field and selected the field.
        assert tree.cursor_label.startswith("≠ Attributes")
        parent = tree.cursor_node.parent  # type: ignore[union-attr]
        assert isinstance(parent.data, Entry) and parent.data.label == "entry 2 (root-x86-64)"  # type: ignore[union-attr]
        assert parent.data.key == first.node_path  # type: ignore[union-attr]
        # The hex view shows that field's bytes, 16 per row, A left and B right.
        assert hexview.offset_a == first.extents_a[0].offset == hexview.offset_b
        assert hexview.differing_bytes == 1  # one byte of the 8-byte attribute field differs
        row = (first.extents_a[0].offset - hexview.base_a) // 16
        text = hexview.row_text(row)
        assert " │ " in text and text.startswith(f"{hexview.base_a + 16 * row:06x}")
        assert "GPT004" in detail.plain() and "ReadOnly" in detail.plain()


async def test_causes_and_derived_fields_are_reachable(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-repart-random-seed")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, detail, hexview = parts(app)
        await pilot.press("enter")  # open the finding: its 6 causes and the derived group
        await pilot.pause()
        fnode = findings.root.children[0]
        kinds = [type(c.data) for c in fnode.children]
        assert kinds == [DiffItem] * 6 + [DerivedGroup]
        group = fnode.children[-1]
        group.expand()
        await pilot.pause()
        assert len(group.children) == 4
        findings.move_cursor(group.children[0])
        await pilot.pause()
        data = group.children[0].data
        assert isinstance(data, DiffItem) and data.ref.derived
        assert detail.subject is data.diff and "Derived" in detail.plain()
        assert hexview.offset_a == data.diff.extents_a[0].offset
        assert tree.cursor_label.startswith("⟲ ")


async def test_a_group_difference_is_shown_with_its_member_count(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    """ext4-random-uuid: 427 checksum-only inodes are one derived difference per field, counted by member."""
    a, b = pair("ext4-random-uuid")
    report: Report = analyzed("ext4-random-uuid")
    app = ImgdiffApp(str(a), str(b), names=NAMES, report=report)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        findings, _tree, detail, hexview = parts(app)
        order = app.structure.order if app.structure else []
        [first] = [i for i, d in enumerate(order) if d.count > 1 and d.field == "i_checksum_lo"]
        for _ in range(first):
            await pilot.press("n")
        await pilot.pause()
        d = app.current
        assert (d.field, d.count, d.node_path) == ("i_checksum_lo", 427, "disk/ext4/inodes/(checksums only)")
        text = detail.plain(160)
        assert "fields 427 (one per member; values: the first member's)" in text
        assert "0x16d8 (inode 11; 426 more inodes)" in text
        assert hexview.offset_a == d.extents_a[0].offset == 35 * 4096 + 10 * 256 + 0x7C
        findings.move_cursor(findings.root.children[0])
        await pilot.pause()
        assert "Derived, folded in (956)" in detail.plain(160)


async def test_f_toggles_only_differing_nodes(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-repart-random-seed")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        tree = app.query_one(StructureTree)
        before = tree.visible_count()
        label = tree.cursor_label
        await pilot.press("f")
        await pilot.pause()
        assert not tree.only_differing
        after = tree.visible_count()
        assert after > before  # the 126 unused, identical GPT entries appear among others
        assert tree.cursor_label == label  # the selection stays put
        await pilot.press("f")
        await pilot.pause()
        assert tree.only_differing and tree.visible_count() == before


async def test_search_narrows_findings_and_tree(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, _detail, _hexview = parts(app)
        lines = tree.visible_count()
        await pilot.press("slash")
        assert app.query_one("#search").has_focus
        await pilot.press(*"attribute")
        await searched(pilot, "attribute")
        assert [i.finding.rule.id for i in findings.items] == ["GPT004"]
        assert findings.border_title == "Findings (1/2)"
        await pilot.press("enter")
        await pilot.pause()
        assert findings.has_focus and app.search_text == "attribute"
        labels = [n.label.plain for n in _shown(tree)]
        assert any("Attributes" in x for x in labels) and not any("PartitionName" in x for x in labels)
        await pilot.press("escape")
        await pilot.pause()
        assert len(findings.items) == 2 and app.search_text == "" and tree.visible_count() >= lines
        assert not app.query_one("#searchbar").display


async def test_search_with_no_match_empties_the_lists(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, _, _ = parts(app)
        await pilot.press("slash", *"zzz-nothing")
        await searched(pilot, "zzz-nothing")
        assert findings.items == [] and tree.visible_count() == 0
        await pilot.press("enter", "n")  # nothing to step to: no crash
        await pilot.pause()


def _shown(tree: StructureTree) -> list[Any]:
    out = []
    stack = list(reversed(tree.root.children))
    while stack:
        node = stack.pop()
        out.append(node)
        if node.is_expanded:
            stack.extend(reversed(node.children))
    return out


async def test_n_and_p_walk_the_differences(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("gpt-name-attrs")
    order = [d for f in report.findings for d in f.causes + f.derived]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, detail, hexview = parts(app)
        assert app.current is not None and app.current.ref == order[0].ref  # the first finding's first field
        await pilot.press("n")
        await pilot.pause()
        assert app.current.ref == order[1].ref
        assert detail.subject is app.current
        assert hexview.offset_a == order[1].extents_a[0].offset
        assert isinstance(findings.cursor_node.data, DiffItem)  # type: ignore[union-attr]
        assert findings.cursor_node.data.diff is app.current  # type: ignore[union-attr]
        for _ in range(len(order) - 2):
            await pilot.press("n")
        await pilot.pause()
        assert app.current.ref == order[-1].ref
        await pilot.press("n")  # at the end: stays
        await pilot.pause()
        assert app.current.ref == order[-1].ref
        await pilot.press("p")
        await pilot.pause()
        assert app.current.ref == order[-2].ref
        assert tree.cursor_node is not None and isinstance(tree.cursor_node.data, DiffItem)
        assert tree.cursor_node.data.diff is app.current


async def test_structure_tree_drives_detail_and_hex(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        _findings, tree, detail, hexview = parts(app)
        tree.focus()
        await pilot.pause()
        tree.move_cursor(tree.root.children[0])  # the disk
        await pilot.pause()
        assert isinstance(detail.subject, Entry) and detail.subject.key == "disk"
        await pilot.press("down")  # protective MBR is identical: hidden, so the GPT comes next
        await pilot.pause()
        assert isinstance(detail.subject, Entry) and detail.subject.key == "disk/gpt"
        assert hexview.target is not None and hexview.offset_a is not None


async def test_help_and_quit(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "Screen"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 1 and app.error is None


async def test_key_bar_lists_the_keys_and_a_click_presses_one(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        bar = app.query_one(KeyBar)
        assert [(shown, text) for _key, shown, text, _enabled in bar.keys] == [
            ("q", "Quit"), ("?", "Help"), ("/", "Search"), ("n", "Next"), ("p", "Prev"), ("f", "Only differing"),
            ("z", "Zoom"), ("c", "Copy"), ("x", "Export md"), ("^p", "palette"),
        ]
        line = str(bar.render())
        assert line.startswith(" q Quit  ? Help  / Search ")
        await pilot.click(KeyBar, offset=(line.index("? Help") + 2, 0))
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape", "tab")  # a focus change keeps the same keys (no rebuild when nothing changed)
        await pilot.pause()
        assert str(bar.render()) == line


async def test_identical_pair_quits_with_0(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-identical")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.query_one(FindingsTree).items == []
        assert "identical" in app.query_one(DetailPane).plain()
        await pilot.press("n", "f", "q")
    assert app.return_value == 0


async def test_zoom_a_pane(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("tab", "tab", "tab", "z")  # findings -> structure -> detail -> hex
        await pilot.pause()
        assert app.screen.maximized is app.query_one(HexView)
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is None
        await pilot.press("shift+tab", "z")  # the detail pane
        await pilot.pause()
        assert app.screen.maximized is app.query_one(DetailPane)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.maximized is None


async def test_saved_json_opens_without_images(pair, analyzed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.report.json import dumps, hex_snippets
    from imgdiff.source import ImageSource

    src_a, src_b = pair("gpt-repart-random-seed")
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    shutil.copyfile(src_a, a)
    shutil.copyfile(src_b, b)
    from imgdiff.engine.analysis import analyze

    report = analyze(a, b)
    with ImageSource(str(a)) as sa, ImageSource(str(b)) as sb:
        saved = tmp_path / "result.json"
        saved.write_text(dumps(report, hex_snippets(report, sa.read, sb.read)))
    a.unlink()
    b.unlink()  # the images are gone: everything must come from the JSON
    app = ImgdiffApp(report=load_saved(str(saved)), names=NAMES)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, _detail, hexview = parts(app)
        assert app.saved and all(isinstance(r, SnippetReader) for r in app.readers)
        assert not any(isinstance(r, ImageReader) for r in app.readers)
        assert [i.finding.rule.id for i in findings.items] == ["GPT001"]
        first = report.findings[0].causes[0]
        assert hexview.offset_a == first.extents_a[0].offset
        # The GUID's 16 bytes and, in the same window, the header's two CRC32s (their snippets are saved too).
        assert hexview.differing_bytes == 16 + 4 + 4
        row = (first.extents_a[0].offset - hexview.base_a) // 16
        assert "··" in hexview.row_text(0) or "··" in hexview.row_text(row)  # bytes outside snippets are unknown
        # The tree is rebuilt from the locations: the field sits under "GPT / primary GPT header".
        parent = tree.cursor_node.parent  # type: ignore[union-attr]
        assert parent.data.label == "primary GPT header"  # type: ignore[union-attr]
        assert tree.cursor_label.startswith("≠ DiskGUID")
        await pilot.press("n", "n")
        await pilot.pause()
        assert app.current is report_diff(app, 2)
        await pilot.press("q")
    assert app.return_value == 1


def report_diff(app: ImgdiffApp, i: int) -> Any:
    assert app.structure is not None
    return app.structure.order[i]


def test_missing_file_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(str(tmp_path / "nope-a.img"), str(tmp_path / "nope-b.img")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imgdiff: error: ") and "nope-a.img" in err
    assert "Traceback" not in err


def test_bad_saved_result_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("gpt-identical")
    assert run(str(a), None) == 2  # an image alone is not a saved result
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a saved imgdiff JSON result" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"imgdiff_json_version": 99}))
    assert run(str(bad), None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "imgdiff_json_version" in err
    assert run(str(tmp_path / "missing.json"), None) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_tui_missing_file_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from imgdiff.cli import main

    assert main(["tui", str(tmp_path / "missing.img"), str(tmp_path / "other.img")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


# -- snapshots -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_gpt_name_attrs(snap_compare, pair, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Startup on gpt-name-attrs: two findings, the first selected, tree and hex on its first field."""
    assert snap_compare(make_app(pair, "gpt-name-attrs"), terminal_size=size, run_before=ready)


def test_snapshot_expanded_finding(snap_compare, pair) -> None:  # type: ignore[no-untyped-def]
    """The random-seed pair with its finding opened and the third difference selected (n, n)."""
    assert snap_compare(
        make_app(pair, "gpt-repart-random-seed"), terminal_size=(120, 40), run_before=ready, press=["enter", "n", "n"]
    )


def test_snapshot_help(snap_compare, pair) -> None:  # type: ignore[no-untyped-def]
    """The help screen at 80x24."""
    assert snap_compare(
        make_app(pair, "gpt-name-attrs"), terminal_size=(80, 24), run_before=ready, press=["question_mark"]
    )


# -- smoke: every kind of pair browses without error ------------------------------------------------------------

SMOKE = [
    "gpt-geometry",
    "gpt-partition-set",
    "mbr-sfdisk",
    "vfat-order",
    "vfat-fat16-content",
    "ext4-order",
    "ext4-hardlinks",
    "report-esp-root",
    "iso-no-sde",
    "iso-sort-weight",
]


@pytest.mark.parametrize("name", SMOKE)
async def test_browse_every_difference(pair, analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    """Step through the differences with n, then walk the structure tree with the arrows and f."""
    from tests.conftest import PAIRS

    if not (PAIRS / name / "a.img.xz").exists():
        pytest.skip(f"fixture pair {name} not built here")
    a, b = pair(name)
    report: Report = analyzed(name)
    app = ImgdiffApp(str(a), str(b), names=NAMES, report=report)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        findings, tree, detail, hexview = parts(app)
        assert len(findings.items) == len(report.findings)
        order = app.structure.order if app.structure else []
        for d in order[1:25]:
            await pilot.press("n")
            assert app.current is d and detail.subject is d
            assert hexview.target is not None
            if d.extents_a or d.extents_b:
                assert hexview.offset_a == (d.extents_a or d.extents_b)[0].offset
        tree.focus()
        for key in ["home", *["down"] * 15, "f", *["down"] * 15, "right", "left", "f", "e"]:
            await pilot.press(key)
        await pilot.pause()
        assert isinstance(detail.subject, Entry) or detail.subject in order


async def test_mouse_click_selects_a_structure_node(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-name-attrs")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        _, tree, detail, hexview = parts(app)
        tree.scroll_home(animate=False)
        await pilot.pause()
        node = tree.root.children[0]  # the disk
        y = node.line + 1  # the pane's top border carries its title
        assert await pilot.click("#structure", offset=(6, y))
        await pilot.pause()
        assert tree.has_focus
        assert isinstance(detail.subject, Entry) and detail.subject.key == "disk"
        assert hexview.target is not None and hexview.target.title == "disk"


# -- the hex view on its own (fake images, no parser involved) ----------------------------------------------------


class _Bytes:
    """A ByteReader over an in-memory image."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def window(self, offset: int, size: int) -> list[int | None]:
        return [self.data[o] if 0 <= o < len(self.data) else None for o in range(offset, offset + size)]

    def raw(self, offset: int, size: int) -> bytes | None:
        return self.data[offset : offset + size]

    def close(self) -> None:
        pass


class _HexApp(App[None]):
    def __init__(self, a: bytes, b: bytes) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> Any:
        yield HexView(_Bytes(self.a), _Bytes(self.b), id="hex")


def _images(size: int, changes: dict[int, int]) -> tuple[bytes, bytes]:
    a = bytes((i * 7) & 0xFF for i in range(size))
    b = bytearray(a)
    for off, value in changes.items():
        b[off] = value
    return a, bytes(b)


async def test_hexview_highlights_and_formats() -> None:
    a, b = _images(4096, {0x3A: 0, 0x3B: 1, 0x40: 2})
    app = _HexApp(a, b)
    async with app.run_test(size=(160, 20)) as pilot:
        view = app.query_one(HexView)
        field = (Extent(0x38, 16),)
        view.show(HexTarget("f", field, field, field, field, seek=True))
        await pilot.pause()
        assert view.offset_a == 0x38 and view.base_a == 0x10  # two rows of context above the field's row
        assert view.differing_bytes == 3
        row = view.row_text(2)  # the row at 0x30
        assert row.startswith("000030 ") and " │ " in row
        left, right = row.split(" │ ")
        assert "8f 96 9d a4" in left and "8f 00 01 a4" in right and len(row) == view.virtual_size.width
        assert any(c.isalpha() or c == "." for c in row[-16:])  # 160 columns: the ASCII column is shown
        await pilot.resize_terminal(80, 20)
        await pilot.pause()
        narrow = view.row_text(2)
        assert len(narrow) <= 79 and narrow.count(" │ ") == 1  # grouped hex, no ASCII, still 16 bytes a side
        assert narrow.replace(" ", "").replace("│", "").startswith("000030")


async def test_hexview_seeks_the_first_difference_of_a_long_field() -> None:
    a, b = _images(1 << 20, {700_001: 0xEE})
    app = _HexApp(a, b)
    async with app.run_test(size=(120, 20)) as pilot:
        view = app.query_one(HexView)
        field = (Extent(4096, (1 << 20) - 4096),)
        view.show(HexTarget("data", field, field, field, field, seek=True))
        await pilot.pause()
        assert view.seek_anchor == (0, 700_001 - 4096)
        assert view.base_a <= 700_001 < view.base_a + view.size_shown and view.differing_bytes == 1
        top = view.base_a + 16 * round(view.scroll_offset.y)
        assert top <= 700_001 < top + 16 * view.scrollable_content_region.height  # the differing row is on screen
        view.show(HexTarget("data", field, field, field, field))  # no seek: the field's start
        await pilot.pause()
        assert view.base_a == 4096 - 32 and view.differing_bytes == 0


async def test_hexview_e_cycles_extents_and_handles_unknown_bytes() -> None:
    a, b = _images(8192, {100: 0, 5000: 1})
    app = _HexApp(a, b[:6000])  # B is shorter: its bytes past 6000 are unknown
    async with app.run_test(size=(120, 20)) as pilot:
        view = app.query_one(HexView)
        exts = (Extent(96, 8), Extent(4992, 16), Extent(7000, 8))
        view.show(HexTarget("two", exts, exts, exts, exts))
        view.focus()
        await pilot.pause()
        assert (view.extent_index, view.offset_a, view.differing_bytes) == (0, 96, 1)
        await pilot.press("e")
        assert (view.extent_index, view.offset_a) == (1, 4992) and view.differing_bytes == 1
        await pilot.press("e")
        assert view.offset_a == 7000 and "··" in view.row_text(2)
        await pilot.press("e")
        assert view.extent_index == 0
        view.show(None)
        await pilot.pause()
        assert view.size_shown == 0 and view.offset_a is None


# -- scale: paging, grouping, search off the event loop --------------------------------------------------------------


def _big_report(n: int = 1000) -> Report:
    """A saved-style report (no trees) with one finding of ``n`` i_ctime differences and ``n`` derived checksums."""
    from imgdiff.model import Difference, Finding, ImageInfo, RuleInfo, Summary

    def diff(i: int, field: str) -> Difference:
        off = 0x10000 + 256 * i
        return Difference(f"disk/ext4/inodes/inode:{i}", "ext4.inode", field, "modified", 1000 + i, 2000 + i,
                          (Extent(off, 4),), (Extent(off, 4),), f"ext4 / inode tables / inode {i}",
                          attrs={"path": f"/usr/share/f{i:05d}"}, bytes=4)

    rule = RuleInfo("EXT005", "ext4-staging-ctime-atime", "copied ctimes", "mkfs", "", "fix it")
    f = Finding(rule, "ext4 / inode tables", [diff(i, "i_ctime") for i in range(n)],
                [diff(i, "i_checksum_lo") for i in range(n)], bytes=8 * n)
    return Report(ImageInfo("a.img", 1 << 20, "ext4"), ImageInfo("b.img", 1 << 20, "ext4"),
                  Summary(1 << 20, 8 * n, 0), [f])


async def test_large_finding_is_grouped_and_paged() -> None:
    from imgdiff.tui.widgets import PAGE, FieldGroup, MoreItem

    report = _big_report()
    app = ImgdiffApp(report=report, names=NAMES)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        findings = app.query_one(FindingsTree)
        fnode = findings.root.children[0]
        fnode.expand()
        await pilot.pause()
        assert [type(c.data) for c in fnode.children] == [FieldGroup, DerivedGroup]
        group = fnode.children[0]
        assert group.label.plain.startswith("≠ i_ctime  ×1,000")  # type: ignore[union-attr]
        group.expand()
        await pilot.pause()
        assert len(group.children) == PAGE + 1 and isinstance(group.children[-1].data, MoreItem)
        findings.move_cursor(group.children[-1])
        await pilot.press("enter")  # the "… 700 more" node loads the next page
        assert len(group.children) == 2 * PAGE + 1
        # n/p and reveal reach a difference far outside the window: the window moves there
        target = report.findings[0].causes[950]
        app.select_diff(target, findings=True)
        await pilot.pause()
        node = findings.cursor_node
        assert isinstance(node.data, DiffItem) and node.data.diff is target  # type: ignore[union-attr]
        assert isinstance(group.children[0].data, MoreItem) and group.children[0].data.before
        await pilot.press("n")
        assert app.current is report.findings[0].causes[951]


def test_search_splits_hits_into_causes_and_derived_and_never_spans_two_fields() -> None:
    structure = Structure(_big_report(300))
    result = structure.search("Inode 123 ")  # both fields of inode 123, not of 1230-1239
    [(finding, causes, derived)] = result.findings
    assert finding is structure.report.findings[0]
    assert [(d.field, d.a) for d in causes] == [("i_ctime", 1123)]
    assert [(d.field, d.a) for d in derived] == [("i_checksum_lo", 1123)]
    assert result.paths == ["disk/ext4/inodes/inode:123"]
    derived_only = structure.search("i_checksum_lo")
    assert [(len(c), len(d)) for _f, c, d in derived_only.findings] == [(0, 300)]
    # the end of one field's text and the start of the next never make a match
    hay, starts = structure.texts()
    assert len(starts) == 600 and hay[starts[1] - 1] == "\x00"
    tail = hay[starts[0] : starts[1] - 1][-4:]
    head = hay[starts[1] : starts[1] + 4]
    assert structure.search(tail + head).findings == []
    assert structure.search("ext4-staging-ctime").order == structure.order  # the finding's own text: all


def test_warm_up_builds_search_text_positions_and_groups_and_pauses_between_steps() -> None:
    from imgdiff.tui.structure import group_by_field

    structure = Structure(_big_report(3000))
    pauses: list[int] = []
    structure.warm(60, lambda: pauses.append(1))
    assert len(pauses) == 14  # every 2,048 items of: 6,000 texts, 6,000 positions, 2 x (3,000 grouped + indexed)
    f = structure.report.findings[0]
    assert structure.groups(f, True) == group_by_field(f.derived)
    assert [(k, len(m)) for k, m in structure.groups(f, False)] == [(("ext4.inode", "i_ctime", "modified"), 3000)]
    assert structure.group_positions(f, True)[id(f.derived[2999])] == 2999
    assert structure.position(f.derived[0]) == 3000
    hay, starts = structure.texts(lambda: pauses.append(1))  # built once: no more pauses
    assert hay.count("\x00") == 5999
    assert len(starts) == 6000 and len(pauses) == 14


async def test_search_runs_off_the_event_loop_and_keeps_only_the_last_query() -> None:
    report = _big_report(3000)
    app = ImgdiffApp(report=report, names=NAMES)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("slash", *"f0299")
        await searched(pilot, "f0299")
        [item] = app.query_one(FindingsTree).items
        assert [d.attrs["path"] for d in item.causes] == [f"/usr/share/f0299{i}" for i in range(10)]
        assert app.searches >= 1
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace")
        await searched(pilot, "")
        assert len(app.query_one(FindingsTree).items[0].causes) == 3000
        await pilot.press("escape", "q")
    assert app.return_value == 1


async def test_text_diff_of_a_changed_file(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "report-esp-root")
    async with app.run_test(size=(140, 45)) as pilot:
        await ready(pilot)
        ext = next(f for f in app.report.findings if f.rule.id == "EXT014")  # type: ignore[union-attr]
        app.select_diff(ext.causes[0], findings=True)
        await pilot.pause()
        text = app.query_one(DetailPane).plain(140)
        assert "Text diff" in text
        assert '-BUILD_ID="24.05.20240501.abcdef0"' in text and '+BUILD_ID="24.05.20240502.abcdef0"' in text
        assert "plain tools: Extract both and compare: `debugfs -R 'dump \"/etc/os-release\" os-release.a'" in text


async def test_copy_and_export(pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    app = make_app(pair, "gpt-repart-random-seed")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("n")  # a difference: its values in full
        await pilot.press("c")
        d = app.current
        assert d is not None and app.clipboard == f"A: {d.a}\nB: {d.b}" and len(str(d.a)) == 36  # a whole GUID
        app.select_finding(app.report.findings[0])  # type: ignore[union-attr]
        await pilot.press("x")
        await pilot.pause()
    [path] = app.exports
    text = (tmp_path / path).read_text()
    assert path == "imgdiff-GPT001.md" and text.startswith("### GPT disk and partition GUIDs are random")
    assert "| Where | Field | A | B | Count | Bytes |" in text and "- nixos: Keep `image.repart.seed` fixed" in text


async def test_tree_labels_keep_whole_guids(pair) -> None:  # type: ignore[no-untyped-def]
    app = make_app(pair, "gpt-repart-random-seed")
    async with app.run_test(size=(200, 40)) as pilot:
        await ready(pilot)
        await pilot.press("enter", "z")  # open the finding, zoom the findings list
        await pilot.pause()
        findings = app.query_one(FindingsTree)
        label = findings.root.children[0].children[0].label.plain  # type: ignore[union-attr]
        d = app.report.findings[0].causes[0]  # type: ignore[union-attr]
        assert f"{d.a} → {d.b}" in label


async def test_hexview_next_prev_difference_goto_and_collapse() -> None:
    from imgdiff.tui.hexview import MAX_WINDOW, parse_offset

    a = bytes(1 << 20)
    b = bytearray(a)
    for off in (0x100, 0x30000, 0x90010):
        b[off] = 0xAA
    app = _HexApp(a, bytes(b))
    async with app.run_test(size=(120, 20)) as pilot:
        view = app.query_one(HexView)
        region = (Extent(0, 1 << 20),)
        view.show(HexTarget("whole", region, region, (), (), seek=True))
        view.focus()
        await pilot.pause()
        assert view.mark == 0x100 and view.base_a == 0
        # the zero rows after the first difference fold into one line
        assert any("identical rows" in view.display_text(y) for y in range(len(view._disp)))
        await pilot.press("right_square_bracket")  # ]
        assert view.mark == 0x30000 and view.base_a <= 0x30000 < view.base_a + view.size_shown
        await pilot.press("right_square_bracket")
        assert view.mark == 0x90010 and view.differing_bytes == 1  # beyond two windows: the window moved
        await pilot.press("left_square_bracket")  # [
        assert view.mark == 0x30000
        await pilot.press("left_square_bracket", "left_square_bracket")  # nothing before 0x100: stays
        assert view.mark == 0x100
        view.goto(0x90010, 1 << 20)
        await pilot.pause()
        assert view.target is not None and view.target.title == "offset 0x90010"
        assert view.base_a <= 0x90010 < view.base_a + view.size_shown and view.size_shown <= MAX_WINDOW
    assert parse_offset("0x1f00") == 0x1F00 and parse_offset("36700160+0x10") == 36700176
    assert parse_offset("1f00h") == 0x1F00 and parse_offset("nope") is None


async def test_hexview_scrolling_slides_along_the_region() -> None:
    from imgdiff.tui.hexview import MAX_WINDOW

    a = bytes(i & 0xFF for i in range(4 * MAX_WINDOW))
    app = _HexApp(a, a)
    async with app.run_test(size=(120, 20)) as pilot:
        view = app.query_one(HexView)
        region = (Extent(0, len(a)),)
        view.show(HexTarget("big", region, region))
        view.focus()
        await pilot.pause()
        assert view.base_a == 0 and view.truncated
        for _ in range(12):
            await pilot.press("end")
            await pilot.pause()
        assert view.base_a > 0  # the window slid on past its first 64 KiB
        top = view.base_a + 16 * view._first_row[round(view.scroll_offset.y)]
        assert top > MAX_WINDOW

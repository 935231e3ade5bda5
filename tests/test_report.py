"""The reports: ``imgdiff report`` markdown and ``imgdiff explain`` text as golden files on real fixture pairs,
determinism, escaping, partitions, the verdict and the "to fix" list.

Golden files live in tests/golden/<pair>.md (markdown report) and tests/golden/explain/<pair>.txt (the text of
``imgdiff explain`` for every fixture pair).  They depend on the whole rule set and every parser, so a new rule or
a parser change legitimately changes them: regenerate with ``UPDATE_GOLDEN=1 pytest tests/test_report.py`` and
review the diff before committing.  tests/test_fixes.py runs the debugfs/mtools commands these goldens contain.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest

from imgdiff.model import Report
from imgdiff.report import markdown, text
from imgdiff.report.json import load_report, report_to_dict
from imgdiff.ruleset.schema import load_rules

from .conftest import all_pairs

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_PAIRS = ["report-esp-root", "gpt-repart-random-seed", "vfat-fat16-content", "gpt-identical", "gpt-bad-crc"]
CONTENT_PAIR = "content-formats"


def named(report: Report, pair: str) -> Report:
    """Return ``report`` with the temporary image paths replaced by the fixture's relative names."""
    return dataclasses.replace(
        report,
        a=dataclasses.replace(report.a, path=f"fixtures/pairs/{pair}/a.img"),
        b=dataclasses.replace(report.b, path=f"fixtures/pairs/{pair}/b.img"),
        context=dict(report.context, config=pair),
    )


def golden_check(name: str, rendered: str, suffix: str = ".md", where: Path = GOLDEN) -> None:
    path = where / f"{name}{suffix}"
    if os.environ.get("UPDATE_GOLDEN"):
        where.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    expected = path.read_text(encoding="utf-8")
    assert rendered == expected, f"{path.name} differs from the rendered report (UPDATE_GOLDEN=1 regenerates it)"


def pairs_present(names: list[str]) -> list[str]:
    have = set(all_pairs())
    return [n for n in names if n in have]


@pytest.mark.parametrize("name", GOLDEN_PAIRS + [CONTENT_PAIR])
def test_golden(name: str, analyzed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    if name not in all_pairs():
        pytest.skip(f"fixture pair {name} not built")
    monkeypatch.setattr(shutil, "which", lambda _exe: None)  # --content-diff output must not depend on the host
    report = named(analyzed(name), name)
    golden_check(name, markdown.render(report))


@pytest.mark.parametrize("name", all_pairs())
def test_explain_golden(name: str, analyzed) -> None:  # type: ignore[no-untyped-def]
    """Every fixture pair's ``imgdiff explain`` text: the verdict first, then the fix list, then the details."""
    report = named(analyzed(name), name)
    rendered = text.render(report)
    first = rendered.splitlines()[0]
    assert first.startswith("reproducible: " if report.identical else "not reproducible: "), first
    if any(f.rule.id != "unclassified" for f in report.findings):
        assert "\nto fix (most impactful first):\n  1. " in rendered
    golden_check(name, rendered, ".txt", GOLDEN / "explain")


@pytest.mark.parametrize("name", pairs_present(["report-esp-root", "vfat-fat16-content", "gpt-geometry"]))
def test_deterministic(name: str, pair) -> None:  # type: ignore[no-untyped-def]
    """Two independent analyses of the same pair render to the same bytes."""
    from imgdiff.engine.analysis import analyze

    a, b = pair(name)
    first = markdown.render(named(analyze(a, b), name))
    second = markdown.render(named(analyze(a, b), name))
    assert first == second
    assert markdown.render(named(analyze(a, b), name), content_diff=False) == first


def _rule_for(kind: str, field: str) -> str | None:
    for r in load_rules().rules:
        if any(re.fullmatch(k.replace("*", ".*"), kind) for k in r.match.kind) and any(
            re.fullmatch(f.replace("*", ".*"), field) for f in r.match.field
        ):
            return r.id
    return None


def test_done_when_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    """The ESP+root pair names the GPT GUIDs, the vfat volume ID rule and the changed os-release line."""
    report = named(analyzed("report-esp-root"), "report-esp-root")
    md = markdown.render(report)
    assert "# Reproducibility report: report-esp-root" in md
    assert "`GPT001`" in md and "### 1. GPT disk and partition GUIDs are random" in md
    assert "| primary GPT header, backup GPT header | `DiskGUID` | `66abaa8d-0a25-45e0-9116-2eb0a48605d8` |" in md
    assert md.splitlines()[2] == (
        "**Not reproducible:** 3 causes — repart seed (random GPT GUIDs), FAT volume ID, /etc/os-release content"
    )
    assert "## To fix (most impactful first)\n\n1. **repart seed (random GPT GUIDs)** — `GPT001`, 112 bytes\n" in md
    volid = _rule_for("vfat.boot_sector", "BS_VolID")
    assert volid is not None, "the vfat volume ID rule is missing from rules/vfat"
    assert f"| partition 1 (esp) | vfat (FAT32) | 1048576 +35651584 (34 MiB) | **no** | 6 | `{volid}` |" in md
    assert f"({volid})" in md
    root = next(c for c in report.tree_a.children if c.kind == "partition" and c.attrs["index"] == 2)  # type: ignore[union-attr]
    if root.children[0].kind.split(".")[0] != "ext4":
        pytest.skip("the ext4 parser does not recognise the root partition yet")
    assert "**Paths** (1): `/etc/os-release`" in md
    assert '  -BUILD_ID="24.05.20240501.abcdef0"\n  +BUILD_ID="24.05.20240502.abcdef0"' in md
    assert "differing bytes in the file: 0x70-0x70 (1 byte)" in md
    # Per-partition table: GPT row, ESP row, root row; bytes add up to the total.
    assert "| partition table (GPT) and space outside partitions | — | — | **no** | 112 | `GPT001` |" in md
    assert re.search(r"\| partition 2 \(root-x86-64\) \| ext4 \| 36700160 \+30391808 \(30391808 bytes\) \| \*\*no\*\* \| 1 \|", md)
    assert "Not reproducible: partition table (GPT) and space outside partitions, partition 1 (esp), partition 2" in md


ROW_SUM_PAIRS = [
    "report-esp-root", "content-formats", "gpt-geometry", "gpt-partition-set", "gpt-repart-two-seeds", "mbr-sfdisk",
    "vfat-geometry", "vfat-fat16-content", "ext4-file-content",
]


@pytest.mark.parametrize("name", pairs_present(ROW_SUM_PAIRS))
def test_row_bytes_add_up(name: str, analyzed) -> None:  # type: ignore[no-untyped-def]
    """Every differing byte lands in exactly one row of the partition table (image tails and in-file fields too)."""
    report = analyzed(name)
    rows = markdown.build_rows(report)
    counts = markdown.rows_bytes(report, rows)
    assert sum(n for n, _exact in counts) == report.summary.bytes_differing
    assert all(exact for _n, exact in counts)


@pytest.mark.parametrize("name", all_pairs())
def test_every_pair_renders_valid_markdown(name: str, analyzed) -> None:  # type: ignore[no-untyped-def]
    md = markdown.render(analyzed(name))
    assert md.endswith("\n") and not md.endswith("\n\n")
    assert md.count("```") % 2 == 0
    _check_tables(md)


def _check_tables(md: str) -> None:
    """Every table row has as many cells as its header (unescaped pipes would break this)."""
    lines = md.splitlines()
    in_fence = False
    width = 0
    for ln in lines:
        if ln.lstrip().startswith("```"):
            in_fence = not in_fence
        if in_fence or not ln.startswith("|"):
            width = 0 if not ln.startswith("|") else width
            continue
        cells = len(re.findall(r"(?<!\\)\|", ln)) - 1
        if width == 0:
            width = cells
        assert cells == width, ln


def test_errors_section(analyzed) -> None:  # type: ignore[no-untyped-def]
    md = markdown.render(named(analyzed("gpt-bad-crc"), "gpt-bad-crc"))
    assert "## Could not be parsed" in md
    assert "- B: primary GPT header: HeaderCRC32 0xefbeadde does not match computed 0x6d78fc49" in md
    assert "Partition table (GPT) and space outside partitions is not reproducible; reproducible: partition 1 (esp)." in md


def test_identical_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    md = markdown.render(named(analyzed("gpt-identical"), "gpt-identical"))
    assert "**Reproducible:** the images are bit-for-bit identical" in md
    assert "## Tracked-down causes" not in md and "Not yet tracked down" not in md
    assert "| partition 1 (esp) |" in md and "| yes | 0 | — |" in md


def test_json_roundtrip_uses_locations(analyzed) -> None:  # type: ignore[no-untyped-def]
    """A report loaded from JSON has no trees: partitions come from the finding locations."""
    report = named(analyzed("report-esp-root"), "report-esp-root")
    loaded = load_report(report_to_dict(report))
    md = markdown.render(loaded)
    assert "partitions without differences are not listed" in md
    assert "**Not reproducible:** 3 causes — repart seed (random GPT GUIDs), FAT volume ID, /etc/os-release content" in md
    assert "`debugfs -R 'dump \"/etc/os-release\" os-release.a'" in md  # the filled fixes travel in the JSON
    assert "| partition 1 (esp) | — | — | **no** | 6 |" in md
    assert "`GPT001`" in md
    # The contents are not in the JSON: the differing ranges are shown, no text diff is invented.
    assert "- `/etc/os-release` (" in md and "differing bytes in the file: 0x70-0x70 (1 byte)" in md
    assert "```diff" not in md


def test_escaping() -> None:
    assert markdown.cell("a|b") == "a\\|b"
    assert markdown.code("x`y") == "``x`y``"
    assert markdown.code("`x") == "`` `x ``"
    assert markdown.plain("s_hash_seed <x> [y] *z* a->b") == "s\\_hash\\_seed \\<x> \\[y\\] \\*z\\* a->b"
    assert markdown.fence_for("a\n```\nb") == "````"
    assert markdown.human_size(64 << 20) == "64 MiB" and markdown.human_size(1000) == "1000 bytes"


def test_unified_diff_is_capped() -> None:
    a = "".join(f"line {i}\n" for i in range(200)).encode()
    b = "".join(f"line {i} changed\n" for i in range(200)).encode()
    lines = markdown.unified("/etc/x", a, b)
    assert len(lines) == markdown.DIFF_LINES + 1
    assert lines[0] == "--- a/etc/x" and lines[1] == "+++ b/etc/x"
    assert lines[-1].startswith("… ") and "more line(s) of diff not shown" in lines[-1]


def test_content_diff_without_diffoscope(analyzed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(shutil, "which", lambda _exe: None)
    md = markdown.render(named(analyzed("vfat-fat16-content"), "vfat-fat16-content"), content_diff=True)
    assert "`--content-diff` was requested but diffoscope is not installed" in md
    assert "-sd-boot 1234\n  +sd-boot 4321" in md


@pytest.mark.skipif(shutil.which("diffoscope") is None, reason="diffoscope is not installed")
def test_content_diff_with_diffoscope(analyzed) -> None:  # type: ignore[no-untyped-def]
    """diffoscope runs once per binary file, on relative names (no temporary paths leak), bounded in length."""
    report = named(analyzed("content-formats"), "content-formats")
    md = markdown.render(report, content_diff=True)
    assert "    --- a/tool.1.gz\n    +++ b/tool.1.gz\n" in md
    assert "/tmp/" not in md and "imgdiff-md-" not in md
    assert md.count("    --- a/tool.1.gz\n") == 1
    assert "diffoscope: see its output for this file under `CNT006` above" in md
    assert md == markdown.render(report, content_diff=True)
    # Text files keep imgdiff's own unified diff only.
    text = markdown.render(named(analyzed("vfat-fat16-content"), "vfat-fat16-content"), content_diff=True)
    assert "diffoscope:" not in text and "```diff" in text


def test_cli_report_writes_markdown(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.cli import main

    a, b = pair("report-esp-root")
    out = tmp_path / "r.md"
    assert main(["report", str(a), str(b), "--config", "esp-root", "-o", str(out)]) == 1
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Reproducibility report: esp-root\n")
    assert "`GPT001`" in text


@pytest.mark.parametrize("name", all_pairs())
def test_no_repo_links_or_cli_homework(name: str, analyzed) -> None:  # type: ignore[no-untyped-def]
    """A tracker reader has no checkout and no imgdiff: no rules/README.md link, no "run imgdiff explain --json"."""
    md = markdown.render(analyzed(name))
    assert "rules/README.md" not in md and "explain --json" not in md


def test_long_lists_fold_into_details(analyzed) -> None:  # type: ignore[no-untyped-def]
    """One row per field and value pattern with a count; derived differences in a <details> block."""
    md = markdown.render(named(analyzed("ext4-kernel"), "ext4-kernel"))
    rows = [ln for ln in md.splitlines() if "| `i_generation` |" in ln]
    assert len(rows) == 1 and "| varies, e.g. `" in rows[0] and rows[0].endswith("| 27 | 108 |")
    assert "<details>\n<summary>Derived differences: 251 consequences folded into this cause" in md
    assert md.count("<details>") == md.count("</details>")


def test_header_names_images_with_sizes_and_checksums(analyzed) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    report = named(analyzed("iso-no-sde"), "iso-no-sde")
    report = dataclasses.replace(report, context=dict(report.context, sha256_a="ab" * 32, sha256_b="cd" * 32))
    md = markdown.render(report)
    assert f"| sha256 (of the file as given) | `{'ab' * 32}` | `{'cd' * 32}` |" in md
    assert "| tools the image records | XORRISO-1.5.4 2021.01.30.150001, LIBISOBURN-1.5.4" in md
    assert "| image | `a.img` | `b.img` |" in md


def test_time_values_are_described_from_the_values() -> None:
    from imgdiff.model import Difference, Finding, RuleInfo
    from imgdiff.report.times import time_note

    def diff(a: str, b: str) -> Difference:
        return Difference("n", "vfat.dirent", "DIR_WrtTime", "modified", 1, 2, (), (), "x", display_a=a, display_b=b)

    rule = RuleInfo("FAT004", "x", "t", "repart", "", "")
    fixed = Finding(rule, "x", [diff("2024-05-06 07:08:00", "2023-11-14 22:13:20")] * 3)
    note = time_note(fixed)
    assert "B has one fixed value in all 3 fields, 2023-11-14 22:13:20 (epoch 1700000000, a round value: a pinned " \
           "time, not a clock)" in note
    assert "A has one value in all 3 fields, 2024-05-06 07:08:00;" in note and "wall" not in note
    spread = Finding(rule, "x", [diff("2020-01-01 10:00:00", "2024-05-06T07:08:00Z"),
                                 diff("2021-06-01 10:00:05", "2024-05-06T07:08:09Z")])
    note = time_note(spread)
    assert "A's times spread over 517 days" in note and "the inputs' own times" in note
    assert "B's times lie within 9 s (2024-05-06 07:08:00 … 2024-05-06 07:08:09): written at one moment" in note
    assert time_note(Finding(rule, "x", [Difference("n", "k", "f", "modified", 1, 2, (), (), "x")])) == ""


def test_file_detail_states_both_counts() -> None:
    """A file whose blocks moved: 1 content byte differs but 8 image bytes do; the detail says which is which."""
    from dataclasses import replace

    from imgdiff.model import Difference, Extent
    from imgdiff.report.text import content_detail

    d = Difference("disk/ext4/files//etc/x", "ext4.file", "data", "modified", b"a", b"b",
                   (Extent(4096, 8),), (Extent(8192, 8),), "ext4 / files", bytes=8,
                   detail="differing bytes in the file: 0x5-0x5 (1 bytes)")
    assert content_detail(d) == (
        "differing bytes in the file: 0x5-0x5 (1 byte) — 1 byte(s) of content differ; 8 byte(s) differ at the "
        "file's places in the images (its blocks are not at the same offsets in A and B, or other bytes share them)"
    )
    d = replace(d, bytes=1)
    assert content_detail(d) == "differing bytes in the file: 0x5-0x5 (1 byte)"

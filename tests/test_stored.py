"""Compressed inputs whose images are identical but whose compressed files differ (fixtures/recipes/compressed-*.sh).

The published artefact of an image build is often the compressed file: equal images compressed with another xz
thread count, zstd level or gzip name/mtime are not reproducible, and imgdiff must say so (exit 1) and why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.engine.stored import compare_stored
from imgdiff.formats.compressed.stored import stored_fields


def _fields(path: Path, kind: str) -> dict[str, object]:
    return {name: f.value for name, f in stored_fields(str(path), kind).items() if name != "file"}


def test_xz_thread_count_is_read_from_the_block_header_and_index(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("compressed-xz-threads")
    assert _fields(a, "xz") == {
        "Header Magic Bytes": "fd377a585a00", "Stream Flags": "0004", "Block Flags": 0,
        "LZMA2 dictionary": 4 << 20, "Filters": "LZMA2", "Blocks": 1,
    }
    assert _fields(b, "xz") == {
        "Header Magic Bytes": "fd377a585a00", "Stream Flags": "0004", "Block Flags": 0xC0,
        "LZMA2 dictionary": 4 << 20, "Filters": "LZMA2", "Blocks": 3,  # 34 MiB in blocks of 3 x 4 MiB
    }


def test_each_rule_names_its_setting(analyzed) -> None:  # type: ignore[no-untyped-def]
    expect = {
        "compressed-xz-threads": ("IMG002", [("Block Flags", 0, 0xC0), ("Blocks", 1, 3)]),
        "compressed-gzip-mtime": ("IMG003", [("MTIME", 1700000000, 1700003600)]),
        "compressed-zstd-level": ("IMG004", [("Window_Descriptor", 0x58, 0x68)]),
        "compressed-xz-extreme": ("IMG005", [("file", None, None)]),
    }
    for name, (rule, causes) in expect.items():
        report = analyzed(name)
        assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (0, 0), name
        assert not report.identical, name
        (f,) = report.findings
        assert f.rule.id == rule, name
        got = [(d.field, d.a if d.field != "file" else None, d.b if d.field != "file" else None) for d in f.causes]
        assert got == causes, name
        assert [d.field for d in f.derived] == ([] if rule == "IMG005" else ["file"]), name


def test_exit_status_and_json_say_the_files_differ(pair, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("compressed-zstd-level")
    assert main(["explain", "--json", str(a), str(b)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["identical"] is False
    assert out["summary"]["bytes_differing"] == 0
    assert [f["rule"]["id"] if isinstance(f["rule"], dict) else f["rule"] for f in out["findings"]] == ["IMG004"]
    assert main(["explain", str(a), str(b)]) == 1
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "not reproducible: 1 cause — compression settings"
    assert "35651584 bytes of the decompressed images compared, none differ; the compressed files differ" in text


def test_same_file_twice_is_identical(pair, capsys) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("compressed-gzip-mtime")
    assert main(["explain", str(a), str(a)]) == 0
    assert capsys.readouterr().out.startswith("reproducible: the images are bit-for-bit identical (35651584 bytes)")
    assert compare_stored(str(a), "gzip", str(a), "gzip", True) == []


def test_trailing_garbage_is_a_difference_not_identical(pair, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """One byte appended to a .xz: the images decode equal (with a decode error on B), the files do not."""
    a, _ = pair("compressed-xz-extreme")
    c = tmp_path / "c.img"
    shutil.copyfile(a, c)
    with open(c, "ab") as fh:
        fh.write(b"\xff")
    assert main(["explain", str(a), str(c)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "not reproducible: the compressed files differ, the images inside are identical"
    assert "[unclassified]" in out
    assert "B: xz stream is corrupt or truncated after 35651584 decoded bytes" in out


def test_one_side_compressed_compares_the_images_only(pair, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A raw image against a compressed copy of it: the user compares contents; no stored-file difference."""
    import lzma

    a, _ = pair("compressed-xz-threads")
    raw = tmp_path / "raw.img"
    with lzma.open(a) as src, open(raw, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert main(["explain", str(raw), str(a)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("name", ["compressed-zstd-ext4"])
def test_different_images_report_only_header_settings(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    """Both sides zstd -19 of different images: the compressed bytes follow from the images; no IMG finding."""
    report = analyzed(name)
    assert [f.rule.id for f in report.findings] == ["EXT002"]

"""The command line: exit codes, one-line errors on bad input, the JSON contract, never a write to an input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgdiff.cli import main

NIXOS_SEED = "0867da16-f251-457d-a9e8-c31f9a3c220b"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgdiff", *args], capture_output=True, text=True, timeout=120, check=False
    )


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_identical_images_exit_0(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("gpt-identical")
    r = run("explain", str(a), str(b))
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("are identical (50331648 bytes).\n")
    r = run("explain", "--json", str(a), str(b))
    doc = json.loads(r.stdout)
    assert doc["identical"] is True and doc["findings"] == []
    assert doc["summary"] == {"bytes_compared": 50331648, "bytes_differing": 0, "bytes_unexplained": 0}


def test_guid_only_pair_done_when(pair) -> None:  # type: ignore[no-untyped-def]
    """Issue 2's done-when: both GUID fields named, layer repart, --seed fix, four CRCs folded, 0 unexplained."""
    a, b = pair("gpt-repart-random-seed")
    before = (sha(a), sha(b))
    r = run("explain", "--json", str(a), str(b))
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["imgdiff_json_version"] == 1
    assert doc["summary"] == {"bytes_compared": 50331648, "bytes_differing": 112, "bytes_unexplained": 0}
    [f] = doc["findings"]
    assert f["rule"] == "GPT001" and f["layer"] == "repart" and f["location"] == "GPT"
    assert f["fields"] == [
        "disk/gpt/primary/DiskGUID",
        "disk/gpt/primary-entries/entry:1/UniquePartitionGUID",
        "disk/gpt/primary-entries/entry:2/UniquePartitionGUID",
        "disk/gpt/backup-entries/entry:1/UniquePartitionGUID",
        "disk/gpt/backup-entries/entry:2/UniquePartitionGUID",
        "disk/gpt/backup/DiskGUID",
    ]
    assert sorted(f["derived"]) == [
        "disk/gpt/backup/HeaderCRC32",
        "disk/gpt/backup/PartitionEntryArrayCRC32",
        "disk/gpt/primary/HeaderCRC32",
        "disk/gpt/primary/PartitionEntryArrayCRC32",
    ]
    assert f["bytes"] == 112 and "--seed" in f["fix"]
    assert (sha(a), sha(b)) == before  # inputs untouched


def test_json_contract_keys_and_types(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("gpt-name-attrs")
    doc = json.loads(run("explain", "--json", str(a), str(b)).stdout)
    assert set(doc) >= {"imgdiff_json_version", "a", "b", "identical", "summary", "findings"}
    assert doc["a"] == str(a) and doc["b"] == str(b) and doc["identical"] is False
    layers = {"repart", "mkfs", "nixos-module", "content", "bootloader", "other", "unknown"}
    for f in doc["findings"]:
        assert set(f) >= {"rule", "title", "layer", "location", "fields", "paths", "a", "b", "bytes", "derived", "fix"}
        assert f["layer"] in layers
        assert all(isinstance(x, str) for x in f["fields"] + f["paths"] + f["derived"])
        assert isinstance(f["bytes"], int) and f["bytes"] > 0
    by_rule = {f["rule"]: f for f in doc["findings"]}
    assert by_rule["GPT003"]["a"] == "esp" and by_rule["GPT003"]["b"] == "ESP"
    assert by_rule["GPT004"]["a"] == 0 and by_rule["GPT004"]["b"] == 1 << 60
    assert sum(f["bytes"] for f in doc["findings"]) == doc["summary"]["bytes_differing"] == 24


def test_seed_option_reports_the_derivation(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("gpt-repart-two-seeds")
    doc = json.loads(run("explain", "--json", "--seed", NIXOS_SEED, str(a), str(b)).stdout)
    [f] = doc["findings"]
    assert f["note"] == (
        f"seed {NIXOS_SEED}: A: all GUIDs are derived from this seed; "
        "B: no GUID is derived from this seed (another seed, or random)"
    )


def test_missing_file_exit_2_one_line(tmp_path: Path) -> None:
    r = run("explain", str(tmp_path / "nope.raw"), str(tmp_path / "nope2.raw"))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "nope.raw: No such file or directory" in r.stderr


def test_directory_and_unreadable_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "x.img"
    f.write_bytes(b"\0" * 4096)
    r = run("explain", str(tmp_path), str(f))
    assert r.returncode == 2 and "is a directory" in r.stderr and r.stderr.count("\n") == 1
    if os.geteuid() != 0:  # root reads anything
        g = tmp_path / "locked.img"
        g.write_bytes(b"x")
        g.chmod(0)
        r = run("explain", str(g), str(f))
        assert r.returncode == 2 and "Permission denied" in r.stderr


def test_bad_arguments_exit_2() -> None:
    r = run("explain", "only-one")
    assert r.returncode == 2 and "error:" in r.stderr


FORMATS = "(choose from 'text', 'json', 'markdown')"
NOT_UUID = f"is not a UUID (systemd-repart --seed takes one, e.g. {NIXOS_SEED})"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "the following arguments are required: command"),
        (("bogus",), "argument command: invalid choice: 'bogus' (choose from 'explain', 'report', 'rules', 'tui')"),
        (("explain", "only-one"), "the following arguments are required: b"),
        (("explain", "--format", "yaml", "a", "b"), f"argument --format: invalid choice: 'yaml' {FORMATS}"),
        (("explain", "a", "b", "--bogus"), "unrecognized arguments: --bogus"),
        (("explain", "a", "b", "--seed", "notauuid"), f"argument --seed: 'notauuid' {NOT_UUID}"),
        (("tui", "a", "--seed", "1234"), f"argument --seed: '1234' {NOT_UUID}"),
    ],
)
def test_argument_errors_end_with_the_error_line(args: tuple[str, ...], error: str) -> None:
    """Usage may come first (argparse wraps it over several lines), but the last line is the one error."""
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    *usage, last = r.stderr.splitlines()
    assert last == f"imgdiff: error: {error}"
    assert usage[0].startswith("usage: imgdiff") and all(line.startswith(" ") for line in usage[1:])


def test_seed_is_canonicalised(pair) -> None:  # type: ignore[no-untyped-def]
    """systemd-repart accepts the 32-digit form too; the note names the seed in canonical form."""
    a, b = pair("gpt-repart-two-seeds")
    doc = json.loads(run("explain", "--json", "--seed", NIXOS_SEED.replace("-", "").upper(), str(a), str(b)).stdout)
    assert doc["context"] == {"seed": NIXOS_SEED}
    assert doc["findings"][0]["note"].startswith(f"seed {NIXOS_SEED}: A: all GUIDs are derived from this seed; ")


def test_rules_option_must_name_a_directory_of_rules(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A missing path, a file, or a directory without rules once loaded no rules and reported all unclassified."""
    a, b = pair("gpt-repart-random-seed")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.toml").write_text("")
    cases = {
        tmp_path / "missing": f"{tmp_path}/missing: no such rules directory",
        tmp_path / "file.toml": (
            f"{tmp_path}/file.toml: is not a directory (rules are loaded from a directory of *.toml files)"
        ),
        tmp_path / "empty": f"{tmp_path}/empty: no rule files (*.toml) in this directory",
    }
    for path, message in cases.items():
        for args in (("rules", "--rules", str(path)), ("explain", "--rules", str(path), str(a), str(b))):
            r = run(*args)
            assert (r.returncode, r.stdout, r.stderr) == (2, "", f"imgdiff: error: {message}\n"), args


def test_not_an_image_is_compared_as_raw(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("hello world\n")
    b.write_text("hello there\n")
    r = run("explain", "--json", str(a), str(b))
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["summary"] == {"bytes_compared": 12, "bytes_differing": 5, "bytes_unexplained": 5}
    [f] = doc["findings"]
    assert f["rule"] == "unclassified" and f["location"] == "unrecognised data"


def test_truncated_disk_gives_partial_result(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("gpt-name-attrs")
    t = tmp_path / "trunc.img"
    with open(a, "rb") as src, open(t, "wb") as out:
        out.write(src.read(20 << 20))  # the backup GPT and half of partition 2 are gone
    r = run("explain", "--json", str(a), str(t))
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert "B: backup GPT header missing (image truncated or not a complete disk)" in doc["errors"]
    assert "B: partition 2 ends beyond the end of the image; truncated to the image" in doc["errors"]
    assert {f["rule"] for f in doc["findings"]} == {"IMG001"}
    assert doc["summary"]["bytes_unexplained"] == 0


def test_hostile_gpt_entry_count(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A header claiming 2^32-1 entries must not make imgdiff allocate or loop: it says so and goes on."""
    a, _ = pair("gpt-name-attrs")
    data = bytearray(a.read_bytes()[: 1 << 20])
    data[512 + 0x50 : 512 + 0x54] = b"\xff\xff\xff\xff"
    h = tmp_path / "hostile.img"
    h.write_bytes(bytes(data))
    r = run("explain", "--json", str(h), str(h))
    assert r.returncode == 0
    r = run("explain", str(a), str(h))
    assert r.returncode == 1
    assert "entry array of 4294967295 x 128 bytes is not plausible; entries not parsed" in r.stdout


def test_rules_list_and_show() -> None:
    r = run("rules")
    assert r.returncode == 0
    assert any(line.startswith("GPT001   repart") for line in r.stdout.splitlines())
    r = run("rules", "GPT001")
    assert r.returncode == 0 and "systemd-repart --seed=<uuid>" in r.stdout
    r = run("rules", "NOPE999")
    assert r.returncode == 2 and r.stderr == "imgdiff: error: no rule 'NOPE999' (see `imgdiff rules`)\n"


def test_main_returns_status_in_process(pair, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("mbr-sfdisk")
    assert main(["explain", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "[MBR001] MBR disk signature (disk identifier) is random" in out


def test_output_file_replaced_only_when_complete(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("gpt-name-attrs")
    out = tmp_path / "result.json"
    out.write_text("previous result\n")
    r = run("explain", "--json", "-o", str(out), str(a), str(b))
    assert r.returncode == 1 and r.stdout == ""
    assert json.loads(out.read_text())["summary"]["bytes_differing"] == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary file left behind
    r = run("explain", "-o", str(tmp_path / "missing-dir" / "x.txt"), str(a), str(b))
    assert r.returncode == 2 and r.stderr.startswith("imgdiff: error:") and r.stderr.count("\n") == 1


def test_output_over_an_input_image_is_refused(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`-o` naming an input (or a hard link to it) would replace the image with the result: exit 2, image intact."""
    a, b = pair("gpt-name-attrs")
    copy = tmp_path / "b.img"
    copy.write_bytes(b.read_bytes())
    link = tmp_path / "link.img"
    os.link(copy, link)
    before = sha(copy)
    for out in (copy, link):
        r = run("explain", "--json", "-o", str(out), str(a), str(copy))
        assert (r.returncode, r.stdout) == (2, "")
        assert r.stderr == f"imgdiff: error: -o {out}: that is the input image {copy}; choose another output file\n"
    assert sha(copy) == before and sorted(p.name for p in tmp_path.iterdir()) == ["b.img", "link.img"]

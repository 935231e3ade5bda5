"""Fixes as data: templates filled with the pair's values, and every debugfs/mtools/xorriso/unsquashfs command in the
goldens runs as written on the fixture images (from a directory where ``fixtures/pairs/<pair>/{a,b}.img`` are the images).

The commands are the read-only ones the fixes name for checking or extracting (``debugfs -R 'dump …'``, ``stat``,
``mdir``, ``mcopy`` out of the image, ``xorriso -indev … -extract``): they must exit 0, do what they say (the dumped
file exists, ``stat`` prints an inode), and leave the images untouched.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from imgdiff.model import Report
from imgdiff.report.fixes import fill, fix_items, placeholders, rule_fixes
from imgdiff.ruleset.schema import BUILDERS, PLACEHOLDERS, fix_for, load_rules

from .conftest import all_pairs, have

GOLDEN = Path(__file__).resolve().parent / "golden"
RUNNABLE = re.compile(r"`((?:debugfs|mdir|mtype|mcopy|minfo|xorriso|unsquashfs) [^`]*)`")
_PAIR = re.compile(r"fixtures/pairs/([A-Za-z0-9._-]+)/[ab]\.img")


def golden_commands() -> list[tuple[str, str]]:
    """Return ``(golden file name, command)`` for each runnable command in the golden outputs (deduplicated)."""
    out: dict[str, str] = {}
    for path in sorted(GOLDEN.glob("*.md")) + sorted((GOLDEN / "explain").glob("*.txt")):
        for cmd in RUNNABLE.findall(path.read_text(encoding="utf-8")):
            if _PAIR.search(cmd):  # a command on this pair's images (not a recipe step quoted in prose)
                out.setdefault(cmd, path.name)
    return [(name, cmd) for cmd, name in out.items()]


COMMANDS = golden_commands()


def test_goldens_name_runnable_commands() -> None:
    """The goldens carry the commands the issue asked for: debugfs on a whole-disk image, mtools, both sides."""
    cmds = [c for _n, c in COMMANDS]
    assert "debugfs -R 'dump \"/etc/os-release\" os-release.a' 'fixtures/pairs/report-esp-root/a.img?offset=36700160'" in cmds
    assert any(c.startswith("mcopy -n -i fixtures/pairs/vfat-fat16-content/a.img '::/") for c in cmds)
    assert any(c.startswith("mdir -i fixtures/pairs/report-esp-root/a.img@@1048576 ") for c in cmds)
    assert len(cmds) >= 40


@pytest.mark.parametrize(("golden", "cmd"), COMMANDS, ids=[c[:70] for _g, c in COMMANDS])
def test_golden_command_runs_as_written(golden: str, cmd: str, pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    argv = shlex.split(cmd)
    if not have(argv[0]):
        pytest.skip(f"{argv[0]} not installed")
    assert "<" not in cmd and "…" not in cmd, f"{golden}: unfilled placeholder in {cmd}"
    names = set(_PAIR.findall(cmd))
    assert len(names) == 1, cmd
    name = names.pop()
    a, b = pair(name)
    d = tmp_path / "fixtures" / "pairs" / name
    d.mkdir(parents=True)
    (d / "a.img").symlink_to(a)
    (d / "b.img").symlink_to(b)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)}
    r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, f"{golden}: {cmd}\n{r.stderr}"
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)} == before, "an input image changed"
    made = sorted(p.name for p in tmp_path.iterdir() if p.name != "fixtures")
    if argv[0] == "debugfs":
        request = argv[2]
        assert "not found" not in r.stderr.lower(), f"{cmd}: {r.stderr}"
        if request.startswith("dump "):
            out = shlex.split(request)[2]
            assert made == [out] and (tmp_path / out).stat().st_size > 0, (cmd, made, r.stderr)
        elif request.startswith("stat "):
            assert "Inode:" in r.stdout, r.stdout
    elif argv[0] == "mcopy":
        assert made == [argv[-1]] and (tmp_path / argv[-1]).stat().st_size > 0
    elif argv[0] == "mdir":
        assert "Directory for ::" in r.stdout
    elif argv[0] == "minfo":
        assert "sector size" in r.stdout
    elif argv[0] == "xorriso" and "-extract" in argv:
        assert made == [argv[-1]]
    elif argv[0] == "unsquashfs" and "-lls" in argv:
        assert "squashfs-root" in r.stdout
    elif argv[0] == "unsquashfs" and "-d" in argv:
        out = argv[argv.index("-d") + 1]
        assert made == [out] and (tmp_path / out / argv[-1].lstrip("/")).is_file(), (cmd, made)


def test_extracted_versions_are_the_two_contents(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The EXT014 commands of report-esp-root dump the two os-release files, which differ in the BUILD_ID line."""
    if not have("debugfs"):
        pytest.skip("debugfs not installed")
    cmds = [c for _g, c in COMMANDS if "report-esp-root" in c and "dump" in c]
    assert len(cmds) == 2
    a, b = pair("report-esp-root")
    d = tmp_path / "fixtures" / "pairs" / "report-esp-root"
    d.mkdir(parents=True)
    (d / "a.img").symlink_to(a)
    (d / "b.img").symlink_to(b)
    for cmd in cmds:
        subprocess.run(shlex.split(cmd), cwd=tmp_path, capture_output=True, check=True, timeout=60)
    ta = (tmp_path / "os-release.a").read_text()
    tb = (tmp_path / "os-release.b").read_text()
    assert 'BUILD_ID="24.05.20240501.abcdef0"' in ta and 'BUILD_ID="24.05.20240502.abcdef0"' in tb
    assert ta.replace("0501", "0502") == tb


# -- templates ---------------------------------------------------------------------------------------------------


def test_fill_keeps_braces_that_are_not_placeholders() -> None:
    values = {"path": "/etc/motd", "fs_a": "a.img"}
    assert fill("find t -exec touch {} + ; dump {path} {fs_a} {uuid_a}", values) == (
        "find t -exec touch {} + ; dump /etc/motd a.img <uuid_a>"
    )


def test_every_rule_has_a_fix_per_builder_table() -> None:
    """Every shipped rule carries [fix_for] with a cause name; templates only use known placeholders."""
    for r in load_rules().rules:
        table = fix_for(r.info)
        assert table, f"{r.id}: no [fix_for]"
        assert set(table) <= set(BUILDERS)
        assert getattr(r.info, "cause", ""), f"{r.id}: no cause name"
        for text in table.values():
            assert set(re.findall(r"\{([a-z_]+)\}", text)) <= PLACEHOLDERS


def test_nixos_options_are_cited() -> None:
    """A rule whose NixOS fix names an `image.repart.*` or `isoImage.*` option cites the nixpkgs module file."""
    for r in load_rules().rules:
        nixos = fix_for(r.info).get("nixos", "")
        if "image.repart." in nixos:
            assert any("nixos/modules/image/repart.nix" in ref for ref in r.info.references), r.id
        if "isoImage." in nixos:
            assert any("installer/cd-dvd/iso-image.nix" in ref for ref in r.info.references), r.id
        if "nix.settings." in nixos:
            assert any("nixos/modules/config/nix.nix" in ref for ref in r.info.references), r.id


def test_placeholders_of_a_whole_disk_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("report-esp-root")
    ext = next(f for f in report.findings if f.rule.id == "EXT014")
    values = placeholders(report, ext)
    assert values["partition_offset"] == "36700160" and values["partition"] == "2"
    assert values["path"] == "/etc/os-release" and values["file"] == "os-release"
    assert values["fs_a"].endswith("a.img?offset=36700160'")
    fat = next(f for f in report.findings if f.rule.id == "FAT001")
    values = placeholders(report, fat)
    assert values["hex_a"] == "B6D214D8" and values["mtools_a"].endswith("a.img@@1048576")


def test_builder_choice(analyzed) -> None:  # type: ignore[no-untyped-def]
    """--builder picks one entry; a rule without it falls back to plain; the default lists NixOS first."""
    report: Report = analyzed("repart-esp-root-random")
    seed = next(it for it in fix_items(report) if it.rule.id == "GPT001")
    assert [b for b, _t in seed.fixes] == ["nixos", "repart", "mkosi", "plain"]
    nixos = next(it for it in fix_items(report, "nixos") if it.rule.id == "EXT002")
    [(b, t)] = nixos.fixes
    assert b == "nixos" and t == (
        '`image.repart.mkfsOptions.ext4 = [ "-E nodiscard,lazy_itable_init=1,'
        'hash_seed=416c9864-db1e-4fe6-b3eb-087cd266aeef" ];` (systemd ≥ v260 passes hash_seed= itself)'
    )
    ext3 = next(f for f in report.findings if f.rule.id == "EXT003")
    assert [b for b, _t in rule_fixes(ext3.rule, placeholders(report, ext3), "mkosi")] == ["mkosi"]
    gpt6 = load_rules().get("GPT006")
    assert gpt6 is not None and [b for b, _ in rule_fixes(gpt6.info, {}, "nixos")] == ["plain"]


def test_order_is_most_impactful_first(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("repart-esp-root-random")
    items = fix_items(report)
    assert [it.rule.id for it in items] == ["EXT008", "EXT003", "GPT001", "EXT002", "FAT002"]
    assert [it.bytes for it in items] == sorted((it.bytes for it in items), reverse=True)


def test_compressed_and_fragmented_filesystems_get_no_offset(analyzed) -> None:  # type: ignore[no-untyped-def]
    """No command is filled in where it could not work: offsets of a decompressed input, an image file in pieces."""
    report: Report = analyzed("compressed-xz-vfat")
    f = report.findings[0]
    assert "mtools_a" not in placeholders(report, f) and "partition_offset" not in placeholders(report, f)
    assert all("<mtools_a>" in t for b, t in rule_fixes(f.rule, placeholders(report, f)) if "mdir" in t)
    assert "compressed-xz-vfat" in all_pairs()

"""GPT/MBR parsing: literal values from real systemd-repart/sgdisk/sfdisk images, cross-checked with libparted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from imgdiff.formats import parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.model import Extent, Node
from imgdiff.ruleset.predicates_gpt import derive_disk_guid, derive_partition_guid, seed_verdict
from imgdiff.source import ImageSource

from .conftest import PAIRS, all_pairs

NIXOS_SEED = "0867da16-f251-457d-a9e8-c31f9a3c220b"


def tree(path: Path) -> Node:
    with ImageSource(str(path)) as src:
        return parse_image(ParseContext(src=src))


def find(node: Node, kind: str, key: str | None = None) -> Node:
    for _keys, n in node.walk():
        if n.kind == kind and (key is None or n.key == key):
            return n
    raise AssertionError(f"no {kind} {key}")


def value(node: Node, name: str):  # type: ignore[no-untyped-def]
    f = node.field_named(name)
    assert f is not None, name
    return f.value


def test_repart_seeded_layout_literal_values(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("gpt-repart-two-seeds")
    t = tree(a)
    hdr = find(t, "gpt.header", "primary")
    assert value(hdr, "DiskGUID") == "b581fef7-24ed-4f31-990b-099ec86bba03"
    assert hdr.field_named("DiskGUID").extents == (Extent(512 + 0x38, 16),)  # type: ignore[union-attr]
    assert value(hdr, "MyLBA") == 1
    assert value(hdr, "AlternateLBA") == 98303
    assert value(hdr, "NumberOfPartitionEntries") == 128
    assert hdr.attrs["crc_ok"] is True
    backup = find(t, "gpt.header", "backup")
    assert value(backup, "MyLBA") == 98303
    assert backup.extents == (Extent(98303 * 512, 512),)
    e1 = find(t, "gpt.entry", "entry:1")
    assert value(e1, "UniquePartitionGUID") == "dac4058a-2fc0-4808-a7ef-b8b4501c00ce"
    assert e1.field_named("PartitionTypeGUID").display == "esp"  # type: ignore[union-attr]
    assert (value(e1, "StartingLBA"), value(e1, "EndingLBA")) == (2048, 34815)
    assert value(e1, "PartitionName") == "esp"
    parts = [c for c in t.children if c.kind == "partition"]
    assert [p.key for p in parts] == ["part:1:esp", "part:2:root-x86-64", "part:3:root-x86-64"]
    assert [p.label for p in parts][1] == "partition 2 (root-x86-64)"
    assert parts[0].extents == (Extent(2048 * 512, 16 << 20),)


def test_seed_derivation_matches_systemd_repart(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("gpt-repart-two-seeds")
    assert derive_disk_guid(NIXOS_SEED) == "b581fef7-24ed-4f31-990b-099ec86bba03"
    assert derive_partition_guid(NIXOS_SEED, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", 0) == (
        "dac4058a-2fc0-4808-a7ef-b8b4501c00ce"
    )
    # the second root-x86-64 partition uses the counter k=1
    third = find(tree(a), "gpt.entry", "entry:3")
    assert value(third, "UniquePartitionGUID") == derive_partition_guid(
        NIXOS_SEED, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", 1
    )
    assert seed_verdict(tree(a), NIXOS_SEED) == "all GUIDs are derived from this seed"
    assert seed_verdict(tree(b), NIXOS_SEED) == "no GUID is derived from this seed (another seed, or random)"
    assert seed_verdict(tree(b), "11111111-2222-4333-8444-555555555555") == "all GUIDs are derived from this seed"


def test_every_byte_of_a_disk_has_an_owner(pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("gpt-name-attrs")
    t = tree(a)
    top = sorted(e for c in t.children for e in c.extents)
    pos = 0
    for e in top:
        assert e.offset == pos, f"gap or overlap at {pos}"
        pos = e.end
    assert pos == a.stat().st_size
    # fields never overlap inside the GPT structures
    fields = sorted(e for _k, n in t.walk() for f in n.fields for e in f.extents)
    for x, y in itertools.pairwise(fields):
        assert x.end <= y.offset


def test_plain_mbr_disk(pair) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("mbr-sfdisk")
    t = tree(a)
    assert t.attrs["table"] == "mbr"
    mbr = find(t, "mbr")
    assert value(mbr, "Signature") == 0xAA55
    assert value(mbr, "PartitionRecord[0].OSType") == 0x0C
    assert value(mbr, "PartitionRecord[1].StartingLBA") == 34816
    parts = [c.key for c in t.children if c.kind == "partition"]
    assert parts == ["part:1:fat32-lba", "part:2:linux"]


def test_corrupt_primary_header_is_reported_and_backup_used(pair) -> None:  # type: ignore[no-untyped-def]
    _, b = pair("gpt-bad-crc")
    with ImageSource(str(b)) as src:
        ctx = ParseContext(src=src)
        t = parse_image(ctx)
    assert ctx.errors == ["primary GPT header: HeaderCRC32 0xefbeadde does not match computed 0x6d78fc49"]
    assert find(t, "gpt.header", "primary").attrs["crc_ok"] is False
    assert [c.key for c in t.children if c.kind == "partition"] == ["part:1:esp"]


GPT_PAIRS = [n for n in all_pairs() if n.startswith("gpt-")]


@pytest.mark.parametrize("name", GPT_PAIRS)
def test_partitions_agree_with_libparted(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    parted = pytest.importorskip("parted")
    for path in pair(name):
        dev = parted.getDevice(str(path))
        try:
            disk = parted.newDisk(dev)
        except parted.DiskException as exc:  # libparted refuses a corrupt primary header: so must we complain
            assert "corrupt" in str(exc)
            with ImageSource(str(path)) as src:
                ctx = ParseContext(src=src)
                parse_image(ctx)
            assert any("HeaderCRC32" in e for e in ctx.errors)
            continue
        theirs = sorted((p.number, p.geometry.start, p.geometry.length) for p in disk.partitions)
        t = tree(path)
        ours = sorted(
            (int(p.attrs["index"]), p.extents[0].offset // 512, p.extents[0].length // 512)  # type: ignore[call-overload]
            for p in t.children
            if p.kind == "partition"
        )
        assert ours == theirs
        names = {p.number: p.name for p in disk.partitions}
        for ent in find(t, "gpt.entries", "primary-entries").children:
            if ent.attrs["ptype"] != "unused":
                assert value(ent, "PartitionName") == names[ent.attrs["index"]]


# ---------------------------------------------------------------------------------------------------------------
# rules: each cause only where its values show it (issue 9)


def _fired(report) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {f.rule.id: f for f in report.findings}


def test_resized_entry_array_is_gpt007_not_stale_crc_or_removed_partition(analyzed) -> None:  # type: ignore[no-untyped-def]
    """sgdisk --resize-table=56 on B: was GPT006 (stale CRC) + GPT005 (entry 73 removed) + unclassified."""
    report = analyzed("gpt-resize-table")
    fired = _fired(report)
    assert set(fired) == {"GPT007"}
    f = fired["GPT007"]
    assert {(d.node_path, d.field, d.a, d.b) for d in f.causes} == {
        ("disk/gpt/primary", "NumberOfPartitionEntries", 128, 56),
        ("disk/gpt/backup", "NumberOfPartitionEntries", 128, 56),
    }
    folded = {(d.node_path, d.field, d.change): (d.a, d.b) for d in f.derived}
    assert folded[("disk/gpt/primary", "FirstUsableLBA", "modified")] == (34, 16)
    assert folded[("disk/gpt/backup", "FirstUsableLBA", "modified")] == (34, 16)
    assert folded[("disk/gpt/primary", "LastUsableLBA", "modified")] == (98270, 98288)
    assert folded[("disk/gpt/backup", "PartitionEntryLBA", "modified")] == (98271, 98289)
    assert ("disk/gpt/backup-entries/entry:73", "(node)", "removed") in folded
    for hdr in ("primary", "backup"):
        for crc in ("HeaderCRC32", "PartitionEntryArrayCRC32"):
            assert (f"disk/gpt/{hdr}", crc, "modified") in folded
    assert f.bytes == report.summary.bytes_differing == 100


def test_resized_array_crcs_are_valid_on_both_sides(pair) -> None:  # type: ignore[no-untyped-def]
    for path, count, first in zip(pair("gpt-resize-table"), (128, 56), (34, 16), strict=True):
        t = tree(path)
        for key in ("primary", "backup"):
            hdr = find(t, "gpt.header", key)
            assert value(hdr, "NumberOfPartitionEntries") == count
            assert value(hdr, "FirstUsableLBA") == first
            assert hdr.attrs["crc_ok"] is True and hdr.attrs["entries_crc_ok"] is True
        assert len(find(t, "gpt.entries", "backup-entries").children) == count


def test_stale_crc_needs_a_crc_that_does_not_match(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _fired(analyzed("gpt-bad-crc"))["GPT006"]
    assert [(d.node_path, d.field, d.a, d.b) for d in f.causes] == [
        ("disk/gpt/primary", "HeaderCRC32", 0x6D78FC49, 0xEFBEADDE)
    ]


def test_added_partition_is_one_cause(analyzed) -> None:  # type: ignore[no-untyped-def]
    """A third partition in B: was GPT001 (random GUID), GPT002 (geometry) and GPT003 (name) besides GPT005."""
    report = analyzed("gpt-partition-added")
    fired = _fired(report)
    assert set(fired) == {"GPT005"}
    f = fired["GPT005"]
    assert {(d.node_path, d.field) for d in f.causes} == {
        ("disk/gpt/primary-entries/entry:3", "PartitionTypeGUID"),
        ("disk/gpt/backup-entries/entry:3", "PartitionTypeGUID"),
    }
    folded = {(d.node_path, d.field): (d.a, d.b) for d in f.derived}
    assert folded[("disk/gpt/primary-entries/entry:3", "UniquePartitionGUID")] == (
        "00000000-0000-0000-0000-000000000000",
        "44444444-4444-4444-8444-444444444444",
    )
    assert folded[("disk/gpt/backup-entries/entry:3", "StartingLBA")] == (0, 67584)
    assert folded[("disk/gpt/primary-entries/entry:3", "PartitionName")] == ("", "home")
    assert f.bytes == report.summary.bytes_differing


def expected_rules(name: str) -> set[str]:
    """Return the rule ids listed in fixtures/pairs/<name>/expected-rules.txt (``#`` starts a comment)."""
    lines = (PAIRS / name / "expected-rules.txt").read_text().splitlines()
    return {line.split("#", 1)[0].split()[0] for line in lines if line.split("#", 1)[0].strip()}


TABLE_PAIRS = [n for n in all_pairs() if n.startswith(("gpt-", "mbr-"))]


@pytest.mark.parametrize("name", TABLE_PAIRS)
def test_fired_rules_are_exactly_the_recipe_causes(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    """A rule that fires on a pair whose recipe does not contain its cause is a misfire (issue 9)."""
    fired = {f.rule.id for f in analyzed(name).findings}
    assert fired == expected_rules(name)

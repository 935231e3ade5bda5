"""The explain stage across formats: derivation chains fold into their root cause."""

from __future__ import annotations

from imgdiff.ruleset.predicates_gpt import derive_fs_uuid


def test_repart_fs_uuid_derivation_literal() -> None:
    # partition 2 of fixtures/pairs/repart-esp-root-random/a.img and its ext4 s_uuid, made by systemd-repart 252
    assert derive_fs_uuid("0cd2359f-fd33-4774-9215-80c6801f8155") == "b4629b60-0770-4deb-a43d-f20396fc0119"
    # and the vfat serial of partition 1 is the first 4 bytes of its derived fs UUID (BS_VolID 0xffd4c923)
    assert derive_fs_uuid("7f12ab7e-edb1-420f-b514-3339a8743193").startswith("ffd4c923-")


def test_fs_ids_and_seeded_checksums_fold_into_the_guid_cause(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("repart-esp-root-random")
    [gpt] = [f for f in report.findings if f.rule.id == "GPT001"]
    refs = {d.ref for d in gpt.derived}
    assert {
        "disk/part:1:esp/vfat/boot/BS_VolID",
        "disk/part:1:esp/vfat/backup_boot/BS_VolID",
        "disk/part:2:root-x86-64/ext4/superblock/s_uuid",
        "disk/gpt/primary/HeaderCRC32",
    } <= refs
    # every ext4 metadata checksum seeded from s_uuid is folded here, none is left as a cause anywhere
    assert sum(1 for r in refs if r.endswith("/s_checksum")) >= 1
    for f in report.findings:
        for d in f.causes:
            assert d.field not in ("s_uuid", "BS_VolID", "s_checksum", "HeaderCRC32"), (f.rule.id, d.ref)
    assert report.summary.bytes_unexplained == 0


def test_fs_uuid_not_folded_when_not_derived(analyzed) -> None:  # type: ignore[no-untyped-def]
    """A vfat serial that is not repart's derivation (mkfs.vfat without -i) stays a cause of its own."""
    report = analyzed("report-esp-root")
    gpt = [f for f in report.findings if f.rule.id == "GPT001"]
    assert gpt and all(not d.ref.endswith("BS_VolID") for f in gpt for d in f.derived)
    assert any(d.ref.endswith("/boot/BS_VolID") for f in report.findings for d in f.causes)

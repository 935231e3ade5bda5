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


def _record_pair(raw_a: bytes, raw_b: bytes, base_a: int, base_b: int):  # type: ignore[no-untyped-def]
    """Two one-node trees whose node holds a record of the ext4 extent header layout (12 bytes)."""
    from imgdiff.formats.compiled import Compiled, Record
    from imgdiff.formats.ext4.c_ext4 import EXT4_EXTENT_HEADER
    from imgdiff.model import Extent, Node

    comp = Compiled(EXT4_EXTENT_HEADER)
    trees = []
    for raw, base in ((raw_a, base_a), (raw_b, base_b)):
        rec = Record(comp, raw, base, display={"eh_depth": lambda v: f"depth {v}"})
        node = Node(kind="t.hdr", key="hdr", label="header", extents=(Extent(base, 12),), record=rec)
        trees.append(Node(kind="t", key="root", label="root", extents=(Extent(0, 64),), children=[node]))
    return trees


def test_records_compare_member_by_member_without_building_every_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import struct

    from imgdiff.engine.attribute import Attributor
    from imgdiff.model import Extent
    from imgdiff.source import ImageSource, compare_regions

    a = struct.pack("<HHHHI", 0xF30A, 4, 4, 0, 7)
    b = struct.pack("<HHHHI", 0xF30A, 4, 4, 1, 9)  # eh_depth and eh_generation differ
    (tmp_path / "a").write_bytes(bytes(16) + a + bytes(36))
    (tmp_path / "b").write_bytes(bytes(16) + b + bytes(36))
    ta, tb = _record_pair(a, b, 16, 16)
    with ImageSource(str(tmp_path / "a")) as sa, ImageSource(str(tmp_path / "b")) as sb:
        dm = compare_regions(sa, sb, 0, 0, 64)
        diffs = Attributor(ta, tb, dm, sa, sb).run()
    got = sorted((d.field, d.a, d.b, d.display_a, d.extents_a, d.bytes) for d in diffs)
    assert got == [
        ("eh_depth", 0, 1, "depth 0", (Extent(22, 2),), 1),
        ("eh_generation", 7, 9, None, (Extent(24, 4),), 1),
    ]
    node = ta.children[0]
    assert node.fields == () and [f.name for f in node.all_fields()] == [
        "eh_magic", "eh_entries", "eh_max", "eh_depth", "eh_generation"
    ]
    assert node.field_named("eh_max").value == 4  # type: ignore[union-attr]


def test_record_moved_to_another_offset_is_a_move(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import struct

    from imgdiff.engine.attribute import Attributor
    from imgdiff.model import Change
    from imgdiff.source import ImageSource, compare_regions

    hdr = struct.pack("<HHHHI", 0xF30A, 4, 4, 0, 7)
    (tmp_path / "a").write_bytes(bytes(16) + hdr + bytes(36))
    (tmp_path / "b").write_bytes(bytes(32) + hdr + bytes(20))
    ta, tb = _record_pair(hdr, hdr, 16, 32)
    with ImageSource(str(tmp_path / "a")) as sa, ImageSource(str(tmp_path / "b")) as sb:
        dm = compare_regions(sa, sb, 0, 0, 64)
        diffs = Attributor(ta, tb, dm, sa, sb).run()
    # equal values: no field difference; the bytes that differ because it moved are attributed by offset to the
    # record's members on each side (built only for those bytes), as a move
    assert {(d.kind, d.change) for d in diffs} == {("t.hdr", Change.MOVED)}
    assert sum(d.bytes for d in diffs) == dm.total == 10


def test_differing_bytes_all_in_differences_skip_the_leftover_search(pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """When the differences' counts add up to every differing byte and their extents are disjoint, no byte is
    left over and the runs are not searched for one; a pair with moved data still is."""
    import pytest

    from imgdiff.engine import attribute
    from imgdiff.engine.analysis import analyze

    seen: list[bool] = []
    covered = attribute.Attributor._all_covered

    def spy(self: attribute.Attributor, diffs: list[object]) -> bool:
        seen.append(covered(self, diffs))  # type: ignore[arg-type]
        return seen[-1]

    mp: pytest.MonkeyPatch = monkeypatch
    mp.setattr(attribute.Attributor, "_all_covered", spy)
    report = analyze(*pair("ext4-staging-times"))
    assert seen == [True]
    assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (108, 0)
    assert sum(f.bytes for f in report.findings) == 108
    seen.clear()
    report = analyze(*pair("ext4-shifted"))
    assert seen == [False]
    assert [f.rule.id for f in report.findings] == ["EXT019"]


def test_inode_members_are_counted_from_the_slot_bytes(pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Differing inode members are counted from the XOR of the two slots (read from the image at the same
    place), not looked up in the diff map one by one; the counts are the diff map's."""
    from collections import Counter

    from imgdiff.engine.analysis import analyze
    from imgdiff.source import DiffMap

    calls: list[object] = []
    count_in = DiffMap.count_in
    monkeypatch.setattr(DiffMap, "count_in", lambda self, ext: calls.append(ext) or count_in(self, ext))
    report = analyze(*pair("ext4-staging-times"))
    inode = [d for f in report.findings for d in f.causes + f.derived if d.kind == "ext4.inode"]
    assert sorted(Counter((d.field, d.bytes) for d in inode).items()) == [
        (("i_atime", 1), 4), (("i_checksum_hi", 2), 20), (("i_checksum_lo", 2), 20), (("i_ctime", 1), 20),
        (("i_mtime", 1), 4),
    ]
    assert calls == []
    assert sum(d.bytes for d in inode) == report.summary.bytes_differing == 108


def test_slot_bytes_are_not_used_where_they_are_not_the_compared_bytes() -> None:
    from types import SimpleNamespace

    from imgdiff.engine.attribute import Attributor
    from imgdiff.source import VBASE

    def slot(off: int, raw: bytes) -> SimpleNamespace:
        return SimpleNamespace(raw_span=lambda: (off, raw))

    def xor_of(delta: int, ra: object, rb: object, length: int = 4096) -> object:
        host = SimpleNamespace(dm=SimpleNamespace(delta=delta, base=0, length=length))
        return Attributor._xor_of(host, ra, rb)  # type: ignore[arg-type]

    a, b = slot(256, b"\x01\x02\x03\x04"), slot(256, b"\x01\x00\x03\x05")
    assert xor_of(0, a, b) == (256, b"\x00\x02\x00\x01")
    assert xor_of(0, a, slot(512, b"\x01\x00\x03\x05")) is None  # not the same place
    assert xor_of(16, a, b) is None  # B is compared at a shifted offset
    assert xor_of(0, a, b, length=258) is None  # past the end of the shorter image
    assert xor_of(0, a, slot(256, b"\x01\x00")) is None  # a short read
    assert xor_of(0, slot(VBASE, b"\x01"), slot(VBASE, b"\x02"), length=VBASE + 8) is None  # a decoded space
    assert xor_of(0, a, object()) is None  # a record that cannot say where its bytes are

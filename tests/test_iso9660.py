"""ISO 9660: literal values from xorriso-built NixOS-like ISOs, every byte owned once, pycdlib as the oracle.

The fixture pairs (fixtures/recipes/iso-*.sh) are built by xorriso 1.5.4 with the arguments of nixpkgs'
make-iso9660-image.sh: Rock Ridge + Joliet, El Torito BIOS (isolinux, boot info table) and UEFI (the ESP image
appended as GPT partition 2), an isohybrid MBR and GPT.  ``iso-sde-dates`` A was built with
SOURCE_DATE_EPOCH=1700000000 (2023-11-14 22:13:20 UTC).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from imgdiff.formats import parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.formats.iso9660.eltorito import boot_info_csum, validation_checksum_ok
from imgdiff.model import Extent, Node, Report
from imgdiff.report import markdown
from imgdiff.ruleset.predicates_iso9660 import xorriso_mbr_id, xorriso_uuid_guid
from imgdiff.source import ImageSource

from .conftest import PAIRS, all_pairs

ISO_PAIRS = [p for p in all_pairs() if p.startswith("iso-")]
SDE_UUID = "2023111422132000"
PVD = 16 * 2048


def tree(path: Path) -> Node:
    with ImageSource(str(path)) as src:
        ctx = ParseContext(src=src)
        node = parse_image(ctx)
        node.attrs["_errors"] = tuple(ctx.errors)
        return node


def find(root: Node, kind: str, key: str | None = None) -> Node:
    for _keys, n in root.walk():
        if n.kind == kind and (key is None or n.key == key):
            return n
    raise AssertionError(f"no {kind} {key}")


def value(node: Node, name: str) -> Any:
    f = node.field_named(name)
    assert f is not None, f"{node.label}: no field {name}"
    return f.value


@pytest.fixture(scope="module")
def sde_a(pair) -> Node:  # type: ignore[no-untyped-def]
    a, _b = pair("iso-sde-dates")
    return tree(a)


# -- literal values ------------------------------------------------------------------------------------------------


def test_primary_and_joliet_descriptors(sde_a: Node) -> None:
    assert sde_a.kind == "disk" and sde_a.attrs["table"] == "iso9660"
    pvd = find(sde_a, "iso9660.volume_descriptor", "primary")
    assert value(pvd, "standard_identifier") == "CD001"
    assert value(pvd, "volume_identifier") == "nixos-minimal-25.05-x86_64"
    assert value(pvd, "volume_space_size") == 1024
    assert value(pvd, "logical_block_size") == 2048
    assert value(pvd, "path_table_size") == 74
    assert (value(pvd, "location_of_type_l_path_table"), value(pvd, "location_of_type_m_path_table")) == (27, 28)
    assert value(pvd, "publisher_identifier") == "NIXOS"
    assert value(pvd, "data_preparer_identifier").startswith("XORRISO-1.5.4 ")
    created = pvd.field_named("volume_creation_date_and_time")
    assert created is not None and created.value == SDE_UUID
    assert created.extents == (Extent(PVD + 813, 17),) and created.display == "2023-11-14 22:13:20.00 +00:00"
    assert value(pvd, "volume_expiration_date_and_time") == "0" * 16
    root = find(pvd, "iso9660.root_record")
    assert value(root, "location_of_extent") == 20 and value(root, "data_length") == 2048
    assert {d.field for d in root.derived} >= {"location_of_extent", "recording_date_and_time"}
    joliet = find(sde_a, "iso9660.volume_descriptor", "joliet")
    assert value(joliet, "volume_identifier") == "nixos-minimal-25"  # 32 bytes of UCS-2: 16 characters
    assert value(joliet, "escape_sequences") == "%/E"
    copy = next(d for d in joliet.derived if d.field == "volume_creation_date_and_time")
    assert copy.covers == (Extent(PVD + 813, 17),)
    assert find(sde_a, "iso9660.volume_descriptor", "terminator").attrs["lba"] == 19


def test_rock_ridge_records(sde_a: Node) -> None:
    dot = find(sde_a, "iso9660.dirrec", "/.")
    assert value(dot, "SP.check_bytes") == b"\xbe\xef"
    assert value(dot, "PX.posix_file_mode") == 0o40555
    assert value(dot, "CE.block_location_of_continuation_area") == 21
    assert value(dot, "CE.length_of_continuation_area") == 237
    er = dot.field_named("ER.ext_id")
    assert er is not None and er.value == "RRIP_1991A" and er.extents == (Extent(21 * 2048 + 8, 10),)
    assert Extent(21 * 2048, 237) in dot.extents  # the record owns its continuation area
    rec = find(sde_a, "iso9660.dirrec", "/version.txt")
    assert value(rec, "file_identifier") == "VERSION.TXT;1"
    assert value(rec, "NM.name_content") == "version.txt"
    assert (value(rec, "location_of_extent"), value(rec, "data_length")) == (575, 22)
    px = rec.field_named("PX.posix_file_mode")
    assert px is not None and px.display == "file 0444"
    tf = rec.field_named("TF.modify")
    assert tf is not None and tf.value == 1_700_000_000 and tf.display == "2023-11-14 22:13:20 +00:00"
    assert tf.extents == (Extent(rec.extents[0].offset + 87, 7),)
    jrec = find(sde_a, "iso9660.joliet_dirrec", "/version.txt")
    assert value(jrec, "file_identifier") == "version.txt"  # xorriso writes Joliet names without ";1"
    assert {d.field: d.covers for d in jrec.derived}["location_of_extent"] == (Extent(rec.extents[0].offset + 2, 8),)
    link = find(sde_a, "iso9660.dirrec", "/isolinux/syslinux.cfg")
    sl = link.field_named("SL.component_area")
    assert sl is not None and sl.display == "isolinux.cfg" and link.attrs["file_type"] == "symlink"
    assert value(link, "PX.posix_file_mode") == 0o120555 and value(link, "data_length") == 0
    boot_dotdot = find(sde_a, "iso9660.dirrec", "/boot/..")
    assert {d.field: d.covers for d in boot_dotdot.derived}["TF.modify"] == (Extent(40960 + 82, 7),)


def test_files_and_nested_efi_image(sde_a: Node) -> None:
    f = find(sde_a, "iso9660.file", "/version.txt")
    data = f.field_named("data")
    assert data is not None and data.extents == (Extent(575 * 2048, 22),) and f.attrs["content"] is True
    slack = f.field_named("slack")
    assert slack is not None and slack.extents == (Extent(575 * 2048 + 22, 2048 - 22),)
    assert slack.display == "2026 bytes, all zero"
    efi = find(sde_a, "iso9660.file", "/boot/efi.img")  # a plain file until the engine's nesting rounds
    assert efi.field_named("data").extents == (Extent(efi.attrs["lba"] * 2048, 1 << 20),)  # type: ignore[union-attr]
    cat = find(sde_a, "iso9660.file", "/.boot.cat")
    assert cat.attrs["boot_catalog"] is True and cat.fields == () and cat.extents == ()


def test_el_torito_and_boot_info_table(sde_a: Node) -> None:
    with ImageSource(str(PAIRS / "iso-sde-dates" / "a.img")) as src:
        raw = src.read(38 * 2048, 32)
        csum = boot_info_csum(src.read, 39 * 2048, 2048)
    assert validation_checksum_ok(raw)
    initial = find(sde_a, "iso9660.eltorito_entry", "initial")
    assert (value(initial, "load_rba"), value(initial, "sector_count")) == (39, 4)
    assert value(find(sde_a, "iso9660.dirrec", "/isolinux/isolinux.bin"), "location_of_extent") == 39
    uefi = find(sde_a, "iso9660.eltorito_entry", "section:1:entry:1")
    assert uefi.attrs["platform"] == "UEFI"
    assert (value(uefi, "load_rba"), value(uefi, "sector_count")) == (1024, 2048)
    esp = find(sde_a, "gpt.entry", "entry:2")
    assert value(esp, "StartingLBA") == 1024 * 4 and value(esp, "EndingLBA") - value(esp, "StartingLBA") + 1 == 2048
    table = find(sde_a, "iso9660.boot_info_table")
    assert [value(table, n) for n in ("bi_pvd", "bi_file", "bi_length")] == [16, 39, 2048]
    assert value(table, "bi_csum") == csum
    isolinux = find(sde_a, "iso9660.file", "/isolinux/isolinux.bin")
    assert isolinux.field_named("data").extents == (Extent(39 * 2048, 8), Extent(39 * 2048 + 64, 2048 - 64))  # type: ignore[union-attr]
    mbr = find(sde_a, "mbr.protective")
    assert mbr.attrs["isohybrid_boot_lba"] == 39 * 4
    assert any(d.field == "BootCode" for d in mbr.derived)


def test_hybrid_tables_are_xorrisos_derivation_of_the_volume_date(sde_a: Node) -> None:
    assert xorriso_mbr_id(SDE_UUID) == 0x624E3853
    assert xorriso_uuid_guid(SDE_UUID) == "33323032-3131-4431-b230-303231333230"
    assert value(find(sde_a, "mbr.protective"), "UniqueMBRDiskSignature") == 0x624E3853
    assert value(find(sde_a, "gpt.header", "primary"), "DiskGUID") == xorriso_uuid_guid(SDE_UUID)
    entries = find(sde_a, "gpt.entries", "primary-entries")
    for k in (1, 2, 3):
        assert value(find(entries, "gpt.entry", f"entry:{k}"), "UniquePartitionGUID") == xorriso_uuid_guid(SDE_UUID, k)
    assert find(entries, "gpt.entry", "entry:1").attrs["iso_view"] == "the ISO 9660 volume"
    assert [c.key for c in sde_a.children] == [
        "iso9660", "mbr", "gpt", "part:2:esp", "part:3:microsoft-basic-data", "padding@3452928"]
    esp = next(c for c in sde_a.children if c.key == "part:2:esp")
    assert esp.attrs["copy_of"] == "/boot/efi.img" and esp.children[0].kind == "vfat"
    assert all(n.derived for _k, n in esp.walk() if n.fields)  # every field a copy of /boot/efi.img's
    gap = next(c for c in sde_a.children if c.key == "part:3:microsoft-basic-data")
    assert gap.children[0].kind == "iso9660.padding"


# -- every byte owned once, for every ISO fixture ------------------------------------------------------------------


@pytest.mark.parametrize("name", ISO_PAIRS)
@pytest.mark.parametrize("side", ["a", "b"])
def test_every_byte_has_exactly_one_owner(pair, name: str, side: str) -> None:  # type: ignore[no-untyped-def]
    path = pair(name)[0 if side == "a" else 1]
    root = tree(path)
    assert root.attrs["_errors"] == ()
    spans = sorted(e for _k, n in root.walk() for f in n.all_fields() for e in f.extents if e.length)
    spans += [e for _k, n in root.walk() if n.raw for e in n.extents]
    spans.sort()
    pos = 0
    for e in spans:
        assert e.offset == pos, f"{name}/{side}: {'overlap' if e.offset < pos else 'gap'} at {min(pos, e.offset)}"
        pos = e.end
    assert pos == path.stat().st_size
    assert not any(n.raw for _k, n in root.walk())


# -- pycdlib (read-only) as the oracle -----------------------------------------------------------------------------


class _HideSystemArea(io.RawIOBase):
    """The image with its first 32 KiB read as zeros: pycdlib refuses an isohybrid MBR with a 0xEE partition."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = self.f.seek(off, whence)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, b: Any) -> int:
        self.f.seek(self.pos)
        data = self.f.read(len(b))
        if self.pos < 32768:
            z = min(len(data), 32768 - self.pos)
            data = bytes(z) + data[z:]
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        self.f.close()
        super().close()


@pytest.mark.parametrize("name", ISO_PAIRS)
def test_pycdlib_agrees_on_tree_names_times_and_el_torito(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    pycdlib = pytest.importorskip("pycdlib")
    for path in pair(name):
        root = tree(path)
        ours = {n.key: n for _k, n in root.walk() if n.kind == "iso9660.dirrec"}
        joliet = {n.key for _k, n in root.walk() if n.kind == "iso9660.joliet_dirrec" and not n.attrs.get("dot")}
        iso = pycdlib.PyCdlib()
        raw = _HideSystemArea(path)
        iso.open_fp(io.BufferedReader(raw))
        try:
            seen = 0
            for top, dirs, files in iso.walk(rr_path="/"):
                for item in dirs + files:
                    p = f"{top.rstrip('/')}/{item}"
                    rec = iso.get_record(rr_path=p)
                    mine = ours[p]
                    assert value(mine, "location_of_extent") == rec.extent_location(), p
                    assert value(mine, "data_length") == rec.data_length, p
                    assert value(mine, "NM.name_content") == rec.rock_ridge.name().decode(), p
                    if rec.rock_ridge.is_symlink():
                        assert mine.attrs["symlink"] == rec.rock_ridge.symlink_path().decode(), p
                    # pycdlib's TF access_time holds the first stamp recorded: the modify time (libraries.md).
                    t = rec.rock_ridge.dr_entries.tf_record.access_time
                    assert value(mine, "TF.modify") == _seconds(t), p
                    seen += 1
            assert seen == len([k for k, n in ours.items() if not n.attrs.get("dot")])
            jnames = set()
            for top, dirs, files in iso.walk(joliet_path="/"):
                jnames.update(f"{top.rstrip('/')}/{x}" for x in dirs + files)
            assert {_strip_version(x) for x in jnames} == joliet
            cat = iso.eltorito_boot_catalog
            initial = find(root, "iso9660.eltorito_entry", "initial")
            assert (value(initial, "load_rba"), value(initial, "sector_count")) == (
                cat.initial_entry.load_rba, cat.initial_entry.sector_count)
            uefi = find(root, "iso9660.eltorito_entry", "section:1:entry:1")
            entry = cat.sections[0].section_entries[0]
            assert (value(uefi, "load_rba"), value(uefi, "sector_count")) == (entry.load_rba, entry.sector_count)
            assert value(find(root, "iso9660.eltorito_section_header"), "platform_id") == cat.sections[0].platform_id
        finally:
            iso.close()
            raw.close()


def _seconds(t: Any) -> int:
    import calendar

    base = calendar.timegm((1900 + t.years_since_1900, t.month, t.day_of_month, t.hour, t.minute, t.second, 0, 0, 0))
    return base - t.gmtoffset * 15 * 60


def _strip_version(p: str) -> str:
    return p[: p.rindex(";")] if ";" in p else p


# -- the rules -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ISO_PAIRS)
def test_fired_rules_are_exactly_the_expected_ones(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    expected = set()
    for line in (PAIRS / name / "expected-rules.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            expected.add(line.split()[0])
    report: Report = analyzed(name)
    assert {f.rule.id for f in report.findings} == expected
    assert report.summary.bytes_unexplained == 0


def test_no_sde_pair_names_dates_and_guids_with_their_fix(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("iso-no-sde")
    by = {f.rule.id: f for f in report.findings}
    dates = by["ISO001"]
    assert {d.field for d in dates.causes} == {"volume_creation_date_and_time", "volume_modification_date_and_time"}
    folded = {(d.kind, d.field) for d in dates.derived}
    assert ("mbr.protective", "UniqueMBRDiskSignature") in folded
    assert ("iso9660.volume_descriptor", "volume_creation_date_and_time") in folded  # the Joliet copy
    assert ("iso9660.dirrec", "recording_date_and_time") in folded  # root, /.boot.cat
    assert "xorriso's clock" in dates.note and "SOURCE_DATE_EPOCH" in dates.rule.fix
    guids = by["ISO002"]
    assert {d.field for d in guids.causes} == {"DiskGUID", "UniquePartitionGUID"} and len(guids.causes) == 8
    assert {d.field for d in guids.derived} == {"HeaderCRC32", "PartitionEntryArrayCRC32"}
    assert "gpt_disk_guid" in guids.rule.fix
    assert {d.attrs["path"] for d in by["ISO004"].causes} >= {"/boot/bzImage", "/version.txt", "/boot"}


def test_sde_dates_pair_folds_the_derived_ids(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("iso-sde-dates")
    (finding,) = report.findings
    folded = {(d.kind, d.field) for d in finding.derived}
    assert {("gpt.header", "DiskGUID"), ("gpt.entry", "UniquePartitionGUID"),
            ("mbr.protective", "UniqueMBRDiskSignature")} <= folded
    assert "was pinned" in finding.note


def test_esp_copy_folds_into_the_efi_image_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("iso-esp-volid")
    assert report.tree_a is not None
    efi = find(report.tree_a, "iso9660.file", "/boot/efi.img")
    assert efi.field_named("data") is None and efi.attrs["nested"] == "vfat"  # parsed in place by the engine
    assert find(efi, "vfat.boot_sector").field_named("BS_VolID").extents == (  # type: ignore[union-attr]
        Extent(efi.attrs["lba"] * 2048 + 39, 4),)
    (finding,) = report.findings
    # mkfs.vfat without -i and --invariant: the volume ID and the label entry's build time
    assert {d.field for d in finding.causes} == {"BS_VolID", "DIR_CrtTime", "DIR_WrtTime"}
    assert all(d.node_path.startswith("disk/iso9660/files//boot/efi.img/vfat/") for d in finding.causes)
    label = "disk/part:2:esp/vfat/dir://:volume_label"
    assert {d.node_path for d in finding.derived} == {"disk/part:2:esp/vfat/boot", label}
    assert finding.rule.layer == "nixos-module" and "iso-image.nix" in finding.rule.fix


def test_moved_files_fold_into_the_allocation_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report: Report = analyzed("iso-sort-weight")
    (finding,) = report.findings
    moved = {d.attrs["path"]: (d.a, d.b) for d in finding.causes}
    assert moved["/isolinux/isolinux.cfg"] == (572, 40) and moved["/boot/efi.img"] == (52, 53)
    assert finding.bytes == report.summary.bytes_differing


# -- the report ----------------------------------------------------------------------------------------------------


def test_markdown_report_on_an_iso_pair(analyzed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    monkeypatch.setattr(shutil, "which", lambda _exe: None)
    report: Report = analyzed("iso-no-sde")
    report = dataclasses.replace(report, context={"config": "iso-no-sde"})
    text = markdown.render(report)
    assert "| layout | iso9660 | iso9660 |" in text
    assert "| whole image | ISO 9660 (nixos-minimal-25.05-x86\\_64) |" in text
    assert "**Not reproducible:** 3 causes — isohybrid GPT GUIDs, Rock Ridge atimes/ctimes, ISO volume dates" in text
    assert "349 of 3485696 bytes differ: 349 explained." in text
    for rule in ("ISO001", "ISO002", "ISO004"):
        assert f"`{rule}`" in text
    assert "- layer: **mkfs**" in text
    assert "xorriso/libisofs" in text and "SOURCE_DATE_EPOCH" in text
    assert "not yet tracked down" not in text.split("## Tracked-down causes", 1)[0].split("| whole image")[1]
    assert "unclassified" not in text


# -- hostile and unusual input -------------------------------------------------------------------------------------


def _mutated(tmp_path: Path, src: Path, patches: dict[int, bytes], size: int | None = None) -> Path:
    out = tmp_path / "x.img"
    data = bytearray(src.read_bytes() if size is None else src.read_bytes()[:size])
    for off, b in patches.items():
        data[off : off + len(b)] = b
    out.write_bytes(bytes(data))
    return out


def test_truncated_and_corrupt_images_give_partial_results(pair, sde_a: Node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("iso-sde-dates")

    def at(key: str, name: str) -> int:
        f = find(sde_a, "iso9660.dirrec", key).field_named(name)
        assert f is not None
        return f.extents[0].offset

    def both(v: int) -> bytes:
        return v.to_bytes(4, "little") + v.to_bytes(4, "big")

    cases: dict[str, tuple[dict[int, bytes], int | None]] = {
        "truncated": ({}, 48 * 1024),
        "directory loop": ({at("/boot", "location_of_extent"): both(20)}, None),
        "bad record length": ({at("/boot", "length_of_directory_record"): b"\xff"}, None),
        "CE beyond the volume": ({at("/.", "CE.block_location_of_continuation_area"): both(10**6)}, None),
        "file covers the volume": ({at("/nix-store.squashfs", "location_of_extent"): both(0),
                                    at("/nix-store.squashfs", "data_length"): both(1024 * 2048)}, None),
        "garbage descriptor": ({19 * 2048: b"\x07CD001\x01" + b"\xee" * 100}, None),
    }
    for what, (patches, size) in cases.items():
        path = _mutated(tmp_path, a, patches, size)
        root = tree(path)
        assert root.kind == "disk", what
        if what != "garbage descriptor":
            assert root.attrs["_errors"], what
    empty = tmp_path / "empty.img"
    empty.write_bytes(bytes(40 * 1024))
    assert tree(empty).kind == "image"


def test_plain_iso_without_system_area_tables(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("iso-content")
    path = _mutated(tmp_path, a, {0: bytes(32768)}, 1024 * 2048)
    root = tree(path)
    iso = root.children[0]
    assert root.attrs.get("table") == "iso9660" and iso.kind == "iso9660"
    area = find(root, "iso9660.system_area")
    assert area.extents == (Extent(0, 32768),) and value(area, "system_area") == 32768


def test_legacy_layout_efi_image_inside_the_iso(pair) -> None:  # type: ignore[no-untyped-def]
    """Before the ESP was appended, the GPT behind a hybrid MBR pointed at /boot/efi.img inside the ISO."""
    a, _b = pair("iso-legacy-guid")
    root = tree(a)
    assert [c.key for c in root.children] == ["iso9660", "mbr", "gpt"]
    assert find(root, "mbr").kind == "mbr"  # a hybrid MBR (0x00 and 0xEF partitions), no 0xEE
    entries = find(root, "gpt.entries", "primary-entries")
    efi = find(root, "iso9660.file", "/boot/efi.img")
    assert find(entries, "gpt.entry", "entry:2").attrs["iso_view"] == "file /boot/efi.img"
    assert value(find(entries, "gpt.entry", "entry:2"), "StartingLBA") == efi.attrs["lba"] * 4
    uefi = find(root, "iso9660.eltorito_entry", "section:1:entry:1")
    assert value(uefi, "load_rba") == efi.attrs["lba"] and efi.attrs["eltorito"] == "section:1:entry:1"


# -- records described, not built -----------------------------------------------------------------------------------


def test_directory_records_are_described_exactly_as_their_built_fields(pair) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.formats.iso9660.records import fixed_fields, tail_fields, whole_record
    from imgdiff.formats.iso9660.volume import Volume

    for path in pair("iso-content"):
        with ImageSource(str(path)) as src:
            ctx = ParseContext(src=src)
            vol = Volume(ctx, 0, src.size, "image")
            described, built = 0, []
            for t, joliet in ((vol.tree, False), (vol.jtree, True)):
                assert t is not None
                for d in t.dirs.values():
                    for r in d.recs:
                        raw = ctx.read(r.offset, r.length)
                        whole = whole_record(r, raw, joliet)
                        if whole is None:
                            built.append(r.path)
                            continue
                        assert whole.fields() == fixed_fields(raw, r.offset) + tail_fields(r, raw, joliet), r.path
                        described += 1
            # the root "." record keeps built fields: its ER entry lies in a continuation area
            assert (described, built) == (58, ["/."])
            rec = vol.tree.by_path["/version.txt"]
            whole = whole_record(rec, ctx.read(rec.offset, rec.length), False)
            assert whole is not None and whole.field("TF.modify") == whole.fields()[22]
            assert [f.name for f in whole.fields()[20:25]] == ["TF.system_use_entry_version", "TF.flags", "TF.modify",
                                                              "TF.access", "TF.attributes"]


def test_a_changed_mtime_builds_only_the_differing_members(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("iso-file-mtime")
    ta, tb = tree(a), tree(b)
    ra, rb = find(ta, "iso9660.dirrec", "/version.txt"), find(tb, "iso9660.dirrec", "/version.txt")
    assert ra.fields == () and ra.record is not None and rb.record is not None and ra.record.comparable(rb.record)
    assert len(ra.record.fields()) == 30
    assert [(fa.name, fa.value, fb.value) for fa, fb in ra.record.diff(rb.record)] == [
        ("recording_date_and_time", 1, 1000000000), ("TF.modify", 1, 1000000000), ("TF.access", 1, 1000000000),
        ("TF.attributes", 1, 1000000000)]


def test_record_whose_name_runs_past_its_length_is_clamped(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Fuzz finding (bench/fuzz_inputs.py, seed 23): a directory record whose len_fi runs past len_dr raised
    IndexError reading the padding byte; now the identifier is clamped to the record and the run explains."""
    from imgdiff.cli import main

    a, b = pair("iso-sort-weight")
    ca, cb = tmp_path / "a.img", tmp_path / "b.img"
    shutil.copyfile(a, ca)
    shutil.copyfile(b, cb)
    with open(ca, "r+b") as fh:
        fh.seek(0)
        x = fh.read(4096)
        fh.seek(65536)
        y = fh.read(4096)
        fh.seek(0)
        fh.write(y)
        fh.seek(65536)
        fh.write(x)
        for off, mask in ((3466409, 32), (41100, 2)):
            fh.seek(off)
            v = fh.read(1)[0]
            fh.seek(off)
            fh.write(bytes([v ^ mask]))
    with open(cb, "r+b") as fh:
        fh.seek(25441)
        v = fh.read(1)[0]
        fh.seek(25441)
        fh.write(bytes([v ^ 128]))
        fh.truncate(506185)
    assert main(["explain", "--json", str(ca), str(cb)]) == 1

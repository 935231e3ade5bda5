"""FAT12/16/32 parsing and the vfat rules: literal values from real mkfs.vfat/mtools images, a pyfatfs cross-check
of the tree, byte coverage of every region, hostile input, and end-to-end findings on every vfat fixture pair."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from imgdiff.errors import ParseError
from imgdiff.formats import gpt, parse_image, vfat
from imgdiff.formats.base import ParseContext
from imgdiff.model import Change, Extent, Node
from imgdiff.source import ImageSource

from .conftest import PAIRS

VFAT_PAIRS = sorted(p.name for p in PAIRS.iterdir() if p.name.startswith("vfat-") and (p / "a.img.xz").exists())
BARE_PAIRS = [p for p in VFAT_PAIRS if p != "vfat-repart-seeds"]


# ---------------------------------------------------------------------------------------------------------------
# helpers


def parse_file(path: Path) -> Node:
    """Return the vfat node of a bare FAT image."""
    with ImageSource(str(path)) as src:
        return vfat.parse(ParseContext(src=src), 0, src.size, "image")


def vfat_of(root: Node) -> Node:
    for _keys, n in root.walk():
        if n.kind == "vfat":
            return n
    raise AssertionError("no vfat node")


def find(root: Node, kind: str, key: str) -> Node:
    for _keys, n in root.walk():
        if n.kind == kind and n.key == key:
            return n
    raise AssertionError(f"no {kind} {key}")


def value(node: Node, name: str):  # type: ignore[no-untyped-def]
    f = node.field_named(name)
    assert f is not None, f"{node.key}: no field {name}"
    return f.value


def dos_time(h: int, m: int, s: int) -> int:
    return (h << 11) | (m << 5) | (s // 2)


def dos_date(y: int, mo: int, d: int) -> int:
    return ((y - 1980) << 9) | (mo << 5) | d


def seq_bytes(n: int, prefix: str = "") -> bytes:
    """Return what ``seq 1 n | sed "s/^/prefix/"`` prints (the fixture recipes' deterministic file content)."""
    return "".join(f"{prefix}{i}\n" for i in range(1, n + 1)).encode()


def copy_image(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


# ---------------------------------------------------------------------------------------------------------------
# literal values


def test_fat32_boot_sector_fsinfo_and_backup(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-dirtimes")
    t = parse_file(a)
    assert t.kind == "vfat" and t.key == "vfat" and t.label == "vfat (FAT32)"
    assert t.attrs["fat_type"] == "FAT32" and t.attrs["scope"] is True and t.attrs["fs"] == "vfat"
    assert t.extents == (Extent(0, 34 << 20),)
    boot = find(t, "vfat.boot_sector", "boot")
    volid = boot.field_named("BS_VolID")
    assert volid is not None and volid.value == 0x2E24EC82 and volid.display == "2E24-EC82"
    assert volid.extents == (Extent(0x43, 4),)
    assert value(boot, "BS_OEMName") == "mkfs.fat"
    assert value(boot, "BPB_BytsPerSec") == 512
    assert value(boot, "BPB_NumFATs") == 2
    assert value(boot, "BPB_RootClus") == 2
    assert value(boot, "BS_FilSysType") == "FAT32   "
    assert value(boot, "Signature_word") == 0xAA55
    backup = find(t, "vfat.backup_boot_sector", "backup_boot")
    bvol = backup.field_named("BS_VolID")
    assert bvol is not None and bvol.extents == (Extent(6 * 512 + 0x43, 4),)
    derived = {d.field: d for d in backup.derived}
    assert derived["BS_VolID"].covers == (Extent(0x43, 4),)
    fsinfo = find(t, "vfat.fsinfo", "fsinfo")
    assert value(fsinfo, "FSI_LeadSig") == 0x41615252
    free = value(fsinfo, "FSI_Free_Count")
    assert free == fsinfo.attrs["free_clusters"]  # mkfs.fat/mtools keep the hint exact
    assert fsinfo.field_named("FSI_Free_Count").extents == (Extent(512 + 0x1E8, 4),)  # type: ignore[union-attr]
    assert {d.field for d in fsinfo.derived} == {"FSI_Free_Count", "FSI_Nxt_Free"}
    bfs = find(t, "vfat.backup_fsinfo", "backup_fsinfo")
    assert bfs.extents == (Extent(7 * 512, 512),)


def test_fat32_free_count_literal(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-volid")
    fsinfo = find(parse_file(a), "vfat.fsinfo", "fsinfo")
    assert value(fsinfo, "FSI_Free_Count") == 67932  # minfo: "free clusters=67932"
    assert value(fsinfo, "FSI_Nxt_Free") == 597


def test_dirent_times_and_file_content(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("vfat-dirtimes")
    ta, tb = parse_file(a), parse_file(b)
    boot_a = find(ta, "vfat.dirent", "/EFI/BOOT")
    assert boot_a.attrs["file_type"] == "dir" and boot_a.attrs["path"] == "/EFI/BOOT"
    wt = boot_a.field_named("DIR_WrtTime")
    assert wt is not None and wt.value == dos_time(7, 8, 0) and wt.display == "2024-05-06 07:08:00"
    assert value(boot_a, "DIR_WrtDate") == dos_date(2024, 5, 6)
    assert value(find(tb, "vfat.dirent", "/EFI/BOOT"), "DIR_WrtTime") == dos_time(7, 8, 10)
    # the file keeps its 2000-01-01 source mtime (mcopy -m)
    f = find(ta, "vfat.dirent", "/EFI/BOOT/BOOTX64.EFI")
    assert value(f, "DIR_WrtDate") == dos_date(2000, 1, 1) and value(f, "DIR_WrtTime") == 0
    content = seq_bytes(30000)
    assert value(f, "DIR_FileSize") == len(content)
    node = find(ta, "vfat.file", "/EFI/BOOT/BOOTX64.EFI")
    assert node.attrs["content"] is True and node.attrs["path"] == "/EFI/BOOT/BOOTX64.EFI"
    data = node.field_named("data")
    assert data is not None and data.value == hashlib.sha256(content).hexdigest()
    assert data.size == len(content)
    slack = node.field_named("slack")
    assert slack is not None and slack.size == (-len(content)) % 512
    with ImageSource(str(a)) as src:
        assert b"".join(src.read(e.offset, e.length) for e in data.extents) == content


def test_long_names_dot_entries_and_lfn_checksum(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-order")
    t = parse_file(a)
    e = find(t, "vfat.dirent", "/EFI/Linux/nixos-generation-2.efi")
    assert e.attrs["lfn"] is True and e.attrs["short_name"] == "NIXOS-~2.EFI"
    lfns = [c for c in e.children if c.kind == "vfat.lfn"]
    assert [c.key for c in lfns] == [f"/EFI/Linux/nixos-generation-2.efi#lfn{n}" for n in (2, 1)]
    short = e.field_named("DIR_Name")
    assert short is not None and short.value == "NIXOS-~2EFI"
    name_ext = Extent(short.extents[0].offset, 11)
    for c in lfns:
        assert value(c, "LDIR_Chksum") == vfat.lfn_checksum(b"NIXOS-~2EFI")
        assert c.derived[0].field == "LDIR_Chksum" and c.derived[0].covers == (name_ext,)
    # dirent extents: the LFN slots and the short entry, 32 bytes each
    assert sum(x.length for x in e.extents) == 32 * 3
    # an 8.3 name stored upper case with the DIR_NTRes lower-case bit and no LFN (pyfatfs would say LOADER)
    loader = find(t, "vfat.dirent", "/loader")
    assert loader.attrs["lfn"] is False and value(loader, "DIR_Name") == "LOADER     "
    assert value(loader, "DIR_NTRes") == 0x08
    dot = find(t, "vfat.dirent", "/EFI/Linux/.")
    assert dot.attrs["dot"] is True and dot.attrs["file_type"] == "dir"


def test_fat_copies_are_fields_and_derived(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-fat12-filetimes")
    t = parse_file(a)
    assert t.attrs["fat_type"] == "FAT12"
    fats = [c for c in t.children if c.kind == "vfat.fat"]
    assert [f.key for f in fats] == ["fat:0", "fat:1"]
    f0, f1 = fats
    first = f0.field_named("FAT[0,1]")
    assert first is not None and first.extents[0].length == 3
    assert first.value[0] & 0xFF == 0xF8  # type: ignore[index]  # media byte
    delta = f1.extents[0].offset - f0.extents[0].offset
    d = {x.field: x for x in f1.derived}
    for fld in f1.fields:
        assert d[fld.name].covers == tuple(e.shifted(-delta) for e in fld.extents)
    # FAT16: one field per entry, owner path in the display
    a16, _ = pair("vfat-fat16-content")
    t16 = parse_file(a16)
    assert t16.attrs["fat_type"] == "FAT16"
    fat = find(t16, "vfat.fat", "fat:0")
    node = find(t16, "vfat.file", "/EFI/BOOT/BOOTX64.EFI")
    first_cluster = int(node.attrs["first_cluster"])  # type: ignore[arg-type]
    entry = fat.field_named(f"FAT[{first_cluster}]")
    assert entry is not None and entry.extents == (Extent(fat.extents[0].offset + 2 * first_cluster, 2),)
    assert entry.display is not None and entry.display.endswith("(/EFI/BOOT/BOOTX64.EFI)")
    assert entry.value == first_cluster + 1  # mtools allocates the file contiguously


def test_volume_label_entry_and_deleted_slots(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-label-time")
    label = find(parse_file(a), "vfat.dirent", ":volume_label")
    assert label.attrs["file_type"] == "volume_label" and label.attrs["name"] == "ESP"
    assert value(label, "DIR_Attr") == 0x08
    _a, b = pair("vfat-deleted")
    t = parse_file(b)
    deleted = [n for _k, n in t.walk() if n.kind == "vfat.deleted"]
    assert len(deleted) == 3  # two long-name slots and the short entry of random-seed.tmp
    assert all(n.attrs["path"] == "/loader" for n in deleted)
    short = [n for n in deleted if n.field_named("DIR_Name") is not None]
    assert len(short) == 1 and str(value(short[0], "DIR_Name")).startswith(b"\xe5".decode("cp850"))


def test_bare_fat_is_detected_as_filesystem_not_mbr(pair) -> None:  # type: ignore[no-untyped-def]
    for name in BARE_PAIRS:
        a, _b = pair(name)
        with ImageSource(str(a)) as src:
            head = src.read(0, 65536)
            assert not gpt.recognizes(head, src.size), name
            assert vfat.recognizes(head, src.size), name
            root = parse_image(ParseContext(src=src))
        assert root.attrs["table"] == "none"
        assert root.children[0].kind == "vfat"


def test_repart_esp_is_parsed_inside_gpt(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-repart-seeds")
    with ImageSource(str(a)) as src:
        root = parse_image(ParseContext(src=src))
    v = vfat_of(root)
    part = next(c for c in root.children if c.kind == "partition")
    assert v.extents == part.extents and v.attrs["fat_type"] == "FAT32"
    volid = find(v, "vfat.boot_sector", "boot").field_named("BS_VolID")
    assert volid is not None and volid.extents[0].offset == part.extents[0].offset + 0x43


# ---------------------------------------------------------------------------------------------------------------
# every fixture: the pyfatfs oracle and byte coverage


def _ours(root: Node) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for _k, n in root.walk():
        if n.kind == "vfat.dirent" and n.attrs.get("file_type") in ("file", "dir") and not n.attrs.get("dot"):
            out[str(n.attrs["path"]).upper()] = (str(n.attrs["file_type"]), int(n.attrs.get("size", 0) or 0))  # type: ignore[arg-type]
    return out


def _pyfatfs(path: Path, offset: int = 0) -> dict[str, tuple[str, int]]:
    from pyfatfs.PyFat import PyFat

    before = hashlib.sha256(path.read_bytes()).hexdigest()
    pf = PyFat(offset=offset)
    pf.open(str(path), read_only=True)
    out: dict[str, tuple[str, int]] = {}
    try:
        for root, dirs, files in pf.root_dir.walk():
            base = "/" + root.strip("/") if root.strip("/") else ""
            for d in dirs:
                out[f"{base}/{d}".upper()] = ("dir", 0)
            for f in files:
                out[f"{base}/{f}".upper()] = ("file", f.filesize)
    finally:
        pf.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "pyfatfs wrote to the image"
    return out


@pytest.mark.parametrize("name", VFAT_PAIRS)
def test_tree_matches_pyfatfs(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    for path in pair(name):
        with ImageSource(str(path)) as src:
            root = parse_image(ParseContext(src=src))
        v = vfat_of(root)
        ours = _ours(v)
        theirs = _pyfatfs(path, v.extents[0].offset)
        assert ours == theirs
        assert v.attrs["files"] == sum(1 for t, _s in ours.values() if t == "file")
        assert v.errors == []


@pytest.mark.parametrize("name", VFAT_PAIRS)
def test_fields_cover_the_region_exactly_once(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    for path in pair(name):
        with ImageSource(str(path)) as src:
            v = vfat_of(parse_image(ParseContext(src=src)))
        region = v.extents[0]
        exts = sorted(e for _k, n in v.walk() for f in n.fields for e in f.extents)
        pos = region.offset
        for e in exts:
            assert e.length > 0
            assert e.offset == pos, f"{name}: gap or overlap at 0x{pos:x} (next field at 0x{e.offset:x})"
            pos = e.end
        assert pos == region.end
        # every node's fields lie inside the node's extents
        for _k, n in v.walk():
            for f in n.fields:
                for e in f.extents:
                    assert any(x.offset <= e.offset and e.end <= x.end for x in n.extents), (n.key, f.name)


# ---------------------------------------------------------------------------------------------------------------
# hostile input: partial results or ParseError, never a traceback or a hang


def _fat32(pair, tmp_path: Path) -> tuple[Path, Node]:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-volid")
    img = copy_image(a, tmp_path / "x.img")
    return img, parse_file(img)


def test_truncated_image_gives_partial_tree(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img, _t = _fat32(pair, tmp_path)
    with open(img, "r+b") as fh:
        fh.truncate(2 << 20)
    t = parse_file(img)
    assert any("truncated" in e for e in t.errors)
    for _k, n in t.walk():
        for f in n.fields:
            assert all(e.end <= 2 << 20 for e in f.extents)


def test_fat_cycle_and_out_of_range_chain(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img, t = _fat32(pair, tmp_path)
    node = find(t, "vfat.file", "/EFI/BOOT/BOOTX64.EFI")
    c0 = int(node.attrs["first_cluster"])  # type: ignore[arg-type]
    fat0 = find(t, "vfat.fat", "fat:0").extents[0].offset
    patch(img, fat0 + 4 * (c0 + 3), struct.pack("<I", c0))  # cluster c0+3 points back to c0
    patch(img, fat0 + 4 * 5, struct.pack("<I", 0x0FFFFFF0 - 1))  # an entry past the last cluster
    start = time.monotonic()
    t2 = parse_file(img)
    assert time.monotonic() - start < 5
    assert any("cycle" in e and "BOOTX64.EFI" in e for e in t2.errors)
    assert any("shorter" in e or "holds" in e for e in t2.errors)


def test_directory_loop_is_cut(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img, t = _fat32(pair, tmp_path)
    boot = find(t, "vfat.dirent", "/EFI/BOOT")
    lo = boot.field_named("DIR_FstClusLO")
    assert lo is not None
    patch(img, lo.extents[0].offset, struct.pack("<H", 2))  # /EFI/BOOT -> the root directory's cluster
    t2 = parse_file(img)
    assert any("/EFI/BOOT" in e and ("cross-linked" in e or "cycle" in e) for e in t2.errors)


@pytest.mark.parametrize(
    ("offset", "data", "field"),
    [
        (11, struct.pack("<H", 3), "BPB_BytsPerSec"),
        (13, b"\x03", "BPB_SecPerClus"),
        (16, b"\x00", "BPB_NumFATs"),
        (36, struct.pack("<I", 0xFFFFFF), "BPB_FATSz32"),
    ],
)
def test_absurd_bpb_raises_parse_error(pair, tmp_path: Path, offset: int, data: bytes, field: str) -> None:  # type: ignore[no-untyped-def]
    img, _t = _fat32(pair, tmp_path)
    patch(img, offset, data)
    with ImageSource(str(img)) as src:
        with pytest.raises(ParseError) as exc:
            vfat.parse(ParseContext(src=src), 0, src.size, "image")
        assert exc.value.field == field and exc.value.offset is not None
        # through detection: a raw node with the message, no exception
        root = parse_image(ParseContext(src=src))
    msgs = [e for _k, n in root.walk() for e in n.errors]
    assert any(field in m for m in msgs) or root.children[0].raw


def test_garbage_directory_and_fat(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img, t = _fat32(pair, tmp_path)
    root_dir = find(t, "vfat.dir", "dir:/")
    fat0 = find(t, "vfat.fat", "fat:0").extents[0]
    noise = hashlib.sha256(b"x").digest() * 64
    patch(img, root_dir.extents[0].offset, noise[:512])
    patch(img, fat0.offset + 8, noise[:4096])
    t2 = parse_file(img)  # must not raise
    assert t2.kind == "vfat"
    with ImageSource(str(img)) as src:
        assert vfat_of(parse_image(ParseContext(src=src))).kind == "vfat"


@pytest.mark.parametrize("name", ["vfat-order", "vfat-fat12-filetimes", "vfat-fat16-content"])
def test_random_corruption_never_crashes(pair, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    import random

    rng = random.Random(name)
    a, _b = pair(name)
    original = a.read_bytes()
    img = tmp_path / "fuzz.img"
    for _ in range(25):
        data = bytearray(original)
        for _ in range(rng.choice([1, 8, 64, 512])):
            data[rng.randrange(0, 1 << 20)] = rng.randrange(256)  # boot sector, FATs, directories
        img.write_bytes(data)
        start = time.monotonic()
        try:
            t = parse_file(img)
        except ParseError as exc:
            assert exc.offset is not None
            continue
        assert time.monotonic() - start < 5
        assert t.kind == "vfat"


def test_parser_never_writes(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("vfat-order")
    before = a.stat().st_mtime_ns, hashlib.sha256(a.read_bytes()).hexdigest()
    parse_file(a)
    assert (a.stat().st_mtime_ns, hashlib.sha256(a.read_bytes()).hexdigest()) == before


def test_time_decoding() -> None:
    assert vfat.dos_datetime(dos_date(2024, 1, 2), dos_time(3, 4, 6)) == "2024-01-02 03:04:06"
    assert vfat.dos_date(0) == "unset"
    assert vfat.dos_date(dos_date(2024, 13, 1)).startswith("invalid")
    assert vfat.dos_seconds(dos_date(1980, 1, 2), dos_time(1, 0, 0)) == 86400 + 3600
    assert vfat.short_name(b"LOADER  CON", 0x18) == "loader.con"
    assert vfat.short_name(b"\x05ABC    TXT") == b"\xe5ABC.TXT".decode("cp850")


# ---------------------------------------------------------------------------------------------------------------
# end to end: the findings on every vfat pair

EXPECTED: dict[str, dict[str, set[str]]] = {
    # pair: {rule id: paths that must be named (may be empty)}
    "vfat-volid": {"FAT001": set()},
    "vfat-dirtimes": {"FAT004": {"/EFI", "/EFI/BOOT", "/EFI/Linux", "/loader", "/EFI/BOOT/."}},
    "vfat-label-time": {"FAT002": set()},
    "vfat-tz": {"FAT003": {"/EFI/BOOT/BOOTX64.EFI", "/loader/loader.conf", "/EFI"}},
    "vfat-fat12-filetimes": {"FAT005": {"/EFI/BOOT/BOOTX64.EFI", "/loader/loader.conf"}},
    "vfat-build-clock": {"FAT006": {"/EFI/BOOT/BOOTX64.EFI", "/EFI"}},
    "vfat-order": {"FAT007": {"/EFI/Linux/nixos-generation-1.efi", "/loader/entries/nixos-generation-3.conf"}},
    "vfat-geometry": {"FAT008": set(), "IMG001": set()},
    "vfat-fat16-content": {
        "FAT009": {"/EFI/systemd/systemd-bootx64.efi", "/loader/loader.conf"},
        "FAT010": {"/loader/entries/memtest.conf"},
    },
    "vfat-deleted": {"FAT012": {"/loader"}, "FAT011": set()},
    "vfat-stale-free": {"FAT013": {"/EFI/BOOT/BOOTX64.EFI", "/loader/loader.conf"}},
    "vfat-repart-seeds": {"GPT001": set()},
    "vfat-file-mtime-hour": {"FAT005": {"/EFI/BOOT/BOOTX64.EFI"}},
    "vfat-regenerated-file": {"FAT004": {"/EFI/BOOT", "/EFI/BOOT/."}, "FAT005": {"/EFI/BOOT/BOOTX64.EFI"}},
    "vfat-geometry-content": {
        "FAT005": {"/loader/loader.conf"},
        "FAT008": set(),
        "FAT009": {"/EFI/systemd/systemd-bootx64.efi"},
        "FAT010": {"/EFI/memtest", "/EFI/memtest/memtest.efi"},
        "IMG001": set(),
    },
    "vfat-file-grows": {"FAT009": {"/EFI/BOOT/BOOTX64.EFI"}},
}


def test_every_vfat_pair_has_expectations() -> None:
    assert set(EXPECTED) == set(VFAT_PAIRS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    report = analyzed(name)
    assert report.summary.bytes_unexplained == 0
    fired = {f.rule.id: f for f in report.findings}
    assert set(fired) == set(EXPECTED[name]), sorted(fired)
    for rid, paths in EXPECTED[name].items():
        assert paths <= set(fired[rid].paths), (rid, fired[rid].paths)
    assert report.errors == []


def test_volume_id_finding_names_both_copies(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = next(x for x in analyzed("vfat-volid").findings if x.rule.id == "FAT001")
    assert f.fields == ["disk/vfat/boot/BS_VolID"]
    assert [d.ref for d in f.derived] == ["disk/vfat/backup_boot/BS_VolID"]
    assert f.bytes == f.causes[0].bytes + f.derived[0].bytes
    assert f.causes[0].display_a != f.causes[0].display_b


def test_repart_volume_id_follows_partition_guid(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = next(x for x in analyzed("vfat-repart-seeds").findings if x.rule.id == "GPT001")
    refs = {d.ref for d in f.derived}
    assert "disk/part:1:esp/vfat/boot/BS_VolID" in refs
    assert "disk/part:1:esp/vfat/backup_boot/BS_VolID" in refs


def test_timezone_finding_is_whole_hours(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = next(x for x in analyzed("vfat-tz").findings if x.rule.id == "FAT003")
    for d in f.causes:
        assert d.kind == "vfat.dirent" and d.change == Change.MODIFIED
        if d.field == "DIR_WrtTime":
            assert d.display_a == "2000-01-01 00:00:00" and d.display_b == "2000-01-01 01:00:00"


def test_one_file_an_hour_later_is_not_a_time_zone(analyzed) -> None:  # type: ignore[no-untyped-def]
    """Issue 9: one file's mtime +3600 s (mcopy -m) was reported as FAT003 with the fix TZ=UTC, which fixes nothing."""
    report = analyzed("vfat-file-mtime-hour")
    assert [f.rule.id for f in report.findings] == ["FAT005"]
    f = report.findings[0]
    got = {(d.attrs["path"], d.field, d.a, d.b, d.display_a, d.display_b) for d in f.causes}
    assert got == {
        ("/EFI/BOOT/BOOTX64.EFI", "DIR_CrtTime", 0, 2048, "2000-01-01 00:00:00", "2000-01-01 01:00:00"),
        ("/EFI/BOOT/BOOTX64.EFI", "DIR_WrtTime", 0, 2048, "2000-01-01 00:00:00", "2000-01-01 01:00:00"),
    }
    assert f.derived == [] and f.bytes == 2


def test_time_zone_shift_needs_every_entry(analyzed) -> None:  # type: ignore[no-untyped-def]
    """vfat-tz: all 23 file/directory entries (dot entries included) moved by +3600 s, so FAT003 holds."""
    f = next(x for x in analyzed("vfat-tz").findings if x.rule.id == "FAT003")
    entries = {d.node_path for d in f.causes}
    assert len(entries) == 23 and len(f.causes) == 46
    assert {(d.a, d.b) for d in f.causes} == {(0, 2048)}


def test_regenerated_file_is_not_the_build_clock(analyzed) -> None:  # type: ignore[no-untyped-def]
    """A file and its directory 4 s newer (mcopy -m): FAT005 + FAT004, not FAT006 (whose entries would all move)."""
    report = analyzed("vfat-regenerated-file")
    fired = {f.rule.id: f for f in report.findings}
    assert set(fired) == {"FAT004", "FAT005"}
    assert {(d.attrs["path"], d.field, d.a, d.b) for d in fired["FAT005"].causes} == {
        ("/EFI/BOOT/BOOTX64.EFI", "DIR_CrtTime", 0, 2),
        ("/EFI/BOOT/BOOTX64.EFI", "DIR_WrtTime", 0, 2),
    }
    assert {d.attrs["path"] for d in fired["FAT004"].causes} == {"/EFI/BOOT", "/EFI/BOOT/.", "/EFI/BOOT/.."}


def test_geometry_does_not_hide_added_paths_or_allocation(analyzed) -> None:  # type: ignore[no-untyped-def]
    """12 vs 16 MiB FAT16 plus an added directory: FAT008 folded the new directory node and every shifted first
    cluster; cluster numbers do not depend on the size, the added /EFI/memtest (clusters 3-4) shifted them."""
    fired = {f.rule.id: f for f in analyzed("vfat-geometry-content").findings}
    geo = fired["FAT008"]
    assert {(d.field, d.a, d.b) for d in geo.causes} == {("BPB_TotSec16", 24576, 32768), ("BPB_FATSz16", 24, 32)}
    geo_folded = geo.derived
    assert not any(d.change in ("added", "removed") and d.kind != "vfat.fat" for d in geo_folded)
    assert not any(d.field.startswith("DIR_FstClus") and d.change == "modified" for d in geo_folded)
    assert {d.change for d in geo_folded if d.kind == "vfat.fat" and d.field.startswith("FAT[")} == {"added", "removed"}
    added = fired["FAT010"]
    assert ("disk/vfat/dir:/EFI/memtest", "(node)") in {(d.node_path, d.field) for d in added.causes}
    shifted = {d.attrs["path"]: (d.a, d.b) for d in added.derived if d.field == "DIR_FstClusLO"}
    assert shifted["/EFI/Linux"] == (3, 5) and shifted["/loader/loader.conf"] == (23, 25)
    assert shifted["/EFI/systemd/systemd-bootx64.efi"] == (9, 11)  # not the content change's
    content = fired["FAT009"]
    assert [(d.attrs["path"], d.field) for d in content.causes] == [("/EFI/systemd/systemd-bootx64.efi", "data")]
    assert content.derived == []  # same size: no DIR_FileSize, no chain; its first cluster moved for FAT010
    assert {d.field for d in fired["FAT005"].causes} == {
        "DIR_CrtTime", "DIR_CrtDate", "DIR_LstAccDate", "DIR_WrtTime", "DIR_WrtDate"
    }


def test_grown_file_shifts_what_follows_not_an_order_change(analyzed) -> None:  # type: ignore[no-untyped-def]
    """BOOTX64.EFI 1000 bytes longer: the directories after it start two clusters later and their entries are
    stored elsewhere; that was reported as FAT007 (write order) although the order is the same."""
    report = analyzed("vfat-file-grows")
    assert [f.rule.id for f in report.findings] == ["FAT009"]
    f = report.findings[0]
    assert [(d.attrs["path"], d.field) for d in f.causes] == [("/EFI/BOOT/BOOTX64.EFI", "data")]
    folded = {(d.attrs.get("path"), d.field): (d.a, d.b) for d in f.derived if d.change == "modified"}
    assert folded[("/EFI/BOOT/BOOTX64.EFI", "DIR_FileSize")] == (168894, 169894)
    assert folded[("/loader", "DIR_FstClusLO")] == (594, 596)
    assert folded[("/loader/loader.conf", "DIR_FstClusLO")] == (597, 599)
    assert {d.field for d in f.derived if d.kind == "vfat.fsinfo"} == {"FSI_Free_Count", "FSI_Nxt_Free"}
    assert not any(d.field.startswith("DIR_") and "Time" in d.field and d.change == "modified" for d in f.derived)
    assert f.bytes == report.summary.bytes_differing


def test_content_finding_names_byte_ranges(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = next(x for x in analyzed("vfat-fat16-content").findings if x.rule.id == "FAT009")
    data = {d.attrs["path"]: d for d in f.causes if d.field == "data"}
    sd = data["/EFI/systemd/systemd-bootx64.efi"]
    start = len(seq_bytes(1233, "sd-boot ")) + len("sd-boot ")
    assert sd.detail is not None and f"0x{start:x}-0x{start + 3:x} (4 bytes)" in sd.detail
    assert "size 42 -> 59" in (data["/loader/loader.conf"].detail or "")
    folded = {(d.kind, d.field) for d in f.derived}
    assert ("vfat.dirent", "DIR_FileSize") in folded


def test_stale_free_space_is_chunked(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = next(x for x in analyzed("vfat-stale-free").findings if x.rule.id == "FAT013")
    chunks = [d for d in f.causes if d.kind == "vfat.free"]
    assert chunks and all(d.field.startswith("unused[0x") for d in chunks)
    assert all(sum(e.length for e in d.extents_a) <= vfat.AREA_CHUNK for d in chunks)
    slack = {d.attrs["path"] for d in f.causes if d.field == "slack"}
    assert slack == {"/EFI/BOOT/BOOTX64.EFI", "/loader/loader.conf"}
    assert sum(d.bytes for d in f.causes) == analyzed("vfat-stale-free").summary.bytes_differing


def test_order_finding_folds_allocation(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = next(x for x in analyzed("vfat-order").findings if x.rule.id == "FAT007")
    kinds = {d.kind for d in f.causes + f.derived}
    assert {"vfat.dirent", "vfat.fat", "vfat.file"} <= kinds
    aliases = {d.attrs["path"]: (d.a, d.b) for d in f.causes if d.field == "DIR_Name" and d.change == Change.MODIFIED}
    assert aliases["/loader/entries/nixos-generation-1.conf"] == ("NIXOS-~1CON", "NIXOS-~3CON")


@pytest.mark.skipif(shutil.which("mkfs.vfat") is None or shutil.which("mcopy") is None, reason="dosfstools/mtools")
def test_large_fat32_parses_quickly(tmp_path: Path) -> None:
    """A 256 MiB FAT32 with 500 files: parse time stays well under a second per 100 MiB."""
    img = tmp_path / "big.img"
    src = tmp_path / "src"
    for d in range(10):
        (src / f"dir{d}").mkdir(parents=True)
        for i in range(50):
            (src / f"dir{d}" / f"file-{i:03d}.bin").write_bytes(bytes([i]) * (1000 + 37 * i))
    with open(img, "wb") as fh:
        fh.truncate(256 << 20)
    subprocess.run(["mkfs.vfat", "-F", "32", "-i", "12345678", str(img)], check=True, capture_output=True)
    subprocess.run(
        ["mcopy", "-s", "-i", str(img), *map(str, sorted(src.iterdir())), "::/"],
        check=True,
        capture_output=True,
        env={"SOURCE_DATE_EPOCH": "946684800", "TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    start = time.monotonic()
    t = parse_file(img)
    assert time.monotonic() - start < 5
    assert t.attrs["files"] == 500 and t.errors == []


@pytest.mark.parametrize("name", VFAT_PAIRS)
def test_fired_rules_are_exactly_the_recipe_causes(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    """A rule that fires on a pair whose recipe does not contain its cause is a misfire (issue 9)."""
    from .test_gpt import expected_rules

    fired = {f.rule.id for f in analyzed(name).findings}
    assert fired == expected_rules(name)

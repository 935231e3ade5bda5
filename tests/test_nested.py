"""Images inside images and compressed inputs: nested FAT in ext4, a zstd cpio initrd on an ESP, .zst/.xz inputs.

Every pair here is made by real tools (fixtures/recipes/nested-*.sh, compressed-*.sh); the assertions check that
each differing byte of the outer image is explained through the nesting, at the outer image's own offsets.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.engine.analysis import analyze
from imgdiff.formats import cpio
from imgdiff.formats.base import ParseContext
from imgdiff.model import Extent
from imgdiff.source import VBASE, BytesSource, ImageSource, MappedSource
from imgdiff.streams import decode, stream_kind

from .conftest import PAIRS


def test_fat_image_file_inside_ext4_is_explained_at_the_outer_offsets(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("nested-ext4-vfat")
    assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (6, 0)
    assert [f.rule.id for f in report.findings] == ["FAT001"]
    (f,) = report.findings
    assert f.bytes == 6
    assert f.location == "ext4 / files / file data of /boot/efi.img / vfat (FAT32) / boot sector"
    (cause,) = f.causes
    assert (cause.kind, cause.field, cause.a, cause.b) == ("vfat.boot_sector", "BS_VolID", 2965780527, 2966957345)
    # the sparse efi.img starts at physical block 1808 of the 4 KiB-block ext4: BS_VolID is at 0x43 of it
    assert cause.extents_a == (Extent(1808 * 4096 + 0x43, 4),)
    assert cause.scope == "disk/ext4/files//boot/efi.img/vfat"
    assert [(d.kind, d.field, d.extents_a) for d in f.derived] == [
        ("vfat.backup_boot_sector", "BS_VolID", (Extent(1808 * 4096 + 6 * 512 + 0x43, 4),))
    ]


def test_files_with_equal_content_are_not_probed_for_nested_images(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """On the shifted pair every file after /0-added.txt moved with equal content: only the added file is
    probed for an image inside it (the moved ones cannot hold a difference)."""
    from imgdiff.engine import nesting

    probed: list[str] = []
    plan = nesting.Nester._plan

    def spy(self: nesting.Nester, side: str, h: nesting.Holder, depth: int) -> object:
        probed.append(f"{side}:{h.keys[-1]}")
        return plan(self, side, h, depth)

    monkeypatch.setattr(nesting.Nester, "_plan", spy)
    a, b = pair("ext4-shifted")
    report = analyze(a, b)
    assert probed == ["b:/0-added.txt"]
    assert [f.rule.id for f in report.findings] == ["EXT019"]


def test_zstd_cpio_initrd_on_the_esp(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("nested-esp-zstd-initrd")
    assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (2403, 0)
    # one cause: "compressed differently" (CNT003) would be wrong, the payload differs
    assert [f.rule.id for f in report.findings] == ["CNT008"]
    (f,) = report.findings
    (cause,) = f.causes
    assert (cause.kind, cause.field, cause.a, cause.b) == ("cpio.member", "c_mtime", 1700000000, 1700086400)
    assert cause.attrs["path"] == "/lib/modules/virtio_blk.ko"
    assert cause.location == (
        "partition 1 (esp) / vfat (FAT32) / file /EFI/nixos/initrd.efi / zstd stream / decoded zstd payload / "
        "cpio archive / member lib/modules/virtio_blk.ko"
    )
    assert cause.extents_a[0].offset >= VBASE and cause.bytes == 0  # decoded bytes are not bytes of the image
    (stream,) = [d for d in f.derived if d.kind == "content.zstd"]
    assert stream.field == "compressed data" and stream.bytes == 2402
    # the file's size and its all-zero slack follow from the stored data's length
    assert sorted((d.kind, d.field) for d in f.derived) == [
        ("content.zstd", "compressed data"), ("vfat.dirent", "DIR_FileSize"), ("vfat.file", "slack")
    ]
    assert f.bytes == 2403  # every differing byte of the disk
    (space,) = report.spaces
    assert (space.label, space.sizes) == ("file /EFI/nixos/initrd.efi (zstd)", {"a": 69632, "b": 69632})


@pytest.mark.parametrize(
    ("name", "kind", "rule", "differing"),
    [("compressed-zstd-ext4", "zstd", "EXT002", 20), ("compressed-xz-vfat", "xz", "FAT001", 6)],
)
def test_compressed_inputs_are_compared_decompressed(  # type: ignore[no-untyped-def]
    pair, name: str, kind: str, rule: str, differing: int, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair(name)
    assert stream_kind(a.read_bytes()[:8]) == kind
    assert main(["explain", "--json", str(a), str(b)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["images"]["a"]["decompressed"] == kind and doc["images"]["b"]["decompressed"] == kind
    assert doc["summary"]["bytes_differing"] == differing and doc["summary"]["bytes_unexplained"] == 0
    assert [f["rule"] for f in doc["findings"]] == [rule]
    assert main(["explain", str(a), str(b)]) == 1
    text = capsys.readouterr().out
    assert f"(decompressed from {kind})" in text and "refer to the decompressed images" in text


def test_truncated_compressed_input_is_a_partial_result(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("compressed-zstd-ext4")
    data = a.read_bytes()
    cut = tmp_path / "cut.img.zst"
    cut.write_bytes(data[: len(data) // 2])
    report = analyze(a, cut)
    assert report.b.decompressed == "zstd" and report.b.size < report.a.size
    assert report.errors[0].startswith("B: zstd stream is corrupt or truncated after ")
    assert report.errors[0].endswith("; the decompressed part was compared")


def test_garbage_after_a_compression_magic_is_exit_2(pair, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("compressed-zstd-ext4")
    bad = tmp_path / "bad.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 8)
    assert main(["explain", str(a), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"imgdiff: error: {bad}: zstd stream is corrupt or truncated")


def test_decompression_stops_at_the_limit(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import imgdiff.streams

    monkeypatch.setattr(imgdiff.streams, "MAX_INPUT_DECODED", 4 << 20)
    a, b = pair("compressed-xz-vfat")
    report = analyze(a, b)
    assert report.a.size == 4 << 20 and report.b.size == 4 << 20
    assert report.errors[0] == (
        f"A: xz stream decodes to more than {4 << 20} bytes; not decoded further; the decompressed part was compared"
    )


def test_scratch_copy_is_sparse_and_unnamed(pair) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.streams import open_input

    a, _b = pair("compressed-zstd-ext4")
    src = open_input(str(a))
    try:
        st = os.fstat(src.fd)
        assert st.st_nlink == 0  # unnamed: gone when closed
        assert st.st_size == 16 << 20 and st.st_blocks * 512 < 4 << 20  # holes for the empty blocks
        assert src.read(1024 + 0x38, 2) == b"\x53\xef"  # the ext4 superblock magic, decompressed
    finally:
        src.close()


def test_mapped_source_reads_holes_as_zero() -> None:
    parent = BytesSource(bytes(range(256)) * 4)
    view = MappedSource(parent, (Extent(100, 4), Extent(10, 4)), offsets=(0, 8), size=16)
    assert view.size == 16 and view.sparse
    assert view.read(0, 16) == bytes([100, 101, 102, 103, 0, 0, 0, 0, 10, 11, 12, 13, 0, 0, 0, 0])
    assert view.to_parent(2, 8) == [Extent(102, 2), Extent(10, 2)]
    assert list(view.data_extents(0, 16)) == [(0, 4), (8, 12)]
    dense = MappedSource(parent, (Extent(100, 4), Extent(104, 4)))
    assert not dense.sparse and dense.to_parent(0, 8) == [Extent(100, 8)]


def test_decode_small_payload_stays_in_memory() -> None:
    import io

    raw = lzma.compress(b"hello " * 100)
    out = decode("xz", io.BytesIO(raw), 1 << 20)
    assert isinstance(out.source, BytesSource) and out.size == 600 and out.error == ""
    out = decode("xz", io.BytesIO(raw), 100)
    assert out.error == "xz stream decodes to more than 100 bytes; not decoded further"


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio is not installed")
def test_cpio_format_owns_every_byte(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "bin").mkdir(parents=True)
    (tree / "init").write_text("#!/bin/sh\n")
    (tree / "bin" / "sh").write_bytes(b"\x7fELF" + bytes(100))
    os.symlink("sh", tree / "bin" / "ash")
    for p in (tree / "init", tree / "bin" / "sh", tree / "bin", tree):
        os.utime(p, (1700000000, 1700000000), follow_symlinks=False)
    names = ".\nbin\nbin/ash\nbin/sh\ninit\n"
    archive = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], input=names.encode(), cwd=tree,
                             capture_output=True, check=True).stdout
    img = tmp_path / "a.cpio"
    img.write_bytes(archive)
    with ImageSource(str(img)) as src:
        assert cpio.recognizes(archive[:110], len(archive))
        root = cpio.parse(ParseContext(src=src), 0, src.size, "initrd")
    assert [c.key for c in root.children] == [".", "bin", "bin/ash", "bin/sh", "init", "TRAILER!!!"]
    ash = root.children[2]
    assert ash.field_named("data").value == "sh"  # type: ignore[union-attr]
    assert (ash.attrs["path"], ash.attrs["file_type"]) == ("/bin/ash", "lnk")
    sh = root.children[3]
    assert sh.attrs["content"] is True and sh.field_named("c_mtime").value == 1700000000  # type: ignore[union-attr]
    # every byte of the archive is in exactly one field (cpio pads its output to 512-byte blocks)
    owned = sorted(e for n in [root, *root.children] for f in n.fields for e in f.extents)
    pos = 0
    for e in owned:
        assert e.offset == pos, (e, pos)
        pos = e.end
    assert pos == len(archive) and len(archive) % 512 == 0


def test_nested_fixtures_are_small() -> None:
    for name in ("nested-ext4-vfat", "nested-esp-zstd-initrd", "compressed-zstd-ext4", "compressed-xz-vfat"):
        for side in "ab":
            assert (PAIRS / name / f"{side}.img.xz").stat().st_size < 40_000


def test_zstd_frame_walker_tells_complete_from_cut() -> None:
    import io

    import zstandard

    from imgdiff.streams import ZstdFrames

    payload = bytes(range(256)) * 4000
    one = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(payload)
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    two = one + skippable + zstandard.ZstdCompressor(level=1, write_content_size=False).compress(payload)
    for data, complete in ((one, True), (two, True), (one[:-1], False), (one[: len(one) // 2], False)):
        w = ZstdFrames()
        for i in range(0, len(data), 7):  # headers split across feeds
            w.feed(data[i : i + 7])
        assert w.complete() is complete, (len(data), complete)
    out = decode("zstd", io.BytesIO(two), 1 << 22)
    assert out.size == 2 * len(payload) and out.error == ""
    out = decode("zstd", io.BytesIO(one[:-3]), 1 << 22)
    assert out.error.endswith("the last frame does not end")


def test_parser_decoded_space_alone_and_in_a_comparison() -> None:
    from imgdiff.engine.spaces import SpaceTable
    from imgdiff.source import DiffMap, LayeredSource

    ctx = ParseContext(src=BytesSource(b"outer"))
    base = ctx.decoded_space("inode table", BytesSource(b"decoded!"), "sq")
    assert base == VBASE and ctx.read(base + 2, 4) == b"code" and ctx.interesting(Extent(base, 1))
    ran: list[int] = []
    ctx.defer(lambda: ran.append(1))
    assert ran == [1]  # parsing alone: nothing to wait for
    # in a comparison, both sides' n-th space of the same name pair up and are compared before callbacks run
    layered = {"a": LayeredSource(BytesSource(b"x")), "b": LayeredSource(BytesSource(b"x"))}
    dm = DiffMap(base=0, length=1)
    table = SpaceTable(layered, dm)
    ca = ParseContext(src=layered["a"], diff=dm, side="a", spaces=table)
    cb = ParseContext(src=layered["b"], diff=dm, side="b", spaces=table)
    ba = ca.decoded_space("meta", BytesSource(b"same-differs"), "sq")
    bb = cb.decoded_space("meta", BytesSource(b"same-DIFFERS"), "sq")
    assert ba == bb and ca.interesting(Extent(ba, 4))  # not compared yet: everything may differ
    seen: list[tuple[bool, bool]] = []
    ca.defer(lambda: seen.append((ca.interesting(Extent(ba, 4)), ca.interesting(Extent(ba + 5, 7)))))
    table.settle()
    assert seen == [(False, True)] and dm.total == 0  # decoded bytes are not image bytes


def test_findings_carry_their_scope_chain(analyzed) -> None:  # type: ignore[no-untyped-def]
    (f,) = analyzed("nested-esp-zstd-initrd").findings
    assert f.chain == ("partition 1 (esp)", "vfat (FAT32)", "/EFI/nixos/initrd.efi", "zstd", "cpio archive")
    (g,) = analyzed("nested-ext4-vfat").findings
    assert g.chain == ("ext4", "/boot/efi.img", "vfat (FAT32)")
    pe = [d for f in analyzed("content-formats").findings for d in f.causes if d.field == "TimeDateStamp"]
    assert [d.chain for d in pe] == [("partition 1 (esp)", "vfat (FAT32)", "/EFI/BOOT/BOOTX64.EFI", "pe")]


def test_a_filesystem_parsed_through_a_fragmented_view_has_every_field_at_image_offsets(pair, tmp_path: Path) -> None:
    """An image file stored in two pieces, the second half first: parsed through the view and moved onto the
    container's offsets, record-held fields (inodes, directory entries) land there too, not at view offsets."""
    from imgdiff.engine.nesting import translate
    from imgdiff.formats import ext4
    from imgdiff.source import DiffMap

    a, _b = pair("ext4-htree")
    image = a.read_bytes()
    half = len(image) // 2  # 8 MiB of 16
    (tmp_path / "container").write_bytes(image[half:] + image[:half])
    with ImageSource(str(tmp_path / "container")) as container:
        view = MappedSource(container, (Extent(len(image) - half, half), Extent(0, len(image) - half)))
        dm = DiffMap(base=0, length=view.size)
        dm.add_run(0, view.size)  # as if every byte differed: every node is built
        root = ext4.parse(ParseContext(src=view, diff=dm), 0, view.size, "image")
        translate(root, view)
    nodes = [n for _k, n in root.walk()]
    assert [n for n in nodes if n.record is not None] == []
    entry = next(n for n in nodes if n.kind == "ext4.dirent" and n.key == "/usr/share/zoneinfo/Zone_1")
    # at view offset 6,337,744 (first half): the container holds the first half after the second
    assert [(f.name, f.extents) for f in entry.fields[:2]] == [
        ("inode", (Extent(6337744 + half, 4),)), ("rec_len", (Extent(6337748 + half, 2),)),
    ]
    for n in nodes:
        for f in n.fields:
            for e in f.extents:
                assert e.offset + e.length <= len(image), (n.key, f.name, e)
    inode = next(n for n in nodes if n.kind == "ext4.inode" and n.key == "/usr/share/zoneinfo/Zone_1")
    assert [(f.name, f.value, f.extents) for f in inode.fields if f.name in ("i_mode", "i_ctime")] == [
        ("i_mode", 33188, (Extent(146944 + half, 2),)), ("i_ctime", 1795562712, (Extent(146956 + half, 4),)),
    ]

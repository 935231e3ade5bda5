"""ext4: literal values parsed from the fixture pairs, byte-coverage invariants, lazy building, hostile input,
and the end-to-end findings on every ext4 fixture pair."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdiff.formats import ext4, parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import Record
from imgdiff.model import Extent, Node
from imgdiff.source import DiffMap, ImageSource

from .conftest import PAIRS, ROOT, have


def _tree(path: Path, ranges: list[tuple[int, int]] | None = None) -> tuple[Node, ParseContext]:
    """Parse ``path`` as if the bytes in ``ranges`` differed (None: every byte; []: none)."""
    src = ImageSource(str(path))
    dm = DiffMap(base=0, length=src.size)
    for s, e in [(0, src.size)] if ranges is None else ranges:
        dm.starts.append(s)
        dm.ends.append(e)
        dm.counts.append(e - s)
    ctx = ParseContext(src=src, diff=dm)
    root = parse_image(ctx)
    return root, ctx


def _fs(path: Path, ranges: list[tuple[int, int]] | None = None) -> Node:
    root, _ctx = _tree(path, ranges)
    [fs] = root.children
    assert fs.kind == "ext4", fs.errors
    return fs


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for c in node.children:
        yield from _walk(c)


# -- recognition and literal values -------------------------------------------------------------------------


def test_recognizes_ext4_and_nothing_else(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-hash-seed")
    head = a.read_bytes()[:65536]
    assert ext4.recognizes(head, a.stat().st_size)
    assert not ext4.recognizes(bytes(65536), 1 << 20)
    assert not ext4.recognizes(head[:1024], 1 << 20)


def test_superblock_literals(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("ext4-hash-seed")
    sb = _fs(a, []).child("superblock")
    assert sb is not None
    uuid_f, seed_f, mkfs_f = (sb.field_named(n) for n in ("s_uuid", "s_hash_seed", "s_mkfs_time"))
    assert uuid_f is not None and seed_f is not None and mkfs_f is not None
    # the superblock is at byte 1024; s_uuid at +0x68, s_hash_seed at +0xEC, s_mkfs_time at +0x108
    assert uuid_f.value == "6b7c3bf8-2ad4-4e2c-9f55-1b1c0a8f2f10" and uuid_f.extents == (Extent(0x468, 16),)
    assert seed_f.value == "3c34764a-a1f2-44c1-81ea-8468f0776383" and seed_f.extents == (Extent(0x4EC, 16),)
    assert mkfs_f.value == 1700000100 and mkfs_f.extents == (Extent(0x508, 4),)
    assert mkfs_f.display == "2023-11-14T22:15:00Z"
    sb_b = _fs(b, []).child("superblock")
    assert sb_b is not None and sb_b.field_named("s_hash_seed").value == "d4ff4ed1-1b6e-4419-b176-72251560abaf"  # type: ignore[union-attr]


@pytest.mark.skipif(not have("dumpe2fs"), reason="needs dumpe2fs")
def test_superblock_agrees_with_dumpe2fs(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-defaults")
    out = subprocess.run(["dumpe2fs", "-h", str(a)], capture_output=True, text=True, check=True).stdout
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    sb = _fs(a, []).child("superblock")
    assert sb is not None
    assert sb.field_named("s_uuid").value == info["Filesystem UUID"].strip()  # type: ignore[union-attr]
    assert sb.field_named("s_hash_seed").value == info["Directory Hash Seed"].strip()  # type: ignore[union-attr]
    assert sb.field_named("s_inodes_count").value == int(info["Inode count"])  # type: ignore[union-attr]
    assert 1024 << int(sb.field_named("s_log_block_size").value) == int(info["Block size"])  # type: ignore[union-attr,arg-type]


def test_inode_mtime_by_path(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("ext4-file-mtime")
    for path, expected in ((a, 1700000000), (b, 1700003600)):
        inodes = _fs(path, []).child("inodes")
        assert inodes is not None and not inodes.children  # nothing differs: nothing built up front
        ino = inodes.child("/etc/os-release")
        assert ino is not None and ino.kind == "ext4.inode"
        assert ino.attrs["ino"] == 13 and ino.attrs["file_type"] == "reg" and ino.attrs["path"] == "/etc/os-release"
        # inode 13 lives in block 35 at offset 0xc00 (debugfs imap); i_mtime is at +0x10
        assert ino.extents == (Extent(35 * 4096 + 0xC00, 256),)
        mtime = ino.field_named("i_mtime")
        assert mtime is not None and mtime.value == expected and mtime.extents == (Extent(35 * 4096 + 0xC10, 4),)
        names = [f.name for f in ino.all_fields()]
        assert "i_generation" in names and "i_checksum_lo" in names and "i_block.extent[0].ee_start_lo" in names
        [csum] = [d for d in ino.derived if d.field == "i_checksum_lo"]
        assert csum.seeds[0] == "ext4.superblock:s_uuid"
        assert sum(e.length for e in csum.covers) == 256 - 4  # the inode minus both checksum halves


def test_file_data_and_content_hash(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-file-content")
    expected = "\n".join(str(i) for i in range(1, 12001)).encode() + b"\n"
    expected = expected[:65536]
    node = _fs(a, []).child("files").child("/usr/lib/libfoo.so")  # type: ignore[union-attr]
    assert node is not None and node.kind == "ext4.file"
    data = node.field_named("data")
    assert data is not None and data.value == hashlib.sha256(expected).hexdigest()
    assert sum(e.length for e in data.extents) == len(expected) == node.attrs["size"]
    slack = node.field_named("slack")
    assert slack is not None and sum(e.length for e in slack.extents) == (-len(expected)) % 4096
    assert node.attrs["content"] is True and node.attrs["path"] == "/usr/lib/libfoo.so"
    raw = a.read_bytes()
    assert b"".join(raw[e.offset : e.end] for e in data.extents) == expected


def test_htree_directory(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-htree")
    d = _fs(a, []).child("dirs").child("/usr/share/zoneinfo")  # type: ignore[union-attr]
    assert d is not None and d.attrs["htree"] is True and d.attrs["entries"] == 400
    roots = [c for c in d.children if c.kind == "ext4.dx_root"]
    assert len(roots) == 1
    info = {f.name: f.value for f in roots[0].all_fields()}
    assert info["hash_version"] == 1 and info["info_length"] == 8 and info["indirect_levels"] == 0
    assert info["count"] >= 2 and info["limit"] == (4096 - 32 - 8) // 8
    names = {c.key for c in d.children if c.kind == "ext4.dirent"}
    assert {f"/usr/share/zoneinfo/Zone_{i}" for i in range(1, 401)} <= names
    assert {"/usr/share/zoneinfo/.", "/usr/share/zoneinfo/.."} <= names
    assert all(c.attrs.get("htree") is True for c in d.children if c.kind == "ext4.dirent")


def test_dirent_members_are_a_record_built_on_demand(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-htree")
    d = _fs(a, []).child("dirs").child("/usr/share/zoneinfo")  # type: ignore[union-attr]
    assert d is not None
    node = next(c for c in d.children if c.key == "/usr/share/zoneinfo/Zone_1")
    assert isinstance(node.record, Record) and [f.name for f in node.fields] == ["name", "slack"]
    assert [(f.name, f.value, f.extents, f.display) for f in node.all_fields()] == [
        ("inode", 15, (Extent(6337744, 4),), None),
        ("rec_len", 16, (Extent(6337748, 2),), None),
        ("name_len", 6, (Extent(6337750, 1),), None),
        ("file_type", 1, (Extent(6337751, 1),), "reg"),
        ("name", "Zone_1", (Extent(6337752, 6),), None),
        ("slack", b"\x00\x00", (Extent(6337758, 2),), "2 bytes, all zero"),
    ]


def test_a_dirent_cut_by_the_image_end_keeps_only_its_bytes_before_it(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-htree")
    root, _ctx = _parse_bytes(tmp_path, a.read_bytes()[:6337750])  # inside Zone_1's entry, after rec_len
    [fs] = root.children
    d = fs.child("dirs").child("/usr/share/zoneinfo")  # type: ignore[union-attr]
    assert d is not None
    [cut] = [c for c in d.children if c.kind == "ext4.dirent" and c.extents[0].offset == 6337744]
    assert cut.record is None and cut.extents == (Extent(6337744, 6),)
    assert [(f.name, f.value, f.extents) for f in cut.fields] == [
        ("inode", 15, (Extent(6337744, 4),)),
        ("rec_len", 16, (Extent(6337748, 2),)),
    ]


def test_a_block_whose_entries_are_equal_builds_no_entry_nodes(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    """ext4-defaults: built with different UUIDs, so each directory block differs in its checksum tail only.
    The compared trees hold the block (with the tail) but not its 32 equal entries; a directory looked up although
    nothing in it differs still gets them all, and the entry count is the same either way."""
    report = analyzed("ext4-defaults")
    for tree in (report.tree_a, report.tree_b):
        doc = next(n for _k, n in tree.walk() if n.kind == "ext4.directory" and n.key == "/usr/share/doc")
        assert [(c.kind, c.key) for c in doc.children] == [("ext4.dir_block", "blk:0")]
        assert [f.name for f in doc.children[0].fields] == ["det_reserved_zero1", "det_rec_len",
                                                             "det_reserved_zero2", "det_reserved_ft",
                                                             "det_checksum"]
        assert doc.attrs["entries"] == 32
    a, _b = pair("ext4-defaults")
    whole = _fs(a, []).child("dirs").child("/usr/share/doc")  # type: ignore[union-attr]
    assert whole is not None and whole.attrs["entries"] == 32
    assert [c.kind for c in whole.children].count("ext4.dirent") == 32
    assert [c.key for c in whole.children[:3]] == ["/usr/share/doc/.", "/usr/share/doc/..", "/usr/share/doc/file1.txt"]


def test_hard_link_keyed_by_first_path(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("ext4-hardlinks")
    inodes = _fs(a, []).child("inodes")
    assert inodes is not None
    node = inodes.child("/nix/store/aaaa-glibc/lib/libc.so")
    assert node is not None and node.attrs["paths"] == (
        "/nix/store/aaaa-glibc/lib/libc.so",
        "/nix/store/bbbb-glibc/lib/libc.so",
    )
    assert node.field_named("i_links_count").value == 2  # type: ignore[union-attr]
    assert inodes.child("/nix/store/bbbb-glibc/lib/libc.so") is None  # the second name is not its own inode
    inodes_b = _fs(b, []).child("inodes")
    assert inodes_b is not None and inodes_b.child("/nix/store/bbbb-glibc/lib/libc.so") is not None


def test_in_inode_xattrs(pair) -> None:  # type: ignore[no-untyped-def]
    _a, b = pair("ext4-xattr")
    node = _fs(b, []).child("inodes").child("/usr/bin/tool")  # type: ignore[union-attr]
    assert node is not None
    values = {f.name: f for f in node.all_fields()}
    assert values["xattr.h_magic"].value == 0xEA020000
    assert values["xattr[security.selinux].value"].value == b"system_u:object_r:etc_t:s0\0"
    assert values["xattr[user.origin].value"].value == b"builder-42"


def _dissect(path: Path):  # type: ignore[no-untyped-def]
    """Return dissect.extfs's view of ``path`` (an independent reader; AGPL, test-only oracle)."""
    import logging

    from dissect.extfs import ExtFS

    logging.getLogger("dissect.extfs").setLevel(logging.ERROR)  # it logs every entry of an inline directory
    return ExtFS(path.open("rb"))


def test_symlink_targets_fast_and_slow(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("ext4-symlink-target")
    slow_a = "/opt/" + "d" * 80 + "/bin/toolA"
    for path, tool, slow in ((a, "toolA", slow_a), (b, "toolB", slow_a.replace("toolA", "toolB"))):
        fs = _fs(path, [])
        link = fs.child("inodes").child("/usr/bin/link")  # type: ignore[union-attr]
        assert link is not None and link.attrs["file_type"] == "lnk"
        target = link.field_named("i_block")
        assert target is not None and target.value == f"/usr/bin/{tool}" and target.display == "symlink target"
        assert target.size == 14  # the target's bytes only; the rest of i_block is i_block.unused
        assert link.field_named("i_block.unused").size == 60 - 14  # type: ignore[union-attr]
        node = fs.child("files").child("/usr/bin/slow")  # type: ignore[union-attr]
        assert node is not None and node.attrs["file_type"] == "lnk"
        data = node.field_named("data")
        assert data is not None and data.value == slow and data.display == "symlink target" and data.size == 95
        oracle = _dissect(path)
        assert oracle.get("/usr/bin/link").link == target.value
        assert oracle.get("/usr/bin/slow").link == data.value


def test_device_numbers_old_and_new_encoding(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("ext4-device-number")
    for path, minor in ((a, 1), (b, 2)):
        inodes = _fs(path, []).child("inodes")
        assert inodes is not None
        console = inodes.child("/dev/console")
        assert console is not None and console.attrs["file_type"] == "chr"
        old, new = console.field_named("i_block[0]"), console.field_named("i_block[1]")
        assert old is not None and new is not None
        assert (old.value, old.display) == (5 * 256 + minor, f"device 5:{minor}")
        assert (new.value, new.display) == (0, None)
        big = inodes.child("/dev/big")  # minor 70000 does not fit the old 8-bit encoding
        assert big is not None
        old, new = big.field_named("i_block[0]"), big.field_named("i_block[1]")
        assert old is not None and new is not None
        assert old.value == 0 and old.display == "not used (the number is in i_block[1])"
        assert new.value == 0x11110370 and new.display == "device 259:70000"
        assert big.field_named("i_block.unused").size == 52  # type: ignore[union-attr]
        oracle = _dissect(path)
        for node in (console, big):
            raw = oracle.get(str(node.attrs["path"])).inode.i_block
            assert struct.unpack_from("<2I", raw) == (node.field_named("i_block[0]").value,  # type: ignore[union-attr]
                                                      node.field_named("i_block[1]").value)  # type: ignore[union-attr]


@pytest.mark.skipif(not have("debugfs"), reason="needs debugfs")
def test_device_numbers_agree_with_debugfs(pair) -> None:  # type: ignore[no-untyped-def]
    _a, b = pair("ext4-device-number")
    inodes = _fs(b, []).child("inodes")
    assert inodes is not None
    for path in ("/dev/console", "/dev/big"):
        out = subprocess.run(["debugfs", "-R", f"stat {path}", str(b)], capture_output=True, text=True,
                             check=True).stdout
        line = next(x for x in out.splitlines() if "Device major/minor number:" in x)
        major, minor = (int(v) for v in line.split("number:")[1].split()[0].split(":"))
        node = inodes.child(path)
        assert node is not None
        shown = [f.display for f in node.all_fields() if f.name.startswith("i_block[") and (f.display or "").startswith("device")]
        assert shown == [f"device {major}:{minor}"]


def test_inline_data_files_and_directory(pair) -> None:  # type: ignore[no-untyped-def]
    _a, b = pair("ext4-inline-data")
    fs = _fs(b, [])
    files = fs.child("files")
    assert files is not None
    expected = {"/etc/big": b"a" * 80 + b"Y" + b"a" * 19, "/etc/small": b"bbbbbbbbbbYbbbbbbbbb"}
    raw = b.read_bytes()
    oracle = _dissect(b)
    for path, content in expected.items():
        node = files.child(path)
        assert node is not None and node.attrs["inline_data"] is True
        data = node.field_named("data")
        assert data is not None and data.value == hashlib.sha256(content).hexdigest()
        assert b"".join(raw[e.offset : e.end] for e in data.extents) == content
        inode = fs.child("inodes").child(path)  # type: ignore[union-attr]
        assert inode is not None and inode.field_named("i_block") is None  # the file node owns i_block
        names = {f.name for f in inode.all_fields()}
        assert "xattr[system.data].value" not in names and "xattr[system.data].e_value_size" in names
        ino = int(inode.attrs["ino"])  # type: ignore[arg-type]
        # dissect.extfs reads only i_block of an inline file; system.data holds the rest
        o = oracle.get_inode(ino)
        rest = b"".join(x.value for x in o.xattr if x.name == "system.data")
        assert (o.open().read() + rest)[: o.size] == content
    big = files.child("/etc/big")
    assert big is not None
    # 60 bytes in i_block, then the 40-byte system.data value inside the same 256-byte inode
    assert [e.length for e in big.field_named("data").extents] == [60, 40]  # type: ignore[union-attr]
    small = files.child("/etc/small")
    assert small is not None and small.field_named("slack").size == 40  # type: ignore[union-attr]
    etc = fs.child("dirs").child("/etc")  # type: ignore[union-attr]
    assert etc is not None and etc.attrs["inline_data"] is True
    names = sorted(c.key for c in etc.children if c.kind == "ext4.dirent" and not c.attrs.get("deleted"))
    assert names == ["/etc/big", "/etc/os-release", "/etc/small"]
    [block] = [c for c in etc.children if c.kind == "ext4.dir_block"]
    assert block.field_named("parent_inode").value == 2  # type: ignore[union-attr]
    if have("debugfs"):
        out = subprocess.run(["debugfs", "-R", "ls /etc", str(b)], capture_output=True, text=True, check=True).stdout
        assert {"big", "os-release", "small"} <= set(out.split())


def test_journal_superblock(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-kernel")
    j = _fs(a, []).child("journal")
    assert j is not None
    f = {x.name: x.value for x in j.all_fields()}
    assert f["h_magic"] == 0xC03B3998 and f["h_blocktype"] == 4 and f["s_blocksize"] == 4096
    assert f["s_uuid"] == "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"  # mke2fs copies the filesystem UUID
    assert any(d.field == "s_uuid" and d.seeds == ("ext4.superblock:s_uuid",) for d in j.derived)


# -- invariants ------------------------------------------------------------------------------------------------

COVERAGE_PAIRS = [("ext4-defaults", "a"), ("ext4-htree", "b"), ("ext4-kernel", "a"), ("ext4-xattr", "b"),
                  ("ext4-hardlinks", "a"), ("ext4-order", "b"), ("ext4-inline-data", "b"), ("ext4-symlink-target", "a"),
                  ("ext4-device-number", "b"), ("ext4-file-attrs", "a"), ("ext4-resize-grown", "b")]


@pytest.mark.parametrize(("name", "side"), COVERAGE_PAIRS, ids=[f"{n}-{s}" for n, s in COVERAGE_PAIRS])
def test_every_byte_in_exactly_one_field(pair, name: str, side: str) -> None:  # type: ignore[no-untyped-def]
    """With every byte marked as differing, the fields of all nodes tile the image: no gap, no overlap."""
    path = pair(name)[0 if side == "a" else 1]
    root, ctx = _tree(path)
    size = path.stat().st_size
    spans = sorted((e.offset, e.end, n.kind, f.name) for n in _walk(root) for f in n.all_fields() for e in f.extents)
    pos = 0
    for s, e, kind, fname in spans:
        assert s == pos, f"{'gap' if s > pos else 'overlap'} at 0x{min(s, pos):x} before {kind}.{fname}"
        assert e > s
        pos = e
    assert pos == size
    assert not any(n.raw for n in _walk(root)) and not ctx.errors


@pytest.mark.parametrize("name", ["ext4-defaults", "ext4-kernel", "ext4-htree", "ext4-inline-data"])
def test_node_extents_contain_their_fields_and_children(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    root, _ctx = _tree(pair(name)[0])

    def inside(ext: Extent, outer: tuple[Extent, ...]) -> bool:
        return any(o.offset <= ext.offset and ext.end <= o.end for o in outer)

    for node in _walk(root):
        for f in node.all_fields():
            # sibling fields of one node are disjoint
            for e in f.extents:
                assert inside(e, node.extents), (node.kind, node.key, f.name)
        own = sorted(e for f in node.all_fields() for e in f.extents)
        assert all(x.end <= y.offset for x, y in itertools.pairwise(own)), (node.kind, node.key)
        for c in node.children:
            for e in c.extents:
                assert inside(e, node.extents), (node.kind, node.key, c.kind, c.key)


def test_only_differing_objects_are_built(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-htree")
    fs = _fs(a, [(0x4EC, 0x4FC)])  # only s_hash_seed differs
    keys = [c.key for c in fs.children]
    assert keys[:2] == ["superblock", "gdt"]
    assert not fs.child("inodes").children and not fs.child("dirs").children  # type: ignore[union-attr]
    assert not any(k.startswith(("free:", "bbitmap:", "ibitmap:")) for k in keys)
    # the inode of one path can still be had by key, and unknown keys are refused
    inodes = fs.child("inodes")
    assert inodes is not None
    assert inodes.child("/usr/share/zoneinfo/Zone_7") is not None
    assert inodes.child("/no/such/file") is None and inodes.child("ino:99999999") is None
    assert fs.child("gdt").child("gd:0") is not None and fs.child("gdt").child("gd:5000") is None  # type: ignore[union-attr]


# -- hostile input --------------------------------------------------------------------------------------------


def _parse_bytes(tmp_path: Path, data: bytes) -> tuple[Node, ParseContext]:
    p = tmp_path / "x.img"
    p.write_bytes(data)
    return _tree(p, [(0, len(data))])


def test_truncated_image_gives_a_partial_tree(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-kernel")
    root, ctx = _parse_bytes(tmp_path, a.read_bytes()[: 300 * 1024])
    [fs] = root.children
    assert fs.kind == "ext4"
    assert any("truncated" in m for m in ctx.errors)
    assert fs.child("superblock") is not None


@pytest.mark.parametrize("cut", [3324, 140_000, 300_000])
def test_truncated_image_is_one_error_per_structure(pair, tmp_path: Path, cut: int) -> None:  # type: ignore[no-untyped-def]
    """A cut image: the bytes it lacks are the image-size finding's; what lies past the cut is one error per kind
    of structure, never a difference per field of everything the longer image has there."""
    a, _b = pair("ext4-kernel")
    short = tmp_path / "cut.img"
    short.write_bytes(a.read_bytes()[:cut])
    for first, second, side in ((a, short, "B"), (short, a, "A")):
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "imgdiff", "explain", "--json", str(first), str(second)],
                             cwd=ROOT, capture_output=True, text=True, check=False)
        assert time.monotonic() - t0 < 20 and out.returncode == 1, out.stderr
        assert len(out.stdout) < 10_000  # was 70 MB of per-field differences
        doc = json.loads(out.stdout)
        assert [(f["rule"], f["bytes"]) for f in doc["findings"]] == [("IMG001", 16777216 - cut)]
        assert doc["summary"]["bytes_differing"] == 16777216 - cut
        errors = doc["errors"]
        assert errors[0] == (f"{side}: ext4 (image): filesystem is 16777216 bytes but the image holds {cut} of them: "
                             "image truncated; structures past the end are not read")
        past = {3324: "group descriptor table block 1", 140_000: "inode table of group 0",
                300_000: "directory block of inode 12, 14"}[cut]
        assert errors[1:] == [f"{side}: ext4 (image): {past}: past the end of the image ({cut} bytes), not read"]


def test_bad_block_size_is_a_parse_error_not_a_traceback(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-hash-seed")
    data = bytearray(a.read_bytes())
    struct.pack_into("<I", data, 1024 + 0x18, 40)  # s_log_block_size
    root, ctx = _parse_bytes(tmp_path, bytes(data))
    [fs] = root.children
    assert fs.raw and any("s_log_block_size" in m for m in ctx.errors)


def test_directory_loop_and_bad_rec_len_are_reported(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-file-mtime")
    data = bytearray(a.read_bytes())
    fs = _fs(a, [])
    d = fs.child("dirs").child("/etc")  # type: ignore[union-attr]
    assert d is not None
    dirent = next(c for c in d.children if c.key == "/etc/os-release")
    ino_off = dirent.field_named("inode").extents[0].offset  # type: ignore[union-attr]
    struct.pack_into("<I", data, ino_off, 2)  # /etc/os-release -> the root directory: a loop
    passwd = next(c for c in d.children if c.key == "/etc/passwd")
    struct.pack_into("<H", data, passwd.field_named("rec_len").extents[0].offset, 3)  # type: ignore[union-attr]
    t0 = time.monotonic()
    root, ctx = _parse_bytes(tmp_path, bytes(data))
    assert time.monotonic() - t0 < 30
    assert any("linked twice" in m or "loop" in m for m in ctx.errors)
    assert any("bad entry" in m for m in ctx.errors)
    assert root.children[0].kind == "ext4"


@pytest.mark.parametrize("seed", range(6))
def test_random_metadata_corruption_never_raises(pair, tmp_path: Path, seed: int) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-htree")
    data = bytearray(a.read_bytes())
    rng = random.Random(seed)
    fs = _fs(a, [])
    hot = [(0x400, 0x800)]  # superblock, then descriptors, an inode table and the htree directory
    gdt = fs.child("gdt")
    hot.append((gdt.extents[0].offset, gdt.extents[0].end))  # type: ignore[union-attr]
    inodes = fs.child("inodes")
    hot.append((inodes.extents[0].offset, inodes.extents[0].offset + 64 * 256))  # type: ignore[union-attr]
    d = fs.child("dirs").child("/usr/share/zoneinfo")  # type: ignore[union-attr]
    hot.extend((e.offset, e.end) for e in d.extents)  # type: ignore[union-attr]
    for _ in range(40):
        lo, hi = rng.choice(hot)
        data[rng.randrange(lo, hi)] = rng.randrange(256)
    t0 = time.monotonic()
    root, _ctx = _parse_bytes(tmp_path, bytes(data))
    assert time.monotonic() - t0 < 60
    assert root.children  # a tree (possibly partial or raw with a message), never an exception


# -- end to end ------------------------------------------------------------------------------------------------

def _expected_rules(name: str) -> set[str]:
    """Return the rule ids listed in ``fixtures/pairs/<name>/expected-rules.txt`` (``ID  reason``, ``#`` comments)."""
    text = (PAIRS / name / "expected-rules.txt").read_text()
    return {line.split()[0] for line in (x.split("#", 1)[0].strip() for x in text.splitlines()) if line}


EXT4_PAIRS = sorted(p.name for p in PAIRS.iterdir() if p.name.startswith("ext4-") and (p / "a.img.xz").exists())


def test_ext4_pairs_have_expectations() -> None:
    assert len(EXT4_PAIRS) >= 18
    assert _expected_rules("ext4-file-attrs") == {"EXT014", "EXT012", "EXT011", "EXT006"}
    assert _expected_rules("ext4-file-content") == {"EXT014", "EXT005"}


@pytest.mark.parametrize("name", EXT4_PAIRS)
def test_pair_is_fully_explained(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    """The rules that fire on each ext4 pair are exactly those its expected-rules.txt names (a misfire fails)."""
    report = analyzed(name)
    assert report.summary.bytes_differing > 0
    assert report.summary.bytes_unexplained == 0
    fired = {f.rule.id for f in report.findings}
    assert fired == _expected_rules(name), fired
    assert not report.errors


def _finding(report, rule_id: str):  # type: ignore[no-untyped-def]
    [f] = [f for f in report.findings if f.rule.id == rule_id]
    return f


def test_uuid_finding_folds_every_checksum(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-defaults"), "EXT001")
    assert f.fields == ["disk/ext4/superblock/s_uuid"]
    folded = {d.field for d in f.derived}
    assert {"s_checksum", "bg_checksum", "i_checksum_lo", "i_checksum_hi", "det_checksum"} <= folded
    assert any(d.kind == "ext4.journal" and d.field == "s_uuid" for d in f.derived)
    assert any(d.node_path.endswith("superblock@group:1") for d in f.derived)  # the backup superblock copy


def _group(report):  # type: ignore[no-untyped-def]
    return [d for f in report.findings for d in f.causes + f.derived if d.count > 1]


def test_checksum_only_inodes_and_dir_blocks_form_groups(analyzed) -> None:  # type: ignore[no-untyped-def]
    """mke2fs without -U: 427 inode slots and 80 directory blocks differ in their checksums only; each kind becomes
    one group node, folded into s_uuid with the rest."""
    report = analyzed("ext4-random-uuid")
    f = _finding(report, "EXT001")
    assert f.fields == ["disk/ext4/superblock/s_uuid"]
    groups = _group(report)
    assert sorted((d.node_path, d.field, d.count, d.bytes, d.derived) for d in groups) == [
        ("disk/ext4/dirs/(checksums only)", "det_checksum", 80, 320, True),
        ("disk/ext4/inodes/(checksums only)", "i_checksum_hi", 427, 854, True),
        ("disk/ext4/inodes/(checksums only)", "i_checksum_lo", 427, 854, True),
    ]
    assert all(any(d is g for d in f.derived) for g in groups)
    [lo] = [d for d in groups if d.field == "i_checksum_lo"]
    [tails] = [d for d in groups if d.field == "det_checksum"]
    assert lo.seeds == ("ext4.superblock:s_uuid", "ext4.superblock:s_checksum_seed")[: len(lo.seeds)]
    assert tails.seeds[-1] == "ext4.inode:i_generation" and tails.extents_a[0] == Extent(5 * 4096 - 4, 4)
    table = 35 * 4096  # group 0's inode table (256-byte slots); inode 11 is the first member, 16 is left out
    assert len(lo.extents_a) == 427 and lo.extents_a[:6] == tuple(
        Extent(table + (ino - 1) * 256 + 0x7C, 2) for ino in (11, 12, 13, 14, 15, 17))
    assert (f.derived_count, len(f.derived), f.bytes) == (956, 25, 2104)
    assert report.summary.bytes_unexplained == 0 and report.summary.bytes_differing == 2108
    # the edited file's inode also differs in i_ctime: it is an inode of its own, its ctime a cause of its own
    ctime = _finding(report, "EXT005")
    assert [(d.node_path, d.field) for d in ctime.causes] == [("disk/ext4/inodes//usr/lib/libfoo.so", "i_ctime")]
    slot = Extent(table + 15 * 256, 256)
    assert not any(e.offset < slot.end and slot.offset < e.end for g in groups for e in g.extents_a)


def test_compared_inode_slots_do_not_keep_their_variable_fields(analyzed) -> None:  # type: ignore[no-untyped-def]
    """ext4-shifted: comparing two slots decodes their i_block and xattr fields without keeping them (a shifted
    1 GiB image kept 200 MB of them); the 3 slots whose variable part was looked up again keep theirs."""
    from imgdiff.formats.ext4.inodes import InodeSlot

    report = analyzed("ext4-shifted")
    for tree in (report.tree_a, report.tree_b):
        slots = [n.record for _k, n in tree.walk() if isinstance(n.record, InodeSlot)]
        assert (len(slots), sum(s._extra is not None for s in slots)) == (13, 3)


def test_side_b_takes_side_a_checksum_groups(analyzed) -> None:  # type: ignore[no-untyped-def]
    """Same geometry, same offsets: B's group nodes share A's places and hold B's own first values."""
    report = analyzed("ext4-random-uuid")

    def node(tree, *keys):  # type: ignore[no-untyped-def]
        for k in keys:
            tree = tree.child(k)
        return tree

    for container in ("inodes", "dirs"):
        na = node(report.tree_a, "ext4", container, "(checksums only)")
        nb = node(report.tree_b, "ext4", container, "(checksums only)")
        assert na is not nb and na.extents is nb.extents and na.attrs is nb.attrs
        assert all(fa.extents is fb.extents and fa.value != fb.value for fa, fb in zip(na.fields, nb.fields, strict=True))
    lo_b = node(report.tree_b, "ext4", "inodes", "(checksums only)").fields[0]
    assert (lo_b.name, lo_b.value, lo_b.display) == ("i_checksum_lo", 0xBB51, "0xbb51 (inode 11; 426 more inodes)")


def test_checksum_group_is_the_sum_of_its_members(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Grouped or not, the same findings own the same bytes and the same checksum fields (counted by member)."""
    from imgdiff.engine.analysis import analyze
    from imgdiff.formats.ext4 import grouped

    a, b = pair("ext4-random-uuid")
    together = analyze(a, b)
    monkeypatch.setattr(grouped, "GROUP_MIN", 428)
    apart = analyze(a, b)
    assert not _group(apart) and len(_group(together)) == 3

    def shape(report):  # type: ignore[no-untyped-def]
        out = {}
        for f in report.findings:
            exts = sorted((d.field, e) for d in f.derived for e in d.extents_a
                          if d.field in ("i_checksum_lo", "i_checksum_hi", "det_checksum"))
            out[f.rule.id] = (f.bytes, f.cause_count, f.derived_count, exts)
        return out

    assert shape(together) == shape(apart)
    assert shape(apart)["EXT001"][:3] == (2104, 1, 956) and len(shape(apart)["EXT001"][3]) == 438 + 431 + 80
    assert together.summary == apart.summary
    monkeypatch.setattr(grouped, "GROUP_MIN", 427)
    assert [(d.field, d.count) for d in _group(analyze(a, b))] == [("i_checksum_lo", 427), ("i_checksum_hi", 427)]
    monkeypatch.setattr(grouped, "GROUP_MIN", 81)
    assert [d.count for d in _group(analyze(a, b)) if d.field == "det_checksum"] == []
    monkeypatch.setattr(grouped, "GROUP_MIN", 80)
    assert [d.count for d in _group(analyze(a, b)) if d.field == "det_checksum"] == [80]


EXT_RULE_PAIRS = sorted(p.parent.name for p in PAIRS.glob("*/expected-rules.txt")
                        if "EXT0" in p.read_text() and (p.parent / "a.img.xz").exists())


def _members(diffs):  # type: ignore[no-untyped-def]
    """Every field a list of differences stands for, one entry per member's extent (a group: one per member)."""
    return sorted((d.kind, d.field, str(d.change), e.offset, e.length, side)
                  for d in diffs for side, exts in (("a", d.extents_a), ("b", d.extents_b)) for e in exts)


def _shape(report):  # type: ignore[no-untyped-def]
    return sorted((f.rule.id, f.location, f.bytes, f.cause_count, f.derived_count, f.paths, f.note,
                   _members(f.causes), _members(f.derived)) for f in report.findings)


@pytest.mark.parametrize("name", EXT_RULE_PAIRS)
def test_groups_are_the_sum_of_their_members(pair, monkeypatch: pytest.MonkeyPatch, name: str) -> None:  # type: ignore[no-untyped-def]
    """Grouped wherever a group can form (threshold 1) or nowhere: every pair with an ext4 rule gives the same
    findings, at the same place, owning the same bytes, causes and derived fields (each member's extent), paths
    and notes.  A group holds only what every rule tells apart from nothing else in it."""
    from imgdiff.engine.analysis import analyze
    from imgdiff.formats.ext4 import grouped

    a, b = pair(name)
    monkeypatch.setattr(grouped, "GROUP_MIN", 1)
    together = analyze(a, b)
    monkeypatch.setattr(grouped, "GROUP_MIN", 10**9)
    apart = analyze(a, b)
    assert not _group(apart)
    assert _shape(together) == _shape(apart)
    assert together.summary == apart.summary


def test_time_only_inodes_form_one_group(analyzed) -> None:  # type: ignore[no-untyped-def]
    """ext4-staging-many: 269 slots (files, a symlink, directories) differ only in their copied ctime/atime, their
    mkfs-clock crtime and their checksums: one group node, whose time fields are EXT005's causes and whose crtime
    and checksums EXT003 folds, like each member's own.  What a rule tells apart stays out."""
    from imgdiff.report.times import time_note

    report = analyzed("ext4-staging-many")
    groups = [(f.rule.id, d.field, d.count, d.bytes, d.derived) for f in report.findings for d in f.causes + f.derived
              if d.count > 1]
    assert sorted(groups) == [
        ("EXT003", "i_checksum_hi", 269, 538, True),
        ("EXT003", "i_checksum_lo", 269, 538, True),
        ("EXT003", "i_crtime", 269, 538, False),
        ("EXT005", "i_atime", 269, 269, False),
        ("EXT005", "i_ctime", 269, 269, False),
    ]
    ctimes = _finding(report, "EXT005")
    assert ctimes.location == "ext4 / inode tables"  # where the members are, not the group's own node
    assert time_note(ctimes) == (  # every member's value counts, not the first one's
        "A has one value in all 542 fields, 2026-11-28 19:52:24; B's times lie within 1 s (2026-11-28 19:52:30 … "
        "2026-11-28 19:52:31): written at one moment.")
    assert (ctimes.bytes, ctimes.cause_count, len(ctimes.causes), len(ctimes.paths)) == (542, 542, 6, 271)
    # the hard link's inode (EXT010 reads its two paths) and /etc/shadow (its mode differs) are inodes of their own
    assert sorted({str(d.attrs.get("path")) for d in ctimes.causes if d.count == 1}) == ["/etc/hosts", "/etc/shadow"]
    [ctime] = [d for d in ctimes.causes if d.count > 1 and d.field == "i_ctime"]
    members = ctime.attrs["member_paths"]
    assert isinstance(members, tuple) and len(members) == 269
    assert members[:4] == ("/etc", "/usr", "/usr/share", "/usr/share/doc") and "/usr/share/doc/pkg1/link" in members
    # renamed between the builds: another path names inode 16 in B (EXT019), so it is no member, nor is the file
    # whose mtime differs (EXT006), nor anything written just before mke2fs (its times are the mkfs clock: EXT003)
    table = 35 * 4096
    for ino in (11, 13, 14, 15, 16):
        slot = Extent(table + (ino - 1) * 256, 256)
        assert not any(slot.offset <= e.offset < slot.end for e in ctime.extents_a), ino
    assert "/etc/zz-name-a" not in members and not any(p.startswith("/var") for p in members)
    mkfs = _finding(report, "EXT003")
    late = {(str(d.attrs.get("path")), d.field) for d in mkfs.derived if d.count == 1}
    assert {("/var/lib/late/state1", "i_ctime"), ("/var/lib/late/state3", "i_atime")} <= late
    assert report.summary.bytes_differing == 2324 and report.summary.bytes_unexplained == 0


def test_side_b_takes_side_a_time_group(analyzed) -> None:  # type: ignore[no-untyped-def]
    """B's time group node shares A's places and attrs, and shows B's own first values."""
    report = analyzed("ext4-staging-many")
    na = report.tree_a.child("ext4").child("inodes").child("(times only)")
    nb = report.tree_b.child("ext4").child("inodes").child("(times only)")
    assert na is not nb and na.extents is nb.extents and na.attrs is nb.attrs
    assert [f.name for f in na.fields] == ["i_atime", "i_ctime", "i_checksum_lo", "i_checksum_hi", "i_crtime"]
    assert all(fa.extents is fb.extents and fa.value != fb.value for fa, fb in zip(na.fields, nb.fields, strict=True))
    assert nb.label == "269 inodes (only their times and checksums differ)"
    [crtime] = [f for f in nb.fields if f.name == "i_crtime"]
    assert crtime.display == "2026-11-28T19:52:35Z (inode 12; 268 more inodes; all 2026-11-28T19:52:35Z)"
    [atime] = [f for f in nb.fields if f.name == "i_atime"]  # B's atimes: read over two seconds
    assert atime.display == "2026-11-28T19:52:31Z (inode 12; 268 more inodes; all 2026-11-28T19:52:30Z … 2026-11-28T19:52:31Z)"


def test_time_group_without_metadata_checksums(analyzed) -> None:  # type: ignore[no-untyped-def]
    """ext4-staging-nocsum (-O ^metadata_csum): the time group holds times only, every byte of its slots at the
    checksum offsets equal, and nothing is derived from it."""
    report = analyzed("ext4-staging-nocsum")
    [f] = report.findings
    assert f.rule.id == "EXT005" and not f.derived and f.location == "ext4 / inode tables"
    assert sorted((d.field, d.count, d.bytes) for d in f.causes) == [("i_atime", 113, 113), ("i_ctime", 113, 113)]
    node = report.tree_a.child("ext4").child("inodes").child("(times only)")
    assert node.label == "113 inodes (only their times differ)" and not node.derived
    assert report.summary.bytes_differing == 226 and report.summary.bytes_unexplained == 0


def test_time_group_reads_htree_and_extent_tree_directories(analyzed) -> None:  # type: ignore[no-untyped-def]
    """ext4-staging-htree (random UUID, e2fsck -fD): /usr/share/man/man1 is an htree with an extent tree block,
    both differing only in their checksums; its 600 files still name the same inodes on both sides and join the
    time group (without the rec_len-chain reading or the extent-block check no group forms: 26 members)."""
    report = analyzed("ext4-staging-htree")
    ctimes = _finding(report, "EXT005")
    assert sorted((d.field, d.count, d.bytes) for d in ctimes.causes) == [("i_atime", 626, 626), ("i_ctime", 626, 626)]
    members = ctimes.causes[0].attrs["member_paths"]
    assert isinstance(members, tuple) and "/usr/share/man/man1/tool-with-a-long-name-600.1" in members
    folded = {d.field for d in _finding(report, "EXT001").derived}
    assert {"dt_checksum", "eb_checksum", "det_checksum", "i_checksum_lo"} <= folded
    assert report.summary.bytes_differing == 3908 and report.summary.bytes_unexplained == 0


def test_checksum_group_in_json(analyzed) -> None:  # type: ignore[no-untyped-def]
    """The JSON counts a group's members, bounds its offsets like any list, and a saved result keeps the count."""
    from imgdiff.report.json import load_report, report_to_dict

    report = analyzed("ext4-random-uuid")
    doc = report_to_dict(report)
    [f] = [f for f in doc["findings"] if f["rule"] == "EXT001"]
    assert (f["derived_total"], f["fields_total"], len(f["derived_details"])) == (956, 1, 25)
    [lo] = [d for d in f["derived_details"] if "count" in d and d["field"].endswith("/i_checksum_lo")]
    assert (lo["field"], lo["count"], len(lo["offsets_a"]), lo["offsets_a_total"]) == (
        "disk/ext4/inodes/(checksums only)/i_checksum_lo", 427, 200, 427)
    assert lo["offsets_a"][0] == [35 * 4096 + 10 * 256 + 0x7C, 2] and lo["bytes"] == 854
    whole = report_to_dict(report, limit=None)
    [wf] = [f for f in whole["findings"] if f["rule"] == "EXT001"]
    [lo_all] = [d for d in wf["derived_details"] if d.get("count") and d["field"].endswith("/i_checksum_lo")]
    assert len(lo_all["offsets_a"]) == 427 and "offsets_a_total" not in lo_all
    again = load_report(whole)
    [f2] = [f for f in again.findings if f.rule.id == "EXT001"]
    assert f2.derived_count == 956 and sorted(d.count for d in f2.derived if d.count > 1) == [80, 427, 427]


def test_checksum_group_rows_count_members_and_say_values_vary(analyzed) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.report.rows import group_rows

    f = _finding(analyzed("ext4-random-uuid"), "EXT001")
    rows = {r.first.field: r for r in group_rows(f.derived) if r.first.kind in ("ext4.inode", "ext4.dir_block")}
    assert {k: (r.count, r.same_values, r.places()[1]) for k, r in rows.items()} == {
        "det_checksum": (80, False, 80), "i_checksum_lo": (438, False, 438), "i_checksum_hi": (431, False, 431)}


def test_checksum_groups_are_looked_for_only_when_a_checksum_seed_differs(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """ext4-staging-times (20 inodes differ in i_ctime, same UUID): even with a group threshold of 1, the
    search for checksum-only slots and blocks never starts; ext4-random-uuid (another UUID) starts it."""
    from imgdiff.engine.analysis import analyze
    from imgdiff.formats.ext4 import grouped

    calls: list[str] = []
    placed = grouped._placed_alike
    monkeypatch.setattr(grouped, "GROUP_MIN", 1)
    monkeypatch.setattr(grouped, "_placed_alike",
                        lambda vol, csum=True: (csum and calls.append(vol.ctx.side)) or placed(vol, csum))
    report = analyze(*pair("ext4-staging-times"))
    assert calls == [] and not [d for d in _group(report) if d.node_path.endswith("(checksums only)")]
    analyze(*pair("ext4-random-uuid"))
    assert calls == ["a", "a"]  # inodes, then directories; side B takes side A's groups


def test_checksum_groups_stop_at_the_end_of_a_truncated_image(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """B cut in the middle of the inode table: only slots wholly inside both images join the group, and every
    differing byte is still counted in exactly one finding."""
    from imgdiff.engine.analysis import analyze

    a, b = pair("ext4-random-uuid")
    cut = tmp_path / "b.img"
    end = 35 * 4096 + 200 * 256 + 100  # inside the slot of inode 201
    cut.write_bytes(b.read_bytes()[:end])
    report = analyze(a, cut)
    [lo] = [d for d in _group(report) if d.field == "i_checksum_lo"]
    assert lo.extents_a[-1].end <= end and lo.count == 189  # inodes 11-200 less /usr/lib/libfoo.so's 16
    assert sum(f.bytes for f in report.findings) == report.summary.bytes_differing


def test_checksum_group_needs_the_same_inode_placement(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """When the descriptors place group 0's inode table elsewhere in B, no slot pairs with its namesake: no group."""
    from imgdiff.engine.analysis import analyze

    a, b = pair("ext4-random-uuid")
    moved = tmp_path / "b.img"
    shutil.copyfile(b, moved)
    with moved.open("r+b") as fh:  # bg_inode_table_lo of group 0 (descriptor table in block 1, 4 KiB blocks)
        fh.seek(4096 + 8)
        table = struct.unpack("<I", fh.read(4))[0]
        fh.seek(4096 + 8)
        fh.write(struct.pack("<I", table + 1))
    report = analyze(a, moved)
    assert not _group(report)
    assert report.summary.bytes_differing > 2108


def test_mkfs_clock_finding_names_reserved_inodes_and_crtime(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-defaults"), "EXT003")
    folded = {(d.attrs.get("path") or d.node_path.rsplit("/", 1)[-1], d.field) for d in f.derived}
    assert ("/", "i_mtime") in folded and ("/lost+found", "i_ctime") in folded
    assert ("/etc/os-release", "i_crtime") in folded
    assert {"s_wtime", "s_lastcheck"} <= {d.field for d in f.derived}


def test_hash_seed_finding_folds_the_htree(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-htree"), "EXT002")
    assert f.fields == ["disk/ext4/superblock/s_hash_seed"]
    kinds = {d.kind for d in f.derived}
    assert {"ext4.dx_root", "ext4.dirent"} <= kinds
    assert any(d.change == "moved" for d in f.derived)


def test_single_file_mtime(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-file-mtime"), "EXT006")
    assert f.paths == ["/etc/os-release"]
    [cause] = f.causes
    assert cause.ref == "disk/ext4/inodes//etc/os-release/i_mtime" and (cause.a, cause.b) == (1700000000, 1700003600)
    assert {d.field for d in f.derived} >= {"i_ctime", "i_checksum_lo"}


def test_content_finding_names_the_range_inside_the_file(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-file-content"), "EXT014")
    [cause] = f.causes
    assert cause.attrs["path"] == "/usr/lib/libfoo.so" and cause.field == "data"
    assert cause.detail is not None and "0x9c40-0x9c42 (3 bytes)" in cause.detail
    assert cause.content_a is not None and cause.content_b is not None
    assert cause.content_b[0x9C40:0x9C43] == b"XYZ"


def test_content_mode_owner_mtime_of_one_file_are_four_findings(analyzed) -> None:  # type: ignore[no-untyped-def]
    """One inode, four independent changes: the content finding folds only what the data determines."""
    report = analyzed("ext4-file-attrs")
    by_rule = {f.rule.id: f for f in report.findings}
    assert sorted(by_rule) == ["EXT006", "EXT011", "EXT012", "EXT014"]
    ino = "disk/ext4/inodes//usr/share/app/config"
    content = by_rule["EXT014"]
    assert [d.ref for d in content.causes] == ["disk/ext4/files//usr/share/app/config/data"]
    assert content.causes[0].detail == "differing bytes in the file: 0x8-0xb (4 bytes), 0x14-0x14 (1 bytes)"
    assert content.derived == []  # same size, same blocks: nothing in the inode follows from the data
    [mode] = by_rule["EXT012"].causes
    assert (mode.ref, mode.a, mode.b) == (f"{ino}/i_mode", 0o100666, 0o100444)
    owner = {(d.field, d.a, d.b) for d in by_rule["EXT011"].causes}
    assert owner == {("i_uid", 1234, 4321), ("i_gid", 1234, 4321)}
    [mtime] = by_rule["EXT006"].causes
    assert (mtime.ref, mtime.a, mtime.b) == (f"{ino}/i_mtime", 1700000000, 1700007200)
    assert [d.field for d in by_rule["EXT006"].derived] == ["i_ctime"]
    # every differing byte is in exactly one finding (the inode checksum goes with the first cause covering it)
    assert sum(f.bytes for f in report.findings) == report.summary.bytes_differing == 18


def test_symlink_target_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("ext4-symlink-target")
    [f] = report.findings
    assert f.rule.id == "EXT016" and f.rule.layer == "content"
    got = {(d.ref, d.a, d.b) for d in f.causes}
    slow = "/opt/" + "d" * 80 + "/bin/tool"
    assert got == {("disk/ext4/inodes//usr/bin/link/i_block", "/usr/bin/toolA", "/usr/bin/toolB"),
                   ("disk/ext4/files//usr/bin/slow/data", slow + "A", slow + "B")}
    assert {d.field for d in f.derived} == {"i_checksum_lo", "i_checksum_hi"}
    assert f.bytes == report.summary.bytes_differing == 6


def test_device_number_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("ext4-device-number")
    [f] = report.findings
    assert f.rule.id == "EXT017" and f.paths == ["/dev/console"]
    [cause] = f.causes
    assert (cause.field, cause.a, cause.b) == ("i_block[0]", 0x501, 0x502)
    assert (cause.display_a, cause.display_b) == ("device 5:1", "device 5:2")
    assert f.bytes == report.summary.bytes_differing == 5


def test_inline_data_content_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("ext4-inline-data")
    [f] = report.findings
    assert f.rule.id == "EXT014" and f.paths == ["/etc/big", "/etc/small"]
    detail = {d.attrs["path"]: d.detail for d in f.causes}
    # byte 80 of /etc/big lies in the system.data xattr value, byte 10 of /etc/small in i_block
    assert detail == {"/etc/big": "differing bytes in the file: 0x50-0x50 (1 bytes)",
                      "/etc/small": "differing bytes in the file: 0xa-0xa (1 bytes)"}
    assert not any(d.field.startswith("xattr") for d in f.causes + f.derived)
    assert f.bytes == report.summary.bytes_differing == 10


def test_grown_filesystem_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("ext4-resize-grown")
    [f] = report.findings
    assert f.rule.id == "EXT018"
    [cause] = f.causes
    assert (cause.ref, cause.a, cause.b) == ("disk/ext4/superblock/s_blocks_count_lo", 32768, 65536)
    folded = {(d.node_path.removeprefix("disk/ext4/"), d.field) for d in f.derived}
    assert {("superblock", "s_inodes_count"), ("superblock", "s_overhead_clusters"),
            ("superblock", "s_r_blocks_count_lo"), ("superblock", "s_free_blocks_count_lo"),
            ("superblock@group:5", "(node)"), ("superblock@group:7", "(node)"), ("gdt/gd:4", "(node)"),
            ("bbitmap:5", "(node)"), ("rgdt", "rgdt[0]"), ("inodes/ino:7", "i_blocks_lo"),
            ("free:0", "unused")} <= folded
    # the grown groups' free space is zeros on both sides: not "stale bytes"
    assert "EXT015" not in {x.rule.id for x in report.findings}
    # every differing byte belongs to one finding: the free space that moved and the metadata now stored there
    # are in the same finding, so nothing is counted twice
    assert f.bytes == report.summary.bytes_differing == 2063


def _mkfs(path: Path, size: str) -> None:
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-U", "6e7f8091-a2b3-44c5-96d7-e8f90a1b2c3d",
                    "-E", "hash_seed=6e7f8091-a2b3-44c5-96d7-e8f90a1b2c3d", str(path), size], check=True,
                   capture_output=True, env={"E2FSPROGS_FAKE_TIME": "1700000100", "PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})


@pytest.mark.skipif(not (have("mke2fs") and have("resize2fs") and have("debugfs")), reason="needs e2fsprogs")
def test_grown_needs_resize2fs_evidence(tmp_path: Path) -> None:
    """EXT018 fires for resize2fs output (with or without s_overhead_clusters), not for mke2fs at another size."""
    from imgdiff.engine.analysis import analyze

    env = {"E2FSPROGS_FAKE_TIME": "1700000100", "PATH": "/usr/sbin:/sbin:/usr/bin:/bin"}
    small, fresh, grown = tmp_path / "small.img", tmp_path / "fresh.img", tmp_path / "grown.img"
    for p in (small, fresh):
        subprocess.run(["truncate", "-s", "64M", str(p)], check=True)
    _mkfs(small, "32M")
    _mkfs(fresh, "64M")  # made at the larger size: not grown
    shutil.copy(small, grown)
    subprocess.run(["resize2fs", str(grown)], check=True, capture_output=True, env=env)
    fired = {f.rule.id for f in analyze(small, fresh).findings}
    assert "EXT018" not in fired
    assert {f.rule.id for f in analyze(small, grown).findings} == {"EXT018"}
    # mke2fs before 1.46.0 left s_overhead_clusters 0: the kept reserved GDT area still shows the resize
    for p in (small, grown):
        subprocess.run(["debugfs", "-w", "-R", "ssv overhead_clusters 0", str(p)], check=True, capture_output=True)
    assert {f.rule.id for f in analyze(small, grown).findings} == {"EXT018"}


def _diff(kind: str, field: str, change: str = "modified", **attrs: object):  # type: ignore[no-untyped-def]
    from imgdiff.model import Difference

    return Difference(node_path=f"disk/ext4/x/{field}", kind=kind, field=field, change=change, a=1, b=2,
                      extents_a=(), extents_b=(), location="", attrs=dict(attrs), scope="disk/ext4")


def test_whole_kind_folds_leave_content_alone() -> None:
    """The allocation-driven folds (kernel population, creation order, hash seed) take block maps and placement,
    never a symlink target, a device number, a changed file's data or a live directory entry's inode."""
    from imgdiff.ruleset.predicates import PREDICATES, ExplainContext, load_all

    load_all()
    ctx = ExplainContext()
    block_map, relocated, htree = (PREDICATES[n] for n in ("ext4_block_map_field", "ext4_data_relocated",
                                                            "ext4_htree_placement"))
    assert block_map(_diff("ext4.inode", "i_block.extent[0].ee_start_lo", file_type="reg"), ctx)
    assert block_map(_diff("ext4.inode", "i_block", file_type="reg"), ctx)  # indirect block pointers
    assert not block_map(_diff("ext4.inode", "i_block", file_type="lnk"), ctx)  # a fast symlink's target
    assert not block_map(_diff("ext4.inode", "i_block[0]", file_type="chr"), ctx)  # a device number
    moved = _diff("ext4.file", "data", path="/a")
    assert relocated(moved, ctx)  # same content elsewhere: the engine leaves detail empty
    changed = dataclasses.replace(_diff("ext4.file", "data", path="/a"),
                                  detail="differing bytes in the file: 0x0-0x0 (1 bytes)")  # differences are frozen
    assert not relocated(changed, ctx)
    assert htree(_diff("ext4.dirent", "rec_len", htree=True), ctx)
    assert htree(_diff("ext4.dirent", "inode", "moved", htree=True), ctx)
    assert not htree(_diff("ext4.dirent", "inode", htree=True), ctx)  # the path points to another inode
    assert not htree(_diff("ext4.dirent", "(node)", "added", htree=True), ctx)  # an entry added: content
    assert not htree(_diff("ext4.dirent", "rec_len", htree=False), ctx)


def test_order_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-order"), "EXT009")
    assert {"/etc/passwd", "/usr/bin/tool"} <= set(f.paths)
    assert all(d.kind == "ext4.dirent" and d.field == "inode" for d in f.causes)


def test_kernel_population_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    f = _finding(analyzed("ext4-kernel"), "EXT008")
    assert all(d.field == "i_generation" for d in f.causes) and len(f.causes) >= 20
    derived = {(d.kind, d.field) for d in f.derived}
    assert ("ext4.superblock", "s_wtime") in derived
    assert any(k == "ext4.journal_block" for k, _f in derived)


def test_staging_times_split_dirs_from_files(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("ext4-staging-times")
    dirs = _finding(report, "EXT004")
    assert set(dirs.paths) == {"/nix", "/nix/store", "/usr", "/usr/share"}
    files = _finding(report, "EXT005")
    assert "/nix/store/abcd-hello/bin/hello" in files.paths
    assert all(d.field == "i_ctime" for d in files.causes)


def test_cli_json(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("ext4-hardlinks")
    out = subprocess.run([sys.executable, "-m", "imgdiff", "explain", "--json", str(a), str(b)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["summary"]["bytes_unexplained"] == 0
    [f] = doc["findings"]
    assert f["rule"] == "EXT010" and f["layer"] == "other"
    assert f["paths"] == ["/nix/store/aaaa-glibc/lib/libc.so"]


@pytest.mark.skipif(not have("mke2fs"), reason="needs mke2fs")
def test_one_kib_blocks_and_identical_rebuild(tmp_path: Path) -> None:
    """A 1 KiB-block filesystem parses with full coverage, and two pinned builds are byte-identical."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_text("x\n")
    # mke2fs -d copies st_atime, and under relatime the first read of a fresh file (or listing of a fresh
    # directory) updates it: read everything once so both builds copy the same atimes (see EXT005).
    (src / "etc" / "hostname").read_bytes()
    list((src / "etc").iterdir())
    list(src.iterdir())
    imgs = []
    for side in "ab":
        img = tmp_path / f"{side}.img"
        subprocess.run(["mke2fs", "-q", "-t", "ext4", "-b", "1024", "-U", "11111111-2222-4333-8444-555555555555",
                        "-E", "hash_seed=11111111-2222-4333-8444-555555555555", "-d", str(src), str(img), "8M"],
                       check=True, env={"E2FSPROGS_FAKE_TIME": "1700000000", "PATH": "/usr/sbin:/sbin:/usr/bin:/bin"},
                       capture_output=True)
        imgs.append(img)
    assert imgs[0].read_bytes() == imgs[1].read_bytes()
    root, ctx = _tree(imgs[0])
    fs = root.children[0]
    assert fs.attrs["block_size"] == 1024 and not ctx.errors
    assert fs.child("boot") is not None and fs.child("superblock@group:0") is None
    total = sum(e.length for n in _walk(root) for f in n.all_fields() for e in f.extents)
    assert total == imgs[0].stat().st_size
    assert shutil.which("mke2fs")


def test_one_added_file_moves_everything_after_it_into_one_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    """mke2fs -d allocates in sorted walk order: /0-added.txt in B moves every later inode and data block."""
    report = analyzed("ext4-shifted")
    assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (219355, 0)
    (f,) = report.findings
    assert f.rule.id == "EXT019" and f.bytes == 219355
    assert f.paths == ["/0-added.txt"]
    assert f.note == (
        "added: /0-added.txt; 12 path(s) got other inode numbers and 6 file(s) other data blocks, with equal content"
    )
    # the moved files' contents are equal: no data difference of a moved file is a cause anywhere
    assert not [d for d in f.causes if d.kind == "ext4.file" and d.field == "data"]


def _volumes(monkeypatch: pytest.MonkeyPatch, a: Path, b: Path) -> tuple[list[object], tuple[Node, Node]]:
    """Analyse ``a`` against ``b``; return the ext4 volumes parsed (side A's first) and the two trees."""
    from imgdiff.engine.analysis import analyze
    from imgdiff.formats.ext4.volume import Volume

    seen: list[object] = []
    walk = Volume._walk

    def spy(self: Volume) -> None:
        seen.append(self)
        walk(self)

    monkeypatch.setattr(Volume, "_walk", spy)
    report = analyze(a, b)
    assert report.tree_a is not None and report.tree_b is not None
    return seen, (report.tree_a, report.tree_b)


def test_side_b_reuses_the_scan_of_inodes_whose_times_alone_differ(pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Inodes whose differing bytes are times and checksums only are scanned once: B takes A's results and, its
    directories being equal, A's walk; an inode whose i_mode differs is scanned again."""
    (va, vb), trees = _volumes(monkeypatch, *pair("ext4-staging-times"))
    assert len(va.inodes) == 31  # type: ignore[attr-defined]
    assert all(vb.inodes[ino] is info for ino, info in va.inodes.items())  # type: ignore[attr-defined]
    assert vb.paths is va.paths  # type: ignore[attr-defined]
    # and B's nodes of the differing inodes share everything but their bytes with A's
    inodes_a, inodes_b = (next(n for _k, n in tree.walk() if n.kind == "ext4.inodes") for tree in trees)
    assert len(inodes_a.children) == len(inodes_b.children) == 20
    for na, nb in zip(inodes_a.children, inodes_b.children, strict=True):
        assert (nb.key, nb.attrs, nb.derived) == (na.key, na.attrs, na.derived)
        assert nb.attrs is na.attrs and nb.derived is na.derived and nb.record is not na.record
    (va, vb), _ = _volumes(monkeypatch, *pair("ext4-file-attrs"))
    mode_changed = [p for p, ino in va.paths.items() if va.inodes[ino].mode != vb.inodes[ino].mode]  # type: ignore[attr-defined]
    assert mode_changed == ["/usr/share/app/config"]
    assert vb.inodes[va.paths["/usr/share/app/config"]] is not va.inodes[va.paths["/usr/share/app/config"]]  # type: ignore[attr-defined]


def test_deleted_entries_are_found_in_the_slack_of_a_live_entry() -> None:
    """The words of a live entry's slack are candidates for deleted entries; runs of zeros and garbage are not."""
    from types import SimpleNamespace

    from imgdiff.formats.ext4.dirs import hidden_entries

    block = bytearray(4096)
    struct.pack_into("<IHBB", block, 0, 12, 4096, 1, 1)  # the live entry "a" spans the block
    block[8:9] = b"a"
    struct.pack_into("<IHBB", block, 1024, 13, 24, 8, 1)  # a deleted "gone.txt"
    block[1032:1040] = b"gone.txt"
    block[2001] = 0xFF  # garbage: inode number 65280, past the inode count
    struct.pack_into("<IHBB", block, 3000, 14, 16, 3, 1)  # a deleted "old"
    block[3008:3011] = b"old"
    vol = SimpleNamespace(inodes_count=100)
    assert hidden_entries(vol, bytes(block), 9, 4096) == [1024, 3000]  # type: ignore[arg-type]
    assert hidden_entries(vol, bytes(block), 1040, 4096) == [3000]  # type: ignore[arg-type]
    assert hidden_entries(vol, bytes(4096), 0, 4096) == []  # type: ignore[arg-type]


def test_set_bits_of_an_inode_bitmap() -> None:
    from imgdiff.formats.ext4.volume import _set_bits

    assert _set_bits(b"\x05\xff\x80", 24) == [0, 2, 8, 9, 10, 11, 12, 13, 14, 15, 23]
    assert _set_bits(b"\x05\xff\x80", 12) == [0, 2, 8, 9, 10, 11]  # none at or past ``top``
    assert _set_bits(b"\x00\x00", 16) == []


def test_one_extent_root_with_no_room_is_an_error(pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An i_block extent header saying one entry but room for none is reported, not mapped (the one-extent shortcut
    checks what the general walk checks)."""
    from imgdiff.formats.ext4.volume import InodeInfo

    (vol, _vb), _trees = _volumes(monkeypatch, *pair("ext4-defaults"))
    iblock = struct.pack("<HHHHI", 0xF30A, 1, 0, 0, 0) + struct.pack("<IHHI", 0, 1, 0, 100) + bytes(36)
    info = InodeInfo(99, 0o100644, 0x80000, 4096, 1, 0, 0)
    vol._map_extents(info, iblock)  # type: ignore[attr-defined]
    assert info.runs == [] and info.errors == ["extent header eh_depth=0 eh_entries=1 eh_max=0 not plausible"]
    good = InodeInfo(98, 0o100644, 0x80000, 4096, 1, 0, 0)
    vol._map_extents(good,  # type: ignore[attr-defined]
                      struct.pack("<HHHHI", 0xF30A, 1, 4, 0, 0) + struct.pack("<IHHI", 0, 1, 0, 100) + bytes(36))
    assert good.runs == [(0, 100, 1, False)] and good.errors is None


@pytest.mark.parametrize(("name", "expected"), [
    # another UUID: every directory block differs in its checksum only, so side B reads A's entries again
    ("ext4-defaults", [("/", True, False), ("/etc", True, False), ("/lost+found", True, False), ("/usr", True, False)]),
    # another walk order: the entries themselves differ
    ("ext4-order", [("/", True, True), ("/etc", True, True), ("/usr", True, True), ("/usr/bin", True, True)]),
])
def test_a_checksum_tail_alone_does_not_make_directory_entries_differ(pair, monkeypatch, name: str,
                                                                      expected: list[tuple[str, bool, bool]]) -> None:
    from imgdiff.engine.analysis import analyze
    from imgdiff.formats.ext4 import volume

    made: list[volume.Volume] = []
    init = volume.Volume.__init__

    def spy(self: volume.Volume, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(volume.Volume, "__init__", spy)
    report = analyze(*pair(name), keep_open=True)
    try:
        b = made[-1]
        got = []
        for path, ino in sorted(b.paths.items()):
            info = b.inodes.get(ino)
            if info is not None and info.mode & 0o170000 == 0o040000 and b._dir_differs(info):
                got.append((path, True, b._dir_entries_differ(info)))
        assert got[:4] == expected
    finally:
        report.close()


def test_an_inode_slot_cut_by_the_image_end_keeps_only_its_bytes_before_it(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("ext4-htree")
    root, _ctx = _parse_bytes(tmp_path, a.read_bytes()[: 146944 + 100])  # 100 bytes into inode 15's slot
    [fs] = root.children
    inodes = fs.child("inodes")
    assert inodes is not None
    [cut] = [c for c in inodes.children if c.extents and c.extents[0].offset == 146944]
    assert cut.key == "ino:15" and cut.record is None and cut.extents == (Extent(146944, 100),)
    assert len(cut.fields) == 22 and max(e.end for f in cut.fields for e in f.extents) == 146944 + 100
    assert (cut.fields[-1].name, cut.fields[-1].extents) == ("i_block.unused", (Extent(147008, 36),))

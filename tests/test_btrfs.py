"""btrfs: literal values from the mkfs.btrfs fixture pairs, the dissect.btrfs and dump-tree/dump-super oracles,
byte-coverage invariants, lazy building, hostile input, and the end-to-end findings on every btrfs pair."""

from __future__ import annotations

import io
import itertools
import random
import re
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdiff.formats import btrfs, parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.model import Extent, Node
from imgdiff.source import DiffMap, ImageSource

from .conftest import PAIRS, have

ALL_BTRFS_PAIRS = sorted(p.name for p in PAIRS.iterdir() if p.name.startswith("btrfs-") and (p / "a.img.xz").exists())
BTRFS_PAIRS = [p for p in ALL_BTRFS_PAIRS if p != "btrfs-repart"]  # bare filesystems (btrfs-repart has a GPT)
UUID = "6b7c3bf8-2ad4-4e2c-9f55-1b1c0a8f2f10"  # the -U of btrfs-mkosi


def _tree(path: Path, ranges: list[tuple[int, int]] | None = None) -> tuple[Node, ParseContext]:
    """Parse ``path`` as if the bytes in ``ranges`` differed (None: every byte; []: none)."""
    src = ImageSource(str(path))
    dm = DiffMap(base=0, length=src.size)
    for s, e in [(0, src.size)] if ranges is None else ranges:
        dm.starts.append(s)
        dm.ends.append(e)
        dm.counts.append(e - s)
    ctx = ParseContext(src=src, diff=dm)
    return parse_image(ctx), ctx


_FULL: dict[Path, Node] = {}


def _fs(path: Path, ranges: list[tuple[int, int]] | None = None) -> Node:
    """Return the btrfs node of ``path`` (parses with every byte differing are shared within the session)."""
    if ranges is None and path in _FULL:
        return _FULL[path]
    root, _ctx = _tree(path, ranges)
    [fs] = root.children
    assert fs.kind == "btrfs", fs.errors
    if ranges is None:
        _FULL[path] = fs
    return fs


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for c in node.children:
        yield from _walk(c)


def _read(path: Path, exts: tuple[Extent, ...]) -> bytes:
    with open(path, "rb") as f:
        out = b""
        for e in exts:
            f.seek(e.offset)
            out += f.read(e.length)
        return out


def _child(node: Node | None, key: str) -> Node:
    assert node is not None
    got = node.child(key)
    assert got is not None, (node.key, key, [c.key for c in node.children][:20])
    return got


# -- recognition and literal values -------------------------------------------------------------------------------


def test_recognizes_btrfs_and_nothing_else(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("btrfs-mkosi")
    head = a.read_bytes()[:0x11000]
    assert btrfs.recognizes(head, a.stat().st_size)
    assert not btrfs.recognizes(head[:0x10000], 0x10000)  # too small to hold the superblock
    for other in ("ext4-hash-seed", "vfat-volid"):
        data = pair(other)[0].read_bytes()[:0x11000]
        assert not btrfs.recognizes(data, len(data))


def test_superblock_literals(pair) -> None:  # type: ignore[no-untyped-def]
    fs = _fs(pair("btrfs-mkosi")[0])
    assert fs.attrs["fsid"] == UUID and fs.attrs["label"] == "root"
    assert (fs.attrs["nodesize"], fs.attrs["sectorsize"], fs.attrs["csum_type"]) == (16384, 4096, "crc32c")
    sb = _child(fs, "superblock")
    f = {x.name: x for x in sb.fields}
    assert f["magic"].value == b"_BHRfS_M" and f["magic"].extents == (Extent(0x10040, 8),)
    assert f["bytenr"].value == 65536 and f["nodesize"].value == 16384
    assert f["fsid"].value == UUID and f["dev_item.fsid"].value == UUID
    assert f["incompat_flags"].display == "MIXED_BACKREF|EXTENDED_IREF|SKINNY_METADATA|NO_HOLES"
    assert f["compat_ro_flags"].display == "FREE_SPACE_TREE|FREE_SPACE_TREE_VALID"
    assert f["sys_chunk_array[0].key.type"].value == 228 and f["sys_chunk_array[0].num_stripes"].value == 2
    assert f["sys_chunk_array[0].stripe[0].dev_uuid"].value == f["dev_item.uuid"].value
    assert [d.field for d in sb.derived] [:1] == ["csum"]
    assert sb.derived[0].covers == (Extent(0x10020, 4096 - 32),)
    mirror = _child(fs, "superblock@mirror:1")
    assert mirror.extents == (Extent(64 << 20, 4096),)
    # every mirror field is a copy of the primary's field of the same name
    cov = {d.field: d.covers for d in mirror.derived}
    assert cov["fsid"] == f["fsid"].extents and cov["dev_item.uuid"] == f["dev_item.uuid"].extents
    assert fs.child("superblock@mirror:2") is None  # 256 GiB is beyond this device


@pytest.mark.skipif(not have("btrfs"), reason="btrfs-progs not installed")
@pytest.mark.parametrize("name", ["btrfs-mkosi", "btrfs-features"])
def test_superblock_agrees_with_dump_super(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    path = pair(name)[1]
    out = subprocess.run(["btrfs", "inspect-internal", "dump-super", "-f", str(path)], capture_output=True,
                         text=True, check=True).stdout
    want = dict(re.findall(r"^(\w[\w.]*)[ \t]+(\S+)", out, re.MULTILINE))
    f = {x.name: x.value for x in _child(_fs(path, []), "superblock").fields}
    for name_ in ("generation", "root", "chunk_root", "total_bytes", "bytes_used", "nodesize", "sectorsize",
                  "num_devices", "chunk_root_generation", "cache_generation", "dev_item.devid", "dev_item.total_bytes",
                  "dev_item.bytes_used"):
        assert str(f[name_]) == want[name_] or f[name_] == int(want[name_]) & ((1 << 64) - 1), name_
    for name_ in ("fsid", "dev_item.uuid"):
        assert f[name_] == want[name_], name_
    # dump-super shows the fsid as metadata_uuid when the METADATA_UUID feature is off; on disk it is zero
    assert want["metadata_uuid"] == f["fsid"] and f["metadata_uuid"] == "00000000-0000-0000-0000-000000000000"
    assert f["compat_ro_flags"] == int(want["compat_ro_flags"], 16)
    assert f["incompat_flags"] == int(want["incompat_flags"], 16)


def _dump_tree(path: Path) -> dict[int, tuple[int, int, int, str, list[tuple[str, int, int]]]]:
    """Return, per live block of ``btrfs inspect-internal dump-tree``: level, generation, nritems, owner, items."""
    out = subprocess.run(["btrfs", "inspect-internal", "dump-tree", str(path)], capture_output=True, text=True,
                         check=True).stdout
    blocks: dict[int, tuple[int, int, int, str, list[tuple[str, int, int]]]] = {}
    items: list[tuple[str, int, int]] = []
    for line in out.splitlines():
        m = re.match(r"(leaf|node) (\d+) (?:level (\d+) )?items (\d+) free(?: space)? (?:\d+ )?generation (\d+) "
                     r"owner (\S+)", line)
        if m:
            items = []
            level = int(m.group(3) or 0)
            blocks[int(m.group(2))] = (level, int(m.group(5)), int(m.group(4)), m.group(6), items)
            continue
        m = re.match(r"\titem \d+ key \(\S+ (\S+) \S+\) itemoff (\d+) itemsize (\d+)", line)
        if m:
            items.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return blocks


def _assert_matches_dump_tree(path: Path) -> None:
    """Every live block dump-tree prints is a block node with the same header, and its items in order."""
    want = _dump_tree(path)
    fs = _fs(path)
    got: dict[int, tuple[int, int, int, str, list[tuple[str, int, int]]]] = {}
    for tree in (c for c in fs.children if c.kind == "btrfs.tree"):
        items = [c for c in tree.children if c.kind not in ("btrfs.leaf", "btrfs.node")]
        for blk in (c for c in tree.children if c.kind in ("btrfs.leaf", "btrfs.node")):
            f = {x.name: x for x in blk.fields}
            owner = str(f["owner"].display or f["owner"].value)
            start = blk.extents[0].offset
            inside = sorted((n for n in items if start <= n.extents[0].offset and n.extents[0].end <= start + 16384),
                            key=lambda n: n.extents[0].offset)
            rows = [(str(n.field_named("item.key.type").display), int(n.field_named("item.offset").value),
                     int(n.field_named("item.size").value)) for n in inside]  # type: ignore[union-attr,arg-type]
            got[int(f["bytenr"].value)] = (int(f["level"].value), int(f["generation"].value),  # type: ignore[arg-type]
                                           int(f["nritems"].value), owner, rows)  # type: ignore[arg-type]
    assert got == want


@pytest.mark.skipif(not have("btrfs"), reason="btrfs-progs not installed")
@pytest.mark.parametrize("name", BTRFS_PAIRS)
def test_tree_blocks_and_items_agree_with_dump_tree(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    for path in pair(name):
        _assert_matches_dump_tree(path)


@pytest.mark.skipif(not have("btrfs"), reason="btrfs-progs not installed")
def test_chunk_map_agrees_with_dump_tree(pair) -> None:  # type: ignore[no-untyped-def]
    path = pair("btrfs-mkosi")[0]
    out = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "chunk", str(path)], capture_output=True,
                         text=True, check=True).stdout
    want = [(int(lg), int(ln)) for lg, ln in re.findall(r"CHUNK_ITEM (\d+)\).*?\n\s+length (\d+)", out)]
    parser = btrfs.Btrfs(ParseContext(src=ImageSource(str(path))), 0, path.stat().st_size, "x")
    assert [(c.logical, c.length) for c in parser.cmap.chunks] == want == [
        (13631488, 8388608), (22020096, 8388608), (30408704, 33554432)]
    # DUP metadata: two copies 32 MiB apart on the device, SINGLE data: one
    assert [e.offset for c in parser.cmap.copies(30441472, 16384) for e in c] == [38830080, 72384512]
    assert parser.cmap.copies(13631488, 4096) == [(Extent(13631488, 4096),)]


# -- the dissect.btrfs oracle --------------------------------------------------------------------------------------


def _dissect_walk(fs, path: str = "/"):  # type: ignore[no-untyped-def]
    node = fs.get(path)
    yield path, node
    if node.is_dir():
        for name, child in node.iterdir():
            if name in (".", ".."):
                continue
            yield from _dissect_walk(fs, f"{path.rstrip('/')}/{name}")


class _Window(io.RawIOBase):
    """A read-only view of ``[base, base + size)`` of a file (a partition, for dissect.btrfs)."""

    def __init__(self, fh: io.BufferedReader, base: int, size: int) -> None:
        self.fh, self.base, self.size, self.pos = fh, base, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = off if whence == 0 else (self.pos + off if whence == 1 else self.size + off)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
        n = max(0, min(len(buf), self.size - self.pos))
        self.fh.seek(self.base + self.pos)
        data = self.fh.read(n)
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _btrfs_nodes(path: Path) -> Node:
    """Return the btrfs node of a bare btrfs image or of the one partition holding btrfs."""
    root, _ctx = _tree(path)
    return next(n for n in _walk(root) if n.kind == "btrfs")


@pytest.mark.parametrize("name", ALL_BTRFS_PAIRS)
def test_inodes_and_contents_agree_with_dissect(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    """dissect.btrfs sees the same directory tree (every path, no more), and for each path an INODE_ITEM node with
    the same number, mode, size and times; a regular file's data field (regular extent) or inline data holds
    exactly the bytes dissect reads."""
    dissect_btrfs = pytest.importorskip("dissect.btrfs")
    for path in pair(name):
        fs = _fs(path) if name in BTRFS_PAIRS else _btrfs_nodes(path)
        tree = _child(fs, "tree:FS_TREE")
        files = _child(fs, "files")
        base = fs.extents[0].offset
        ours = {n.attrs["path"] for n in tree.children if n.kind == "btrfs.inode_item"}
        with open(path, "rb") as fh:
            dfs = dissect_btrfs.Btrfs(_Window(fh, base, fs.extents[0].length))
            seen: set[str] = set()
            for p, ino in _dissect_walk(dfs):
                item = _child(tree, f"{p} INODE_ITEM")
                f = {x.name: x.value for x in item.fields}
                raw = ino.inode
                assert f["item.key.objectid"] == ino.inum, p
                assert (f["mode"], f["size"], f["nlink"], f["uid"], f["gid"]) == (
                    ino.mode, ino.size, raw.nlink, ino.uid, ino.gid), p
                for t in ("atime", "ctime", "mtime", "otime"):
                    assert f[f"{t}.sec"] == getattr(raw, t).sec and f[f"{t}.nsec"] == getattr(raw, t).nsec, (p, t)
                if ino.is_file():
                    want = ino.open().read()
                    fnode = files.child(p)
                    if fnode is not None:
                        got = _read(path, fnode.field_named("data").extents)  # type: ignore[union-attr]
                    else:
                        ext = _child(tree, f"{p} EXTENT_DATA 0")
                        assert ext.attrs["content"] and ext.attrs["inline"]
                        got = _read(path, ext.field_named("data").extents)  # type: ignore[union-attr]
                    assert got == want, p
                elif ino.is_symlink():
                    # btrfs-progs 6.2 stores the target with its terminating NUL (add_symbolic_link: len + 1)
                    ext = _child(tree, f"{p} EXTENT_DATA 0")
                    target = _read(path, ext.field_named("data").extents)  # type: ignore[union-attr]
                    assert target.rstrip(b"\0").decode() == ino.link
                seen.add(p)
            assert seen == ours and len(seen) >= 3


# -- byte coverage ---------------------------------------------------------------------------------------------------


COVERAGE = ["btrfs-mkosi", "btrfs-order", "btrfs-features", "btrfs-file-grows", "btrfs-stale-free"]


@pytest.mark.parametrize(("name", "side"), [(n, s) for n in COVERAGE for s in "ab"])
def test_every_byte_in_exactly_one_field(pair, name: str, side: str) -> None:  # type: ignore[no-untyped-def]
    """With every byte marked as differing, the fields of all nodes tile the image: no gap, no overlap."""
    path = pair(name)[0 if side == "a" else 1]
    root, ctx = _tree(path)
    size = path.stat().st_size
    spans = sorted((e.offset, e.end, n.kind, f.name) for n in _walk(root) for f in n.fields for e in f.extents)
    pos = 0
    for s, e, kind, fname in spans:
        assert s == pos, f"{'gap' if s > pos else 'overlap'} at 0x{min(s, pos):x} before {kind}.{fname}"
        assert e > s
        pos = e
    assert pos == size
    assert not any(n.raw for n in _walk(root)) and not ctx.errors


@pytest.mark.parametrize("name", ["btrfs-mkosi", "btrfs-features"])
def test_node_extents_contain_their_fields_and_children(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    root, _ctx = _tree(pair(name)[0])

    def inside(ext: Extent, outer: tuple[Extent, ...]) -> bool:
        return any(o.offset <= ext.offset and ext.end <= o.end for o in outer)

    for node in _walk(root):
        for f in node.fields:
            for e in f.extents:
                assert inside(e, node.extents), (node.kind, node.key, f.name)
        own = sorted(e for f in node.fields for e in f.extents)
        assert all(x.end <= y.offset for x, y in itertools.pairwise(own)), (node.kind, node.key)
        for c in node.children:
            for e in c.extents:
                assert inside(e, node.extents), (node.kind, node.key, c.kind, c.key)


def test_derived_checksums_copies_and_csums(pair) -> None:  # type: ignore[no-untyped-def]
    path = pair("btrfs-mkosi")[0]
    fs = _fs(path)
    tree = _child(fs, "tree:FS_TREE")
    [leaf] = [c for c in tree.children if c.kind == "btrfs.leaf"]
    assert leaf.key == "leaf:/ INODE_ITEM" and leaf.extents == (Extent(38830080, 16384), Extent(72384512, 16384))
    [csum] = [d for d in leaf.derived if d.field == "csum"]
    assert csum.covers == (Extent(38830080 + 32, 16384 - 32),)
    copy = _child(leaf, "copy:1")
    cov = {d.field: d.covers for d in copy.derived}
    mtime = _child(tree, "/etc/os-release INODE_ITEM").field_named("mtime.sec")
    assert mtime is not None and cov["/etc/os-release INODE_ITEM/mtime.sec"] == mtime.extents
    assert copy.field_named("/etc/os-release INODE_ITEM/mtime.sec").extents == (  # type: ignore[union-attr]
        mtime.extents[0].shifted(72384512 - 38830080),)
    # each data-sector checksum is derived from the sector of /usr/bin/tool it covers
    data = _child(_child(fs, "files"), "/usr/bin/tool").field_named("data")
    assert data is not None and data.extents == (Extent(13631488, 28893),)
    item = next(c for c in _child(fs, "tree:CSUM_TREE").children if c.kind == "btrfs.csum_item")
    # with every byte differing each checksum is its own field, derived from its 4 KiB sector
    assert [(d.field, d.covers) for d in item.derived] == [
        (f"csum[{i}]", (Extent(13631488 + 4096 * i, 4096),)) for i in range(8)]
    # where only the third checksum differs, the equal ones around it are runs
    c2 = item.field_named("csum[2]").extents[0]  # type: ignore[union-attr]
    item = next(c for c in _child(_fs(path, [(c2.offset, c2.end)]), "tree:CSUM_TREE").children
                if c.kind == "btrfs.csum_item")
    assert [(d.field, d.covers) for d in item.derived] == [
        ("csum[0:2]", (Extent(13631488, 8192),)), ("csum[2]", (Extent(13631488 + 8192, 4096),)),
        ("csum[3:8]", (Extent(13631488 + 12288, 5 * 4096),))]


def test_paths_not_inode_numbers_key_the_fs_tree(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("btrfs-mkosi")
    ta, tb = _child(_fs(a), "tree:FS_TREE"), _child(_fs(b), "tree:FS_TREE")
    na, nb = _child(ta, "/usr/bin/tool INODE_ITEM"), _child(tb, "/usr/bin/tool INODE_ITEM")
    ia, ib = (n.field_named("item.key.objectid").value for n in (na, nb))  # type: ignore[union-attr]
    assert ia != ib and ia > 256 and ib > 256  # btrfs-progs 6.2: st_ino + 256
    assert {c.key for c in ta.children} == {c.key for c in tb.children}
    assert _child(ta, "/usr/share/doc DIR_INDEX file2.txt").attrs["path"] == "/usr/share/doc"


def test_stale_blocks_in_free_and_unallocated_space(pair) -> None:  # type: ignore[no-untyped-def]
    fs = _fs(pair("btrfs-mkosi")[0])
    unalloc = _child(fs, "unallocated:69632")
    stale = [c.key for c in unalloc.children]
    # mkfs.btrfs 6.2 builds the first trees in temporary chunks at 1 MiB and 5 MiB, then frees them
    assert stale[:3] == ["stale:1048576", "stale:1064960", "stale:1081344"] and len(stale) == 19
    leaf = _child(unalloc, "stale:1048576")
    assert leaf.attrs["stale"] and leaf.attrs["tree"] == "CHUNK_TREE" and leaf.attrs["generation"] == 3
    assert any(c.kind == "btrfs.chunk_item" for c in leaf.children)


def test_only_differing_objects_are_built(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("btrfs-mkosi")
    sb_uuid = 0x10000 + 0xC9 + 66  # dev_item.uuid in the primary superblock
    fs = _fs(a, [(sb_uuid, sb_uuid + 16)])
    assert all(not c.children for c in fs.children if c.kind in ("btrfs.tree", "btrfs.files"))
    assert not any(c.children for c in fs.children if c.kind in ("btrfs.free", "btrfs.unallocated"))
    # an item or a file can still be had by key, unknown keys are refused
    tree = _child(fs, "tree:FS_TREE")
    assert tree.child("/etc/os-release INODE_ITEM") is not None
    assert tree.child("/no/such INODE_ITEM") is None
    assert _child(fs, "files").child("/usr/bin/tool") is not None
    assert _child(fs, "files").child("/etc/os-release") is None  # inline: no data extent


# -- hostile input ---------------------------------------------------------------------------------------------------


def _parse_bytes(tmp_path: Path, data: bytes) -> tuple[Node, ParseContext]:
    p = tmp_path / "x.img"
    p.write_bytes(data)
    return _tree(p, [(0, len(data))])


def test_truncated_image_gives_a_partial_tree(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("btrfs-mkosi")
    root, ctx = _parse_bytes(tmp_path, a.read_bytes()[: 32 << 20])
    [fs] = root.children
    assert fs.kind == "btrfs"
    assert any("truncated" in m for m in ctx.errors) and any("beyond the end" in m for m in ctx.errors)
    assert fs.child("superblock") is not None


def test_bad_nodesize_is_a_parse_error_not_a_traceback(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(pair("btrfs-fsid")[0].read_bytes())
    struct.pack_into("<I", data, 0x10000 + 0x94, 12345)  # nodesize
    root, ctx = _parse_bytes(tmp_path, bytes(data))
    [fs] = root.children
    assert fs.raw and any("nodesize" in m for m in ctx.errors)


def test_tree_reachable_twice_is_reported_not_walked_again(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = pair("btrfs-fsid")[0]
    data = bytearray(path.read_bytes())
    fs = _fs(path, [])
    # the EXTENT_TREE root item points at the root tree's own leaf: a cycle through the root tree
    root_leaf = struct.unpack_from("<Q", data, 0x10000 + 0x50)[0]
    item = _child(_child(fs, "tree:ROOT_TREE"), "(EXTENT_TREE ROOT_ITEM 0)")
    for e in item.field_named("bytenr").extents:  # type: ignore[union-attr]
        struct.pack_into("<Q", data, e.offset, root_leaf)
    t0 = time.monotonic()
    root, ctx = _parse_bytes(tmp_path, bytes(data))
    assert time.monotonic() - t0 < 30
    assert root.children[0].kind == "btrfs"
    assert any("referenced twice" in m for m in ctx.errors)


@pytest.mark.parametrize("seed", range(6))
def test_random_metadata_corruption_never_raises(pair, tmp_path: Path, seed: int) -> None:  # type: ignore[no-untyped-def]
    path = pair("btrfs-mkosi")[0]
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    fs = _fs(path, [])
    hot = [(0x10000, 0x11000)]  # superblock, then every live tree block's first copy
    for tree in (c for c in fs.children if c.kind == "btrfs.tree"):
        hot.extend((e.offset, e.end) for e in tree.extents[:1])
    for _ in range(60):
        lo, hi = rng.choice(hot)
        data[rng.randrange(lo, hi)] = rng.randrange(256)
    t0 = time.monotonic()
    root, _ctx = _parse_bytes(tmp_path, bytes(data))
    assert time.monotonic() - t0 < 60
    assert root.children  # a tree (possibly partial or raw with a message), never an exception


# -- end to end ------------------------------------------------------------------------------------------------------


def _expected(name: str) -> set[str]:
    lines = (PAIRS / name / "expected-rules.txt").read_text().splitlines()
    return {ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("#")}


@pytest.mark.parametrize("name", ALL_BTRFS_PAIRS)
def test_pair_is_fully_explained(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    report = analyzed(name)
    assert report.summary.bytes_differing > 0
    assert report.summary.bytes_unexplained == 0
    fired = {f.rule.id for f in report.findings}
    assert fired == _expected(name), fired
    assert not report.errors


def _finding(report, rule_id: str):  # type: ignore[no-untyped-def]
    [f] = [f for f in report.findings if f.rule.id == rule_id]
    return f


def test_mkosi_pair_names_every_source(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("btrfs-mkosi")
    assert report.summary.bytes_differing == 6028
    dev = _finding(report, "BTR002")
    assert [d.field for d in dev.causes] == ["dev_item.uuid"]
    folded = {d.field for d in dev.derived}
    assert {"uuid", "stripe[0].dev_uuid", "stripe[1].dev_uuid", "sys_chunk_array[0].stripe[1].dev_uuid"} <= folded
    chunk = _finding(report, "BTR003")
    assert {d.field for d in chunk.causes} == {"chunk_tree_uuid"} and len(chunk.causes) == 40
    assert sum(1 for d in chunk.causes if not d.attrs.get("stale")) == 9  # the nine live tree blocks
    sub = _finding(report, "BTR004")
    assert {d.field for d in sub.derived} >= {"item.key.objectid", "item.key.offset"}
    clock = _finding(report, "BTR005")
    assert {(d.attrs.get("tree"), d.attrs.get("path")) for d in clock.derived if d.kind == "btrfs.inode_item"
            and not d.attrs.get("stale")} == {("ROOT_TREE", None), ("FS_TREE", "/"), ("DATA_RELOC_TREE", "/")}
    staging = _finding(report, "BTR006")
    assert {d.field for d in staging.causes} == {"atime.sec", "ctime.sec"}
    assert "/usr/bin/tool" in staging.paths and "/" not in staging.paths
    order = _finding(report, "BTR008")
    assert {d.field for d in order.causes} == {"item.key.objectid"} and len(order.paths) == 14


def test_order_pair_moves_items_and_dir_index(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("btrfs-order")
    order = _finding(report, "BTR008")
    assert any(d.change == "moved" for d in order.derived)
    transid = _finding(report, "BTR009")
    assert {d.field for d in transid.causes} == {"transid"}
    assert all(d.a == 0 or d.b == 0 for d in transid.causes)


def test_content_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("btrfs-content")
    content = _finding(report, "BTR010")
    assert content.paths == ["/etc/os-release", "/usr/bin/tool"]
    tool = next(d for d in content.causes if d.attrs.get("path") == "/usr/bin/tool")
    assert tool.detail == "differing bytes in the file: 0x2710-0x2710 (1 bytes)"
    assert any(d.kind == "btrfs.csum_item" for d in content.derived)
    assert {d.field for d in content.derived if d.kind == "btrfs.inode_item"} == {"ctime.sec"}


def test_faketime_pair_has_no_clock(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("btrfs-faketime")
    assert {f.rule.id for f in report.findings} == {"BTR002", "BTR003", "BTR004"}


def test_features_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("btrfs-features")
    f = _finding(report, "BTR011")
    assert [d.field for d in f.causes] == ["compat_ro_flags"]
    assert any("/tree:FREE_SPACE_TREE/" in d.node_path and d.change == "removed" for d in f.derived)


def test_report_markdown_for_the_mkosi_pair(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.cli import main

    a, b = pair("btrfs-mkosi")
    out = tmp_path / "r.md"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 1
    text = out.read_text()
    for needle in ("BTR002", "BTR003", "BTR004", "BTR005", "BTR006", "BTR008", "kdave/btrfs-progs/pull/1126",
                   "--device-uuid"):
        assert needle in text, needle


def test_file_crossing_the_inline_limit(analyzed) -> None:  # type: ignore[no-untyped-def]
    """100 bytes are stored inline, 5000 in a data extent: the extent item, checksums and moved items follow."""
    report = analyzed("btrfs-file-grows")
    f = _finding(report, "BTR010")
    assert f.paths == ["/etc/motd"]
    kinds = {(d.kind, d.change) for d in f.causes + f.derived}
    assert ("btrfs.file_extent_item", "removed") in kinds or ("btrfs.file_extent_item", "modified") in kinds
    assert ("btrfs.extent_item", "added") in kinds and ("btrfs.csum_item", "added") in kinds
    typ = next(d for d in f.derived if d.kind == "btrfs.file_extent_item" and d.field == "type")
    assert (typ.a, typ.b) == (0, 1)  # inline -> regular
    assert "BTR005" not in {x.rule.id for x in report.findings}  # the clock was frozen (faketime -f)


@pytest.mark.skipif(not (have("mkfs.btrfs") and have("btrfs")), reason="btrfs-progs not installed")
def test_multi_level_tree_against_dump_tree_and_dissect(tmp_path: Path) -> None:
    """A tree of 3000 files needs a level-1 FS_TREE node: its key pointers, every leaf and every file agree."""
    src = tmp_path / "src"
    for d in range(30):
        (src / f"d{d}").mkdir(parents=True)
        for f in range(100):
            (src / f"d{d}" / f"f{f}").write_text(f"file {d} {f}\n")
    (src / "big").write_bytes(b"".join(b"%d\n" % i for i in range(200000)))
    img = tmp_path / "x.img"
    img.write_bytes(b"")
    subprocess.run(["mkfs.btrfs", "-q", "-U", UUID, "-r", str(src), str(img)], check=True, capture_output=True)
    _assert_matches_dump_tree(img)
    want = _dump_tree(img)
    fs = _fs(img)
    tree = _child(fs, "tree:FS_TREE")
    [node] = [c for c in tree.children if c.kind == "btrfs.node"]
    f = {x.name: x.value for x in node.fields}
    bytenr = f["bytenr"]
    assert want[bytenr][:3] == (1, f["generation"], f["nritems"])  # type: ignore[index]
    n = int(f["nritems"])  # type: ignore[arg-type]
    leaves = {c.field_named("bytenr").value for c in tree.children if c.kind == "btrfs.leaf"}  # type: ignore[union-attr]
    assert {f[f"ptr[{i}].blockptr"] for i in range(n)} == leaves and len(leaves) == n > 1
    assert sum(want[x][2] for x in leaves) == sum(  # type: ignore[index]
        1 for c in tree.children if c.kind not in ("btrfs.leaf", "btrfs.node"))
    dissect_btrfs = pytest.importorskip("dissect.btrfs")
    with open(img, "rb") as fh:
        dfs = dissect_btrfs.Btrfs(fh)
        for p in ("/d7/f42", "/d29/f99", "/big"):
            ino = dfs.get(p)
            assert _child(tree, f"{p} INODE_ITEM").field_named("item.key.objectid").value == ino.inum  # type: ignore[union-attr]
        got = _read(img, _child(_child(fs, "files"), "/big").field_named("data").extents)  # type: ignore[union-attr]
        assert got == dfs.get("/big").open().read()


def test_repart_partition_fsid_and_kernel_population(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    """systemd-repart 252: the fsid is repart's derivation from the partition GUID (-U), the files were copied
    through a kernel mount."""
    from imgdiff.ruleset.predicates_gpt import derive_fs_uuid

    a, _b = pair("btrfs-repart")
    root, _ctx = _tree(a, [])
    [part] = [c for c in root.children if c.kind == "partition"]
    [fs] = [c for c in part.children if c.kind == "btrfs"]
    assert fs.attrs["fsid"] == derive_fs_uuid(str(part.attrs["guid"]))
    report = analyzed("btrfs-repart")
    kernel = _finding(report, "BTR013")
    assert {d.field for d in kernel.causes} == {"otime.sec", "otime.nsec"}
    assert all(d.a and d.b for d in kernel.causes if d.field == "otime.nsec")  # btrfs-progs never writes nsec
    assert "/usr/bin/tool" in kernel.paths
    assert "BTR001" not in {f.rule.id for f in report.findings}  # the fsid is equal: repart passed the same -U

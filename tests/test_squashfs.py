"""squashfs: every stored and decoded byte owned once, decoders per compressor, rules per fixture, nesting, and
dissect.squashfs / unsquashfs as oracles of the tree, the inode fields and the file contents.

Every image here is made by mksquashfs (squashfs-tools 4.5.1 on Debian 12): the fixture pairs
(fixtures/recipes/squashfs-*.sh) and small images built by the tests themselves for each compressor.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from imgdiff.cli import main
from imgdiff.engine.analysis import analyze
from imgdiff.errors import ParseError
from imgdiff.formats import squashfs
from imgdiff.formats.base import ParseContext
from imgdiff.model import Extent, Node
from imgdiff.source import SLOT, VBASE, BytesSource, ImageSource

from .conftest import PAIRS

MKSQUASHFS = shutil.which("mksquashfs")
needs_mksquashfs = pytest.mark.skipif(MKSQUASHFS is None, reason="squashfs-tools is not installed")

# pair -> (differing bytes, fired rules); the rules are also listed, with the recipe's reason, in expected-rules.txt
PAIR_FACTS = {
    "squashfs-compression": (56369, ["SQS006"]),
    "squashfs-duplicates": (5404, ["SQS007"]),
    "squashfs-exports": (79, ["SQS009"]),
    "squashfs-file-content": (5216, ["SQS011"]),
    "squashfs-file-set": (3167, ["SQS012"]),
    "squashfs-fragments": (19000, ["SQS007"]),
    "squashfs-hardlinks": (325, ["SQS013"]),
    "squashfs-in-ext4": (1, ["SQS001"]),
    "squashfs-in-iso": (92, ["SQS003"]),
    "squashfs-inode-mtimes": (560, ["SQS002"]),
    "squashfs-mkfs-time": (1, ["SQS001"]),
    "squashfs-nix-store-epoch": (489, ["SQS003"]),
    "squashfs-owner": (1, ["SQS004"]),
    "squashfs-root-mode": (532, ["SQS014"]),
    "squashfs-sort": (515, ["SQS005"]),
    "squashfs-xattrs": (627, ["SQS008"]),
}
STANDALONE = [p for p in PAIR_FACTS if p not in ("squashfs-in-ext4", "squashfs-in-iso")] + ["squashfs-parallel-fragments"]


def _expected(name: str) -> list[str]:
    lines = (PAIRS / name / "expected-rules.txt").read_text().splitlines()
    return sorted({ln.split()[0] for ln in lines if ln.strip() and not ln.lstrip().startswith("#")})


def _parse(path: Path) -> tuple[Node, ParseContext]:
    src = ImageSource(str(path))
    ctx = ParseContext(src=src)
    return squashfs.parse(ctx, 0, src.size, "image"), ctx


def _walk(node: Node):  # type: ignore[no-untyped-def]
    yield node
    for c in node.children:
        yield from _walk(c)


# -- the rules on every fixture pair ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIR_FACTS))
def test_fixture_pair_fires_exactly_its_rules(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    a, b = pair(name)
    report = analyze(a, b)
    differing, rules = PAIR_FACTS[name]
    assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (differing, 0)
    fired = sorted({f.rule.id for f in report.findings})
    assert fired == rules == _expected(name)
    assert sum(f.bytes for f in report.findings) == differing  # every differing byte in exactly one finding


def test_parallel_fragments_pair(pair) -> None:  # type: ignore[no-untyped-def]
    # the recipe depends on thread scheduling: the byte count varies from build to build, the cause does not
    a, b = pair("squashfs-parallel-fragments")
    report = analyze(a, b)
    assert report.summary.bytes_unexplained == 0 and report.summary.bytes_differing > 0
    assert sorted({f.rule.id for f in report.findings}) == ["SQS010"] == _expected("squashfs-parallel-fragments")
    roots = [n for n in _walk(report.tree_a) if n.kind == "squashfs"] + [  # type: ignore[arg-type]
        n for n in _walk(report.tree_b) if n.kind == "squashfs"]  # type: ignore[arg-type]
    assert not all(r.attrs["fragments_in_order"] for r in roots)


def test_moved_files_with_equal_stored_blocks_are_not_decoded(pair, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Files that only moved (after hello grew) are proven equal from their stored blocks, and their decoded
    contents are never compared; the changed file and the metadata tables still are."""
    from imgdiff.engine import spaces
    from imgdiff.formats.squashfs.data import FileContent

    verdicts: list[tuple[str, bool]] = []
    same_as = FileContent.same_as

    def spy_same(self: FileContent, other: object) -> bool:
        verdicts.append((self.path, same_as(self, other)))
        return verdicts[-1][1]

    compared: list[int] = []
    compare = spaces.compare_regions

    def spy_compare(*args: object) -> object:
        compared.append(int(args[2]))  # type: ignore[call-overload]
        return compare(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(FileContent, "same_as", spy_same)
    monkeypatch.setattr(spaces, "compare_regions", spy_compare)
    a, b = pair("squashfs-file-content")
    report = analyze(a, b)
    assert sorted(p for p, same in verdicts if not same) == ["/nix/store/aaaa-hello/bin/hello"]
    assert sum(1 for _p, same in verdicts if same) == 4
    assert len(compared) == 6  # inode, directory, fragment, export and id tables, and hello's content
    assert report.summary.bytes_differing == 5216
    assert [f.rule.id for f in report.findings] == ["SQS011"]


def test_mkfs_time_pair_names_the_field_and_source_date_epoch(pair, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("squashfs-mkfs-time")
    assert main(["explain", "--json", str(a), str(b)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["bytes_differing"] == 1 and doc["summary"]["bytes_unexplained"] == 0
    (f,) = doc["findings"]
    assert f["rule"] == "SQS001" and f["layer"] == "mkfs"
    assert f["fields"] == ["disk/squashfs/superblock/mkfs_time"]
    assert "SOURCE_DATE_EPOCH" in f["fix"] and "-mkfs-time" in f["fix"]
    assert f["b"] - f["a"] in (1, 2)  # the recipe sleeps 1.1 s between the two runs
    detail = f["details"][0] if "details" in f else None
    if detail is not None and "offset_a" in detail:
        assert detail["offset_a"] == 8


def test_mtime_pair_folds_the_recompressed_inode_block_and_moved_tables(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("squashfs-inode-mtimes")
    report = analyze(a, b)
    (f,) = report.findings
    assert f.rule.id == "SQS002" and f.bytes == 560
    assert len(f.causes) == 19 and {d.field for d in f.causes} == {"mtime"}
    assert {(d.a, d.b) for d in f.causes} == {(1700003600, 1700090000)}
    assert all(e.offset >= VBASE for d in f.causes for e in d.extents_a)  # decoded inode table offsets
    derived = {(d.kind, d.field) for d in f.derived}
    assert ("squashfs.metadata_block", "block data") in derived  # the compressed inode block
    assert ("squashfs.superblock", "directory_table_start") in derived  # moved because that block changed length


def test_nested_squashfs_in_ext4_is_explained_at_the_outer_offsets(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("squashfs-in-ext4")
    report = analyze(a, b)
    (f,) = report.findings
    (cause,) = f.causes
    assert (cause.kind, cause.field) == ("squashfs.superblock", "mkfs_time")
    assert f.location == "ext4 / files / file data of /nix-store.squashfs / squashfs / superblock"
    pblk = int(subprocess.run(["debugfs", "-R", "bmap /nix-store.squashfs 0", str(a)], capture_output=True,
                              text=True, check=True).stdout) if shutil.which("debugfs") else None
    if pblk is not None:
        assert cause.extents_a == (Extent(pblk * 4096 + 8, 4),)


def test_nix_store_squashfs_inside_an_iso(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("squashfs-in-iso")
    report = analyze(a, b)
    (f,) = report.findings
    assert f.rule.id == "SQS003" and f.rule.layer == "nixos-module"
    assert f.location == ("ISO 9660 (nixos-minimal-25.05-x86_64) / files / file /nix-store.squashfs / squashfs / "
                          "inode table / decoded inode table")
    assert sorted(d.attrs["path"] for d in f.causes) == [  # type: ignore[type-var]
        "/store", "/store/abc-hello", "/store/abc-hello/bin", "/store/abc-hello/bin/hello", "/store/def-glibc",
        "/store/def-glibc/lib", "/store/def-glibc/lib/libc.so.6"]
    assert {(d.a, d.b) for d in f.causes} == {(1, 0)}
    (block,) = f.derived  # the xz-compressed inode table block, stored inside the ISO file
    assert (block.kind, block.field) == ("squashfs.metadata_block", "block data")
    assert block.bytes == 92 and all(e.offset < VBASE for e in block.extents_a)


def test_mkfs_time_pair_builds_no_decoded_detail(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("squashfs-mkfs-time")
    report = analyze(a, b)
    tree = report.tree_a
    assert tree is not None
    kinds = [n.kind for n in _walk(tree)]
    # nothing but the superblock differs: no table is even decoded (no decoded space is opened)
    assert kinds == ["image", "squashfs", "squashfs.superblock", "squashfs.unchanged"]
    assert report.spaces == []
    # one changed file (same size and time): the tables are decoded, but no inode or directory differs, so none
    # is built; the files sharing the rewritten fragment block are
    a, b = pair("squashfs-file-content")
    report = analyze(a, b)
    assert report.tree_a is not None
    kinds = [n.kind for n in _walk(report.tree_a)]
    assert "squashfs.inode" not in kinds and "squashfs.directory" not in kinds
    files = [n.key for n in _walk(report.tree_a) if n.kind == "squashfs.file"]
    assert "/nix/store/aaaa-hello/bin/hello" in files and "/nix/store/bbbb-lib/lib/libbig.so" not in files


# -- every byte owned once ----------------------------------------------------------------------------------------


def _owned_by_space(root: Node) -> dict[int, list[tuple[int, int]]]:
    spaces: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n in _walk(root):
        for f in n.all_fields():
            for e in f.extents:
                slot = -1 if e.offset < VBASE else (e.offset - VBASE) // SLOT
                spaces[slot].append((e.offset, e.length))
    return spaces


@pytest.mark.parametrize("name", STANDALONE)
def test_every_stored_and_decoded_byte_is_owned_once(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    for img in pair(name):
        root, ctx = _parse(img)
        assert ctx.errors == [] and root.errors == []
        table = ctx.spaces
        assert table is not None
        spaces = _owned_by_space(root)
        assert set(spaces) == {-1, *range(len(table.spaces))}
        for slot, exts in spaces.items():
            start = 0 if slot < 0 else VBASE + slot * SLOT
            size = img.stat().st_size if slot < 0 else table.spaces[slot].sizes["a"]
            pos = start
            for off, length in sorted(exts):
                assert off == pos, (name, slot, off - start, pos - start)
                pos = off + length
            assert pos == start + size, (name, slot)


def test_tree_shape_and_literal_fields(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("squashfs-xattrs")
    root, _ctx = _parse(a)
    assert [c.key for c in root.children] == ["superblock", "data", "inodes", "dirs", "fragments", "export", "ids"]
    sb = root.children[0]
    vals = {f.name: f.value for f in sb.fields}
    assert (vals["s_magic"], vals["inodes"], vals["block_size"], vals["compression"], vals["flags"]) == (
        0x73717368, 19, 131072, 4, 0xC0)
    assert vals["mkfs_time"] == 1700000000
    inodes = next(c for c in root.children if c.key == "inodes").child("decoded")
    assert inodes is not None
    big = inodes.child("/nix/store/bbbb-lib/lib/libbig.so")
    assert big is not None and big.attrs["file_type"] == "reg"
    f = {x.name: x.value for x in big.all_fields()}
    assert (f["inode_type"], f["mode"], f["file_size"], f["fragment"]) == (2, 0o644, 296894, 0xFFFFFFFF)
    assert [x.name for x in big.all_fields() if x.name.startswith("block_list")] == [
        "block_list[0]", "block_list[1]", "block_list[2]"]
    link = inodes.child("/etc/hello-link")
    assert link is not None and {x.name: x.value for x in link.all_fields()}["symlink"] == "../nix/store/aaaa-hello/bin/hello"
    hard = inodes.child("/etc/os-release")
    assert hard is not None and hard.attrs["paths"] == ("/etc/os-release", "/etc/os-release.hardlink")
    dev = inodes.child("/etc/console")
    assert dev is not None and {x.name: x.display for x in dev.all_fields()}["rdev"] == "5:1"


# -- oracles ------------------------------------------------------------------------------------------------------


def _content(root: Node, ctx: ParseContext, path: str) -> bytes:
    data = next(c for c in root.children if c.key == "data")
    node = data.child(path)
    assert node is not None
    f = node.field_named("data")
    assert f is not None
    return b"".join(ctx.read(e.offset, e.length) for e in f.extents)


@pytest.mark.parametrize("name", STANDALONE)
def test_dissect_squashfs_agrees_on_tree_inodes_and_contents(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    sq = pytest.importorskip("dissect.squashfs")
    for img in pair(name):
        root, ctx = _parse(img)
        inodes = next(c for c in root.children if c.key == "inodes").child("decoded")
        assert inodes is not None
        mine = {n.key: n for n in inodes.children}
        with open(img, "rb") as fh:
            fs = sq.SquashFS(fh)
            seen: set[str] = set()
            stack = [("/", fs.get("/"))]
            while stack:
                path, ino = stack.pop()
                seen.add(path)
                node = mine.get(path) or next(n for n in mine.values() if path in n.attrs.get("paths", ()))  # type: ignore[operator]
                v = {f.name: f.value for f in node.all_fields()}
                assert v["mode"] == ino.mode & 0o7777, path
                assert (v["uid"], v["guid"]) == (ino.header.uid, ino.header.guid), path
                assert v["mtime"] == ino.header.mtime and v["inode_number"] == ino.inode_number, path
                if ino.is_symlink():
                    assert v["symlink"] == ino.link, path
                if ino.is_file():
                    assert v["file_size"] == ino.size, path
                    assert _content(root, ctx, node.key) == ino.open().read(), path
                if ino.is_dir():
                    for child in ino.iterdir():
                        stack.append(((path.rstrip("/") + "/" + child.name), child))
        assert seen == {p for n in mine.values() for p in (n.attrs.get("paths") or (n.key,))}  # type: ignore[union-attr]


@needs_mksquashfs
def test_unsquashfs_lls_lists_the_same_paths_sizes_and_owners(pair) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("unsquashfs") is None:
        pytest.skip("unsquashfs is not installed")
    a, _b = pair("squashfs-owner")
    out = subprocess.run(["unsquashfs", "-n", "-lln", "-d", "", str(a)], capture_output=True, text=True,
                         check=True).stdout
    import re

    listed: dict[str, tuple[str, str]] = {}
    line_re = re.compile(r"^(\S+) (\S+)\s+(?:\d+,\s*\d+|\d+) \d{4}-\d\d-\d\d \d\d:\d\d ?(.*)$")
    for line in out.splitlines():
        m = line_re.match(line)
        if m:
            listed[m.group(3).split(" -> ")[0] or "/"] = (m.group(1), m.group(2))
    assert len(listed) == 20  # 19 inodes, one of them with two names
    root, _ctx = _parse(a)
    inodes = next(c for c in root.children if c.key == "inodes").child("decoded")
    assert inodes is not None
    for n in inodes.children:
        for path in n.attrs.get("paths") or (n.key,):  # type: ignore[union-attr]
            perms, owner = listed[path]
            v = {f.name: f for f in n.all_fields()}
            assert perms[1:] == stat.filemode(v["mode"].value)[1:], path  # type: ignore[arg-type]
            assert owner == "1000/1000", path
            assert v["uid"].display == "index 0 (1000)"


# -- decoders ------------------------------------------------------------------------------------------------------


def _tiny_tree(root: Path) -> None:
    (root / "d").mkdir(parents=True)
    (root / "d" / "small").write_text("small file\n" * 3)
    (root / "big").write_bytes(b"".join(b"line %d of a file bigger than one block\n" % i for i in range(5000)))
    os.symlink("big", root / "link")
    for p in (root / "d" / "small", root / "big", root / "d", root):
        os.utime(p, (1700000000, 1700000000))


@needs_mksquashfs
@pytest.mark.parametrize("comp", ["gzip", "lzma", "lzo", "xz", "lz4", "zstd"])
def test_each_compressor_decodes(tmp_path: Path, comp: str) -> None:
    tree = tmp_path / "tree"
    _tiny_tree(tree)
    img = tmp_path / f"{comp}.img"
    extra = ["-Xbcj", "x86"] if comp == "xz" else (["-Xhc"] if comp == "lz4" else [])
    run = subprocess.run([MKSQUASHFS, str(tree), str(img), "-noappend", "-quiet", "-no-progress", "-comp", comp,  # type: ignore[list-item]
                          "-b", "4096", "-mkfs-time", "0", *extra], check=False, capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"mksquashfs cannot make {comp}: {run.stderr.strip()}")
    if comp == "lzo":
        pytest.importorskip("lzo")
    root, ctx = _parse(img)
    assert ctx.errors == []
    sb = {f.name: f.value for f in root.children[0].all_fields()}
    assert sb["compression"] == {"gzip": 1, "lzma": 2, "lzo": 3, "xz": 4, "lz4": 5, "zstd": 6}[comp]
    assert _content(root, ctx, "/big") == (tree / "big").read_bytes()
    assert _content(root, ctx, "/d/small") == (tree / "d" / "small").read_bytes()
    if comp in ("xz", "lz4"):
        opts = root.child("comp_opts")
        assert opts is not None
        shown = {f.name: f.display for f in opts.fields}
        assert shown["flags"] == ("x86" if comp == "xz" else "LZ4_HC")


@needs_mksquashfs
def test_missing_decompressor_is_a_partial_result_naming_the_package(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    tree = tmp_path / "tree"
    _tiny_tree(tree)
    img = tmp_path / "lz4.img"
    subprocess.run([MKSQUASHFS, str(tree), str(img), "-noappend", "-quiet", "-no-progress", "-comp", "lz4"],  # type: ignore[list-item]
                   check=True, capture_output=True)
    real_import = builtins.__import__

    def no_lz4(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("lz4"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lz4)
    root, ctx = _parse(img)
    assert ctx.errors == ["image: cannot decode lz4 blocks: lz4 blocks need the Python package lz4 (pip install lz4)"]
    # lz4 always stores its options (version 1): they need no decompression; everything after them stays raw
    assert [c.kind for c in root.children] == ["squashfs.superblock", "squashfs.compressor_options", "raw"]
    assert root.children[2].raw and root.children[2].extents[0].offset == 96 + 2 + 8


# -- bad input -----------------------------------------------------------------------------------------------------


def test_not_squashfs_and_bad_superblocks_raise_parse_error(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("squashfs-owner")
    data = bytearray(a.read_bytes())
    with pytest.raises(ParseError):
        squashfs.parse(ParseContext(src=BytesSource(bytes(100))), 0, 100, "x")
    bad = bytearray(data)
    bad[12:16] = (3000).to_bytes(4, "little")  # block_size not a power of two
    with pytest.raises(ParseError, match="block_size"):
        squashfs.parse(ParseContext(src=BytesSource(bytes(bad))), 0, len(bad), "x")
    with pytest.raises(ParseError, match="bytes_used"):
        squashfs.parse(ParseContext(src=BytesSource(bytes(data[:4096]))), 0, 4096, "x")


@pytest.mark.parametrize("where", ["inode_table_start", "directory_table_start", "fragment_table_start"])
def test_corrupt_tables_give_a_partial_result(pair, where: str) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("squashfs-owner")
    data = bytearray(a.read_bytes())
    root, _ctx = _parse(a)
    sb = {f.name: f.value for f in root.children[0].all_fields()}
    pos = sb[where]
    assert isinstance(pos, int)
    data[pos : pos + 2] = (0x7FFF).to_bytes(2, "little")  # a metadata block that claims 32 KiB
    ctx = ParseContext(src=BytesSource(bytes(data)))
    broken = squashfs.parse(ctx, 0, len(data), "x")
    assert ctx.errors, where
    assert broken.kind == "squashfs"


def test_truncated_and_random_garbage_never_raise_anything_but_parse_error(pair) -> None:  # type: ignore[no-untyped-def]
    import random

    a, _b = pair("squashfs-xattrs")
    data = a.read_bytes()
    rng = random.Random(1)
    for _ in range(60):
        buf = bytearray(data)
        for _k in range(rng.randint(1, 40)):
            i = rng.randrange(96, len(buf))
            buf[i] = rng.randrange(256)
        cut = bytes(buf[: rng.choice([len(buf), len(buf) // 2, 8192])])
        try:
            squashfs.parse(ParseContext(src=BytesSource(cut)), 0, len(cut), "x")
        except ParseError:
            pass


def test_squashfs_fixtures_are_small() -> None:
    for name in [*PAIR_FACTS, "squashfs-parallel-fragments"]:
        for side in "ab":
            assert (PAIRS / name / f"{side}.img.xz").stat().st_size < 40_000


@pytest.mark.parametrize(("offset", "value", "message"), [
    (16, 0xFFFFFFF0, "fragment table: block index of 8388608 entries does not fit before bytes_used; 18 read"),
    (64, 1 << 63, "inode table: position 9223372036854775808.."),
])
def test_hostile_superblock_counts_and_positions_stay_bounded(pair, tmp_path: Path, offset: int, value: int,  # type: ignore[no-untyped-def]
                                                              message: str) -> None:
    a, _b = pair("squashfs-sort")
    data = bytearray(a.read_bytes())
    width = 4 if offset < 40 else 8
    data[offset : offset + width] = value.to_bytes(width, "little")
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(data))
    root, ctx = _parse(bad)
    assert any(m.startswith(f"image: {message}") for m in ctx.errors), ctx.errors
    assert sum(len(n.fields) for n in _walk(root)) < 1000  # no field per claimed index entry
    report = analyze(a, bad)  # the comparison completes: offsets stay within what the index can hold
    assert 0 < report.summary.bytes_differing <= width

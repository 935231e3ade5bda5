"""erofs: superblock, inodes, xattrs, directories, flat/inline/chunk-based and lz4-compressed data, and the rules.

Fixtures: erofs-* (mkfs.erofs 1.5, one pair per rule).  Oracles: ``dump.erofs`` (NID, inode size, owner, mode,
size per path) and ``fsck.erofs --extract`` (every file's bytes, compressed ones included), on the fixture images
and on images made here with chunk-based files and big physical clusters.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imgdiff.errors import ParseError
from imgdiff.formats import erofs, parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.formats.erofs import crc32c
from imgdiff.model import Extent, Node, merge_extents
from imgdiff.source import VBASE, BytesSource, ImageSource

HAVE_TOOLS = all(shutil.which(t) for t in ("mkfs.erofs", "dump.erofs", "fsck.erofs"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="erofs-utils is not installed")
ROOT = Path(__file__).resolve().parent.parent


def _parse(path: Path) -> tuple[Node, ParseContext]:
    src = ImageSource(str(path))
    ctx = ParseContext(src=src)
    root = parse_image(ctx)
    (fs,) = [n for _k, n in root.walk() if n.kind == "erofs"]
    return fs, ctx


def _kind(root: Node, kind: str) -> dict[str, Node]:
    return {str(n.attrs.get("path", n.key)): n for _k, n in root.walk() if n.kind == kind}


def _file_bytes(ctx: ParseContext, node: Node) -> bytes:
    f = node.field_named("data")
    assert f is not None
    return b"".join(ctx.read(e.offset, e.length) for e in f.extents)


def _stage(tmp: Path) -> Path:
    root = tmp / "stage"
    subprocess.run(["bash", "-c", f'. "{ROOT}/fixtures/recipes/lib/erofs-stage.sh"; erofs_stage "$1"', "x",
                    str(root)], check=True)
    # hex text: compresses to about half, so 16 KiB physical clusters hold several blocks of it
    hexed = b"".join(hashlib.sha256(i.to_bytes(4, "little")).hexdigest().encode() for i in range(1300))
    (root / "usr" / "lib" / "big.bin").write_bytes(hexed + b"tail")
    return root


def test_superblock_crc32c_and_fields(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("erofs-build-time")
    fs, _ctx = _parse(a)
    sb = fs.children[0]
    f = {x.name: x.value for x in sb.fields}
    assert f["magic"] == 0xE0F5E1E2 and f["blkszbits"] == 12 and f["uuid"] == "7e57e7e5-0000-4000-8000-000000000001"
    assert f["feature_compat"] == 3 and sb.attrs["checksum_ok"] is True  # sb_csum|mtime, verified
    assert crc32c(b"123456789") ^ 0xFFFFFFFF == 0xE3069283  # the CRC-32C check value


@needs_tools
@pytest.mark.parametrize("name", ["erofs-build-time", "erofs-xattr-order", "erofs-lz4-content"])
def test_inodes_and_contents_match_dump_and_fsck(pair, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair(name)
    fs, ctx = _parse(a)
    inodes = _kind(fs, "erofs.inode")
    files = _kind(fs, "erofs.file")
    assert len(inodes) == 16
    for path, node in inodes.items():
        out = subprocess.run(["dump.erofs", f"--path={path}", str(a)], capture_output=True, text=True,
                             check=True).stdout
        nid = int(re.search(r"NID: (\d+)", out).group(1))  # type: ignore[union-attr]
        isize = int(re.search(r"Inode size: (\d+)", out).group(1))  # type: ignore[union-attr]
        uid = int(re.search(r"Uid: (\d+)", out).group(1))  # type: ignore[union-attr]
        size = int(re.search(r"Size: (\d+)", out).group(1))  # type: ignore[union-attr]
        f = {x.name: x.value for x in node.fields}
        assert (node.attrs["nid"], 64 if node.attrs["layout"] == "extended" else 32) == (nid, isize), path
        assert (f["i_uid"], f["i_size"]) == (uid, size), path
    out = tmp_path / "x"
    subprocess.run(["fsck.erofs", f"--extract={out}", str(a)], capture_output=True, check=True)
    checked = 0
    for path, node in files.items():
        want = out / path.lstrip("/")
        if want.is_symlink():
            assert node.field_named("data").value == os.readlink(want)  # type: ignore[union-attr]
        elif node.field_named("data") is not None:
            assert _file_bytes(ctx, node) == want.read_bytes(), path
            checked += 1
    assert checked >= 6


@needs_tools
@pytest.mark.parametrize("opts", [["--chunksize=8192"], ["-zlz4hc", "-C16384"], ["-zlz4"],
                                  ["-zlz4hc", "-Eztailpacking"]])
def test_chunked_and_big_pcluster_files_decode(tmp_path: Path, opts: list[str]) -> None:
    root = _stage(tmp_path)
    img = tmp_path / "x.img"
    subprocess.run(["mkfs.erofs", *opts, "-T", "1700000000", "-U", "7e57e7e5-0000-4000-8000-000000000001", str(img),
                    str(root)], capture_output=True, check=True)
    fs, ctx = _parse(img)
    assert not ctx.errors
    exts = [e for _k, n in fs.walk() for f in n.fields for e in f.extents if e.offset < VBASE]
    assert merge_extents(exts) == (Extent(0, img.stat().st_size),)  # every byte owned
    files = _kind(fs, "erofs.file")
    for path in ("/usr/lib/big.bin", "/usr/bin/tool", "/usr/lib/libfoo.so"):
        assert _file_bytes(ctx, files[path]) == (root / path.lstrip("/")).read_bytes(), path
    if opts[0].startswith("-z"):
        tool = files["/usr/bin/tool"]
        assert tool.attrs["compressed"] is True and tool.field_named("data").extents[0].offset >= VBASE  # type: ignore[union-attr]
        if "-C16384" in opts:  # big physical clusters: at least one cluster spans several blocks
            big = files["/usr/lib/big.bin"]
            assert any(f.size > 4096 for f in big.fields if f.name.startswith("pcluster:"))
    else:
        assert _kind(fs, "erofs.inode")["/usr/lib/big.bin"].field_named("chunk_indexes") is not None


@pytest.mark.parametrize("name", ["erofs-defaults", "erofs-owner", "erofs-xattr-order", "erofs-lz4-settings"])
def test_every_byte_has_exactly_one_owner(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair(name)
    fs, ctx = _parse(a)
    assert not fs.errors and not ctx.errors
    exts = [e for _k, n in fs.walk() for f in n.fields for e in f.extents if e.offset < VBASE]
    assert sum(e.length for e in exts) == a.stat().st_size
    assert merge_extents(exts) == (Extent(0, a.stat().st_size),)


def test_rules_per_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    got = {}
    for name in ("erofs-defaults", "erofs-build-time", "erofs-owner", "erofs-xattr-order", "erofs-lz4-settings",
                 "erofs-lz4-content", "erofs-sde-differs", "erofs-owner-extended"):
        r = analyzed(name)
        assert r.summary.bytes_unexplained == 0, name
        got[name] = sorted(f.rule.id for f in r.findings)
    assert got == {
        "erofs-defaults": ["EROFS001", "EROFS002"], "erofs-build-time": ["EROFS002"], "erofs-owner": ["EROFS003"],
        "erofs-xattr-order": ["EROFS004"], "erofs-lz4-settings": ["EROFS005"], "erofs-lz4-content": ["EROFS006"],
        "erofs-sde-differs": ["EROFS007"], "erofs-owner-extended": ["EROFS003", "EROFS008"],
    }


def test_inode_format_change_folds_the_layout_shift(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("erofs-owner-extended")
    fmt, owner = sorted(report.findings, key=lambda f: f.rule.id, reverse=True)
    assert (fmt.rule.id, owner.rule.id) == ("EROFS008", "EROFS003")
    assert {d.field for d in fmt.causes} == {"i_format"} and len(fmt.causes) == 16
    assert fmt.note == "extended because of uid/gid above 65535: 16 inode(s) (/, /etc, /etc/os-release, ...)"
    # the owner values are the owner finding's, never folded into the layout shift
    assert {d.field for d in owner.causes} == {"i_uid", "i_gid"} and len(owner.causes) == 32
    assert not any(d.field in ("i_uid", "i_gid") for d in fmt.derived)
    # a byte that holds an owner in A and (shifted) other metadata in B counts once: for its A-side owner
    assert (fmt.bytes, owner.bytes, report.summary.bytes_differing) == (4163, 66, 4229)
    assert sum(f.bytes for f in report.findings) == 4229


def test_content_change_under_lz4_is_one_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("erofs-lz4-content")
    (f,) = report.findings
    (cause,) = f.causes
    assert (cause.kind, cause.field, cause.attrs["path"]) == ("erofs.file", "data", "/usr/bin/tool")
    assert cause.detail == "differing bytes in the file: 0x2ee0-0x2ee3 (4 bytes)"
    assert cause.extents_a[0].offset >= VBASE and cause.bytes == 0
    assert sorted(d.field for d in f.derived) == ["checksum", "pcluster:2", "pcluster:3", "pcluster:4",
                                                  "pcluster:5", "z_erofs_indexes"]
    assert f.bytes == report.summary.bytes_differing


def test_compression_settings_pair_folds_every_cluster(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("erofs-lz4-settings")
    (f,) = report.findings
    assert f.rule.id == "EROFS005" and f.bytes == report.summary.bytes_differing
    assert {d.field.split(":")[0] for d in f.causes} == {"pcluster", "z_erofs_indexes"}
    assert [d.field for d in f.derived] == ["checksum"]


def test_xattr_order_and_shared_xattrs(pair, analyzed) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("erofs-xattr-order")
    fs, _ctx = _parse(a)
    inode = _kind(fs, "erofs.inode")["/etc/os-release"]
    assert [x.name for x in inode.fields if x.name.startswith("xattr:")] == ["xattr:user.alpha", "xattr:user.beta"]
    (shared,) = [n for n in fs.children if n.kind == "erofs.xattrs"]
    # xattr_blkaddr 0: shared entry 288 is at 288 * 4 = 1152, right after the superblock
    assert [(x.name, x.extents, x.value) for x in shared.fields] == [("xattr@288:user.signed", (Extent(1152, 16),),
                                                                       b"yes")]
    m1 = _kind(fs, "erofs.inode")["/usr/lib/modules/m1.ko"]
    assert m1.field_named("h_shared_count").value == 1  # type: ignore[union-attr]
    (f,) = analyzed("erofs-xattr-order").findings
    assert f.paths == ["/etc/os-release"]


def test_hostile_images_do_not_crash(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("erofs-build-time")
    data = bytearray(a.read_bytes())
    for off, value in ((1024 + 14, b"\xff\xff"), (1024 + 12, b"\x1f"), (1024 + 40, b"\xff\xff\xff\x7f")):
        bad = bytearray(data)
        bad[off : off + len(value)] = value
        ctx = ParseContext(src=BytesSource(bytes(bad)))
        try:  # a ParseError for an unusable superblock is the only acceptable exception
            node = erofs.parse(ctx, 0, len(bad), "x")
        except ParseError:
            continue
        assert node.kind == "erofs"
    # a directory whose entries point at themselves: bounded by the visited set
    fs, _ctx = _parse(a)
    root_dir = _kind(fs, "erofs.dir")["/"]
    (blk,) = root_dir.children
    ent = next(c for c in blk.children if c.key == "etc")
    off = ent.field_named("nid").extents[0].offset  # type: ignore[union-attr]
    loop = bytearray(data)
    loop[off : off + 8] = (36).to_bytes(8, "little")  # /etc -> the root directory's NID
    node = erofs.parse(ParseContext(src=BytesSource(bytes(loop))), 0, len(loop), "x")
    assert node.kind == "erofs"


def test_microlzma_cluster_decodes() -> None:
    """MicroLZMA (erofs -zlzma, not made by erofs-utils 1.5): a raw LZMA1 stream whose first byte, always 0, carries
    the inverted properties byte; erofs pads the cluster with leading zeros."""
    import lzma

    from imgdiff.formats.erofs.zdata import Cluster, decode_cluster

    payload = b"".join(b"line %d\n" % i for i in range(2000))
    raw = lzma.compress(payload, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 20}])
    assert raw[0] == 0
    props = 3 + 9 * (0 + 5 * 2)  # lc=3 lp=0 pb=2, the defaults
    micro = bytes([~props & 0xFF]) + raw[1:]
    block = bytes(-len(micro) % 4096) + micro
    c = Cluster(la=0, llen=len(payload), pa=0, plen=len(block), plain=False)
    assert decode_cluster(block, c, 1, True) == payload
    with pytest.raises(ValueError, match="lzma"):
        decode_cluster(bytes(4095) + b"\x01", c, 1, True)
    with pytest.raises(ValueError, match="lc \\+ lp"):  # liblzma refuses lc=4 lp=1 (a mutated image found it)
        decode_cluster(bytes([~(4 + 9) & 0xFF]) + raw[1:], c, 1, True)


def test_signature_probe_reports_the_size_the_superblock_claims(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("erofs-owner")
    head = a.read_bytes()[:65536]
    assert erofs.signature(head) == ("erofs superblock", "filesystem", 73728)
    assert erofs.signature(head[:1100]) is None and erofs.signature(bytes(4096)) is None

"""dm-verity: the superblock, the hash tree declared derived, the root hash, the GUIDs repart takes from it, the
signature partition.

Fixtures: verity-repart-salt (systemd-repart 252, random salt), verity-data-byte (veritysetup with a fixed salt,
one data byte changed).  The oracle for the tree and the root hash is veritysetup itself (``verify`` with the root
hash imgdiff computed) where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from imgdiff.errors import ParseError
from imgdiff.formats import parse_image
from imgdiff.formats import verity as verity_format
from imgdiff.formats.base import ParseContext
from imgdiff.formats.verity.tree import Geometry
from imgdiff.model import Node
from imgdiff.source import BytesSource, ImageSource


def _tree(path: Path) -> Node:
    with ImageSource(str(path)) as src:
        return parse_image(ParseContext(src=src))


def _find(root: Node, kind: str) -> list[Node]:
    return [n for _k, n in root.walk() if n.kind == kind]


def test_geometry_is_cryptsetups() -> None:
    # 4 MiB of 512-byte blocks (repart 252 on a 512-byte-sector image): 16 digests per block, 4 levels,
    # 512 + 32 + 2 + 1 hash blocks after the superblock block ("Hash blocks: 547" in veritysetup dump)
    g = Geometry.of(8192, 512, 512, "sha256")
    assert (g.levels, g.level_size, g.level_block) == (4, (512, 32, 2, 1), (36, 4, 2, 1))
    assert g.tree_end == (1 + 547) * 512
    g4 = Geometry.of(1024, 4096, 4096, "sha256")
    assert (g4.levels, g4.level_size, g4.level_block, g4.tree_end) == (2, (8, 1), (2, 1), 10 * 4096)
    with pytest.raises(ValueError, match="hash_block_size 1000"):
        Geometry.of(8, 4096, 1000, "sha256")


def test_repart_verity_disk_parses_and_root_hash_matches_the_guids(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("verity-repart-salt")
    root = _tree(a)
    (tree,) = _find(root, "verity")
    rh = str(tree.attrs["root_hash"])
    assert (tree.attrs["algorithm"], tree.attrs["data_blocks"], tree.attrs["data_block_size"], tree.attrs["levels"]) == (
        "sha256", 8192, 512, 4)
    assert tree.attrs["data_partition"] == "part:1:root-x86-64"
    parts = {p.attrs["ptype"]: p for p in root.children if p.kind == "partition"}
    # systemd-repart: data partition GUID = first 128 bits of the root hash, hash partition GUID = last 128 bits
    assert str(parts["root-x86-64"].attrs["guid"]).replace("-", "") == rh[:32]
    assert str(parts["root-x86-64-verity"].attrs["guid"]).replace("-", "") == rh[32:]
    (sig,) = _find(root, "verity.signature")
    assert sig.field_named("rootHash").value == rh  # type: ignore[union-attr]
    assert sig.attrs["signing_time"] == ""  # PKCS7_NOATTR: no signing time
    assert [f.name for f in sig.fields] == ["rootHash", "certificateFingerprint", "signature", "json", "padding"]
    sb = _find(root, "verity.superblock")[0]
    assert [f.name for f in sb.fields] == ["signature", "version", "hash_type", "uuid", "algorithm", "data_block_size",
                                           "hash_block_size", "data_blocks", "salt_size", "_pad1", "salt", "_pad2"]
    # every GPT entry whose GUID is a root hash half is declared derived from it (both entry arrays)
    tied = [e.key for e in _find(root, "gpt.entry") if any(d.field == "UniquePartitionGUID" for d in e.derived)]
    assert tied == ["entry:1", "entry:2", "entry:1", "entry:2"]


@pytest.mark.skipif(shutil.which("veritysetup") is None, reason="veritysetup (cryptsetup-bin) is not installed")
def test_root_hash_verifies_with_veritysetup(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("verity-repart-salt", "verity-data-byte"):
        a, _b = pair(name)
        root = _tree(a)
        (tree,) = _find(root, "verity")
        parts = {p.attrs["ptype"]: p for p in root.children if p.kind == "partition"}
        blob = a.read_bytes()
        files = {}
        for t in ("root-x86-64", "root-x86-64-verity"):
            e = parts[t].extents[0]
            files[t] = tmp_path / f"{name}-{t}"
            files[t].write_bytes(blob[e.offset : e.end])
        out = subprocess.run(["veritysetup", "verify", str(files["root-x86-64"]), str(files["root-x86-64-verity"]),
                              str(tree.attrs["root_hash"])], check=False, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


def test_salt_only_pair_is_one_finding_with_the_tree_folded_in(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("verity-repart-salt")
    assert report.summary.bytes_unexplained == 0
    assert report.summary.bytes_differing == report.findings[0].bytes
    (f,) = report.findings
    assert f.rule.id == "VER001"
    assert sorted(d.field for d in f.causes) == ["salt", "uuid"]
    kinds = {(d.kind, d.field.split(":")[0]) for d in f.derived}
    assert kinds == {
        ("verity.hash_level", "block"), ("verity.hash_level", "root_hash"),
        ("gpt.entry", "UniquePartitionGUID"), ("gpt.header", "HeaderCRC32"),
        ("gpt.header", "PartitionEntryArrayCRC32"),
        ("verity.signature", "rootHash"), ("verity.signature", "signature"),
    }
    assert sum(1 for d in f.derived if d.kind == "verity.hash_level" and d.field.startswith("block:")) == 547
    assert "same repart seed" in f.note


def test_data_change_under_verity_is_one_content_finding(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("verity-data-byte")
    assert (report.summary.bytes_differing, report.summary.bytes_unexplained) == (144, 0)
    (f,) = report.findings
    assert f.rule.id == "EXT014" and f.paths == ["/etc/os-release"] and f.bytes == 144
    derived = sorted((d.kind, d.field) for d in f.derived)
    assert derived == [
        ("gpt.entry", "UniquePartitionGUID"), ("gpt.entry", "UniquePartitionGUID"),
        ("gpt.entry", "UniquePartitionGUID"), ("gpt.entry", "UniquePartitionGUID"),
        ("gpt.header", "HeaderCRC32"), ("gpt.header", "HeaderCRC32"),
        ("gpt.header", "PartitionEntryArrayCRC32"), ("gpt.header", "PartitionEntryArrayCRC32"),
        ("verity.hash_level", "block:0"), ("verity.hash_level", "block:0"), ("verity.hash_level", "root_hash"),
    ]
    (rh,) = [d for d in f.derived if d.field == "root_hash"]
    assert rh.a != rh.b and len(str(rh.a)) == 64


def test_hostile_superblocks_do_not_crash() -> None:
    good = bytearray(512)
    good[:8] = b"verity\0\0"
    good[8:12] = (1).to_bytes(4, "little")
    good[32:38] = b"sha256"
    for data_blocks, block in ((0, 4096), (1 << 60, 4096), (8, 3), (8, 1 << 30)):
        sb = bytearray(good)
        sb[64:68] = block.to_bytes(4, "little")
        sb[68:72] = (4096).to_bytes(4, "little")
        sb[72:80] = data_blocks.to_bytes(8, "little")
        with pytest.raises(ParseError):
            verity_format.parse(ParseContext(src=BytesSource(bytes(sb))), 0, 512, "x")
    # a tree that runs past a truncated region: a partial result with an error
    sb = bytearray(good)
    sb[64:68] = sb[68:72] = (4096).to_bytes(4, "little")
    sb[72:80] = (100000).to_bytes(8, "little")
    sb[80:82] = (32).to_bytes(2, "little")
    node = verity_format.parse(ParseContext(src=BytesSource(bytes(sb) + bytes(8192))), 0, 8704, "x")
    assert node.errors and "runs past the end" in node.errors[0]


def test_signature_probe(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("verity-data-byte")
    head = a.read_bytes()[(2048 + 8192) * 512 :][:4096]
    assert verity_format.signature(head) == ("verity superblock", "hash device", 10 * 4096)
    assert verity_format.signature(head[:100]) is None

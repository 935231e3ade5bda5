"""LUKS2: both binary headers, the JSON metadata as fields, keyslot areas, the data segment, the random-by-design
finding.

Fixture: luks2-keyfile (cryptsetup luksFormat twice, same key file).  Oracles: ``cryptsetup luksDump
--dump-json-metadata`` for the JSON area, dissect.fve for the binary headers (it reads the secondary header as
``header`` and does not verify checksums: imgdiff's own checksum check is compared with a corrupted copy instead).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from imgdiff.errors import ParseError
from imgdiff.formats import luks2, parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.formats.luks2.json_area import leaves
from imgdiff.model import Node
from imgdiff.source import BytesSource, ImageSource


def _luks(path: Path) -> Node:
    with ImageSource(str(path)) as src:
        root = parse_image(ParseContext(src=src))
    (node,) = [n for _k, n in root.walk() if n.kind == "luks2"]
    return node


def _flat(doc: object, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else None
    if items is None:
        return {prefix: doc}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def test_every_byte_has_one_owner_and_the_layout_is_cryptsetups(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("luks2-keyfile")
    node = _luks(a)
    assert [c.key for c in node.children] == ["primary", "secondary", "keyslot:0", "segment:0"]
    owned = sorted(e for _k, n in node.walk() for f in n.fields for e in f.extents)
    pos = 0
    for e in owned:
        assert e.offset == pos, (e, pos)
        pos = e.end
    assert pos == 2 << 20
    primary, secondary = node.children[0], node.children[1]
    assert primary.attrs["csum_ok"] is True and secondary.attrs["csum_ok"] is True
    fields = {f.name: f for f in primary.fields}
    assert (fields["version"].value, fields["hdr_size"].value, fields["hdr_offset"].value) == (2, 16384, 0)
    assert fields["checksum_alg"].value == "sha256"
    assert secondary.field_named("hdr_offset").value == 16384  # type: ignore[union-attr]
    (slot,) = [c for c in node.children if c.kind == "luks2.keyslot"]
    assert slot.extents[0] == (32768, 65536)  # 16-byte key x 4000 AF stripes, rounded to 4 KiB
    (seg,) = [c for c in node.children if c.kind == "luks2.segment"]
    assert seg.extents[0] == (1 << 20, 1 << 20) and seg.attrs["encryption"] == "aes-cbc-essiv:sha256"


@pytest.mark.skipif(shutil.which("cryptsetup") is None, reason="cryptsetup is not installed")
def test_json_fields_match_cryptsetup_dump(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("luks2-keyfile")
    node = _luks(a)
    out = subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", str(a)], capture_output=True,
                         text=True, check=True).stdout
    want = _flat(json.loads(out))
    for header in node.children[:2]:
        got = {f.name: f.value for f in header.children[0].fields if f.name not in ("json", "padding")}
        assert got == want
    assert want["keyslots.0.kdf.iterations"] == 1000 and want["segments.0.size"] == "dynamic"


def test_binary_headers_match_dissect_fve(pair) -> None:  # type: ignore[no-untyped-def]
    fve = pytest.importorskip("dissect.fve.luks")
    a, _b = pair("luks2-keyfile")
    node = _luks(a)
    with open(a, "rb") as fh:
        ref = fve.LUKS(fh)
        for ours, theirs in ((node.children[0], ref.header1), (node.children[1], ref.header2)):
            f = {x.name: x.value for x in ours.fields}
            assert f["seqid"] == theirs.seqid and f["hdr_size"] == theirs.hdr_size
            assert f["uuid"] == theirs.uuid.rstrip(b"\0").decode()
            assert f["salt"] == bytes(theirs.salt).hex()
            assert f["hdr_offset"] == theirs.hdr_offset


def _which(path: str) -> str:
    return next(p for p in path.split("/") if p in ("primary", "secondary"))


def test_random_by_design_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("luks2-keyfile")
    assert report.summary.bytes_unexplained == 0
    assert [f.rule.id for f in report.findings] == ["LUKS001", "LUKS002"]
    rnd, uid = report.findings
    assert sorted((d.kind, d.field) for d in rnd.causes) == [
        ("luks2.header", "salt"), ("luks2.header", "salt"),
        ("luks2.json", "digests.0.digest"), ("luks2.json", "digests.0.salt"), ("luks2.json", "keyslots.0.kdf.salt"),
        ("luks2.keyslot", "area"),
    ]
    # the secondary header's JSON copies and both checksums are folded in
    assert sorted((_which(d.node_path), d.field) for d in rnd.derived) == [
        ("primary", "csum"), ("secondary", "csum"), ("secondary", "digests.0.digest"),
        ("secondary", "digests.0.salt"), ("secondary", "keyslots.0.kdf.salt"),
    ]
    assert [(d.field, d.node_path.split("/")[-1]) for d in uid.causes] == [("uuid", "primary")]
    assert [(d.field, d.node_path.split("/")[-1]) for d in uid.derived] == [("uuid", "secondary")]
    assert rnd.bytes + uid.bytes == report.summary.bytes_differing
    assert "cannot be compared bit for bit" in rnd.rule.title


def test_corrupted_checksum_and_hostile_headers(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("luks2-keyfile")
    data = bytearray(a.read_bytes()[: 1 << 20])
    data[4096 + 20] ^= 1  # inside the primary JSON text
    node = luks2.parse(ParseContext(src=BytesSource(bytes(data))), 0, len(data), "x")
    assert node.children[0].attrs["csum_ok"] is False and node.children[1].attrs["csum_ok"] is True
    bad = bytearray(data)
    bad[8:16] = (12345).to_bytes(8, "big")  # hdr_size not an allowed size
    with pytest.raises(ParseError):
        luks2.parse(ParseContext(src=BytesSource(bytes(bad))), 0, len(bad), "x")
    deep = "[" * 100 + "]" * 100
    with pytest.raises(ValueError):
        leaves(deep)
    garbage = bytearray(data)
    garbage[4096 : 4096 + 9] = b"{nonsense"
    node = luks2.parse(ParseContext(src=BytesSource(bytes(garbage))), 0, len(garbage), "x")
    assert any("JSON area" in e for e in node.children[0].errors)


def test_signature_probe(pair) -> None:  # type: ignore[no-untyped-def]
    a, _b = pair("luks2-keyfile")
    head = a.read_bytes()[:4096]
    assert luks2.signature(head) == ("LUKS2 header", "volume", 32768)
    assert luks2.signature(b"SKUL\xba\xbe" + bytes(100)) is None

"""LUKS2 encrypted volumes: both binary headers, the JSON metadata as fields, keyslot areas and the data segment.

A LUKS2 device starts with two copies of the metadata (``hdr_size`` bytes each: the 4096-byte binary header and
the JSON area), followed by the keyslots area (the AF-split, encrypted volume key of each keyslot; the unused
rest is wiped with random bytes) and, at the segment offset, the encrypted data.  Everything random by design
(header salts, keyslot KDF salts, digest salt and digest, keyslot material, ciphertext under a random volume key)
is a field, so a finding can name it; the header checksum is declared derived from the header and its JSON area,
and the secondary header's fields (except its own ``salt``, ``hdr_offset``, ``magic``) are declared copies of the
primary's.

Tree (keys in brackets)::

    luks2 [luks2]                              padding (keyslots area end .. first segment), unused (after)
      luks2.header [primary] / [secondary]     magic .. _padding4096 (cryptsetup names)
        luks2.json [json]                      keyslots.0.kdf.salt, segments.0.offset, ... (one per JSON leaf),
                                               json (punctuation and names), padding (NUL fill)
      luks2.keyslot [keyslot:N]                area (the keyslot's key material)
      luks2.keyslots_area [keyslots]           unused (random wipe between and after keyslots)
      luks2.segment [segment:N]                data@OFF (one per differing MiB), data@OFF-END (equal runs)

References:
    cryptsetup lib/luks2/luks2.h (``struct luks2_hdr_disk``), lib/luks2/luks2_disk_metadata.c
    (``hdr_checksum_calculate``: the checksum covers the binary header with ``csum`` zeroed and the whole JSON
    area; ``hdr_read_disk``, secondary header offsets); LUKS2 On-Disk Format Specification 1.1 (sections 2-3);
    systemd src/partition/repart.c ``partition_encrypt`` (LUKS2 UUID derived from the partition UUID, volume key
    random).
"""

from __future__ import annotations

import hashlib
import json

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import Compiled, blob_display, blob_value
from imgdiff.formats.luks2.c_luks2 import (
    LUKS2_HDR_BIN_LEN,
    LUKS2_HDR_DISK,
    LUKS2_HDR_OFFSETS,
    LUKS2_MAGIC_1ST,
    LUKS2_MAGIC_2ND,
)
from imgdiff.formats.luks2.json_area import Leaf, byte_offsets, leaves
from imgdiff.model import Derived, Extent, Field, Node, Value, subtract_extents

NAME = "luks2"

HDR = Compiled(LUKS2_HDR_DISK, ">")
CSUM = HDR.span("csum")
CHUNK = 1 << 20
"""Granularity of the data segment's fields."""
MAX_JSON = 4 << 20
COPIED = ("version", "hdr_size", "seqid", "label", "checksum_alg", "uuid", "subsystem", "_padding", "_padding4096")
"""Binary header fields the secondary header repeats from the primary (``salt`` and ``hdr_offset`` are its own)."""


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region starts with a LUKS2 primary binary header."""
    return size >= 2 * 16384 and head[:6] == LUKS2_MAGIC_1ST and head[6:8] == b"\x00\x02"


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("LUKS2 header", "volume", both metadata copies' bytes)`` whatever the region's size."""
    if len(head) < 16 or head[:6] != LUKS2_MAGIC_1ST or head[6:8] != b"\x00\x02":
        return None
    hdr_size = int.from_bytes(head[8:16], "big")
    return "LUKS2 header", "volume", 2 * hdr_size if hdr_size in LUKS2_HDR_OFFSETS else 0


def _cstr(raw: object) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", errors="replace")  # type: ignore[call-overload]


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``luks2`` node of ``[base, base + size)``."""
    head = ctx.read(base, LUKS2_HDR_BIN_LEN)
    if head[:6] != LUKS2_MAGIC_1ST:
        raise ParseError("no LUKS2 primary header", base, "magic")
    hdr_size = int.from_bytes(head[8:16], "big")
    root = Node(kind="luks2", key="luks2", label="LUKS2 volume", extents=(Extent(base, size),),
                attrs={"scope": True, "fs": "luks2", "region": label})
    if hdr_size not in LUKS2_HDR_OFFSETS or 2 * hdr_size > size:
        raise ParseError(f"LUKS2 hdr_size {hdr_size} is not one of the allowed sizes or exceeds the region",
                         base + 8, "hdr_size")
    primary, doc = _header(ctx, base, 0, hdr_size, "primary", LUKS2_MAGIC_1ST)
    secondary, doc2 = _header(ctx, base, hdr_size, hdr_size, "secondary", LUKS2_MAGIC_2ND)
    root.children += [primary, secondary]
    _tie_copies(primary, secondary)
    if doc is None:
        doc = doc2
        root.errors.append("primary JSON area unreadable: keyslots and segments read from the secondary")
    if doc is None:
        raise ParseError("no readable LUKS2 JSON metadata", base + LUKS2_HDR_BIN_LEN, "json")
    root.attrs["uuid"] = str(primary.attrs.get("uuid", ""))
    root.attrs["label"] = str(primary.attrs.get("label", ""))
    meta_end = 2 * hdr_size
    config = doc.get("config")
    keyslots_size = _int(config.get("keyslots_size")) if isinstance(config, dict) else None
    ks_end = meta_end + (keyslots_size or 0)
    ks_area = Extent(base + meta_end, max(0, min(ks_end, size) - meta_end))
    used: list[Extent] = []
    for key, slot in sorted(_objects(doc, "keyslots"), key=lambda kv: _sort_key(kv[0])):
        area = slot.get("area") if isinstance(slot, dict) else None
        off = _int(area.get("offset")) if isinstance(area, dict) else None
        length = _int(area.get("size")) if isinstance(area, dict) else None
        if off is None or length is None or off < 0 or off + length > size or length <= 0:
            root.errors.append(f"keyslot {key}: area not plausible")
            continue
        ext = Extent(base + off, length)
        used.append(ext)
        root.children.append(Node(kind="luks2.keyslot", key=f"keyslot:{key}", label=f"keyslot {key} area",
                                  extents=(ext,), fields=(_blob(ctx, "area", ext, "encrypted key material"),),
                                  attrs={"keyslot": key}))
        if not (ks_area.offset <= ext.offset and ext.end <= ks_area.end):
            ks_area = Extent(ks_area.offset, max(ks_area.end, ext.end) - ks_area.offset)
    unused = subtract_extents(ks_area, used) if ks_area.length else []
    if unused:
        root.children.append(Node(kind="luks2.keyslots_area", key="keyslots", label="keyslots area",
                                  extents=tuple(unused),
                                  fields=(Field("unused", _digest(ctx, unused), tuple(unused),
                                                f"{sum(e.length for e in unused)} bytes, wiped with random data"),)))
    segments = sorted(_objects(doc, "segments"), key=lambda kv: _sort_key(kv[0]))
    seg_exts: list[Extent] = []
    for key, seg in segments:
        off = _int(seg.get("offset")) if isinstance(seg, dict) else None
        if off is None or not 0 <= off < size:
            root.errors.append(f"segment {key}: offset not plausible")
            continue
        raw_size = seg.get("size") if isinstance(seg, dict) else None
        length = size - off if raw_size == "dynamic" else _int(raw_size)
        if length is None or length <= 0:
            root.errors.append(f"segment {key}: size not plausible")
            continue
        length = min(length, size - off)
        ext = Extent(base + off, length)
        seg_exts.append(ext)
        root.children.append(_segment(ctx, key, ext, seg))
    fields: list[Field] = []
    tail_start = base + max(ks_area.end - base, meta_end)
    first_seg = min((e.offset for e in seg_exts), default=base + size)
    if first_seg > tail_start:
        gap = Extent(tail_start, first_seg - tail_start)
        fields.append(Field("padding", _digest(ctx, [gap]), (gap,), f"{gap.length} bytes before the data segment"))
    taken = [*(e for c in root.children for e in c.extents)]
    rest = [e for e in subtract_extents(Extent(base, size), [*taken, *(f.extents[0] for f in fields)])]
    if rest:
        fields.append(Field("unused", _digest(ctx, rest), tuple(rest), f"{sum(e.length for e in rest)} bytes"))
    root.fields = tuple(fields)
    for n in (root, primary, secondary):
        ctx.errors.extend(f"{label}: {m}" for m in n.errors)
    return root


def _sort_key(k: str) -> tuple[int, str]:
    return (int(k), "") if k.isdigit() else (1 << 30, k)


def _objects(doc: dict[str, object], name: str) -> list[tuple[str, dict[str, object]]]:
    objs = doc.get(name)
    if not isinstance(objs, dict):
        return []
    return [(str(k), v) for k, v in list(objs.items())[:32] if isinstance(v, dict)]


def _int(v: object) -> int | None:
    """Return a JSON number or decimal string (LUKS2 writes 64-bit values as strings) as an int."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _digest(ctx: ParseContext, exts: list[Extent]) -> Value:
    """Return a summary value of the bytes in ``exts``: read only when they may differ."""
    if not any(ctx.interesting(e) for e in exts):
        return None
    h = hashlib.sha256()
    for e in exts:
        pos = e.offset
        while pos < e.end:
            n = min(CHUNK, e.end - pos)
            h.update(ctx.read(pos, n))
            pos += n
    return "sha256:" + h.hexdigest()[:16]


def _blob(ctx: ParseContext, name: str, ext: Extent, display: str) -> Field:
    return Field(name, _digest(ctx, [ext]), (ext,), f"{ext.length} bytes, {display}")


def _header(ctx: ParseContext, base: int, off: int, hdr_size: int, key: str,
            magic: bytes) -> tuple[Node, dict[str, object] | None]:
    """Return one binary header with its JSON area node, and the parsed JSON document (None if unreadable)."""
    start = base + off
    raw = ctx.read(start, hdr_size)
    fields = HDR.fields(raw, 0, start, decode={
        "magic": lambda v: bytes(v).hex(),
        "label": _cstr, "checksum_alg": _cstr, "uuid": _cstr, "subsystem": _cstr,
        "salt": lambda v: bytes(v).hex(),
        "_padding": blob_value, "_padding4096": blob_value,
    }, display={"_padding": blob_display, "_padding4096": blob_display})
    hdr = {f.name: f.value for f in fields}
    alg = str(hdr.get("checksum_alg") or "sha256")
    node = Node(kind="luks2.header", key=key, label=f"{key} header", extents=(Extent(start, hdr_size),),
                attrs={"uuid": str(hdr.get("uuid", "")), "label": str(hdr.get("label", "")), "checksum_alg": alg})
    if raw[:6] != magic:
        node.errors.append(f"{key} header: magic {raw[:6].hex()} is not {magic.hex()}")
    if int.from_bytes(raw[8:16], "big") != hdr_size:
        node.errors.append(f"{key} header: hdr_size differs from the primary's {hdr_size}")
    try:
        hsize = hashlib.new(alg).digest_size
    except (ValueError, TypeError):
        hsize = 0
        node.errors.append(f"{key} header: checksum algorithm {alg!r} is not available; checksum not verified")
    csum_off, csum_len = CSUM
    fields = [f if f.name != "csum" else Field("csum", raw[csum_off : csum_off + (hsize or csum_len)].hex(),
                                               f.extents, f"{alg}") for f in fields]
    node.fields = tuple(fields)
    if hsize:
        h = hashlib.new(alg)
        h.update(raw[:csum_off])
        h.update(bytes(csum_len))
        h.update(raw[csum_off + csum_len :])
        ok = h.digest() == raw[csum_off : csum_off + hsize]
        node.attrs["csum_ok"] = ok
        if not ok:
            node.errors.append(f"{key} header: csum does not match the header and JSON area")
    node.derived = (Derived("csum", covers=(Extent(start, csum_off),
                                             Extent(start + csum_off + csum_len, hdr_size - csum_off - csum_len))),)
    json_node, doc = _json(raw[LUKS2_HDR_BIN_LEN:], start + LUKS2_HDR_BIN_LEN, node.errors)
    node.children.append(json_node)
    return node, doc


def _json(area: bytes, start: int, errors: list[str]) -> tuple[Node, dict[str, object] | None]:
    """Return the JSON area node: one field per leaf, the syntax, the NUL fill."""
    end = area.find(b"\0")
    end = len(area) if end < 0 else min(end, MAX_JSON)
    whole = Extent(start, len(area))
    node = Node(kind="luks2.json", key="json", label="JSON metadata", extents=(whole,))
    doc: dict[str, object] | None = None
    found: list[Leaf] = []
    try:
        text = area[:end].decode("utf-8")
        parsed = json.loads(text)
        found = leaves(text)
        if isinstance(parsed, dict):
            doc = parsed
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        errors.append(f"JSON area: {exc}")
        text = ""
    offs = byte_offsets(text) if text else None
    fields: list[Field] = []
    taken: list[Extent] = []
    for leaf in found:
        s, e = (leaf.start, leaf.end) if offs is None else (offs[leaf.start], offs[leaf.end])
        ext = Extent(start + s, e - s)
        v = leaf.value
        value: Value = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
        fields.append(Field(leaf.path, value, (ext,) if ext.length else ()))
        if ext.length:
            taken.append(ext)
    text_ext = Extent(start, end)
    syntax = subtract_extents(text_ext, taken) if text else ([text_ext] if end else [])
    if syntax:
        fields.append(Field("json", "syntax" if text else blob_value(area[:end]), tuple(syntax),
                            "JSON punctuation and member names"))
    if end < len(area):
        pad = Extent(start + end, len(area) - end)
        fill = area[end:]
        fields.append(Field("padding", "zero" if not fill.strip(b"\0") else blob_value(fill), (pad,),
                            blob_display(fill)))
    node.fields = tuple(fields)
    return node, doc


def _tie_copies(primary: Node, secondary: Node) -> None:
    """Declare the secondary header's repeated fields (binary and JSON) copies of the primary's."""
    pf = {f.name: f for f in primary.fields}
    secondary.derived = (*secondary.derived,
                         *(Derived(f.name, covers=pf[f.name].extents) for f in secondary.fields
                           if f.name in COPIED and f.name in pf))
    pj, sj = primary.children[0], secondary.children[0]
    pjf = {f.name: f for f in pj.fields}
    sj.derived = tuple(Derived(f.name, covers=pjf[f.name].extents) for f in sj.fields
                       if f.name in pjf and f.name not in ("json", "padding") and pjf[f.name].extents)


def _segment(ctx: ParseContext, key: str, ext: Extent, seg: dict[str, object]) -> Node:
    """Return a data segment: one field per differing MiB, one per run of equal MiBs."""
    fields: list[Field] = []
    pos = ext.offset
    rel = 0
    while pos < ext.end:
        n = min(CHUNK, ext.end - pos)
        piece = Extent(pos, n)
        if ctx.interesting(piece):
            fields.append(Field(f"data@{rel:#x}", blob_value(ctx.read(pos, n)), (piece,), f"{n} bytes of ciphertext"))
            pos += n
            rel += n
            continue
        run_end = pos + n
        while run_end < ext.end and not ctx.interesting(Extent(run_end, min(CHUNK, ext.end - run_end))):
            run_end += min(CHUNK, ext.end - run_end)
        fields.append(Field(f"data@{rel:#x}-{rel + run_end - pos:#x}", None, (Extent(pos, run_end - pos),),
                            f"{run_end - pos} bytes"))
        rel += run_end - pos
        pos = run_end
    enc = seg.get("encryption")
    return Node(kind="luks2.segment", key=f"segment:{key}", label=f"data segment {key}", extents=(ext,),
                fields=tuple(fields), attrs={"segment": key, "encryption": str(enc) if enc else ""})

"""The dm-verity signature partition (systemd-repart ``Verity=signature``): a JSON object padded with NUL bytes.

systemd-repart writes ``{"rootHash":"<hex>","certificateFingerprint":"<hex>","signature":"<base64 PKCS#7>"}``
and pads it with NUL bytes to a multiple of 4096.  Each JSON member's value is a field at the bytes of its string;
the JSON punctuation and key names are one ``json`` field, the NUL padding ``padding``.  ``rootHash`` is declared
derived from the hash partition's root hash by :func:`imgdiff.formats.verity.tree.link_disk`; ``signature`` is
derived from ``rootHash`` and ``certificateFingerprint`` (it signs the root hash text with that certificate's key).
The PKCS#7 structure is decoded far enough to show its size and its signing time (systemd-repart signs with
``PKCS7_NOATTR``: no authenticated attributes, so no signing time).

Tree::

    verity.signature [signature]     rootHash, certificateFingerprint, signature, json, padding

References:
    systemd src/partition/repart.c ``sign_verity_roothash`` (``PKCS7_sign(..., PKCS7_DETACHED|PKCS7_NOATTR|
    PKCS7_BINARY)``) and ``partition_format_verity_sig``; Discoverable Partitions Specification ("Verity
    signature partitions"); RFC 2315 (PKCS #7 SignedData), RFC 2985 section 5.3.3 (signingTime).
"""

from __future__ import annotations

import base64
import binascii
import json

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.model import Derived, Extent, Field, Node, Value

NAME = "verity-sig"

MAX_JSON = 1 << 20
SIGNING_TIME_OID = bytes.fromhex("06092a864886f70d010905")
"""DER of OBJECT IDENTIFIER 1.2.840.113549.1.9.5 (pkcs-9 signingTime)."""


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region starts with a JSON object that has a ``rootHash`` member."""
    return size >= 16 and head[:1] == b"{" and b'"rootHash"' in head[:4096] and b'"signature"' in head


def _spans(text: str) -> dict[str, tuple[int, int, object]]:
    """Return ``{key: (start, end, value)}`` of each top-level member's value (string values without quotes)."""
    dec = json.JSONDecoder()
    out: dict[str, tuple[int, int, object]] = {}
    pos = 1
    n = len(text)
    for _ in range(1000):
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "}":
            break
        key, pos = dec.raw_decode(text, pos)
        while pos < n and text[pos] in " \t\r\n:":
            pos += 1
        value, end = dec.raw_decode(text, pos)
        if isinstance(value, str):
            out[str(key)] = (pos + 1, end - 1, value)
        else:
            out[str(key)] = (pos, end, value)
        pos = end
    return out


def signing_time(der: bytes) -> str | None:
    """Return the PKCS#7 signingTime attribute's text (UTCTime/GeneralizedTime), or None when there is none."""
    i = der.find(SIGNING_TIME_OID)
    if i < 0:
        return None
    j = i + len(SIGNING_TIME_OID)
    # SET (0x31) of one Time: UTCTime (0x17) or GeneralizedTime (0x18)
    if j + 4 > len(der) or der[j] != 0x31 or der[j + 2] not in (0x17, 0x18):
        return None
    length = der[j + 3]
    return der[j + 4 : j + 4 + length].decode("ascii", errors="replace")


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``verity.signature`` node of ``[base, base + size)``."""
    raw = ctx.read(base, min(size, MAX_JSON))
    end = raw.find(b"\0")
    end = len(raw) if end < 0 else end
    try:
        text = raw[:end].decode("utf-8")
        doc = json.loads(text)
        spans = _spans(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"verity signature JSON: {exc}", base, "json") from None
    if not isinstance(doc, dict) or "rootHash" not in doc:
        raise ParseError("verity signature JSON has no rootHash", base, "rootHash")
    # JSON text is ASCII here (hex and base64 values); byte offsets equal character offsets when it is.
    if len(text) != end:
        raise ParseError("verity signature JSON is not ASCII", base, "json")
    fields: list[Field] = []
    taken: list[Extent] = []
    attrs: dict[str, Value] = {"scope": True, "fs": "verity-sig", "region": label}
    for key, (s, e, value) in spans.items():
        ext = Extent(base + s, e - s)
        v: Value = value if isinstance(value, (str, int, bool, float)) or value is None else json.dumps(value)
        disp = None
        if key == "signature" and isinstance(value, str):
            try:
                der = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                der = b""
            st = signing_time(der)
            attrs["signing_time"] = st or ""
            disp = f"PKCS#7, {len(der)} bytes, signing time: {st or 'none (no authenticated attributes)'}"
        if key in ("rootHash", "certificateFingerprint") and isinstance(value, str):
            attrs[key] = value
        fields.append(Field(key, v, (ext,) if ext.length else (), disp))
        taken.append(ext)
    syntax = _gaps(Extent(base, end), taken)
    if syntax:
        fields.append(Field("json", "syntax", tuple(syntax), "JSON punctuation and member names"))
    if end < size:
        pad = Extent(base + end, size - end)
        tail = ctx.read(pad.offset, min(pad.length, 1 << 20)) if ctx.interesting(pad) else b""
        fields.append(Field("padding", "zero" if not tail.strip(b"\0") else "non-zero", (pad,),
                            f"{pad.length} bytes after the JSON text"))
    derived: list[Derived] = []
    sig = spans.get("signature")
    if sig is not None:
        covers = tuple(Extent(base + s, e - s) for k, (s, e, _v) in spans.items()
                       if k in ("rootHash", "certificateFingerprint"))
        derived.append(Derived("signature", covers=covers))
    return Node(kind="verity.signature", key="signature", label="verity signature", extents=(Extent(base, size),),
                fields=tuple(fields), derived=tuple(derived), attrs=attrs)


def _gaps(whole: Extent, taken: list[Extent]) -> list[Extent]:
    from imgdiff.model import subtract_extents

    return subtract_extents(whole, taken)

"""Compressed streams holding a nested image: their header fields, and the compressed bytes as derived data.

When the engine finds that a file's content is a gzip/xz/zstd/bzip2 stream whose decoded payload is an image or
archive it can parse (a zstd-compressed cpio initrd, an xz-compressed disk image), it replaces the file's ``data``
field by the node built here: the stream's header fields under their specification names (settings that are
causes of their own, such as the gzip ``MTIME``), and the rest of the stored bytes (compressed blocks, checksums,
sizes) as fields declared :class:`~imgdiff.model.Derived` from the decoded payload, which hangs below as a
``decoded`` node in a decoded space.  A payload difference then takes the compressed bytes with it; equal payloads
with different compressed bytes are "compressed differently" (rule CNT003).

Tree::

    content.<kind> [<kind>]       header fields, "compressed data" (derived), trailer fields (derived)
      decoded [payload]           the decoded space; its child is the nested image's root node

References:
    RFC 1952 (gzip member: ID1 ID2 CM FLG MTIME XFL OS [FEXTRA FNAME FCOMMENT FHCRC] ... CRC32 ISIZE);
    RFC 8878 section 3.1.1 (zstd frame: Magic_Number Frame_Header_Descriptor Window_Descriptor Dictionary_ID
    Frame_Content_Size ... Content_Checksum); The .xz File Format 1.1.0 section 2.1.1 (Stream Header: Header Magic
    Bytes, Stream Flags, CRC32); bzip2 stream header ("BZh" + block size digit).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from imgdiff.content.compressed import GZIP_FLAGS, GZIP_OS, gzip_header
from imgdiff.formats.compiled import blob_value
from imgdiff.model import Derived, Extent, Field, Node, Value
from imgdiff.source import MappedSource

HEADER_READ = 4096
"""Bytes read to parse a stream header (gzip FNAME/FCOMMENT longer than this are cut)."""


def _flags(flg: int) -> str:
    names = [n for bit, n in GZIP_FLAGS if flg & bit]
    return "|".join(names) if names else "none"


class _Builder:
    """Collects fields at stored-file offsets and maps them onto the image through the file's extents."""

    def __init__(self, view: MappedSource, payload: Extent) -> None:
        self.view = view
        self.payload = payload
        self.fields: list[Field] = []
        self.derived: list[Derived] = []
        self.pos = 0

    def add(self, name: str, start: int, size: int, value: Value, display: str | None = None,
            derived: bool = False) -> None:
        if size <= 0:
            return
        exts = tuple(self.view.to_parent(start, size))
        self.fields.append(Field(name, value, exts, display))
        if derived:
            self.derived.append(Derived(name, covers=(self.payload,)))
        self.pos = max(self.pos, start + size)

    def rest(self, end: int) -> None:
        """Own ``[pos, end)`` as the derived ``compressed data`` field."""
        if end > self.pos:
            data = _hash_view(self.view, self.pos, end)
            self.add("compressed data", self.pos, end - self.pos, data, f"{end - self.pos} bytes", derived=True)


def _hash_view(view: MappedSource, start: int, end: int) -> Value:
    import hashlib

    if end - start <= 64:
        return view.read(start, end - start)
    h = hashlib.sha256()
    pos = start
    while pos < end:
        n = min(1 << 20, end - pos)
        h.update(view.read(pos, n))
        pos += n
    return "sha256:" + h.hexdigest()


def _gzip(b: _Builder, head: bytes, size: int) -> None:
    hdr = gzip_header(head)
    b.add("ID1 ID2", 0, 2, head[:2].hex())
    b.add("CM", 2, 1, head[2])
    b.add("FLG", 3, 1, hdr.flg, _flags(hdr.flg))
    b.add("MTIME", 4, 4, hdr.mtime)
    b.add("XFL", 8, 1, hdr.xfl)
    b.add("OS", 9, 1, hdr.os, GZIP_OS.get(hdr.os))
    for name in ("FEXTRA", "FNAME", "FCOMMENT", "FHCRC"):
        part = hdr.parts.get(name)
        if part is not None:
            start, end, value = part
            b.add(name, start, end - start, value)
    if size - 8 > b.pos:
        b.rest(size - 8)
        tail = b.view.read(size - 8, 8)
        crc, isize = struct.unpack("<II", tail) if len(tail) == 8 else (0, 0)
        b.add("CRC32", size - 8, 4, crc, f"0x{crc:08x}", derived=True)
        b.add("ISIZE", size - 4, 4, isize, derived=True)
    else:
        b.rest(size)


_FCS_SIZES = (0, 2, 4, 8)
_DID_SIZES = (0, 1, 2, 4)


def _zstd(b: _Builder, head: bytes, size: int) -> None:
    b.add("Magic_Number", 0, 4, head[:4].hex())
    fhd = head[4]
    single = (fhd >> 5) & 1
    fcs_flag = fhd >> 6
    did_flag = fhd & 3
    b.add("Frame_Header_Descriptor", 4, 1, fhd, f"0x{fhd:02x}")
    pos = 5
    if not single:
        wd = head[pos]
        log = 10 + (wd >> 3)
        window = (1 << log) + ((1 << log) >> 3) * (wd & 7)
        b.add("Window_Descriptor", pos, 1, wd, f"window {window >> 20} MiB" if window >= 1 << 20 else
              f"window {window >> 10} KiB")
        pos += 1
    did = _DID_SIZES[did_flag]
    if did:
        b.add("Dictionary_ID", pos, did, int.from_bytes(head[pos : pos + did], "little"))
        pos += did
    fcs = _FCS_SIZES[fcs_flag] if fcs_flag or not single else 1
    if fcs_flag == 0 and not single:
        fcs = 0
    if fcs:
        v = int.from_bytes(head[pos : pos + fcs], "little") + (256 if fcs == 2 else 0)
        b.add("Frame_Content_Size", pos, fcs, v, derived=True)
        pos += fcs
    b.rest(size)


def _xz(b: _Builder, head: bytes, size: int) -> None:
    b.add("Header Magic Bytes", 0, 6, head[:6].hex())
    b.add("Stream Flags", 6, 2, head[6:8].hex())
    crc = struct.unpack_from("<I", head, 8)[0] if len(head) >= 12 else 0
    b.add("CRC32", 8, 4, crc, f"0x{crc:08x}")
    b.derived.append(Derived("CRC32", covers=tuple(b.view.to_parent(6, 2))))
    b.rest(size)


def _bzip2(b: _Builder, head: bytes, size: int) -> None:
    b.add("magic", 0, 3, head[:3].decode("latin-1"))
    b.add("block size", 3, 1, head[3] - 0x30, f"{(head[3] - 0x30) * 100} kB")
    b.rest(size)


BUILDERS = {"gzip": _gzip, "zstd": _zstd, "xz": _xz, "bzip2": _bzip2}


def stream_node(kind: str, view: MappedSource, payload: Extent, label: str, attrs: Mapping[str, Value]) -> Node:
    """Return the ``content.<kind>`` node for a stream stored as the file ``view`` whose payload is ``payload``.

    Every stored byte belongs to one field; the ``decoded`` child (to which the caller attaches the nested image)
    owns the payload's decoded space.  ``attrs`` are the holder file's (its ``path`` names the stream too).
    """
    b = _Builder(view, payload)
    head = view.read(0, HEADER_READ)
    try:
        BUILDERS[kind](b, head, view.size)
    except (ValueError, IndexError, struct.error):
        b.fields.clear()
        b.derived.clear()
        b.pos = 0
        b.rest(view.size)
    decoded = Node(kind="decoded", key="payload", label=f"decoded {kind} payload", extents=(payload,),
                   attrs={"decoded": kind})
    stored = tuple(view.to_parent(0, view.size))
    keep = {k: v for k, v in attrs.items() if k in ("path", "paths", "ino", "file_type")}
    node = Node(kind=f"content.{kind}", key=kind, label=f"{kind} stream",
                extents=(*stored, payload), fields=tuple(b.fields), derived=tuple(b.derived),
                children=[decoded], attrs={**keep, "stream": kind, "holder": label})
    return node


def header_fields(kind: str, view: MappedSource) -> list[Field]:
    """Return the header fields of the ``kind`` stream stored as ``view`` that are settings of the compressor run:
    the fields :func:`stream_node` declares derived (sizes, checksums, the compressed data) are left out.  Empty
    when the header does not parse."""
    b = _Builder(view, Extent(0, 0))
    try:
        BUILDERS[kind](b, view.read(0, HEADER_READ), view.size)
    except (ValueError, IndexError, struct.error, KeyError):
        return []
    derived = {d.field for d in b.derived}
    return [f for f in b.fields if f.name not in derived]


def copy_node(payload: Extent, label: str) -> Node:
    """Return the ``decoded`` node for an image file analysed in a decoded space as a copy (stored elsewhere in B)."""
    del label
    return Node(kind="decoded", key="payload", label="file contents", extents=(payload,), attrs={"decoded": "copy"})


__all__ = ["blob_value", "copy_node", "header_fields", "stream_node"]

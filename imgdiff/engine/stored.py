"""The stored files of compressed inputs: when both inputs were compressed, the compressed files are compared too.

``imgdiff explain a.raw.xz b.raw.xz`` compares the decompressed images byte for byte, but the artefacts a build
publishes are the compressed files: two equal images compressed by another xz thread count, zstd level or gzip
name/time are still two different files.  This module reads both stored files (read-only, streamed: the hash
reads the file once in 1 MiB steps, the headers a few KiB) and returns a difference per stream header field that
differs, plus what the headers do not record (``xz`` block count and block header flags from the index, the file
size and sha256), so that the rules can name the compressor setting that made them differ.

Nothing here is an image byte: the differences have no extents and count no bytes (``bytes_differing`` stays the
count over the decompressed images).

References: The .xz File Format 1.1.0 (2.1.2 Stream Footer: CRC32, Backward Size, Stream Flags, Footer Magic
Bytes; 3.1 Block Header: Block Header Size, Block Flags; 4 Index: Index Indicator, Number of Records), RFC 1952,
RFC 8878 section 3.1.1.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace

from imgdiff.formats.compressed import header_fields
from imgdiff.model import Change, Difference, Extent, Value
from imgdiff.source import ImageSource, MappedSource

HASH_STEP = 1 << 20
LOCATION = "compressed file"


@dataclass(frozen=True, slots=True)
class StoredField:
    """One fact of a stored file: its value and how to show it."""

    value: Value
    display: str | None = None


def stored_fields(path: str, kind: str) -> dict[str, StoredField]:
    """Return the facts of the compressed file ``path`` (a ``kind`` stream), by field name.

    ``file`` (size and sha256), the stream header fields as :mod:`imgdiff.formats.compressed` names them (without
    the derived ones, which follow from the payload), and for xz the block count and the first Block Flags.
    """
    src = ImageSource(path)
    try:
        size = src.size
        out: dict[str, StoredField] = {}
        digest = hashlib.sha256()
        pos = 0
        while pos < size:
            chunk = src.read(pos, min(HASH_STEP, size - pos))
            if not chunk:
                break
            digest.update(chunk)
            pos += len(chunk)
        sha = digest.hexdigest()
        out["file"] = StoredField(f"sha256:{sha}", f"{kind}, {size} bytes")
        view = MappedSource(src, (Extent(0, size),), path)
        out.update(_header_fields(kind, view))
        if kind == "xz":
            out.update(_xz_blocks(src, size))
        return out
    finally:
        src.close()


def _header_fields(kind: str, view: MappedSource) -> dict[str, StoredField]:
    return {f.name: StoredField(f.value, f.display) for f in header_fields(kind, view)}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode an xz multibyte integer at ``pos``; return (value, next position)."""
    value = 0
    for i in range(9):
        if pos >= len(buf):
            raise ValueError("xz integer runs past the buffer")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos
    raise ValueError("xz integer longer than 9 bytes")


def _xz_blocks(src: ImageSource, size: int) -> dict[str, StoredField]:
    """Return the block count (from the last stream's Index) and the first Block Header's Block Flags."""
    out: dict[str, StoredField] = {}
    head = src.read(12, 1024)
    if len(head) >= 2 and head[0]:
        flags = head[1]
        sizes = [n for bit, n in ((0x40, "compressed"), (0x80, "uncompressed")) if flags & bit]
        out["Block Flags"] = StoredField(
            flags, f"0x{flags:02x}: {(flags & 3) + 1} filter(s), sizes recorded: {' and '.join(sizes) or 'none'}"
        )
        try:
            out.update(_xz_filters(head[: (head[0] + 1) * 4], flags))
        except ValueError:
            pass
    end = size
    while end >= 12 and src.read(end - 4, 4) == b"\0\0\0\0":  # stream padding
        end -= 4
    footer = src.read(end - 12, 12) if end >= 12 else b""
    if len(footer) == 12 and footer[10:12] == b"YZ":
        index_size = (struct.unpack_from("<I", footer, 4)[0] + 1) * 4
        start = end - 12 - index_size
        if 12 <= start and index_size <= 1 << 24:
            index = src.read(start, min(index_size, 64))
            try:
                if index[:1] == b"\0":
                    records, _ = _varint(index, 1)
                    out["Blocks"] = StoredField(records, f"{records} block(s) in the last stream's Index")
            except ValueError:
                pass
    return out


_FILTERS = {0x21: "LZMA2", 0x03: "Delta", 0x04: "x86 BCJ", 0x05: "PowerPC BCJ", 0x06: "IA-64 BCJ", 0x07: "ARM BCJ",
            0x08: "ARM-Thumb BCJ", 0x09: "SPARC BCJ", 0x0A: "ARM64 BCJ", 0x0B: "RISC-V BCJ"}


def _xz_filters(header: bytes, flags: int) -> dict[str, StoredField]:
    """Return the filter chain and the LZMA2 dictionary size of the first Block Header."""
    pos = 2
    if flags & 0x40:
        _, pos = _varint(header, pos)
    if flags & 0x80:
        _, pos = _varint(header, pos)
    chain: list[str] = []
    out: dict[str, StoredField] = {}
    for _ in range((flags & 3) + 1):
        fid, pos = _varint(header, pos)
        nprops, pos = _varint(header, pos)
        props = header[pos : pos + nprops]
        pos += nprops
        chain.append(_FILTERS.get(fid, f"0x{fid:x}"))
        if fid == 0x21 and len(props) == 1:
            bits = props[0] & 0x3F
            dict_size = 0xFFFFFFFF if bits == 40 else (2 | (bits & 1)) << (bits // 2 + 11)
            out["LZMA2 dictionary"] = StoredField(dict_size, f"{dict_size >> 20} MiB" if dict_size >= 1 << 20 else
                                                  f"{dict_size >> 10} KiB")
    out["Filters"] = StoredField(" + ".join(chain))
    return out


def compare_stored(path_a: str, kind_a: str, path_b: str, kind_b: str, same_payload: bool,
                   damaged: bool = False) -> list[Difference]:
    """Return the differences between two compressed input files (empty when they are byte-identical).

    With ``same_payload`` (the decompressed images are identical) the files' own difference (size and sha256) and
    the xz block count are reported too; otherwise they follow from the payloads and only the header settings,
    which no payload determines, are differences of their own.  The block count is compared only when both Index
    records were read.  With ``damaged`` (a stream did not decode to its end) the files' difference carries the
    attr ``stream = "damaged"``: trailing or missing bytes are not an encoder setting.
    """
    fa = stored_fields(path_a, kind_a)
    fb = stored_fields(path_b, kind_b)
    if fa["file"].value == fb["file"].value:
        return []
    out: list[Difference] = []
    if kind_a != kind_b:
        out.append(_diff("compression", kind_a, kind_b, None, None))
    else:
        for name, a in fa.items():
            if name == "file" or (name == "Blocks" and (not same_payload or name not in fb)):
                continue
            b = fb.get(name)
            if b is None or a.value != b.value:
                out.append(_diff(name, a.value, b.value if b else None, a.display, b.display if b else None))
        out.extend(_diff(name, None, b.value, None, b.display) for name, b in fb.items()
                   if name not in fa and name != "Blocks")
    if same_payload:
        out.append(replace(_diff("file", fa["file"].value, fb["file"].value, fa["file"].display, fb["file"].display),
                           attrs={"stream": "damaged" if damaged else "intact"}))
    return out


def _diff(field: str, a: Value, b: Value, display_a: str | None, display_b: str | None) -> Difference:
    change = Change.MODIFIED if a is not None and b is not None else (Change.ADDED if a is None else Change.REMOVED)
    return Difference(
        node_path="stored",
        kind="image.compressed",
        field=field,
        change=change,
        a=a,
        b=b,
        extents_a=(),
        extents_b=(),
        location=LOCATION,
        display_a=display_a,
        display_b=display_b,
        scope="disk",
        chain=(LOCATION,),
    )


__all__ = ["compare_stored", "stored_fields"]

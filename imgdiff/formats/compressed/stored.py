"""What a compressed file records about how it was made: size, sha256, stream header fields, xz blocks.

Read from the stored file itself (read-only, streamed: the hash reads the file once in 1 MiB steps, the headers
a few KiB), for comparing two compressed inputs whose decompressed images may be equal
(:mod:`imgdiff.engine.stored`).  The stream header fields are those :func:`header_fields` names; the ones it
declares derived (sizes, checksums, compressed data) are left out, as they follow from the payload.  xz adds what
its headers elsewhere in the file say: the first Block Header's Block Flags, filter chain and LZMA2 dictionary
size, and the block count from the last stream's Index.

References: The .xz File Format 1.1.0 (2.1.2 Stream Footer: CRC32, Backward Size, Stream Flags, Footer Magic
Bytes; 3.1 Block Header: Block Header Size, Block Flags, Filter Flags; 4 Index: Index Indicator, Number of
Records; 5.3.1 LZMA2 dictionary size), RFC 1952, RFC 8878 section 3.1.1.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from imgdiff.formats.compressed import header_fields
from imgdiff.model import Extent, Value
from imgdiff.source import ImageSource, MappedSource

HASH_STEP = 1 << 20
"""Bytes hashed per read."""


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


__all__ = ["StoredField", "stored_fields"]

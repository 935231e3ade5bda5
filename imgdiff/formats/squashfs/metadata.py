"""Metadata blocks and the tables made of them: reading, decoding into a decoded space, and their stored nodes.

squashfs keeps its inode, directory, fragment, export (inode lookup), id and xattr tables in *metadata blocks*: a
2-byte header (``c_byte``: stored length, bit 15 set when stored uncompressed) followed by at most 8 KiB of
payload, compressed on its own.  A table is a run of such blocks; references into it are ``(position of the block
relative to the table start) << 16 | offset into the block's decoded payload``.  :func:`read_table` reads the run,
decodes every block and concatenates the payloads; the parser opens that as a decoded space so that the table's
entries become fields at decoded offsets, and :func:`block_nodes` declares each block's stored bytes
:class:`~imgdiff.model.Derived` over the decoded range they hold and over the stored bytes before them (their
position): a differing decoded field takes the compressed block with it, a block that only moved follows what made
it move, and equal payloads compressed differently are left for the "compressed differently" rule.

The fragment, export, id and xattr id tables also have a *block index* (an array of 8-byte block positions,
``SQUASHFS_*_BLOCK_BYTES``), written after their blocks; the superblock points at that index.

References:
    squashfs-tools 4.5.1 ``mksquashfs.c``: ``write_inodes``, ``write_directories``, ``generic_write_table`` (blocks
    then the index of their positions), ``write_filesystem_tables`` (the order inode, directory, fragment, lookup,
    id, xattr tables); ``xattr.c`` ``write_xattrs``; ``squashfs_fs.h`` ``SQUASHFS_COMPRESSED_BIT``,
    ``SQUASHFS_COMPRESSED_SIZE``, ``SQUASHFS_METADATA_SIZE``; Linux ``fs/squashfs/cache.c``
    ``squashfs_read_metadata``, ``fs/squashfs/block.c`` ``squashfs_read_data``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from imgdiff.formats.compiled import blob_display, blob_value
from imgdiff.formats.squashfs.c_squashfs import SQUASHFS_COMPRESSED_BIT, SQUASHFS_METADATA_SIZE
from imgdiff.formats.squashfs.decompress import BlockError, Decoder
from imgdiff.model import POSITION, Derived, Extent, Field, Node

MAX_TABLE = 512 << 20
"""Decoded bytes of one metadata table at most (a hostile image cannot make the parser hold more)."""


@dataclass(slots=True)
class MetaBlock:
    """One stored metadata block: where it is and which decoded bytes it holds."""

    pos: int
    """Offset of its 2-byte header, relative to the filesystem start."""
    c_byte: int
    stored: int
    """Stored payload length (without the header)."""
    compressed: bool
    dstart: int
    """Offset of its payload in the table's decoded bytes."""
    dlen: int


@dataclass(slots=True)
class Table:
    """A run of metadata blocks and their concatenated decoded payload."""

    name: str
    start: int
    """Stored start of the first block (relative to the filesystem start)."""
    end: int
    """Stored end of the last block."""
    blocks: list[MetaBlock] = field(default_factory=list)
    data: bytes = b""
    base: int = 0
    """Absolute offset of decoded byte 0 (a decoded space), set when the parser opens the space."""
    by_pos: dict[int, int] = field(default_factory=dict)
    """Block position relative to :attr:`start` -> offset of its payload in :attr:`data`."""
    error: str = ""

    def decoded(self, ref_block: int, ref_offset: int) -> int | None:
        """Return the decoded offset of reference ``(block, offset)`` into this table, or None when invalid."""
        start = self.by_pos.get(ref_block)
        if start is None:
            return None
        pos = start + ref_offset
        return pos if pos <= len(self.data) else None

    def ext(self, doff: int, size: int) -> Extent:
        """Return the decoded-space extent of decoded bytes ``[doff, doff + size)``."""
        return Extent(self.base + doff, size)

    @property
    def whole(self) -> Extent:
        """Return the decoded-space extent of the whole payload."""
        return Extent(self.base, len(self.data))


def read_table(read: Callable[[int, int], bytes], decode: Decoder, name: str, start: int, end: int,
               expect: int | None = None) -> Table:
    """Read and decode the metadata blocks stored in ``[start, end)`` (relative offsets; ``read`` reads them).

    ``expect`` (decoded bytes wanted) stops early for tables whose size is known (fragment, id, lookup tables).
    A block that does not decode ends the table with :attr:`Table.error` set; what decoded so far is kept.
    """
    t = Table(name=name, start=start, end=start)
    if end <= start:
        return t
    raw = read(start, end - start)
    out = bytearray()
    pos = 0
    while pos + 2 <= len(raw):
        if expect is not None and len(out) >= expect:
            break
        (c_byte,) = struct.unpack_from("<H", raw, pos)
        size = c_byte & ~SQUASHFS_COMPRESSED_BIT
        compressed = not c_byte & SQUASHFS_COMPRESSED_BIT
        if size == 0 or pos + 2 + size > len(raw):
            t.error = f"{name}: metadata block at {start + pos} has a bad length {size}"
            break
        payload = raw[pos + 2 : pos + 2 + size]
        if compressed:
            try:
                payload = decode(payload, SQUASHFS_METADATA_SIZE)
            except BlockError as exc:
                t.error = f"{name}: metadata block at {start + pos}: {exc}"
                break
        else:
            payload = payload[:SQUASHFS_METADATA_SIZE]
        if len(out) + len(payload) > MAX_TABLE:
            t.error = f"{name}: more than {MAX_TABLE} decoded bytes; not decoded further"
            break
        t.by_pos[pos] = len(out)
        t.blocks.append(MetaBlock(start + pos, c_byte, size, compressed, len(out), len(payload)))
        out += payload
        pos += 2 + size
    t.end = start + pos
    t.data = bytes(out)
    return t


def position_cover(fs: int, first: int, pos: int) -> Extent:
    """Return the stored bytes before relative position ``pos`` (from ``first``): what a stored position depends on."""
    return Extent(fs + first, max(0, pos - first))


def block_nodes(t: Table, fs: int, first: int, interesting: Callable[[Extent], bool], build_all: bool) -> list[Node]:
    """Return a ``squashfs.metadata_block`` node per block of ``t`` whose stored bytes are interesting.

    Fields: ``c_byte`` (the header; derived from the payload it measures) and ``block data`` (the stored payload,
    valued by its position; derived from the decoded payload and from the stored bytes before it).
    """
    out: list[Node] = []
    for i, b in enumerate(t.blocks):
        ext = Extent(fs + b.pos, 2 + b.stored)
        if not build_all and not interesting(ext):
            continue
        dec = t.ext(b.dstart, b.dlen)
        state = "compressed" if b.compressed else "uncompressed"
        data_ext = Extent(fs + b.pos + 2, b.stored)
        fields = (
            Field.at("c_byte", b.c_byte, fs + b.pos, 2, f"{b.stored} bytes, {state}"),
            Field("block data", b.pos, (data_ext,),
                  f"{b.stored} bytes {state} at {b.pos} ({b.dlen} decoded)"),
        )
        derived = (
            Derived("c_byte", covers=(dec,)),
            Derived("block data", covers=(dec, position_cover(fs, first, b.pos))),
            Derived(POSITION, covers=(position_cover(fs, first, b.pos),)),
        )
        out.append(Node(kind="squashfs.metadata_block", key=f"blk:{i}", label=f"metadata block {i}",
                        extents=(ext,), fields=fields, derived=derived,
                        attrs={"table": t.name, "decoded": dec.length}))
    return out


def index_node(name: str, fs: int, first: int, pos: int, pointers: list[int], key: str = "index") -> Node:
    """Return the node of a table's block index: one 8-byte ``block`` position per metadata block."""
    fields = tuple(Field.at(f"index[{i}]", p, fs + pos + 8 * i, 8) for i, p in enumerate(pointers))
    derived = (*(Derived(f"index[{i}]", covers=(position_cover(fs, first, p),)) for i, p in enumerate(pointers)),
               Derived(POSITION, covers=(position_cover(fs, first, pos),)))
    return Node(kind="squashfs.table_index", key=key, label=f"{name} block index",
                extents=(Extent(fs + pos, 8 * len(pointers)),) if pointers else (), fields=fields, derived=derived)


def gap_field(name: str, fs: int, start: int, end: int, read: Callable[[int, int], bytes]) -> Field:
    """Return a field owning stored bytes ``[start, end)`` that no structure refers to."""
    data = read(start, min(end - start, 4096)) if end - start <= 4096 else b""
    value = blob_value(data) if data else f"{end - start} bytes"
    disp = blob_display(data) if data else None
    return Field.at(name, value, fs + start, end - start, disp)

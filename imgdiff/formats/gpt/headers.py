"""GPT headers: the primary at LBA 1 and the backup at the last LBA, each with its HeaderCRC32 declared derived.

References:
    UEFI Specification 2.10, section 5.3.2 (GPT Header: HeaderCRC32 over HeaderSize bytes with the CRC field
    zeroed, AlternateLBA, PartitionEntryLBA).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from imgdiff.formats.base import ParseContext, guid_le
from imgdiff.formats.compiled import Compiled
from imgdiff.formats.gpt.c_gpt import GPT_HEADER, GPT_SIGNATURE
from imgdiff.model import Derived, Extent, Field, Node

C_HDR = Compiled(GPT_HEADER)
_HDR_DECODE: Mapping[str, Callable[[Any], Any]] = {"DiskGUID": guid_le}


def header_node(ctx: ParseContext, base: int, lba: int, sector: int, key: str, label: str) -> Node | None:
    """Return the GPT header at ``lba`` (None when the sector has no "EFI PART" signature)."""
    off = base + lba * sector
    sec = ctx.read(off, sector)
    if sec[:8] != GPT_SIGNATURE:
        return None
    hdr_size = struct.unpack_from("<I", sec, 12)[0]
    fields = C_HDR.fields(sec, 0, off, decode=_HDR_DECODE)
    fields.append(Field.at("Reserved2", sec[C_HDR.size :], off + C_HDR.size, sector - C_HDR.size))
    node = Node(kind="gpt.header", key=key, label=label, extents=(Extent(off, sector),), fields=tuple(fields))
    if not 92 <= hdr_size <= sector:
        node.errors.append(f"{label}: HeaderSize {hdr_size} out of range at 0x{off + 12:x}")
        hdr_size = 92
    # HeaderCRC32 covers HeaderSize bytes with the CRC field itself taken as zero.
    stored = struct.unpack_from("<I", sec, 16)[0]
    computed = zlib.crc32(sec[:16] + b"\0\0\0\0" + sec[20:hdr_size]) & 0xFFFFFFFF
    if stored != computed:
        node.errors.append(f"{label}: HeaderCRC32 0x{stored:08x} does not match computed 0x{computed:08x}")
    node.attrs["crc_ok"] = stored == computed
    covers = (Extent(off, 16), Extent(off + 20, hdr_size - 20))
    node.derived = (Derived("HeaderCRC32", covers=covers),)
    return node

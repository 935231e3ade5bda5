"""GPT partition entry arrays: every entry (used or not) as a node, and the array's CRC declared derived.

References:
    UEFI Specification 2.10, section 5.3.3 (GPT Partition Entry Array: PartitionEntryArrayCRC32 over
    NumberOfPartitionEntries * SizeOfPartitionEntry bytes; partition attribute bits, table 5.8);
    Discoverable Partitions Specification (uapi-group.org) for the type GUID names.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

from imgdiff.formats.base import ParseContext, guid_le
from imgdiff.formats.compiled import Compiled
from imgdiff.formats.gpt.c_gpt import ATTRIBUTE_BITS, GPT_ENTRY
from imgdiff.formats.gpt.partition_types import PARTITION_TYPES
from imgdiff.model import Derived, Extent, Field, Node

C_ENT = Compiled(GPT_ENTRY)

MAX_ENTRY_ARRAY = 4 << 20
"""Refuse entry arrays larger than this (hostile NumberOfPartitionEntries)."""


def type_name(guid: str) -> str:
    """Return the Discoverable Partitions name of a type GUID, or the GUID itself."""
    if guid == "00000000-0000-0000-0000-000000000000":
        return "unused"
    return PARTITION_TYPES.get(guid, guid)


def attributes_display(value: int) -> str:
    """Return the attribute bits set in ``value`` by name."""
    names = [ATTRIBUTE_BITS.get(bit, f"bit{bit}") for bit in range(64) if value & (1 << bit)]
    return ",".join(names) if names else "none"


def _name_utf16(raw: bytes) -> str:
    return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]


_ENT_DECODE: Mapping[str, Callable[[Any], Any]] = {
    "PartitionTypeGUID": guid_le, "UniquePartitionGUID": guid_le, "PartitionName": _name_utf16,
}
_ENT_DISPLAY: Mapping[str, Callable[[Any], str | None]] = {
    "PartitionTypeGUID": lambda raw: type_name(guid_le(raw)), "Attributes": lambda v: attributes_display(int(v)),
}


def entries_node(ctx: ParseContext, hdr: Node, key: str, label: str, sector: int, base: int) -> Node | None:
    """Return the entry array ``hdr`` points to (None, with an error on ``hdr``, when it is implausible)."""
    lba = int(hdr.field_named("PartitionEntryLBA").value)  # type: ignore[union-attr,arg-type]
    count = int(hdr.field_named("NumberOfPartitionEntries").value)  # type: ignore[union-attr,arg-type]
    esize = int(hdr.field_named("SizeOfPartitionEntry").value)  # type: ignore[union-attr,arg-type]
    if esize < 128 or esize % 8 or count * esize > MAX_ENTRY_ARRAY:
        hdr.errors.append(
            f"{hdr.label}: entry array of {count} x {esize} bytes is not plausible; entries not parsed"
        )
        return None
    off = base + lba * sector
    total = count * esize
    if off + total > ctx.src.size:
        hdr.errors.append(f"{hdr.label}: entry array at 0x{off:x} runs past the end of the image")
        return None
    data = ctx.read(off, total)
    computed = zlib.crc32(data) & 0xFFFFFFFF
    stored = int(hdr.field_named("PartitionEntryArrayCRC32").value)  # type: ignore[union-attr,arg-type]
    if stored != computed:
        hdr.errors.append(
            f"{hdr.label}: PartitionEntryArrayCRC32 0x{stored:08x} does not match computed 0x{computed:08x}"
        )
    hdr.attrs["entries_crc_ok"] = stored == computed
    # The CRC is computed over NumberOfPartitionEntries * SizeOfPartitionEntry bytes: a resized array changes it
    # even where the entries it holds are equal.
    hdr.derived = hdr.derived + (
        Derived(
            "PartitionEntryArrayCRC32",
            covers=(Extent(off, total),),
            seeds=("gpt.header:NumberOfPartitionEntries", "gpt.header:SizeOfPartitionEntry"),
        ),
    )
    node = Node(kind="gpt.entries", key=key, label=label, extents=(Extent(off, total),))
    for i in range(count):
        eoff = i * esize
        fields = C_ENT.fields(data, eoff, off + eoff, decode=_ENT_DECODE, display=_ENT_DISPLAY)
        if esize > C_ENT.size:
            rest = data[eoff + C_ENT.size : eoff + esize]
            fields.append(Field.at("Reserved", rest, off + eoff + C_ENT.size, esize - C_ENT.size))
        ptype = type_name(str(fields[0].value))
        node.children.append(
            Node(
                kind="gpt.entry",
                key=f"entry:{i + 1}",
                label=f"entry {i + 1} ({ptype})",
                extents=(Extent(off + eoff, esize),),
                fields=tuple(fields),
                attrs={"index": i + 1, "ptype": ptype},
            )
        )
    return node

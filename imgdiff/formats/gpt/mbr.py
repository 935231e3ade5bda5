"""The MBR in sector 0: boot code, disk signature and the four partition records (protective or plain).

References:
    UEFI Specification 2.10, section 5.2.1 (Legacy MBR) and 5.2.3 (Protective MBR: one record of OSType 0xEE).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from imgdiff.formats.compiled import Compiled
from imgdiff.formats.gpt.c_gpt import MBR, MBR_PARTITION_RECORD, MBR_SIGNATURE, OSTYPE_GPT_PROTECTIVE
from imgdiff.model import Extent, Node

C_MBR = Compiled(MBR)
C_REC = Compiled(MBR_PARTITION_RECORD)

MBR_TYPES = {0x0B: "fat32", 0x0C: "fat32-lba", 0x0E: "fat16-lba", 0x06: "fat16", 0x01: "fat12", 0x83: "linux",
             0x82: "linux-swap", 0xEF: "efi", 0xEE: "gpt-protective", 0x8E: "linux-lvm", 0x07: "ntfs-exfat"}
"""Names of the MBR partition types (OSType) imgdiff shows."""

_MBR_DECODE: Mapping[str, Callable[[Any], Any]] = {"BootCode": bytes}
"""The 440 bytes of boot code are the value itself (not summarised)."""
_REC_DISPLAY: Mapping[str, Callable[[Any], str | None]] = {"OSType": lambda v: MBR_TYPES.get(int(v), None)}


def mbr_records(sec: bytes) -> list[tuple[int, int, int, int]]:
    """Return ``(BootIndicator, OSType, StartingLBA, SizeInLBA)`` of the four partition records."""
    out = []
    for i in range(4):
        boot, ostype, start, count = struct.unpack_from("<B3xB3xII", sec, 446 + 16 * i)
        out.append((boot, ostype, start, count))
    return out


def is_protective(records: list[tuple[int, int, int, int]]) -> bool:
    """Return True when a record has OSType 0xEE (the MBR protects a GPT)."""
    return any(r[1] == OSTYPE_GPT_PROTECTIVE for r in records)


def mbr_node(sec: bytes, base: int) -> Node:
    """Return the ``mbr`` (or ``mbr.protective``) node of sector 0 at ``base``, every record field by field."""
    fields = C_MBR.fields(sec, 0, base, skip=("PartitionRecord",), decode=_MBR_DECODE)
    for i in range(4):
        off = 446 + 16 * i
        fields.extend(C_REC.fields(sec, off, base + off, prefix=f"PartitionRecord[{i}].", display=_REC_DISPLAY))
    fields.sort(key=lambda f: f.extents[0].offset)
    protective = is_protective(mbr_records(sec))
    sig = struct.unpack_from("<H", sec, 510)[0]
    node = Node(
        kind="mbr.protective" if protective else "mbr",
        key="mbr",
        label="protective MBR" if protective else "MBR",
        extents=(Extent(base, 512),),
        fields=tuple(fields),
    )
    if sig != MBR_SIGNATURE:
        node.errors.append(f"MBR signature 0x{sig:04x} is not 0xaa55")
    return node


def mbr_partitions(records: list[tuple[int, int, int, int]], sector: int) -> list[tuple[int, str, int, int, str]]:
    """Return the partitions of a plain MBR as ``(index, type name, offset, length, "")``."""
    return [(i, MBR_TYPES.get(ostype, f"0x{ostype:02x}"), start * sector, count * sector, "")
            for i, (_boot, ostype, start, count) in enumerate(records, start=1) if ostype and count]


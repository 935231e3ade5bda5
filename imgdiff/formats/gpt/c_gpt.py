"""construct declarations of the protective/plain MBR, the GPT header and the GPT partition entry.

Declarations only; the modules of :mod:`imgdiff.formats.gpt` turn them into nodes (compiled to one struct each
by :class:`imgdiff.formats.compiled.Compiled`).  Field names are the UEFI specification's.

References:
    UEFI Specification 2.10, section 5.2 (Legacy MBR, Protective MBR) and 5.3 (GUID Partition Table format).
"""

from __future__ import annotations

import construct as c

MBR_PARTITION_RECORD = c.Struct(
    "BootIndicator" / c.Int8ul,
    "StartingCHS" / c.Bytes(3),
    "OSType" / c.Int8ul,
    "EndingCHS" / c.Bytes(3),
    "StartingLBA" / c.Int32ul,
    "SizeInLBA" / c.Int32ul,
)

MBR = c.Struct(
    "BootCode" / c.Bytes(440),
    "UniqueMBRDiskSignature" / c.Int32ul,
    "Unknown" / c.Int16ul,
    "PartitionRecord" / c.Bytes(64),
    "Signature" / c.Int16ul,
)

GPT_HEADER = c.Struct(
    "Signature" / c.Bytes(8),
    "Revision" / c.Int32ul,
    "HeaderSize" / c.Int32ul,
    "HeaderCRC32" / c.Int32ul,
    "Reserved" / c.Int32ul,
    "MyLBA" / c.Int64ul,
    "AlternateLBA" / c.Int64ul,
    "FirstUsableLBA" / c.Int64ul,
    "LastUsableLBA" / c.Int64ul,
    "DiskGUID" / c.Bytes(16),
    "PartitionEntryLBA" / c.Int64ul,
    "NumberOfPartitionEntries" / c.Int32ul,
    "SizeOfPartitionEntry" / c.Int32ul,
    "PartitionEntryArrayCRC32" / c.Int32ul,
)

GPT_ENTRY = c.Struct(
    "PartitionTypeGUID" / c.Bytes(16),
    "UniquePartitionGUID" / c.Bytes(16),
    "StartingLBA" / c.Int64ul,
    "EndingLBA" / c.Int64ul,
    "Attributes" / c.Int64ul,
    "PartitionName" / c.Bytes(72),
)

GPT_SIGNATURE = b"EFI PART"
MBR_SIGNATURE = 0xAA55
OSTYPE_GPT_PROTECTIVE = 0xEE

ATTRIBUTE_BITS: dict[int, str] = {
    0: "RequiredPartition",
    1: "NoBlockIOProtocol",
    2: "LegacyBIOSBootable",
    59: "GrowFileSystem",
    60: "ReadOnly",
    62: "Hidden",
    63: "NoAuto",
}
"""Attribute bits (integers with masks, never BitStruct: its bit order reversed them in a probe)."""

"""Partition tables: protective MBR + GPT (both headers, both entry arrays, CRCs) and plain MBR disks.

Builds the ``disk`` root node: the MBR, the GPT headers and entry arrays with every field at its absolute offset,
the partitions (each handed to filesystem detection) and raw nodes for the space between them, so that every
byte of the disk has an owner.  Partitions are keyed by index and type, never by offset.

Modules, one per on-disk object: :mod:`.c_gpt` (construct declarations), :mod:`.mbr` (sector 0),
:mod:`.headers` (GPT headers), :mod:`.entries` (entry arrays), :mod:`.table` (both copies, the partition list),
:mod:`.partitions` (partition nodes, gaps), :mod:`.partition_types` (type GUID names).  :func:`parse_tables` gives
the tables without parsing the partitions (the isohybrid view of :mod:`imgdiff.formats.iso9660`), and the
dm-verity links (hash tree to data partition, root hash to partition GUIDs) are made by
:func:`imgdiff.formats.verity.tree.link_disk` once the partitions are parsed.

Tree (keys in brackets)::

    disk [disk]                            attrs: table = gpt | mbr, sector_size
      mbr | mbr.protective [mbr]           BootCode, UniqueMBRDiskSignature, PartitionRecord[i].*, Signature
      gpt [gpt]
        gpt.header [primary], [backup]     HeaderCRC32 derived; PartitionEntryArrayCRC32 derived from the array
        gpt.entries [primary-entries], [backup-entries]
          gpt.entry [entry:N]              PartitionTypeGUID, UniquePartitionGUID, StartingLBA, ..., PartitionName
      partition [part:N:<type>]            the region's format node (ext4, vfat, verity, ...) as its child
      raw [gap@<offset>]                   unpartitioned space

References:
    UEFI Specification 2.10, chapter 5; Discoverable Partitions Specification (uapi-group.org).
"""

from __future__ import annotations

from imgdiff.formats.base import ParseContext
from imgdiff.formats.gpt.c_gpt import GPT_SIGNATURE
from imgdiff.formats.gpt.entries import attributes_display, type_name
from imgdiff.formats.gpt.mbr import MBR_TYPES, is_protective, mbr_node, mbr_partitions, mbr_records
from imgdiff.formats.gpt.partition_types import PARTITION_TYPES
from imgdiff.formats.gpt.partitions import add_gaps, add_partitions
from imgdiff.formats.gpt.table import Partition, parse_gpt
from imgdiff.formats.verity.tree import link_disk as link_verity
from imgdiff.model import Extent, Node

NAME = "gpt"

__all__ = [
    "MBR_TYPES",
    "NAME",
    "PARTITION_TYPES",
    "Partition",
    "attributes_display",
    "parse",
    "parse_tables",
    "recognizes",
    "signature",
    "type_name",
]


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region starts with an MBR (boot signature 0x55AA) and no filesystem boot sector."""
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return False
    if head[512:520] == GPT_SIGNATURE or head[4096:4104] == GPT_SIGNATURE:
        return True
    # A plain MBR disk: at least one sane partition record and no FAT boot sector in front.
    if head[0] in (0xEB, 0xE9) and head[11:13] in (b"\x00\x02", b"\x00\x04", b"\x00\x08", b"\x00\x10"):
        return False
    for i in range(4):
        rec = head[446 + 16 * i : 462 + 16 * i]
        if rec[0] not in (0, 0x80):
            return False
    return any(head[446 + 16 * i + 4] != 0 for i in range(4))


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("GPT header", "disk", bytes up to the backup header's LBA)`` when ``head`` holds an MBR and a GPT
    header signature whatever its length (so a truncated disk is reported as such), else None (0 bytes: unknown)."""
    if len(head) < 520 or head[510:512] != b"\x55\xaa":
        return None
    for sector in (512, 4096):
        if head[sector : sector + 8] == GPT_SIGNATURE:
            alt = head[sector + 32 : sector + 40]
            return "GPT header", "disk", (int.from_bytes(alt, "little") + 1) * sector if len(alt) == 8 else 0
    return None


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``disk`` node: MBR, GPT (when present), partitions and unpartitioned space."""
    head = ctx.read(base, 8192)
    sector = 512
    if head[512:520] != GPT_SIGNATURE and head[4096:4104] == GPT_SIGNATURE:
        sector = 4096
    disk = Node(kind="disk", key="disk", label=label, extents=(Extent(base, size),), attrs={"sector_size": sector})
    disk.children.append(mbr_node(head[:512], base))
    owned: list[Extent] = [Extent(base, 512)]
    records = mbr_records(head[:512])
    parts: list[Partition]
    if is_protective(records):
        gpt, parts, gpt_owned = parse_gpt(ctx, base, size, sector)
        disk.children.append(gpt)
        disk.attrs["table"] = "gpt"
        disk.errors.extend(gpt.errors)
        owned.extend(gpt_owned)
    else:
        disk.attrs["table"] = "mbr"
        parts = mbr_partitions(records, sector)
    add_partitions(ctx, disk, parts, owned, base, size)
    link_verity(disk)  # dm-verity: hash tree -> data partition, root hash -> partition GUIDs
    add_gaps(disk, owned, base, size)
    ctx.errors.extend(disk.errors)
    return disk


def parse_tables(ctx: ParseContext, base: int, size: int) -> tuple[list[Node], list[Partition], list[Extent]]:
    """Return the MBR (and GPT) nodes, the partitions and the bytes the tables own, without parsing partitions.

    Partitions are ``(index, type name, offset, length, unique GUID)`` relative to ``base``.  For a caller whose
    own view owns the partitions' bytes: an isohybrid ISO 9660 image, whose GPT partition 1 covers the ISO itself.
    A GPT behind a hybrid MBR without a 0xEE partition (xorriso -isohybrid-gpt-basdat) is parsed too.
    """
    head = ctx.read(base, 8192)
    sector = 4096 if head[512:520] != GPT_SIGNATURE and head[4096:4104] == GPT_SIGNATURE else 512
    nodes: list[Node] = [mbr_node(head[:512], base)]
    owned: list[Extent] = [Extent(base, 512)]
    records = mbr_records(head[:512])
    if is_protective(records) or head[sector : sector + 8] == GPT_SIGNATURE:
        gpt, parts, gpt_owned = parse_gpt(ctx, base, size, sector)
        nodes.append(gpt)
        owned.extend(gpt_owned)
        return nodes, parts, owned
    return nodes, mbr_partitions(records, sector), owned

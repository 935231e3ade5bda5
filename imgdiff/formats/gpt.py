"""Partition tables: protective MBR + GPT (both headers, both entry arrays, CRCs) and plain MBR disks.

Builds the ``disk`` root node: the MBR, the GPT headers and entry arrays with every field at its absolute offset,
the partitions (each handed to filesystem detection) and raw nodes for the space between them, so that every
byte of the disk has an owner.  Partitions are keyed by index and type, never by offset.

References:
    UEFI Specification 2.10, chapter 5; Discoverable Partitions Specification (uapi-group.org).
"""

from __future__ import annotations

import struct
import zlib

from imgdiff.errors import ParseError
from imgdiff.formats.base import Layout, ParseContext, guid_le, raw_node
from imgdiff.formats.c_gpt import (
    ATTRIBUTE_BITS,
    GPT_ENTRY,
    GPT_HEADER,
    GPT_SIGNATURE,
    MBR,
    MBR_PARTITION_RECORD,
    MBR_SIGNATURE,
    OSTYPE_GPT_PROTECTIVE,
)
from imgdiff.formats.gpt_types import PARTITION_TYPES
from imgdiff.formats.verity.tree import link_disk as link_verity
from imgdiff.model import Derived, Extent, Field, Node

NAME = "gpt"

L_MBR = Layout.of(MBR)
L_REC = Layout.of(MBR_PARTITION_RECORD)
L_HDR = Layout.of(GPT_HEADER)
L_ENT = Layout.of(GPT_ENTRY)

MAX_ENTRY_ARRAY = 4 << 20
"""Refuse entry arrays larger than this (hostile NumberOfPartitionEntries)."""

MBR_TYPES = {0x0B: "fat32", 0x0C: "fat32-lba", 0x0E: "fat16-lba", 0x06: "fat16", 0x01: "fat12", 0x83: "linux",
             0x82: "linux-swap", 0xEF: "efi", 0xEE: "gpt-protective", 0x8E: "linux-lvm", 0x07: "ntfs-exfat"}


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
    mbr = _parse_mbr(head[:512], base)
    disk.children.append(mbr)
    owned: list[Extent] = [Extent(base, 512)]
    records = _mbr_records(head[:512])
    if any(r[1] == OSTYPE_GPT_PROTECTIVE for r in records):
        gpt, parts, gpt_owned = _parse_gpt(ctx, base, size, sector)
        disk.children.append(gpt)
        disk.attrs["table"] = "gpt"
        disk.errors.extend(gpt.errors)
        owned.extend(gpt_owned)
    else:
        disk.attrs["table"] = "mbr"
        parts = []
        for i, (_boot, ostype, start, count) in enumerate(records, start=1):
            if ostype == 0 or count == 0:
                continue
            parts.append((i, MBR_TYPES.get(ostype, f"0x{ostype:02x}"), start * sector, count * sector, ""))
    for index, tname, pstart, plen, pguid in parts:
        if pstart >= size:
            disk.errors.append(f"partition {index} starts beyond the end of the image (offset {pstart})")
            continue
        if pstart + plen > size:
            disk.errors.append(f"partition {index} ends beyond the end of the image; truncated to the image")
            plen = size - pstart
        plabel = f"partition {index} ({tname})"
        pnode = Node(
            kind="partition",
            key=f"part:{index}:{tname}",
            label=plabel,
            extents=(Extent(base + pstart, plen),),
            attrs={"index": index, "ptype": tname, "guid": pguid, "scope": True},
        )
        pnode.children.append(ctx.parse_nested(base + pstart, plen, tname))
        disk.children.append(pnode)
        owned.append(Extent(base + pstart, plen))
    link_verity(disk)  # dm-verity: hash tree -> data partition, root hash -> partition GUIDs
    for gap in _gaps(owned, base, base + size):
        disk.children.append(raw_node(gap.offset, gap.length, "unpartitioned space", key=f"gap@{gap.offset - base}"))
    ctx.errors.extend(disk.errors)
    return disk


def _mbr_records(sec: bytes) -> list[tuple[int, int, int, int]]:
    out = []
    for i in range(4):
        boot, ostype, start, count = struct.unpack_from("<B3xB3xII", sec, 446 + 16 * i)
        out.append((boot, ostype, start, count))
    return out


def _parse_mbr(sec: bytes, base: int) -> Node:
    fields = [f for f in L_MBR.fields(sec, base) if f.name != "PartitionRecord"]
    for i in range(4):
        off = 446 + 16 * i
        rec = L_REC.fields(
            sec[off : off + 16],
            base + off,
            display={"OSType": lambda v: MBR_TYPES.get(int(v), None)},
            prefix=f"PartitionRecord[{i}].",
        )
        fields.extend(rec)
    fields.sort(key=lambda f: f.extents[0].offset)
    protective = any(r[1] == OSTYPE_GPT_PROTECTIVE for r in _mbr_records(sec))
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



def _header_node(ctx: ParseContext, base: int, lba: int, sector: int, key: str, label: str) -> Node | None:
    off = base + lba * sector
    sec = ctx.read(off, sector)
    if sec[:8] != GPT_SIGNATURE:
        return None
    hdr_size = struct.unpack_from("<I", sec, 12)[0]
    fields = list(
        L_HDR.fields(
            sec[: L_HDR.size],
            off,
            decode={"DiskGUID": guid_le},
        )
    )
    fields.append(Field.at("Reserved2", sec[L_HDR.size :], off + L_HDR.size, sector - L_HDR.size))
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


def _entries_node(ctx: ParseContext, hdr: Node, key: str, label: str, sector: int, base: int) -> Node | None:
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
        chunk = data[eoff : eoff + esize]
        fields = list(
            L_ENT.fields(
                chunk[: L_ENT.size],
                off + eoff,
                decode={"PartitionTypeGUID": guid_le, "UniquePartitionGUID": guid_le, "PartitionName": _name_utf16},
                display={"PartitionTypeGUID": type_name, "Attributes": lambda v: attributes_display(int(v))},
            )
        )
        if esize > L_ENT.size:
            fields.append(Field.at("Reserved", chunk[L_ENT.size :], off + eoff + L_ENT.size, esize - L_ENT.size))
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


def _parse_gpt(
    ctx: ParseContext, base: int, size: int, sector: int
) -> tuple[Node, list[tuple[int, str, int, int, str]], list[Extent]]:
    gpt = Node(kind="gpt", key="gpt", label="GPT")
    owned: list[Extent] = []
    primary = _header_node(ctx, base, 1, sector, "primary", "primary GPT header")
    last_lba = size // sector - 1
    backup_lba = last_lba
    if primary is not None:
        alt = int(primary.field_named("AlternateLBA").value)  # type: ignore[union-attr,arg-type]
        if 1 < alt <= last_lba:
            backup_lba = alt
    backup = _header_node(ctx, base, backup_lba, sector, "backup", "backup GPT header")
    if backup is None and backup_lba != last_lba:
        backup = _header_node(ctx, base, last_lba, sector, "backup", "backup GPT header")
    if primary is None and backup is None:
        raise ParseError("protective MBR present but no GPT header at LBA 1 or at the last LBA", base + sector)
    if primary is None:
        gpt.errors.append("primary GPT header missing or corrupt; partitions read from the backup header")
    if backup is None:
        gpt.errors.append("backup GPT header missing (image truncated or not a complete disk)")
    for hdr, ekey, elabel in ((primary, "primary-entries", "primary entry array"),
                              (backup, "backup-entries", "backup entry array")):
        if hdr is None:
            continue
        gpt.children.append(hdr)
        owned.extend(hdr.extents)
        entries = _entries_node(ctx, hdr, ekey, elabel, sector, base)
        if entries is not None:
            gpt.children.append(entries)
            owned.extend(entries.extents)
        gpt.errors.extend(hdr.errors)
    gpt.extents = tuple(sorted(owned))
    parts: list[tuple[int, str, int, int, str]] = []
    source = next((c for c in gpt.children if c.kind == "gpt.entries"), None)
    if source is not None:
        for ent in source.children:
            tguid = str(ent.field_named("PartitionTypeGUID").value)  # type: ignore[union-attr]
            if tguid == "00000000-0000-0000-0000-000000000000":
                continue
            first = int(ent.field_named("StartingLBA").value)  # type: ignore[union-attr,arg-type]
            last = int(ent.field_named("EndingLBA").value)  # type: ignore[union-attr,arg-type]
            if last < first:
                gpt.errors.append(f"{ent.label}: EndingLBA {last} before StartingLBA {first}")
                continue
            uguid = str(ent.field_named("UniquePartitionGUID").value)  # type: ignore[union-attr]
            parts.append((int(ent.attrs["index"]), type_name(tguid), first * sector, (last - first + 1) * sector, uguid))  # type: ignore[arg-type]
    return gpt, parts, owned


def _gaps(owned: list[Extent], start: int, end: int) -> list[Extent]:
    gaps: list[Extent] = []
    pos = start
    for e in sorted(owned):
        if e.offset > pos:
            gaps.append(Extent(pos, min(e.offset, end) - pos))
        pos = max(pos, e.end)
    if pos < end:
        gaps.append(Extent(pos, end - pos))
    return [g for g in gaps if g.length > 0]


def parse_tables(ctx: ParseContext, base: int, size: int) -> tuple[list[Node], list[tuple[int, str, int, int, str]], list[Extent]]:
    """Return the MBR (and GPT) nodes, the partitions and the bytes the tables own, without parsing partitions.

    Partitions are ``(index, type name, offset, length, unique GUID)`` relative to ``base``.  For a caller whose
    own view owns the partitions' bytes: an isohybrid ISO 9660 image, whose GPT partition 1 covers the ISO itself.
    A GPT behind a hybrid MBR without a 0xEE partition (xorriso -isohybrid-gpt-basdat) is parsed too.
    """
    head = ctx.read(base, 8192)
    sector = 4096 if head[512:520] != GPT_SIGNATURE and head[4096:4104] == GPT_SIGNATURE else 512
    nodes: list[Node] = [_parse_mbr(head[:512], base)]
    owned: list[Extent] = [Extent(base, 512)]
    records = _mbr_records(head[:512])
    if any(r[1] == OSTYPE_GPT_PROTECTIVE for r in records) or head[sector : sector + 8] == GPT_SIGNATURE:
        gpt, parts, gpt_owned = _parse_gpt(ctx, base, size, sector)
        nodes.append(gpt)
        owned.extend(gpt_owned)
        return nodes, parts, owned
    parts = [(i, MBR_TYPES.get(ostype, f"0x{ostype:02x}"), start * sector, count * sector, "")
             for i, (_boot, ostype, start, count) in enumerate(records, start=1) if ostype and count]
    return nodes, parts, owned

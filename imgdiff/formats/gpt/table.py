"""The GPT as a whole: both headers, both entry arrays, and the partitions the entries describe.

References:
    UEFI Specification 2.10, section 5.3 (GUID Partition Table: primary header at LBA 1, backup header at the last
    LBA or AlternateLBA, entry arrays at PartitionEntryLBA).
"""

from __future__ import annotations

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.gpt.entries import entries_node, type_name
from imgdiff.formats.gpt.headers import header_node
from imgdiff.model import Extent, Node

Partition = tuple[int, str, int, int, str]
"""``(index, type name, offset relative to the disk, length, unique partition GUID)``."""


def parse_gpt(ctx: ParseContext, base: int, size: int, sector: int) -> tuple[Node, list[Partition], list[Extent]]:
    """Return the ``gpt`` node, the partitions its entries describe and the bytes the headers and arrays own."""
    gpt = Node(kind="gpt", key="gpt", label="GPT")
    owned: list[Extent] = []
    primary = header_node(ctx, base, 1, sector, "primary", "primary GPT header")
    last_lba = size // sector - 1
    backup_lba = last_lba
    if primary is not None:
        alt = int(primary.field_named("AlternateLBA").value)  # type: ignore[union-attr,arg-type]
        if 1 < alt <= last_lba:
            backup_lba = alt
    backup = header_node(ctx, base, backup_lba, sector, "backup", "backup GPT header")
    if backup is None and backup_lba != last_lba:
        backup = header_node(ctx, base, last_lba, sector, "backup", "backup GPT header")
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
        entries = entries_node(ctx, hdr, ekey, elabel, sector, base)
        if entries is not None:
            gpt.children.append(entries)
            owned.extend(entries.extents)
        gpt.errors.extend(hdr.errors)
    gpt.extents = tuple(sorted(owned))
    parts: list[Partition] = []
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

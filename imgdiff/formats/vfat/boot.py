"""The reserved region: the boot sector with its BPB, and on FAT32 the FSInfo sector and both backups.

The backup boot sector and backup FSInfo are declared :class:`~imgdiff.model.Derived` copies of the primaries,
field by field; FSI_Free_Count and FSI_Nxt_Free are declared derived from FAT #1.  Reserved sectors that hold
none of these are one ``reserved`` field.

References:
    Microsoft FAT specification (fatgen103), section 3 (boot sector and BPB: BS_*, BPB_* fields, BPB_BkBootSec)
    and section 5 (FSInfo: FSI_LeadSig, FSI_StrucSig, FSI_Free_Count, FSI_Nxt_Free, FSI_TrailSig);
    dosfstools ``src/mkfs.fat.c`` (backup boot sector and FSInfo placement).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from imgdiff.formats.compiled import Compiled
from imgdiff.formats.vfat.c_vfat import (
    BOOT_SECTOR_FAT16,
    BOOT_SECTOR_FAT32,
    FSI_LEAD_SIG,
    FSI_STRUC_SIG,
    FSI_TRAIL_SIG,
    FSINFO,
)
from imgdiff.formats.vfat.values import text
from imgdiff.formats.vfat.volume import Volume
from imgdiff.model import Derived, Extent, Field, Node, Value

C_BOOT16 = Compiled(BOOT_SECTOR_FAT16)
C_BOOT32 = Compiled(BOOT_SECTOR_FAT32)
C_FSINFO = Compiled(FSINFO)
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_WHOLE: Mapping[str, Callable[[Any], Value]] = {
    "BS_BootCode": bytes, "BS_BootCode32": bytes, "FSI_Reserved1": bytes,
}
"""Byte strings kept whole as values (not summarised by :func:`~imgdiff.formats.compiled.blob_value`)."""
_BOOT_DECODE: Mapping[str, Callable[[Any], Value]] = {
    **_WHOLE, "BS_OEMName": text, "BS_VolLab": text, "BS_FilSysType": text,
}


def boot_node(vol: Volume, off: int, key: str, label: str, primary: Node | None) -> Node:
    """Return the boot sector at ``off`` (``primary`` given: the backup boot sector, declared its copy)."""
    g = vol.geo
    sec = vol.boot if primary is None else vol.ctx.read(off, g.bps)
    layout = C_BOOT32 if g.fat_type == "FAT32" else C_BOOT16
    volid = _U32.unpack_from(sec, 67 if g.fat_type == "FAT32" else 39)[0]
    shown = {"BS_VolID": f"{volid >> 16:04X}-{volid & 0xFFFF:04X}", "BPB_Media": f"0x{sec[21]:02X}"}
    fields = layout.fields(sec, 0, off, decode=_BOOT_DECODE, shown=shown)
    if g.bps > 512:
        fields.append(Field("reserved", bytes(sec[512:]), (Extent(off + 512, g.bps - 512),)))
    kind = "vfat.boot_sector" if primary is None else "vfat.backup_boot_sector"
    node = Node(kind=kind, key=key, label=label, extents=vol.ext(off, g.bps), fields=tuple(fields))
    sig = _U16.unpack_from(sec, 510)[0]
    if sig != 0xAA55:
        node.errors.append(f"{label}: Signature_word 0x{sig:04x} is not 0xaa55")
        vol.errors.append(node.errors[-1])
    if primary is not None:
        node.derived = copies(node, primary)
    return node


def fsinfo_node(vol: Volume, off: int, key: str, label: str, primary: Node | None) -> Node:
    """Return the FSInfo sector at ``off`` (``primary`` given: the backup FSInfo, declared its copy)."""
    g = vol.geo
    sec = vol.ctx.read(off, g.bps)
    lead, _, struc, free, nxt = struct.unpack_from("<I480sIII", sec, 0)
    trail = _U32.unpack_from(sec, 508)[0]
    display = {
        "FSI_Free_Count": "unknown" if free == 0xFFFFFFFF else f"{free} free clusters",
        "FSI_Nxt_Free": "unknown" if nxt == 0xFFFFFFFF else f"cluster {nxt}",
    }
    fields = C_FSINFO.fields(sec, 0, off, decode=_WHOLE, shown=display)
    if g.bps > 512:
        fields.append(Field("reserved", bytes(sec[512:]), (Extent(off + 512, g.bps - 512),)))
    kind = "vfat.fsinfo" if primary is None else "vfat.backup_fsinfo"
    node = Node(kind=kind, key=key, label=label, extents=vol.ext(off, g.bps), fields=tuple(fields))
    if (lead, struc, trail) != (FSI_LEAD_SIG, FSI_STRUC_SIG, FSI_TRAIL_SIG):
        node.errors.append(f"{label}: FSInfo signatures missing (FSI_LeadSig 0x{lead:08x})")
        vol.errors.append(node.errors[-1])
    if primary is not None:
        node.derived = copies(node, primary)
    return node


def fat32_reserved(vol: Volume, boot: Node) -> list[Node]:
    """Return the FAT32 FSInfo, backup boot sector and backup FSInfo nodes that BPB_FSInfo/BPB_BkBootSec place."""
    g = vol.geo
    out: list[Node] = []
    fsinfo: Node | None = None
    if 0 < g.fsinfo_sec < g.rsvd:
        fsinfo = fsinfo_node(vol, vol.base + g.fsinfo_sec * g.bps, "fsinfo", "FSInfo", None)
        out.append(fsinfo)
    elif g.fsinfo_sec not in (0, 0xFFFF):
        vol.errors.append(f"BPB_FSInfo {g.fsinfo_sec} is outside the reserved region")
    bk = g.bkboot_sec
    if 0 < bk < g.rsvd and bk != g.fsinfo_sec:
        out.append(boot_node(vol, vol.base + bk * g.bps, "backup_boot", "backup boot sector", boot))
        bfs = bk + (g.fsinfo_sec or 1)
        if fsinfo is not None and bfs < g.rsvd and bfs not in (g.fsinfo_sec, 0):
            out.append(fsinfo_node(vol, vol.base + bfs * g.bps, "backup_fsinfo", "backup FSInfo", fsinfo))
    elif bk not in (0, 0xFFFF):
        vol.errors.append(f"BPB_BkBootSec {bk} is outside the reserved region")
    return out


def reserved_node(vol: Volume, used: list[Extent]) -> Node | None:
    """Return the reserved sectors no structure in ``used`` holds (None when there are none)."""
    g = vol.geo
    start, end = vol.base, vol.base + g.rsvd * g.bps
    gaps: list[Extent] = []
    pos = start
    for e in sorted(used):
        if e.offset > pos:
            gaps.append(Extent(pos, e.offset - pos))
        pos = max(pos, e.end)
    if pos < end:
        gaps.append(Extent(pos, end - pos))
    exts = vol.clip(gaps)
    if not exts:
        return None
    total = sum(e.length for e in exts)
    f = Field("reserved", total, exts, f"{total // g.bps} sectors")
    return Node(kind="vfat.reserved", key="reserved", label="reserved sectors", extents=exts, fields=(f,))


def fsinfo_derive(vol: Volume, root: Node, fat0: Node | None) -> None:
    """Declare the FSInfo counters derived from FAT #1 and record the computed free count."""
    if fat0 is None:
        return
    g = vol.geo
    width = 4
    covers = vol.ext(vol.base + g.fat_offset(0), width * vol.hi)
    free = sum(1 for n in range(2, vol.hi) if vol.fat[n] & 0x0FFFFFFF == 0)
    for node in root.children:
        if node.kind == "vfat.fsinfo":
            node.derived = (Derived("FSI_Free_Count", covers=covers), Derived("FSI_Nxt_Free", covers=covers))
            node.attrs["free_clusters"] = free
            stored = node.field_named("FSI_Free_Count")
            if stored is not None and isinstance(stored.value, int) and stored.value not in (free, 0xFFFFFFFF):
                node.errors.append(f"FSI_Free_Count {stored.value} but the FAT has {free} free clusters")


def copies(copy: Node, primary: Node) -> tuple[Derived, ...]:
    """Return Derived declarations saying each field of ``copy`` is a copy of the same field of ``primary``."""
    out: list[Derived] = []
    for f in copy.fields:
        p = primary.field_named(f.name)
        if p is not None:
            out.append(Derived(f.name, covers=p.extents))
    return tuple(out)

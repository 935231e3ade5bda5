"""FAT12/16/32 ("vfat", the EFI system partition): every byte of the volume attributed to a named field.

Builds the ``vfat`` node of a region: the boot sector (and the FAT32 backup boot sector, FSInfo and its backup),
the other reserved sectors, every FAT copy, every directory (its 32-byte slots: short entries, LFN entries,
deleted entries, the free slots after the end marker), every file's data, slack and surplus clusters, the free,
lost and bad clusters and the sectors after the last cluster.  Directory entries are keyed by their path (long
name as stored), so that the engine aligns them by identity and sees a changed entry order as a move.

The reader is written for speed and for hostile input: the active FAT is bulk-read into an :class:`array.array`,
directory slots are unpacked with the struct compiled from their construct declaration
(:class:`~imgdiff.formats.compiled.Compiled`), every cluster is claimed by at most one chain (so cycles and
cross-links end a chain with a message instead of a hang), and FAT entries get one field each only where
``ctx.interesting()`` says bytes differ.

Modules, one per on-disk object: :mod:`.c_vfat` (construct declarations), :mod:`.volume` (geometry, FAT reading,
cluster chains), :mod:`.boot` (boot sector/BPB, FSInfo, backups, reserved sectors), :mod:`.fats` (FAT copies),
:mod:`.dirs` (directories, short/LFN/deleted entries), :mod:`.files` (file data, slack, surplus clusters),
:mod:`.free` (free/lost/bad clusters, space after the last cluster), :mod:`.values` (dates, names).

Tree (keys in brackets; all siblings have disjoint fields)::

    vfat [vfat]
      vfat.boot_sector [boot]
      vfat.fsinfo [fsinfo]                         FAT32 (FSI_Free_Count, FSI_Nxt_Free derived from FAT #1)
      vfat.backup_boot_sector [backup_boot]        FAT32, declared a Derived copy of [boot]
      vfat.backup_fsinfo [backup_fsinfo]           FAT32, declared a Derived copy of [fsinfo]
      vfat.reserved [reserved]                     reserved sectors holding none of the above
      vfat.fat [fat:K]                             FAT #K+1: FAT[n] / FAT[2k,2k+1] (FAT12) / FAT[a..b] runs
      vfat.root_dir [dir:/] | vfat.dir [dir:<path>]
        vfat.dirent [<path> | <dir>/. | <dir>/.. | :volume_label]
          vfat.lfn [<path>#lfnN]                   LDIR_Chksum derived from the short name
        vfat.lfn [<dir>/:orphan_lfn@<slot>]        LFN slots of no short entry
        vfat.deleted [<dir>/:deleted@<slot>]
      vfat.file [<path>]                           data, slack, excess
      vfat.free [free]                             unused, lost, bad clusters
      vfat.tail [tail]                             after the last whole cluster; after BPB_TotSec

References:
    Microsoft Extensible Firmware Initiative FAT32 File System Specification, version 1.03 (fatgen103), 2000.
    https://download.microsoft.com/download/1/6/1/161ba512-40e2-4cc9-843a-923143f3456c/fatgen103.doc
    dosfstools ``src/mkfs.fat.c`` (boot sector, FSInfo and backup layout written by mkfs.fat);
    Linux ``fs/fat/dir.c`` and ``fs/fat/namei_vfat.c`` (DIR_NTRes case bits, LFN checksum handling).
"""

from __future__ import annotations

import struct

from imgdiff.formats.base import ParseContext
from imgdiff.formats.vfat.boot import boot_node, fat32_reserved, fsinfo_derive, reserved_node
from imgdiff.formats.vfat.dirs import walk
from imgdiff.formats.vfat.fats import fat_nodes
from imgdiff.formats.vfat.free import free_node, tail_node
from imgdiff.formats.vfat.values import (
    attr_display,
    dos_date,
    dos_datetime,
    dos_seconds,
    dos_time,
    lfn_checksum,
    short_name,
)
from imgdiff.formats.vfat.volume import AREA_CHUNK, MAX_FATS, SECTOR_SIZES, Geometry, Volume, geometry
from imgdiff.model import Derived, Extent, Field, Node

NAME = "vfat"

__all__ = [
    "AREA_CHUNK",
    "NAME",
    "Geometry",
    "attr_display",
    "dos_date",
    "dos_datetime",
    "dos_seconds",
    "dos_time",
    "geometry",
    "lfn_checksum",
    "parse",
    "recognizes",
    "short_name",
    "signature",
]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def recognizes(head: bytes, size: int) -> bool:
    """Return True when ``head`` starts with a FAT boot sector (jump, sane BPB, FAT size, not NTFS/exFAT)."""
    if len(head) < 512 or size < 512 * 8:
        return False
    if head[0] not in (0xEB, 0xE9) or head[3:11] in (b"NTFS    ", b"EXFAT   "):
        return False
    bps, spc, rsvd, nfats = struct.unpack_from("<HBHB", head, 11)
    media = head[21]
    fatsz16 = _U16.unpack_from(head, 22)[0]
    fatsz32 = _U32.unpack_from(head, 36)[0]
    if bps not in SECTOR_SIZES or spc == 0 or spc & (spc - 1) or rsvd == 0 or not 1 <= nfats <= MAX_FATS:
        return False
    if media != 0xF0 and media < 0xF8:
        return False
    return fatsz16 != 0 or fatsz32 != 0


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("vfat boot sector", "volume", bytes the BPB says the volume has)`` when ``head`` starts with a FAT
    boot sector whatever the region's size (so a truncated image is reported as such), else None."""
    if not recognizes(head, 1 << 62):
        return None
    tot = _U16.unpack_from(head, 19)[0] or _U32.unpack_from(head, 32)[0]
    return "vfat boot sector", "volume", tot * _U16.unpack_from(head, 11)[0]


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``vfat`` node of ``[base, base + size)``; raise ParseError when the BPB is unusable."""
    vol = Volume(ctx, base, size, label)
    g = vol.geo
    root = Node(
        kind="vfat",
        key="vfat",
        label=f"vfat ({g.fat_type})",
        extents=(Extent(vol.base, vol.size),),
        attrs={
            "scope": True,
            "fs": "vfat",
            "fat_type": g.fat_type,
            "cluster_size": vol.csize,
            "clusters": g.clusters,
        },
    )
    boot = boot_node(vol, vol.base, "boot", "boot sector", None)
    root.children.append(boot)
    reserved_used: list[Extent] = [Extent(vol.base, g.bps)]
    if g.fat_type == "FAT32":
        for node in fat32_reserved(vol, boot):
            root.children.append(node)
            reserved_used.extend(node.extents)
    reserved = reserved_node(vol, reserved_used)
    if reserved is not None:
        root.children.append(reserved)
    # Directories and files first: the FAT nodes show which path owns each differing entry.
    walk(vol)
    fats = fat_nodes(vol)
    root.children.extend(fats)
    root.children.extend(vol.nodes)
    free = free_node(vol)
    if free is not None:
        root.children.append(free)
    tail = tail_node(vol)
    if tail is not None:
        root.children.append(tail)
    if g.fat_type == "FAT32":
        fsinfo_derive(vol, root, fats[0] if fats else None)
    volid = boot.field_named("BS_VolID")
    if volid is not None:
        root.attrs["volume_id"] = f"{int(volid.value) >> 16:04X}-{int(volid.value) & 0xFFFF:04X}"  # type: ignore[arg-type]
    root.attrs["files"] = vol.files
    root.attrs["dirs"] = vol.dirs
    if g.tot_sec * g.bps > vol.size:
        _clip_tree(vol, root)
    root.errors.extend(vol.errors)
    vol.ctx.errors.extend(f"{vol.label}: vfat: {e}" for e in vol.errors)
    return root


def _clip_tree(vol: Volume, root: Node) -> None:
    """Cut every extent to the region (a truncated image): fields entirely outside it are dropped."""
    for _path, node in root.walk():
        node.extents = vol.clip(node.extents)
        kept: list[Field] = []
        for f in node.fields:
            exts = vol.clip(f.extents)
            if exts:
                kept.append(f if exts == f.extents else Field(f.name, f.value, exts, f.display))
        node.fields = tuple(kept)
        node.derived = tuple(Derived(d.field, vol.clip(d.covers), d.seeds) for d in node.derived)

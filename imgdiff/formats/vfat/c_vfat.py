"""construct declarations of the FAT12/16/32 on-disk structures: boot sector/BPB, FSInfo, directory and LFN entries.

Declarations only; the modules of :mod:`imgdiff.formats.vfat` turn them into nodes, compiled to one
:class:`struct.Struct` each by :class:`imgdiff.formats.compiled.Compiled` for the bulk scans of directory entries.
Field names are the ones of Microsoft's FAT specification (fatgen103), written here from the specification's tables.

References:
    Microsoft Extensible Firmware Initiative FAT32 File System Specification, version 1.03 (fatgen103), 2000:
    section 3 (boot sector and BPB), section 5 (FSInfo), section 6 (directory structure), section 7 (long names).
    https://download.microsoft.com/download/1/6/1/161ba512-40e2-4cc9-843a-923143f3456c/fatgen103.doc
    Microsoft, "Description of the FAT32 File System" / Windows NT case bits in DIR_NTRes (0x08 base, 0x10 ext).
"""

from __future__ import annotations

import construct as c

# fmt: off
BPB_COMMON = c.Struct(
    "BS_jmpBoot" / c.Bytes(3),
    "BS_OEMName" / c.Bytes(8),
    "BPB_BytsPerSec" / c.Int16ul,
    "BPB_SecPerClus" / c.Int8ul,
    "BPB_RsvdSecCnt" / c.Int16ul,
    "BPB_NumFATs" / c.Int8ul,
    "BPB_RootEntCnt" / c.Int16ul,
    "BPB_TotSec16" / c.Int16ul,
    "BPB_Media" / c.Int8ul,
    "BPB_FATSz16" / c.Int16ul,
    "BPB_SecPerTrk" / c.Int16ul,
    "BPB_NumHeads" / c.Int16ul,
    "BPB_HiddSec" / c.Int32ul,
    "BPB_TotSec32" / c.Int32ul,
)
"""The BPB fields shared by FAT12, FAT16 and FAT32 (offsets 0-35)."""

BOOT_SECTOR_FAT16 = c.Struct(
    *BPB_COMMON.subcons,
    "BS_DrvNum" / c.Int8ul,
    "BS_Reserved1" / c.Int8ul,
    "BS_BootSig" / c.Int8ul,
    "BS_VolID" / c.Int32ul,
    "BS_VolLab" / c.Bytes(11),
    "BS_FilSysType" / c.Bytes(8),
    "BS_BootCode" / c.Bytes(448),
    "Signature_word" / c.Int16ul,
)
"""Sector 0 of a FAT12/FAT16 volume (the first 512 bytes; larger sectors continue with reserved bytes)."""

BOOT_SECTOR_FAT32 = c.Struct(
    *BPB_COMMON.subcons,
    "BPB_FATSz32" / c.Int32ul,
    "BPB_ExtFlags" / c.Int16ul,
    "BPB_FSVer" / c.Int16ul,
    "BPB_RootClus" / c.Int32ul,
    "BPB_FSInfo" / c.Int16ul,
    "BPB_BkBootSec" / c.Int16ul,
    "BPB_Reserved" / c.Bytes(12),
    "BS_DrvNum" / c.Int8ul,
    "BS_Reserved1" / c.Int8ul,
    "BS_BootSig" / c.Int8ul,
    "BS_VolID" / c.Int32ul,
    "BS_VolLab" / c.Bytes(11),
    "BS_FilSysType" / c.Bytes(8),
    "BS_BootCode32" / c.Bytes(420),
    "Signature_word" / c.Int16ul,
)
"""Sector 0 of a FAT32 volume (and its backup at BPB_BkBootSec)."""

FSINFO = c.Struct(
    "FSI_LeadSig" / c.Int32ul,
    "FSI_Reserved1" / c.Bytes(480),
    "FSI_StrucSig" / c.Int32ul,
    "FSI_Free_Count" / c.Int32ul,
    "FSI_Nxt_Free" / c.Int32ul,
    "FSI_Reserved2" / c.Bytes(12),
    "FSI_TrailSig" / c.Int32ul,
)
"""The FAT32 FSInfo sector (BPB_FSInfo, usually sector 1; its backup follows the backup boot sector)."""

DIR_ENTRY = c.Struct(
    "DIR_Name" / c.Bytes(11),
    "DIR_Attr" / c.Int8ul,
    "DIR_NTRes" / c.Int8ul,
    "DIR_CrtTimeTenth" / c.Int8ul,
    "DIR_CrtTime" / c.Int16ul,
    "DIR_CrtDate" / c.Int16ul,
    "DIR_LstAccDate" / c.Int16ul,
    "DIR_FstClusHI" / c.Int16ul,
    "DIR_WrtTime" / c.Int16ul,
    "DIR_WrtDate" / c.Int16ul,
    "DIR_FstClusLO" / c.Int16ul,
    "DIR_FileSize" / c.Int32ul,
)
"""The 32-byte short (8.3) directory entry."""

LDIR_ENTRY = c.Struct(
    "LDIR_Ord" / c.Int8ul,
    "LDIR_Name1" / c.Bytes(10),
    "LDIR_Attr" / c.Int8ul,
    "LDIR_Type" / c.Int8ul,
    "LDIR_Chksum" / c.Int8ul,
    "LDIR_Name2" / c.Bytes(12),
    "LDIR_FstClusLO" / c.Int16ul,
    "LDIR_Name3" / c.Bytes(4),
)
"""The 32-byte long-name (LFN) entry: 13 UTF-16 code units of the name, in reverse order before the short entry."""
# fmt: on

FSI_LEAD_SIG = 0x41615252
FSI_STRUC_SIG = 0x61417272
FSI_TRAIL_SIG = 0xAA550000
BOOT_SIGNATURE = 0xAA55

ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LONG_NAME = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID
ATTR_LONG_NAME_MASK = 0x3F
LAST_LONG_ENTRY = 0x40

NTRES_LOWER_BASE = 0x08
"""DIR_NTRes bit: the base name is displayed in lower case (Windows NT, Linux vfat, mtools)."""
NTRES_LOWER_EXT = 0x10
"""DIR_NTRes bit: the extension is displayed in lower case."""

DIRENT_FREE = 0xE5
"""DIR_Name[0] of a deleted (free) entry."""
DIRENT_END = 0x00
"""DIR_Name[0] of the free entry that ends the directory: it and all entries after it are free."""
DIRENT_KANJI_E5 = 0x05
"""DIR_Name[0] value that stands for a real 0xE5 first character."""

DIR_ENTRY_SIZE = 32
MAX_DIR_ENTRIES = 65536
"""fatgen103 section 6: a directory may not hold more than 65,536 32-byte entries."""

EOC_MIN = {"FAT12": 0xFF8, "FAT16": 0xFFF8, "FAT32": 0x0FFFFFF8}
"""Smallest end-of-chain mark per FAT type (fatgen103 section 4)."""
BAD_CLUSTER = {"FAT12": 0xFF7, "FAT16": 0xFFF7, "FAT32": 0x0FFFFFF7}
"""The bad-cluster mark per FAT type."""
FAT_TYPE_LIMITS = ((4085, "FAT12"), (65525, "FAT16"))
"""fatgen103 section 3.5: the FAT type is determined by the count of clusters alone."""


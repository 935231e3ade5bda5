"""FAT12/16/32 ("vfat", the EFI system partition): every byte of the volume attributed to a named field.

Builds the ``vfat`` node of a region: the boot sector (and the FAT32 backup boot sector, FSInfo and its backup),
the other reserved sectors, every FAT copy, every directory (its 32-byte slots: short entries, LFN entries,
deleted entries, the free slots after the end marker), every file's data, slack and surplus clusters, the free,
lost and bad clusters and the sectors after the last cluster.  Directory entries are keyed by their path (long
name as stored), so that the engine aligns them by identity and sees a changed entry order as a move.

The reader is written for speed and for hostile input: the active FAT is bulk-read into an :class:`array.array`,
directory slots are unpacked with precompiled :class:`struct.Struct` objects, every cluster is claimed by at most
one chain (so cycles and cross-links end a chain with a message instead of a hang), and FAT entries get one field
each only where ``ctx.interesting()`` says bytes differ.

References:
    Microsoft Extensible Firmware Initiative FAT32 File System Specification, version 1.03 (fatgen103), 2000.
    https://download.microsoft.com/download/1/6/1/161ba512-40e2-4cc9-843a-923143f3456c/fatgen103.doc
    dosfstools ``src/mkfs.fat.c`` (boot sector, FSInfo and backup layout written by mkfs.fat);
    Linux ``fs/fat/dir.c`` and ``fs/fat/namei_vfat.c`` (DIR_NTRes case bits, LFN checksum handling).
"""

from __future__ import annotations

import functools
import hashlib
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import construct as c

from imgdiff.errors import ParseError
from imgdiff.formats.base import Layout, ParseContext
from imgdiff.formats.c_fat import (
    ATTR_DIRECTORY,
    ATTR_LONG_NAME,
    ATTR_LONG_NAME_MASK,
    ATTR_VOLUME_ID,
    BAD_CLUSTER,
    BOOT_SECTOR_FAT16,
    BOOT_SECTOR_FAT32,
    DIR_ENTRY,
    DIR_ENTRY_SIZE,
    DIRENT_END,
    DIRENT_FREE,
    DIRENT_KANJI_E5,
    EOC_MIN,
    FAT_TYPE_LIMITS,
    FSI_LEAD_SIG,
    FSI_STRUC_SIG,
    FSI_TRAIL_SIG,
    FSINFO,
    LAST_LONG_ENTRY,
    LDIR_ENTRY,
    MAX_DIR_ENTRIES,
    NTRES_LOWER_BASE,
    NTRES_LOWER_EXT,
    struct_of,
)
from imgdiff.model import Derived, Extent, Field, Node, Value

NAME = "vfat"

SECTOR_SIZES = (512, 1024, 2048, 4096)
MAX_FATS = 16
"""Refuse more FAT copies than this (BPB_NumFATs is 2 in practice; the field is a byte)."""
DETAIL_LIMIT = 65536
"""Without a diff map, FATs with more entries than this get one field per sector instead of per entry."""
READ_CHUNK = 1 << 20
"""Bytes read at a time when hashing file data."""
AREA_CHUNK = 1 << 20
"""Unstructured areas (free clusters, space after the filesystem) get one field per differing chunk of this size."""
CODEPAGE = "cp850"
"""OEM code page of short names (mkfs.fat and mtools default; a total 256-character mapping)."""

ATTR_NAMES = (
    (0x01, "RO"),
    (0x02, "HIDDEN"),
    (0x04, "SYSTEM"),
    (0x08, "VOLUME_ID"),
    (0x10, "DIR"),
    (0x20, "ARCHIVE"),
    (0x40, "DEVICE"),
    (0x80, "RESERVED"),
)


@dataclass(frozen=True, slots=True)
class _Fast:
    """A construct declaration with its offset map and a precompiled struct for bulk unpacking."""

    layout: Layout
    st: struct.Struct

    @classmethod
    def of(cls, con: c.Struct) -> _Fast:  # type: ignore[type-arg]
        return cls(Layout.of(con), struct_of(con))

    def fields(
        self,
        data: bytes | bytearray | memoryview,
        pos: int,
        absolute: int,
        decode: Mapping[str, Callable[[Value], Value]] | None = None,
        display: Mapping[str, str | None] | None = None,
    ) -> list[Field]:
        """Return one field per member of the structure at ``data[pos:]``, placed at ``absolute``."""
        values = self.st.unpack_from(data, pos)
        out: list[Field] = []
        for (name, off, n), v in zip(self.layout.members, values, strict=True):
            if decode is not None and name in decode:
                v = decode[name](v)
            out.append(Field(name, v, (Extent(absolute + off, n),), display.get(name) if display else None))
        return out


F_BOOT16 = _Fast.of(BOOT_SECTOR_FAT16)
F_BOOT32 = _Fast.of(BOOT_SECTOR_FAT32)
F_FSINFO = _Fast.of(FSINFO)
F_DIR = _Fast.of(DIR_ENTRY)
F_LDIR = _Fast.of(LDIR_ENTRY)
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


# --------------------------------------------------------------------------------------------------------------
# Decoding helpers


def dos_date(d: int) -> str:
    """Return a FAT date (bits 15-9 year since 1980, 8-5 month, 4-0 day) as ``YYYY-MM-DD``."""
    if d == 0:
        return "unset"
    year, month, day = 1980 + (d >> 9), (d >> 5) & 0xF, d & 0x1F
    if not 1 <= month <= 12 or day == 0:
        return f"invalid date 0x{d:04x}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def dos_time(t: int) -> str:
    """Return a FAT time (bits 15-11 hours, 10-5 minutes, 4-0 two-second count) as ``HH:MM:SS``."""
    h, m, s = t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2
    if h > 23 or m > 59 or s > 59:
        return f"invalid time 0x{t:04x}"
    return f"{h:02d}:{m:02d}:{s:02d}"


def dos_datetime(d: int, t: int) -> str:
    """Return a FAT date and time as ``YYYY-MM-DD HH:MM:SS`` (local time of whoever wrote it)."""
    return f"{dos_date(d)} {dos_time(t)}"


def dos_seconds(d: int, t: int) -> int | None:
    """Return a FAT date and time as seconds since 1980-01-01 in the writer's local time, or None if invalid."""
    import datetime as _dt

    year, month, day = 1980 + (d >> 9), (d >> 5) & 0xF, d & 0x1F
    h, m, s = t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2
    try:
        when = _dt.datetime(year, month, day, h, m, min(s, 59))
    except ValueError:
        return None
    return int((when - _dt.datetime(1980, 1, 1)).total_seconds())


def lfn_checksum(name11: bytes) -> int:
    """Return the LDIR_Chksum of a short name (fatgen103 section 7: rotate right, add)."""
    s = 0
    for b in name11:
        s = (((s & 1) << 7) + (s >> 1) + b) & 0xFF
    return s


def short_name(raw: bytes, ntres: int = 0) -> str:
    """Return the displayed 8.3 name of DIR_Name, applying the DIR_NTRes lower-case bits."""
    first = bytes([0xE5]) if raw[:1] == bytes([DIRENT_KANJI_E5]) else raw[:1]
    base = (first + raw[1:8]).decode(CODEPAGE).rstrip(" ")
    ext = raw[8:11].decode(CODEPAGE).rstrip(" ")
    if ntres & NTRES_LOWER_BASE:
        base = base.lower()
    if ntres & NTRES_LOWER_EXT:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def attr_display(a: int) -> str:
    """Return the DIR_Attr bits by name."""
    if a & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
        return "LONG_NAME"
    names = [n for bit, n in ATTR_NAMES if a & bit]
    return ",".join(names) if names else "none"


def _lfn_text(raw: bytes) -> str:
    """Return the UTF-16 characters of LFN name bytes up to the terminating NUL (0xFFFF padding dropped)."""
    units = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    out = bytearray()
    for u in units:
        if u == b"\x00\x00" or u == b"\xff\xff":
            break
        out += u
    return out.decode("utf-16-le", errors="replace")


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def _text(v: Value) -> Value:
    return bytes(v).decode(CODEPAGE) if isinstance(v, (bytes, bytearray)) else v


# --------------------------------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True, slots=True)
class Geometry:
    """The layout derived from the BPB (fatgen103 section 3.5), in bytes relative to the volume start."""

    fat_type: str
    bps: int
    spc: int
    rsvd: int
    nfats: int
    root_ent_cnt: int
    tot_sec: int
    fatsz: int
    root_dir_sectors: int
    first_data_sector: int
    clusters: int
    """CountofClusters: valid cluster numbers are 2 .. clusters + 1."""
    root_clus: int
    fsinfo_sec: int
    bkboot_sec: int
    ext_flags: int

    @property
    def cluster_size(self) -> int:
        """Return the bytes per cluster."""
        return self.bps * self.spc

    def fat_offset(self, k: int) -> int:
        """Return the offset of FAT copy ``k`` (0-based)."""
        return (self.rsvd + k * self.fatsz) * self.bps

    @property
    def root_offset(self) -> int:
        """Return the offset of the fixed FAT12/16 root directory region."""
        return (self.rsvd + self.nfats * self.fatsz) * self.bps

    @property
    def data_offset(self) -> int:
        """Return the offset of cluster 2."""
        return self.first_data_sector * self.bps

    @property
    def active_fat(self) -> int:
        """Return the FAT copy used for chains (BPB_ExtFlags bits 0-3 when mirroring is off, else 0)."""
        if self.fat_type == "FAT32" and self.ext_flags & 0x80:
            k = self.ext_flags & 0x0F
            return k if k < self.nfats else 0
        return 0

    @property
    def mirrored(self) -> bool:
        """Return True when all FAT copies are kept identical (always, except FAT32 with ExtFlags bit 7)."""
        return not (self.fat_type == "FAT32" and self.ext_flags & 0x80)


def geometry(boot: bytes, base: int, size: int) -> Geometry:
    """Return the volume geometry from sector 0, or raise ParseError naming the implausible BPB field."""
    bps, spc, rsvd, nfats, root_ent, tot16, _media, fatsz16 = struct.unpack_from("<HBHBHHBH", boot, 11)
    tot32, fatsz32, ext_flags, _fsver, root_clus, fsinfo, bkboot = struct.unpack_from("<IIHHIHH", boot, 32)
    if bps not in SECTOR_SIZES:
        raise ParseError(f"BPB_BytsPerSec {bps} is not 512, 1024, 2048 or 4096", base + 11, "BPB_BytsPerSec")
    if spc == 0 or spc & (spc - 1):
        raise ParseError(f"BPB_SecPerClus {spc} is not a power of two", base + 13, "BPB_SecPerClus")
    if rsvd == 0:
        raise ParseError("BPB_RsvdSecCnt is 0", base + 14, "BPB_RsvdSecCnt")
    if not 1 <= nfats <= MAX_FATS:
        raise ParseError(f"BPB_NumFATs {nfats} is not plausible", base + 16, "BPB_NumFATs")
    fatsz = fatsz16 or fatsz32
    if fatsz == 0:
        raise ParseError("BPB_FATSz16 and BPB_FATSz32 are both 0", base + 22, "BPB_FATSz16")
    tot_sec = tot16 or tot32
    if tot_sec == 0:
        raise ParseError("BPB_TotSec16 and BPB_TotSec32 are both 0", base + 19, "BPB_TotSec16")
    root_dir_sectors = (root_ent * 32 + bps - 1) // bps
    first_data = rsvd + nfats * fatsz + root_dir_sectors
    if first_data >= tot_sec:
        raise ParseError(
            f"reserved, FAT and root directory sectors ({first_data}) leave no data region in {tot_sec} sectors",
            base + 22 if fatsz16 else base + 36,
            "BPB_FATSz16" if fatsz16 else "BPB_FATSz32",
        )
    if first_data * bps > size:
        raise ParseError(
            f"metadata ({first_data * bps} bytes) does not fit in the {size}-byte region",
            base + 22 if fatsz16 else base + 36,
            "BPB_FATSz16" if fatsz16 else "BPB_FATSz32",
        )
    clusters = (tot_sec - first_data) // spc
    fat_type = "FAT32"
    for limit, name in FAT_TYPE_LIMITS:
        if clusters < limit:
            fat_type = name
            break
    if fat_type == "FAT32":
        if fatsz16 != 0 or root_ent != 0:
            raise ParseError("FAT32 cluster count but BPB_FATSz16/BPB_RootEntCnt set", base + 17, "BPB_RootEntCnt")
    elif fatsz16 == 0:
        raise ParseError(f"{fat_type} cluster count but BPB_FATSz16 is 0", base + 22, "BPB_FATSz16")
    bits = {"FAT12": 12, "FAT16": 16, "FAT32": 32}[fat_type]
    capacity = fatsz * bps * 8 // bits
    if clusters + 2 > capacity:
        # More clusters than the FAT can describe: only the described ones exist.
        clusters = capacity - 2
    if fat_type != "FAT32":
        root_clus, fsinfo, bkboot, ext_flags = 0, 0, 0, 0
    return Geometry(
        fat_type,
        bps,
        spc,
        rsvd,
        nfats,
        root_ent,
        tot_sec,
        fatsz,
        root_dir_sectors,
        first_data,
        clusters,
        root_clus,
        fsinfo,
        bkboot,
        ext_flags,
    )


# --------------------------------------------------------------------------------------------------------------
# Format entry points


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
    return _Volume(ctx, base, size, label).build()


# --------------------------------------------------------------------------------------------------------------
# The walk


@dataclass(slots=True)
class _Dir:
    """A directory waiting to be read: its path, its first cluster (0 = fixed root) and its owner id."""

    path: str
    cluster: int
    owner: int


class _Volume:
    """One parse of one FAT volume; holds the FAT, the cluster owner map and the nodes built so far."""

    def __init__(self, ctx: ParseContext, base: int, size: int, label: str) -> None:
        self.ctx = ctx
        self.base = base
        self.size = size
        self.end = base + size
        self.label = label
        self.errors: list[str] = []
        boot = ctx.read(base, 512)
        self.geo = geometry(boot, base, size)
        g = self.geo
        self.boot = ctx.read(base, g.bps)
        self.csize = g.cluster_size
        self.data_off = base + g.data_offset
        self.hi = g.clusters + 2
        self.eoc = EOC_MIN[g.fat_type]
        self.bad = BAD_CLUSTER[g.fat_type]
        if g.tot_sec * g.bps > size:
            self.errors.append(
                f"the filesystem ({g.tot_sec * g.bps} bytes) is larger than its region ({size} bytes): "
                "the image is truncated; clusters past the end read as zero"
            )
        self.fat = self._read_fat(g.active_fat)
        self.owner = array("I", bytes(4 * self.hi))
        """Owner id per cluster (index into ``self.paths`` plus one; 0 = unclaimed)."""
        self.paths: list[str] = []
        self.nodes: list[Node] = []
        self.files = 0
        self.dirs = 0

    # ---- small helpers -------------------------------------------------------------------------------------

    def _clip(self, exts: Iterable[Extent]) -> tuple[Extent, ...]:
        out: list[Extent] = []
        for e in exts:
            lo, hi = max(e.offset, self.base), min(e.end, self.end)
            if hi > lo:
                if out and out[-1].end == lo:
                    out[-1] = Extent(out[-1].offset, hi - out[-1].offset)
                else:
                    out.append(Extent(lo, hi - lo))
        return tuple(out)

    def _ext(self, off: int, n: int) -> tuple[Extent, ...]:
        return self._clip((Extent(off, n),))

    def _cluster_ext(self, runs: list[list[int]]) -> list[Extent]:
        return [Extent(self.data_off + (first - 2) * self.csize, count * self.csize) for first, count in runs]

    def _owner_id(self, path: str) -> int:
        self.paths.append(path)
        return len(self.paths)

    def _read_fat(self, k: int) -> array[int]:
        """Return the entries 0 .. clusters + 1 of FAT copy ``k`` as an array."""
        g = self.geo
        off = self.base + g.fat_offset(k)
        if g.fat_type == "FAT32":
            data = self.ctx.read(off, 4 * self.hi)
            arr = array("I")
            arr.frombytes(data)
        elif g.fat_type == "FAT16":
            data = self.ctx.read(off, 2 * self.hi)
            arr = array("H")
            arr.frombytes(data)
        else:
            data = self.ctx.read(off, (3 * self.hi + 1) // 2 + 1)
            arr = array("H", bytes(2 * self.hi))
            for n in range(self.hi):
                o = n + (n >> 1)
                v = data[o] | (data[o + 1] << 8)
                arr[n] = (v >> 4) if n & 1 else (v & 0xFFF)
            return arr
        if sys.byteorder == "big":
            arr.byteswap()
        return arr

    def _chain(self, start: int, oid: int, what: str) -> list[list[int]]:
        """Claim and return the cluster chain from ``start`` as runs ``[first, count]``; stop at any anomaly."""
        runs: list[list[int]] = []
        fat, owner, hi, eoc, bad = self.fat, self.owner, self.hi, self.eoc, self.bad
        mask = 0x0FFFFFFF if self.geo.fat_type == "FAT32" else 0xFFFF
        cur = start
        while True:
            if not 2 <= cur < hi:
                self.errors.append(f"{what}: cluster {cur} is outside 2..{hi - 1}; chain cut")
                break
            if owner[cur]:
                other = self.paths[owner[cur] - 1]
                why = "a cycle" if owner[cur] == oid else f"cross-linked with {other}"
                self.errors.append(f"{what}: cluster {cur} is {why}; chain cut")
                break
            owner[cur] = oid
            if runs and runs[-1][0] + runs[-1][1] == cur:
                runs[-1][1] += 1
            else:
                runs.append([cur, 1])
            nxt = fat[cur] & mask
            if nxt >= eoc:
                break
            if nxt == bad:
                self.errors.append(f"{what}: chain runs into bad cluster mark after cluster {cur}")
                break
            if nxt < 2:
                self.errors.append(f"{what}: chain continues into a free/reserved entry after cluster {cur}")
                break
            cur = nxt
        return runs

    def _hash(self, exts: Iterable[Extent]) -> str:
        h = hashlib.sha256()
        for e in exts:
            pos = e.offset
            while pos < e.end:
                n = min(READ_CHUNK, e.end - pos)
                h.update(self.ctx.read(pos, n))
                pos += n
        return h.hexdigest()

    def _area(self, name: str, exts: tuple[Extent, ...], what: Callable[[int], str]) -> list[Field]:
        """Return the fields of a large unstructured area (free space, surplus clusters, bytes after the FS).

        Bytes that do not differ form one field ``name`` (valued by its size); each differing
        :data:`AREA_CHUNK`-aligned chunk (relative to the volume start) becomes its own field ``name[0x<offset>]``
        valued by the SHA-256 of its bytes, so that a difference names where in the area it is and the engine
        never has to render megabytes of equal-valued bytes.  Without a diff map the area is one field.
        """
        if not exts:
            return []
        if self.ctx.diff is None:
            n = sum(e.length for e in exts)
            return [Field(name, n, exts, what(n))]
        rest: list[Extent] = []
        chunks: list[Field] = []
        for e in exts:
            if not self.ctx.interesting(e):
                rest.append(e)
                continue
            pos = e.offset
            while pos < e.end:
                rel = pos - self.base
                end = min(e.end, self.base + (rel // AREA_CHUNK + 1) * AREA_CHUNK)
                piece = Extent(pos, end - pos)
                if self.ctx.interesting(piece):
                    blob = self.ctx.read(piece.offset, piece.length)
                    nz = len(blob) - blob.count(0)
                    disp = f"{piece.length} bytes at +0x{rel:x}" + (f", {nz} non-zero" if nz else ", all zero")
                    chunks.append(Field(f"{name}[0x{rel:x}]", hashlib.sha256(blob).hexdigest(), (piece,), disp))
                else:
                    rest.append(piece)
                pos = end
        out: list[Field] = []
        merged = self._clip(rest)
        if merged:
            n = sum(e.length for e in merged)
            out.append(Field(name, n, merged, what(n)))
        return out + chunks

    # ---- top level -----------------------------------------------------------------------------------------

    def build(self) -> Node:
        g = self.geo
        root = Node(
            kind="vfat",
            key="vfat",
            label=f"vfat ({g.fat_type})",
            extents=(Extent(self.base, self.size),),
            attrs={
                "scope": True,
                "fs": "vfat",
                "fat_type": g.fat_type,
                "cluster_size": self.csize,
                "clusters": g.clusters,
            },
        )
        boot = self._boot_node(self.base, "boot", "boot sector", None)
        root.children.append(boot)
        reserved_used: list[Extent] = [Extent(self.base, g.bps)]
        if g.fat_type == "FAT32":
            for node in self._fat32_reserved(boot):
                root.children.append(node)
                reserved_used.extend(node.extents)
        reserved = self._reserved_node(reserved_used)
        if reserved is not None:
            root.children.append(reserved)
        # Directories and files first: the FAT nodes show which path owns each differing entry.
        self._walk()
        fats = self._fat_nodes()
        root.children.extend(fats)
        root.children.extend(self.nodes)
        free = self._free_node()
        if free is not None:
            root.children.append(free)
        tail = self._tail_node()
        if tail is not None:
            root.children.append(tail)
        if g.fat_type == "FAT32":
            self._fsinfo_derive(root, fats[0] if fats else None)
        volid = boot.field_named("BS_VolID")
        if volid is not None:
            root.attrs["volume_id"] = f"{int(volid.value) >> 16:04X}-{int(volid.value) & 0xFFFF:04X}"  # type: ignore[arg-type]
        root.attrs["files"] = self.files
        root.attrs["dirs"] = self.dirs
        if g.tot_sec * g.bps > self.size:
            self._clip_tree(root)
        root.errors.extend(self.errors)
        self.ctx.errors.extend(f"{self.label}: vfat: {e}" for e in self.errors)
        return root

    def _clip_tree(self, root: Node) -> None:
        """Cut every extent to the region (a truncated image): fields entirely outside it are dropped."""
        for _path, node in root.walk():
            node.extents = self._clip(node.extents)
            kept: list[Field] = []
            for f in node.fields:
                exts = self._clip(f.extents)
                if exts:
                    kept.append(f if exts == f.extents else Field(f.name, f.value, exts, f.display))
            node.fields = tuple(kept)
            node.derived = tuple(Derived(d.field, self._clip(d.covers), d.seeds) for d in node.derived)

    # ---- reserved region -----------------------------------------------------------------------------------

    def _boot_node(self, off: int, key: str, label: str, primary: Node | None) -> Node:
        g = self.geo
        sec = self.boot if primary is None else self.ctx.read(off, g.bps)
        fast = F_BOOT32 if g.fat_type == "FAT32" else F_BOOT16
        display: dict[str, str | None] = {}
        vol = _U32.unpack_from(sec, 67 if g.fat_type == "FAT32" else 39)[0]
        display["BS_VolID"] = f"{vol >> 16:04X}-{vol & 0xFFFF:04X}"
        display["BPB_Media"] = f"0x{sec[21]:02X}"
        fields = fast.fields(
            sec,
            0,
            off,
            decode={"BS_OEMName": _text, "BS_VolLab": _text, "BS_FilSysType": _text},
            display=display,
        )
        if g.bps > 512:
            fields.append(Field("reserved", bytes(sec[512:]), (Extent(off + 512, g.bps - 512),)))
        kind = "vfat.boot_sector" if primary is None else "vfat.backup_boot_sector"
        node = Node(kind=kind, key=key, label=label, extents=self._ext(off, g.bps), fields=tuple(fields))
        sig = _U16.unpack_from(sec, 510)[0]
        if sig != 0xAA55:
            node.errors.append(f"{label}: Signature_word 0x{sig:04x} is not 0xaa55")
            self.errors.append(node.errors[-1])
        if primary is not None:
            node.derived = _copies(node, primary)
        return node

    def _fsinfo_node(self, off: int, key: str, label: str, primary: Node | None) -> Node:
        g = self.geo
        sec = self.ctx.read(off, g.bps)
        lead, _, struc, free, nxt = struct.unpack_from("<I480sIII", sec, 0)
        trail = _U32.unpack_from(sec, 508)[0]
        display = {
            "FSI_Free_Count": "unknown" if free == 0xFFFFFFFF else f"{free} free clusters",
            "FSI_Nxt_Free": "unknown" if nxt == 0xFFFFFFFF else f"cluster {nxt}",
        }
        fields = F_FSINFO.fields(sec, 0, off, display=display)
        if g.bps > 512:
            fields.append(Field("reserved", bytes(sec[512:]), (Extent(off + 512, g.bps - 512),)))
        kind = "vfat.fsinfo" if primary is None else "vfat.backup_fsinfo"
        node = Node(kind=kind, key=key, label=label, extents=self._ext(off, g.bps), fields=tuple(fields))
        if (lead, struc, trail) != (FSI_LEAD_SIG, FSI_STRUC_SIG, FSI_TRAIL_SIG):
            node.errors.append(f"{label}: FSInfo signatures missing (FSI_LeadSig 0x{lead:08x})")
            self.errors.append(node.errors[-1])
        if primary is not None:
            node.derived = _copies(node, primary)
        return node

    def _fat32_reserved(self, boot: Node) -> list[Node]:
        g = self.geo
        out: list[Node] = []
        fsinfo: Node | None = None
        if 0 < g.fsinfo_sec < g.rsvd:
            fsinfo = self._fsinfo_node(self.base + g.fsinfo_sec * g.bps, "fsinfo", "FSInfo", None)
            out.append(fsinfo)
        elif g.fsinfo_sec not in (0, 0xFFFF):
            self.errors.append(f"BPB_FSInfo {g.fsinfo_sec} is outside the reserved region")
        bk = g.bkboot_sec
        if 0 < bk < g.rsvd and bk != g.fsinfo_sec:
            out.append(self._boot_node(self.base + bk * g.bps, "backup_boot", "backup boot sector", boot))
            bfs = bk + (g.fsinfo_sec or 1)
            if fsinfo is not None and bfs < g.rsvd and bfs not in (g.fsinfo_sec, 0):
                out.append(self._fsinfo_node(self.base + bfs * g.bps, "backup_fsinfo", "backup FSInfo", fsinfo))
        elif bk not in (0, 0xFFFF):
            self.errors.append(f"BPB_BkBootSec {bk} is outside the reserved region")
        return out

    def _reserved_node(self, used: list[Extent]) -> Node | None:
        g = self.geo
        start, end = self.base, self.base + g.rsvd * g.bps
        gaps: list[Extent] = []
        pos = start
        for e in sorted(used):
            if e.offset > pos:
                gaps.append(Extent(pos, e.offset - pos))
            pos = max(pos, e.end)
        if pos < end:
            gaps.append(Extent(pos, end - pos))
        exts = self._clip(gaps)
        if not exts:
            return None
        total = sum(e.length for e in exts)
        f = Field("reserved", total, exts, f"{total // g.bps} sectors")
        return Node(kind="vfat.reserved", key="reserved", label="reserved sectors", extents=exts, fields=(f,))

    def _fsinfo_derive(self, root: Node, fat0: Node | None) -> None:
        """Declare the FSInfo counters derived from FAT #1 and record the computed free count."""
        if fat0 is None:
            return
        g = self.geo
        width = 4
        covers = self._ext(self.base + g.fat_offset(0), width * self.hi)
        free = sum(1 for n in range(2, self.hi) if self.fat[n] & 0x0FFFFFFF == 0)
        for node in root.children:
            if node.kind == "vfat.fsinfo":
                node.derived = (Derived("FSI_Free_Count", covers=covers), Derived("FSI_Nxt_Free", covers=covers))
                node.attrs["free_clusters"] = free
                stored = node.field_named("FSI_Free_Count")
                if stored is not None and isinstance(stored.value, int) and stored.value not in (free, 0xFFFFFFFF):
                    node.errors.append(f"FSI_Free_Count {stored.value} but the FAT has {free} free clusters")

    # ---- FATs ----------------------------------------------------------------------------------------------

    def _entry_display(self, n: int, v: int) -> str:
        g = self.geo
        mask = 0x0FFFFFFF if g.fat_type == "FAT32" else 0xFFFF
        v &= mask
        if n == 0:
            return f"media 0x{v & 0xFF:02X}"
        if n == 1:
            return "end of chain" if v >= self.eoc else f"0x{v:X}"
        if v == 0:
            what = "free"
        elif v >= self.eoc:
            what = "end of chain"
        elif v == self.bad:
            what = "bad cluster"
        elif v == 1 or v > self.bad:
            what = "reserved"
        else:
            what = f"next {v}"
        oid = self.owner[n] if n < self.hi else 0
        return f"{what} ({self.paths[oid - 1]})" if oid else what

    def _fat_nodes(self) -> list[Node]:
        g = self.geo
        if g.fat_type == "FAT12":
            unit, per = 3, 2
        else:
            unit, per = (4, 1) if g.fat_type == "FAT32" else (2, 1)
        units = (self.hi + per - 1) // per
        used = min(units * unit, g.fatsz * g.bps)
        units = used // unit
        chunk = g.bps if per == 2 else g.bps // unit  # units per chunk: one sector (FAT12: three sectors)
        detail = self.ctx.diff is not None or units * per <= DETAIL_LIMIT
        always = 2 // per  # units that always get their own field: FAT[0] and FAT[1]
        out: list[Node] = []
        fat0 = self.base + g.fat_offset(0)
        for k in range(g.nfats):
            off = self.base + g.fat_offset(k)
            data = self.ctx.read(off, used)
            fields: list[Field] = []
            run0 = -1

            def flush(u_end: int, off: int = off, data: bytes = data, fields: list[Field] = fields) -> None:
                nonlocal run0
                if run0 < 0:
                    return
                e0, e1 = run0 * per, min(u_end * per, self.hi) - 1
                blob = data[run0 * unit : u_end * unit]
                fields.append(
                    Field(
                        f"FAT[{e0}..{e1}]",
                        hashlib.sha256(blob).hexdigest(),
                        (Extent(off + run0 * unit, (u_end - run0) * unit),),
                        f"{e1 - e0 + 1} entries",
                    )
                )
                run0 = -1

            for c0 in range(0, units, chunk):
                c1 = min(units, c0 + chunk)
                cext = Extent(off + c0 * unit, (c1 - c0) * unit)
                if not detail or (c0 >= always and not self.ctx.interesting(cext)):
                    if run0 < 0:
                        run0 = c0
                    if not detail:
                        flush(c1)
                    continue
                for u in range(c0, c1):
                    uext = Extent(off + u * unit, unit)
                    if u >= always and not self.ctx.interesting(uext):
                        if run0 < 0:
                            run0 = u
                        continue
                    flush(u)
                    fields.append(self._entry_field(u, per, unit, data, off))
            flush(units)
            if used < g.fatsz * g.bps:
                n = g.fatsz * g.bps - used
                fields.append(Field("unused", n, (Extent(off + used, n),), f"{n} bytes after the last entry"))
            node = Node(
                kind="vfat.fat",
                key=f"fat:{k}",
                label=f"FAT #{k + 1}",
                extents=self._ext(off, g.fatsz * g.bps),
                fields=tuple(fields),
                attrs={
                    "index": k,
                    "fat_type": g.fat_type,
                    "active": k == g.active_fat,
                    "detail": "entry" if detail else "sector",
                },
            )
            if k > 0 and g.mirrored:
                delta = off - fat0
                node.derived = tuple(
                    Derived(f.name, covers=self._clip(e.shifted(-delta) for e in f.extents)) for f in fields
                )
            out.append(node)
        return out

    def _entry_field(self, u: int, per: int, unit: int, data: bytes, off: int) -> Field:
        ext = (Extent(off + u * unit, unit),)
        if per == 1:
            v = (_U32 if unit == 4 else _U16).unpack_from(data, u * unit)[0]
            return Field(f"FAT[{u}]", v, ext, self._entry_display(u, v))
        b = data[u * 3 : u * 3 + 3].ljust(3, b"\0")
        v0 = b[0] | ((b[1] & 0x0F) << 8)
        v1 = (b[1] >> 4) | (b[2] << 4)
        n0, n1 = 2 * u, 2 * u + 1
        disp = f"{n0}: {self._entry_display(n0, v0)}; {n1}: {self._entry_display(n1, v1)}"
        return Field(f"FAT[{n0},{n1}]", (v0, v1), ext, disp)

    # ---- directories and files -----------------------------------------------------------------------------

    def _walk(self) -> None:
        g = self.geo
        root_oid = self._owner_id("/")
        stack: list[_Dir] = [_Dir("/", g.root_clus if g.fat_type == "FAT32" else 0, root_oid)]
        while stack:
            d = stack.pop()
            sub = self._directory(d)
            stack.extend(reversed(sub))

    def _dir_spans(self, d: _Dir) -> tuple[list[Extent], list[Extent]]:
        """Return the slot spans of a directory (in order) and any clusters past the 65,536-entry limit."""
        g = self.geo
        if d.cluster == 0:
            n = g.root_dir_sectors * g.bps
            return [Extent(self.base + g.root_offset, n)], []
        runs = self._chain(d.cluster, d.owner, f"directory {d.path}")
        spans = self._cluster_ext(runs)
        limit = MAX_DIR_ENTRIES * DIR_ENTRY_SIZE
        kept: list[Extent] = []
        excess: list[Extent] = []
        total = 0
        for e in spans:
            if total >= limit:
                excess.append(e)
            elif total + e.length > limit:
                keep = limit - total
                kept.append(Extent(e.offset, keep))
                excess.append(Extent(e.offset + keep, e.length - keep))
            else:
                kept.append(e)
            total += e.length
        if excess:
            self.errors.append(f"directory {d.path}: more than {MAX_DIR_ENTRIES} entries; the rest is not read")
        return kept, excess

    def _directory(self, d: _Dir) -> list[_Dir]:
        g = self.geo
        self.dirs += 1
        spans, excess = self._dir_spans(d)
        fixed_root = d.cluster == 0
        kind = "vfat.root_dir" if fixed_root else "vfat.dir"
        node = Node(
            kind=kind,
            key=f"dir:{d.path}",
            label=f"directory {d.path}",
            extents=self._clip(spans + excess),
            attrs={"path": d.path, "file_type": "dir"},
        )
        self.nodes.append(node)
        # Slot offsets in order; the fixed root holds BPB_RootEntCnt slots, the rest of its sectors is unused.
        offsets: list[int] = []
        buf = bytearray()
        for e in spans:
            nslots = e.length // DIR_ENTRY_SIZE
            if fixed_root:
                nslots = min(nslots, g.root_ent_cnt)
            buf += self.ctx.read(e.offset, nslots * DIR_ENTRY_SIZE)
            offsets.extend(range(e.offset, e.offset + nslots * DIR_ENTRY_SIZE, DIR_ENTRY_SIZE))
        unused: list[Extent] = []
        if fixed_root and spans and g.root_ent_cnt * 32 < spans[0].length:
            tail = spans[0].offset + g.root_ent_cnt * 32
            unused.append(Extent(tail, spans[0].end - tail))
        subdirs: list[_Dir] = []
        keys: set[str] = set()
        pending: list[tuple[int, int]] = []  # (slot index, absolute offset) of LFN slots seen
        ended = False
        for i, off in enumerate(offsets):
            pos = i * DIR_ENTRY_SIZE
            b0 = buf[pos]
            if ended or b0 == DIRENT_END:
                ended = True
                unused.append(Extent(off, DIR_ENTRY_SIZE))
                continue
            attr = buf[pos + 11]
            if b0 == DIRENT_FREE:
                self._orphans(node, d.path, pending, buf, keys)
                pending = []
                node.children.append(self._deleted(d.path, i, off, buf, pos, attr))
                continue
            if attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
                if buf[pos] & LAST_LONG_ENTRY:
                    self._orphans(node, d.path, pending, buf, keys)
                    pending = []
                pending.append((i, off))
                continue
            entry, sub = self._short_entry(d, i, off, buf, pos, pending, node, keys)
            pending = []
            node.children.append(entry)
            if sub is not None:
                subdirs.append(sub)
        self._orphans(node, d.path, pending, buf, keys)
        fields: list[Field] = []
        ue = self._clip(sorted(unused))
        if ue:
            n = sum(e.length for e in ue)
            fields.append(Field("unused", n, ue, f"{n // DIR_ENTRY_SIZE} free slots after the end marker"))
        if excess:
            fields.extend(self._area("excess", self._clip(excess), lambda n: f"{n} bytes past 65,536 entries"))
        node.fields = tuple(fields)
        return subdirs

    def _unique(self, keys: set[str], key: str) -> str:
        if key not in keys:
            keys.add(key)
            return key
        n = 2
        while f"{key}#{n}" in keys:
            n += 1
        keys.add(f"{key}#{n}")
        return f"{key}#{n}"

    def _dirent_fields(self, buf: bytearray, pos: int, off: int) -> list[Field]:
        (name, attr, ntres, tenth, ct, cd, ad, _hi, wt, wd, _lo, _size) = F_DIR.st.unpack_from(buf, pos)
        display: dict[str, str | None] = {
            "DIR_Name": short_name(name, ntres) if name[:1] != bytes([DIRENT_FREE]) else None,
            "DIR_Attr": attr_display(attr),
            "DIR_NTRes": ",".join(
                n
                for b, n in ((NTRES_LOWER_BASE, "lower-case base"), (NTRES_LOWER_EXT, "lower-case extension"))
                if ntres & b
            )
            or None,
            "DIR_CrtTimeTenth": f"+{tenth * 10} ms",
            "DIR_CrtTime": dos_datetime(cd, ct),
            "DIR_CrtDate": dos_date(cd),
            "DIR_LstAccDate": dos_date(ad),
            "DIR_WrtTime": dos_datetime(wd, wt),
            "DIR_WrtDate": dos_date(wd),
        }
        return F_DIR.fields(buf, pos, off, decode={"DIR_Name": _text}, display=display)

    def _lfn_node(
        self,
        key: str,
        label: str,
        buf: bytearray,
        pos: int,
        off: int,
        short_ext: Extent | None,
        attrs: dict[str, Value],
    ) -> Node:
        raw = bytes(buf[pos : pos + 32])
        display: dict[str, str | None] = {
            "LDIR_Name1": _lfn_text(raw[1:11]),
            "LDIR_Name2": _lfn_text(raw[14:26]),
            "LDIR_Name3": _lfn_text(raw[28:32]),
            "LDIR_Ord": f"{raw[0] & 0x1F}{' (last)' if raw[0] & LAST_LONG_ENTRY else ''}",
        }
        node = Node(
            kind="vfat.lfn",
            key=key,
            label=label,
            extents=(Extent(off, 32),),
            fields=tuple(F_LDIR.fields(buf, pos, off, display=display)),
            attrs=attrs,
        )
        if short_ext is not None:
            node.derived = (Derived("LDIR_Chksum", covers=(short_ext,)),)
        return node

    def _orphans(
        self,
        parent: Node,
        dpath: str,
        pending: list[tuple[int, int]],
        buf: bytearray,
        keys: set[str],
    ) -> None:
        """Attach LFN slots that belong to no short entry as their own nodes."""
        for i, off in pending:
            key = self._unique(keys, f"{_join(dpath, '')}:orphan_lfn@{i}")
            parent.children.append(
                self._lfn_node(
                    key,
                    f"orphan long-name slot {i} in {dpath}",
                    buf,
                    i * 32,
                    off,
                    None,
                    {"path": dpath, "slot": i, "orphan": True},
                )
            )
        if pending:
            self.errors.append(f"directory {dpath}: {len(pending)} long-name slot(s) without a matching short entry")

    def _deleted(self, dpath: str, i: int, off: int, buf: bytearray, pos: int, attr: int) -> Node:
        lfn = attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME
        key = f"{_join(dpath, '')}:deleted@{i}"
        attrs: dict[str, Value] = {"path": dpath, "slot": i, "deleted": True}
        if lfn:
            n = self._lfn_node(key, f"deleted long-name slot {i} in {dpath}", buf, pos, off, None, attrs)
            n.kind = "vfat.deleted"
            return n
        fields = self._dirent_fields(buf, pos, off)
        return Node(
            kind="vfat.deleted",
            key=key,
            label=f"deleted entry {i} in {dpath}",
            extents=(Extent(off, 32),),
            fields=tuple(fields),
            attrs=attrs,
        )

    def _long_name(self, name11: bytes, pending: list[tuple[int, int]], buf: bytearray) -> str | None:
        """Return the long name of ``pending`` LFN slots if they form a valid set for ``name11``, else None."""
        if not pending:
            return None
        csum = lfn_checksum(name11)
        n = len(pending)
        units = bytearray()
        for k, (i, _off) in enumerate(pending):
            raw = buf[i * 32 : i * 32 + 32]
            ordv = raw[0]
            expect = (n - k) | (LAST_LONG_ENTRY if k == 0 else 0)
            if ordv != expect or raw[13] != csum or raw[12] != 0:
                return None
        for i, _off in reversed(pending):
            raw = buf[i * 32 : i * 32 + 32]
            units += raw[1:11] + raw[14:26] + raw[28:32]
        text = _lfn_text(bytes(units))
        return text or None

    def _short_entry(
        self,
        d: _Dir,
        i: int,
        off: int,
        buf: bytearray,
        pos: int,
        pending: list[tuple[int, int]],
        dnode: Node,
        keys: set[str],
    ) -> tuple[Node, _Dir | None]:
        g = self.geo
        name11 = bytes(buf[pos : pos + 11])
        attr, ntres = buf[pos + 11], buf[pos + 12]
        hi, lo, fsize = struct.unpack_from("<H4xHI", buf, pos + 20)
        first = ((hi << 16) | lo) if g.fat_type == "FAT32" else lo
        sname = short_name(name11, ntres)
        lname = self._long_name(name11, pending, buf)
        if pending and lname is None:
            self._orphans(dnode, d.path, pending, buf, keys)
            pending = []
        fields = self._dirent_fields(buf, pos, off)
        name = lname or sname
        attrs: dict[str, Value] = {"slot": i, "dir": d.path, "short_name": sname, "lfn": lname is not None}
        sub: _Dir | None = None
        data_ext: tuple[Extent, ...] = ()
        if attr & ATTR_VOLUME_ID and not attr & ATTR_DIRECTORY:
            key = self._unique(keys, ":volume_label")
            label = f"volume label entry {name11.decode(CODEPAGE).rstrip()!r}"
            attrs.update({"path": "", "file_type": "volume_label", "name": name11.decode(CODEPAGE).rstrip()})
            if d.path != "/":
                self.errors.append(f"directory {d.path}: volume label entry outside the root directory")
        elif name11 in (b".          ", b"..         "):
            key = self._unique(keys, _join(d.path, name11.decode("ascii").strip()))
            label = f"entry {key}"
            attrs.update({"path": key, "file_type": "dir", "name": name11.decode("ascii").strip(), "dot": True})
        else:
            path = _join(d.path, name)
            key = self._unique(keys, path)
            label = f"entry {key}"
            is_dir = bool(attr & ATTR_DIRECTORY)
            attrs.update(
                {
                    "path": key,
                    "file_type": "dir" if is_dir else "file",
                    "name": name,
                    "first_cluster": first,
                    "size": fsize,
                }
            )
            if is_dir:
                if first == 0:
                    self.errors.append(f"directory {key}: DIR_FstClus is 0")
                else:
                    sub = _Dir(key, first, self._owner_id(key))
            else:
                data_ext = self._file(key, first, fsize)
        exts: list[Extent] = [Extent(o, 32) for _i, o in pending] + [Extent(off, 32)]
        node = Node(kind="vfat.dirent", key=key, label=label, extents=tuple(exts), fields=tuple(fields), attrs=attrs)
        if data_ext:  # the size is the length of the file's data: whatever explains the data explains it
            node.derived = (Derived("DIR_FileSize", covers=data_ext),)
        name_ext = Extent(off, 11)
        for j, (si, so) in enumerate(pending):
            ordn = len(pending) - j
            node.children.append(
                self._lfn_node(
                    f"{key}#lfn{ordn}",
                    f"long-name slot {ordn} of {key}",
                    buf,
                    si * 32,
                    so,
                    name_ext,
                    {"path": attrs["path"], "slot": si, "ord": ordn},
                )
            )
        return node, sub

    def _file(self, path: str, first: int, fsize: int) -> tuple[Extent, ...]:
        """Build the file node of ``path``; return the extents of its data (for the entry's DIR_FileSize)."""
        self.files += 1
        attrs: dict[str, Value] = {"path": path, "content": True, "size": fsize, "first_cluster": first}
        node = Node(kind="vfat.file", key=path, label=f"file {path}", attrs=attrs)
        runs: list[list[int]] = []
        if first != 0:
            runs = self._chain(first, self._owner_id(path), f"file {path}")
        elif fsize:
            self.errors.append(f"file {path}: DIR_FileSize {fsize} but no first cluster")
        exts = self._cluster_ext(runs)
        have = sum(e.length for e in exts)
        if have < fsize:
            self.errors.append(f"file {path}: chain holds {have} bytes but DIR_FileSize is {fsize}")
            node.errors.append(self.errors[-1])
        data, rest = _split(exts, fsize)
        needed = -(-fsize // self.csize) * self.csize if fsize else 0
        slack, excess = _split(rest, max(0, needed - fsize))
        data_c, slack_c, excess_c = self._clip(data), self._clip(slack), self._clip(excess)
        fields = [Field("data", self._hash(data), data_c, f"{fsize} bytes")]
        nz = 0
        if slack_c:
            blob = b"".join(self.ctx.read(e.offset, e.length) for e in slack_c)
            nz = len(blob) - blob.count(0)
            fields.append(
                Field(
                    "slack",
                    hashlib.sha256(blob).hexdigest(),
                    slack_c,
                    f"{len(blob)} bytes" + (f", {nz} non-zero" if nz else ", all zero"),
                )
            )
        if excess_c:
            n = sum(e.length for e in excess_c)
            fields.extend(self._area("excess", excess_c, lambda n: f"{n // self.csize} clusters past DIR_FileSize"))
            self.errors.append(f"file {path}: chain is {n // self.csize} cluster(s) longer than DIR_FileSize")
        node.fields = tuple(fields)
        node.extents = self._clip(exts)
        if slack_c and data_c and not nz:
            # all-zero slack carries nothing of its own: where it starts and ends is the data's length
            node.derived = (Derived("slack", covers=data_c),)
        attrs["clusters"] = sum(r[1] for r in runs)
        self.nodes.append(node)
        return data_c

    # ---- unowned space -------------------------------------------------------------------------------------

    def _free_node(self) -> Node | None:
        fat, owner, bad = self.fat, self.owner, self.bad
        mask = 0x0FFFFFFF if self.geo.fat_type == "FAT32" else 0xFFFF
        runs: dict[str, list[list[int]]] = {"unused": [], "lost": [], "bad": []}
        for n in range(2, self.hi):
            if owner[n]:
                continue
            v = fat[n] & mask
            cls = "unused" if v == 0 else "bad" if v == bad else "lost"
            lst = runs[cls]
            if lst and lst[-1][0] + lst[-1][1] == n:
                lst[-1][1] += 1
            else:
                lst.append([n, 1])
        fields: list[Field] = []
        for name, lst in runs.items():
            exts = self._clip(self._cluster_ext(lst))
            if not exts:
                continue
            count = sum(r[1] for r in lst)
            what = {
                "unused": "free clusters",
                "lost": "allocated clusters no file or directory reaches",
                "bad": "clusters marked bad",
            }[name]
            fields.extend(self._area(name, exts, functools.partial(_clusters_text, self.csize, what)))
            if name == "lost":
                self.errors.append(f"{count} allocated cluster(s) belong to no file or directory")
        if not fields:
            return None
        exts = self._clip(sorted(e for f in fields for e in f.extents))
        return Node(kind="vfat.free", key="free", label="free clusters", extents=exts, fields=tuple(fields))

    def _tail_node(self) -> Node | None:
        g = self.geo
        fields: list[Field] = []
        start = self.data_off + g.clusters * self.csize
        fs_end = self.base + g.tot_sec * g.bps
        inside = self._ext(start, fs_end - start)
        fields.extend(self._area("unused", inside, lambda n: f"{n} bytes of data region after the last whole cluster"))
        outside = self._ext(fs_end, self.end - fs_end)
        fields.extend(
            self._area("outside", outside, lambda n: f"{n} bytes after BPB_TotSec (not part of the filesystem)")
        )
        if not fields:
            return None
        exts = self._clip(e for f in fields for e in f.extents)
        return Node(kind="vfat.tail", key="tail", label="after the last cluster", extents=exts, fields=tuple(fields))


def _clusters_text(csize: int, what: str, n: int) -> str:
    return f"{n // csize} {what}"


def _split(exts: list[Extent], n: int) -> tuple[list[Extent], list[Extent]]:
    """Return the first ``n`` bytes of ``exts`` and the rest, as two extent lists."""
    head: list[Extent] = []
    rest: list[Extent] = []
    for e in exts:
        if n <= 0:
            rest.append(e)
        elif e.length <= n:
            head.append(e)
            n -= e.length
        else:
            head.append(Extent(e.offset, n))
            rest.append(Extent(e.offset + n, e.length - n))
            n = 0
    return head, rest


def _copies(copy: Node, primary: Node) -> tuple[Derived, ...]:
    """Return Derived declarations saying each field of ``copy`` is a copy of the same field of ``primary``."""
    out: list[Derived] = []
    for f in copy.fields:
        p = primary.field_named(f.name)
        if p is not None:
            out.append(Derived(f.name, covers=p.extents))
    return tuple(out)

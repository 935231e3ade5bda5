"""One FAT volume being parsed: the geometry from the BPB, the active FAT, cluster chains and their owners.

:class:`Volume` holds what every on-disk object's builder (:mod:`.boot`, :mod:`.fats`, :mod:`.dirs`,
:mod:`.files`, :mod:`.free`) shares: the region, the geometry, the active FAT bulk-read into an
:class:`array.array`, the cluster owner map (every cluster is claimed by at most one chain, so cycles and
cross-links end a chain with a message instead of a hang), the nodes built so far and the errors.

References:
    Microsoft FAT specification (fatgen103), section 3.5 (determination of FAT type, data region layout), section 4
    (FAT entries: end of chain, bad cluster marks); dosfstools ``src/mkfs.fat.c``.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.vfat.c_vfat import BAD_CLUSTER, EOC_MIN, FAT_TYPE_LIMITS
from imgdiff.model import Extent, Field, Node

SECTOR_SIZES = (512, 1024, 2048, 4096)
MAX_FATS = 16
"""Refuse more FAT copies than this (BPB_NumFATs is 2 in practice; the field is a byte)."""
DETAIL_LIMIT = 65536
"""Without a diff map, FATs with more entries than this get one field per sector instead of per entry."""
READ_CHUNK = 1 << 20
"""Bytes read at a time when hashing file data."""
AREA_CHUNK = 1 << 20
"""Unstructured areas (free clusters, space after the filesystem) get one field per differing chunk of this size."""


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


class Volume:
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
        self.fat = self.read_fat(g.active_fat)
        self.owner = array("I", bytes(4 * self.hi))
        """Owner id per cluster (index into ``self.paths`` plus one; 0 = unclaimed)."""
        self.paths: list[str] = []
        self.nodes: list[Node] = []
        self.files = 0
        self.dirs = 0

    # ---- small helpers -------------------------------------------------------------------------------------

    def clip(self, exts: Iterable[Extent]) -> tuple[Extent, ...]:
        """Return ``exts`` cut to the region, touching pieces joined."""
        out: list[Extent] = []
        for e in exts:
            lo, hi = max(e.offset, self.base), min(e.end, self.end)
            if hi > lo:
                if out and out[-1].end == lo:
                    out[-1] = Extent(out[-1].offset, hi - out[-1].offset)
                else:
                    out.append(Extent(lo, hi - lo))
        return tuple(out)

    def ext(self, off: int, n: int) -> tuple[Extent, ...]:
        """Return ``[off, off + n)`` cut to the region."""
        return self.clip((Extent(off, n),))

    def cluster_ext(self, runs: list[list[int]]) -> list[Extent]:
        """Return the byte extents of cluster runs ``[first, count]``."""
        return [Extent(self.data_off + (first - 2) * self.csize, count * self.csize) for first, count in runs]

    def owner_id(self, path: str) -> int:
        """Return a new owner id for ``path`` (what :meth:`chain` marks the clusters it claims with)."""
        self.paths.append(path)
        return len(self.paths)

    def read_fat(self, k: int) -> array[int]:
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

    def chain(self, start: int, oid: int, what: str) -> list[list[int]]:
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

    def hash_extents(self, exts: Iterable[Extent]) -> str:
        """Return the SHA-256 (hex) of the bytes of ``exts`` in order, read in :data:`READ_CHUNK` pieces."""
        h = hashlib.sha256()
        for e in exts:
            pos = e.offset
            while pos < e.end:
                n = min(READ_CHUNK, e.end - pos)
                h.update(self.ctx.read(pos, n))
                pos += n
        return h.hexdigest()

    def area(self, name: str, exts: tuple[Extent, ...], what: Callable[[int], str]) -> list[Field]:
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
        merged = self.clip(rest)
        if merged:
            n = sum(e.length for e in merged)
            out.append(Field(name, n, merged, what(n)))
        return out + chunks


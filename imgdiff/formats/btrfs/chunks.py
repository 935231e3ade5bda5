"""The btrfs logical address space: chunks and their stripes, and the logical -> physical mapping.

Every tree block and data extent is addressed by a *logical* byte number; a chunk (a CHUNK_ITEM in the chunk tree,
bootstrapped from the superblock's ``sys_chunk_array``) maps a logical range onto one stripe per copy on the
devices.  This module keeps the chunks of one device and answers "where on this device are the bytes of logical
range [L, L + n), per copy".  Supported profiles: SINGLE, DUP and RAID1/RAID1C3/RAID1C4 (each stripe holds a whole
copy), RAID0 and RAID10 (striped by ``stripe_len``).  RAID5/6 parity layouts are refused (the range is unmapped).

References:
    include/uapi/linux/btrfs_tree.h (struct btrfs_chunk, struct btrfs_stripe, BTRFS_BLOCK_GROUP_*)
    fs/btrfs/volumes.c (btrfs_map_block), btrfs-progs kernel-shared/volumes.c (btrfs_map_block)
    https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html (Chunk tree)
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from imgdiff.formats.btrfs.c_btrfs import (
    BTRFS_BLOCK_GROUP_RAID0,
    BTRFS_BLOCK_GROUP_RAID5,
    BTRFS_BLOCK_GROUP_RAID6,
    BTRFS_BLOCK_GROUP_RAID10,
)
from imgdiff.model import Extent

MAX_CHUNKS = 1 << 20
"""Refuse more chunks than this (a hostile chunk tree)."""
MAX_STRIPES = 256


@dataclass(frozen=True, slots=True)
class Stripe:
    """One ``struct btrfs_stripe``: a device and the physical start of the chunk's stripe on it."""

    devid: int
    offset: int
    dev_uuid: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: ``[logical, logical + length)`` of the logical address space and where it is stored."""

    logical: int
    length: int
    type: int
    stripe_len: int
    sub_stripes: int
    stripes: tuple[Stripe, ...]

    @property
    def end(self) -> int:
        """Return the first logical byte after the chunk."""
        return self.logical + self.length

    @property
    def striped(self) -> bool:
        """Return True for RAID0/RAID10 (data spread over stripes in ``stripe_len`` pieces)."""
        return bool(self.type & (BTRFS_BLOCK_GROUP_RAID0 | BTRFS_BLOCK_GROUP_RAID10))

    @property
    def parity(self) -> bool:
        """Return True for RAID5/RAID6, which this parser does not map."""
        return bool(self.type & (BTRFS_BLOCK_GROUP_RAID5 | BTRFS_BLOCK_GROUP_RAID6))

    def stripe_length(self) -> int:
        """Return how many bytes of each stripe's device the chunk occupies."""
        n = len(self.stripes)
        if not self.striped or n == 0:
            return self.length
        groups = n // max(1, self.sub_stripes) if self.type & BTRFS_BLOCK_GROUP_RAID10 else n
        return self.length // max(1, groups)


@dataclass(slots=True)
class ChunkMap:
    """The chunks of one filesystem, sorted by logical address, seen from device ``devid``."""

    devid: int
    chunks: list[Chunk] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)

    def add(self, chunk: Chunk) -> bool:
        """Insert ``chunk`` unless it overlaps a known one; return True when it was added."""
        if chunk.length <= 0 or len(self.chunks) >= MAX_CHUNKS:
            return False
        i = bisect.bisect_right(self._starts, chunk.logical)
        if i > 0 and self.chunks[i - 1].end > chunk.logical:
            return self.chunks[i - 1] == chunk
        if i < len(self.chunks) and self.chunks[i].logical < chunk.end:
            return False
        self.chunks.insert(i, chunk)
        self._starts.insert(i, chunk.logical)
        return True

    def find(self, logical: int) -> Chunk | None:
        """Return the chunk that contains ``logical`` or None."""
        i = bisect.bisect_right(self._starts, logical) - 1
        if i >= 0 and logical < self.chunks[i].end:
            return self.chunks[i]
        return None

    def copies(self, logical: int, length: int) -> list[tuple[Extent, ...]]:
        """Return, per copy stored on this device, the physical extents of ``[logical, logical + length)``.

        Empty when the range is not (entirely) inside one chunk, is on another device only, or uses RAID5/6.
        """
        chunk = self.find(logical)
        if chunk is None or logical + length > chunk.end or chunk.parity or length <= 0:
            return []
        rel = logical - chunk.logical
        if not chunk.striped:
            return [(Extent(s.offset + rel, length),) for s in chunk.stripes if s.devid == self.devid]
        return self._striped(chunk, rel, length)

    def _striped(self, chunk: Chunk, rel: int, length: int) -> list[tuple[Extent, ...]]:
        """Map a range of a RAID0/RAID10 chunk: pieces of ``stripe_len`` rotate over the stripe groups."""
        slen = chunk.stripe_len
        if slen <= 0:
            return []
        n = len(chunk.stripes)
        sub = max(1, chunk.sub_stripes) if chunk.type & BTRFS_BLOCK_GROUP_RAID10 else 1
        groups = max(1, n // sub)
        copies: list[list[Extent]] = [[] for _ in range(sub)]
        pos = rel
        end = rel + length
        while pos < end:
            nr = pos // slen
            within = pos % slen
            n_piece = min(slen - within, end - pos)
            group = nr % groups
            row = nr // groups
            for k in range(sub):
                s = chunk.stripes[group * sub + k]
                if s.devid != self.devid:
                    return []  # part of the range lives on another device: not readable here
                copies[k].append(Extent(s.offset + row * slen + within, n_piece))
            pos += n_piece
        return [tuple(c) for c in copies]

    def primary(self, logical: int, length: int) -> tuple[Extent, ...] | None:
        """Return the physical extents of the first copy of a logical range, or None when unmapped."""
        cps = self.copies(logical, length)
        return cps[0] if cps else None

    def stripe_ranges(self) -> list[tuple[Chunk, int, Extent]]:
        """Return ``(chunk, stripe index, physical extent)`` for every stripe of every chunk on this device."""
        out: list[tuple[Chunk, int, Extent]] = []
        for ch in self.chunks:
            if ch.parity:
                continue
            span = ch.stripe_length()
            for i, s in enumerate(ch.stripes):
                if s.devid == self.devid:
                    out.append((ch, i, Extent(s.offset, span)))
        return out

"""Blocks no structure owns: free blocks per group, allocated blocks nothing refers to, and the bytes of the region past the filesystem's last block."""

from __future__ import annotations

import hashlib

from imgdiff.formats.ext4.common import READ_CHUNK
from imgdiff.formats.ext4.volume import Volume
from imgdiff.model import Extent, Field, Node


def free_node(vol: Volume, g: int) -> Node | None:
    runs = vol._group_runs(g, False)
    if not runs:
        return None
    exts = tuple(Extent(vol.abs(s), (e - s) * vol.bs) for s, e in runs)
    h = hashlib.sha256()
    nz = 0
    total = 0
    for ext in exts:
        pos = ext.offset
        while pos < ext.end:
            n = min(READ_CHUNK, ext.end - pos)
            chunk = vol.ctx.read(pos, n)
            h.update(chunk)
            nz += n - chunk.count(0)
            pos += n
        total += ext.length
    disp = f"{total // vol.bs} free blocks, " + ("all zero" if nz == 0 else f"{nz} non-zero bytes")
    return Node(kind="ext4.free", key=f"free:{g}", label=f"free blocks of group {g}", extents=exts,
                fields=(Field("unused", "sha256:" + h.hexdigest()[:16], exts, disp),), attrs={"group": g})

def unowned_node(vol: Volume, g: int) -> Node | None:
    runs = vol._group_runs(g, True)
    if not runs:
        return None
    exts = tuple(Extent(vol.abs(s), (e - s) * vol.bs) for s, e in runs)
    msg = f"group {g}: {sum(e - s for s, e in runs)} blocks are marked in use but no inode or table owns them"
    return Node(kind="ext4.unowned", key=f"unowned:{g}", label=f"allocated blocks nothing refers to (group {g})",
                extents=exts, raw=True, attrs={"group": g}, errors=[msg])

def beyond_node(vol: Volume) -> Node | None:
    if vol.size <= vol.fs_bytes:
        return None
    ext = Extent(vol.base + vol.fs_bytes, vol.size - vol.fs_bytes)
    h = hashlib.sha256()
    nz = 0
    pos = ext.offset
    while pos < ext.end:
        n = min(READ_CHUNK, ext.end - pos)
        chunk = vol.ctx.read(pos, n)
        h.update(chunk)
        nz += n - chunk.count(0)
        pos += n
    return Node(kind="ext4.beyond_end", key="beyond", label="space after the last filesystem block",
                extents=(ext,), fields=(Field("unused", "sha256:" + h.hexdigest()[:16], (ext,),
                                              f"{ext.length} bytes, {nz} non-zero"),))

"""Space no file or directory owns: free, lost and bad clusters, and the bytes after the last cluster.

References:
    Microsoft FAT specification (fatgen103), section 3.5 (data region, CountofClusters) and section 4 (free entry
    0, bad-cluster mark).
"""

from __future__ import annotations

import functools

from imgdiff.formats.vfat.volume import Volume
from imgdiff.model import Field, Node


def free_node(vol: Volume) -> Node | None:
    """Return the clusters no chain claimed: ``unused`` (free in the FAT), ``lost`` (allocated) and ``bad``."""
    fat, owner, bad = vol.fat, vol.owner, vol.bad
    mask = 0x0FFFFFFF if vol.geo.fat_type == "FAT32" else 0xFFFF
    runs: dict[str, list[list[int]]] = {"unused": [], "lost": [], "bad": []}
    for n in range(2, vol.hi):
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
        exts = vol.clip(vol.cluster_ext(lst))
        if not exts:
            continue
        count = sum(r[1] for r in lst)
        what = {
            "unused": "free clusters",
            "lost": "allocated clusters no file or directory reaches",
            "bad": "clusters marked bad",
        }[name]
        fields.extend(vol.area(name, exts, functools.partial(clusters_text, vol.csize, what)))
        if name == "lost":
            vol.errors.append(f"{count} allocated cluster(s) belong to no file or directory")
    if not fields:
        return None
    exts = vol.clip(sorted(e for f in fields for e in f.extents))
    return Node(kind="vfat.free", key="free", label="free clusters", extents=exts, fields=tuple(fields))


def tail_node(vol: Volume) -> Node | None:
    """Return the data region after the last whole cluster and the region bytes after BPB_TotSec."""
    g = vol.geo
    fields: list[Field] = []
    start = vol.data_off + g.clusters * vol.csize
    fs_end = vol.base + g.tot_sec * g.bps
    inside = vol.ext(start, fs_end - start)
    fields.extend(vol.area("unused", inside, lambda n: f"{n} bytes of data region after the last whole cluster"))
    outside = vol.ext(fs_end, vol.end - fs_end)
    fields.extend(
        vol.area("outside", outside, lambda n: f"{n} bytes after BPB_TotSec (not part of the filesystem)")
    )
    if not fields:
        return None
    exts = vol.clip(e for f in fields for e in f.extents)
    return Node(kind="vfat.tail", key="tail", label="after the last cluster", extents=exts, fields=tuple(fields))


def clusters_text(csize: int, what: str, n: int) -> str:
    """Return the display of an area of ``n`` bytes counted in clusters."""
    return f"{n // csize} {what}"

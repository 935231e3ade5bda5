"""FAT checks for the vfat rules: time-zone shifts, build-clock stamps, relocated but equal files, entry order.

The checks look at both parsed trees (:attr:`ExplainContext.tree_a`/``tree_b``) through an index of node paths
(``"/".join(key chain)``, the same string as :attr:`Difference.node_path`), so they compare the raw FAT date and
time words of the A and B entry instead of parsing display strings.  Verdicts that depend on all differences of a
filesystem (are *all* time deltas whole hours?) are computed once per scope and cached in ``ctx.cache``.

References:
    Microsoft FAT specification (fatgen103), section 6: DIR_CrtTime/DIR_CrtDate/DIR_WrtTime/DIR_WrtDate/
    DIR_LstAccDate are local-time DOS date/time words (2-second resolution, no time zone).
"""

from __future__ import annotations

import re

from imgdiff.formats.vfat import dos_seconds
from imgdiff.model import Change, Difference, Node
from imgdiff.ruleset.predicates import ExplainContext, predicate

TIME_FIELDS = {
    "DIR_CrtTimeTenth": "crt",
    "DIR_CrtTime": "crt",
    "DIR_CrtDate": "crt",
    "DIR_WrtTime": "wrt",
    "DIR_WrtDate": "wrt",
    "DIR_LstAccDate": "acc",
}
"""Directory entry time fields and the timestamp each belongs to."""
GEOMETRY_FIELDS = {
    "BPB_BytsPerSec",
    "BPB_SecPerClus",
    "BPB_RsvdSecCnt",
    "BPB_NumFATs",
    "BPB_RootEntCnt",
    "BPB_TotSec16",
    "BPB_FATSz16",
    "BPB_TotSec32",
    "BPB_FATSz32",
    "BPB_RootClus",
}
MAX_TZ_SHIFT = 15 * 3600
"""Largest UTC offset difference accepted as a time-zone shift (UTC-12 .. UTC+14, plus DST)."""
BUILD_WINDOW = 600
"""Entries stamped within this many seconds of each other in one image count as one build run."""
MIN_TZ_ENTRIES = 3
"""Fewer file/directory entries than this cannot show that *every* entry time moved (time zone, build clock)."""


def _index(ctx: ExplainContext) -> tuple[dict[str, Node], dict[str, Node]]:
    """Return ``{node path: node}`` for the vfat nodes of tree A and tree B (built once per comparison)."""
    cached = ctx.cache.get("vfat_index")
    if cached is None:
        cached = (_paths(ctx.tree_a), _paths(ctx.tree_b))
        ctx.cache["vfat_index"] = cached
    return cached  # type: ignore[no-any-return]


def _paths(root: Node | None) -> dict[str, Node]:
    out: dict[str, Node] = {}
    if root is None:
        return out
    for keys, node in root.walk():
        if node.kind.startswith("vfat"):
            out["/".join(keys)] = node
    return out


def _int(node: Node, name: str) -> int | None:
    f = node.field_named(name)
    return f.value if f is not None and isinstance(f.value, int) else None


def _stamp(node: Node, which: str) -> int | None:
    """Return one timestamp of a directory entry in seconds since 1980 (local time), or None if invalid."""
    if which == "acc":
        d = _int(node, "DIR_LstAccDate")
        return None if d is None else dos_seconds(d, 0)
    d = _int(node, "DIR_CrtDate" if which == "crt" else "DIR_WrtDate")
    t = _int(node, "DIR_CrtTime" if which == "crt" else "DIR_WrtTime")
    if d is None or t is None:
        return None
    return dos_seconds(d, t)


def _pair(d: Difference, ctx: ExplainContext) -> tuple[Node, Node] | None:
    ia, ib = _index(ctx)
    na, nb = ia.get(d.node_path), ib.get(d.node_path)
    if na is None or nb is None:
        return None
    return na, nb


def _delta(d: Difference, ctx: ExplainContext) -> int | None:
    """Return B minus A of the timestamp a time-field difference belongs to, in seconds."""
    which = TIME_FIELDS.get(d.field)
    pair = _pair(d, ctx)
    if which is None or pair is None:
        return None
    a, b = _stamp(pair[0], which), _stamp(pair[1], which)
    if a is None or b is None:
        return None
    return b - a


def _whole_hours(delta: int) -> bool:
    return delta != 0 and delta % 3600 == 0 and abs(delta) <= MAX_TZ_SHIFT


def _entry_pairs(ctx: ExplainContext, scope: str) -> list[tuple[Node, Node]]:
    """Return ``(A entry, B entry)`` for every file and directory entry (dot entries too) present in both images.

    Only the entries mtools writes with a time (files, directories and their "." / ".." entries) count; the
    volume label is mkfs.fat's and has its own rule.
    """
    key = f"vfat_pairs:{scope}"
    cached = ctx.cache.get(key)
    if cached is None:
        ia, ib = _index(ctx)
        prefix = scope + "/"
        cached = []
        for path, na in ia.items():
            if na.kind != "vfat.dirent" or na.attrs.get("file_type") not in ("file", "dir"):
                continue
            if not path.startswith(prefix):
                continue
            nb = ib.get(path)
            if nb is not None and nb.kind == "vfat.dirent":
                cached.append((na, nb))
        ctx.cache[key] = cached
    return cached  # type: ignore[no-any-return]


def _scope_tz(ctx: ExplainContext, scope: str) -> bool:
    """Return True when the filesystem's entry times were all written in another time zone.

    mtools converts every time it writes (the source mtime with ``mcopy -m``, else the clock or
    SOURCE_DATE_EPOCH) to local time, so a build in another zone moves the creation and write time of *every*
    file and directory entry (dot entries included) by the same whole number of hours (two offsets one hour
    apart across a DST change), keeps DIR_CrtTimeTenth, and moves access dates by at most a day.  One entry whose
    time did not move, a delta that is not whole hours, or fewer than :data:`MIN_TZ_ENTRIES` entries, and it is
    not a time-zone shift (one file's mtime an hour later is FAT005's).
    """
    key = f"vfat_tz:{scope}"
    if key not in ctx.cache:
        ctx.cache[key] = _tz_verdict(_entry_pairs(ctx, scope))
    return bool(ctx.cache[key])


def _tz_verdict(pairs: list[tuple[Node, Node]]) -> bool:
    shifts: set[int] = set()
    moved = 0
    for na, nb in pairs:
        entry_moved = False
        for which in ("crt", "wrt"):
            a, b = _stamp(na, which), _stamp(nb, which)
            if a is None or b is None:
                continue
            if b == a or not _whole_hours(b - a):
                return False  # an entry time that stayed, or moved by something else than whole hours
            shifts.add(b - a)
            entry_moved = True
        if _int(na, "DIR_CrtTimeTenth") != _int(nb, "DIR_CrtTimeTenth"):
            return False
        a, b = _stamp(na, "acc"), _stamp(nb, "acc")
        if a is not None and b is not None and abs(b - a) > 86400:
            return False
        moved += entry_moved
    if moved < MIN_TZ_ENTRIES or not shifts:
        return False
    return len(shifts) == 1 or (len(shifts) == 2 and max(shifts) - min(shifts) == 3600)


@predicate
def vfat_whole_hour_shift(d: Difference, ctx: ExplainContext) -> bool:
    """Return True for an entry time of a filesystem whose every entry time moved by the same whole hours."""
    if d.kind != "vfat.dirent" or d.field not in TIME_FIELDS or d.change != Change.MODIFIED:
        return False
    if d.attrs.get("file_type") not in ("file", "dir") or not _scope_tz(ctx, d.scope):
        return False
    delta = _delta(d, ctx)
    if delta is None:
        return False
    return abs(delta) <= 86400 if TIME_FIELDS[d.field] == "acc" else _whole_hours(delta)


def _scope_build_clock(ctx: ExplainContext, scope: str) -> bool:
    """Return True when every entry of each image was stamped by the clock of one build run.

    Without ``-m`` and without SOURCE_DATE_EPOCH, mtools stamps every entry it creates (files, directories and
    their dot entries) with time(): within one image all creation and write times fall into one short window
    (:data:`BUILD_WINDOW`), and in the other build every one of them is different.  An entry whose times did
    not change, or a spread of stamps wider than one run, means the times came from somewhere else (source
    mtimes: FAT004/FAT005).
    """
    key = f"vfat_clock:{scope}"
    if key not in ctx.cache:
        pairs = _entry_pairs(ctx, scope)
        stamps: dict[str, list[int]] = {"a": [], "b": []}
        ok = len(pairs) >= MIN_TZ_ENTRIES
        for na, nb in pairs if ok else ():
            for which in ("crt", "wrt"):
                a, b = _stamp(na, which), _stamp(nb, which)
                if a is None or b is None or a == b:
                    ok = False
                    break
                stamps["a"].append(a)
                stamps["b"].append(b)
            if not ok:
                break
        ok = ok and all(stamps.values()) and all(max(v) - min(v) <= BUILD_WINDOW for v in stamps.values())
        ctx.cache[key] = ok
    return bool(ctx.cache[key])


@predicate
def vfat_build_clock(d: Difference, ctx: ExplainContext) -> bool:
    """Return True for entry times stamped from the build clock: every entry differs, one run each."""
    if d.kind != "vfat.dirent" or d.field not in TIME_FIELDS or d.change != Change.MODIFIED:
        return False
    return d.attrs.get("file_type") in ("file", "dir") and _scope_build_clock(ctx, d.scope)


def _files(ctx: ExplainContext) -> tuple[dict[str, Node], dict[str, Node]]:
    """Return ``{path: vfat.file node}`` of both trees, keyed by (scope path, file path)."""
    cached = ctx.cache.get("vfat_files")
    if cached is None:
        ia, ib = _index(ctx)
        cached = (
            {str(n.attrs.get("path")): n for n in ia.values() if n.kind == "vfat.file"},
            {str(n.attrs.get("path")): n for n in ib.values() if n.kind == "vfat.file"},
        )
        ctx.cache["vfat_files"] = cached
    return cached  # type: ignore[no-any-return]


@predicate
def vfat_same_content(d: Difference, ctx: ExplainContext) -> bool:
    """Return True when the file ``d`` belongs to has the same size and content (SHA-256) in A and B."""
    path = d.attrs.get("path")
    if not path or not d.kind.startswith("vfat."):
        return False
    fa, fb = _files(ctx)
    a, b = fa.get(str(path)), fb.get(str(path))
    if a is None or b is None:
        return False
    da, db = a.field_named("data"), b.field_named("data")
    return da is not None and db is not None and da.value == db.value and a.attrs.get("size") == b.attrs.get("size")


@predicate
def vfat_content_changed(d: Difference, ctx: ExplainContext) -> bool:
    """Return True when the file ``d`` belongs to exists in both images with different content or size."""
    path = d.attrs.get("path")
    if not path:
        return False
    fa, fb = _files(ctx)
    return str(path) in fa and str(path) in fb and not vfat_same_content(d, ctx)


def _geometry_differs(ctx: ExplainContext, scope: str) -> bool:
    key = f"vfat_geometry:{scope}"
    if key not in ctx.cache:
        ctx.cache[key] = any(
            x.scope == scope and x.kind == "vfat.boot_sector" and x.field in GEOMETRY_FIELDS for x in ctx.differences
        )
    return bool(ctx.cache[key])


@predicate
def vfat_entry_order(d: Difference, ctx: ExplainContext) -> bool:
    """Return True for a directory entry stored in another slot, or an equal file given other clusters.

    Both come from the order in which entries were written (and clusters allocated), provided the volume
    geometry is the same (otherwise everything after the FATs moves and the geometry rule explains it).
    """
    if not d.kind.startswith("vfat.") or _geometry_differs(ctx, d.scope):
        return False
    if d.kind in ("vfat.dirent", "vfat.lfn") and d.change == Change.MOVED:
        # another slot in its directory; the same slot of a directory stored elsewhere is that directory's move
        pair = _pair(d, ctx)
        return pair is None or pair[0].attrs.get("slot") != pair[1].attrs.get("slot")
    if d.kind == "vfat.dirent" and d.change == Change.MODIFIED:
        if d.field in ("DIR_FstClusLO", "DIR_FstClusHI"):
            if vfat_after_added_path(d, ctx) or vfat_after_resized_file(d, ctx):
                return False  # allocation shifted by a path on one side only or a resized file before it
            return d.attrs.get("file_type") == "dir" or vfat_same_content(d, ctx)
        if d.field == "DIR_Name" and d.attrs.get("lfn"):
            # Same long name, other 8.3 alias (~1 / ~2 tails are numbered in creation order).
            return True
    return False


@predicate
def vfat_stale_bytes(d: Difference, ctx: ExplainContext) -> bool:
    """Return True for bytes no file owns that differ: free clusters, or the slack of a file equal in A and B."""
    if d.kind == "vfat.free" and d.field.startswith("unused"):
        # free on both sides at the same offsets, other bytes: not clusters that hold a file in the other image
        return d.change == Change.MODIFIED and d.extents_a == d.extents_b
    return d.kind == "vfat.file" and d.field == "slack" and vfat_same_content(d, ctx)


# ----------------------------------------------------------------------------------------------------------------
# Cluster allocation: which cause moved a first cluster, a FAT entry or a file's data.
#
# mtools allocates clusters in the order it writes, upwards from the next-free hint, so a path that exists on one
# side only (FAT010) or a file whose cluster count changed (FAT009) shifts the clusters of everything allocated
# after it.  A shift is folded into such a cause only when that cause's first cluster lies below the shifted
# value: the cause determines what came after it, nothing before it.

_FAT_FIELD = re.compile(r"^FAT\[(\d+)(?:(?:,|\.\.)(\d+))?\]$")


def _first_cluster(node: Node | None) -> int | None:
    """Return the first cluster of a directory entry or file node (DIR_FstClusHI:LO), or None."""
    if node is None:
        return None
    fc = node.attrs.get("first_cluster")
    if isinstance(fc, int):
        return fc
    lo, hi = _int(node, "DIR_FstClusLO"), _int(node, "DIR_FstClusHI")
    if lo is None:
        return None
    return lo | ((hi or 0) << 16)


Cause = tuple[int, str]
"""An allocation cause: (its first cluster, its path)."""


def _alloc_causes(ctx: ExplainContext, scope: str) -> tuple[list[Cause], list[Cause]]:
    """Return the (first cluster, path) of paths on one side only, and of files whose cluster count changed."""
    key = f"vfat_alloc:{scope}"
    cached = ctx.cache.get(key)
    if cached is None:
        ia, ib = _index(ctx)
        prefix = scope + "/"
        added: list[Cause] = []
        resized: list[Cause] = []
        for idx, other in ((ia, ib), (ib, ia)):
            for path, n in idx.items():
                if not path.startswith(prefix) or path in other:
                    continue
                if n.kind in ("vfat.dirent", "vfat.file") and not n.attrs.get("dot"):
                    fc = _first_cluster(n)
                    if fc is not None and fc >= 2:
                        added.append((fc, str(n.attrs.get("path"))))
        for path, na in ia.items():
            nb = ib.get(path)
            if na.kind != "vfat.file" or nb is None or not path.startswith(prefix):
                continue
            if na.attrs.get("clusters") != nb.attrs.get("clusters"):
                starts = [c for c in (_first_cluster(na), _first_cluster(nb)) if c is not None and c >= 2]
                if starts:
                    resized.append((min(starts), str(na.attrs.get("path"))))
        cached = (added, resized)
        ctx.cache[key] = cached
    return cached  # type: ignore[no-any-return]


def _dirents(ctx: ExplainContext, scope: str) -> dict[str, tuple[Node, Node]]:
    """Return ``{path inside the filesystem: (A entry, B entry)}`` of the entries present in both images."""
    key = f"vfat_dirents:{scope}"
    cached = ctx.cache.get(key)
    if cached is None:
        cached = {str(na.attrs.get("path")): (na, nb) for na, nb in _entry_pairs(ctx, scope)}
        ctx.cache[key] = cached
    return cached  # type: ignore[no-any-return]


def _moved_with_directory(d: Difference, ctx: ExplainContext) -> tuple[int, str] | None:
    """For an entry stored at other offsets but in the same slot of its directory, return (the directory's
    highest first cluster in A/B, its path) when that directory starts at another cluster; else None."""
    pair = _pair(d, ctx)
    if pair is None or pair[0].attrs.get("slot") != pair[1].attrs.get("slot"):
        return None
    parent = str(pair[0].attrs.get("dir") or pair[0].attrs.get("path", "")).rstrip("/")
    if d.kind == "vfat.lfn":  # a long-name slot: its short entry's directory
        owner = _dirents(ctx, d.scope).get(str(pair[0].attrs.get("path")))
        parent = str(owner[0].attrs.get("dir", "")).rstrip("/") if owner else ""
    if not parent:
        return None  # the root directory does not move
    dirent = _dirents(ctx, d.scope).get(parent)
    if dirent is None:
        return None
    fa, fb = _first_cluster(dirent[0]), _first_cluster(dirent[1])
    if fa is None or fb is None or fa == fb:
        return None
    return max(fa, fb), parent


def _shifted_clusters(d: Difference, ctx: ExplainContext) -> int | None:
    """Return the highest cluster number a difference is about, for allocation consequences; None if none.

    A FAT entry field names its clusters (``FAT[n]``, ``FAT[n,m]``, ``FAT[n..m]``); a first-cluster field and a
    relocated file use the first cluster on either side.
    """
    if d.kind == "vfat.fat":
        m = _FAT_FIELD.match(d.field)
        return None if m is None else int(m.group(2) or m.group(1))
    if d.kind in ("vfat.dirent", "vfat.file"):
        pair = _pair(d, ctx)
        if pair is None:
            return None
        firsts = [c for c in (_first_cluster(pair[0]), _first_cluster(pair[1])) if c is not None]
        return max(firsts) if firsts else None
    return None


def _allocation_follows(d: Difference, ctx: ExplainContext, causes: list[Cause]) -> bool:
    """True for an allocation consequence (FAT entry, first cluster, relocated equal file, free-space counters)
    of one of ``causes``: a FAT entry at or after a cause's first cluster, or another path's first cluster (or
    data) after it."""
    if not causes or not d.kind.startswith("vfat."):
        return False
    if d.kind in ("vfat.fsinfo", "vfat.backup_fsinfo"):
        return d.field in ("FSI_Free_Count", "FSI_Nxt_Free")
    if d.kind == "vfat.free":
        return d.field.startswith("unused")
    if d.kind in ("vfat.dirent", "vfat.lfn") and d.change == Change.MOVED:
        moved = _moved_with_directory(d, ctx)
        return moved is not None and any(start < moved[0] and cpath != moved[1] for start, cpath in causes)
    if d.kind == "vfat.dirent" and d.field not in ("DIR_FstClusLO", "DIR_FstClusHI"):
        return False
    if d.kind == "vfat.file" and d.field not in ("data", "slack", "excess"):
        return False
    if d.kind == "vfat.file" and d.change != Change.MOVED and not vfat_same_content(d, ctx):
        return False  # other bytes at the same place: the content's (FAT009), not the allocation's
    if d.kind not in ("vfat.fat", "vfat.dirent", "vfat.file"):
        return False
    top = _shifted_clusters(d, ctx)
    if top is None:
        return False
    if d.kind == "vfat.fat":  # an entry with another value (a field on one side only is another FAT size)
        return d.change == Change.MODIFIED and any(start <= top for start, _path in causes)
    path = str(d.attrs.get("path"))
    return any(start < top and cpath != path for start, cpath in causes)


@predicate
def vfat_after_added_path(d: Difference, ctx: ExplainContext) -> bool:
    """True for an allocation consequence of a path that exists on one side only (after its first cluster)."""
    return _allocation_follows(d, ctx, _alloc_causes(ctx, d.scope)[0])


@predicate
def vfat_after_resized_file(d: Difference, ctx: ExplainContext) -> bool:
    """True for an allocation consequence of a file whose cluster count changed (after its first cluster)."""
    return _allocation_follows(d, ctx, _alloc_causes(ctx, d.scope)[1])


@predicate
def vfat_geometry_layout(d: Difference, ctx: ExplainContext) -> bool:
    """True for what a different BPB geometry determines: structures stored at other offsets, not new values.

    FAT fields that exist on one side only (the FATs have another size), FAT/directory slack, entries and equal
    files stored at other offsets, the free and tail areas, the free-cluster count.  Not a FAT entry or a first
    cluster with another value (allocation), not a path on one side only (FAT010).
    """
    if not _geometry_differs(ctx, d.scope):
        return False
    if d.kind == "vfat.fat":
        return d.field == "unused" or d.change in (Change.ADDED, Change.REMOVED)
    if d.kind in ("vfat.dirent", "vfat.lfn", "vfat.deleted", "vfat.dir", "vfat.root_dir"):
        return d.change == Change.MOVED
    if d.kind in ("vfat.fsinfo", "vfat.backup_fsinfo"):
        return d.field == "FSI_Free_Count"
    if d.kind == "vfat.file":
        return vfat_same_content(d, ctx)
    return d.kind in ("vfat.free", "vfat.tail", "vfat.reserved")


@predicate
def vfat_parent_of_added_path(d: Difference, ctx: ExplainContext) -> bool:
    """True for the free slots of a directory that holds a path existing on one side only."""
    if d.kind not in ("vfat.dir", "vfat.root_dir") or not d.field.startswith("unused"):
        return False
    parents = {cpath.rsplit("/", 1)[0] or "/" for _start, cpath in _alloc_causes(ctx, d.scope)[0]}
    return str(d.attrs.get("path")) in parents


@predicate
def vfat_fat_unchanged(d: Difference, ctx: ExplainContext) -> bool:
    """True when no entry of any FAT copy of ``d``'s filesystem has another value (the hints then only reflect
    the history of writes, not the allocation)."""
    key = f"vfat_fat_changed:{d.scope}"
    if key not in ctx.cache:
        ctx.cache[key] = any(x.scope == d.scope and x.kind == "vfat.fat" for x in ctx.differences)
    return not ctx.cache[key]

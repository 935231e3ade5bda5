"""Directories: the fixed FAT12/16 root and cluster-chained directories, their 32-byte slots and long names.

Each directory is a ``vfat.dir`` (``vfat.root_dir`` for the fixed root) node keyed ``dir:<path>``; its slots are
``vfat.dirent`` nodes keyed by the entry's path (long name as stored), so the engine aligns entries by identity and
sees a changed entry order as a move.  The LFN slots of an entry are its ``vfat.lfn`` children (LDIR_Chksum declared
derived from the short name); LFN slots that belong to no short entry are orphan nodes, deleted slots are
``vfat.deleted`` nodes, and the free slots after the end marker are the directory's ``unused`` field.  Entries of
regular files build the file's node (:mod:`.files`) as they are read.

References:
    Microsoft FAT specification (fatgen103), section 6 (directory structure, DIR_Name[0] 0xE5/0x00/0x05, at most
    65,536 entries per directory) and section 7 (long names: LDIR_Ord, LDIR_Chksum, name units);
    Linux ``fs/fat/dir.c`` and ``fs/fat/namei_vfat.c`` (DIR_NTRes case bits, LFN checksum handling).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from imgdiff.formats.compiled import Compiled
from imgdiff.formats.vfat.c_vfat import (
    ATTR_DIRECTORY,
    ATTR_LONG_NAME,
    ATTR_LONG_NAME_MASK,
    ATTR_VOLUME_ID,
    DIR_ENTRY,
    DIR_ENTRY_SIZE,
    DIRENT_END,
    DIRENT_FREE,
    LAST_LONG_ENTRY,
    LDIR_ENTRY,
    MAX_DIR_ENTRIES,
    NTRES_LOWER_BASE,
    NTRES_LOWER_EXT,
)
from imgdiff.formats.vfat.files import file_node
from imgdiff.formats.vfat.values import (
    CODEPAGE,
    attr_display,
    dos_date,
    dos_datetime,
    join,
    lfn_checksum,
    lfn_text,
    short_name,
    text,
)
from imgdiff.formats.vfat.volume import Volume
from imgdiff.model import Derived, Extent, Field, Node, Value

C_DIR = Compiled(DIR_ENTRY)
C_LDIR = Compiled(LDIR_ENTRY)
_DIR_DECODE: Mapping[str, Callable[[Any], Value]] = {"DIR_Name": text}


@dataclass(slots=True)
class _Dir:
    """A directory waiting to be read: its path, its first cluster (0 = fixed root) and its owner id."""

    path: str
    cluster: int
    owner: int


def walk(vol: Volume) -> None:
    """Read every directory from the root, depth first in slot order (files are built as their entries are read)."""
    g = vol.geo
    root_oid = vol.owner_id("/")
    stack: list[_Dir] = [_Dir("/", g.root_clus if g.fat_type == "FAT32" else 0, root_oid)]
    while stack:
        d = stack.pop()
        sub = directory(vol, d)
        stack.extend(reversed(sub))


def dir_spans(vol: Volume, d: _Dir) -> tuple[list[Extent], list[Extent]]:
    """Return the slot spans of a directory (in order) and any clusters past the 65,536-entry limit."""
    g = vol.geo
    if d.cluster == 0:
        n = g.root_dir_sectors * g.bps
        return [Extent(vol.base + g.root_offset, n)], []
    runs = vol.chain(d.cluster, d.owner, f"directory {d.path}")
    spans = vol.cluster_ext(runs)
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
        vol.errors.append(f"directory {d.path}: more than {MAX_DIR_ENTRIES} entries; the rest is not read")
    return kept, excess


def directory(vol: Volume, d: _Dir) -> list[_Dir]:
    """Build the node of directory ``d`` with its entries; return its subdirectories, to be read next."""
    g = vol.geo
    vol.dirs += 1
    spans, excess = dir_spans(vol, d)
    fixed_root = d.cluster == 0
    kind = "vfat.root_dir" if fixed_root else "vfat.dir"
    node = Node(
        kind=kind,
        key=f"dir:{d.path}",
        label=f"directory {d.path}",
        extents=vol.clip(spans + excess),
        attrs={"path": d.path, "file_type": "dir"},
    )
    vol.nodes.append(node)
    # Slot offsets in order; the fixed root holds BPB_RootEntCnt slots, the rest of its sectors is unused.
    offsets: list[int] = []
    buf = bytearray()
    for e in spans:
        nslots = e.length // DIR_ENTRY_SIZE
        if fixed_root:
            nslots = min(nslots, g.root_ent_cnt)
        buf += vol.ctx.read(e.offset, nslots * DIR_ENTRY_SIZE)
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
            orphans(vol, node, d.path, pending, buf, keys)
            pending = []
            node.children.append(deleted_node(vol, d.path, i, off, buf, pos, attr))
            continue
        if attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
            if buf[pos] & LAST_LONG_ENTRY:
                orphans(vol, node, d.path, pending, buf, keys)
                pending = []
            pending.append((i, off))
            continue
        entry, sub = short_entry(vol, d, i, off, buf, pos, pending, node, keys)
        pending = []
        node.children.append(entry)
        if sub is not None:
            subdirs.append(sub)
    orphans(vol, node, d.path, pending, buf, keys)
    fields: list[Field] = []
    ue = vol.clip(sorted(unused))
    if ue:
        n = sum(e.length for e in ue)
        fields.append(Field("unused", n, ue, f"{n // DIR_ENTRY_SIZE} free slots after the end marker"))
    if excess:
        fields.extend(vol.area("excess", vol.clip(excess), lambda n: f"{n} bytes past 65,536 entries"))
    node.fields = tuple(fields)
    return subdirs


def unique(keys: set[str], key: str) -> str:
    """Return ``key``, or ``key#2``, ``key#3`` ... when a sibling has it already (duplicate names, hostile input)."""
    if key not in keys:
        keys.add(key)
        return key
    n = 2
    while f"{key}#{n}" in keys:
        n += 1
    keys.add(f"{key}#{n}")
    return f"{key}#{n}"


def dirent_fields(buf: bytearray, pos: int, off: int) -> list[Field]:
    """Return the fields of the short entry at ``buf[pos:]``, placed at ``off``."""
    (name, attr, ntres, tenth, ct, cd, ad, _hi, wt, wd, _lo, _size) = C_DIR.struct.unpack_from(buf, pos)
    shown: dict[str, str | None] = {
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
    return C_DIR.fields(buf, pos, off, decode=_DIR_DECODE, shown=shown)


def lfn_node(
    key: str,
    label: str,
    buf: bytearray,
    pos: int,
    off: int,
    short_ext: Extent | None,
    attrs: dict[str, Value],
) -> Node:
    """Return the node of the LFN slot at ``buf[pos:]`` (``short_ext``: the short name its LDIR_Chksum covers)."""
    raw = bytes(buf[pos : pos + 32])
    shown: dict[str, str | None] = {
        "LDIR_Name1": lfn_text(raw[1:11]),
        "LDIR_Name2": lfn_text(raw[14:26]),
        "LDIR_Name3": lfn_text(raw[28:32]),
        "LDIR_Ord": f"{raw[0] & 0x1F}{' (last)' if raw[0] & LAST_LONG_ENTRY else ''}",
    }
    node = Node(
        kind="vfat.lfn",
        key=key,
        label=label,
        extents=(Extent(off, 32),),
        fields=tuple(C_LDIR.fields(buf, pos, off, shown=shown)),
        attrs=attrs,
    )
    if short_ext is not None:
        node.derived = (Derived("LDIR_Chksum", covers=(short_ext,)),)
    return node


def orphans(
    vol: Volume,
    parent: Node,
    dpath: str,
    pending: list[tuple[int, int]],
    buf: bytearray,
    keys: set[str],
) -> None:
    """Attach LFN slots that belong to no short entry as their own nodes."""
    for i, off in pending:
        key = unique(keys, f"{join(dpath, '')}:orphan_lfn@{i}")
        parent.children.append(
            lfn_node(
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
        vol.errors.append(f"directory {dpath}: {len(pending)} long-name slot(s) without a matching short entry")


def deleted_node(vol: Volume, dpath: str, i: int, off: int, buf: bytearray, pos: int, attr: int) -> Node:
    """Return the node of deleted slot ``i`` (first byte 0xE5) of directory ``dpath``."""
    lfn = attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME
    key = f"{join(dpath, '')}:deleted@{i}"
    attrs: dict[str, Value] = {"path": dpath, "slot": i, "deleted": True}
    if lfn:
        n = lfn_node(key, f"deleted long-name slot {i} in {dpath}", buf, pos, off, None, attrs)
        n.kind = "vfat.deleted"
        return n
    fields = dirent_fields(buf, pos, off)
    return Node(
        kind="vfat.deleted",
        key=key,
        label=f"deleted entry {i} in {dpath}",
        extents=(Extent(off, 32),),
        fields=tuple(fields),
        attrs=attrs,
    )


def long_name(name11: bytes, pending: list[tuple[int, int]], buf: bytearray) -> str | None:
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
    name = lfn_text(bytes(units))
    return name or None


def short_entry(
    vol: Volume,
    d: _Dir,
    i: int,
    off: int,
    buf: bytearray,
    pos: int,
    pending: list[tuple[int, int]],
    dnode: Node,
    keys: set[str],
) -> tuple[Node, _Dir | None]:
    """Return the node of the short entry in slot ``i`` with its long-name slots, and the directory it opens."""
    g = vol.geo
    name11 = bytes(buf[pos : pos + 11])
    attr, ntres = buf[pos + 11], buf[pos + 12]
    hi, lo, fsize = struct.unpack_from("<H4xHI", buf, pos + 20)
    first = ((hi << 16) | lo) if g.fat_type == "FAT32" else lo
    sname = short_name(name11, ntres)
    lname = long_name(name11, pending, buf)
    if pending and lname is None:
        orphans(vol, dnode, d.path, pending, buf, keys)
        pending = []
    fields = dirent_fields(buf, pos, off)
    name = lname or sname
    attrs: dict[str, Value] = {"slot": i, "dir": d.path, "short_name": sname, "lfn": lname is not None}
    sub: _Dir | None = None
    data_ext: tuple[Extent, ...] = ()
    if attr & ATTR_VOLUME_ID and not attr & ATTR_DIRECTORY:
        key = unique(keys, ":volume_label")
        label = f"volume label entry {name11.decode(CODEPAGE).rstrip()!r}"
        attrs.update({"path": "", "file_type": "volume_label", "name": name11.decode(CODEPAGE).rstrip()})
        if d.path != "/":
            vol.errors.append(f"directory {d.path}: volume label entry outside the root directory")
    elif name11 in (b".          ", b"..         "):
        key = unique(keys, join(d.path, name11.decode("ascii").strip()))
        label = f"entry {key}"
        attrs.update({"path": key, "file_type": "dir", "name": name11.decode("ascii").strip(), "dot": True})
    else:
        path = join(d.path, name)
        key = unique(keys, path)
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
                vol.errors.append(f"directory {key}: DIR_FstClus is 0")
            else:
                sub = _Dir(key, first, vol.owner_id(key))
        else:
            data_ext = file_node(vol, key, first, fsize)
    exts: list[Extent] = [Extent(o, 32) for _i, o in pending] + [Extent(off, 32)]
    node = Node(kind="vfat.dirent", key=key, label=label, extents=tuple(exts), fields=tuple(fields), attrs=attrs)
    if data_ext:  # the size is the length of the file's data: whatever explains the data explains it
        node.derived = (Derived("DIR_FileSize", covers=data_ext),)
    name_ext = Extent(off, 11)
    for j, (si, so) in enumerate(pending):
        ordn = len(pending) - j
        node.children.append(
            lfn_node(
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

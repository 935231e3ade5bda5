"""Directory listings of the decoded directory table: headers, entries, and the walk that names every inode by path.

A directory inode points at its listing in the directory table (``start_block``/``offset``) and gives its length
(``file_size``, which counts 3 bytes more than the listing).  A listing is a sequence of runs: a
``squashfs_dir_header`` (``count`` = entries - 1, the inode table ``start_block`` of the run's inodes, the run's
base ``inode_number``) followed by ``squashfs_dir_entry`` s (``offset`` of the inode in that inode block, the
``inode_number`` delta, the entry ``type``, ``size`` = name length - 1, then the name).  mksquashfs sorts entries
by name and starts a new run every 256 entries or when the inode block changes.

Derived: a header's ``count`` (its entries), ``start_block`` (the stored inode blocks before), ``inode_number`` (the
first entry's inode number); an entry's ``offset`` (the decoded inode bytes before the inode), ``inode_number`` and
``type`` (the inode's fields), ``size`` (the name).  Names are causes.

References:
    squashfs-tools 4.5.1 ``squashfs_fs.h`` (``squashfs_dir_header``, ``squashfs_dir_entry``, ``SQUASHFS_DIR_COUNT``),
    ``mksquashfs.c`` ``add_dir`` / ``write_dir`` (run splitting, ``file_size`` + 3); Linux ``fs/squashfs/dir.c``
    ``squashfs_readdir``, ``fs/squashfs/namei.c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from imgdiff.formats.compiled import Compiled, Record
from imgdiff.formats.squashfs import c_squashfs as cs
from imgdiff.model import POSITION, Derived, Extent, Field, Node

C_HDR = Compiled(cs.squashfs_dir_header)
_ENT_DISPLAY = {"type": lambda v: cs.FILE_TYPES.get(v, "?")}
C_ENT = Compiled(cs.squashfs_dir_entry)
SQUASHFS_DIR_COUNT = 256
"""Entries per directory header at most."""
MAX_ENTRIES = 1 << 20
"""Entries of one directory at most."""


@dataclass(slots=True)
class DirHeader:
    """One run header of a listing."""

    off: int
    count: int
    start_block: int
    inode_number: int


@dataclass(slots=True)
class DirEntry:
    """One entry of a listing, with its run's values resolved."""

    off: int
    name: bytes
    header: int
    offset: int
    inode_number: int
    """The stored (relative) inode number."""
    type: int
    start_block: int
    """Inode block of the entry (from its run's header)."""
    number: int
    """Absolute inode number (header base + delta)."""

    @property
    def size(self) -> int:
        """Return the entry's stored length (fixed part plus name)."""
        return C_ENT.size + len(self.name)


@dataclass(slots=True)
class Listing:
    """A directory's parsed listing."""

    start: int
    length: int
    headers: list[DirHeader] = field(default_factory=list)
    entries: list[DirEntry] = field(default_factory=list)
    error: str = ""


def parse_listing(data: bytes, start: int, length: int) -> Listing:
    """Parse the listing stored at decoded bytes ``[start, start + length)`` of the directory table."""
    out = Listing(start, length)
    end = min(start + length, len(data))
    if start + length > len(data):
        out.error = f"directory listing at {start} runs past the directory table"
    pos = start
    while pos + C_HDR.size <= end and len(out.entries) < MAX_ENTRIES:
        h = C_HDR.unpack(data, pos)
        hdr = DirHeader(pos, h["count"], h["start_block"], h["inode_number"])
        if hdr.count >= SQUASHFS_DIR_COUNT:
            out.error = f"directory header at {pos} has count {hdr.count}"
            break
        out.headers.append(hdr)
        pos += C_HDR.size
        for _ in range(hdr.count + 1):
            if pos + C_ENT.size > end:
                out.error = f"directory entry at {pos} runs past its listing"
                return out
            e = C_ENT.unpack(data, pos)
            nlen = e["size"] + 1
            if pos + C_ENT.size + nlen > end:
                out.error = f"directory entry name at {pos} runs past its listing"
                return out
            name = data[pos + C_ENT.size : pos + C_ENT.size + nlen]
            out.entries.append(DirEntry(pos, name, len(out.headers) - 1, e["offset"], e["inode_number"], e["type"],
                                        hdr.start_block, (hdr.inode_number + e["inode_number"]) & 0xFFFFFFFF))
            pos += C_ENT.size + nlen
    if pos < end and not out.error:
        out.error = f"{end - pos} bytes after the last directory entry at {pos}"
    return out


@dataclass(slots=True)
class EntryCovers:
    """What one entry's derived fields depend on (the parser resolves the inode the entry points at)."""

    offset: tuple[Extent, ...] = ()
    inode_number: tuple[Extent, ...] = ()
    type: tuple[Extent, ...] = ()


def directory_node(lst: Listing, data: bytes, base: int, path: str, covers_hdr: Sequence[tuple[Extent, ...]],
                   covers_ent: Sequence[EntryCovers], first_number: Sequence[tuple[Extent, ...]]) -> Node:
    """Return the ``squashfs.directory`` node of a listing, with header and entry children.

    ``covers_hdr[i]`` is what header ``i``'s ``start_block`` depends on, ``first_number[i]`` the inode number field
    of its first entry's inode, ``covers_ent[j]`` what entry ``j`` depends on.
    """
    node = Node(kind="squashfs.directory", key=path, label=f"directory {path}",
                extents=(Extent(base + lst.start, lst.length),) if lst.length else (),
                attrs={"path": path, "file_type": "dir"})
    if lst.error:
        node.errors.append(lst.error)
    if lst.start:
        node.derived = (Derived(POSITION, covers=(Extent(base, lst.start),)),)
    by_header: dict[int, list[DirEntry]] = {}
    for e in lst.entries:
        by_header.setdefault(e.header, []).append(e)
    for i, h in enumerate(lst.headers):
        ents = by_header.get(i, [])
        span = (Extent(base + ents[0].off, ents[-1].off + ents[-1].size - ents[0].off),) if ents else ()
        hdr_derived = (
            Derived("count", covers=span),
            Derived("start_block", covers=covers_hdr[i] if i < len(covers_hdr) else ()),
            Derived("inode_number", covers=first_number[i] if i < len(first_number) else ()),
        )
        node.children.append(Node(kind="squashfs.dir_header", key=f"header:{i}", label=f"header {i}",
                                  extents=(Extent(base + h.off, C_HDR.size),),
                                  record=Record(C_HDR, data[h.off : h.off + C_HDR.size], base + h.off),
                                  derived=(*(x for x in hdr_derived if x.covers),
                                           Derived(POSITION, covers=(Extent(base, h.off),))),
                                  attrs={"path": path}))
    seen: dict[str, int] = {}
    for j, e in enumerate(lst.entries):
        name = e.name.decode("utf-8", "surrogateescape")
        n = seen.get(name, 0)
        seen[name] = n + 1
        key = name if n == 0 else f"{name}#{n}"
        at = base + e.off
        record = Record(C_ENT, data[e.off : e.off + C_ENT.size], at, display=_ENT_DISPLAY)
        fields = (Field.at("name", name, at + C_ENT.size, len(e.name)),)
        cov = covers_ent[j] if j < len(covers_ent) else EntryCovers()
        name_ext = (Extent(at + C_ENT.size, len(e.name)),)
        derived: list[Derived] = [Derived("size", covers=name_ext), Derived(POSITION, covers=(Extent(base, e.off),))]
        for fname, c in (("offset", cov.offset), ("inode_number", cov.inode_number), ("type", cov.type)):
            if c:
                derived.append(Derived(fname, covers=c))
        child_path = (path.rstrip("/") + "/" + name) if path != "/" else "/" + name
        node.children.append(Node(kind="squashfs.dirent", key=key, label=f"entry {name}",
                                  extents=(Extent(at, e.size),), fields=fields, record=record, derived=tuple(derived),
                                  attrs={"path": child_path, "dir": path,
                                         "file_type": cs.FILE_TYPES.get(e.type, "?")}))
    return node

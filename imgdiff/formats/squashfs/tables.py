"""Entries of the fragment, export (inode lookup), id and xattr tables, decoded, as nodes.

* fragment table: one ``squashfs_fragment_entry`` per fragment block (``start_block``: its stored position,
  derived from the stored bytes before it; ``size``: its stored length, derived from the block; ``unused``);
* export table (``-exports``, the default): for inode number ``n`` the ``squashfs_inode`` reference of its inode
  (derived: the inode table layout before that inode);
* id table: the uids and gids that inodes' ``uid``/``guid`` index (causes: the owners written);
* xattr id table: per distinct xattr set a reference into the xattr table, its ``count`` and ``size`` (derived);
  xattr table: the sets themselves, each entry ``squashfs_xattr_entry`` (``type`` = name prefix, ``size``), the name,
  ``squashfs_xattr_val`` (``vsize``) and the value; an out-of-line value (``SQUASHFS_XATTR_VALUE_OOL``) is an 8-byte
  reference to a value stored elsewhere in the table.

References:
    squashfs-tools 4.5.1 ``squashfs_fs.h`` (``squashfs_fragment_entry``, ``squashfs_xattr_entry``,
    ``squashfs_xattr_val``, ``squashfs_xattr_id``, ``squashfs_xattr_table``, ``SQUASHFS_XATTR_*``),
    ``mksquashfs.c`` ``write_fragment_table``, ``write_inode_lookup_table``, ``write_id_table``;
    ``xattr.c`` ``write_xattrs``, ``get_xattr_id``; Linux ``fs/squashfs/export.c``, ``fs/squashfs/id.c``,
    ``fs/squashfs/xattr.c``, ``fs/squashfs/xattr_id.c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgdiff.formats.compiled import Compiled, Record, blob_value
from imgdiff.formats.squashfs import c_squashfs as cs
from imgdiff.model import POSITION, Derived, Extent, Field, Node

C_FRAG = Compiled(cs.squashfs_fragment_entry)
C_LOOKUP = Compiled(cs.squashfs_lookup_entry)
C_XID = Compiled(cs.squashfs_xattr_id)
C_XENTRY = Compiled(cs.squashfs_xattr_entry)
C_XVAL = Compiled(cs.squashfs_xattr_val)
C_XTABLE = Compiled(cs.squashfs_xattr_table)
MAX_XATTRS = 1 << 16
_REF_DISPLAY = {"inode": lambda v: f"block {v >> 16}, offset {v & 0xFFFF}"}
"""Entries of one xattr set at most."""


def fragment_entries(data: bytes, count: int) -> list[tuple[int, int]]:
    """Return ``(start_block, size)`` of the first ``count`` fragment entries that the decoded table holds."""
    out: list[tuple[int, int]] = []
    for i in range(min(count, len(data) // C_FRAG.size)):
        v = C_FRAG.unpack(data, i * C_FRAG.size)
        out.append((v["start_block"], v["size"]))
    return out


def fragment_node(i: int, data: bytes, base: int, covers_start: Extent, covers_size: tuple[Extent, ...]) -> Node:
    """Return the ``squashfs.fragment`` node of fragment entry ``i``."""
    off = i * C_FRAG.size

    def size_text(v: int) -> str:
        n = v & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK
        return f"{n} bytes, {'uncompressed' if v & cs.SQUASHFS_COMPRESSED_BIT_BLOCK else 'compressed'}"

    record = Record(C_FRAG, data[off : off + C_FRAG.size], base + off, display={"size": size_text})
    return Node(kind="squashfs.fragment", key=f"frag:{i}", label=f"fragment {i}",
                extents=(Extent(base + off, C_FRAG.size),), record=record,
                derived=(Derived("start_block", covers=(covers_start,)), Derived("size", covers=covers_size)),
                attrs={"fragment": i})


def lookup_node(n: int, data: bytes, base: int, covers: tuple[Extent, ...], path: str | None) -> Node:
    """Return the ``squashfs.export_entry`` node of inode number ``n`` (entry ``n - 1``)."""
    off = (n - 1) * 8
    attrs: dict[str, object] = {"ino": n}
    if path is not None:
        attrs["path"] = path
    return Node(kind="squashfs.export_entry", key=f"ino:{n}", label=f"inode number {n}",
                extents=(Extent(base + off, 8),),
                record=Record(C_LOOKUP, data[off : off + 8], base + off, display=_REF_DISPLAY),
                derived=(Derived("inode", covers=covers),) if covers else (), attrs=attrs)  # type: ignore[arg-type]


def id_node(i: int, data: bytes, base: int) -> Node:
    """Return the ``squashfs.id`` node of id table entry ``i``."""
    off = 4 * i
    v = int.from_bytes(data[off : off + 4], "little")
    return Node(kind="squashfs.id", key=f"id:{i}", label=f"id {i}", extents=(Extent(base + off, 4),),
                fields=(Field.at("id", v, base + off, 4),), attrs={"index": i})


@dataclass(slots=True)
class XattrSet:
    """One xattr set of the xattr table (as the xattr id table points at it)."""

    index: int
    start: int
    """Decoded offset in the xattr table."""
    end: int
    entries: list[tuple[str, int, int, int]] = field(default_factory=list)
    """Per entry: full name, decoded offset of the entry, name length, value length (stored)."""
    ool: list[int] = field(default_factory=list)
    """Decoded offsets of out-of-line values this set refers to."""
    error: str = ""


def xattr_ids(data: bytes, count: int) -> list[dict[str, int]]:
    """Return the decoded ``squashfs_xattr_id`` entries."""
    return [C_XID.unpack(data, i * C_XID.size) for i in range(min(count, len(data) // C_XID.size))]


def xattr_set(data: bytes, index: int, start: int, count: int) -> XattrSet:
    """Parse the xattr set of ``count`` entries at decoded offset ``start`` of the xattr table."""
    s = XattrSet(index, start, start)
    pos = start
    for _ in range(min(count, MAX_XATTRS)):
        if pos + 4 > len(data):
            s.error = f"xattr entry at {pos} runs past the xattr table"
            break
        e = C_XENTRY.unpack(data, pos)
        name = data[pos + 4 : pos + 4 + e["size"]]
        vpos = pos + 4 + e["size"]
        if vpos + 4 > len(data):
            s.error = f"xattr value at {vpos} runs past the xattr table"
            break
        vsize = C_XVAL.unpack(data, vpos)["vsize"]
        if vpos + 4 + vsize > len(data):
            s.error = f"xattr value at {vpos} runs past the xattr table"
            break
        prefix = cs.XATTR_PREFIXES.get(e["type"] & cs.SQUASHFS_XATTR_PREFIX_MASK, "?.")
        full = prefix + name.decode("utf-8", "surrogateescape")
        s.entries.append((full, pos, e["size"], vsize))
        if e["type"] & cs.SQUASHFS_XATTR_VALUE_OOL and vsize == 8:
            s.ool.append(int.from_bytes(data[vpos + 4 : vpos + 12], "little"))
        pos = vpos + 4 + vsize
    s.end = pos
    return s


def xattr_set_node(s: XattrSet, data: bytes, base: int, key: str, paths: tuple[str, ...]) -> Node:
    """Return the ``squashfs.xattr_set`` node of ``s``: per entry its type, size, name, vsize and value."""
    fields: list[Field] = []
    derived: list[Derived] = []
    seen: dict[str, int] = {}
    for full, pos, nlen, vsize in s.entries:
        n = seen.get(full, 0)
        seen[full] = n + 1
        p = full if n == 0 else f"{full}#{n}"
        at = base + pos
        typ = int.from_bytes(data[pos : pos + 2], "little")
        fields.append(Field.at(f"{p} type", typ, at, 2, "out-of-line value" if typ & cs.SQUASHFS_XATTR_VALUE_OOL else None))
        fields.append(Field.at(f"{p} size", nlen, at + 2, 2))
        fields.append(Field.at(f"{p} name", full, at + 4, nlen))
        vpos = pos + 4 + nlen
        fields.append(Field.at(f"{p} vsize", vsize, base + vpos, 4))
        value = data[vpos + 4 : vpos + 4 + vsize]
        fields.append(Field.at(f"{p} value", blob_value(value), base + vpos + 4, vsize))
        derived.append(Derived(f"{p} size", covers=(Extent(at + 4, nlen),)))
        derived.append(Derived(f"{p} vsize", covers=(Extent(base + vpos + 4, vsize),)))
    if s.start:
        derived.append(Derived(POSITION, covers=(Extent(base, s.start),)))
    attrs: dict[str, object] = {"xattr_id": s.index}
    if paths:
        attrs["path"] = paths[0]
        if len(paths) > 1:
            attrs["paths"] = paths
    node = Node(kind="squashfs.xattr_set", key=key, label=f"xattrs of {paths[0]}" if paths else f"xattr set {s.index}",
                extents=(Extent(base + s.start, s.end - s.start),) if s.end > s.start else (),
                fields=tuple(fields), derived=tuple(derived), attrs=attrs)  # type: ignore[arg-type]
    if s.error:
        node.errors.append(s.error)
    return node


def xattr_id_node(i: int, data: bytes, base: int, covers_ref: tuple[Extent, ...], covers_set: tuple[Extent, ...],
                  paths: tuple[str, ...]) -> Node:
    """Return the ``squashfs.xattr_id`` node of xattr id ``i``."""
    off = i * C_XID.size
    fields = C_XID.fields(data, off, base + off,
                          display={"xattr": lambda v: f"block {v >> 16}, offset {v & 0xFFFF}"})
    derived = [Derived("xattr", covers=covers_ref), Derived("count", covers=covers_set), Derived("size", covers=covers_set)]
    attrs: dict[str, object] = {"xattr_id": i}
    if paths:
        attrs["path"] = paths[0]
    return Node(kind="squashfs.xattr_id", key=f"xid:{i}", label=f"xattr id {i}", extents=(Extent(base + off, C_XID.size),),
                fields=tuple(fields), derived=tuple(d for d in derived if d.covers), attrs=attrs)  # type: ignore[arg-type]


def xattr_table_header_node(raw: bytes, fs: int, pos: int, covers_start: Extent, covers_ids: tuple[Extent, ...]) -> Node:
    """Return the ``squashfs.xattr_table_header`` node (``squashfs_xattr_table`` at ``xattr_id_table_start``)."""
    fields = C_XTABLE.fields(raw, 0, fs + pos)
    return Node(kind="squashfs.xattr_table_header", key="header", label="xattr table header",
                extents=(Extent(fs + pos, C_XTABLE.size),), fields=tuple(fields),
                derived=(Derived("xattr_table_start", covers=(covers_start,)), Derived("xattr_ids", covers=covers_ids),
                         Derived(POSITION, covers=(covers_start,))))

"""Path tables: the type L table, the type M table (big-endian copy) and the optional copies, per tree.

A path table lists every directory (identifier, extent, parent number) and is computed from the directory
hierarchy, so each record is declared derived: ``location_of_extent`` from the directory record that places the
directory, the identifier from the record's File Identifier.  The M table and the optional tables restate the
first type L table field by field.  Records are keyed by the directory path they describe.

References:
    ECMA-119 6.9 (Path Table: ordering, type L/M), 9.4 (Path Table Record), 8.4.14-8.4.17 (locations in the
    descriptor); libisofs ecma119.c write_path_table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from imgdiff.formats.compiled import Compiled, Record
from imgdiff.formats.iso9660.c_iso9660 import PATH_TABLE_RECORD, SECTOR
from imgdiff.formats.iso9660.tree import Tree
from imgdiff.formats.iso9660.values import ucs2
from imgdiff.model import Derived, Extent, Field, Node

C_L = Compiled(PATH_TABLE_RECORD, "<")
C_M = Compiled(PATH_TABLE_RECORD, ">")
FIXED = C_L.size
MAX_TABLE = 64 << 20
"""Largest path table read."""


@dataclass(slots=True)
class TableRef:
    """One path table a descriptor points to."""

    key: str
    label: str
    offset: int
    size: int
    big_endian: bool
    copy_of: str | None = None
    """Key of the table this one restates (the first type L table), or None for that table itself."""


@dataclass(slots=True)
class PathRecord:
    """One path table record: where, which directory, and its identifier span."""

    offset: int
    length: int
    path: str
    number: int


@dataclass(slots=True)
class Table:
    """A parsed path table: its records in order and the bytes they take."""

    ref: TableRef
    records: list[PathRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_table(ref: TableRef, read: Callable[[int, int], bytes], tree: Tree, joliet: bool) -> Table:
    """Return the records of one table, each resolved to a directory path (by its extent, else its number)."""
    table = Table(ref)
    if ref.size > MAX_TABLE:
        table.errors.append(f"{ref.label}: size {ref.size} is implausible")
        return table
    data = read(ref.offset, ref.size)
    comp = C_M if ref.big_endian else C_L
    by_lba = tree.dir_of_lba()
    paths: list[str] = []
    pos = 0
    number = 0
    keys: set[str] = set()
    while pos + FIXED <= len(data):
        nlen, _ear, loc, parent = comp.struct.unpack_from(data, pos)
        if nlen == 0:
            table.errors.append(f"{ref.label}: record {number + 1} has an empty identifier")
            break
        length = FIXED + nlen + (nlen % 2)
        if pos + length > len(data):
            table.errors.append(f"{ref.label}: record {number + 1} runs past the table")
            break
        number += 1
        ident = data[pos + FIXED : pos + FIXED + nlen]
        path = by_lba.get(loc)
        if path is None:
            name = ucs2(ident) if joliet else ident.decode("latin-1")
            base = paths[parent - 1] if 1 <= parent <= len(paths) else "?"
            path = "/" if number == 1 else f"{base.rstrip('/')}/{name}"
        key = path if path not in keys else f"{path}#{number}"
        keys.add(key)
        paths.append(path)
        table.records.append(PathRecord(ref.offset + pos, length, key, number))
        pos += length
    return table


def table_node(table: Table, read: Callable[[int, int], bytes], tree: Tree, first: Table | None,
               detail: bool, joliet: bool) -> Node:
    """Return the node of one table; records (with their copy declarations) only when ``detail``."""
    ref = table.ref
    node = Node(kind="iso9660.path_table", key=ref.key, label=ref.label, extents=(Extent(ref.offset, ref.size),),
                attrs={"type": "M" if ref.big_endian else "L", "tree": "joliet" if joliet else "primary"})
    node.errors.extend(table.errors)
    used = sum(r.length for r in table.records)
    if not detail:
        node.fields = (Field("records", ref.size, (Extent(ref.offset, ref.size),),
                             f"{len(table.records)} records"),)
        return node
    data = read(ref.offset, ref.size)
    comp = C_M if ref.big_endian else C_L
    first_by_key = {r.path: r for r in first.records} if first is not None and first is not table else {}
    for r in table.records:
        rel = r.offset - ref.offset
        fixed = Record(comp, data[rel : rel + FIXED], r.offset)  # the 8 fixed bytes: built only where they differ
        fields: list[Field] = []
        nlen = data[rel]
        ident = data[rel + FIXED : rel + FIXED + nlen]
        name = ucs2(ident) if joliet else ident.decode("latin-1")
        fields.append(Field("directory_identifier", name, (Extent(r.offset + FIXED, nlen),)))
        if nlen % 2:
            fields.append(Field("padding_field", data[rel + FIXED + nlen], (Extent(r.offset + FIXED + nlen, 1),)))
        child = Node(kind="iso9660.path_table_record", key=r.path, label=f"record {r.number} ({r.path})",
                     extents=(Extent(r.offset, r.length),), fields=tuple(fields), record=fixed,
                     attrs={"path": r.path.split("#")[0], "number": r.number})
        src = first_by_key.get(r.path)
        if src is not None:  # a copy of the first L table's record (same layout, maybe other byte order)
            child.derived = (*(Derived(m[0], covers=(Extent(src.offset + m[1], m[2]),)) for m in comp.members),
                             *(Derived(f.name, covers=(f.extents[0].shifted(src.offset - r.offset),))
                               for f in fields))
        else:
            child.derived = _from_tree(child, tree, r.path.split("#")[0])
        node.children.append(child)
    if used < ref.size:
        node.fields = (Field("unused", ref.size - used, (Extent(ref.offset + used, ref.size - used),),
                             f"{ref.size - used} bytes after the last record"),)
    return node


def _from_tree(child: Node, tree: Tree, path: str) -> tuple[Derived, ...]:
    """Declare a first-table record's fields derived from the directory records of ``path``."""
    d = tree.dirs.get(path)
    if d is None:
        return ()
    out: list[Derived] = []
    dot = d.recs[0] if d.recs and d.recs[0].role == "dot" else None
    naming = d.naming or dot
    if naming is not None:
        out.append(Derived("location_of_extent", covers=(Extent(naming.offset + 2, 8),)))
        if d.naming is not None:
            n = d.naming.name_length
            ident = (Extent(d.naming.offset + 33, n),)
            out.append(Derived("directory_identifier", covers=ident))
            out.append(Derived("length_of_directory_identifier", covers=ident))
    return tuple(out)


def table_refs(values: dict[str, int], base: int, tree_key: str, label: str) -> list[TableRef]:
    """Return the tables a primary/supplementary descriptor points to (zero locations are absent tables)."""
    size = values["path_table_size"]
    out: list[TableRef] = []
    first: str | None = None
    for name, kind, big in (
        ("location_of_type_l_path_table", "L", False),
        ("location_of_optional_type_l_path_table", "L2", False),
        ("location_of_type_m_path_table", "M", True),
        ("location_of_optional_type_m_path_table", "M2", True),
    ):
        lba = values[name]
        if lba == 0:
            continue
        key = f"path_table:{tree_key}:{kind}"
        what = {"L": "type L", "L2": "optional type L", "M": "type M", "M2": "optional type M"}[kind]
        out.append(TableRef(key, f"{label} {what} path table", base + lba * SECTOR, size, big, first))
        if first is None:
            first = key
    return out

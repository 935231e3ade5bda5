"""Nodes of the directory hierarchy: a directory (its records and the padding after them) and one record.

Every byte of a directory extent is a field: each Directory Record's ECMA-119 fields, its File Identifier and
Padding Field, its SUSP/Rock Ridge entries (also those stored in continuation areas) and the zero padding at the end
of each logical sector.  Copies are declared :class:`~imgdiff.model.Derived`: a directory's "." record restates
the record that names the directory in its parent, ".." restates the parent's ".", and a Joliet record restates the
primary record of the same path (its date and flags; a file's extent and length).

A record's fields are described, not built (:func:`whole_record`): its layout (the fixed 33 bytes, identifier,
padding, each System Use entry's header, body, stamps and name) is compiled once per distinct layout into one
:class:`~imgdiff.formats.compiled.Compiled` struct and the record is a :class:`~imgdiff.formats.compiled.Record`
on its node, so the engine compares two records member by member from their bytes and builds fields only for the
members that differ.  A record whose entries continue in a continuation area, or that holds an ER entry or an
irregular layout, is its fixed 33 bytes as a Record plus built fields for the rest.

References:
    ECMA-119 9.1 (Directory Record), 9.1.5 (recording date), 9.1.6 (file flags), 6.8.2.2 ("." and ".." records);
    Joliet specification; SUSP/RRIP 1.12 (see :mod:`imgdiff.formats.iso9660.susp`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import construct as c

from imgdiff.formats.compiled import Compiled, Record
from imgdiff.formats.iso9660.c_iso9660 import FILE_FLAG_NAMES, FLAG_DIRECTORY
from imgdiff.formats.iso9660.susp import Member, entries_fields, entry_members
from imgdiff.formats.iso9660.tree import C_DIRREC, RECORD_FIXED, Dir, Rec, Tree
from imgdiff.formats.iso9660.values import both16, both32, record_date_display, record_date_value
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents

COPIED_FIXED = ("location_of_extent", "data_length", "recording_date_and_time", "file_flags", "file_unit_size",
                "interleave_gap_size", "volume_sequence_number")
"""Directory record fields a "." / ".." record restates from the record it copies."""
JOLIET_COPIED = ("recording_date_and_time", "file_flags")
JOLIET_COPIED_FILE = ("location_of_extent", "data_length")


def flags_display(v: int) -> str:
    """Return the File Flags bits by name."""
    names = [n for bit, n in FILE_FLAG_NAMES if v & bit]
    return ",".join(names) if names else "none"


_DECODE: dict[str, Callable[[Any], Value]] = {
    "location_of_extent": both32,
    "data_length": both32,
    "recording_date_and_time": record_date_value,
    "volume_sequence_number": both16,
}
_DISPLAY: dict[str, Callable[[Any], str | None]] = {
    "recording_date_and_time": record_date_display,
    "file_flags": lambda v: flags_display(int(v)),
}


def fixed_fields(raw: bytes, offset: int) -> list[Field]:
    """Return the fields of the fixed 33 bytes of a directory record at absolute ``offset``."""
    return C_DIRREC.fields(raw, 0, offset, decode=_DECODE, display=_DISPLAY)


def fixed_record(raw: bytes, offset: int) -> Record:
    """Return the fixed 33 bytes of a directory record at absolute ``offset`` as a :class:`Record`: described,
    compared member by member, and built into fields (those of :func:`fixed_fields`) only where asked."""
    return Record(C_DIRREC, raw[:RECORD_FIXED], offset, decode=_DECODE, display=_DISPLAY)


def _dot(raw: bytes) -> str:
    return "\\x00 (.)"


def _dotdot(raw: bytes) -> str:
    return "\\x01 (..)"


def _ucs2_name(raw: bytes) -> str:
    return bytes(raw).decode("utf-16-be", errors="replace")


def _latin1_name(raw: bytes) -> str:
    return bytes(raw).decode("latin-1")


def _bytes(raw: bytes) -> bytes:
    return bytes(raw)


_FIXED_MEMBERS: tuple[Member, ...] = tuple(
    (name, size, kind, _DECODE.get(name), _DISPLAY.get(name)) for name, _off, size, _i, _n, kind in C_DIRREC.members
)
MAX_SHAPES = 4096
"""Record layouts compiled at most (a hostile image with ever new layouts gets plain fields after that)."""
_SHAPES: dict[tuple[Member, ...], tuple[Compiled, dict[str, Callable[[Any], Value]],
                                        dict[str, Callable[[Any], str | None]]]] = {}


def _shape(members: tuple[Member, ...]) -> tuple[Compiled, dict[str, Callable[[Any], Value]],
                                                  dict[str, Callable[[Any], str | None]]] | None:
    """Return the compiled layout of a record made of ``members`` (compiled once per distinct layout)."""
    found = _SHAPES.get(members)
    if found is None:
        if len(_SHAPES) >= MAX_SHAPES:
            return None
        decl = c.Struct(*(name / (c.Int8ul if kind == "int" else c.Bytes(size)) for name, size, kind, _d, _s in members))
        decode = {name: d for name, _size, _kind, d, _s in members if d is not None}
        display = {name: s for name, _size, _kind, _d, s in members if s is not None}
        found = _SHAPES[members] = (Compiled(decl), decode, display)
    return found


def whole_record(rec: Rec, raw: bytes, joliet: bool) -> Record | None:
    """Return the whole record (fixed part, identifier, padding, System Use entries) as one :class:`Record` with the
    fields :func:`fixed_fields` and :func:`tail_fields` build, described instead of built; None for a record whose
    entries are not all in its own System Use field (a continuation area) or not all described (ER), or whose
    layout is irregular: those get built fields."""
    su = rec.su
    if su is not None and su.areas:
        return None
    n = rec.name_length
    if rec.role == "dot":
        ident = _dot
    elif rec.role == "dotdot":
        ident = _dotdot
    else:
        ident = _ucs2_name if joliet else _latin1_name
    members: list[Member] = [*_FIXED_MEMBERS, ("file_identifier", n, "bytes", ident, None)]
    pos = RECORD_FIXED + n
    if n % 2 == 0:
        if pos >= rec.length:
            return None
        members.append(("padding_field", 1, "int", None, None))
        pos += 1
    if rec.length > pos:
        if su is None:
            members.append(("system_use", rec.length - pos, "bytes", _bytes, None))
        else:
            if rec.su_offset != rec.offset + pos:
                return None
            expected = rec.su_offset
            seen: dict[str, int] = {}
            for e in su.entries:
                if e.offset != expected:
                    return None
                k = seen[e.signature] = seen.get(e.signature, 0) + 1
                more = entry_members(e, e.signature if k == 1 else f"{e.signature}#{k}")
                if more is None:
                    return None
                members.extend(more)
                expected += len(e.data)
            if expected != rec.su_offset + su.end or expected > rec.offset + rec.length:
                return None
            if expected < rec.offset + rec.length:
                members.append(("system_use_padding", rec.offset + rec.length - expected, "bytes", _bytes, None))
    if sum(m[1] for m in members) != rec.length or len({m[0] for m in members}) != len(members):
        return None
    shape = _shape(tuple(members))
    if shape is None:
        return None
    compiled, decode, display = shape
    return Record(compiled, raw, rec.offset, decode=decode, display=display)


def tail_fields(rec: Rec, raw: bytes, joliet: bool) -> list[Field]:
    """Return the fields after the fixed 33 bytes of one record: identifier, padding, System Use (its entries)."""
    out: list[Field] = []
    n = max(min(rec.name_length, rec.length - RECORD_FIXED, len(raw) - RECORD_FIXED), 0)  # a corrupt length: clamp
    ident = raw[RECORD_FIXED : RECORD_FIXED + n]
    if rec.role == "dot":
        name: Value = "\\x00 (.)"
    elif rec.role == "dotdot":
        name = "\\x01 (..)"
    else:
        name = ident.decode("utf-16-be", errors="replace") if joliet else ident.decode("latin-1")
    out.append(Field("file_identifier", name, (Extent(rec.offset + RECORD_FIXED, n),)))
    pos = RECORD_FIXED + n
    if n % 2 == 0 and pos < min(rec.length, len(raw)):
        out.append(Field("padding_field", raw[pos], (Extent(rec.offset + pos, 1),)))
        pos += 1
    su_len = rec.length - pos
    if su_len <= 0:
        return out
    if rec.su is None:
        out.append(Field("system_use", bytes(raw[pos:]), (Extent(rec.offset + pos, su_len),)))
        return out
    skip = rec.su_offset - (rec.offset + pos)
    own_start = rec.su_offset
    if skip > 0:
        out.append(Field("system_use_skipped", bytes(raw[pos : pos + skip]), (Extent(rec.offset + pos, skip),)))
    out.extend(entries_fields(rec.su.entries))
    used_end = own_start + rec.su.end
    rec_end = rec.offset + rec.length
    if used_end < rec_end:
        tail = raw[used_end - rec.offset :]
        out.append(Field("system_use_padding", bytes(tail), (Extent(used_end, rec_end - used_end),)))
    return out


def _copies(members: list[tuple[str, tuple[Extent, ...]]], source: dict[str, tuple[Extent, ...]],
            names: tuple[str, ...] | None, susp: bool) -> tuple[Derived, ...]:
    """Return Derived declarations for the members (``(name, extents)`` in order) that restate the same-named member
    of a source (its extents by name)."""
    out: list[Derived] = []
    for name, _exts in members:
        if name not in source:
            continue
        if (names is not None and name in names) or (susp and name.startswith(("PX.", "TF.", "PN."))):
            out.append(Derived(name, covers=source[name]))
    return tuple(out)


def file_type(rec: Rec) -> str:
    """Return ``"dir"``, ``"symlink"`` or ``"file"`` for a record."""
    if rec.role in ("dot", "dotdot") or rec.flags & FLAG_DIRECTORY:
        return "dir"
    if rec.symlink is not None:
        return "symlink"
    return "file"


class RecordBuilder:
    """Builds directory and record nodes of one tree (primary or Joliet), with their copy declarations."""

    def __init__(self, tree: Tree, read: Callable[[int, int], bytes], primary: Tree | None = None,
                 primary_builder: RecordBuilder | None = None) -> None:
        self.tree = tree
        self.read = read
        self.primary = primary
        """For a Joliet tree: the primary tree whose records the Joliet records restate."""
        self.joliet = primary is not None
        self.kind = "iso9660.joliet_dirrec" if self.joliet else "iso9660.dirrec"
        self._fields: dict[int, tuple[Record, list[Field]]] = (
            primary_builder._fields if primary_builder is not None else {})
        """The fixed part and the other fields by record offset (shared with the primary tree's builder): a record's
        fields are also the covers of the records that restate it."""

    def fields_of(self, rec: Rec, joliet: bool) -> tuple[Record, list[Field]]:
        """Return ``rec`` as a :class:`Record` and the fields it does not describe (made once per record).

        A regular record is described whole (:func:`whole_record`): no field is built until the engine compares
        it with its partner member by member.  Otherwise the Record is its fixed 33 bytes and the identifier,
        padding and System Use entries are built fields.
        """
        found = self._fields.get(rec.offset)
        if found is None:
            raw = self.read(rec.offset, rec.length)
            whole = whole_record(rec, raw, joliet)
            if whole is not None:
                found = (whole, [])
            else:
                found = (fixed_record(raw, rec.offset), tail_fields(rec, raw, joliet))
            self._fields[rec.offset] = found
        return found

    def members_of(self, rec: Rec, joliet: bool) -> list[tuple[str, tuple[Extent, ...]]]:
        """Return ``(name, extents)`` of every field of ``rec`` in order, from the layout where it is described."""
        record, fields = self.fields_of(rec, joliet)
        base = record.base
        out: list[tuple[str, tuple[Extent, ...]]] = [
            (name, (Extent(base + off, size),)) for name, off, size, *_rest in record.compiled.members]
        out.extend((f.name, f.extents) for f in fields)
        return out

    def _source(self, d: Dir, rec: Rec) -> tuple[Rec | None, Tree]:
        """Return the record that ``rec`` restates (None when it is an original) and the tree it is in."""
        tree = self.tree
        if rec.role == "dot":
            return d.naming, tree
        if rec.role == "dotdot":
            parent = tree.dirs.get(d.path.rsplit("/", 1)[0] or "/") if d.path != "/" else d
            if parent is not None and parent.recs and parent.recs[0].role == "dot":
                return parent.recs[0], tree
            return None, tree
        if self.primary is not None:
            return self.primary.by_path.get(rec.path), self.primary
        return None, tree

    def record_node(self, d: Dir, rec: Rec) -> Node:
        """Return the node of one record of directory ``d``."""
        fixed, fields = self.fields_of(rec, self.joliet)
        if rec.role == "dot":
            target = d.path
        elif rec.role == "dotdot":
            target = d.path.rsplit("/", 1)[0] or "/"
        else:
            target = rec.path
        attrs: dict[str, Value] = {"path": target, "file_type": file_type(rec), "name": rec.name,
                                   "tree": "joliet" if self.joliet else "primary", "lba": rec.lba, "size": rec.size}
        if rec.role in ("dot", "dotdot"):
            attrs["dot"] = rec.role
        if rec.symlink is not None:
            attrs["symlink"] = rec.symlink
        label = {"dot": f"record . of {d.path}", "dotdot": f"record .. of {d.path}"}.get(rec.role, f"record {rec.path}")
        node = Node(kind=self.kind, key=rec.path, label=label,
                    extents=merge_extents(rec.owned()) if rec.su is not None and rec.su.areas else (rec.record,),
                    fields=tuple(fields), attrs=attrs, record=fixed)
        source, stree = self._source(d, rec)
        if source is not None:
            smap = dict(self.members_of(source, stree is self.tree and self.joliet))
            mine = self.members_of(rec, self.joliet)
            if self.joliet and rec.role not in ("dot", "dotdot"):
                names = JOLIET_COPIED + (JOLIET_COPIED_FILE if rec.role == "file" else ())
                node.derived = _copies(mine, smap, names, susp=False)
            else:
                node.derived = _copies(mine, smap, COPIED_FIXED, susp=True)
        return node

    def directory_node(self, d: Dir, interesting: Callable[[Extent], bool] | None = None) -> Node:
        """Return the node of a directory: its records as children and the padding after them.

        With ``interesting``, only records holding differing bytes become children up front; the others are
        built when the engine asks for them by key (``Node.expand``).
        """
        label = f"{'Joliet ' if self.joliet else ''}directory {d.path}"
        node = Node(kind="iso9660.joliet_directory" if self.joliet else "iso9660.directory", key=d.path, label=label,
                    attrs={"path": d.path, "file_type": "dir", "tree": "joliet" if self.joliet else "primary",
                           "lba": (d.extent.offset - self.tree.base) // 2048})
        owned: list[Extent] = [d.extent]
        by_key: dict[str, Rec] = {}
        for rec in d.recs:
            mine = rec.owned()
            owned.extend(mine)
            by_key[rec.path] = rec
            if interesting is None or any(interesting(e) for e in mine):
                node.children.append(self.record_node(d, rec))
        if interesting is not None:
            made = {c.key for c in node.children}

            def expand(key: str) -> Node | None:
                rec = by_key.get(key)
                return self.record_node(d, rec) if rec is not None and key not in made else None

            node.expand = expand
        if d.padding:
            pad = merge_extents(d.padding)
            blob = b"".join(self.read(e.offset, e.length) for e in pad)
            n = len(blob)
            nz = n - blob.count(0)
            node.fields = (Field("padding", n if nz == 0 else blob_hash(blob), pad,
                                 f"{n} bytes after the last record of a sector" + (f", {nz} non-zero" if nz else "")),)
        node.extents = merge_extents(owned)
        node.errors.extend(d.errors)
        return node


def blob_hash(blob: bytes) -> str:
    """Return ``sha256:<16 hex>`` of ``blob``."""
    import hashlib

    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]

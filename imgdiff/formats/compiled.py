"""The struct fast path shared by every format: a construct declaration compiled to one :class:`struct.Struct`.

construct declarations (``c_<fmt>.py``) are the readable source of truth for field names, offsets and sizes.
Interpreting them per inode or per directory entry is ~100x slower than ``struct.unpack_from``, so
:class:`Compiled` derives the offset map (:class:`Layout`) and an equivalent precompiled
struct once, and builds :class:`~imgdiff.model.Field` objects at absolute offsets from it.  Supported members:
integer ``FormatField`` s, ``Bytes`` and ``Array`` s of integers (construct ``BitStruct`` is deliberately not
supported: its bit order silently reversed GPT attribute bits; use integers and masks).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import construct as c

from imgdiff.model import Extent, Field, Value
from imgdiff.source import xor_bytes

BLOB_INLINE = 64
"""Byte strings up to this length are field values as-is; longer ones are summarised by a SHA-256 prefix."""

_new = tuple.__new__
"""``tuple.__new__(Field, (...))`` builds a named tuple without its Python-level ``__new__`` (bulk field building)."""


def blob_value(data: bytes) -> Value:
    """Return ``data`` itself when short, else ``"sha256:<16 hex>"`` (distinct whenever the bytes differ)."""
    data = bytes(data)
    if len(data) <= BLOB_INLINE:
        return data
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def blob_display(data: bytes) -> str:
    """Return ``"N bytes, all zero"`` or ``"N bytes, K non-zero"``: how a summarised byte string is shown."""
    nz = len(data) - bytes(data).count(0)
    return f"{len(data)} bytes, all zero" if nz == 0 else f"{len(data)} bytes, {nz} non-zero"


@dataclass(frozen=True, slots=True)
class Layout:
    """Static offset map of a fixed-size construct Struct: ``(name, offset, size)`` per named member."""

    struct: c.Construct
    members: tuple[tuple[str, int, int], ...]
    size: int

    @classmethod
    def of(cls, struct: c.Construct) -> Layout:
        """Compute the offset map of ``struct`` (every member must have a static size)."""
        members: list[tuple[str, int, int]] = []
        off = 0
        for sub in struct.subcons:
            n = sub.sizeof()
            if sub.name is not None:
                members.append((sub.name, off, n))
            off += n
        return cls(struct, tuple(members), off)


class Compiled:
    """A construct Struct's static layout plus an equivalent precompiled :class:`struct.Struct`.

    construct is the readable source of truth for names and offsets; interpreting it per inode is ~100x slower
    than ``struct.unpack_from``, so the same members are compiled once into a struct format.
    """

    __slots__ = ("_index", "_names", "_prefixed", "layout", "members", "size", "struct")

    def __init__(self, decl: c.Struct, endian: str = "<") -> None:
        self.layout = Layout.of(decl)
        fmt = [endian]
        members: list[tuple[str, int, int, int, int, str]] = []  # name, offset, size, first value, count, kind
        pos = 0
        for sub, (name, off, size) in zip(decl.subcons, self.layout.members, strict=True):
            inner = sub.subcon if isinstance(sub, c.Renamed) else sub
            if isinstance(inner, c.FormatField):
                fmt.append(inner.fmtstr[1:])
                members.append((name, off, size, pos, 1, "int"))
                pos += 1
            elif isinstance(inner, c.Bytes):
                fmt.append(f"{inner.length}s")
                members.append((name, off, size, pos, 1, "bytes"))
                pos += 1
            elif isinstance(inner, c.Array) and isinstance(inner.subcon, c.FormatField):
                fmt.append(f"{inner.count}{inner.subcon.fmtstr[1:]}")
                members.append((name, off, size, pos, int(inner.count), "array"))
                pos += int(inner.count)
            else:  # pragma: no cover - declarations are under our control
                raise TypeError(f"cannot compile member {name!r} of type {type(inner).__name__}")
        self.members = tuple(members)
        self.struct = struct.Struct("".join(fmt))
        self.size = self.struct.size
        if self.size != self.layout.size:  # pragma: no cover
            raise TypeError("compiled struct size differs from the construct layout")
        self._index = {m[0]: m for m in members}
        self._names = tuple(m[0] for m in members)
        self._prefixed: dict[str, tuple[str, ...]] = {}

    def offset(self, name: str) -> int:
        """Return the offset of member ``name``."""
        return self._index[name][1]

    def span(self, name: str) -> tuple[int, int]:
        """Return ``(offset, size)`` of member ``name``."""
        m = self._index[name]
        return m[1], m[2]

    def unpack(self, buf: bytes | memoryview, off: int = 0) -> dict[str, Any]:
        """Return every member's raw value (arrays as tuples) from ``buf`` at ``off``."""
        if len(buf) - off < self.size:
            buf = bytes(buf[off:]) + bytes(self.size - (len(buf) - off))
            off = 0
        vals = self.struct.unpack_from(buf, off)
        return {
            name: (vals[i] if n == 1 and kind != "array" else tuple(vals[i : i + n]))
            for name, _o, _s, i, n, kind in self.members
        }

    def subset(self, names: Iterable[str]) -> tuple[struct.Struct, tuple[str, ...]]:
        """Return a struct that unpacks only ``names`` (in offset order, skipping the rest) and their order.

        Array members unpack as one ``bytes`` value (the bulk scan decodes ``i_block`` itself).
        """
        chosen = sorted((self._index[n] for n in names), key=lambda m: m[1])
        fmt = [self.struct.format[0]]
        pos = 0
        for name, off, size, _i, n, kind in chosen:
            if off > pos:
                fmt.append(f"{off - pos}x")
            fmt.append(_member_fmt(kind, size, n))
            pos = off + size
        return struct.Struct("".join(fmt)), tuple(m[0] for m in chosen)

    def fields(
        self,
        buf: bytes | bytearray | memoryview,
        off: int,
        base: int,
        *,
        limit: int | None = None,
        skip: frozenset[str] | tuple[str, ...] = (),
        prefix: str = "",
        decode: Mapping[str, Callable[[Any], Value]] | None = None,
        display: Mapping[str, Callable[[Any], str | None]] | None = None,
        shown: Mapping[str, str | None] | None = None,
    ) -> list[Field]:
        """Return one Field per member at absolute ``base + member offset``.

        ``limit`` drops members that end past that many bytes (a short inode); ``skip`` omits members a caller
        describes itself (``i_block``).  ``decode`` and ``display`` map a member's raw value to its value and
        display text; ``shown`` gives display texts the caller computed already (from several members: a FAT
        time word is shown with its date word).
        """
        if len(buf) - off < self.size:
            buf = bytes(buf[off:]) + bytes(self.size - (len(buf) - off))
            off = 0
        vals = self.struct.unpack_from(buf, off)
        out: list[Field] = []
        append = out.append
        names = self._prefixed.get(prefix) if prefix else self._names
        if names is None:  # one shared name string per prefix and member, not one per field
            names = self._prefixed.setdefault(prefix, tuple(prefix + m[0] for m in self.members))
        for (name, moff, size, i, n, kind), fname in zip(self.members, names, strict=True):
            if limit is not None and moff + size > limit:
                break
            if skip and name in skip:
                continue
            raw: Any = vals[i] if kind != "array" else vals[i : i + n]
            if decode is not None and name in decode:
                v: Any = decode[name](raw)
            elif kind == "bytes":
                v = blob_value(raw)
            else:
                v = raw
            if display is not None and name in display:
                disp = display[name](raw)
            else:
                disp = shown.get(name) if shown is not None else None
            append(_new(Field, (fname, v, (_new(Extent, (base + moff, size)),), disp)))
        return out


def _member_fmt(kind: str, size: int, n: int) -> str:
    if kind in ("bytes", "array"):
        return f"{size}s"
    return {1: "B", 2: "H", 4: "I", 8: "Q"}[size]


_NONZERO = re.compile(rb"[^\x00]+")
_BYTE_TABLES: dict[tuple[int, int | None, frozenset[str]], tuple[tuple[int, ...], tuple[int, ...]]] = {}
"""Per (layout, limit, skipped members): which selected member each byte belongs to (see :meth:`Record.diff`)."""
_SELECTIONS: dict[
    tuple[int, int | None, frozenset[str]],
    tuple[tuple[tuple[int, tuple[str, int, int, int, int, str]], ...], tuple[tuple[int, int], ...]],
] = {}
"""Per (layout, limit, skip): the selected members and their contiguous runs (relative offset, length)."""


def _runs(members: list[tuple[int, tuple[str, int, int, int, int, str]]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for _k, (_name, moff, size, _i, _n, _kind) in members:
        if out and out[-1][0] + out[-1][1] == moff:
            out[-1][1] += size
        else:
            out.append([moff, size])
    return tuple((o, n) for o, n in out)


class Record:
    """One fixed-layout structure whose fields are described, not built: materialised only when asked for.

    Bulk objects (tens of thousands of inodes or directory entries) are held as a record on their node
    (:attr:`imgdiff.model.Node.record`): the raw bytes, the layout and the decode/display rules.  The engine compares
    two records member by member from their unpacked values (:meth:`diff`) and builds :class:`Field` objects
    only for members that differ or that a differing byte range falls in (:meth:`fields_in`); renderers get all of
    them from :meth:`fields`.
    """

    __slots__ = ("base", "compiled", "decode", "display", "limit", "prefix", "raw", "skip")

    def __init__(
        self,
        compiled: Compiled,
        raw: bytes,
        base: int,
        *,
        limit: int | None = None,
        skip: frozenset[str] = frozenset(),
        prefix: str = "",
        decode: Mapping[str, Callable[[Any], Value]] | None = None,
        display: Mapping[str, Callable[[Any], str | None]] | None = None,
    ) -> None:
        if len(raw) < compiled.size:
            raw = bytes(raw) + bytes(compiled.size - len(raw))
        self.compiled = compiled
        self.raw = bytes(raw[: compiled.size])
        self.base = base
        self.limit = limit
        self.skip = skip
        self.prefix = prefix
        self.decode = decode
        self.display = display

    @property
    def extent(self) -> Extent:
        """Return the bytes the record's members occupy (up to ``limit``)."""
        return Extent(self.base, min(self.limit, self.compiled.size) if self.limit is not None else self.compiled.size)

    def fields(self) -> list[Field]:
        """Return every member as a :class:`Field` (at absolute offsets)."""
        return self.compiled.fields(self.raw, 0, self.base, limit=self.limit, skip=self.skip, prefix=self.prefix,
                                    decode=self.decode, display=self.display)

    def _members(self) -> tuple[tuple[int, tuple[str, int, int, int, int, str]], ...]:
        key = (id(self.compiled), self.limit, self.skip)
        found = _SELECTIONS.get(key)
        if found is None:
            limit = self.limit
            out = []
            for k, m in enumerate(self.compiled.members):
                if limit is not None and m[1] + m[2] > limit:
                    break
                if self.skip and m[0] in self.skip:
                    continue
                out.append((k, m))
            found = _SELECTIONS[key] = (tuple(out), _runs(out))
        return found[0]

    def _field(self, k: int, vals: tuple[Any, ...]) -> Field:
        name, moff, size, i, n, kind = self.compiled.members[k]
        raw: Any = vals[i] if kind != "array" else vals[i : i + n]
        if self.decode is not None and name in self.decode:
            v: Any = self.decode[name](raw)
        elif kind == "bytes":
            v = blob_value(raw)
        else:
            v = raw
        disp = self.display[name](raw) if self.display is not None and name in self.display else None
        return Field(self.prefix + name, v, (Extent(self.base + moff, size),), disp)

    def field(self, name: str) -> Field | None:
        """Return the member called ``name`` (with the record's prefix) as a :class:`Field`, building only it."""
        prefix = self.prefix
        if prefix:
            if not name.startswith(prefix):
                return None
            name = name[len(prefix):]
        for k, m in self._members():
            if m[0] == name:
                return self._field(k, self.compiled.struct.unpack(self.raw))
        return None

    def spans(self) -> list[Extent]:
        """Return the contiguous byte ranges of the selected members (skipped members leave gaps)."""
        self._members()
        base = self.base
        return [Extent(base + off, n) for off, n in _SELECTIONS[(id(self.compiled), self.limit, self.skip)][1]]

    def fields_in(self, ext: Extent) -> list[Field]:
        """Return the members whose bytes overlap ``ext``."""
        lo, hi = ext.offset - self.base, ext.offset + ext.length - self.base
        vals: tuple[Any, ...] | None = None
        out: list[Field] = []
        for k, (_name, moff, size, _i, _n, _kind) in self._members():
            if moff < hi and moff + size > lo:
                if vals is None:
                    vals = self.compiled.struct.unpack(self.raw)
                out.append(self._field(k, vals))
        return out

    def comparable(self, other: object) -> bool:
        """Return True when ``other`` has the same layout and member selection (so members pair one to one)."""
        return (isinstance(other, Record) and self.compiled is other.compiled and self.limit == other.limit
                and self.skip == other.skip and self.prefix == other.prefix)

    def diff(self, other: object) -> list[tuple[Field | None, Field | None]]:
        """Return ``(A field, B field)`` for each member whose bytes differ (``other`` must be :meth:`comparable`).

        The differing bytes are found at once (XOR of the two records) and mapped to members through a per-layout
        byte table, so a record where two members of forty differ costs two lookups, not forty comparisons.
        """
        assert isinstance(other, Record)
        ks = self.differing_members(other)
        if not ks:
            return []  # equal, or only bytes outside the selected members (padding, skipped members) differ
        va = self.compiled.struct.unpack(self.raw)
        vb = self.compiled.struct.unpack(other.raw)
        return [(self._field(k, va), other._field(k, vb)) for k in ks]

    def differing_members(self, other: Record) -> list[int]:
        """Return the indexes (into ``compiled.members``, ascending) of the selected members whose bytes differ."""
        ra, rb = self.raw, other.raw
        if ra == rb:
            return []
        table, skip = self._byte_table()
        x = xor_bytes(ra, rb)
        ks: list[int] = []
        for m in _NONZERO.finditer(x):
            pos, end = m.span()
            while pos < end:
                k = table[pos]
                if k and (not ks or ks[-1] != k - 1) and k - 1 not in ks:
                    ks.append(k - 1)
                pos = skip[pos]  # past the member holding pos: its other bytes name the same member
        ks.sort()
        return ks

    def _byte_table(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return, per byte of the record, 1 + the index of the selected member holding it (0: none), and the
        offset just past that member (past the byte itself when none holds it)."""
        key = (id(self.compiled), self.limit, self.skip)
        table = _BYTE_TABLES.get(key)
        if table is None:
            n = self.compiled.size
            cells = [0] * n
            for k, (_name, moff, size, _i, _n, _kind) in self._members():
                for pos in range(moff, moff + size):
                    cells[pos] = k + 1
            past = list(range(1, n + 1))
            for pos in range(n - 2, -1, -1):  # the end of each run of bytes naming the same member
                if cells[pos] and cells[pos + 1] == cells[pos]:
                    past[pos] = past[pos + 1]
            table = _BYTE_TABLES[key] = (tuple(cells), tuple(past))
        return table

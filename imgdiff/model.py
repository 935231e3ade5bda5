"""The model types that join imgdiff's stages: parse -> align -> explain -> render.

Parsers produce a tree of :class:`Node` objects whose :class:`Field` objects carry the on-disk field name, the
decoded value and the absolute byte extents of that field in the image.  The engine turns two such trees and the
byte comparison of the two images into :class:`Difference` objects, the rule engine groups those into
:class:`Finding` objects, and renderers only ever see a :class:`Report`.
"""

from __future__ import annotations

import builtins
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol, TypeVar, dataclass_transform

Value = int | str | bytes | bool | float | None | tuple["Value", ...]
"""A decoded field value.  Bytes are rendered as hex, tuples as lists."""

LAYERS = ("repart", "mkfs", "nixos-module", "content", "bootloader", "other", "unknown")
"""The responsible layers a finding can name (see rules/README.md)."""


class Extent(NamedTuple):
    """A half-open byte range ``[offset, offset + length)`` in one image.

    A named tuple rather than a dataclass: parsers create millions of them and tuples are cheap to build,
    hash and sort.
    """

    offset: int
    length: int

    @property
    def end(self) -> int:
        """Return the first offset after the extent."""
        return self.offset + self.length

    def shifted(self, delta: int) -> Extent:
        """Return the extent moved by ``delta`` bytes."""
        return Extent(self.offset + delta, self.length)


def merge_extents(extents: Iterable[Extent]) -> tuple[Extent, ...]:
    """Return the union of ``extents`` as sorted, non-overlapping, non-empty extents (touching ones joined)."""
    starts, ends = merged_bounds(extents)
    return tuple(Extent(s, e - s) for s, e in zip(starts, ends, strict=True))


def merged_bounds(extents: Iterable[Extent]) -> tuple[list[int], list[int]]:
    """Return the union of ``extents`` as two lists, the starts and the ends of :func:`merge_extents`'s extents
    (plain ints: an overlap index over 100,000 fields needs no extent objects)."""
    starts: list[int] = []
    ends: list[int] = []
    for off, n in sorted(x for x in extents if x[1] > 0):  # plain ints in the loop: hundreds of thousands
        end = off + n
        if ends and off <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(off)
            ends.append(end)
    return starts, ends


def subtract_extents(whole: Extent, parts: Iterable[Extent], *, presorted: bool = False) -> list[Extent]:
    """Return the pieces of ``whole`` that no extent in ``parts`` covers, in order.

    ``parts`` may overlap; with ``presorted=True`` they must already be sorted by offset, and iteration stops at
    the first part past ``whole`` (so a caller can hand in a long sorted cover starting near ``whole``).
    """
    out: list[Extent] = []
    pos = whole.offset
    end = whole.offset + whole.length
    for p in parts if presorted else sorted(parts):
        if p.offset >= end:
            if presorted:
                break
            continue
        if p.offset + p.length <= pos:
            continue
        if p.offset > pos:
            out.append(Extent(pos, p.offset - pos))
        pos = max(pos, p.offset + p.length)
    if pos < end:
        out.append(Extent(pos, end - pos))
    return out


class Field(NamedTuple):
    """One named on-disk field: spec name, decoded value and the absolute bytes it occupies."""

    name: str
    value: Value
    extents: tuple[Extent, ...]
    display: str | None = None
    """Optional human rendering of the value (a date for a timestamp, a name for a type GUID)."""

    @classmethod
    def at(cls, name: str, value: Value, offset: int, size: int, display: str | None = None) -> Field:
        """Return a field that occupies one contiguous range."""
        return cls(name, value, (Extent(offset, size),), display)

    @property
    def size(self) -> int:
        """Return the number of bytes the field occupies."""
        return sum(e.length for e in self.extents)


POSITION = "(position)"
"""``Derived(POSITION, covers=...)`` on a node declares what the node's *position* depends on (the bytes stored
before it, in a packed format such as squashfs): bytes it holds at an offset where the other image holds other
data (it moved) are then a derived difference folded into what covers them, instead of a "moved" cause."""


class Derived(NamedTuple):
    """Declares that a field is computed from other data (a checksum, a CRC, a copy).

    ``covers`` are the absolute byte extents the value is computed over; ``seeds`` are references
    ``"<node kind>:<field name>"`` of values that feed the computation without being covered (the ext4
    metadata checksum seed comes from ``s_uuid``).  A derived field that differs is folded into the finding
    that explains its covered bytes or seeds instead of being reported as a cause.

    A named tuple rather than a dataclass: parsers declare one or two per inode, directory block and extent block.
    """

    field: str
    covers: tuple[Extent, ...] = ()
    seeds: tuple[str, ...] = ()


class FieldSource(Protocol):
    """Fields described but not built (a :class:`imgdiff.formats.compiled.Record`): see :attr:`Node.record`."""

    def fields(self) -> list[Field]:
        """Return every field."""
        ...

    def fields_in(self, ext: Extent) -> list[Field]:
        """Return the fields whose bytes overlap ``ext``."""
        ...

    def spans(self) -> list[Extent]:
        """Return the contiguous byte ranges the fields occupy."""
        ...

    def comparable(self, other: FieldSource) -> bool:
        """Return True when the two describe the same members (so they compare member by member)."""
        ...

    def diff(self, other: FieldSource) -> list[tuple[Field | None, Field | None]]:
        """Return the pairs of fields whose bytes differ (None for a field only the other side has)."""
        ...


@dataclass(slots=True)
class Node:
    """One parsed structure (a GPT header, a partition, an inode, a directory entry, a file's data)."""

    kind: str
    """``"<format>.<object>"``: ``"gpt.header"``, ``"ext4.inode"``, ``"vfat.dirent"``."""
    key: str
    """Stable alignment key among its siblings: ``"primary"``, ``"part:2"``, ``"/etc/os-release"``."""
    label: str
    """Short human name used in locations: ``"partition 2 (root-x86-64)"``, ``"superblock"``."""
    extents: tuple[Extent, ...] = ()
    """Every byte this node owns, its children's included."""
    fields: tuple[Field, ...] = ()
    children: list[Node] = field(default_factory=list)
    derived: tuple[Derived, ...] = ()
    attrs: dict[str, Value] = field(default_factory=dict)
    """Context for rules and renderers: ``path`` (inside the filesystem), ``ptype``, ``index``, ``fs``."""
    raw: bool = False
    """True for regions nothing parsed: their differing bytes count as unexplained."""
    expand: Callable[[str], Node | None] | None = None
    """Optional lazy lookup of a child by key for children not built up front (large tables)."""
    errors: list[str] = field(default_factory=list)
    """What could not be parsed inside this node (partial result)."""
    record: FieldSource | None = None
    """More fields, described by a fixed layout and built on demand (bulk objects: inodes, directory entries).
    :meth:`all_fields` returns them with :attr:`fields`; the engine compares records member by member."""
    _by_key: dict[str, Node] = field(default_factory=dict, repr=False, compare=False)
    """Index of ``children`` by key, extended by :meth:`child` with children appended since."""
    _indexed: int = field(default=0, repr=False, compare=False)

    def field_named(self, name: str) -> Field | None:
        """Return the field called ``name`` (among :attr:`fields` and the record's) or None."""
        for f in self.fields:
            if f.name == name:
                return f
        if self.record is not None:
            one = getattr(self.record, "field", None)
            if one is not None:  # a record that can build one member by name
                found: Field | None = one(name)
                if found is not None:
                    return found
            for f in self.record.fields():
                if f.name == name:
                    return f
        return None

    def all_fields(self) -> tuple[Field, ...]:
        """Return every field of the node: the record's (built now) and :attr:`fields`, in offset order."""
        if self.record is None:
            return self.fields
        return tuple(sorted((*self.record.fields(), *self.fields), key=lambda f: f.extents[0].offset if f.extents else 0))

    def child(self, key: str) -> Node | None:
        """Return the child with ``key``, expanding lazily if needed, or None."""
        if self._indexed > len(self.children):  # children were replaced: start over
            self._by_key, self._indexed = {}, 0
        for c in self.children[self._indexed :]:
            self._by_key.setdefault(c.key, c)
        self._indexed = len(self.children)
        found = self._by_key.get(key)
        if found is not None:
            return found
        if self.expand is not None:
            found = self.expand(key)
            if found is not None:
                self.children.append(found)
            return found
        return None

    def walk(self, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Node]]:
        """Yield ``(key chain, node)`` for this node and all built descendants, depth first."""
        here = (*prefix, self.key)
        yield here, self
        for c in self.children:
            yield from c.walk(here)


_UIDS = itertools.count(1)


class Change(StrEnum):
    """How a node or field differs between A and B (a ``str``: compares and serialises as its value)."""

    MODIFIED = "modified"
    ADDED = "added"
    REMOVED = "removed"
    MOVED = "moved"
    """Same value by key, but stored at another offset (inode renumbering, entry order)."""
    RAW = "raw"
    """Bytes differ in a region no parser understood."""


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def _immutable(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a slotted dataclass that type checkers treat as frozen, without the runtime guard.

    A frozen dataclass sets each field through ``object.__setattr__`` in ``__init__``: for :class:`Difference`
    (23 fields) that is 3.4 µs against 0.3 µs for plain slot stores, and a rebuilt 1 GiB image makes 200,000
    differences.  Immutability is checked statically (mypy sees ``frozen``); nothing assigns a field at run time.
    """
    return dataclass(slots=True, eq=False)(cls)


@_immutable
class Difference:
    """One field (or node, or raw region) that differs between the two images; immutable once made.

    Compared by identity (``eq=False``): two differences with equal values are still two differences.  The
    engine builds each one complete (``dataclasses.replace`` keeps the :attr:`uid`).  Frozen for type checkers
    only (see :func:`_immutable`).
    """

    node_path: str
    """Alignment path of the node: ``"disk/gpt/part:2/ext4/inode:/etc/foo"``."""
    kind: str
    field: str
    change: str
    a: Value
    b: Value
    extents_a: tuple[Extent, ...]
    extents_b: tuple[Extent, ...]
    location: str
    """Human location of the node: ``"partition 2 (root-x86-64) / ext4 / superblock"``."""
    attrs: dict[str, Value] = dataclasses.field(default_factory=dict)
    display_a: str | None = None
    display_b: str | None = None
    bytes: int = 0
    """Differing bytes inside this difference's extents (filled by the engine)."""
    derived: bool = False
    """True when the field is declared :class:`Derived` on its node."""
    covers_a: tuple[Extent, ...] = ()
    """For derived fields: the A bytes the value is computed over."""
    covers_b: tuple[Extent, ...] = ()
    seeds: tuple[str, ...] = ()
    """For derived fields: ``"<kind>:<field>"`` values that feed the computation."""
    scope: str = ""
    """Node path of the enclosing scope (a partition's filesystem, or the disk): findings group by it."""
    chain: tuple[str, ...] = ()
    """The scopes the field lies in, outermost first (partition, filesystem, file holding a nested image, stream,
    nested filesystem): renderers show ``" ▸ ".join(chain)`` and group by it instead of parsing ``location``."""
    detail: str | None = None
    """Extra text: differing ranges inside a file, a short unified diff."""
    content_a: builtins.bytes | None = None
    """For file data fields (node attr ``content``): the file's bytes in A, when small enough to keep."""
    content_b: builtins.bytes | None = None
    count: int = 1
    """How many fields this difference stands for: 1, or the members of a group node (one field of many objects of
    a table that differ alike, described once: ext4 inodes whose only differing bytes are their checksums).  The
    extents and :attr:`bytes` are every member's; :attr:`a`/:attr:`b` are the first member's values."""
    uid: int = dataclasses.field(default_factory=lambda: next(_UIDS))
    """A number unique among the differences of this process, in creation order: side tables key by it."""

    @property
    def ref(self) -> str:
        """Return ``"<node path>/<field>"``, the field's identity in reports."""
        return f"{self.node_path}/{self.field}"


def b_side_only(d: Difference, delta: int) -> tuple[Extent, ...]:
    """Return ``d``'s B extents unless they are its A extents at the same place (``delta`` 0, nothing moved).

    Counting or covering both sides of a field that sits at the same offsets in A and B (most fields, when
    nothing moved) would take the same bytes twice; callers take the A extents and add these.
    """
    return d.extents_b if delta or d.extents_b != d.extents_a else ()


class ByteSource(Protocol):
    """Anything a report can read bytes of a side from (see :class:`imgdiff.source.Source`)."""

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes at ``offset``."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What a finding needs to know about the rule that produced it."""

    id: str
    name: str
    title: str
    layer: str
    explanation: str
    fix: str
    references: tuple[str, ...] = ()
    component: str = ""
    fixed_in: str = ""


@dataclass(slots=True, eq=False)
class Finding:
    """One named cause with the differences it explains and the derived differences folded into it."""

    rule: RuleInfo
    location: str
    causes: list[Difference]
    derived: list[Difference] = field(default_factory=list)
    note: str = ""
    """Rule-specific extra text (a seed check verdict, which files leak the build time)."""
    bytes: int = 0
    _memo: dict[str, tuple[list[Difference], int, object]] = field(default_factory=dict, init=False, repr=False)
    """What :attr:`chain` and :attr:`paths` computed, with the cause list (and its length) they were computed from."""

    def _memoized(self, name: str, compute: Callable[[], _T]) -> _T:
        """Return ``compute()``, kept while :attr:`causes` is the same list of the same length (renderers ask for
        the paths of a finding with 100,000 causes several times)."""
        causes = self.causes
        hit = self._memo.get(name)
        if hit is not None and hit[0] is causes and hit[1] == len(causes):
            return hit[2]  # type: ignore[return-value]
        value = compute()
        self._memo[name] = (causes, len(causes), value)
        return value

    @property
    def chain(self) -> tuple[str, ...]:
        """Return the scope chain all causes share (their longest common prefix)."""
        return self._memoized("chain", self._chain)

    def _chain(self) -> tuple[str, ...]:
        chains = [d.chain for d in self.causes]
        if not chains:
            return ()
        first = chains[0]
        n = len(first)
        for c in chains[1:]:
            n = min(n, len(c))
            for i in range(n):
                if c[i] != first[i]:
                    n = i
                    break
        return first[:n]

    @property
    def cause_count(self) -> int:
        """Return how many fields the causes stand for (a group difference counts its members)."""
        return sum(d.count for d in self.causes)

    @property
    def derived_count(self) -> int:
        """Return how many fields the derived differences stand for (a group difference counts its members)."""
        return sum(d.count for d in self.derived)

    @property
    def fields(self) -> list[str]:
        """Return the field references of the cause differences."""
        return [d.ref for d in self.causes]

    @property
    def paths(self) -> list[str]:
        """Return the filesystem paths involved, sorted and unique (do not change the list: it is kept)."""
        return self._memoized("paths", self._paths)

    def _paths(self) -> list[str]:
        out = {str(d.attrs["path"]) for d in self.causes if d.attrs.get("path") not in (None, "")}
        for d in self.causes:  # a group difference names its members (see ``member_paths``)
            members = d.attrs.get("member_paths")
            if isinstance(members, tuple):
                out.update(str(p) for p in members)
        return sorted(out)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the report says about one input image."""

    path: str
    size: int
    """Size in bytes (of the decompressed image when the input was compressed)."""
    format: str
    decompressed: str = ""
    """The input's compression (``"zstd"``, ``"xz"``, ``"gzip"``, ``"bzip2"``) when it was decompressed first."""


@dataclass(frozen=True, slots=True)
class SpaceInfo:
    """A decoded space of the comparison: where its offsets start, what it holds, its size on each side."""

    base: int
    label: str
    sizes: dict[str, int]


@dataclass(slots=True)
class Summary:
    """Byte accounting of one comparison."""

    bytes_compared: int
    bytes_differing: int
    bytes_unexplained: int


@dataclass(slots=True)
class Report:
    """The whole result of comparing two images; the only thing renderers and the TUI read."""

    a: ImageInfo
    b: ImageInfo
    summary: Summary
    findings: list[Finding]
    errors: list[str] = field(default_factory=list)
    """Partial-result notes: what could not be parsed, per image."""
    tree_a: Node | None = None
    tree_b: Node | None = None
    context: dict[str, str] = field(default_factory=dict)
    spaces: list[SpaceInfo] = field(default_factory=list)
    """Decoded spaces (decompressed streams, relocated image files) whose offsets some extents use."""
    sources: tuple[ByteSource, ByteSource] | None = None
    """Readers of both sides (image and decoded spaces) when the analysis kept them open; see :meth:`close`."""

    def read(self, side: str, offset: int, size: int) -> bytes | None:
        """Return bytes of side ``"a"``/``"b"`` at ``offset`` (decoded spaces included), or None when closed."""
        if self.sources is None:
            return None
        return self.sources[0 if side == "a" else 1].read(offset, size)

    def close(self) -> None:
        """Close the sources kept open by the analysis (idempotent)."""
        if self.sources is not None:
            for src in self.sources:
                src.close()
                base = getattr(src, "base", None)
                if base is not None:
                    base.close()
            self.sources = None

    @property
    def identical(self) -> bool:
        """Return True when the images are byte-identical (and, for two compressed inputs, so are the files)."""
        return self.summary.bytes_differing == 0 and self.a.size == self.b.size and not self.findings

"""What every format parser gets and gives: the parse context and the Format protocol.

A parser receives a :class:`ParseContext` (the read-only image, the byte ranges known to differ, a way to parse a
nested region) and the absolute range it owns, and returns a :class:`~imgdiff.model.Node` tree whose fields carry
absolute extents.  Parsers may build detail only where ``ctx.interesting()`` says bytes differ, and must still own
every byte of their range: unparsed bytes are left to a raw node so that nothing is silently dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from imgdiff.model import Extent, Node
from imgdiff.source import VBASE

if TYPE_CHECKING:
    from imgdiff.engine.spaces import SpaceTable
    from imgdiff.source import DiffMap, Source


@dataclass(slots=True)
class ParseContext:
    """Everything a parser may use: the image, what differs, nested parsing, error collection."""

    src: Source
    diff: DiffMap | None = None
    """Differing ranges in A offsets; ``side`` says how to map them onto this image."""
    side: str = "a"
    errors: list[str] = field(default_factory=list)
    nested: Callable[[ParseContext, int, int, str], Node] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    spaces: SpaceTable | None = None
    """The decoded spaces of this comparison (offsets at or above :data:`~imgdiff.source.VBASE`), if any."""
    depth: int = 0
    """How many images this region is nested in (a partition's filesystem is 0, a file image inside it 1)."""

    def interesting(self, ext: Extent) -> bool:
        """Return True when bytes inside ``ext`` (this image's offsets) differ from the other image."""
        if self.diff is None:
            return True
        if ext.offset >= VBASE and (self.spaces is None or not self.spaces.compared(ext.offset)):
            return True  # a decoded space not compared yet: everything may differ
        if self.side == "b":
            ext = ext.shifted(-self.diff.delta)
        return self.diff.intersects(ext)

    def read(self, offset: int, size: int) -> bytes:
        """Return ``size`` bytes at ``offset``, zero-padded past the end of the image."""
        data = self.src.read(offset, size)
        if len(data) < size:
            data += bytes(size - len(data))
        return data

    def parse_nested(self, base: int, size: int, label: str) -> Node:
        """Detect the format of ``[base, base + size)`` and parse it (raw if nothing recognises it)."""
        if self.nested is None:
            return raw_node(base, size, label)
        return self.nested(self, base, size, label)

    def decoded_space(self, name: str, payload: Source, label: str) -> int:
        """Make ``payload`` (bytes this parser decoded: a decompressed metadata block) readable at a decoded offset.

        Returns the offset of its first byte: the parser declares fields at ``offset + k`` for byte ``k`` of the
        payload, and declares the stored (compressed) bytes :class:`~imgdiff.model.Derived` with
        ``covers=(Extent(offset, payload.size),)``.  The space pairs with the other side's space of the same
        ``name`` opened by the same ``label`` (the n-th such call on each side), is compared once both sides are
        parsed, and only then does :meth:`interesting` know which of its bytes differ: build detail in a
        callback given to :meth:`defer`.
        """
        table = self.spaces
        if table is None:  # parsing alone (no comparison): a private table for this side
            from imgdiff.engine.spaces import SpaceTable
            from imgdiff.source import DiffMap, LayeredSource

            layered = LayeredSource(self.src)
            table = self.spaces = SpaceTable({self.side: layered}, DiffMap(base=0, length=0), standalone=True)
            self.src = layered
        return table.open_named(self.side, label, name, payload).base

    def peer(self, fmt: str, base: int, size: int, mine: object) -> object | None:
        """Share scan results between the two sides' parsers of the same region.

        Side A registers ``mine`` and gets None; side B gets what A registered for ``(fmt, base, size)`` (or None),
        when both images hold the region at the same offset.  B may then reuse what A scanned wherever
        :meth:`interesting` says no byte differs: the same bytes give the same structures.
        """
        if self.spaces is None or self.spaces.standalone or self.diff is None:
            return None
        key = (fmt, base, size)
        if self.side == "a":
            self.spaces.peers[key] = mine
            return None
        return self.spaces.peers.get(key) if self.diff.delta == 0 else None

    def defer(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the decoded spaces opened so far are compared (at once when parsing alone)."""
        if self.spaces is None or self.spaces.standalone:
            fn()
        else:
            self.spaces.deferred.append(fn)


HEAD_BYTES = 65536
"""Bytes at the start of a region handed to ``recognizes`` (a format may ask for more: :attr:`Format.HEAD_BYTES`)."""


@runtime_checkable
class Format(Protocol):
    """A format module (``imgdiff/formats/<fmt>/__init__.py``): recognises its magic and parses a region.

    Required: :attr:`NAME`, :meth:`recognizes`, :meth:`parse`; :func:`imgdiff.formats.load` checks them when it
    imports a :data:`~imgdiff.formats.REGISTRY` entry.  Optional (looked up with ``getattr``):

    * ``signature(head: bytes) -> tuple[str, str, int] | None``: the format's magic found in ``head`` whatever the
      region's size, as ``(what was found, the unit it starts, bytes that unit needs; 0 if unknown)``, e.g.
      ``("ext4 superblock", "filesystem", 8388608)``.  A region too short for ``recognizes`` (or whose parse fails)
      is then reported as ``"<NAME> (truncated)"`` with an error naming the sizes, instead of "unrecognised data".
    * ``HEAD_BYTES: int``: how many bytes of the region ``recognizes`` needs when that is more than
      :data:`HEAD_BYTES` (a magic past the first 64 KiB, such as the btrfs superblock's at 64 KiB + 0x40).
    """

    NAME: str
    """Short name shown in locations: ``"gpt"``, ``"ext4"``, ``"vfat"``."""

    def recognizes(self, head: bytes, size: int) -> bool:
        """Return True if ``head`` (the first :data:`HEAD_BYTES` of the region, fewer when the region is shorter)
        starts this format; ``size`` is the region's size."""
        ...

    def parse(self, ctx: ParseContext, base: int, size: int, label: str) -> Node:
        """Return the node tree of the region ``[base, base + size)`` (raise ParseError when it is unusable)."""
        ...


def raw_node(base: int, size: int, label: str, kind: str = "raw", key: str | None = None) -> Node:
    """Return a node that owns a region nothing parsed; its differing bytes count as unexplained."""
    return Node(kind=kind, key=key or "raw", label=label, extents=(Extent(base, size),) if size > 0 else (), raw=True)


def guid_le(raw: bytes) -> str:
    """Return the canonical text of a mixed-endian (GPT/EFI) GUID."""
    return str(uuid.UUID(bytes_le=bytes(raw)))

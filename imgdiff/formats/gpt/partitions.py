"""Partitions as nodes (each region handed to format detection) and raw nodes for the space between them.

Partitions are keyed by index and type (``part:2:root-x86-64``), never by offset, so that a moved partition aligns
with itself.

References:
    Discoverable Partitions Specification (uapi-group.org): the type names in partition keys.
"""

from __future__ import annotations

from imgdiff.formats.base import ParseContext, raw_node
from imgdiff.formats.gpt.table import Partition
from imgdiff.model import Extent, Node


def add_partitions(ctx: ParseContext, disk: Node, parts: list[Partition], owned: list[Extent], base: int,
                   size: int) -> None:
    """Append a ``partition`` node per entry of ``parts`` to ``disk`` (its region parsed) and add it to ``owned``."""
    for index, tname, pstart, plen, pguid in parts:
        if pstart >= size:
            disk.errors.append(f"partition {index} starts beyond the end of the image (offset {pstart})")
            continue
        if pstart + plen > size:
            disk.errors.append(f"partition {index} ends beyond the end of the image; truncated to the image")
            plen = size - pstart
        plabel = f"partition {index} ({tname})"
        pnode = Node(
            kind="partition",
            key=f"part:{index}:{tname}",
            label=plabel,
            extents=(Extent(base + pstart, plen),),
            attrs={"index": index, "ptype": tname, "guid": pguid, "scope": True},
        )
        pnode.children.append(ctx.parse_nested(base + pstart, plen, tname))
        disk.children.append(pnode)
        owned.append(Extent(base + pstart, plen))


def add_gaps(disk: Node, owned: list[Extent], base: int, size: int) -> None:
    """Append a raw node to ``disk`` for every gap between the ``owned`` extents of ``[base, base + size)``."""
    for gap in gaps(owned, base, base + size):
        disk.children.append(raw_node(gap.offset, gap.length, "unpartitioned space", key=f"gap@{gap.offset - base}"))


def gaps(owned: list[Extent], start: int, end: int) -> list[Extent]:
    """Return the pieces of ``[start, end)`` no extent in ``owned`` covers."""
    out: list[Extent] = []
    pos = start
    for e in sorted(owned):
        if e.offset > pos:
            out.append(Extent(pos, min(e.offset, end) - pos))
        pos = max(pos, e.end)
    if pos < end:
        out.append(Extent(pos, end - pos))
    return [g for g in out if g.length > 0]

"""Turn two parsed trees and their byte comparison into field-level :class:`Difference` objects.

1. Every differing byte range is looked up, by offset, in the field index of each tree; the nodes whose fields
   hold differing bytes are "touched".
2. Each touched node is paired with its partner in the other tree **by key chain** (partition index+type, file
   path), never by offset, and all fields of the pair are compared by name.
3. Differing bytes still covered by no difference are attributed by offset: to the field that holds them on each
   side (a node stored elsewhere, an entry order change), or, when no field holds them, to a raw difference of
   the deepest node that owns them.  So every differing byte ends in exactly one kind of difference.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import NamedTuple

from imgdiff.model import (
    POSITION,
    Change,
    Derived,
    Difference,
    Extent,
    Field,
    FieldSource,
    Node,
    Value,
    b_side_only,
    merge_extents,
    subtract_extents,
)
from imgdiff.source import MERGE_GAP, VBASE, DiffMap, Source, _xor_runs, xor_bytes

Keys = tuple[str, ...]

CONTENT_KEEP = 1 << 20
"""File contents up to this size are kept on the difference for the content-level report."""
DETAIL_RUNS = 8
"""At most this many differing ranges inside a file are listed in a difference's detail."""
EXCERPT = 32
"""Bytes shown (as hex) for a field whose decoded values are equal but whose bytes differ."""


@dataclass(slots=True)
class NodeInfo:
    """A built node with its key chain, human location, scope and scope chain."""

    keys: Keys
    node: Node
    location: str
    scope: str
    chain: tuple[str, ...] = ()
    """The scopes this node lies in, outermost first: ``("partition 1 (esp)", "vfat (FAT32)",
    "/EFI/nixos/initrd.efi", "zstd", "cpio archive")`` (see :func:`chain_step`)."""


def chain_step(node: Node) -> str | None:
    """Return what ``node`` adds to the scope chain of the nodes below it, or None.

    A scope (a partition, a filesystem, a nested image's root) adds its label; a file holding a nested image adds
    its path; a compressed stream holding one adds its kind (``zstd``).
    """
    attrs = node.attrs
    if attrs.get("nested"):
        return str(attrs.get("path") or node.label)
    if attrs.get("stream"):
        return str(attrs["stream"])
    if attrs.get("scope"):
        return node.label
    return None


class _GroupFields:
    """The fields of a group node as the index sees them (:class:`~imgdiff.model.FieldSource`'s lookups): a field
    narrowed to its members' extents inside the bytes asked for."""

    __slots__ = ("_sorted", "node")

    def __init__(self, node: Node) -> None:
        self.node = node
        self._sorted: list[tuple[list[int], list[Extent]]] | None = None

    def fields(self) -> list[Field]:
        return list(self.node.fields)

    def spans(self) -> list[Extent]:
        return list(self.node.extents)

    def fields_in(self, ext: Extent) -> list[Field]:
        if self._sorted is None:
            self._sorted = []
            for f in self.node.fields:
                exts = sorted(f.extents)
                self._sorted.append(([e.end for e in exts], exts))
        out = []
        for f, (ends, exts) in zip(self.node.fields, self._sorted, strict=True):
            i = bisect.bisect_right(ends, ext.offset)
            hit = []
            while i < len(exts) and exts[i].offset < ext.end:
                hit.append(exts[i])
                i += 1
            if hit:
                out.append(Field(f.name, f.value, tuple(hit), f.display))
        return out

    def comparable(self, other: object) -> bool:
        return False  # (group nodes are compared field by field: Attributor._group_diffs)

    def diff(self, other: object) -> list[tuple[Field | None, Field | None]]:
        raise NotImplementedError("group nodes are compared by Attributor._group_diffs")


@dataclass(slots=True)
class TreeIndex:
    """Field and node lookup for one tree: fields sorted by offset, nodes by key chain.

    The field index is four parallel sequences (start, end, node keys, field) rather than one tuple per row, the
    offsets in machine-integer arrays: a tree with tens of thousands of differing inodes indexes millions of
    field extents.
    """

    root: Node
    starts: array[int] = field(default_factory=lambda: array("q"))
    ends: array[int] = field(default_factory=lambda: array("q"))
    owner_keys: list[Keys] = field(default_factory=list)
    owner_fields: list[Field | FieldSource] = field(default_factory=list)
    nodes: dict[Keys, NodeInfo] = field(default_factory=dict)
    _differs: Callable[[Extent], bool] | None = None

    @classmethod
    def build(cls, root: Node, differs: Callable[[Extent], bool] | None = None) -> TreeIndex:
        """Index every node of ``root`` and the field extents of the nodes that hold differing bytes.

        ``differs(extent)`` says whether an extent holds differing bytes; fields lie inside their node's extents,
        so the fields of a node whose extents hold none can never be looked up by a differing offset.
        """
        idx = cls(root)
        rows = _Rows(array("q"), array("q"), [], [])
        idx._differs = differs
        idx._visit(root, (), None, "", rows)
        rs, re_, rk, rf = rows
        # (start, end) order, ties in visiting order: two stable sorts, by the minor key first
        order = sorted(range(len(rs)), key=re_.__getitem__)
        order.sort(key=rs.__getitem__)
        starts, ends, owner_keys, owner_fields = idx.starts, idx.ends, idx.owner_keys, idx.owner_fields
        last_end = -1
        for i in order:
            s, e = rs[i], re_[i]
            if s < last_end:  # overlapping fields: the first one keeps the bytes
                if e <= last_end:
                    continue
                s = last_end
            starts.append(s)
            ends.append(e)
            owner_keys.append(rk[i])
            owner_fields.append(rf[i])
            last_end = e
        return idx

    def _visit(self, node: Node, prefix: Keys, parent_loc: str | None, scope: str, rows: _Rows,
               chain: tuple[str, ...] = ()) -> None:
        """Index ``node`` and its children; ``parent_loc`` is the parent's location (None for the root and its
        children: the root's label is not part of the locations below it)."""
        keys = (*prefix, node.key)
        loc: str | None = None
        if prefix:
            loc = f"{parent_loc} / {node.label}" if parent_loc is not None else node.label
        if not prefix or node.attrs.get("scope"):
            scope = "/".join(keys)
        self.nodes[keys] = NodeInfo(keys, node, loc or node.label, scope or "/".join(keys), chain)
        step = chain_step(node) if prefix else None
        below = (*chain, step) if step is not None else chain
        differs = self._differs
        if differs is None or not node.extents:
            touched = True
        else:
            touched = False
            for e in node.extents:
                if differs(e):
                    touched = True
                    break
        if node.record is not None and touched:
            rs, re_, rk, rf = rows
            for span in node.record.spans():  # one row per run of members, not one per member
                rs.append(span.offset)
                re_.append(span.end)
                rk.append(keys)
                rf.append(node.record)
        if node.fields and touched and "group_size" in node.attrs:
            # a group node (fields with 50,000 member extents each): one row per stretch of member slots, its
            # fields narrowed to the members there when looked up (only bytes outside every difference are)
            rs, re_, rk, rf = rows
            source = _GroupFields(node)
            for off, length in node.extents:
                if length > 0:
                    rs.append(off)
                    re_.append(off + length)
                    rk.append(keys)
                    rf.append(source)
        elif node.fields and touched:
            rs, re_, rk, rf = rows
            for f in node.fields:
                exts = f.extents
                if len(exts) == 1:  # the common case, without the inner loop
                    off, length = exts[0]
                    if length > 0:
                        rs.append(off)
                        re_.append(off + length)
                        rk.append(keys)
                        rf.append(f)
                    continue
                for off, length in exts:
                    if length > 0:
                        rs.append(off)
                        re_.append(off + length)
                        rk.append(keys)
                        rf.append(f)
        nodes = self.nodes
        for c in node.children:
            if c.children or c.fields or c.record is None or "scope" in c.attrs:
                self._visit(c, keys, loc, scope, rows, below)
                continue
            # a leaf whose fields are a record (an inode among tens of thousands): _visit's work, inlined
            ckeys = (*keys, c.key)
            cloc = f"{loc} / {c.label}" if loc is not None else c.label
            nodes[ckeys] = NodeInfo(ckeys, c, cloc or c.label, scope or "/".join(ckeys), below)
            if differs is not None and c.extents:
                for e in c.extents:
                    if differs(e):
                        break
                else:
                    continue
            rs, re_, rk, rf = rows
            for span in c.record.spans():
                rs.append(span.offset)
                re_.append(span.end)
                rk.append(ckeys)
                rf.append(c.record)

    def fields_in(self, ext: Extent) -> Iterator[tuple[Keys, Field, Extent]]:
        """Yield ``(node keys, field, overlap)`` for each field extent overlapping ``ext``.

        A record's row stands for all its members: the members overlapping ``ext`` are built here.
        """
        starts, ends = self.starts, self.ends
        lo_ext, hi_ext = ext.offset, ext.offset + ext.length
        i = bisect.bisect_right(ends, lo_ext)
        n = len(starts)
        while i < n and starts[i] < hi_ext:
            lo, hi = max(starts[i], lo_ext), min(ends[i], hi_ext)
            owner = self.owner_fields[i]
            if isinstance(owner, Field):
                yield self.owner_keys[i], owner, Extent(lo, hi - lo)
            else:
                for f in owner.fields_in(Extent(lo, hi - lo)):
                    for off, length in f.extents:
                        flo, fhi = max(off, lo), min(off + length, hi)
                        if flo < fhi:
                            yield self.owner_keys[i], f, Extent(flo, fhi - flo)
            i += 1

    def lookup(self, keys: Keys) -> NodeInfo | None:
        """Return the node at ``keys``, building it lazily through ``Node.expand`` when needed."""
        info = self.nodes.get(keys)
        if info is not None:
            return info
        if len(keys) < 2:
            return None
        parent = self.lookup(keys[:-1])
        if parent is None:
            return None
        child = parent.node.child(keys[-1])
        if child is None:
            return None
        scope = "/".join(keys) if child.attrs.get("scope") else parent.scope
        loc = f"{parent.location} / {child.label}" if len(keys) > 2 else child.label
        step = chain_step(parent.node) if len(keys) > 2 else None
        info = NodeInfo(keys, child, loc, scope, (*parent.chain, step) if step is not None else parent.chain)
        self.nodes[keys] = info
        return info

    def deepest(self, offset: int) -> NodeInfo:
        """Return the deepest built node whose extents contain ``offset``.

        The search starts at the root, or, for an offset in a decoded space, at the node that owns that space.
        """
        node: Node = self.root
        keys: Keys = (self.root.key,)
        if offset >= VBASE:
            for k, info in self.nodes.items():
                if info.node.kind == "decoded" and any(e.offset <= offset < e.end for e in info.node.extents):
                    node, keys = info.node, k
                    break
        while True:
            nxt = None
            for c in node.children:
                if any(e.offset <= offset < e.end for e in c.extents):
                    nxt = c
                    break
            if nxt is None:
                break
            node, keys = nxt, (*keys, nxt.key)
        return self.nodes[keys]


class _Rows(NamedTuple):
    """The field extents collected while indexing, as parallel lists."""

    starts: array[int]
    ends: array[int]
    keys: list[Keys]
    fields: list[Field | FieldSource]


def count_bytes(dm: DiffMap, extents_a: tuple[Extent, ...] | list[Extent], extents_b: tuple[Extent, ...] | list[Extent]) -> int:
    """Return the differing bytes of the input images inside the union of A extents and B extents.

    B extents are mapped to A offsets; decoded spaces (offsets from :data:`~imgdiff.source.VBASE` on) are not
    bytes of the inputs and are not counted.
    """
    if len(extents_a) <= 1 and dm.delta == 0 and (not extents_b or tuple(extents_b) == tuple(extents_a)):
        merged: tuple[Extent, ...] = tuple(extents_a) or tuple(extents_b)  # the common case: one field, one place
        if len(merged) == 1 and merged[0].offset + merged[0].length <= VBASE:
            return dm.count_in(merged[0])
    elif not extents_a and len(extents_b) == 1 and dm.delta == 0:
        merged = tuple(extents_b)
    else:
        merged = merge_extents(list(extents_a) + [e.shifted(-dm.delta) for e in extents_b])
    total = 0
    for e in merged:
        if e.offset >= VBASE:
            break
        total += dm.count_in(e if e.end <= VBASE else Extent(e.offset, VBASE - e.offset))
    return total


def disjoint(extents: list[Extent]) -> bool:
    """Return True when no two of ``extents`` share a byte (touching is fine)."""
    end = -1
    for off, length in sorted(extents):
        if off < end:
            return False
        end = off + length
    return True


def _subtract(ext: Extent, covered: Sequence[Extent], ends: list[int]) -> list[Extent]:
    """Return the parts of ``ext`` outside ``covered`` (sorted and merged; ``ends`` are their end offsets).

    Used for many extents against one large cover: bisect finds where ``ext`` starts in it.
    """
    i = bisect.bisect_right(ends, ext.offset)
    return subtract_extents(ext, (covered[k] for k in range(i, len(covered))), presorted=True)


def _touched(ia: TreeIndex, ib: TreeIndex, dm: DiffMap) -> dict[Keys, None]:
    """Return the key chains of the nodes owning a field extent (records stay unbuilt) that a differing range
    overlaps, in the order met range by range: A's rows, then B's at the shifted offset.

    One pass over the sorted ranges and each index's rows (sorted, disjoint), not a binary search per range and
    side; a key chain met again in the next row is not stored again."""
    touched: dict[Keys, None] = {}
    sides = []
    for idx, shift in ((ia, 0), (ib, dm.delta)):
        sides.append((idx.starts, idx.ends, memoryview(idx.ends), idx.owner_keys, len(idx.starts), shift))
    at = [0, 0]
    last: list[Keys | None] = [None, None]
    for s0, e0 in zip(dm.starts, dm.ends, strict=True):
        for side, (starts, ends, view, owner_keys, n, shift) in enumerate(sides):
            off, hi = s0 + shift, e0 + shift
            i = at[side]
            if i < n and ends[i] <= off:  # (the runs are sorted: the rows before them are done with)
                i = at[side] = bisect.bisect_right(view, off, i + 1)
            while i < n and starts[i] < hi:
                keys = owner_keys[i]
                if keys is not last[side]:
                    touched[keys] = None
                    last[side] = keys
                i += 1
    return touched


class Attributor:
    """Compute the differences between two indexed trees given the byte comparison."""

    def __init__(self, tree_a: Node, tree_b: Node, dm: DiffMap, src_a: Source, src_b: Source) -> None:
        self.ia = TreeIndex.build(tree_a, dm.intersects)
        self.ib = TreeIndex.build(tree_b, lambda e: dm.intersects(e.shifted(-dm.delta)))
        self.dm = dm
        self.src_a = src_a
        self.src_b = src_b
        self._content_pairs: dict[int, tuple[Field, Field]] = {}
        self._blocks: dict[tuple[int, int], bytes] = {}
        self._paths: dict[Keys, str] = {}

    def run(
        self, given: list[Difference] | None = None, progress: Callable[[int, int], None] | None = None
    ) -> list[Difference]:
        """Return every difference, each with its differing byte count.

        ``given`` are differences found elsewhere (the image size); their extents count as covered.
        ``progress(done, total)`` is called while aligned node pairs are compared.
        """
        touched = _touched(self.ia, self.ib, self.dm)
        diffs: list[Difference] = []
        for i, keys in enumerate(touched):
            if progress is not None and i % 1000 == 0:
                progress(i, len(touched))
            diffs.extend(self._compare(keys))
        diffs = self._split_content(diffs)
        diffs.extend(replace(d, bytes=self._count(d.extents_a, d.extents_b)) for d in given or [])
        diffs.extend(self._leftovers(diffs))
        return diffs

    def _count(self, extents_a: tuple[Extent, ...], extents_b: tuple[Extent, ...]) -> int:
        return count_bytes(self.dm, extents_a, extents_b)

    # -- semantic comparison of one aligned pair -------------------------------------------------------------
    def _compare(self, keys: Keys) -> list[Difference]:
        ia = self.ia.lookup(keys)
        ib = self.ib.lookup(keys)
        info = ia or ib
        assert info is not None
        path = "/".join(keys)
        if ia is None or ib is None:
            change = Change.ADDED if ia is None else Change.REMOVED
            node = info.node
            ext = node.extents
            return [
                Difference(
                    node_path=path,
                    kind=node.kind,
                    field="(node)",
                    change=change,
                    a=node.label if ia is not None else None,
                    b=node.label if ib is not None else None,
                    extents_a=ext if ia is not None else (),
                    extents_b=ext if ib is not None else (),
                    location=info.location,
                    attrs=dict(node.attrs),
                    bytes=self._count(ext, ()) if ia is not None else self._count((), ext),
                    scope=info.scope,
                    chain=info.chain,
                )
            ]
        na, nb = ia.node, ib.node
        der_a = {d.field: d for d in na.derived}
        der_b = {d.field: d for d in nb.derived}
        if "group_size" in na.attrs and "group_size" in nb.attrs:
            return self._group_diffs(path, ia, na, nb, der_a, der_b)
        out: list[Difference] = []
        seen: set[str] = set()
        if na.attrs is nb.attrs:  # B's node shares A's (an ext4 inode with A's scan): nothing to merge
            attrs = na.attrs
        else:
            attrs = dict(nb.attrs)
            attrs.update(na.attrs)
        fields_a, fields_b = na.fields, nb.fields
        ra, rb = na.record, nb.record
        if ra is not None and rb is not None and ra.comparable(rb):
            pairs = ra.diff(rb)  # member by member from the raw bytes: no field built for equal members
            if not fields_a and not fields_b and not attrs.get("content"):  # a bulk object: the tight loop
                return self._record_diffs(path, ia, ib, pairs, attrs, der_a, der_b, self._xor_of(ra, rb))
            for ma, mb in pairs:
                if ma is None and mb is not None:
                    out.append(self._field_diff(path, ib, None, mb, attrs, None, der_b.get(mb.name)))
                elif ma is not None:
                    out.append(self._field_diff(path, ia, ma, mb, attrs, der_a.get(ma.name),
                                                der_b.get(mb.name) if mb is not None else None))
        elif ra is not None or rb is not None:
            fields_a, fields_b = na.all_fields(), nb.all_fields()
        names_b = {f.name: f for f in fields_b}
        for fa in fields_a:
            seen.add(fa.name)
            fb = names_b.get(fa.name)
            if fb is not None and fb.value == fa.value and (fa.name == "data" or self._same_bytes(fa, fb)):
                continue  # a file's data value is a digest of its content: equal values are equal content
            out.append(self._field_diff(path, ia, fa, fb, attrs, der_a.get(fa.name), der_b.get(fa.name)))
        for fb in fields_b:
            if fb.name not in seen:
                out.append(self._field_diff(path, ib, None, fb, attrs, None, der_b.get(fb.name)))
        return out

    def _group_diffs(
        self, path: str, info: NodeInfo, na: Node, nb: Node, der_a: dict[str, Derived], der_b: dict[str, Derived]
    ) -> list[Difference]:
        """Return one difference per field of a pair of group nodes (see :attr:`Difference.count`).

        A group node stands for many objects that differ alike (ext4 inodes whose only differing bytes are their
        checksums); a field's extents are those of the members whose field differs, one each.  Both sides form the
        group from the same bytes, so their members are the same.
        """
        names_b = {f.name: f for f in nb.fields}
        out: list[Difference] = []
        for fa in na.fields:
            fb = names_b.get(fa.name)
            if fb is None:
                continue
            da, db = der_a.get(fa.name), der_b.get(fa.name)
            dd = da or db
            ea, eb = fa.extents, fb.extents
            if ea == eb and self.dm.delta == 0 and (not ea or ea[-1].end <= VBASE):
                eb = ea  # the same places (both sides formed the group from the same bytes): count one side's
                n = self.dm.count_each(ea)  # disjoint: no merge of 50,000 extents needed
            else:
                n = self._count(ea, eb)
            out.append(Difference(
                path, na.kind, fa.name, Change.MODIFIED, fa.value, fb.value, ea, eb, info.location,
                na.attrs, fa.display, fb.display, n, dd is not None,
                da.covers if da is not None else (), db.covers if db is not None else (),
                dd.seeds if dd is not None else (), info.scope, info.chain, count=max(len(fa.extents), len(fb.extents)),
            ))
        return out

    def _record_diffs(
        self,
        path: str,
        info: NodeInfo,
        info_b: NodeInfo,
        pairs: list[tuple[Field | None, Field | None]],
        attrs: dict[str, Value],
        der_a: dict[str, Derived],
        der_b: dict[str, Derived],
        xor: tuple[int, bytes] | None = None,
    ) -> list[Difference]:
        """Return the differences of a record pair's differing members (what :meth:`_field_diff` makes of each).

        Tens of thousands of inode pairs differ in a rebuilt image: the node's constants are looked up once, and
        the common member (same value type, one extent, same place on both sides) is counted with one lookup, or
        from ``xor`` (where the records' bytes start, and A's bytes XOR B's: see :meth:`_xor_of`) when given.
        """
        out: list[Difference] = []
        dm = self.dm
        same_place = dm.delta == 0
        x_lo, x = xor if xor is not None else (0, b"")
        x_hi = x_lo + len(x)
        kind, location, scope, chain = info.node.kind, info.location, info.scope, info.chain
        for fa, fb in pairs:
            if fa is None:  # a member only B has: described where B has it
                if fb is not None:
                    out.append(self._field_diff(path, info_b, None, fb, attrs, None, der_b.get(fb.name)))
                continue
            if fb is None or fa.value == fb.value:
                out.append(self._field_diff(path, info, fa, fb, attrs, der_a.get(fa.name),
                                            der_b.get(fb.name) if fb is not None else None))
                continue
            ea, eb = fa.extents, fb.extents
            if ea == eb:
                eb = ea  # one tuple for both sides (200,000 differences of a rebuilt image keep them)
            if same_place and len(ea) == 1 and eb is ea and ea[0][0] + ea[0][1] <= VBASE:
                off, length = ea[0]
                if x_lo <= off and off + length <= x_hi:  # the differing bytes are the non-zero XOR bytes
                    n = length - x.count(0, off - x_lo, off - x_lo + length)
                else:
                    n = dm.count_in(ea[0])
            else:
                n = count_bytes(dm, ea, eb)
            name = fa.name
            da = der_a.get(name)
            db = der_b.get(name)
            dd = da or db
            out.append(Difference(
                path, kind, name, Change.MODIFIED, fa.value, fb.value, ea, eb, location, attrs,
                fa.display, fb.display, n, dd is not None,
                da.covers if da is not None else (), db.covers if db is not None else (),
                dd.seeds if dd is not None else (), scope, chain,
            ))
        return out

    def _xor_of(self, ra: object, rb: object) -> tuple[int, bytes] | None:
        """Return where two records' bytes start and their XOR, when both expose the same image bytes.

        A record that can (``raw_span()``: the absolute offset of its raw bytes, and the bytes) was read from the
        image at that offset, so where both sides' bytes lie at the same place inside the compared range, their
        XOR has a non-zero byte exactly where the diff map has a differing byte: a member's count is one
        ``bytes.count``, not a diff map lookup.  None otherwise (decoded spaces, shifted sides, past the end of
        the shorter image, different lengths).
        """
        span_a, span_b = getattr(ra, "raw_span", None), getattr(rb, "raw_span", None)
        if span_a is None or span_b is None or self.dm.delta:
            return None
        (off_a, raw_a), (off_b, raw_b) = span_a(), span_b()
        dm = self.dm
        if off_a != off_b or len(raw_a) != len(raw_b) or off_a < dm.base or off_a + len(raw_a) > dm.base + dm.length:
            return None
        if off_a + len(raw_a) > VBASE:
            return None
        return off_a, xor_bytes(raw_a, raw_b)

    def _same_bytes(self, fa: Field, fb: Field) -> bool:
        """Return True when the two fields' bytes are equal (for values decoded lossily, such as names)."""
        dm = self.dm
        delta = dm.delta
        if fa.extents == fb.extents if delta == 0 else fa.extents == tuple(e.shifted(-delta) for e in fb.extents):
            # DiffMap.intersects inlined: this runs for every equal-valued field of every touched node pair
            starts, ends = dm.starts, dm.ends
            n = len(starts)
            for off, length in fa.extents:
                i = bisect.bisect_right(memoryview(ends), off)
                if i < n and starts[i] < off + length:
                    return all(dm.count_in(e) == 0 for e in fa.extents)
            return True
        if fa.size != fb.size or fa.size > 4096:
            return fa.size == fb.size
        return self._small(0, fa.extents) == self._small(1, fb.extents)

    def _small(self, side: int, extents: tuple[Extent, ...]) -> bytes:
        """Return the bytes of a small field, through a cache of the 4 KiB blocks read last (a directory block's
        or inode table block's fields are compared one after another)."""
        src = self.src_b if side else self.src_a
        cache = self._blocks
        out = []
        for off, length in extents:
            end = off + length
            blk = off >> 12
            while off < end:
                key = (side, blk)
                data = cache.get(key)
                if data is None:
                    data = src.read(blk << 12, 4096)
                    if len(cache) >= 256:
                        del cache[next(iter(cache))]
                    cache[key] = data
                lo = off - (blk << 12)
                piece = data[lo : lo + end - off]
                out.append(piece)
                if len(piece) < min(end - off, 4096 - lo):
                    break  # past the end of the image
                off = (blk + 1) << 12
                blk += 1
        return b"".join(out)

    def _field_diff(
        self,
        path: str,
        info: NodeInfo,
        fa: Field | None,
        fb: Field | None,
        attrs: dict[str, Value],
        dec_a: object,
        dec_b: object,
    ) -> Difference:
        f = fa or fb
        assert f is not None
        change = Change.MODIFIED if fa is not None and fb is not None else (Change.REMOVED if fb is None else Change.ADDED)
        va, vb = (fa.value if fa else None), (fb.value if fb else None)
        if fa is not None and fb is not None and va == vb:
            # Same decoded value, different bytes (e.g. bytes after a NUL in a name): show where they differ.
            va, vb = self._bytes_excerpt(fa.extents, fb.extents)
        da = dec_a if isinstance(dec_a, Derived) else None
        db = dec_b if isinstance(dec_b, Derived) else None
        content = attrs.get("content") and f.name == "data" and fa is not None and fb is not None
        detail, content_a, content_b = self._content(fa, fb) if content else (None, None, None)  # type: ignore[arg-type]
        extents_a = fa.extents if fa else ()
        extents_b = fb.extents if fb else ()
        d = Difference(
            node_path=path,
            kind=info.node.kind,
            field=f.name,
            change=change,
            a=va,
            b=vb,
            extents_a=extents_a,
            extents_b=extents_b,
            location=info.location,
            attrs=attrs,
            display_a=fa.display if fa else None,
            display_b=fb.display if fb else None,
            bytes=self._count(extents_a, extents_b),
            derived=da is not None or db is not None,
            covers_a=da.covers if da else (),
            covers_b=db.covers if db else (),
            seeds=(da or db).seeds if (da or db) else (),  # type: ignore[union-attr]
            scope=info.scope,
            chain=info.chain,
            detail=detail,
            content_a=content_a,
            content_b=content_b,
        )
        if content:
            self._content_pairs[d.uid] = (fa, fb)  # type: ignore[assignment]
        return d

    def _content_fields(self, d: Difference, fa: Field, fb: Field) -> list[Difference]:
        """Return differences for named fields inside a changed file (gzip header time, PE timestamp, ...)."""
        from imgdiff.content import INSPECT_BYTES, inspect

        head_a = d.content_a if d.content_a is not None else _read_prefix(self.src_a, fa.extents, INSPECT_BYTES)
        head_b = d.content_b if d.content_b is not None else _read_prefix(self.src_b, fb.extents, INSPECT_BYTES)
        out: list[Difference] = []
        for cf in inspect(str(d.attrs.get("path", "")), head_a, head_b, fa.size, fb.size):
            out.append(
                Difference(
                    node_path=f"{d.node_path}/{cf.kind}",
                    kind=cf.kind,
                    field=cf.field,
                    change=cf.change,
                    a=cf.a,
                    b=cf.b,
                    extents_a=_file_range(fa.extents, cf.offset, cf.size),
                    extents_b=_file_range(fb.extents, cf.offset, cf.size),
                    location=f"{d.location} / {cf.kind.split('.', 1)[-1]}",
                    attrs=dict(d.attrs),
                    display_a=cf.display_a,
                    display_b=cf.display_b,
                    derived=cf.derived,
                    covers_a=fa.extents if cf.derived else (),
                    covers_b=fb.extents if cf.derived else (),
                    bytes=self._count(_file_range(fa.extents, cf.offset, cf.size),
                                      _file_range(fb.extents, cf.offset, cf.size)),
                    scope=d.scope,
                    chain=(*d.chain, str(d.attrs.get("path") or d.location), cf.kind.split(".", 1)[-1]),
                )
            )
        return out

    def _bytes_excerpt(self, ext_a: tuple[Extent, ...], ext_b: tuple[Extent, ...]) -> tuple[str, str]:
        """Return hex of at most :data:`EXCERPT` bytes of each side, from the first byte that differs."""
        start = 0
        pos = 0
        for ca, cb in zip(_rechunk(_stream(self.src_a, ext_a)), _rechunk(_stream(self.src_b, ext_b)), strict=False):
            runs = next(_xor_runs(ca[: len(cb)], cb[: len(ca)]), None)
            if runs is not None:
                start = pos + runs[0]
                break
            pos += len(ca)
        a = _read_prefix(self.src_a, _file_range(ext_a, start, EXCERPT), EXCERPT)
        b = _read_prefix(self.src_b, _file_range(ext_b, start, EXCERPT), EXCERPT)
        where = f"@+0x{start:x}: " if start else ""
        return where + a.hex(), where + b.hex()

    def _content(self, fa: Field, fb: Field) -> tuple[str | None, bytes | None, bytes | None]:
        """Return the differing ranges inside a file as text, and both contents when small enough to keep."""
        runs: list[tuple[int, int]] = []
        pos = 0
        ra, rb = _rechunk(_stream(self.src_a, fa.extents)), _rechunk(_stream(self.src_b, fb.extents))
        for ca, cb in zip(ra, rb, strict=False):
            n = min(len(ca), len(cb))
            if ca[:n] != cb[:n]:
                for s, e in _xor_runs(ca[:n], cb[:n]):
                    if runs and runs[-1][1] == pos + s:
                        runs[-1] = (runs[-1][0], pos + e)
                    else:
                        runs.append((pos + s, pos + e))
            pos += n
        parts = [f"0x{s:x}-0x{e - 1:x} ({e - s} bytes)" for s, e in runs[:DETAIL_RUNS]]
        more = f" and {len(runs) - DETAIL_RUNS} more ranges" if len(runs) > DETAIL_RUNS else ""
        if fa.size != fb.size:
            parts.append(f"size {fa.size} -> {fb.size}")
        detail = "differing bytes in the file: " + ", ".join(parts) + more if parts else None
        if fa.size <= CONTENT_KEEP and fb.size <= CONTENT_KEEP:
            return detail, _read(self.src_a, fa.extents), _read(self.src_b, fb.extents)
        return detail, None, None

    def _split_content(self, diffs: list[Difference]) -> list[Difference]:
        """Add named in-file differences; drop a file's ``data`` difference when they name all its bytes."""
        out: list[Difference] = []
        for d in diffs:
            pair = self._content_pairs.get(d.uid)
            subs = self._content_fields(d, *pair) if pair is not None else []
            if not subs:
                out.append(d)
                continue
            subs[0] = replace(subs[0], content_a=d.content_a, content_b=d.content_b, detail=d.detail)
            out.extend(subs)
            taken = [e for s in subs for e in s.extents_a]
            same_place = d.extents_a == tuple(e.shifted(-self.dm.delta) for e in d.extents_b)
            rest = [p for e in d.extents_a for p in subtract_extents(e, taken)]
            if not same_place or any(self.dm.count_in(p) for p in rest):
                out.append(d)  # other bytes of the file differ too: the file-level difference stays
        return out

    # -- differing bytes not covered by a semantic difference ------------------------------------------------
    def _all_covered(self, diffs: list[Difference]) -> bool:
        """Return True when every differing byte lies in a difference, known from the counts alone.

        That holds when the differences' A extents are disjoint, none has B extents of its own, no differing run
        lies in a decoded space, and their byte counts add up to every differing byte (a rebuilt image: 212,648
        differences, whose extents would otherwise be merged and subtracted from each of 108,394 runs).
        """
        dm = self.dm
        if dm.ends and dm.ends[-1] > VBASE:
            return False
        total = 0
        exts: list[Extent] = []
        for d in diffs:
            if b_side_only(d, dm.delta):
                return False
            exts.extend(d.extents_a)
            total += d.bytes
        return total == dm.total and disjoint(exts)

    def _leftovers(self, diffs: list[Difference]) -> list[Difference]:
        if self._all_covered(diffs):
            return []
        delta = self.dm.delta
        covered = merge_extents(
            [e for d in diffs for e in d.extents_a]
            + [e.shifted(-delta) for d in diffs for e in b_side_only(d, delta)]
        )
        out: dict[tuple[str, str, str], Difference] = {}
        ends = [c.end for c in covered]
        self._pending: dict[int, tuple[Difference, list[Extent], list[Extent], list[Extent]]] = {}
        self._counted: dict[int, int] = {}
        """Per pending difference: the differing bytes of its pieces, counted while they were attributed (in
        offset order, so the blocks they cut are still cached); -1 when one could not be counted that way."""
        self._moved_at: dict[tuple[Keys | None, Keys | None, str], tuple[int, tuple[
            Difference, list[Extent], list[Extent], list[Extent]]]] = {}
        """The pending difference of each (A node, B node, field) seen so far."""
        dm = self.dm
        for r in dm.ranges():
            for piece in _subtract(r, covered, ends):
                if piece.length < MERGE_GAP and not dm.count_in(piece):
                    continue  # an equal gap inside a merged run, between covered fields
                self._attribute_piece(piece, out)
        del covered, ends
        done: list[Difference] = []
        counted = self._counted
        # each pending difference is dropped as its final one is made (a shifted image has ~570,000 of them)
        out.clear()
        self._moved_at.clear()
        pending, self._pending = self._pending, {}
        for uid in list(pending):
            d, exts, covers_a, covers_b = pending.pop(uid)
            extents_a = d.extents_a + tuple(exts)
            a, b = d.a, d.b
            if d.change == Change.MODIFIED and a is None:  # same node on both sides: show the bytes
                a, b = self._bytes_excerpt(extents_a, tuple(e.shifted(self.dm.delta) for e in extents_a))
            n = counted.get(d.uid, -1)
            if n < 0 or d.extents_a or any(x.end > y.offset for x, y in pairwise(exts)):
                n = self._count(extents_a, ())  # overlapping pieces (or a decoded-space edge): count the union
            done.append(replace(
                d, extents_a=extents_a, a=a, b=b, bytes=n,
                derived=d.derived or bool(covers_a or covers_b),
                covers_a=tuple(dict.fromkeys(covers_a)) or d.covers_a, covers_b=tuple(dict.fromkeys(covers_b)) or d.covers_b,
            ))
        return done

    def _attribute_piece(self, piece: Extent, out: dict[tuple[str, str, str], Difference]) -> None:
        """Attribute a stretch of uncovered differing bytes by offset: a field on either side, else raw."""
        delta = self.dm.delta
        owned: list[Extent] = []
        hits_a = list(self.ia.fields_in(piece))
        hits_b = list(self.ib.fields_in(piece.shifted(delta)))
        by_off_b = {o.shifted(-delta).offset: (k, f, o) for k, f, o in hits_b}
        # A piece is a differing run, merged across equal gaps shorter than MERGE_GAP: an overlap at least that
        # long holds a differing byte; a shorter one may lie in a gap and is kept only if it holds one.
        dm = self.dm
        for keys, f, o in hits_a:
            other = by_off_b.pop(o.offset, None)
            owned.append(o)
            n = dm.count_in(o)
            if o.length < MERGE_GAP and not n:
                continue
            kb = other[0] if other else None
            self._moved(out, keys, f, o, kb, other[1] if other else None, side="a", count=n)
        for keys, f, o in by_off_b.values():
            oa = o.shifted(-delta)
            owned.append(oa)
            n = dm.count_in(oa)
            if oa.length < MERGE_GAP and not n:
                continue
            self._moved(out, None, None, oa, keys, f, side="b", count=n)
        for gap in subtract_extents(piece, owned):
            n = dm.count_in(gap)
            if gap.length < MERGE_GAP and not n:
                continue  # equal bytes between two differing runs, which nothing owns
            info = self.ia.deepest(gap.offset) if gap.offset < self.src_a.size else self.ib.deepest(gap.offset + delta)
            path = "/".join(info.keys)
            key = (path, "(unparsed)", Change.RAW)
            d = out.get(key)
            if d is None:
                d = Difference(
                    node_path=path,
                    kind=info.node.kind,
                    field="(unparsed)",
                    change=Change.RAW,
                    a=None,
                    b=None,
                    extents_a=(),
                    extents_b=(),
                    location=info.location,
                    attrs=dict(info.node.attrs),
                    scope=info.scope,
                    chain=info.chain,
                )
                out[key] = d
            self._pending.setdefault(d.uid, (d, [], [], []))[1].append(gap)
            self._tally(d.uid, gap, n)

    def _tally(self, uid: int, ext: Extent, n: int) -> None:
        """Add ``n`` differing bytes of piece ``ext`` to pending difference ``uid`` (input bytes only)."""
        if ext.offset >= VBASE:
            n = 0  # decoded-space bytes are not bytes of the inputs
        elif ext.offset + ext.length > VBASE:
            self._counted[uid] = -1
            return
        was = self._counted.get(uid, 0)
        if was >= 0:
            self._counted[uid] = was + n

    def _moved(
        self,
        out: dict[tuple[str, str, str], Difference],
        keys_a: Keys | None,
        f_a: Field | None,
        ext: Extent,
        keys_b: Keys | None,
        f_b: Field | None,
        side: str,
        count: int,
    ) -> None:
        """Record bytes whose owner field holds another node's value on the other side (or equal values).

        ``count`` is the number of differing bytes in ``ext``."""
        f = f_a or f_b
        assert f is not None
        at = (keys_a, keys_b, f.name)
        hit = self._moved_at.get(at)
        if hit is None:
            hit = self._moved_at[at] = self._moved_difference(out, keys_a, f, keys_b)
        uid, pending = hit
        pending[1].append(ext)
        self._tally(uid, ext, count)

    def _joined(self, keys: Keys) -> str:
        """Return ``keys`` as a node path, one string per node (each of its moved fields shares it)."""
        path = self._paths.get(keys)
        if path is None:
            path = self._paths[keys] = "/".join(keys)
        return path

    def _moved_difference(
        self, out: dict[tuple[str, str, str], Difference], keys_a: Keys | None, f: Field, keys_b: Keys | None,
    ) -> tuple[int, tuple[Difference, list[Extent], list[Extent], list[Extent]]]:
        """Return the pending difference for ``f`` of the node at ``keys_a`` / ``keys_b`` (made on first use)."""
        keys = keys_a or keys_b
        assert keys is not None
        info = (self.ia.nodes.get(keys_a) if keys_a else None) or self.ib.nodes[keys_b]  # type: ignore[index]
        path = self._joined(keys)
        same = keys_a is not None and keys_a == keys_b
        change = Change.MODIFIED if same else Change.MOVED
        key = (path, f.name, change)
        d = out.get(key)
        if d is None:
            other_a = self._joined(keys_a) if keys_a else None
            other_b = self._joined(keys_b) if keys_b else None
            d = Difference(
                node_path=path,
                kind=info.node.kind,
                field=f.name,
                change=change,
                a=other_a if not same else None,
                b=other_b if not same else None,
                extents_a=(),
                extents_b=(),
                location=info.location,
                attrs=info.node.attrs,  # shared, never changed: a shifted image has a moved field per node
                scope=info.scope,
                chain=info.chain,
                detail=None if same else "A and B store different nodes' data at these bytes",
            )
            out[key] = d
        # A node may declare what its position depends on (``Derived(POSITION, covers=...)``: the bytes stored
        # before it); bytes it holds at another offset in the other image are then a consequence of whatever
        # moved it, folded like any derived field.
        pending = self._pending.setdefault(d.uid, (d, [], [], []))
        pending[2].extend(_position_covers(self.ia, keys_a))
        pending[3].extend(_position_covers(self.ib, keys_b))
        return d.uid, pending


def _position_covers(index: TreeIndex, keys: Keys | None) -> tuple[Extent, ...]:
    """Return what the position of the node at ``keys`` depends on, as its parser declared (``POSITION``)."""
    if keys is None:
        return ()
    info = index.nodes.get(keys)
    if info is None:
        return ()
    for dv in info.node.derived:
        if dv.field == POSITION:
            return dv.covers
    return ()


def _file_range(extents: tuple[Extent, ...], offset: int, size: int) -> tuple[Extent, ...]:
    """Map ``[offset, offset + size)`` inside a file onto the absolute extents that store the file."""
    out: list[Extent] = []
    pos = 0
    for e in extents:
        lo, hi = max(offset, pos), min(offset + size, pos + e.length)
        if lo < hi:
            out.append(Extent(e.offset + lo - pos, hi - lo))
        pos += e.length
        if pos >= offset + size:
            break
    return tuple(out)


def _read_prefix(src: Source, extents: tuple[Extent, ...], limit: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    for e in extents:
        if got >= limit:
            break
        n = min(e.length, limit - got)
        parts.append(src.read(e.offset, n))
        got += n
    return b"".join(parts)


def _read(src: Source, extents: tuple[Extent, ...]) -> bytes:
    return b"".join(src.read(e.offset, e.length) for e in extents)


def _stream(src: Source, extents: tuple[Extent, ...], chunk: int = 1 << 20) -> Iterator[bytes]:
    for e in extents:
        pos = e.offset
        while pos < e.end:
            n = min(chunk, e.end - pos)
            yield src.read(pos, n)
            pos += n


def _rechunk(parts: Iterator[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Yield the concatenation of ``parts`` in chunks of exactly ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    for p in parts:
        buf += p
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)

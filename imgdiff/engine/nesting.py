"""Images inside images: files whose content is an image, archive or compressed stream are parsed in turn.

After both trees are parsed, every built file node (``attrs["content"]`` with a ``data`` field: an ext4 or vfat
file, a cpio member, data after a cpio archive, ...) is looked at on both sides, paired by key chain:

* content that a registered format recognises (a FAT image in an ext4, an ext4 in an ISO, a cpio archive) and
  that is stored at the same bytes on both sides is parsed **in place**: the nested tree's fields carry the
  image's own byte offsets (mapped through the file's extents when it is fragmented), so every differing byte of
  the outer image lands on a nested field;
* content stored at different places in A and B is parsed as a **copy** in a decoded space (aligned by the
  file's key, not its offset), and the file's bytes become a derived field of that space;
* a gzip/xz/zstd/bzip2 stream whose decoded payload a format recognises is **decoded** into a decoded space
  (bounded: :data:`MAX_STREAM`, :data:`MAX_TOTAL`); the file's bytes become the stream's header fields and derived
  compressed data (:mod:`imgdiff.formats.compressed`).

Decoded spaces are compared (:mod:`imgdiff.engine.spaces`) before their contents are parsed, so nested parsers
build detail only where decoded bytes differ.  Nested trees may hold further images: rounds repeat up to
:data:`MAX_DEPTH` levels.  A file that only one side holds as an image, or whose payload fails to decode, stays a
plain file, with a message saying why.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType

from imgdiff.engine.spaces import SpaceTable
from imgdiff.errors import ImgdiffError
from imgdiff.formats.base import ParseContext
from imgdiff.model import Derived, Extent, Field, Node
from imgdiff.source import VBASE, DiffMap, MappedSource, Source
from imgdiff.streams import StreamError, chunks, decode, open_extents, stream_kind

Keys = tuple[str, ...]

MAX_DEPTH = 4
"""Images nested deeper than this (counting the outermost filesystem as 0) are left as plain files."""
MAX_STREAM = 4 << 30
"""A compressed file whose payload decodes to more than this is left as a plain file."""
MAX_TOTAL = 16 << 30
"""Decoded bytes per comparison (both sides together) at most; later streams are left as plain files."""
HEAD = 65536
"""Bytes of a file (or of its decoded payload) shown to the format detectors."""
MIN_IMAGE = 512
"""Files smaller than this are never images."""

_PARSE_ERRORS = (ImgdiffError, ValueError, struct.error, IndexError, KeyError, EOFError, OverflowError)


@dataclass(slots=True)
class Holder:
    """A built file node whose content may be an image, with its key chain."""

    keys: Keys
    node: Node
    data: Field

    def view(self, src: Source) -> MappedSource:
        """Return the file's content as a view (``file_offsets``/``size`` attrs make holes of a sparse file)."""
        offs = self.node.attrs.get("file_offsets")
        size = self.node.attrs.get("size")
        return MappedSource(src, self.data.extents, offsets=offs if isinstance(offs, tuple) else None,  # type: ignore[arg-type]
                            size=size if isinstance(size, int) else None)

    def contiguous(self) -> bool:
        """Return True when the file is one stored extent from its first byte to its end (no holes)."""
        view = MappedSource(_NullSource(), self.data.extents)
        size = self.node.attrs.get("size")
        offs = self.node.attrs.get("file_offsets")
        return (len(self.data.extents) == 1 and (not isinstance(offs, tuple) or offs in ((), (0,)))
                and (not isinstance(size, int) or size == view.size))


class _NullSource:
    path = ""
    size = 0

    def read(self, offset: int, size: int) -> bytes:
        return b""

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        return iter(())

    def close(self) -> None:
        return None


@dataclass(slots=True)
class Plan:
    """What to do with one side's file: parse in place, in a copy space, or decode a stream."""

    how: str
    """``"inplace"``, ``"copy"`` or ``"stream"``."""
    module: ModuleType
    kind: str = ""
    """The stream kind for ``"stream"``."""


def _head() -> int:
    """Return the bytes of a file (or decoded payload) the detectors see: enough for every registered format."""
    from imgdiff.formats import head_bytes

    return max(HEAD, head_bytes())


def detectors(decoded: bool = False) -> list[ModuleType]:
    """Return the format modules tried on a file's content: partition tables and filesystems, and, for a decoded
    payload, cpio archives (an uncompressed cpio file is left to the content recognisers, which compare its member
    headers and order)."""
    from imgdiff.formats import FILESYSTEMS, gpt
    from imgdiff.formats import cpio as cpio_format
    from imgdiff.formats import load as _load_builtin

    if not FILESYSTEMS:
        _load_builtin()
    return [cpio_format, gpt, *FILESYSTEMS] if decoded else [gpt, *FILESYSTEMS]


def detect(head: bytes, size: int, decoded: bool = False) -> ModuleType | None:
    """Return the first format module that recognises ``head`` (a file of ``size`` bytes), or None."""
    if size < MIN_IMAGE:
        return None
    for mod in detectors(decoded):
        try:
            if mod.recognizes(head, size):
                return mod
        except (IndexError, struct.error, ValueError):
            continue
    return None


def holders(root: Node, prefix: Keys = ()) -> Iterator[Holder]:
    """Yield the built file nodes under ``root`` whose ``data`` field could hold an image."""
    stack: list[tuple[Keys, Node]] = [((*prefix, root.key), root)]
    while stack:
        keys, node = stack.pop()
        if node.attrs.get("content") and not node.attrs.get("nested"):
            f = node.field_named("data")
            if f is not None and f.extents and f.size >= MIN_IMAGE // 8:
                yield Holder(keys, node, f)
        for c in reversed(node.children):
            stack.append(((*keys, c.key), c))


class Nester:
    """Runs the nesting rounds of one comparison (both sides)."""

    def __init__(self, trees: dict[str, Node], ctxs: dict[str, ParseContext], table: SpaceTable, dm: DiffMap,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.trees = trees
        self.ctxs = ctxs
        self.table = table
        self.dm = dm
        self.progress = progress
        self.decoded_total = 0

    def run(self) -> None:
        """Nest until no new image is found or :data:`MAX_DEPTH` is reached."""
        self.table.settle()  # spaces the parsers opened themselves (compressed metadata), and their callbacks
        frontier: dict[str, list[tuple[Keys, Node]]] = {s: [((), t)] for s, t in self.trees.items()}
        for depth in range(1, MAX_DEPTH + 1):
            found: dict[str, dict[Keys, Holder]] = {}
            for side, roots in frontier.items():
                found[side] = {}
                for prefix, root in roots:
                    for h in holders(root, prefix):
                        found[side][h.keys] = h
            if not any(found.values()):
                return
            frontier = self._round(found, depth)
            if not any(frontier.values()):
                return
        for side, roots in frontier.items():
            for prefix, root in roots:
                for h in holders(root, prefix):
                    if self._plan(side, h, depth=MAX_DEPTH + 1) is not None:
                        msg = f"{h.node.label}: an image nested deeper than {MAX_DEPTH} levels is not analysed"
                        h.node.errors.append(msg)
                        self.ctxs[side].errors.append(msg)

    # -- one round ------------------------------------------------------------------------------------------------

    def _round(self, found: dict[str, dict[Keys, Holder]], depth: int) -> dict[str, list[tuple[Keys, Node]]]:
        keys = list(dict.fromkeys([*found.get("a", {}), *found.get("b", {})]))
        attached: dict[str, list[tuple[Keys, Node]]] = {"a": [], "b": []}
        later: list[Callable[[], None]] = []
        for i, k in enumerate(keys):
            if self.progress is not None and i % 100 == 0:
                self.progress(i, len(keys))
            pair = {s: found[s].get(k) for s in ("a", "b")}
            ha, hb = pair["a"], pair["b"]
            if ha is not None and hb is not None and ha.data.value == hb.data.value:
                continue  # equal content (the value is its digest), moved or not: nothing inside can differ
            plans = {s: (self._plan(s, h, depth) if h is not None else None) for s, h in pair.items()}
            if not any(plans.values()):
                continue
            self._schedule(k, pair, plans, depth, attached, later)
        self.table.settle()
        for fn in later:
            fn()
        self.table.settle()
        return attached

    def _plan(self, side: str, h: Holder, depth: int) -> Plan | None:
        if depth > MAX_DEPTH:
            return None
        src = self.ctxs[side].src
        view = h.view(src)
        head = view.read(0, _head())
        kind = stream_kind(head)
        if kind is not None:
            first = self._head_of(kind, view)
            mod = detect(first, MAX_STREAM, decoded=True)
            return Plan("stream", mod, kind) if mod is not None else None
        mod = detect(head, view.size)
        return Plan("inplace", mod) if mod is not None else None

    @staticmethod
    def _head_of(kind: str, view: MappedSource) -> bytes:
        out = bytearray()
        gen = chunks(kind, open_extents(view, (Extent(0, view.size),)), MAX_STREAM)
        try:
            for block in gen:
                out += block
                if len(out) >= _head():
                    break
        except StreamError:
            pass  # a corrupt stream: detect on what decoded
        finally:
            gen.close()
        return bytes(out[: _head()])

    def _schedule(self, k: Keys, pair: dict[str, Holder | None], plans: dict[str, Plan | None], depth: int,
                  attached: dict[str, list[tuple[Keys, Node]]], later: list[Callable[[], None]]) -> None:
        ha, hb = pair["a"], pair["b"]
        same_place = (ha is not None and hb is not None and ha.data.extents == hb.data.extents)
        for side in ("a", "b"):
            h, plan = pair[side], plans[side]
            if h is None or plan is None:
                continue
            if plan.how == "inplace" and not same_place and (pair["b" if side == "a" else "a"] is not None):
                plan = Plan("copy", plan.module)
            if plan.how == "inplace":
                self._inplace(side, h, plan, depth, attached)
            elif plan.how == "copy":
                space = self.table.open(side, "/".join(k) + "#copy", h.node.label, h.view(self.ctxs[side].src))
                later.append(self._deferred(side, h, plan, space.base, space.sizes[side], depth, attached, "copy"))
            else:
                self._stream(side, k, h, plan, depth, attached, later)

    # -- the three ways ---------------------------------------------------------------------------------------

    def _ctx(self, side: str, depth: int, src: object | None = None, diff: DiffMap | None = None) -> ParseContext:
        base = self.ctxs[side]
        return ParseContext(src=src or base.src, diff=diff if diff is not None else base.diff,  # type: ignore[arg-type]
                            side=side, errors=base.errors, nested=base.nested, options=base.options,
                            spaces=base.spaces, depth=depth)

    def _parse(self, ctx: ParseContext, plan: Plan, base: int, size: int, label: str) -> Node | None:
        try:
            node: Node = plan.module.parse(ctx, base, size, label)
        except _PARSE_ERRORS as exc:
            msg = f"{label}: {plan.module.NAME} could not be parsed: {exc}"
            ctx.errors.append(msg)
            return None
        return node

    def _inplace(self, side: str, h: Holder, plan: Plan, depth: int,
                 attached: dict[str, list[tuple[Keys, Node]]]) -> None:
        exts = h.data.extents
        label = str(h.node.attrs.get("path") or h.node.label)
        if h.contiguous():
            node = self._parse(self._ctx(side, depth), plan, exts[0].offset, exts[0].length, label)
        else:
            node = self._parse_view(side, h, plan, depth, label)
        if node is None:
            return
        h.node.fields = tuple(f for f in h.node.fields if f.name != "data")
        self._adopt(h, node, plan.module.NAME)
        attached[side].append((h.keys, node))

    def _parse_view(self, side: str, h: Holder, plan: Plan, depth: int, label: str) -> Node | None:
        """Parse a fragmented file through its extents, then move every offset onto the image's bytes."""
        base_ctx = self.ctxs[side]
        view = h.view(base_ctx.src)
        view_dm = _view_diff(self.dm, view, side)
        ctx = self._ctx(side, depth, src=view, diff=view_dm)
        node = self._parse(ctx, plan, 0, view.size, label)
        if node is not None:
            translate(node, view)
        return node

    def _stream(self, side: str, k: Keys, h: Holder, plan: Plan, depth: int,
                attached: dict[str, list[tuple[Keys, Node]]], later: list[Callable[[], None]]) -> None:
        from imgdiff.formats.compressed import stream_node

        if self.decoded_total >= MAX_TOTAL:
            msg = f"{h.node.label}: not decoded: {MAX_TOTAL} decoded bytes already analysed in this comparison"
            h.node.errors.append(msg)
            self.ctxs[side].errors.append(msg)
            return
        src = self.ctxs[side].src
        view = h.view(src)
        result = decode(plan.kind, open_extents(view, (Extent(0, view.size),)),
                        min(MAX_STREAM, MAX_TOTAL - self.decoded_total), f"{h.node.label} ({plan.kind})")
        if result.error:
            msg = f"{h.node.label}: {result.error}"
            h.node.errors.append(msg)
            self.ctxs[side].errors.append(msg)
            if result.size == 0:
                return
        self.decoded_total += result.size
        space = self.table.open(side, "/".join(k) + "#" + plan.kind, f"{h.node.label} ({plan.kind})", result.source)
        stream = stream_node(plan.kind, view, space.extent(side), h.node.label, h.node.attrs)
        h.node.fields = tuple(f for f in h.node.fields if f.name != "data")
        self._adopt(h, stream, plan.kind)
        payload = stream.children[0]
        label = f"{h.node.attrs.get('path') or h.node.label!s} ({plan.kind})"

        def run() -> None:
            node = self._parse(self._ctx(side, depth), plan, space.base, result.size, label)
            if node is not None:
                payload.children.append(node)
                attached[side].append(((*h.keys, stream.key, payload.key), node))

        later.append(run)

    def _deferred(self, side: str, h: Holder, plan: Plan, base: int, size: int, depth: int,
                  attached: dict[str, list[tuple[Keys, Node]]], how: str) -> Callable[[], None]:
        from imgdiff.formats.compressed import copy_node

        def run() -> None:
            label = str(h.node.attrs.get("path") or h.node.label)
            node = self._parse(self._ctx(side, depth), plan, base, size, label)
            if node is None:
                return
            payload = copy_node(Extent(base, size), label)
            payload.children.append(node)
            h.node.derived = (*h.node.derived, Derived("data", covers=(Extent(base, size),)))
            self._adopt(h, payload, f"{plan.module.NAME} ({how})")
            attached[side].append(((*h.keys, payload.key), node))

        return run

    @staticmethod
    def _adopt(h: Holder, child: Node, what: str) -> None:
        h.node.children.append(child)
        h.node.attrs["nested"] = what
        h.node.attrs["content"] = False
        h.node._indexed = 0
        h.node._by_key = {}


def _view_diff(dm: DiffMap, view: MappedSource, side: str) -> DiffMap:
    """Return ``dm``'s differing ranges inside a fragmented file, in the file's own offsets."""
    out = DiffMap(base=0, length=view.size, src_a=view, src_b=view)
    delta = dm.delta if side == "b" else 0
    for i, e in enumerate(view.extents):
        start = view.starts[i]  # the file offset of this extent (holes between extents hold no bytes)
        probe = Extent(e.offset - delta, e.length)
        lo = max(0, _bisect_right(dm.ends, probe.offset))
        while lo < len(dm.starts) and dm.starts[lo] < probe.end:
            s, t = max(dm.starts[lo], probe.offset), min(dm.ends[lo], probe.end)
            if t > s:
                out.add_run(start + s - probe.offset, start + t - probe.offset)
            lo += 1
    return out


def _bisect_right(a: Sequence[int], x: int) -> int:
    import bisect

    return bisect.bisect_right(a, x)


def translate(root: Node, view: MappedSource) -> None:
    """Move every extent of a tree parsed in ``view`` offsets onto the image's offsets (in place, lazily too)."""

    def ext(exts: tuple[Extent, ...]) -> tuple[Extent, ...]:
        out: list[Extent] = []
        for e in exts:
            if e.offset >= VBASE:
                out.append(e)
            else:
                out.extend(view.to_parent(e.offset, e.length))
        return tuple(out)

    done: set[int] = set()

    def fix(node: Node) -> None:
        done.add(id(node))
        node.extents = ext(node.extents)
        if node.record is not None:  # a record's members know only view offsets: make them fields, then move them
            node.fields, node.record = node.all_fields(), None
        node.fields = tuple(Field(f.name, f.value, ext(f.extents), f.display) for f in node.fields)
        node.derived = tuple(Derived(d.field, ext(d.covers), d.seeds) for d in node.derived)
        if node.expand is not None:
            inner = node.expand

            def expand(key: str, inner: Callable[[str], Node | None] = inner) -> Node | None:
                found = inner(key)
                if found is not None and id(found) not in done:
                    fix_tree(found)
                return found

            node.expand = expand

    def fix_tree(node: Node) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            if id(n) not in done:
                fix(n)
            stack.extend(n.children)

    fix_tree(root)


__all__ = ["Nester", "detect", "translate"]

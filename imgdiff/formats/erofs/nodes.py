"""EROFS nodes: inodes (core, xattrs), directory blocks and entries, file data, shared xattrs.

Built from the walk of :mod:`imgdiff.formats.erofs.scan`; every extent here is absolute.  Objects whose bytes do
not differ are built lazily (``Node.expand``), so a large image with a few differing bytes builds a few nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import Compiled, blob_display, blob_value
from imgdiff.formats.erofs.c_erofs import (
    DATALAYOUTS,
    EROFS_XATTR_ENTRY,
    EROFS_XATTR_IBODY_HEADER,
    FILE_TYPES,
    XATTR_PREFIXES,
)
from imgdiff.formats.erofs.scan import COMPACT, DIRENT, EXTENDED, DirBlock, Dirent, Fs, Inode, Reader
from imgdiff.model import Derived, Extent, Field, Node, Value, subtract_extents

IBODY = Compiled(EROFS_XATTR_IBODY_HEADER)
XENTRY = Compiled(EROFS_XATTR_ENTRY)
MAX_XATTRS = 4096
EAGER = 0
"""Images with at most this many inodes build every node; others build the nodes whose bytes differ and the rest
on demand (building every file node would also make the engine look into every file for nested images)."""


def _time(v: object) -> str | None:
    try:
        return datetime.fromtimestamp(int(v), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")  # type: ignore[call-overload]
    except (OverflowError, OSError, ValueError, TypeError):
        return None


class Builder:
    """Turns the walk into nodes (absolute extents), eagerly or on demand."""

    def __init__(self, ctx: ParseContext, r: Reader, fs: Fs) -> None:
        self.ctx = ctx
        self.r = r
        self.fs = fs
        self.base = r.base
        self.owned: list[Extent] = []
        self.shared: dict[int, tuple[str, Extent, bytes]] = {}
        self.xattr_base = 0
        self.zero_padding = True

    def a(self, e: Extent) -> Extent:
        """Return a region extent as an absolute one."""
        return Extent(self.base + e.offset, e.length)

    def differs(self, exts: list[Extent]) -> bool:
        """Return True when any region extent in ``exts`` may hold differing bytes."""
        return any(self.ctx.interesting(self.a(e)) for e in exts if e.length)

    # -- inodes ---------------------------------------------------------------------------------------------
    def inode_extents(self, ino: Inode) -> list[Extent]:
        """Return the region extents of an inode's metadata (core, xattrs, inline tail/indexes, slot padding)."""
        end = -(-ino.meta_end // 32) * 32
        inline = [e for _o, e in ino.data if ino.loc <= e.offset < end]
        clusters = getattr(ino.zinfo, "clusters", ())
        inline += [Extent(c.pa, c.plen) for c in clusters if ino.loc <= c.pa < end]
        return subtract_extents(Extent(ino.loc, end - ino.loc), inline)

    def inode(self, ino: Inode) -> Node:
        """Return the ``erofs.inode`` node of ``ino``."""
        comp = EXTENDED if ino.extended else COMPACT
        head = self.r.read(ino.loc, ino.isize)
        fields = comp.fields(head, 0, self.base + ino.loc, display={
            "i_mode": lambda v: f"0o{int(v):o}",
            "i_format": lambda v: ("extended" if int(v) & 1 else "compact") + ", " + DATALAYOUTS.get(
                (int(v) >> 1) & 7, "unknown layout"),
            "i_mtime": _time,
        })
        pos = ino.loc + ino.isize
        if ino.xattr_size:
            fields.extend(self._xattrs(ino, pos))
            pos += ino.xattr_size
        if ino.index is not None:
            if ino.index.offset > pos:
                fields.append(Field("index_pad", "zero", (self.a(Extent(pos, ino.index.offset - pos)),)))
            raw = self.r.read(ino.index.offset, ino.index.length)
            fields.append(Field("chunk_indexes", blob_value(raw), (self.a(ino.index),),
                                f"{ino.index.length} bytes"))
            pos = ino.index.end
        elif ino.compressed and ino.meta_end > pos:
            idx_end = getattr(getattr(ino.zinfo, "indexes", None), "end", ino.meta_end)
            raw = self.r.read(pos, idx_end - pos)
            fields.append(Field("z_erofs_indexes", blob_value(raw), (self.a(Extent(pos, idx_end - pos)),),
                                f"{idx_end - pos} bytes: map header and cluster indexes"))
            pos = ino.meta_end  # a tail-packed cluster after the indexes belongs to the file
        else:
            pos = max(pos, ino.meta_end)  # an inline tail belongs to the file's data
        end = -(-ino.meta_end // 32) * 32
        if end > pos:
            raw = self.r.read(pos, end - pos)
            fields.append(Field("slot_padding", blob_value(raw), (self.a(Extent(pos, end - pos)),),
                                blob_display(raw)))
        attrs: dict[str, Value] = {"path": ino.path, "file_type": ino.file_type, "nid": ino.nid,
                                   "layout": "extended" if ino.extended else "compact"}
        if len(ino.paths) > 1:
            attrs["paths"] = tuple(ino.paths)
        node = Node(kind="erofs.inode", key=ino.path, label=f"inode {ino.nid} ({ino.path})",
                    extents=tuple(self.a(e) for e in self.inode_extents(ino)), fields=tuple(fields), attrs=attrs,
                    errors=list(ino.errors))
        return node

    def _xattrs(self, ino: Inode, pos: int) -> list[Field]:
        out: list[Field] = []
        body = self.r.read(pos, ino.xattr_size)
        out.extend(IBODY.fields(body, 0, self.base + pos))
        shared = body[4]
        p = 12
        for k in range(shared):
            if p + 4 > len(body):
                break
            xid = int.from_bytes(body[p : p + 4], "little")
            name = self.shared_entry(xid)
            out.append(Field(f"h_shared_xattrs[{k}]", xid, (self.a(Extent(pos + p, 4)),), name))
            p += 4
        seen: dict[str, int] = {}
        for _ in range(MAX_XATTRS):
            if p + 4 > len(body):
                break
            nlen, idx, vsize = body[p], body[p + 1], int.from_bytes(body[p + 2 : p + 4], "little")
            total = -(-(4 + nlen + vsize) // 4) * 4
            if p + total > len(body) or (nlen == 0 and vsize == 0):
                break
            name = XATTR_PREFIXES.get(idx, f"[{idx}]") + body[p + 4 : p + 4 + nlen].decode("utf-8", "replace")
            n = seen.get(name, 0) + 1
            seen[name] = n
            value = body[p + 4 + nlen : p + 4 + nlen + vsize]
            fname = f"xattr:{name}" if n == 1 else f"xattr:{name}#{n}"
            out.append(Field(fname, blob_value(value), (self.a(Extent(pos + p, total)),), f"{vsize} bytes"))
            p += total
        if p < len(body):
            out.append(Field("xattr_pad", blob_value(body[p:]), (self.a(Extent(pos + p, len(body) - p)),)))
        return out

    def shared_entry(self, xid: int) -> str:
        """Record the shared xattr ``xid`` (its entry in the shared area) and return its name."""
        got = self.shared.get(xid)
        if got is not None:
            return got[0]
        off = self.xattr_base + xid * 4
        head = self.r.read(off, 4)
        nlen, idx, vsize = head[0], head[1], int.from_bytes(head[2:4], "little")
        total = -(-(4 + nlen + vsize) // 4) * 4
        raw = self.r.read(off, total)
        name = XATTR_PREFIXES.get(idx, f"[{idx}]") + raw[4 : 4 + nlen].decode("utf-8", "replace")
        self.shared[xid] = (name, Extent(off, total), raw[4 + nlen : 4 + nlen + vsize])
        return name

    # -- files ----------------------------------------------------------------------------------------------
    def file(self, ino: Inode) -> Node:
        """Return the ``erofs.file`` node of a non-directory inode's data."""
        exts = tuple(self.a(e) for _o, e in ino.data)
        fields: list[Field] = []
        attrs: dict[str, Value] = {"path": ino.path, "file_type": ino.file_type, "size": ino.size, "nid": ino.nid}
        if ino.file_type == "lnk":
            target = b"".join(self.r.read(e.offset, e.length) for _o, e in ino.data)
            fields.append(Field("data", target.decode("utf-8", "surrogateescape"), exts, "symlink target"))
        elif exts:
            fields.append(Field("data", self._digest(list(exts)), exts, f"{ino.size} bytes"))
            attrs["content"] = True
            offs = tuple(o for o, _e in ino.data)
            if offs != tuple(sum(e.length for _o, e in ino.data[:i]) for i in range(len(ino.data))):
                attrs["file_offsets"] = offs  # holes (chunk-based sparse files)
        if ino.slack:
            sl = tuple(self.a(e) for e in ino.slack)
            raw = b"".join(self.ctx.read(e.offset, e.length) for e in sl)
            fields.append(Field("slack", blob_value(raw), sl, blob_display(raw)))
        ext_all = exts + tuple(self.a(e) for e in ino.slack)
        node = Node(kind="erofs.file", key=ino.path, label=f"file data of {ino.path}", extents=ext_all,
                    fields=tuple(fields), attrs=attrs)
        if ino.slack:
            node.derived = (Derived("slack", covers=exts),)
        return node

    def _digest(self, exts: list[Extent]) -> Value:
        if not any(self.ctx.interesting(e) for e in exts):
            return None
        total = sum(e.length for e in exts)
        if total <= 64:
            return b"".join(self.ctx.read(e.offset, e.length) for e in exts)
        h = hashlib.sha256()
        for e in exts:
            pos = e.offset
            while pos < e.end:
                n = min(1 << 20, e.end - pos)
                h.update(self.ctx.read(pos, n))
                pos += n
        return "sha256:" + h.hexdigest()[:16]

    # -- directories ----------------------------------------------------------------------------------------
    def directory(self, ino: Inode) -> Node:
        """Return the ``erofs.dir`` node: one ``erofs.dir_block`` per block, one ``erofs.dirent`` per entry."""
        node = Node(kind="erofs.dir", key=ino.path, label=f"directory {ino.path}",
                    extents=tuple(self.a(e) for b in ino.dir_blocks for e in b.extents),
                    attrs={"path": ino.path, "file_type": "dir", "nid": ino.nid})
        for blk in ino.dir_blocks:
            node.children.append(self._dir_block(ino, blk))
        return node

    def _dir_block(self, ino: Inode, blk: DirBlock) -> Node:
        fields: list[Field] = []
        if blk.tail:
            raw = b"".join(self.r.read(e.offset, e.length) for e in blk.tail)
            fields.append(Field("tail", blob_value(raw), tuple(self.a(e) for e in blk.tail), blob_display(raw)))
        node = Node(kind="erofs.dir_block", key=f"blk:{blk.index}", label=f"directory block {blk.index}",
                    extents=tuple(self.a(e) for e in blk.extents), fields=tuple(fields),
                    attrs={"path": ino.path, "file_type": "dir"})
        used: dict[str, int] = {}
        for d in blk.entries:
            n = used.get(d.name, 0) + 1
            used[d.name] = n
            node.children.append(self._dirent(ino, d, n))
        return node

    def _dirent(self, ino: Inode, d: Dirent, n: int) -> Node:
        raw = self.r.read(d.rec, 12)
        fields = DIRENT.fields(raw, 0, self.base + d.rec, display={"file_type": lambda v: FILE_TYPES.get(int(v))})
        fields.append(Field("name", d.name, (self.a(Extent(d.name_off, d.name_len)),) if d.name_len else ()))
        path = ino.path if d.name in (".", "..") else ino.path.rstrip("/") + "/" + d.name
        target = self.fs.inodes.get(d.nid)
        return Node(kind="erofs.dirent", key=d.name if n == 1 else f"{d.name}#{n}", label=f"entry {d.name}",
                    extents=(self.a(Extent(d.rec, 12)), self.a(Extent(d.name_off, d.name_len))), fields=tuple(fields),
                    attrs={"path": path, "file_type": FILE_TYPES.get(d.file_type, "unknown"), "nid": d.nid,
                           "target_layout": ("extended" if target.extended else "compact") if target else ""},
                    derived=(Derived("nid", seeds=("erofs.inode:i_format",)),))

    # -- shared xattrs --------------------------------------------------------------------------------------
    def shared_node(self) -> Node | None:
        """Return the ``erofs.xattrs`` node of the shared xattr entries referenced by inodes built so far."""
        if not self.shared:
            return None
        fields = [Field(f"xattr@{xid}:{name}", blob_value(value), (self.a(ext),), f"{len(value)} bytes")
                  for xid, (name, ext, value) in sorted(self.shared.items())]
        return Node(kind="erofs.xattrs", key="shared-xattrs", label="shared xattrs",
                    extents=tuple(f.extents[0] for f in fields), fields=tuple(fields))


def lazy_group(kind: str, key: str, label: str, built: list[Node], later: dict[str, Callable[[], Node]]) -> Node:
    """Return a group node holding ``built`` children and building those in ``later`` on demand by key."""
    node = Node(kind=kind, key=key, label=label, children=built)
    if later:
        def expand(k: str) -> Node | None:
            fn = later.pop(k, None)
            return fn() if fn is not None else None

        node.expand = expand
    return node

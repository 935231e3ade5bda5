"""squashfs 4.0 filesystems: every stored byte as a field, compressed tables and file contents decoded.

The parser reads the superblock, decodes the metadata tables (inode, directory, fragment, export, id, xattr id and
xattr tables; :mod:`.metadata`) and opens each decoded table as a decoded space, walks the directory tree from the
root inode to name every inode by path (:mod:`.directories`, :mod:`.inodes`), and maps every stored data block and
fragment block to its file (:mod:`.data`).  Nodes are then built only where bytes differ: stored metadata blocks,
data blocks and fragment blocks where the image's bytes differ, a file's decoded content (a decoded space named by
its path) where its stored blocks differ, and, once the engine has compared the decoded spaces (``ctx.defer``), the
inodes, directory listings and table entries whose decoded bytes differ (plus any the engine asks for by key).
Parsing alone builds everything.

Tree (keys in brackets; stored bytes below, decoded spaces under ``decoded`` nodes)::

    squashfs [squashfs]                       fields: padding (to 4 KiB), unused, unreferenced gaps
      squashfs.superblock [superblock]
      squashfs.compressor_options [comp_opts]
      squashfs.data [data]                    the data region
        squashfs.file [<path>]                block N (stored), data (decoded content: content=True)
        squashfs.fragment_block [frag:N]
      squashfs.inode_table [inodes]           -> squashfs.metadata_block [blk:N], decoded [decoded]
        decoded -> squashfs.inode [<path>]
      squashfs.directory_table [dirs]         -> metadata blocks, decoded -> squashfs.directory [<path>]
        squashfs.directory -> squashfs.dir_header [header:N], squashfs.dirent [<name>]
      squashfs.fragment_table [fragments]     -> metadata blocks, squashfs.table_index [index], decoded ->
                                                 squashfs.fragment [frag:N]
      squashfs.export_table [export]          -> ..., decoded -> squashfs.export_entry [ino:N]
      squashfs.id_table [ids]                 -> ..., decoded -> squashfs.id [id:N]
      squashfs.xattr_table [xattrs]           -> metadata blocks, decoded -> squashfs.xattr_set [<path> | xid:N]
      squashfs.xattr_id_table [xattr_ids]     -> metadata blocks, squashfs.xattr_table_header [header], index,
                                                 decoded -> squashfs.xattr_id [xid:N]
      squashfs.unchanged [unchanged]          instead of all the above but the superblock, in a comparison where
                                              no byte after the superblock (and compressor options) differs

Positions (table starts, block indexes, ``start_block`` s, inode references) are declared
:class:`~imgdiff.model.Derived` from the stored bytes before them, stored blocks from the decoded bytes they hold,
sizes and counts from what they measure: a changed field takes every byte that moved or was recompressed because
of it, and equal payloads compressed differently are left to the "compressed differently" rule.

References:
    squashfs-tools 4.5.1 (the Debian 12 mksquashfs) ``squashfs-tools/squashfs_fs.h``, ``mksquashfs.c``
    (``write_filesystem_tables``, ``generic_write_table``, ``create_inode``, ``dir_scan``, padding to 4 KiB at
    the end of ``main``), ``xattr.c``; https://github.com/plougher/squashfs-tools;
    Linux ``fs/squashfs/`` (``super.c``, ``inode.c``, ``dir.c``, ``file.c``, ``cache.c``, ``export.c``, ``id.c``,
    ``xattr.c``); https://dr-emann.github.io/squashfs/ (format description).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from imgdiff.formats.base import ParseContext
from imgdiff.formats.squashfs import c_squashfs as cs
from imgdiff.formats.squashfs.data import (
    Block,
    BlockCache,
    FileContent,
    FragmentCache,
    file_blocks,
    file_node,
    fragment_block_node,
)
from imgdiff.formats.squashfs.decompress import Decoder, MissingDecompressor, decoder
from imgdiff.formats.squashfs.directories import EntryCovers, Listing, directory_node, parse_listing
from imgdiff.formats.squashfs.inodes import InodeCovers, InodeError, InodeRec, decode_inode, inode_node
from imgdiff.formats.squashfs.metadata import (
    Table,
    block_nodes,
    gap_field,
    index_node,
    position_cover,
    read_table,
)
from imgdiff.formats.squashfs.superblock import SB_SIZE, comp_opts_node, read_super, super_node
from imgdiff.formats.squashfs.tables import (
    XattrSet,
    fragment_entries,
    fragment_node,
    id_node,
    lookup_node,
    xattr_id_node,
    xattr_ids,
    xattr_set,
    xattr_set_node,
    xattr_table_header_node,
)
from imgdiff.model import POSITION, Derived, Extent, Field, Node, Value, merge_extents, subtract_extents
from imgdiff.source import BytesSource

NAME = "squashfs"

FIRST = SB_SIZE
"""Positions are derived from the stored bytes from here on (everything after the superblock)."""
PAD = 4096
"""mksquashfs pads the image to a multiple of 4 KiB (unless ``-nopad``)."""
MAX_INODES = 1 << 24
MAX_DEPTH = 4096


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region starts with a squashfs 4.0 superblock."""
    return (size >= SB_SIZE and len(head) >= 32 and head[:4] == b"hsqs"
            and int.from_bytes(head[28:30], "little") == 4)


@dataclass(slots=True)
class FileRec:
    """A regular file found by the walk: its inode and where its bytes are stored."""

    path: str
    rec: InodeRec
    blocks: list[Block]
    owned: list[bool] = field(default_factory=list)
    """Per block: True when this file is the first to refer to it (duplicates share blocks)."""

    @property
    def stored(self) -> list[Extent]:
        """Return the stored extents of its data blocks (relative positions)."""
        return [Extent(b.pos, b.stored) for b in self.blocks if b.stored]


class _Parser:
    """One squashfs region of one side."""

    def __init__(self, ctx: ParseContext, fs: int, size: int, label: str) -> None:
        self.ctx = ctx
        self.fs = fs
        self.size = size
        self.label = label
        self.errors: list[str] = []
        self.standalone = ctx.diff is None

    # -- reading ---------------------------------------------------------------------------------------------------

    def read(self, off: int, n: int) -> bytes:
        """Read ``n`` bytes at relative offset ``off`` (zero-padded past the region)."""
        if off >= self.size or n <= 0:
            return bytes(max(0, n))
        data = self.ctx.read(self.fs + off, min(n, self.size - off))
        return data + bytes(n - len(data))

    def interesting(self, ext: Extent) -> bool:
        """Return True when the (absolute) extent holds differing bytes."""
        return ext.length > 0 and self.ctx.interesting(ext)

    def error(self, msg: str) -> None:
        """Record a partial-result message."""
        self.errors.append(msg)
        self.ctx.errors.append(f"{self.label}: {msg}")

    # -- parse -----------------------------------------------------------------------------------------------------

    def parse(self) -> Node:
        head = self.read(0, SB_SIZE)
        sb = self.sb = read_super(head, self.size)
        self.root = Node(kind="squashfs", key="squashfs", label="squashfs",
                         extents=(Extent(self.fs, self.size),),
                         attrs={"scope": True, "fs": "squashfs", "region": self.label,
                                "compression": cs.COMPRESSORS.get(sb.compression, "?"), "block_size": sb.block_size})
        self.data_start = SB_SIZE
        comp_node = None
        if sb.flags & cs.SQUASHFS_COMP_OPT:
            comp_node, n = comp_opts_node(self.read(SB_SIZE, 2 + 64), sb.compression, self.fs, SB_SIZE)
            self.data_start += n
        try:
            self.decode: Decoder = decoder(sb.compression)
        except MissingDecompressor as exc:
            self.error(f"cannot decode {cs.COMPRESSORS.get(sb.compression, '?')} blocks: {exc}")
            self.root.children.append(super_node(head, self.fs, {}))
            if comp_node is not None:
                self.root.children.append(comp_node)
            rest = self.data_start
            self.root.children.append(Node(kind="raw", key="raw", label="not decoded",
                                           extents=(Extent(self.fs + rest, self.size - rest),), raw=True,
                                           errors=[str(exc)]))
            self.root.errors.extend(self.errors)
            return self.root
        after = Extent(self.fs + self.data_start, self.size - self.data_start)
        if not self.standalone and not self.interesting(after):
            # nothing past the superblock and compressor options differs: no table needs decoding (a pair that
            # differs in mkfs_time alone costs a superblock, not a walk of every inode)
            self.root.children.append(super_node(head, self.fs, {}))
            if comp_node is not None:
                self.root.children.append(comp_node)
            self.root.children.append(Node(kind="squashfs.unchanged", key="unchanged", label="tables and data (equal)",
                                           extents=(after,) if after.length else ()))
            return self.root
        self._layout()
        self._walk()
        self._data()
        self._order_attrs()
        self.root.children.append(super_node(head, self.fs, self._super_covers()))
        if comp_node is not None:
            self.root.children.append(comp_node)
        self.root.children.append(self.data_node)
        self.root.children.extend(self.table_nodes)
        self._tail_fields()
        self.root.errors.extend(self.errors)
        self.ctx.defer(self._deferred)
        return self.root

    # -- layout: where every table is ------------------------------------------------------------------------------

    def _pointers(self, pos: int, count: int, name: str = "table") -> list[int]:
        room = max(0, (self.sb.bytes_used - pos) // 8) if self._valid(pos) else 0
        if count > room:  # a count the image cannot hold (hostile or corrupt superblock)
            self.error(f"{name}: block index of {count} entries does not fit before bytes_used; {room} read")
            count = room
        raw = self.read(pos, 8 * count)
        return [int.from_bytes(raw[8 * i : 8 * i + 8], "little") for i in range(count)]

    def _valid(self, pos: int) -> bool:
        return self.data_start <= pos <= self.sb.bytes_used

    def _layout(self) -> None:
        sb = self.sb
        md = cs.SQUASHFS_METADATA_SIZE
        self.regions: list[tuple[int, int, str]] = []
        """Stored ranges owned by a table node (relative), for the gap fields."""
        self.frag_ptrs = (self._pointers(sb.fragment_table_start, -(-sb.fragments * 16 // md), "fragment table")
                          if sb.fragments else [])
        self.lookup_ptrs = (self._pointers(sb.lookup_table_start, -(-sb.inodes * 8 // md), "export table")
                            if sb.has_lookup and self._valid(sb.lookup_table_start) else [])
        self.id_ptrs = (self._pointers(sb.id_table_start, -(-sb.no_ids * 4 // md), "id table")
                        if self._valid(sb.id_table_start) else [])
        self.xhdr = b""
        self.xid_ptrs: list[int] = []
        self.xattr_table_start = 0
        self.xattr_count = 0
        if sb.has_xattrs and self._valid(sb.xattr_id_table_start):
            self.xhdr = self.read(sb.xattr_id_table_start, 16)
            self.xattr_table_start = int.from_bytes(self.xhdr[:8], "little")
            self.xattr_count = int.from_bytes(self.xhdr[8:12], "little")
            if self.xattr_count > 1 << 24:
                self.error(f"xattr_ids {self.xattr_count} is implausible")
                self.xattr_count = 0
            self.xid_ptrs = self._pointers(sb.xattr_id_table_start + 16, -(-self.xattr_count * 16 // md),
                                           "xattr id table")
        starts = [p for p in (
            (self.frag_ptrs[0] if self.frag_ptrs else sb.fragment_table_start),
            (self.lookup_ptrs[0] if self.lookup_ptrs else (sb.lookup_table_start if sb.has_lookup else None)),
            (self.id_ptrs[0] if self.id_ptrs else sb.id_table_start),
            (self.xattr_table_start if self.xhdr else None),
            (sb.xattr_id_table_start if sb.has_xattrs else None),
        ) if p is not None and self._valid(p) and p >= sb.directory_table_start]
        dir_end = min(starts, default=sb.bytes_used)
        t_inode = self._table("inode table", sb.inode_table_start, sb.directory_table_start)
        t_dir = self._table("directory table", sb.directory_table_start, dir_end)
        t_frag = self._table("fragment table", self.frag_ptrs[0] if self.frag_ptrs else sb.fragment_table_start,
                             sb.fragment_table_start, sb.fragments * 16)
        t_lookup = (self._table("export table", self.lookup_ptrs[0], sb.lookup_table_start, sb.inodes * 8)
                    if self.lookup_ptrs else None)
        t_id = self._table("id table", self.id_ptrs[0] if self.id_ptrs else sb.id_table_start, sb.id_table_start,
                           sb.no_ids * 4)
        t_xattr = t_xid = None
        if self.xhdr:
            xid_first = self.xid_ptrs[0] if self.xid_ptrs else sb.xattr_id_table_start
            t_xattr = self._table("xattr table", self.xattr_table_start, xid_first)
            t_xid = self._table("xattr id table", xid_first, sb.xattr_id_table_start, self.xattr_count * 16)
        self.itab, self.dtab, self.ftab, self.ltab, self.idtab = t_inode, t_dir, t_frag, t_lookup, t_id
        self.xtab, self.xidtab = t_xattr, t_xid
        for t in (t_inode, t_dir, t_frag, t_lookup, t_id, t_xattr, t_xid):
            if t is None:
                continue
            if t.error:
                self.error(t.error)
            if t.data:
                t.base = self.ctx.decoded_space(t.name, BytesSource(t.data), self.label)

    def _table(self, name: str, start: int, end: int, expect: int | None = None) -> Table:
        if not (self._valid(start) and self._valid(end)) or end < start:
            self.error(f"{name}: position {start}..{end} is outside the filesystem")
            return Table(name=name, start=start, end=start)
        t = read_table(self.read, self.decode, name, start, end, expect)
        if expect is not None and len(t.data) < expect and not t.error:
            t.error = f"{name}: {len(t.data)} decoded bytes, {expect} expected"
        return t

    # -- the tree walk ---------------------------------------------------------------------------------------------

    def _inode_at(self, block: int, offset: int) -> InodeRec | None:
        doff = self.itab.decoded(block, offset)
        if doff is None:
            return None
        rec = self.inodes.get(doff)
        if rec is None:
            try:
                rec = decode_inode(self.itab.data, doff, self.sb.block_log)
            except InodeError as exc:
                self.error(str(exc))
                return None
            self.inodes[doff] = rec
        return rec

    def _walk(self) -> None:
        sb = self.sb
        self.inodes: dict[int, InodeRec] = {}
        self.paths: dict[int, list[str]] = {}
        """Inode decoded offset -> its paths (walk order)."""
        self.listings: dict[str, tuple[Listing, InodeRec]] = {}
        self.entry_inode: dict[tuple[str, int], int] = {}
        """(directory path, entry index) -> the entry's inode decoded offset."""
        self.parent: dict[str, str] = {}
        root = self._inode_at(sb.root_inode >> 16, sb.root_inode & 0xFFFF)
        if root is None or root.file_type != "dir":
            self.error("the root inode is not a directory")
            return
        self.root_off = root.off
        self.paths[root.off] = ["/"]
        stack: list[tuple[str, InodeRec, int]] = [("/", root, 0)]
        seen_dirs = {root.off}
        while stack:
            path, rec, depth = stack.pop()
            start = self.dtab.decoded(rec.vals["start_block"], rec.vals["offset"])
            length = max(0, rec.vals["file_size"] - 3)
            if start is None:
                if length:
                    self.error(f"{path}: directory listing reference is outside the directory table")
                lst = Listing(0, 0)
            else:
                lst = parse_listing(self.dtab.data, start, length)
                if lst.error:
                    self.error(f"{path}: {lst.error}")
            self.listings[path] = (lst, rec)
            subdirs: list[tuple[str, InodeRec, int]] = []
            for j, e in enumerate(lst.entries):
                child = self._inode_at(e.start_block, e.offset)
                if child is None:
                    continue
                name = e.name.decode("utf-8", "surrogateescape")
                cpath = "/" + name if path == "/" else f"{path}/{name}"
                self.entry_inode[(path, j)] = child.off
                self.paths.setdefault(child.off, []).append(cpath)
                if len(self.inodes) > MAX_INODES:
                    self.error(f"more than {MAX_INODES} inodes; walk stopped")
                    return
                if child.file_type == "dir":
                    if child.off in seen_dirs or depth >= MAX_DEPTH:
                        self.error(f"{cpath}: directory loop or too deep; not walked")
                        continue
                    seen_dirs.add(child.off)
                    self.parent[cpath] = path
                    subdirs.append((cpath, child, depth + 1))
            stack.extend(reversed(subdirs))

    def key_of(self, off: int) -> str:
        """Return the alignment key (first path) of the inode at decoded offset ``off``."""
        paths = self.paths.get(off)
        return paths[0] if paths else f"inode@{off}"

    # -- data region -----------------------------------------------------------------------------------------------

    def _data(self) -> None:
        sb = self.sb
        end = self.data_end = sb.inode_table_start if self._valid(sb.inode_table_start) else self.data_start
        self.frag_entries = []
        for i, (pos, word) in enumerate(fragment_entries(self.ftab.data, sb.fragments)):
            stored = word & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK
            if not (self.data_start <= pos and pos + stored <= end) or stored > sb.block_size + 4096:
                self.error(f"fragment {i}: block at {pos} ({stored} bytes) lies outside the data region")
                pos, word = self.data_start, cs.SQUASHFS_COMPRESSED_BIT_BLOCK  # an empty, uncompressed block
            self.frag_entries.append((pos, word))
        self.frags = FragmentCache(self.read, self.decode, sb.block_size, self.frag_entries)
        self.block_cache = BlockCache()
        self.files: dict[str, FileRec] = {}
        self.file_of: dict[int, FileRec] = {}
        claimed: set[int] = set()
        frag_files: dict[int, list[FileRec]] = {}
        for off in sorted(self.inodes, key=lambda o: self.key_of(o)):
            rec = self.inodes[off]
            if rec.file_type != "reg":
                continue
            path = self.key_of(off)
            blocks = file_blocks(rec.vals["start_block"], rec.blocks, sb.block_size, rec.vals["file_size"])
            fr = FileRec(path, rec, blocks)
            bad = [b for b in blocks if b.stored and not (self.data_start <= b.pos and b.pos + b.stored <= end)]
            if bad:
                self.error(f"{path}: {len(bad)} data block(s) lie outside the data region; not attributed")
            for b in blocks:
                mine = b.stored > 0 and b.pos not in claimed and b not in bad
                if mine:
                    claimed.add(b.pos)
                fr.owned.append(mine)
            self.files[path] = fr
            self.file_of[off] = fr
            if rec.fragment != cs.SQUASHFS_INVALID_FRAG:
                frag_files.setdefault(rec.fragment, []).append(fr)
        self.frag_files = frag_files
        # ownership of the data region
        owned: list[Extent] = []
        for fr in self.files.values():
            owned.extend(Extent(b.pos, b.stored) for b, mine in zip(fr.blocks, fr.owned, strict=True) if mine)
        for pos, word in self.frag_entries:
            owned.append(Extent(pos, word & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK))
        region = Extent(self.data_start, end - self.data_start)
        inside = [e for e in owned if e.length and region.offset <= e.offset and e.end <= region.end]
        if len(inside) != len([e for e in owned if e.length]):
            self.error("a data block or fragment lies outside the data region")
        merged = merge_extents(inside)
        self.data_gaps = subtract_extents(region, merged, presorted=True)
        self.data_node = Node(kind="squashfs.data", key="data", label="data blocks",
                              extents=(Extent(self.fs + region.offset, region.length),) if region.length else ())
        self.data_node.fields = tuple(gap_field("unreferenced", self.fs, g.offset, g.end, self.read)
                                      for g in self.data_gaps)
        self.content_base: dict[str, Extent] = {}
        for path, fr in self.files.items():
            if self.standalone or self._file_interesting(fr):
                self.data_node.children.append(self._file_node(fr, open_space=True))
        for i, (pos, word) in enumerate(self.frag_entries):
            ext = Extent(self.fs + pos, word & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK)
            if self.standalone or self.interesting(ext):
                self.data_node.children.append(self._frag_block_node(i))
        self.data_node.expand = self._expand_data
        for fr_err in self.frags.errors:
            self.error(fr_err)

    def _frag_ext(self, index: int) -> Extent | None:
        if not 0 <= index < len(self.frag_entries):
            return None
        pos, word = self.frag_entries[index]
        return Extent(self.fs + pos, word & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK)

    def _file_interesting(self, fr: FileRec) -> bool:
        for e in fr.stored:
            if self.interesting(Extent(self.fs + e.offset, e.length)):
                return True
        if fr.rec.fragment != cs.SQUASHFS_INVALID_FRAG:
            fe = self._frag_ext(fr.rec.fragment)
            if fe is not None and self.interesting(fe):
                return True
        return False

    def _file_node(self, fr: FileRec, open_space: bool) -> Node:
        size = fr.rec.vals["file_size"]
        content: Extent | None = None
        if open_space:
            src = FileContent(fr.path, size, fr.blocks, self.read, self.decode, self.sb.block_size, self.frags,
                              fr.rec.fragment, fr.rec.vals["offset"], self.block_cache)
            base = self.ctx.decoded_space(fr.path, src, self.label)
            content = Extent(base, size)
            self.content_base[fr.path] = content
        attrs: dict[str, object] = {}
        paths = self.paths.get(fr.rec.off, [])
        if len(paths) > 1:
            attrs["paths"] = tuple(paths)
        return file_node(fr.path, f"file {fr.path}", size, fr.blocks, fr.owned, self.fs, FIRST, content, attrs)

    def _frag_block_node(self, i: int) -> Node:
        pos, word = self.frag_entries[i]
        tails: list[Extent] = []
        for fr in self.frag_files.get(i, []):
            c = self.content_base.get(fr.path)
            if c is not None:
                tail = len(fr.blocks) * self.sb.block_size
                if fr.rec.vals["file_size"] > tail:
                    tails.append(Extent(c.offset + tail, fr.rec.vals["file_size"] - tail))
        return fragment_block_node(i, pos, word, self.fs, FIRST, tails, self.sb.block_size)

    def _expand_data(self, key: str) -> Node | None:
        fr = self.files.get(key)
        if fr is not None:
            return self._file_node(fr, open_space=False)
        if key.startswith("frag:") and key[5:].isdigit() and int(key[5:]) < len(self.frag_entries):
            return self._frag_block_node(int(key[5:]))
        return None

    def _order_attrs(self) -> None:
        """Digest the file set and the orders the files were stored in (for the order rules)."""
        import hashlib

        def digest(items: list[str]) -> str:
            return hashlib.sha256("\0".join(items).encode("utf-8", "surrogateescape")).hexdigest()[:16]

        regs = list(self.files.values())
        self.root.attrs["file_set"] = digest(sorted(p for ps in self.paths.values() for p in ps))
        self.root.attrs["links"] = digest(sorted("\0".join(sorted(ps)) for ps in self.paths.values() if len(ps) > 1))
        self.root.attrs["inode_order"] = digest([self.key_of(o) for o in sorted(self.inodes)])
        data_order = sorted((fr.rec.vals["start_block"], fr.path) for fr in regs if any(fr.owned))
        self.root.attrs["data_order"] = digest([p for _s, p in data_order])
        frag_order = sorted((fr.rec.fragment, fr.rec.vals["offset"], fr.path) for fr in regs
                            if fr.rec.fragment != cs.SQUASHFS_INVALID_FRAG)
        self.root.attrs["fragment_order"] = digest([p for _f, _o, p in frag_order])
        starts = [s for s, _w in self.frag_entries]
        self.root.attrs["fragments_in_order"] = starts == sorted(starts)
        self.root.attrs["flags"] = self.sb.flags

    # -- the superblock's derived fields ---------------------------------------------------------------------------

    def _pc(self, pos: int) -> Extent:
        return position_cover(self.fs, FIRST, pos)

    def _super_covers(self) -> dict[str, tuple[Extent, ...]]:
        sb = self.sb
        cov: dict[str, tuple[Extent, ...]] = {"bytes_used": (self._pc(sb.bytes_used),)}
        for name in ("id_table_start", "inode_table_start", "directory_table_start", "fragment_table_start"):
            cov[name] = (self._pc(sb.vals[name]),)
        if sb.has_lookup:
            cov["lookup_table_start"] = (self._pc(sb.lookup_table_start),)
        if sb.has_xattrs:
            cov["xattr_id_table_start"] = (self._pc(sb.xattr_id_table_start),)
        cov["inodes"] = (self.itab.whole,) if self.itab.data else ()
        cov["fragments"] = (self.ftab.whole,) if self.ftab.data else ()
        cov["no_ids"] = (self.idtab.whole,) if self.idtab.data else ()
        root = getattr(self, "root_off", None)
        if root is not None:
            cov["root_inode"] = (Extent(self.fs + sb.inode_table_start, sb.root_inode >> 16), Extent(self.itab.base, root))
        return cov

    # -- table nodes (stored part now, decoded part deferred) ------------------------------------------------------

    @property
    def table_nodes(self) -> list[Node]:
        out: list[Node] = []
        specs: list[tuple[Table | None, str, str, list[int], int]] = [
            (self.itab, "squashfs.inode_table", "inodes", [], 0),
            (self.dtab, "squashfs.directory_table", "dirs", [], 0),
            (self.ftab, "squashfs.fragment_table", "fragments", self.frag_ptrs, self.sb.fragment_table_start),
            (self.ltab, "squashfs.export_table", "export", self.lookup_ptrs, self.sb.lookup_table_start),
            (self.idtab, "squashfs.id_table", "ids", self.id_ptrs, self.sb.id_table_start),
            (self.xtab, "squashfs.xattr_table", "xattrs", [], 0),
            (self.xidtab, "squashfs.xattr_id_table", "xattr_ids", self.xid_ptrs,
             self.sb.xattr_id_table_start + 16 if self.xhdr else 0),
        ]
        self.decoded_nodes: dict[str, Node] = {}
        for t, kind, key, ptrs, index_pos in specs:
            if t is None:
                continue
            stored = Extent(self.fs + t.start, t.end - t.start)
            extents = [stored] if stored.length else []
            node = Node(kind=kind, key=key, label=t.name)
            node.children.extend(block_nodes(t, self.fs, FIRST, self.interesting, self.standalone))
            self.regions.append((t.start, t.end, key))
            if key == "xattr_ids" and self.xhdr:
                pos = self.sb.xattr_id_table_start
                node.children.append(xattr_table_header_node(
                    self.xhdr, self.fs, pos, self._pc(self.xattr_table_start),
                    (self.xidtab.whole,) if self.xidtab is not None and self.xidtab.data else ()))
                extents.append(Extent(self.fs + pos, 16))
                self.regions.append((pos, pos + 16, "xattr header"))
            if ptrs or (key in ("fragments", "export", "ids", "xattr_ids") and index_pos):
                node.children.append(index_node(t.name, self.fs, FIRST, index_pos, ptrs))
                if ptrs:
                    extents.append(Extent(self.fs + index_pos, 8 * len(ptrs)))
                    self.regions.append((index_pos, index_pos + 8 * len(ptrs), key + " index"))
            if t.data:
                dec = Node(kind="decoded", key="decoded", label=f"decoded {t.name}", extents=(t.whole,),
                           attrs={"decoded": t.name})
                node.children.append(dec)
                extents.append(t.whole)
                self.decoded_nodes[key] = dec
            node.extents = tuple(extents)
            node.attrs = {"table": t.name}
            out.append(node)
        return out

    def _tail_fields(self) -> None:
        sb = self.sb
        fields: list[Field] = []
        used = sb.bytes_used
        pad_end = min(self.size, -(-used // PAD) * PAD)
        covered = [Extent(0, self.data_start), Extent(self.data_start, self.data_end - self.data_start)]
        covered += [Extent(s, e - s) for s, e, _k in self.regions]
        for g in subtract_extents(Extent(0, used), merge_extents(covered)):
            fields.append(gap_field("unreferenced", self.fs, g.offset, g.end, self.read))
        derived = [Derived(POSITION, covers=(self._pc(used),))]
        if pad_end > used:
            data = self.read(used, pad_end - used)
            nz = len(data) - data.count(0)
            fields.append(Field.at("padding", f"{pad_end - used} bytes", self.fs + used, pad_end - used,
                                   "all zero" if not nz else f"{nz} non-zero"))
            derived.append(Derived("padding", covers=(self._pc(used),)))
        if self.size > pad_end:
            fields.append(gap_field("unused", self.fs, pad_end, self.size, self.read))
        self.root.fields = tuple(fields)
        self.root.derived = tuple(derived)

    # -- decoded structures, built once the decoded spaces are compared --------------------------------------------

    def _dinteresting(self, ext: Extent) -> bool:
        return self.standalone or self.interesting(ext)

    def _deferred(self) -> None:
        self._settle_contents()
        self._build_inodes()
        self._build_dirs()
        self._build_fragments()
        self._build_lookup()
        self._build_ids()
        self._build_xattrs()

    def _settle_contents(self) -> None:
        """Files whose decoded content turned out equal (their blocks only moved) are no content differences: they
        are not offered to the engine's content inspection and nesting (which would decode them again)."""
        if self.standalone:
            return
        for node in self.data_node.children:
            if node.kind != "squashfs.file" or not node.attrs.get("content"):
                continue
            content = self.content_base.get(node.key)
            if content is not None and content.length and not self.interesting(content):
                node.attrs["content"] = False

    def _inode_covers(self, rec: InodeRec) -> InodeCovers:
        sb = self.sb
        cov = InodeCovers()
        v = rec.vals
        if rec.file_type == "reg":
            fr = self.file_of.get(rec.off)
            content = self.content_base.get(fr.path) if fr is not None else None
            cov.start = (self._pc(v["start_block"]),)
            stored = tuple(Extent(self.fs + e.offset, e.length) for e in (fr.stored if fr else []))
            cov.content = (content,) if content is not None and content.length else stored
            blocks = fr.blocks if fr is not None else []
            cov.blocks = tuple(Extent(self.fs + b.pos, max(1, b.stored)) for b in blocks)
            fe = self._frag_ext(rec.fragment)
            if fe is not None:
                cov.fragment = (Extent(self.fs + FIRST, fe.end - self.fs - FIRST),)
        elif rec.file_type == "dir":
            cov.start = (Extent(self.fs + sb.directory_table_start, v["start_block"]),)
            path = self.key_of(rec.off)
            lst = self.listings.get(path)
            if lst is not None and lst[0].length:
                cov.listing = (self.dtab.ext(lst[0].start, lst[0].length),)
                cov.dir_offset = (Extent(self.dtab.base, lst[0].start),)
            parent = self.parent.get(path)
            if parent is not None:
                pl = self.listings.get(parent)
                if pl is not None:
                    cov.parent = (self.itab.ext(pl[1].off + 12, 4),)
        for f in ("uid", "guid"):
            idx = v.get(f)
            if idx is not None and self.idtab.data and 4 * idx + 4 <= len(self.idtab.data):
                val = int.from_bytes(self.idtab.data[4 * idx : 4 * idx + 4], "little")
                setattr(cov, f, f"index {idx} ({val})")
        return cov

    def _inode_node(self, off: int) -> Node:
        rec = self.inodes[off]
        key = self.key_of(off)
        paths = self.paths.get(off, [])
        attrs: dict[str, Value] = {"path": key, "file_type": rec.file_type, "ino": rec.vals["inode_number"]}
        if len(paths) > 1:
            attrs["paths"] = tuple(paths)
        if rec.xattr != cs.SQUASHFS_INVALID_XATTR:
            attrs["xattr"] = rec.xattr
        return inode_node(rec, self.itab.data, self.itab.base, key, f"inode {key}", attrs, self._inode_covers(rec))

    def _build_inodes(self) -> None:
        dec = self.decoded_nodes.get("inodes")
        if dec is None:
            return
        by_key: dict[str, int] = {}
        for off, rec in sorted(self.inodes.items()):
            by_key[self.key_of(off)] = off
            if self._dinteresting(self.itab.ext(off, rec.size)):
                dec.children.append(self._inode_node(off))
        gaps = subtract_extents(Extent(0, len(self.itab.data)),
                                merge_extents(Extent(o, r.size) for o, r in self.inodes.items()))
        dec.fields = tuple(Field.at("unreferenced", f"{g.length} bytes", self.itab.base + g.offset, g.length)
                           for g in gaps)
        dec.expand = lambda k: self._inode_node(by_key[k]) if k in by_key else None

    def _dir_node(self, path: str) -> Node:
        lst, _rec = self.listings[path]
        sb = self.sb
        hdr_cov = [(Extent(self.fs + sb.inode_table_start, h.start_block),) for h in lst.headers]
        ent_cov: list[EntryCovers] = []
        first_num: list[tuple[Extent, ...]] = []
        seen_hdr: set[int] = set()
        for j, e in enumerate(lst.entries):
            ioff = self.entry_inode.get((path, j))
            if ioff is None:
                ent_cov.append(EntryCovers())
                if e.header not in seen_hdr:
                    seen_hdr.add(e.header)
                    first_num.append(())
                continue
            num = (self.itab.ext(ioff + 12, 4),)
            ent_cov.append(EntryCovers(offset=(Extent(self.itab.base, ioff),), inode_number=num,
                                       type=(self.itab.ext(ioff, 2),)))
            if e.header not in seen_hdr:
                seen_hdr.add(e.header)
                first_num.append(num)
        return directory_node(lst, self.dtab.data, self.dtab.base, path, hdr_cov, ent_cov, first_num)

    def _build_dirs(self) -> None:
        dec = self.decoded_nodes.get("dirs")
        if dec is None:
            return
        for path, (lst, _rec) in self.listings.items():
            if lst.length and self._dinteresting(self.dtab.ext(lst.start, lst.length)):
                dec.children.append(self._dir_node(path))
        gaps = subtract_extents(Extent(0, len(self.dtab.data)),
                                merge_extents(Extent(lst.start, lst.length) for lst, _r in self.listings.values()))
        dec.fields = tuple(Field.at("unreferenced", f"{g.length} bytes", self.dtab.base + g.offset, g.length)
                           for g in gaps)
        dec.expand = lambda k: self._dir_node(k) if k in self.listings and self.listings[k][0].length else None

    def _frag_entry(self, i: int) -> Node:
        pos, word = self.frag_entries[i]
        stored = Extent(self.fs + pos, word & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK)
        return fragment_node(i, self.ftab.data, self.ftab.base, self._pc(pos), (stored,))

    def _build_fragments(self) -> None:
        dec = self.decoded_nodes.get("fragments")
        if dec is None:
            return
        n = len(self.frag_entries)
        for i in range(n):
            if self._dinteresting(self.ftab.ext(16 * i, 16)):
                dec.children.append(self._frag_entry(i))
        self._rest_field(dec, self.ftab, 16 * n)
        dec.expand = _indexed("frag:", n, self._frag_entry)

    def _rest_field(self, dec: Node, t: Table, used: int) -> None:
        if len(t.data) > used:
            dec.fields = (Field.at("unused", f"{len(t.data) - used} bytes", t.base + used, len(t.data) - used),)

    def _lookup_entry(self, n: int) -> Node:
        assert self.ltab is not None
        sb = self.sb
        ref = int.from_bytes(self.ltab.data[8 * (n - 1) : 8 * n], "little")
        doff = self.itab.decoded(ref >> 16, ref & 0xFFFF)
        covers: tuple[Extent, ...] = (Extent(self.fs + sb.inode_table_start, ref >> 16),)
        path = None
        if doff is not None:
            covers += (Extent(self.itab.base, doff),)
            path = self.key_of(doff) if doff in self.paths else None
        return lookup_node(n, self.ltab.data, self.ltab.base, covers, path)

    def _build_lookup(self) -> None:
        dec = self.decoded_nodes.get("export")
        if dec is None or self.ltab is None:
            return
        n = min(self.sb.inodes, len(self.ltab.data) // 8)
        for i in range(1, n + 1):
            if self._dinteresting(self.ltab.ext(8 * (i - 1), 8)):
                dec.children.append(self._lookup_entry(i))
        self._rest_field(dec, self.ltab, 8 * n)

        def expand(k: str) -> Node | None:
            if k.startswith("ino:") and k[4:].isdigit() and 1 <= int(k[4:]) <= n:
                return self._lookup_entry(int(k[4:]))
            return None

        dec.expand = expand

    def _build_ids(self) -> None:
        dec = self.decoded_nodes.get("ids")
        if dec is None:
            return
        n = min(self.sb.no_ids, len(self.idtab.data) // 4)
        for i in range(n):
            if self._dinteresting(self.idtab.ext(4 * i, 4)):
                dec.children.append(id_node(i, self.idtab.data, self.idtab.base))
        self._rest_field(dec, self.idtab, 4 * n)
        dec.expand = _indexed("id:", n, lambda i: id_node(i, self.idtab.data, self.idtab.base))

    def _build_xattrs(self) -> None:
        if self.xtab is None or self.xidtab is None:
            return
        ids = xattr_ids(self.xidtab.data, self.xattr_count)
        users: dict[int, list[str]] = {}
        for off, rec in self.inodes.items():
            if rec.xattr != cs.SQUASHFS_INVALID_XATTR:
                users.setdefault(rec.xattr, []).extend(self.paths.get(off, [])[:1])
        sets: list[tuple[XattrSet, str, tuple[str, ...]]] = []
        for i, v in enumerate(ids):
            doff = self.xtab.decoded(v["xattr"] >> 16, v["xattr"] & 0xFFFF)
            if doff is None:
                self.error(f"xattr id {i}: reference outside the xattr table")
                continue
            s = xattr_set(self.xtab.data, i, doff, v["count"])
            paths = tuple(sorted(users.get(i, [])))
            sets.append((s, paths[0] if paths else f"xid:{i}", paths))
        dec = self.decoded_nodes.get("xattr_ids")
        if dec is not None:
            n = len(ids)

            def xid(i: int) -> Node:
                s, _k, paths = next((x for x in sets if x[0].index == i), (None, "", ()))
                cov_ref: tuple[Extent, ...] = ()
                cov_set: tuple[Extent, ...] = ()
                if s is not None:
                    cov_ref = (Extent(self.xtab.base, s.start),)  # type: ignore[union-attr]
                    cov_set = (self.xtab.ext(s.start, s.end - s.start),)  # type: ignore[union-attr]
                return xattr_id_node(i, self.xidtab.data, self.xidtab.base, cov_ref, cov_set, paths)  # type: ignore[union-attr]

            for i in range(n):
                if self._dinteresting(self.xidtab.ext(16 * i, 16)):
                    dec.children.append(xid(i))
            self._rest_field(dec, self.xidtab, 16 * n)
            dec.expand = _indexed("xid:", n, xid)
        kv = self.decoded_nodes.get("xattrs")
        if kv is None:
            return
        by_key = {k: (s, p) for s, k, p in sets}
        for s, key, paths in sets:
            if s.end > s.start and self._dinteresting(self.xtab.ext(s.start, s.end - s.start)):
                kv.children.append(xattr_set_node(s, self.xtab.data, self.xtab.base, key, paths))
        owned = merge_extents([Extent(s.start, s.end - s.start) for s, _k, _p in sets])
        gaps = subtract_extents(Extent(0, len(self.xtab.data)), owned)
        ool = {d for s, _k, _p in sets for ref in s.ool
               if (d := self.xtab.decoded(ref >> 16, ref & 0xFFFF)) is not None}
        kv.fields = tuple(Field.at("out-of-line values" if any(g.offset <= o < g.end for o in ool) else "unreferenced",
                                   f"{g.length} bytes", self.xtab.base + g.offset, g.length) for g in gaps)
        kv.expand = lambda k: (xattr_set_node(by_key[k][0], self.xtab.data, self.xtab.base, k, by_key[k][1])  # type: ignore[union-attr]
                               if k in by_key else None)


def _indexed(prefix: str, n: int, make: Callable[[int], Node]) -> Callable[[str], Node | None]:
    def expand(key: str) -> Node | None:
        if key.startswith(prefix) and key[len(prefix):].isdigit() and int(key[len(prefix):]) < n:
            return make(int(key[len(prefix):]))
        return None

    return expand


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``squashfs`` node of ``[base, base + size)``; raises ParseError when the superblock is unusable."""
    return _Parser(ctx, base, size, label).parse()


__all__ = ["NAME", "parse", "recognizes"]

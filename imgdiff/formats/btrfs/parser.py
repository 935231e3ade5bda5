"""The btrfs parser: walks every tree once, owns every byte of the device, builds nodes where bytes differ.

Up front (always): the superblock, the chunk map (``sys_chunk_array``, then the chunk tree), the root tree and every
tree it lists, walked block by block.  During the walk the file-system trees keep inode modes, names and file
extents (:class:`~imgdiff.formats.btrfs.files.FsTree`), from which every inode gets its path.  Then the physical
bytes are assigned: superblock copies, every copy of every live tree block, the data extents of files, and the rest
of each chunk stripe (free space) and of the device (unallocated, beyond the end).

Nodes are built only for what differs (``ctx.interesting``): a tree block whose bytes are equal becomes neither a
block node nor item nodes, but the tree node can build it on request (``Node.expand``, by block or item key).  Free
and unallocated space is scanned for stale tree blocks (earlier copies mkfs or the kernel wrote and then freed:
recognised by their header) only inside differing ranges.

References:
    include/uapi/linux/btrfs_tree.h; fs/btrfs/disk-io.c, fs/btrfs/volumes.c, fs/btrfs/tree-checker.c
    btrfs-progs kernel-shared/disk-io.c, kernel-shared/volumes.c, mkfs/main.c, mkfs/common.c, mkfs/rootdir.c
    https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from imgdiff.formats.base import ParseContext
from imgdiff.formats.btrfs.blocks import (
    C_HEADER,
    C_ITEM,
    C_KEY_PTR,
    HEADER_SIZE,
    ITEM_SIZE,
    KEY_PTR_SIZE,
    MAX_TREE_BLOCKS,
    BlockInfo,
    Header,
    ItemRef,
    Key,
    check_header,
    leaf_items,
    node_ptrs,
    parse_header,
    walk_tree,
)
from imgdiff.formats.btrfs.c_btrfs import (
    BLOCK_GROUP_NAMES,
    BTRFS_BACKREF_REV_SHIFT,
    BTRFS_BLOCK_GROUP_DATA,
    BTRFS_BLOCK_GROUP_METADATA,
    BTRFS_BLOCK_GROUP_SYSTEM,
    BTRFS_CHUNK_ITEM_KEY,
    BTRFS_CHUNK_TREE_OBJECTID,
    BTRFS_CSUM_SIZE,
    BTRFS_DATA_RELOC_TREE_OBJECTID,
    BTRFS_DIR_INDEX_KEY,
    BTRFS_DIR_ITEM_KEY,
    BTRFS_FEATURE_INCOMPAT_METADATA_UUID,
    BTRFS_FILE_EXTENT_INLINE,
    BTRFS_FILE_EXTENT_PREALLOC,
    BTRFS_FS_TREE_OBJECTID,
    BTRFS_HEADER_FLAG_RELOC,
    BTRFS_HEADER_FLAG_WRITTEN,
    BTRFS_INODE_EXTREF_KEY,
    BTRFS_INODE_ITEM_KEY,
    BTRFS_INODE_REF_KEY,
    BTRFS_LAST_FREE_OBJECTID,
    BTRFS_ROOT_ITEM_KEY,
    BTRFS_ROOT_REF_KEY,
    BTRFS_ROOT_TREE_OBJECTID,
    BTRFS_SUPER_INFO_OFFSET,
    BTRFS_SUPER_INFO_SIZE,
    BTRFS_SUPER_MIRROR_MAX,
    BTRFS_TREE_LOG_OBJECTID,
    BTRFS_UUID_KEY_RECEIVED_SUBVOL,
    BTRFS_UUID_KEY_SUBVOL,
    BTRFS_XATTR_ITEM_KEY,
    CSUM_TYPES,
    HEADER_FLAG_NAMES,
    OBJECTID_NAMES,
    btrfs_sb_offset,
)
from imgdiff.formats.btrfs.chunks import Chunk, ChunkMap, Stripe
from imgdiff.formats.btrfs.files import FileExtent, FsTree
from imgdiff.formats.btrfs.items import (
    C_CHUNK,
    C_ROOT_ITEM,
    C_STRIPE,
    Decoded,
    ItemContext,
    decode,
    flags_text,
    key_text,
    key_type_text,
    objectid_text,
    uuid_text,
)
from imgdiff.formats.btrfs.superblock import read_super, super_node, sys_chunks
from imgdiff.formats.compiled import blob_value
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents, subtract_extents
from imgdiff.source import VBASE

UNALLOCATED_PIECE = 1 << 30
"""Unallocated device space is split into nodes of at most this many bytes."""
MAX_STALE_PER_RUN = 1 << 16
"""Stale tree blocks recognised per free run at most."""
FILE_HASH_LIMIT = 1 << 30
"""File data fields up to this size get a SHA-256 value; larger ones are summarised by size."""


@dataclass(slots=True)
class Tree:
    """One tree: its root block and the live blocks found under it, in walk (key) order."""

    id: int
    name: str
    root: int
    level: int
    blocks: list[int] = field(default_factory=list)
    node: Node | None = None
    built: dict[int, list[Node]] = field(default_factory=dict)
    """logical -> [block node, item nodes...] built so far."""
    all_built: bool = False
    keys: set[str] = field(default_factory=set)
    """Keys of the nodes built under the tree node (kept unique)."""


@dataclass(slots=True)
class RootRef:
    """What the root tree says about another tree (a ROOT_ITEM)."""

    objectid: int
    offset: int
    bytenr: int
    level: int
    root_dirid: int


def _tree_name(objectid: int, offset: int = 0) -> str:
    if objectid in OBJECTID_NAMES:
        name = OBJECTID_NAMES[objectid]
        return f"{name}:{offset}" if objectid == (1 << 64) - 8 else name
    return str(objectid)


def _may_share(owner: int, other: int) -> bool:
    """Return True when tree ``other`` may legitimately share blocks with tree ``owner`` (snapshots, reloc trees)."""
    return is_fs_tree(owner) and (is_fs_tree(other) or other == (1 << 64) - 8)


def is_fs_tree(objectid: int) -> bool:
    """Return True for trees that hold files: FS_TREE, subvolumes and snapshots, the data relocation tree."""
    return objectid == BTRFS_FS_TREE_OBJECTID or objectid == BTRFS_DATA_RELOC_TREE_OBJECTID or (
        256 <= objectid <= BTRFS_LAST_FREE_OBJECTID
    )


def _map_rel(copy: tuple[Extent, ...], rel: int, n: int) -> tuple[Extent, ...]:
    """Map ``[rel, rel + n)`` of a block or extent onto the physical extents ``copy`` that store it."""
    out: list[Extent] = []
    pos = 0
    for e in copy:
        lo, hi = max(rel, pos), min(rel + n, pos + e.length)
        if lo < hi:
            out.append(Extent(e.offset + lo - pos, hi - lo))
        pos += e.length
        if pos >= rel + n:
            break
    return tuple(out)


def _rel_of(copy: tuple[Extent, ...], absoff: int) -> int:
    """Return the offset inside a copy of the absolute byte ``absoff`` (which must lie in the copy)."""
    pos = 0
    for e in copy:
        if e.offset <= absoff < e.end:
            return pos + absoff - e.offset
        pos += e.length
    raise ValueError("offset outside the copy")


class Btrfs:
    """One btrfs filesystem (one device of it) in ``[base, base + size)`` of an image."""

    def __init__(self, ctx: ParseContext, base: int, size: int, label: str) -> None:
        self.ctx = ctx
        self.base = base
        self.size = size
        self.label = label
        self.errors: list[str] = []
        self.sb_raw = ctx.read(base + BTRFS_SUPER_INFO_OFFSET, BTRFS_SUPER_INFO_SIZE)
        self.sb = read_super(self.sb_raw)
        sb = self.sb
        self.nodesize: int = sb["nodesize"]
        self.sectorsize: int = sb["sectorsize"]
        self.csum_name, self.csum_size = CSUM_TYPES[sb["csum_type"]]
        self.devid: int = sb["dev_item.devid"]
        self.fsid: bytes = sb["fsid"]
        incompat = sb["incompat_flags"]
        self.meta_fsid: bytes = sb["metadata_uuid"] if incompat & BTRFS_FEATURE_INCOMPAT_METADATA_UUID else self.fsid
        self.fsid_seed = ("btrfs.superblock:metadata_uuid" if incompat & BTRFS_FEATURE_INCOMPAT_METADATA_UUID
                          else "btrfs.superblock:fsid")
        """Where the fsid in every block header comes from: each header's is a copy of it."""
        total = sb["dev_item.total_bytes"]
        self.dev_end = base + (min(size, total) if total else size)
        if total > size:
            self.errors.append(f"the device is {total} bytes but the region holds {size}: the image is truncated")
        if sb["num_devices"] > 1:
            self.errors.append(f"a {sb['num_devices']}-device filesystem: only device {self.devid} is in the image")
        self.cmap = ChunkMap(self.devid)
        for _key, ch in sys_chunks(self.sb_raw, self.errors):
            self.cmap.add(ch)
        self.blocks: dict[int, BlockInfo] = {}
        self.trees: dict[str, Tree] = {}
        self.fstrees: dict[int, FsTree] = {}
        self.roots: dict[tuple[int, int], RootRef] = {}
        self.root_refs: dict[int, str] = {}
        self.chunk_tree_uuid = b""
        self.subvol_uuids: list[bytes] = []
        self._owner_of: dict[int, int] = {}
        """Logical address of every live block -> the tree that owns it (the first that reached it)."""
        self._budget = [min(MAX_TREE_BLOCKS, max(16, size // self.nodesize + 16))]
        self.item_ctx = ItemContext(self.sectorsize, self.csum_size, self._data_extents, ctx.interesting)
        self._copy_attrs: dict[str, Value] = {}
        self.ids: dict[bytes, tuple[str, str]] = {}
        """Identifier value -> (short name, seed field) looked for in unused bytes (see :meth:`_unused_fields`)."""
        self._walk_all()
        self._resolve_paths()
        self._identifiers()
        self.claims: list[tuple[Extent, tuple[object, ...]]] = []
        self.dropped: set[tuple[object, ...]] = set()
        self._assign()

    # ------------------------------------------------------------------------------------------------- reading

    def _abs_copies(self, logical: int, n: int) -> list[tuple[Extent, ...]]:
        return [tuple(Extent(self.base + e.offset, e.length) for e in c) for c in self.cmap.copies(logical, n)]

    def _data_extents(self, logical: int, n: int) -> tuple[Extent, ...]:
        cps = self._abs_copies(logical, n)
        return cps[0] if cps else ()

    def _read_copy(self, copy: tuple[Extent, ...]) -> bytes:
        return b"".join(self.ctx.read(e.offset, e.length) for e in copy)

    def _inside(self, copy: tuple[Extent, ...]) -> bool:
        return all(self.base <= e.offset and e.end <= self.dev_end for e in copy)

    def _read_block(self, logical: int, level: int | None) -> tuple[bytes, Header, list[tuple[Extent, ...]]] | str:
        copies = self._abs_copies(logical, self.nodesize)
        if not copies:
            return "not mapped by a chunk on this device"
        inside = [c for c in copies if self._inside(c)]
        if not inside:
            return "beyond the end of the image"
        why = ""
        for i, c in enumerate(inside):
            data = self._read_copy(c)
            h = parse_header(data)
            bad = check_header(h, logical, self.meta_fsid, self.nodesize, level)
            if bad is None:
                return data, h, [c, *inside[:i], *inside[i + 1 :]]
            why = why or bad
        return why

    # ------------------------------------------------------------------------------------------------- walking

    def _tree(self, objectid: int, offset: int, root: int, level: int) -> Tree:
        name = _tree_name(objectid, offset)
        t = Tree(objectid, name, root, level)
        self.trees[name] = t
        return t

    def _walk(self, tree: Tree, collect: Callable[[ItemRef, bytes], None] | None) -> None:
        for info, data, h, items in walk_tree(tree.root, tree.level, tree.id, self._read_block, self._owner_of,
                                              _may_share, self._budget, self.errors):
            if not info.shared:
                self._owner_of[info.logical] = tree.id
                self.blocks[info.logical] = info
                tree.blocks.append(info.logical)
            if not self.chunk_tree_uuid:
                self.chunk_tree_uuid = h.chunk_tree_uuid
            self.errors.extend(f"block {info.logical}: {e}" for e in info.errors)
            if collect is not None:
                for it in items:
                    collect(it, data[it.data_off : it.data_off + it.size])

    def _collect_chunk(self, it: ItemRef, payload: bytes) -> None:
        if it.key[1] != BTRFS_CHUNK_ITEM_KEY or len(payload) < C_CHUNK.size:
            return
        ch = C_CHUNK.unpack(payload)
        stripes = []
        for i in range(ch["num_stripes"]):
            p = C_CHUNK.size + i * C_STRIPE.size
            if p + C_STRIPE.size > len(payload):
                break
            s = C_STRIPE.unpack(payload, p)
            stripes.append(Stripe(s["devid"], s["offset"], bytes(s["dev_uuid"])))
        chunk = Chunk(it.key[2], ch["length"], ch["type"], ch["stripe_len"], ch["sub_stripes"], tuple(stripes))
        if stripes and not self.cmap.add(chunk):
            self.errors.append(f"chunk at logical {chunk.logical} overlaps another chunk")

    def _collect_root(self, it: ItemRef, payload: bytes) -> None:
        obj, typ, off = it.key
        if typ == BTRFS_ROOT_ITEM_KEY and len(payload) >= C_ROOT_ITEM.offset("generation_v2"):
            v = C_ROOT_ITEM.unpack(payload)
            self.roots[(obj, off)] = RootRef(obj, off, v["bytenr"], v["level"], v["root_dirid"])
            if len(payload) >= C_ROOT_ITEM.size:
                self.subvol_uuids.extend(bytes(v[n]) for n in ("uuid", "parent_uuid", "received_uuid"))
        elif typ == BTRFS_ROOT_REF_KEY and len(payload) >= 18:
            n = int.from_bytes(payload[16:18], "little")
            self.root_refs[off] = payload[18 : 18 + n].decode("utf-8", errors="backslashreplace")

    def _walk_all(self) -> None:
        sb = self.sb
        self._walk(self._tree(BTRFS_CHUNK_TREE_OBJECTID, 0, sb["chunk_root"], sb["chunk_root_level"]),
                   self._collect_chunk)
        self._walk(self._tree(BTRFS_ROOT_TREE_OBJECTID, 0, sb["root"], sb["root_level"]), self._collect_root)
        if sb["log_root"]:
            self._walk(self._tree(BTRFS_TREE_LOG_OBJECTID, 0, sb["log_root"], sb["log_root_level"]), None)
        for (obj, off), r in sorted(self.roots.items()):
            if obj in (BTRFS_ROOT_TREE_OBJECTID, BTRFS_CHUNK_TREE_OBJECTID) or not r.bytenr:
                continue
            tree = self._tree(obj, off, r.bytenr, r.level)
            collect = None
            if is_fs_tree(obj):  # a snapshot's ROOT_ITEM key offset is the transaction it was taken in
                fs = self.fstrees.setdefault(obj, FsTree(obj, r.root_dirid or 256))
                collect = fs.collect
            self._walk(tree, collect)

    def _identifiers(self) -> None:
        """Collect the random identifiers whose stale copies unused bytes may hold."""
        zero = bytes(16)
        ids: list[tuple[bytes, str, str]] = [
            (bytes(self.sb["dev_item.uuid"]), "dev_uuid", "btrfs.superblock:dev_item.uuid"),
            (self.chunk_tree_uuid, "chunk_tree_uuid", "btrfs.leaf:chunk_tree_uuid"),
            (self.fsid, "fsid", "btrfs.superblock:fsid"),
            *((u, "subvol_uuid", "btrfs.root_item:uuid") for u in self.subvol_uuids),
        ]
        for value, label, seed in ids:
            if value != zero and len(value) == 16:
                self.ids.setdefault(value, (label, seed))

    def _resolve_paths(self) -> None:
        """Give every inode of every file-system tree a path (subvolumes below the directory that holds them)."""
        top = self.fstrees.get(BTRFS_FS_TREE_OBJECTID)
        done: set[int] = set()
        queue: list[tuple[FsTree, str]] = [(top, "")] if top is not None else []
        while queue:
            fs, prefix = queue.pop(0)
            if fs.tree_id in done:
                continue
            done.add(fs.tree_id)
            fs.resolve(prefix)
            for path, sub in fs.subvols:
                if sub in self.fstrees and sub not in done:
                    queue.append((self.fstrees[sub], path))
        for tid, fs in self.fstrees.items():
            if tid not in done:
                fs.resolve("" if tid == BTRFS_DATA_RELOC_TREE_OBJECTID else f"<subvol {tid}>")
            self.errors.extend(fs.errors[:20])

    # ------------------------------------------------------------------------------------------------- bytes

    def _claim(self, ext: Extent, owner: tuple[object, ...]) -> None:
        if ext.length > 0:
            self.claims.append((ext, owner))

    def _assign(self) -> None:
        """Record which physical bytes each superblock copy, tree block copy and data extent owns."""
        self.supers: list[tuple[int, int]] = []  # (mirror, absolute offset)
        for m in range(BTRFS_SUPER_MIRROR_MAX):
            off = self.base + btrfs_sb_offset(m)
            if off + BTRFS_SUPER_INFO_SIZE > self.dev_end:
                continue
            if m and self.ctx.read(off + 0x40, 8) != b"_BHRfS_M":
                continue
            self.supers.append((m, off))
            self._claim(Extent(off, BTRFS_SUPER_INFO_SIZE), ("sb", m))
        for logical, info in self.blocks.items():
            for k, copy in enumerate(info.copies):
                for e in copy:
                    self._claim(e, ("blk", logical, k))
        self.data_owner: dict[int, tuple[int, int]] = {}  # disk_bytenr -> (tree id, ino)
        for tid, fs in self.fstrees.items():
            for ino, exts in fs.extents.items():
                for fe in exts:
                    if fe.type == BTRFS_FILE_EXTENT_INLINE or fe.disk_bytenr == 0:
                        continue
                    if fe.disk_bytenr in self.data_owner:
                        continue
                    self.data_owner[fe.disk_bytenr] = (tid, ino)
                    for k, copy in enumerate(self._abs_copies(fe.disk_bytenr, fe.disk_num_bytes)):
                        for e in copy:
                            if e.end <= self.dev_end:
                                self._claim(e, ("data", fe.disk_bytenr, k))
        self.claims.sort(key=lambda c: (c[0].offset, c[0].end))
        kept: list[tuple[Extent, tuple[object, ...]]] = []
        for ext, owner in self.claims:
            if kept and ext.offset < kept[-1][0].end:
                self.dropped.add(owner)
                self.errors.append(f"{owner[0]} at 0x{ext.offset:x} overlaps {kept[-1][1][0]}; not owned by it")
                continue
            kept.append((ext, owner))
        self.claims = kept
        self.taken = merge_extents(e for e, _o in kept)
        self._taken_ends = [e.end for e in self.taken]

    def _free_runs(self, whole: Extent, also: Iterable[Extent] = ()) -> list[Extent]:
        """Return the parts of ``whole`` no claim (and nothing in ``also``) covers."""
        i = bisect.bisect_right(self._taken_ends, whole.offset)
        parts = list(self.taken[i:])
        extra = sorted(also)
        if extra:
            parts = list(merge_extents(parts + extra))
        return subtract_extents(whole, parts, presorted=True)

    def _differing(self, ext: Extent) -> list[Extent]:
        """Return the sub-ranges of ``ext`` (this image's offsets) whose bytes differ from the other image."""
        dm = self.ctx.diff
        if dm is None or not self.ctx.interesting(ext):
            return [ext] if dm is None else []
        if ext.offset >= VBASE and (self.ctx.spaces is None or not self.ctx.spaces.compared(ext.offset)):
            return [ext]  # a decoded space not compared yet: everything may differ
        shift = dm.delta if self.ctx.side == "b" else 0
        lo, hi = ext.offset - shift, ext.end - shift
        out: list[Extent] = []
        i = bisect.bisect_right(dm.ends, lo)
        while i < len(dm.starts) and dm.starts[i] < hi:
            s, e = max(dm.starts[i], lo), min(dm.ends[i], hi)
            out.append(Extent(s + shift, e - s))
            i += 1
        return out

    def _interesting_copies(self, copies: list[tuple[Extent, ...]]) -> bool:
        return any(self.ctx.interesting(e) for c in copies for e in c)

    # ------------------------------------------------------------------------------------------------- nodes

    def node(self) -> Node:
        """Return the ``btrfs`` node of the region."""
        sb = self.sb
        root = Node(
            kind="btrfs",
            key="btrfs",
            label=self.label if self.label not in ("", "image") else "btrfs",
            extents=(Extent(self.base, self.size),),
            attrs={
                "scope": True,
                "fs": "btrfs",
                "fsid": uuid_text(self.fsid),
                "label": bytes(sb["label"]).split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace"),
                "generation": sb["generation"],
                "nodesize": self.nodesize,
                "sectorsize": self.sectorsize,
                "csum_type": self.csum_name,
            },
        )
        primary: list[Field] | None = None
        for m, off in self.supers:
            raw = self.sb_raw if m == 0 else self.ctx.read(off, BTRFS_SUPER_INFO_SIZE)
            n = super_node(raw, off, m, primary, self.errors, self._unused_fields)
            if m == 0:
                primary = list(n.fields)
            root.children.append(n)
        for tree in self.trees.values():
            root.children.append(self._tree_node(tree))
        root.children.append(self._files_node())
        root.children.extend(self._space_nodes())
        root.errors.extend(self.errors)
        self.ctx.errors.extend(f"{self.label}: btrfs: {e}" for e in self.errors[:50])
        return root

    # -- trees

    def _tree_node(self, tree: Tree) -> Node:
        exts: list[Extent] = []
        for lg in tree.blocks:
            info = self.blocks[lg]
            for k, copy in enumerate(info.copies):
                if ("blk", lg, k) not in self.dropped:
                    exts.extend(copy)
        node = Node(kind="btrfs.tree", key=f"tree:{tree.name}", label=f"{tree.name} tree",
                    extents=merge_extents(exts), attrs={"tree": tree.name, "tree_id": tree.id})
        tree.node = node
        for lg in tree.blocks:
            info = self.blocks[lg]
            if self._interesting_copies(info.copies):
                node.children.extend(self._built(tree, lg))
        lazy: dict[str, Node] = {}

        def expand(key: str) -> Node | None:
            # a key the other image has and this one did not build: build every item of the tree once
            if not tree.all_built:
                for lg in tree.blocks:
                    for n in self._live_block(tree, lg, full=True):
                        lazy.setdefault(n.key, n)
                tree.all_built = True
            return lazy.get(key)

        node.expand = expand
        return node

    def _built(self, tree: Tree, logical: int) -> list[Node]:
        got = tree.built.get(logical)
        if got is None:
            got = self._live_block(tree, logical)
            tree.built[logical] = got
        return got

    def _live_block(self, tree: Tree, logical: int, full: bool = False) -> list[Node]:
        """Return a live block's node and the nodes of its items (only those with differing bytes unless ``full``)."""
        info = self.blocks[logical]
        copies = [c for k, c in enumerate(info.copies) if ("blk", logical, k) not in self.dropped]
        if not copies:
            return []
        data = self._read_copy(copies[0])
        h = parse_header(data)
        block, items = self._block_nodes(data, h, copies[0], tree.id, stale=False, full=full)
        if not full:
            for n in [block, *items]:
                if n.key in tree.keys:  # never expected: keys are unique within a tree
                    n.key = f"{n.key}@{logical}"
                tree.keys.add(n.key)
        self._copy_attrs = {"tree": tree.name}
        for k, copy in enumerate(copies[1:], start=1):
            block.children.append(self._copy_node(k, copy, copies[0], [block, *items]))
            block.extents = merge_extents([*block.extents, *copy])
        return [block, *items]

    def _block_nodes(self, data: bytes, h: Header, copy: tuple[Extent, ...], tree_id: int,
                     stale: bool, full: bool = False) -> tuple[Node, list[Node]]:
        """Return the node of one tree block (header, pointers or free space) and the nodes of its items.

        Items are built only where their bytes differ (or all of them with ``full``): a block whose header alone
        differs (every block's chunk_tree_uuid, when that is random) costs one node, not one per item.
        """
        errors: list[str] = []
        at = copy[0].offset  # absolute offset of byte 0 when the copy is contiguous

        def ext(rel: int, n: int) -> tuple[Extent, ...]:
            return _map_rel(copy, rel, n) if len(copy) > 1 else (Extent(at + rel, n),)

        fields = C_HEADER.fields(data, 0, at, decode={"fsid": uuid_text, "chunk_tree_uuid": uuid_text},
                                 display={"flags": _header_flags_text, "owner": objectid_text})
        if len(copy) > 1:
            fields = [f._replace(extents=ext(f.extents[0].offset - at, f.extents[0].length)) for f in fields]
        owned: list[tuple[int, int]] = [(0, HEADER_SIZE)]
        items: list[Node] = []
        tree_name = _tree_name(tree_id)
        if h.level == 0:
            refs = leaf_items(data, h.nritems, self.nodesize, errors)
            used: set[str] = set()
            # differing byte ranges of the block, relative to its start: one lookup per block, not per item
            hot = [] if full else [(_rel_of(copy, d.offset), d.length) for e in copy for d in self._differing(e)]

            def differs(rel: int, n: int) -> bool:
                return any(r < rel + n and rel < r + ln for r, ln in hot)

            for it in refs:
                hrel = HEADER_SIZE + it.index * ITEM_SIZE
                owned.append((hrel, ITEM_SIZE))
                owned.append((it.data_off, it.size))
                if not full and not differs(hrel, ITEM_SIZE) and not differs(it.data_off, it.size):
                    continue
                n = self._item_node(data, it, ext, tree_id, tree_name, stale)
                if n.key in used:
                    n.key = f"{n.key}#{it.index}"
                used.add(n.key)
                items.append(n)
            if items and refs and items[0].attrs.get("index") == refs[0].index:
                first = items[0].key
            elif refs:
                first = self._item_node(data, refs[0], ext, tree_id, tree_name, stale).key
            else:
                first = "empty"
            key = f"leaf:{first}"
        else:
            ptrs = node_ptrs(data, h.nritems)
            for p in ptrs:
                rel = HEADER_SIZE + p.index * KEY_PTR_SIZE
                pf = C_KEY_PTR.fields(data, rel, at + rel, prefix=f"ptr[{p.index}].",
                                      display={"key.objectid": objectid_text, "key.type": key_type_text})
                fields.extend(f._replace(extents=ext(f.extents[0].offset - at, f.extents[0].length)) for f in pf)
                owned.append((rel, KEY_PTR_SIZE))
            first_key = ptrs[0].key if ptrs else (0, 0, 0)
            key = f"node:{h.level}:{self._key_align(tree_id, first_key)}"
        # every byte of the block no header, item or pointer owns: the free space (plus any gaps)
        owned_exts = [Extent(r, n) for r, n in owned]
        free = subtract_extents(Extent(0, self.nodesize), owned_exts)
        overlap = sum(n for _r, n in owned) - sum(e.length for e in merge_extents(owned_exts))
        if overlap:
            errors.append(f"items overlap by {overlap} bytes")
        derived: list[Derived] = [Derived("csum", covers=ext(BTRFS_CSUM_SIZE, self.nodesize - BTRFS_CSUM_SIZE)),
                                  Derived("fsid", seeds=(self.fsid_seed,))]
        if free:
            pieces: list[tuple[Extent, bytes]] = []
            for f in free:
                rel = f.offset
                for e in ext(f.offset, f.length):
                    pieces.append((e, data[rel : rel + e.length]))
                    rel += e.length
            ff, fd = self._unused_fields("free", pieces, at)
            fields.extend(ff)
            derived.extend(fd)
        csum_cover = ext(BTRFS_CSUM_SIZE, self.nodesize - BTRFS_CSUM_SIZE)
        attrs: dict[str, Value] = {"tree": _tree_name(h.owner) if stale else tree_name, "level": h.level,
                                   "logical": h.bytenr, "owner": h.owner, "generation": h.generation}
        if stale:
            attrs["stale"] = True
        kind = "btrfs.leaf" if h.level == 0 else "btrfs.node"
        label = f"{'leaf' if h.level == 0 else 'node'} {h.bytenr} (level {h.level}, generation {h.generation})"
        if stale:
            label = "stale " + label
        del csum_cover
        node = Node(kind=kind, key=key, label=label, extents=merge_extents(copy), fields=tuple(fields),
                    derived=tuple(derived), attrs=attrs, errors=errors)
        return node, items

    def _item_node(self, data: bytes, it: ItemRef, ext: Callable[[int, int], tuple[Extent, ...]], tree_id: int,
                   tree_name: str, stale: bool) -> Node:
        hrel = HEADER_SIZE + it.index * ITEM_SIZE
        at = ext(0, 1)[0].offset
        contiguous = ext(0, self.nodesize) == (Extent(at, self.nodesize),)
        payload = data[it.data_off : it.data_off + it.size]
        dec = decode(self.item_ctx, payload, at + it.data_off, it.key)
        hdr = C_ITEM.fields(data, hrel, at + hrel, prefix="item.",
                            display={"key.objectid": objectid_text, "key.type": key_type_text})
        fields = [*hdr, *dec.fields]
        if not contiguous:
            fields = [f._replace(extents=tuple(e2 for e in f.extents for e2 in ext(e.offset - at, e.length)))
                      for f in fields]
        obj, typ, _off = it.key
        attrs: dict[str, Value] = {"tree": tree_name, "item_type": key_type_text(typ), "objectid": obj,
                                   "leaf_generation": parse_header(data).generation, "index": it.index}
        fs = self.fstrees.get(tree_id)
        if fs is not None:
            attrs["path"] = fs.path(obj)
            attrs["ino"] = obj
            attrs["file_type"] = fs.file_type(obj)
            attrs["root_dir"] = obj == fs.root_dirid
            if obj in fs.aliases:
                attrs["paths"] = tuple(fs.aliases[obj])
        attrs.update(dec.attrs)
        if typ == BTRFS_INODE_ITEM_KEY and len(payload) >= 160:
            attrs["otime"] = int.from_bytes(payload[148:156], "little")
            attrs["otime_nsec"] = int.from_bytes(payload[156:160], "little")
            attrs["mtime"] = int.from_bytes(payload[136:144], "little")
        if stale:
            attrs["stale"] = True
        key = self._item_align(tree_id, it.key, dec)
        label = key
        if fs is not None:  # "INODE_ITEM of /etc", "DIR_INDEX etc in /": the path is not the first word
            path = str(attrs["path"])
            rest = key[len(path) :].strip()
            tname, _, extra = rest.partition(" ")
            label = f"{tname} {extra} in {path}" if typ in (BTRFS_DIR_ITEM_KEY, BTRFS_DIR_INDEX_KEY) else (
                f"{tname} of {path}" + (f" ({extra})" if extra else ""))
        exts = merge_extents([*ext(hrel, ITEM_SIZE), *ext(it.data_off, it.size)])
        return Node(kind=dec.kind, key=key, label=label, extents=exts, fields=tuple(fields),
                    derived=tuple(dec.derived), attrs=attrs, errors=dec.errors)

    def _unused_fields(self, name: str, pieces: list[tuple[Extent, bytes]],
                       origin: int | None = None) -> tuple[list[Field], list[Derived]]:
        """Return the fields of unused bytes: ``name`` for the bytes, plus one field per stale copy of an identifier.

        Unused areas (a leaf's free space, the tail of ``sys_chunk_array``, free chunk space) keep bytes of earlier
        versions of their contents.  Where such bytes are a copy of one of this filesystem's identifiers (the
        device UUID, the chunk tree UUID, a subvolume UUID, the fsid) they are named and declared derived from the
        field that holds the live value, so that they follow its finding.  Their names carry the offset from
        ``origin`` (the start of the structure; default: the region).
        """
        origin = self.base if origin is None else origin
        fields: list[Field] = []
        derived: list[Derived] = []
        found: list[Extent] = []
        for ext, raw in pieces:
            if not self.ids or not self.ctx.interesting(ext):
                continue
            for ident, (label, seed) in self.ids.items():
                for lo, hi in _copies_of(raw, ident):
                    if len(found) >= 4096:
                        break
                    at = Extent(ext.offset + lo, hi - lo)
                    fname = f"{name}.{label}@{at.offset - origin}"
                    part = raw[lo:hi]
                    fields.append(Field(fname, uuid_text(part) if len(part) == 16 else part, (at,),
                                        None if len(part) == 16 else f"{len(part)} of the 16 bytes"))
                    derived.append(Derived(fname, seeds=(seed,)))
                    found.append(at)
        rest = [r for ext, _raw in pieces for r in (subtract_extents(ext, found) if found else [ext])]
        if rest:
            total = sum(e.length for e in rest)
            nz = sum(len(raw) - raw.count(0) for _e, raw in pieces)
            disp = f"{total} bytes, " + (f"{nz} non-zero" if nz else "all zero")
            fields.append(Field(name, f"{total} bytes", tuple(rest), disp))
        return fields, derived

    def _key_align(self, tree_id: int, key: Key) -> str:
        fs = self.fstrees.get(tree_id)
        if fs is None:
            return key_text(key)
        return f"{fs.path(key[0])} {key_type_text(key[1])} {key[2]}"

    def _item_align(self, tree_id: int, key: Key, dec: Decoded) -> str:
        """Return the alignment key of an item: meaningful across builds (paths, not inode numbers)."""
        obj, typ, off = key
        tname = key_type_text(typ)
        fs = self.fstrees.get(tree_id)
        if fs is not None:
            p = fs.path(obj)
            if typ == BTRFS_INODE_ITEM_KEY:
                return f"{p} {tname}"
            if typ == BTRFS_INODE_REF_KEY:
                return f"{p} {tname} {fs.path(off)}"
            names = dec.attrs.get("names")
            if typ in (BTRFS_DIR_ITEM_KEY, BTRFS_DIR_INDEX_KEY, BTRFS_XATTR_ITEM_KEY, BTRFS_INODE_EXTREF_KEY) and (
                isinstance(names, tuple) and names
            ):
                return f"{p} {tname} {names[0]!s}"
            return f"{p} {tname} {off}"
        if typ in (BTRFS_UUID_KEY_SUBVOL, BTRFS_UUID_KEY_RECEIVED_SUBVOL):
            ids = dec.attrs.get("subvol_ids")
            text = ",".join(objectid_text(i) for i in ids if isinstance(i, int)) if isinstance(ids, tuple) else "?"
            return f"{tname} {text}"
        return key_text(key)

    def _copy_node(self, k: int, copy: tuple[Extent, ...], primary: tuple[Extent, ...], nodes: list[Node]) -> Node:
        """Return the node of copy ``k`` of a block (DUP, RAID1): every field a derived copy of the primary's.

        Copy fields are named ``<item key>/<field>`` (block header fields by their own name).
        """
        data = self._read_copy(copy)
        fields: list[Field] = []
        derived: list[Derived] = []
        mirrored: list[Extent] = []
        for i, n in enumerate(nodes):
            prefix = "" if i == 0 else f"{n.key}/"
            for f in n.fields:
                rels = [(_rel_of(primary, e.offset), e.length) for e in f.extents]
                exts = tuple(e2 for r, ln in rels for e2 in _map_rel(copy, r, ln))
                raw = b"".join(data[r : r + ln] for r, ln in rels)
                name = prefix + f.name
                fields.append(Field(name, blob_value(raw), exts))
                derived.append(Derived(name, covers=f.extents))
                mirrored.extend(Extent(r, ln) for r, ln in rels)
        # the items not built (their bytes do not differ): one field, a copy of the same bytes of the primary
        rest = subtract_extents(Extent(0, self.nodesize), mirrored)
        if rest:
            exts = tuple(e2 for r in rest for e2 in _map_rel(copy, r.offset, r.length))
            fields.append(Field("items", f"{sum(r.length for r in rest)} bytes", exts))
            derived.append(Derived("items", covers=tuple(e2 for r in rest for e2 in _map_rel(primary, r.offset,
                                                                                            r.length))))
        return Node(kind="btrfs.block_copy", key=f"copy:{k}", label=f"copy {k}", extents=merge_extents(copy),
                    fields=tuple(fields), derived=tuple(derived), attrs={"copy": k, **self._copy_attrs})

    # -- files

    def _files_node(self) -> Node:
        node = Node(kind="btrfs.files", key="files", label="file data")
        index: dict[str, tuple[int, int]] = {}
        exts: list[Extent] = []
        for tid, fs in self.fstrees.items():
            if tid == BTRFS_DATA_RELOC_TREE_OBJECTID:
                continue
            for ino in fs.extents:
                if fs.file_type(ino) != "reg":
                    continue
                index.setdefault(fs.path(ino), (tid, ino))
        for e, owner in self.claims:
            if owner[0] == "data":
                exts.append(e)
        node.extents = merge_extents(exts)
        for path, (tid, ino) in sorted(index.items()):
            if self._file_interesting(tid, ino):
                f = self._file_node(tid, ino)
                if f is not None:
                    node.children.append(f)

        def expand(key: str) -> Node | None:
            got = index.get(key)
            return self._file_node(*got) if got is not None else None

        node.expand = expand
        return node

    def _file_extents(self, tid: int, ino: int) -> Iterable[tuple[FileExtent, list[tuple[Extent, ...]]]]:
        fs = self.fstrees[tid]
        for fe in fs.extents.get(ino, ()):
            if fe.type == BTRFS_FILE_EXTENT_INLINE or fe.disk_bytenr == 0:
                continue
            if self.data_owner.get(fe.disk_bytenr) != (tid, ino):
                continue
            copies = [c for k, c in enumerate(self._abs_copies(fe.disk_bytenr, fe.disk_num_bytes))
                      if ("data", fe.disk_bytenr, k) not in self.dropped and all(e.end <= self.dev_end for e in c)]
            yield fe, copies

    def _file_interesting(self, tid: int, ino: int) -> bool:
        return any(self._interesting_copies(copies) for _fe, copies in self._file_extents(tid, ino))

    def _file_node(self, tid: int, ino: int) -> Node | None:
        fs = self.fstrees[tid]
        size = fs.inodes[ino].size if ino in fs.inodes else 0
        data: list[Extent] = []
        slack: list[Extent] = []
        other: dict[str, list[Extent]] = {}
        copy_fields: list[tuple[str, tuple[Extent, ...], tuple[Extent, ...]]] = []
        for fe, copies in self._file_extents(tid, ino):
            if not copies:
                continue
            primary = copies[0]
            whole = fe.disk_num_bytes
            kind = "data"
            if fe.type == BTRFS_FILE_EXTENT_PREALLOC:
                kind = "prealloc"
            elif fe.compression or fe.encryption:
                kind = "compressed_data"
            if kind == "data":
                used = max(0, min(fe.num_bytes, size - fe.file_off))
                rel = min(fe.offset, whole)
                used = min(used, whole - rel)
                data.extend(_map_rel(primary, rel, used))
                slack.extend(_map_rel(primary, 0, rel))
                slack.extend(_map_rel(primary, rel + used, whole - rel - used))
            else:
                other.setdefault(kind, []).extend(primary)
            for k, c in enumerate(copies[1:], start=1):
                copy_fields.append((f"copy{k}", c, primary))
        fields: list[Field] = []
        if data:
            fields.append(Field("data", self._hash(data), tuple(_join(data)), f"{sum(e.length for e in data)} bytes"))
        if slack:
            sx = merge_extents(slack)
            fields.append(Field("slack", f"{sum(e.length for e in sx)} bytes", sx))
        for name, ex in other.items():
            mx = merge_extents(ex)
            fields.append(Field(name, self._hash(list(mx)), mx, f"{sum(e.length for e in mx)} bytes"))
        derived: list[Derived] = []
        for name, c, primary in copy_fields:
            fields.append(Field(f"{name}@{c[0].offset - self.base}", self._hash(list(c)), c))
            derived.append(Derived(f"{name}@{c[0].offset - self.base}", covers=primary))
        if not fields:
            return None
        path = fs.path(ino)
        attrs: dict[str, Value] = {"path": path, "file_type": "reg", "ino": ino, "size": size,
                                   "tree": _tree_name(tid)}
        if data:
            attrs["content"] = True
        if ino in fs.aliases:
            attrs["paths"] = tuple(fs.aliases[ino])
        exts = merge_extents(e for f in fields for e in f.extents)
        return Node(kind="btrfs.file", key=path, label=path, extents=exts, fields=tuple(fields),
                    derived=tuple(derived), attrs=attrs)

    def _hash(self, exts: list[Extent]) -> Value:
        total = sum(e.length for e in exts)
        if total > FILE_HASH_LIMIT:
            return f"{total} bytes"
        h = hashlib.sha256()
        for e in exts:
            pos = e.offset
            while pos < e.end:
                n = min(1 << 22, e.end - pos)
                h.update(self.ctx.read(pos, n))
                pos += n
        return "sha256:" + h.hexdigest()[:16]

    # -- free, unallocated and stale space

    def _space_nodes(self) -> list[Node]:
        out: list[Node] = []
        stripe_exts: list[Extent] = []
        for ch, idx, pext in self.cmap.stripe_ranges():
            s = Extent(self.base + pext.offset, pext.length)
            if s.offset >= self.dev_end:
                continue
            s = Extent(s.offset, min(s.end, self.dev_end) - s.offset)
            stripe_exts.append(s)
            tname = _chunk_type_text(ch.type)
            for run in self._free_runs(s):
                if ch.striped:
                    key = f"free:{tname}@{run.offset - self.base}"
                    where = f"at device offset {run.offset - self.base}"
                else:
                    logical = ch.logical + (run.offset - s.offset)
                    key = f"free:{tname}:{logical}" + (f"#{idx}" if len(ch.stripes) > 1 else "")
                    where = f"at logical {logical}" + (f" (stripe {idx})" if len(ch.stripes) > 1 else "")
                out.append(self._space_node("btrfs.free", key, f"unused {tname} chunk space {where}", run,
                                            {"chunk_type": tname, "stripe": idx}))
        region = Extent(self.base, self.dev_end - self.base)
        for run in self._free_runs(region, stripe_exts):
            pos = run.offset
            while pos < run.end:
                n = min(UNALLOCATED_PIECE, run.end - pos)
                rel = pos - self.base
                label = ("reserved area before the first superblock" if rel == 0 and n <= BTRFS_SUPER_INFO_OFFSET
                         else f"unallocated device space at {rel}")
                out.append(self._space_node("btrfs.unallocated", f"unallocated:{rel}", label, Extent(pos, n), {}))
                pos += n
        if self.dev_end < self.base + self.size:
            ext = Extent(self.dev_end, self.base + self.size - self.dev_end)
            out.append(Node(kind="btrfs.beyond_end", key="beyond", label="space after the end of the filesystem",
                            extents=(ext,), fields=(Field("unused", f"{ext.length} bytes", (ext,)),)))
        return out

    def _space_node(self, kind: str, key: str, label: str, ext: Extent, attrs: dict[str, Value]) -> Node:
        node = Node(kind=kind, key=key, label=label, extents=(ext,), attrs=dict(attrs))
        stale: list[Extent] = []
        if self.ctx.interesting(ext):
            for p in self._stale_positions(ext):
                data = self.ctx.read(p, self.nodesize)
                h = parse_header(data)
                copy = (Extent(p, self.nodesize),)
                block, items = self._block_nodes(data, h, copy, h.owner, stale=True)
                block.key = f"stale:{p - self.base}"
                block.children.extend(items)
                block.expand = self._stale_expand(data, h, copy)
                node.children.append(block)
                stale.append(copy[0])
        rest = subtract_extents(ext, stale) if stale else [ext]
        if rest:
            pieces: list[tuple[Extent, bytes]] = []
            for r in rest:
                # only differing stretches (and a little around them) are read to look for identifiers
                hot = [Extent(max(r.offset, d.offset - 16), min(r.end, d.end + 16) - max(r.offset, d.offset - 16))
                       for d in self._differing(r)] if self.ctx.interesting(r) else []
                hot = list(merge_extents(hot))
                pieces.extend((h, self.ctx.read(h.offset, h.length)) for h in hot)
                pieces.extend((c, b"") for c in subtract_extents(r, hot))
            fields, derived = self._unused_fields("unused", sorted(pieces))
            total = sum(e.length for e in rest)
            node.fields = tuple(Field("unused", f"{total} bytes", f.extents, f"{total} bytes") if f.name == "unused"
                                else f for f in fields)
            node.derived = tuple(derived)
        return node

    def _stale_expand(self, data: bytes, h: Header, copy: tuple[Extent, ...]) -> Callable[[str], Node | None]:
        """Return the lazy lookup of a stale block's items that were not built (their bytes do not differ)."""
        cache: dict[str, Node] = {}

        def expand(key: str) -> Node | None:
            if not cache:
                _block, items = self._block_nodes(data, h, copy, h.owner, stale=True, full=True)
                cache.update((n.key, n) for n in items)
            return cache.get(key)

        return expand

    def _stale_positions(self, ext: Extent) -> list[int]:
        """Return where, inside differing bytes of ``ext``, an earlier tree block of this filesystem still lies."""
        found: list[int] = []
        step = self.sectorsize
        nxt = ext.offset
        for r in self._differing(ext):
            lo = max(ext.offset, r.offset - self.nodesize + 1, nxt)
            p = self.base + -(-(lo - self.base) // step) * step
            while p < r.end and p + self.nodesize <= ext.end and len(found) < MAX_STALE_PER_RUN:
                if p >= nxt and self._looks_like_block(p):
                    found.append(p)
                    nxt = p + self.nodesize
                    p = nxt
                    continue
                p += step
        return found

    def _looks_like_block(self, p: int) -> bool:
        h = parse_header(self.ctx.read(p, HEADER_SIZE))
        if check_header(h, None, self.meta_fsid, self.nodesize, None) is not None:
            return False
        # mkfs writes its first blocks without the WRITTEN flag: only unknown flag bits disqualify
        known = BTRFS_HEADER_FLAG_WRITTEN | BTRFS_HEADER_FLAG_RELOC | (0xFF << BTRFS_BACKREF_REV_SHIFT)
        return not h.flags & ~known and h.bytenr % self.sectorsize == 0 and (
            h.generation <= self.sb["generation"] + 1
        )


def _copies_of(raw: bytes, ident: bytes, probe: int = 8) -> list[tuple[int, int]]:
    """Return ``(start, end)`` of every whole or partial copy of ``ident`` in ``raw`` (at least ``probe`` bytes).

    A partial copy is what is left of an identifier after later writes overwrote its start or its end.
    """
    out: set[tuple[int, int]] = set()
    n = len(ident)
    for k0 in (0, n - probe):
        pos = raw.find(ident[k0 : k0 + probe])
        while pos >= 0 and len(out) < 4096:
            start = pos - k0  # where the identifier would begin
            lo = pos
            while lo > max(0, start) and raw[lo - 1] == ident[lo - 1 - start]:
                lo -= 1
            hi = pos + probe
            while hi < min(len(raw), start + n) and raw[hi] == ident[hi - start]:
                hi += 1
            out.add((lo, hi))
            pos = raw.find(ident[k0 : k0 + probe], pos + 1)
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(out):
        if merged and lo < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _header_flags_text(v: int) -> str:
    rev = v >> 56
    return f"{flags_text(v & ((1 << 56) - 1), HEADER_FLAG_NAMES)} backref rev {rev}"


def _chunk_type_text(t: int) -> str:
    if t & BTRFS_BLOCK_GROUP_DATA and t & BTRFS_BLOCK_GROUP_METADATA:
        return "MIXED"
    for bit in (BTRFS_BLOCK_GROUP_SYSTEM, BTRFS_BLOCK_GROUP_METADATA, BTRFS_BLOCK_GROUP_DATA):
        if t & bit:
            return BLOCK_GROUP_NAMES[bit]
    return "UNKNOWN"


def _join(exts: list[Extent]) -> list[Extent]:
    """Join adjacent extents that continue each other, keeping the order (file data order matters)."""
    out: list[Extent] = []
    for e in exts:
        if e.length <= 0:
            continue
        if out and out[-1].end == e.offset:
            out[-1] = Extent(out[-1].offset, out[-1].length + e.length)
        else:
            out.append(e)
    return out


__all__ = ["Btrfs", "is_fs_tree"]

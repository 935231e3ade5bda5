"""The ext4 volume model: geometry, the bulk inode scan, the block owner map, the directory walk that names inodes by path, and lazy children.  Node builders live in the other modules of this package."""

from __future__ import annotations

import bisect
import functools
import hashlib
import struct
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, NamedTuple

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.ext4.c_ext4 import (
    COMPAT_FEATURES,
    COMPAT_HAS_JOURNAL,
    COMPAT_ORPHAN_FILE,
    COMPAT_SPARSE_SUPER2,
    EXT4_BG_BLOCK_UNINIT,
    EXT4_BG_INODE_UNINIT,
    EXT4_DIR_TAIL_FT,
    EXT4_EXT_MAGIC,
    EXT4_EXTENTS_FL,
    EXT4_GOOD_OLD_INODE_SIZE,
    EXT4_INLINE_DATA_FL,
    EXT4_MIN_INLINE_DATA_SIZE,
    EXT4_N_BLOCKS,
    EXT4_RESIZE_INO,
    EXT4_ROOT_INO,
    EXT4_SUPER_MAGIC,
    EXT4_SUPERBLOCK_OFFSET,
    EXT_INIT_MAX_LEN,
    INCOMPAT_64BIT,
    INCOMPAT_CSUM_SEED,
    INCOMPAT_EA_INODE,
    INCOMPAT_FEATURES,
    INCOMPAT_FILETYPE,
    INCOMPAT_META_BG,
    MODE_TYPES,
    RO_COMPAT_BIGALLOC,
    RO_COMPAT_FEATURES,
    RO_COMPAT_GDT_CSUM,
    RO_COMPAT_METADATA_CSUM,
    RO_COMPAT_SPARSE_SUPER,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
)
from imgdiff.formats.ext4.common import (
    _CSUM_SEEDS,
    _DIRENT,
    _EE,
    _EH,
    _EI,
    _GD_SCAN,
    _GD_SCAN_HI,
    _SCAN,
    _SCAN_NAMES,
    C_INODE,
    C_SB,
    MAX_DIR_ENTRIES,
    MAX_EXTENT_DEPTH,
    MAX_GROUPS,
    MAX_PATH_DEPTH,
    MAX_TREE_BLOCKS,
    READ_CHUNK,
    SHA_FULL_LIMIT,
    _inline_xattr,
    _name,
)
from imgdiff.model import Extent, Node, Value
from imgdiff.source import VBASE

_NO_TREE: list[tuple[int, int, int, str]] = []
"""The ``tree`` of every inode without mapping blocks (never appended to: see :meth:`InodeInfo.add_tree`)."""


_DIR_TAIL_HEAD = struct.pack("<IHBB", 0, 12, 0, EXT4_DIR_TAIL_FT)
"""The first 8 bytes of a dirent tail (inode 0, rec_len 12, name_len 0, file type 0xDE): its checksum follows."""

class InodeInfo:
    """What the bulk scan keeps of one used inode: type, size, links, and its block map."""

    __slots__ = ("errors", "fast", "file_acl", "flags", "generation", "inline", "ino", "links", "mode", "runs", "size",
                 "tree")

    def __init__(self, ino: int, mode: int, flags: int, size: int, links: int, generation: int, file_acl: int):
        self.ino = ino
        self.mode = mode
        self.flags = flags
        self.size = size
        self.links = links
        self.generation = generation
        self.file_acl = file_acl
        self.runs: list[tuple[int, int, int, bool]] = []
        """``(logical block, physical block, length, unwritten)`` in logical order."""
        self.tree: list[tuple[int, int, int, str]] = _NO_TREE
        """(Shared empty list until the first block is added: most inodes have no mapping blocks.)"""
        """``(physical block, depth or level, first logical block, "eb" | "ind")`` of mapping blocks."""
        self.fast = False
        """True when the data lives in ``i_block`` (fast symlink, inline data, device numbers)."""
        self.inline: tuple[tuple[int, int], ...] = ()
        """Inline data: ``(filesystem offset, length)`` of ``i_block`` and of the ``system.data`` value, in order."""
        self.errors: list[str] | None = None

    @property
    def file_type(self) -> str:
        """Return ``"dir"``, ``"reg"``, ``"lnk"``, ... from ``i_mode``."""
        return MODE_TYPES.get(self.mode & S_IFMT, "unknown")

    def add_tree(self, entry: tuple[int, int, int, str]) -> None:
        """Record a mapping block (extent tree or indirect block) of this inode."""
        if self.tree is _NO_TREE:
            self.tree = []
        self.tree.append(entry)

    def error(self, msg: str) -> None:
        """Record a problem found while mapping this inode (once: the object may be shared by both sides)."""
        if self.errors is None:
            self.errors = []
        if len(self.errors) < 16 and msg not in self.errors:
            self.errors.append(msg)

BUILD_ERRORS = (ParseError, struct.error, ValueError, IndexError, KeyError, OverflowError)
"""What building a node from malformed bytes may raise: the node is then missing and the reason reported."""


def _set_bits(bits: bytes, top: int) -> list[int]:
    """Return the indexes below ``top`` of the bits set in the little-endian bitmap ``bits``, ascending.

    Byte by byte (a full byte is eight indexes at once): testing ``int >> idx`` on the bitmap as one integer
    shifts an 8,192-bit number per inode."""
    out: list[int] = []
    for k, byte in enumerate(bits[: (top + 7) >> 3]):
        if byte == 0xFF:
            out.extend(range(k << 3, (k << 3) + 8))
        elif byte:
            out.extend((k << 3) + i for i in range(8) if byte >> i & 1)
    while out and out[-1] >= top:
        out.pop()
    return out


def _scan_bytes() -> bytes:
    """Return, per byte of an inode slot's fixed part, 1 when the bulk scan (``_SCAN``) reads it, else 0."""
    mask = bytearray(C_INODE.size)
    for name in _SCAN_NAMES:
        off, n = C_INODE.span(name)
        mask[off : off + n] = b"\x01" * n
    return bytes(mask)


_SCAN_BYTES = _scan_bytes()
"""Which bytes of an inode decide what the scan keeps of it (:class:`InodeInfo`); the rest (times, owners,
checksums, the in-inode xattrs of a file without inline data) do not."""


class _Lazy:
    """Children of a container node built on demand by key; ``Node.expand`` points here."""

    def __init__(self, node: Node, build: Callable[[str], Node | None], errors: list[str],
                 report: Callable[[Node], None] | None = None) -> None:
        self.node = node
        self.build = build
        self.errors = errors
        self.report = report
        self.made: dict[str, Node | None] = {}
        node.expand = self.expand

    def expand(self, key: str) -> Node | None:
        """Return the child with ``key`` (building it once), or None when there is no such object."""
        if key in self.made:
            return self.made[key]
        try:
            found = self.build(key)
        except BUILD_ERRORS as exc:
            self.errors.append(f"{self.node.label}: {key}: {exc}")
            found = None
        self.made[key] = found
        if found is not None and self.report is not None:
            self.report(found)
        return found

    def add(self, key: str) -> None:
        """Build the child ``key`` now and attach it."""
        if key in self.made:
            return
        found = self.expand(key)
        if found is not None:
            self.node.children.append(found)

class Kind(StrEnum):
    """What a block belongs to (:class:`Owner`), or what a differing byte range touches (:class:`Target`)."""

    BOOT = "boot"
    SB = "sb"
    GDT = "gdt"
    GD = "gd"
    RGDT = "rgdt"
    BBITMAP = "bbitmap"
    IBITMAP = "ibitmap"
    ITABLE = "itable"
    INODE = "inode"
    DIR = "dir"
    FILE = "file"
    XATTR = "xattr"
    JOURNAL = "journal"
    ORPHAN = "orphan"
    RESIZE = "resize"
    FREE = "free"
    UNOWNED = "unowned"
    BEYOND = "beyond"


class Owner(NamedTuple):
    """The owner of a run of blocks in the block owner map."""

    kind: Kind
    n: int = 0
    """The group (SB, RGDT, bitmaps, ITABLE), inode (DIR, FILE), block (XATTR) or first descriptor (GDT)."""
    copy: str = ""
    """The descriptor table copy (GDT): ``"gdt"`` or ``"gdt@group:N"``."""


class Target(NamedTuple):
    """An object whose bytes differ, to be built as a node: kind, number, descriptor copy, block range."""

    kind: Kind
    n: int = 0
    """The group, inode, descriptor or xattr block, or the first block of a journal/orphan range."""
    copy: str = ""
    end: int = 0
    """The end block of a journal/orphan block range."""


@functools.lru_cache(maxsize=16)
def _next_marked(mask: bytes, size: int) -> tuple[int, ...]:
    """Return, per offset of a ``size``-byte slot, the first offset at or after it where ``mask`` holds a 1
    (``size``: none; ``mask`` may be shorter than the slot), so that "a marked byte in ``[a, b)``" is one lookup."""
    out = [size] * (size + 1)
    for p in range(min(len(mask), size) - 1, -1, -1):
        out[p] = p if mask[p] == 1 else out[p + 1]
    return tuple(out)


_ITABLE_CHUNK = 1 << 16
"""Bytes of inode table read at a time by :meth:`Volume.inode_raw`."""


class Volume:
    """One ext2/3/4 filesystem in a region of an image: geometry, bulk scans and node builders."""

    def __init__(self, ctx: ParseContext, base: int, size: int) -> None:
        self.ctx = ctx
        self.base = base
        self.size = size
        self.errors: list[str] = []
        self.region_label = ""
        self._reported: set[str] = set()
        self._lazy_of: dict[int, _Lazy] = {}
        raw = ctx.read(base + EXT4_SUPERBLOCK_OFFSET, 1024)
        sb = C_SB.unpack(raw)
        if sb["s_magic"] != EXT4_SUPER_MAGIC:
            raise ParseError("no ext4 superblock magic", base + EXT4_SUPERBLOCK_OFFSET + 0x38, "s_magic")
        self.sb = sb
        self.sb_raw = raw
        if sb["s_log_block_size"] > 6:
            raise ParseError(f"block size 2^(10+{sb['s_log_block_size']}) is not plausible",
                             base + 1024 + 0x18, "s_log_block_size")
        self.bs = 1024 << sb["s_log_block_size"]
        self.incompat = sb["s_feature_incompat"]
        self.compat = sb["s_feature_compat"]
        self.ro_compat = sb["s_feature_ro_compat"]
        self.is64 = bool(self.incompat & INCOMPAT_64BIT)
        self.csum = bool(self.ro_compat & RO_COMPAT_METADATA_CSUM)
        self.gdt_csum = self.csum or bool(self.ro_compat & RO_COMPAT_GDT_CSUM)
        self.filetype = bool(self.incompat & INCOMPAT_FILETYPE)
        self.seeds = _CSUM_SEEDS + (("ext4.superblock:s_checksum_seed",) if self.incompat & INCOMPAT_CSUM_SEED else ())
        self.blocks_count = sb["s_blocks_count_lo"] | ((sb["s_blocks_count_hi"] << 32) if self.is64 else 0)
        self.first_data_block = sb["s_first_data_block"]
        self.bpg = sb["s_blocks_per_group"]
        self.ipg = sb["s_inodes_per_group"]
        self.inodes_count = sb["s_inodes_count"]
        rev = sb["s_rev_level"]
        self.inode_size = sb["s_inode_size"] if rev >= 1 else EXT4_GOOD_OLD_INODE_SIZE
        self.first_ino = sb["s_first_ino"] if rev >= 1 else 11
        self.desc_size = (sb["s_desc_size"] or 32) if self.is64 else 32
        self.cluster_ratio = 1
        if self.ro_compat & RO_COMPAT_BIGALLOC:
            shift = sb["s_log_cluster_size"] - sb["s_log_block_size"]
            self.cluster_ratio = 1 << max(0, min(shift, 20))
        where = base + EXT4_SUPERBLOCK_OFFSET
        if self.bpg == 0 or self.bpg > 8 * self.bs * self.cluster_ratio:
            raise ParseError(f"s_blocks_per_group {self.bpg} is not plausible", where + 0x20, "s_blocks_per_group")
        if self.ipg == 0 or self.ipg > 8 * self.bs:
            raise ParseError(f"s_inodes_per_group {self.ipg} is not plausible", where + 0x28, "s_inodes_per_group")
        if self.inode_size < 128 or self.inode_size > self.bs or self.inode_size & (self.inode_size - 1):
            raise ParseError(f"s_inode_size {self.inode_size} is not plausible", where + 0x58, "s_inode_size")
        if self.desc_size < 32 or self.desc_size > 1024 or self.desc_size & (self.desc_size - 1):
            raise ParseError(f"s_desc_size {self.desc_size} is not plausible", where + 0xFE, "s_desc_size")
        if self.first_data_block >= self.blocks_count:
            raise ParseError("s_first_data_block beyond s_blocks_count", where + 0x14, "s_first_data_block")
        self.groups = -(-(self.blocks_count - self.first_data_block) // self.bpg)
        if self.groups > MAX_GROUPS:
            raise ParseError(f"{self.groups} block groups is not plausible", where + 0x04, "s_blocks_count_lo")
        self.fs_bytes = self.blocks_count * self.bs
        self.avail = max(0, min(size, ctx.src.size - base))
        """Bytes of the region this image really holds (less than ``size`` when the image is cut short)."""
        self.limit = self._build_limit()
        """Detail is built only below this region offset: past it this image has no bytes, or the other image
        has none to pair them with (those bytes belong to the image-size difference)."""
        if self.fs_bytes > self.avail:
            self.errors.append(
                f"filesystem is {self.fs_bytes} bytes but the image holds {self.avail} of them: image truncated; "
                "structures past the end are not read"
            )
        self._missing: dict[str, list[int]] = {}
        self.dpb = self.bs // self.desc_size
        self.gdb_count = -(-self.groups // self.dpb)
        self.itb_per_group = -(-(self.ipg * self.inode_size) // self.bs)
        self.meta_bg = bool(self.incompat & INCOMPAT_META_BG)
        self.old_desc_blocks = min(sb["s_first_meta_bg"], self.gdb_count) if self.meta_bg else self.gdb_count
        self.rgdt_blocks = sb["s_reserved_gdt_blocks"]
        self.journal_ino = sb["s_journal_inum"] if self.compat & COMPAT_HAS_JOURNAL else 0
        self.orphan_ino = sb["s_orphan_file_inum"] if self.compat & COMPAT_ORPHAN_FILE else 0
        # Filled by the scans.
        self.gd: list[tuple[int, int, int, int, int]] = []
        """Per group: block bitmap, inode bitmap, inode table, bg_flags, bg_itable_unused."""
        self.gdt_copies: dict[str, list[tuple[int, int]]] = {}
        """Group descriptor table copies by node key: ``[(block, first descriptor index)]``."""
        self.inodes: dict[int, InodeInfo] = {}
        self.paths: dict[str, int] = {}
        self.ino_paths: dict[int, list[str]] = {}
        self.xattr_owners: dict[int, list[int]] = {}
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._tags: list[Owner] = []
        self._bitmaps: dict[tuple[str, int], bytes] = {}
        self._itable_cache: dict[int, bytes] = {}
        self._owned: dict[tuple[Kind, ...], tuple[Extent, ...]] = {}
        self._inode_nodes: dict[int, Node] | None = None
        """Side A's nodes of used inodes, kept for side B to share their constant parts (see :meth:`peer_inode_node`)."""
        self._entries: dict[int, list[tuple[str, int, int]]] | None = None
        """Side A's directory entries per directory inode, kept for side B to reuse (see :meth:`_find_peer`)."""
        self.walk_errors: list[str] = []
        self.groups_made: dict[str, tuple[list[Any], Node | None]] = {}
        """Per group kind (``"inodes"``, ``"dirs"``): the members and node :mod:`grouped` made (side B takes A's)."""
        self._read_groups()
        self.peer = self._find_peer()
        self._shared_all = False
        """True when every used inode is side A's own object (all inode tables and tree blocks equal)."""
        self._scan_inodes()
        self._map_blocks()
        self._walk()

    def _find_peer(self) -> Volume | None:
        """Return side A's volume of the same region when B may reuse its scans (same geometry), else None.

        Most pairs are close: a rebuilt image whose inode tables and directories hardly differ.  Side B then takes
        side A's per-inode results for every inode table whose bytes are equal, and A's directory entries for
        every directory whose blocks are equal, instead of scanning them again.
        """
        found = self.ctx.peer("ext4", self.base, self.size, self)
        if self.ctx.side == "a" and self.ctx.spaces is not None and not self.ctx.spaces.standalone:
            self._entries = {}
            self._inode_nodes = {}
        if not isinstance(found, Volume):
            return None
        same = (found.bs, found.groups, found.ipg, found.inode_size, found.bpg, found.first_data_block,
                found.inodes_count, found.gd, found.gdt_copies, found.journal_ino, found.orphan_ino)
        mine = (self.bs, self.groups, self.ipg, self.inode_size, self.bpg, self.first_data_block,
                self.inodes_count, self.gd, self.gdt_copies, self.journal_ino, self.orphan_ino)
        return found if same == mine else None

    def _differs(self, off: int, n: int) -> bool:
        """Return True when bytes ``[off, off + n)`` of the region (filesystem offsets) differ from the other side."""
        return n > 0 and self.ctx.interesting(Extent(self.base + off, n))

    def maps_alike(self, blk: int, kind: str) -> bool:
        """Return True when mapping block ``blk`` (``kind``: ``"eb"`` extent block, ``"ind"`` indirect block)
        maps the same blocks on both sides: equal bytes, or an extent block that differs only in its
        ``eb_checksum`` (after ``eh_max`` entries; seeded from the UUID like every metadata checksum)."""
        bs = self.bs
        if not self._differs(blk * bs, bs):
            return True
        diff = self.ctx.diff
        if kind != "eb" or not self.csum or diff is None:
            return False
        head = self.read(blk * bs, 12)
        if len(head) < 12 or head[0:2] != b"\x0a\xf3":  # eh_magic 0xF30A
            return False
        tail = 12 + 12 * (head[4] | head[5] << 8)  # struct ext4_extent_tail after eh_max entries
        if tail + 4 > bs:
            return False
        at = self.base + blk * bs - (diff.delta if self.ctx.side == "b" else 0)  # (counted exactly, in A offsets)
        return not diff.count_in(Extent(at, tail)) and not diff.count_in(Extent(at + tail + 4, bs - tail - 4))

    def _differing_slots(self, off: int, n: int, size: int, mask: bytes = b"") -> tuple[set[int], set[int]] | None:
        """Return the indexes of the ``size``-byte slots of ``[off, off + n)`` (filesystem offsets) that
        :meth:`_differs` would report, from the differing runs at once; None when only a per-slot test can tell
        (a decoded space).

        The second set holds the slots whose differing runs touch a byte marked non-zero in ``mask`` (one byte
        per slot byte; empty: none).  Runs may span equal bytes (gaps shorter than ``MERGE_GAP``): a slot can be
        in it when only bytes beside a marked one differ, never the other way round.
        """
        diff = self.ctx.diff
        start = self.base + off
        if diff is None or start + n > VBASE or size <= 0:
            return None
        delta = diff.delta if self.ctx.side == "b" else 0
        lo, hi = start - delta, start + n - delta
        starts, ends = diff.starts, diff.ends
        out: set[int] = set()
        marked: set[int] = set()
        nxt = _next_marked(mask, size) if mask else None
        i = bisect.bisect_right(memoryview(ends), lo)
        n_runs = len(starts)
        while i < n_runs and starts[i] < hi:
            s, e = starts[i], ends[i]
            s = max(s, lo)
            e = min(e, hi)
            i += 1
            if e <= s:
                continue
            k0, k1 = (s - lo) // size, (e - 1 - lo) // size
            if k0 == k1:  # the common run: inside one slot
                out.add(k0)
                if nxt is not None:
                    base = lo + k0 * size
                    if nxt[s - base] < e - base:
                        marked.add(k0)
                continue
            out.update(range(k0, k1 + 1))
            if nxt is not None:
                for k in range(k0, k1 + 1):
                    base = lo + k * size
                    if nxt[max(s, base) - base] < min(e, base + size) - base:
                        marked.add(k)
        return out, marked

    def _build_limit(self) -> int:
        """Return the region offset past which nothing is built (see ``self.limit``)."""
        limit = self.avail
        diff = self.ctx.diff
        if diff is not None:
            other = diff.src_b if self.ctx.side == "a" else diff.src_a
            if other is not None:
                other_end = other.size - diff.delta if self.ctx.side == "a" else other.size + diff.delta
                limit = min(limit, max(0, other_end - self.base))
        return limit

    def _past_end(self, what: str, number: int, first_block: int, nblocks: int = 1) -> bool:
        """Return True (and remember it for one summary error) when a structure lies beyond the image's end.

        ``what`` names the kind and the unit of ``number``: ``"inode table of group"``, ``"descriptor block"``.
        """
        if (first_block + nblocks) * self.bs <= self.avail:
            return False
        self._missing.setdefault(what, []).append(number)
        return True

    def _missing_errors(self) -> list[str]:
        """Return one error per kind of structure that lies (partly) past the end of a truncated image."""
        out = []
        for what, numbers in self._missing.items():
            ns = sorted(set(numbers))
            listed = ", ".join(str(n) for n in ns[:8]) + (f" and {len(ns) - 8} more" if len(ns) > 8 else "")
            out.append(f"{what} {listed}: past the end of the image ({self.avail} bytes), not read")
        return out

    def _clipped(self, node: Node | None) -> Node | None:
        """Return ``node`` without what lies past ``self.limit`` (None when nothing is left).

        Bytes past the end of this image do not exist; bytes past the end of the other image have nothing to pair
        with and belong to the image-size difference, so a structure there is not described field by field.
        """
        if node is None or self.limit >= max(self.size, self.fs_bytes):
            return node
        end = self.base + self.limit
        if node.extents and all(e.offset >= end for e in node.extents):
            return None
        if all(e.end <= end for e in node.extents):
            return node
        node.extents = tuple(Extent(e.offset, min(e.end, end) - e.offset) for e in node.extents if e.offset < end)
        if node.record is not None:  # a record across the end (an inode slot, an entry): clip its members as fields
            node.fields, node.record = node.all_fields(), None
        fields = []
        for f in node.fields:
            exts = tuple(Extent(e.offset, min(e.end, end) - e.offset) for e in f.extents if e.offset < end)
            if exts:
                fields.append(f._replace(extents=exts))
        node.fields = tuple(fields)
        node.children = [c for c in (self._clipped(c) for c in node.children) if c is not None]
        return node

    def report(self, node: Node) -> None:
        """Copy the problems recorded on a newly built node (and its children) into the parse context."""
        stack = [node]
        while stack:
            n = stack.pop()
            for msg in n.errors:
                line = f"ext4 ({self.region_label}): {n.label}: {msg}"
                if line not in self._reported:
                    self._reported.add(line)
                    self.ctx.errors.append(line)
            stack.extend(n.children)

    def lazy(self, node: Node, build: Callable[[str], Node | None]) -> _Lazy:
        """Make ``node``'s children buildable by key (cut at ``self.limit``), reporting their errors."""
        lz = _Lazy(node, lambda key: self._clipped(build(key)), self.ctx.errors, self.report)
        self._lazy_of[id(node)] = lz
        return lz

    def add(self, node: Node | None, key: str) -> None:
        """Build child ``key`` of a container built here and attach it (a dict lookup, not a child scan)."""
        if node is not None:
            self._lazy_of[id(node)].add(key)

    def keep_inode_node(self, ino: int, node: Node) -> None:
        """Keep side A's node of a used inode for side B (see :meth:`peer_inode_node`)."""
        if self._inode_nodes is not None and "ino" in node.attrs and not node.attrs.get("unused"):
            self._inode_nodes[ino] = node

    def peer_inode_node(self, ino: int, info: InodeInfo | None) -> Node | None:
        """Return side A's node of inode ``ino`` when B's would say the same but for its bytes: A's scan result
        (``info``), paths and region offset are B's.  B then shares its key, label, attrs and derived checksums."""
        peer = self.peer
        if (peer is None or info is None or peer._inode_nodes is None or peer.base != self.base
                or peer.ino_paths is not self.ino_paths or peer.inodes.get(ino) is not info
                or peer.seeds != self.seeds or peer.first_ino != self.first_ino):
            return None  # (the checksum seeds and the reserved inodes are in the node's derived fields and attrs)
        return peer._inode_nodes.get(ino)

    def add_inodes(self, node: Node, inos: Iterable[int], build: Callable[[Volume, int], Node]) -> None:
        """Build inode ``inos``' nodes with ``build`` and attach them to ``node`` (made by :meth:`lazy`).

        The bulk form of :meth:`add` for a rebuilt image's tens of thousands of differing inodes: the key is
        known from the number, so it is not parsed back, and a node without errors is not walked for them.
        """
        lz = self._lazy_of[id(node)]
        made, children = lz.made, node.children
        clip = self.limit < max(self.size, self.fs_bytes)
        for ino in inos:
            key = self.key_of(ino)
            if key in made:
                continue
            try:
                found: Node | None = build(self, ino)
            except BUILD_ERRORS as exc:
                lz.errors.append(f"{node.label}: {key}: {exc}")
                made[key] = None
                continue
            if clip:
                found = self._clipped(found)
            made[key] = found
            if found is not None:
                if found.errors or found.children:
                    self.report(found)
                children.append(found)

    def read(self, offset: int, size: int) -> bytes:
        """Return ``size`` bytes at filesystem-relative ``offset`` (zero past the end of the image)."""
        return self.ctx.read(self.base + offset, size)

    def inode_raw(self, ino: int) -> bytes:
        """Return the bytes of inode ``ino``'s slot, read through a small cache of inode table chunks.

        Building thousands of inode nodes one ``pread`` each cost more than building them; neighbouring inodes
        share a 64 KiB chunk.
        """
        off = self.inode_offset(ino)
        chunk = off - off % _ITABLE_CHUNK
        data = self._itable_cache.get(chunk)
        if data is None:
            if len(self._itable_cache) >= 64:
                self._itable_cache.clear()
            data = self._itable_cache[chunk] = self.read(chunk, _ITABLE_CHUNK)
        rel = off - chunk
        if rel + self.inode_size <= len(data):
            return data[rel : rel + self.inode_size]
        return self.read(off, self.inode_size)

    def owned_extents(self, kinds: tuple[Kind, ...]) -> tuple[Extent, ...]:
        """Return the merged extents of the blocks whose owner is of one of ``kinds`` (files, directories).

        Kept per ``kinds`` (and shared with side B when its owner map is side A's): the walk is over every block
        run of the filesystem."""
        found = self._owned.get(kinds)
        if found is None:
            # the file and directory containers both ask: one walk answers the two
            groups: list[tuple[Kind, ...]] = [(Kind.FILE,), (Kind.DIR,)] if kinds in ((Kind.FILE,), (Kind.DIR,)) else [kinds]
            for g, exts in zip(groups, self._owned_walk(groups), strict=True):
                self._owned[g] = exts
            found = self._owned[kinds]
        return found

    def _owned_walk(self, groups: list[tuple[Kind, ...]]) -> list[tuple[Extent, ...]]:
        """Return, per group of owner kinds, the merged extents of its blocks, from one walk over the owner map."""
        outs: list[list[Extent]] = [[] for _ in groups]
        lists_of = {k: [outs[i] for i, g in enumerate(groups) if k in g] for g in groups for k in g}
        bs, base = self.bs, self.base
        for start, end, tag in zip(self._starts, self._ends, self._tags, strict=True):
            for out in lists_of.get(tag.kind, ()):
                off, n = base + start * bs, (end - start) * bs
                if out and out[-1].end >= off:
                    if off + n > out[-1].end:
                        out[-1] = Extent(out[-1].offset, off + n - out[-1].offset)
                else:
                    out.append(Extent(off, n))
        return [tuple(out) for out in outs]

    def abs(self, block: int, offset: int = 0) -> int:
        """Return the absolute image offset of byte ``offset`` of filesystem block ``block``."""
        return self.base + block * self.bs + offset

    def group_first_block(self, g: int) -> int:
        """Return the first block of group ``g``."""
        return self.first_data_block + g * self.bpg

    def group_blocks(self, g: int) -> int:
        """Return the number of blocks in group ``g`` (the last group may be short)."""
        return min(self.bpg, self.blocks_count - self.group_first_block(g))

    def has_super(self, g: int) -> bool:
        """Return True when group ``g`` holds a superblock copy (``ext2fs_bg_has_super``)."""
        if g == 0:
            return True
        if self.compat & COMPAT_SPARSE_SUPER2:
            return g in self.sb["s_backup_bgs"]
        if g <= 1 or not self.ro_compat & RO_COMPAT_SPARSE_SUPER:
            return True
        if not g & 1:
            return False
        for p in (3, 5, 7):
            n = p
            while n < g:
                n *= p
            if n == g:
                return True
        return False

    def _read_groups(self) -> None:
        """Locate every descriptor table copy and read the primary descriptors."""
        copies: dict[str, list[tuple[int, int]]] = {}
        for g in range(self.groups):
            if not self.has_super(g):
                continue
            key = "gdt" if g == 0 else f"gdt@group:{g}"
            first = self.group_first_block(g) + 1
            # ext2fs_descriptor_block_loc2 (lib/ext2fs/openfs.c): on a bigalloc filesystem with 1 KiB blocks
            # block 0 is not ext4's, so descriptor block 0 sits one block further ("group_zero_adjust")
            adjust = 1 if self.bs == 1024 and self.cluster_ratio > 1 else 0
            copies[key] = [(first + i + (adjust if i == 0 else 0), i * self.dpb) for i in range(self.old_desc_blocks)]
        if self.meta_bg:
            for i in range(self.old_desc_blocks, self.gdb_count):
                g0 = i * self.dpb
                for n, g in enumerate((g0, g0 + 1, g0 + self.dpb - 1)):
                    if g >= self.groups or (n and g == g0):
                        continue
                    blk = self.group_first_block(g) + (1 if self.has_super(g) else 0)
                    key = "gdt" if n == 0 else f"gdt@group:{g}"
                    copies.setdefault(key, []).append((blk, i * self.dpb))
        self.gdt_copies = copies
        table = bytearray()
        readable = 0
        for blk, _first in sorted(copies.get("gdt", []), key=lambda t: t[1]):
            table += self.read(blk * self.bs, self.bs)
            if not self._past_end("group descriptor table block", blk, blk):
                readable = len(table)
        for g in range(self.groups):
            off = g * self.desc_size
            if off + 32 > readable:
                if off + 32 > len(table):
                    self.errors.append(f"group descriptor {g} lies outside the descriptor table")
                self.gd.append((0, 0, 0, EXT4_BG_INODE_UNINIT | EXT4_BG_BLOCK_UNINIT, 0))
                continue
            bb, ib, it, flags, unused = _GD_SCAN.unpack_from(table, off)
            if self.desc_size >= 64:
                bbh, ibh, ith, unh = _GD_SCAN_HI.unpack_from(table, off)
                bb |= bbh << 32
                ib |= ibh << 32
                it |= ith << 32
                unused |= unh << 16
            for what, blk in (("block bitmap", bb), ("inode bitmap", ib), ("inode table", it)):
                if not 0 < blk < self.blocks_count:
                    self.errors.append(f"group {g}: {what} at block {blk} is outside the filesystem")
            self.gd.append((bb, ib, it, flags, unused))

    def bitmap(self, which: str, g: int) -> bytes:
        """Return the block (``"b"``) or inode (``"i"``) bitmap of group ``g``; zero when uninitialised."""
        key = (which, g)
        if key not in self._bitmaps:
            bb, ib, _it, flags, _u = self.gd[g]
            if which == "b":
                nbytes = -(-self.bpg // self.cluster_ratio) // 8
                blk, uninit = bb, flags & EXT4_BG_BLOCK_UNINIT
            else:
                nbytes = self.ipg // 8
                blk, uninit = ib, flags & EXT4_BG_INODE_UNINIT
            what = ("block" if which == "b" else "inode") + " bitmap of group"
            if uninit or not 0 < blk < self.blocks_count or self._past_end(what, g, blk):
                data = bytes(nbytes)
            else:
                data = self.read(blk * self.bs, nbytes)
            if len(self._bitmaps) > 4096:
                self._bitmaps.clear()
            self._bitmaps[key] = data
        return self._bitmaps[key]

    def inode_offset(self, ino: int) -> int:
        """Return the filesystem-relative byte offset of inode ``ino``."""
        g, idx = divmod(ino - 1, self.ipg)
        return self.gd[g][2] * self.bs + idx * self.inode_size

    def _scan_inodes(self) -> None:
        """Unpack every inode marked used in its group's bitmap and map its blocks."""
        isz = self.inode_size
        for g in range(self.groups):
            bits = self.bitmap("i", g)
            if not any(bits):
                continue
            value = int.from_bytes(bits, "little")
            top = value.bit_length()
            itable = self.gd[g][2]
            if not 0 < itable < self.blocks_count:
                continue
            if self._past_end("inode table of group", g, itable, -(-(top * isz) // self.bs)):
                top = max(0, min(top, (self.avail - itable * self.bs) // isz))
                if not top:
                    continue
            first = g * self.ipg + 1
            peer = self.peer
            if peer is not None and bits == peer.bitmap("i", g):
                # the same used inodes: side A's result for every inode whose slot (and tree blocks) are equal
                whole = not self._differs(itable * self.bs, top * isz)
                # a slot whose differing bytes all lie outside what the scan reads (times, checksums, owners:
                # a rebuilt image) is scanned the same: A's result stands, unless the slot holds inline data
                found = None if whole else self._differing_slots(itable * self.bs, top * isz, isz, _SCAN_BYTES)
                changed, scanned = found if found is not None else (None, None)
                remap = False
                for idx in _set_bits(bits, top):
                    ino = first + idx
                    info = peer.inodes.get(ino)
                    if (
                        info is None
                        or (not whole and (
                            (idx in scanned or (info.inline and idx in changed))
                            if changed is not None and scanned is not None
                            else self._differs(itable * self.bs + idx * isz, isz)))
                        or not all(self.maps_alike(b, kind) for b, _v, _l, kind in info.tree)
                    ):
                        remap = True
                        continue
                    self.inodes[ino] = info
                if not remap:
                    continue
            table = self.read(itable * self.bs, top * isz)
            mv = memoryview(table)
            for idx in _set_bits(bits, top):
                ino = first + idx
                if ino in self.inodes:
                    continue
                if ino > self.inodes_count:
                    break
                (mode, size_lo, links, blocks_lo, flags, iblock, gen, acl_lo, size_hi, acl_hi) = _SCAN.unpack_from(
                    mv, idx * isz
                )
                info = InodeInfo(ino, mode, flags, size_lo | (size_hi << 32), links, gen, acl_lo | (acl_hi << 32))
                self.inodes[ino] = info
                self._map_inode(info, iblock, blocks_lo)
                if flags & EXT4_INLINE_DATA_FL and ino != EXT4_RESIZE_INO:
                    self._map_inline(info, mv[idx * isz : (idx + 1) * isz], itable * self.bs + idx * isz)

    def _map_inline(self, info: InodeInfo, raw: bytes | memoryview, off: int) -> None:
        """Fill ``info.inline``: the 60 bytes of ``i_block``, then the value of the in-inode ``system.data`` xattr.

        The content of an inline-data file (or the entries of an inline directory after the 4-byte parent inode)
        is ``i_block`` followed by that value (e2fsprogs lib/ext2fs/inline_data.c ``ext2fs_inline_data_get``;
        kernel fs/ext4/inline.c).
        """
        iblock_off, _n = C_INODE.span("i_block")
        parts = [(off + iblock_off, EXT4_MIN_INLINE_DATA_SIZE)]
        found = _inline_xattr(bytes(raw), self.inode_size)
        if found is None:
            info.error("inline data without an in-inode system.data attribute")
        elif isinstance(found, str):
            info.error(found)
        elif found[1]:
            parts.append((off + found[0], found[1]))
        info.inline = tuple(parts)

    def _map_inode(self, info: InodeInfo, iblock: bytes, blocks_lo: int) -> None:
        """Fill ``info.runs``/``info.tree`` from ``i_block`` (extent tree or indirect map)."""
        ftype = info.mode & S_IFMT
        if info.ino == EXT4_RESIZE_INO:
            dind = struct.unpack_from("<I", iblock, 13 * 4)[0]
            if 0 < dind < self.blocks_count:
                info.add_tree((dind, 2, 0, "ind"))
            info.fast = True
            return
        if info.flags & EXT4_INLINE_DATA_FL:
            info.fast = True
            return
        if ftype not in (0o100000, 0o040000, 0o120000) and info.ino >= self.first_ino:
            info.fast = True  # device numbers, fifo, socket
            return
        if ftype == S_IFLNK:
            # ext4_inode_is_fast_symlink (fs/ext4/inode.c): with the ea_inode feature the size decides (an EA
            # inode's i_blocks may count the value's blocks), otherwise a symlink owning no block (but an xattr
            # block) keeps its target in i_block
            if self.incompat & INCOMPAT_EA_INODE:
                fast = 0 < info.size < EXT4_N_BLOCKS * 4
            else:
                ea_blocks = (self.bs * self.cluster_ratio) >> 9 if info.file_acl else 0
                fast = blocks_lo - ea_blocks == 0
            if fast:
                info.fast = True
                return
        if info.flags & EXT4_EXTENTS_FL:
            self._map_extents(info, iblock)
        else:
            self._map_indirect(info, iblock)

    def _map_extents(self, info: InodeInfo, iblock: bytes) -> None:
        magic, entries, emax, depth, _gen = _EH.unpack_from(iblock, 0)
        if magic == EXT4_EXT_MAGIC and depth == 0 and entries == 1 and 1 <= emax <= (len(iblock) - 12) // 12:
            self._map_leaf_extent(info, iblock, 12)  # the common file: one extent in i_block, no walk
            return
        visited: set[int] = set()
        stack: list[tuple[bytes, int, int, int]] = [(iblock, 0, -1, 0)]  # buffer, offset, expected depth, level
        while stack:
            buf, off, want, level = stack.pop()
            magic, entries, emax, depth, _gen = _EH.unpack_from(buf, off)
            if magic != EXT4_EXT_MAGIC:
                info.error(f"extent header magic 0x{magic:04x} at level {level}")
                continue
            room = (len(buf) - off - 12) // 12
            if depth > MAX_EXTENT_DEPTH or (want >= 0 and depth != want) or entries > emax or emax > room:
                info.error(f"extent header eh_depth={depth} eh_entries={entries} eh_max={emax} not plausible")
                continue
            if depth == 0:
                for i in range(entries):
                    self._map_leaf_extent(info, buf, off + 12 + 12 * i)
                continue
            children = []
            for i in range(entries):
                lblk, leaf_lo, leaf_hi, _unused = _EI.unpack_from(buf, off + 12 + 12 * i)
                leaf = leaf_lo | (leaf_hi << 32)
                if not 0 < leaf < self.blocks_count or leaf in visited or len(visited) >= MAX_TREE_BLOCKS:
                    info.error(f"extent index to block {leaf} is invalid or repeated")
                    continue
                if self._past_end("extent tree block of inode", info.ino, leaf):
                    continue
                visited.add(leaf)
                info.add_tree((leaf, depth - 1, lblk, "eb"))
                children.append((self.read(leaf * self.bs, self.bs), 0, depth - 1, level + 1))
            stack.extend(reversed(children))
        info.runs.sort()

    def _map_leaf_extent(self, info: InodeInfo, buf: bytes, at: int) -> None:
        """Add the leaf extent (``ext4_extent``) at ``buf[at:]`` to ``info.runs``, or report it outside the fs."""
        lblk, length, hi, lo = _EE.unpack_from(buf, at)
        unwritten = length > EXT_INIT_MAX_LEN
        if unwritten:
            length -= EXT_INIT_MAX_LEN
        pblk = lo | (hi << 32)
        if length == 0 or pblk + length > self.blocks_count:
            info.error(f"extent ({lblk}, {pblk}, {length}) outside the filesystem")
        else:
            info.runs.append((lblk, pblk, length, unwritten))

    def _map_indirect(self, info: InodeInfo, iblock: bytes) -> None:
        ptrs = struct.unpack_from("<15I", iblock)
        apb = self.bs // 4
        limit = min(-(-info.size // self.bs), self.blocks_count) if info.size else 0
        if info.ino < self.first_ino and info.ino != EXT4_ROOT_INO:
            limit = self.blocks_count
        runs: list[tuple[int, int, int, bool]] = []

        def add(lblk: int, pblk: int) -> None:
            if runs and runs[-1][0] + runs[-1][2] == lblk and runs[-1][1] + runs[-1][2] == pblk:
                last = runs[-1]
                runs[-1] = (last[0], last[1], last[2] + 1, False)
            else:
                runs.append((lblk, pblk, 1, False))

        for i in range(12):
            if ptrs[i] and i < limit:
                if ptrs[i] >= self.blocks_count:
                    info.error(f"i_block[{i}] = {ptrs[i]} outside the filesystem")
                else:
                    add(i, ptrs[i])
        visited: set[int] = set()

        def walk(blk: int, level: int, lbase: int) -> None:
            if lbase >= limit:
                return
            if not 0 < blk < self.blocks_count or blk in visited or len(visited) >= MAX_TREE_BLOCKS:
                info.error(f"indirect block {blk} is invalid or repeated")
                return
            if self._past_end("indirect block of inode", info.ino, blk):
                return
            visited.add(blk)
            info.add_tree((blk, level, lbase, "ind"))
            entries = struct.unpack_from(f"<{apb}I", self.read(blk * self.bs, self.bs))
            span = apb ** (level - 1)
            for k, child in enumerate(entries):
                if not child:
                    continue
                lblk = lbase + k * span
                if lblk >= limit:
                    break
                if level == 1:
                    if child >= self.blocks_count:
                        info.error(f"block pointer {child} outside the filesystem")
                    else:
                        add(lblk, child)
                else:
                    walk(child, level - 1, lblk)

        for level, idx, lbase in ((1, 12, 12), (2, 13, 12 + apb), (3, 14, 12 + apb + apb * apb)):
            if ptrs[idx]:
                walk(ptrs[idx], level, lbase)
        info.runs = runs

    def _map_blocks(self) -> None:
        """Build the sorted map block range -> owner for static metadata and everything inodes refer to."""
        peer = self.peer
        if peer is not None and len(peer.inodes) == len(self.inodes) and all(
            peer.inodes.get(ino) is info for ino, info in self.inodes.items()
        ):
            self._shared_all = True  # every inode is A's: so is every block's owner
            self._starts, self._ends, self._tags = peer._starts, peer._ends, peer._tags
            self._owned = peer._owned
            self.xattr_owners = peer.xattr_owners
            return
        spans: list[tuple[int, int, Owner]] = []
        if self.bs == 1024:
            spans.append((0, 1, Owner(Kind.BOOT)))
        for key, blocks in self.gdt_copies.items():
            for blk, first in blocks:
                spans.append((blk, blk + 1, Owner(Kind.GDT, first, key)))
        for g in range(self.groups):
            if self.has_super(g):
                first = self.group_first_block(g)
                spans.append((first, first + 1, Owner(Kind.SB, g)))
                r0 = first + 1 + self.old_desc_blocks
                if self.rgdt_blocks:
                    spans.append((r0, r0 + self.rgdt_blocks, Owner(Kind.RGDT, g)))
            bb, ib, it, _flags, _u = self.gd[g]
            if 0 < bb < self.blocks_count:
                spans.append((bb, bb + 1, Owner(Kind.BBITMAP, g)))
            if 0 < ib < self.blocks_count:
                spans.append((ib, ib + 1, Owner(Kind.IBITMAP, g)))
            if 0 < it < self.blocks_count:
                spans.append((it, min(it + self.itb_per_group, self.blocks_count), Owner(Kind.ITABLE, g)))
        for ino, info in self.inodes.items():
            owner: Owner
            if ino == self.journal_ino:
                owner = Owner(Kind.JOURNAL)
            elif ino == self.orphan_ino:
                owner = Owner(Kind.ORPHAN)
            elif info.mode & S_IFMT == S_IFDIR:
                owner = Owner(Kind.DIR, ino)
            else:
                owner = Owner(Kind.FILE, ino)
            if ino == EXT4_RESIZE_INO:
                for blk, _lvl, _l, _k in info.tree:
                    spans.append((blk, blk + 1, Owner(Kind.RESIZE)))
                continue
            for _l, pblk, length, _u in info.runs:
                spans.append((pblk, pblk + length, owner))
            for blk, _lvl, _l, _k in info.tree:
                spans.append((blk, blk + 1, owner))
            if info.file_acl:
                if info.file_acl >= self.blocks_count:
                    info.error(f"i_file_acl {info.file_acl} outside the filesystem")
                else:
                    owners = self.xattr_owners.setdefault(info.file_acl, [])
                    if not owners:
                        spans.append((info.file_acl, info.file_acl + 1, Owner(Kind.XATTR, info.file_acl)))
                    owners.append(ino)
        spans.sort(key=lambda s: (s[0], s[1]))
        self._starts = [s[0] for s in spans]
        self._ends = [s[1] for s in spans]
        self._tags = [s[2] for s in spans]

    def owners(self, b0: int, b1: int) -> Iterable[tuple[int, int, Owner | None]]:
        """Yield ``(first block, end block, owner or None)`` segments covering blocks ``[b0, b1)``."""
        i = max(0, bisect.bisect_right(self._starts, b0) - 1)
        pos = b0
        n = len(self._starts)
        while pos < b1:
            while i < n and self._ends[i] <= pos:
                i += 1
            if i >= n:
                yield pos, b1, None
                return
            s, e = self._starts[i], self._ends[i]
            if s > pos:
                nxt = min(s, b1)
                yield pos, nxt, None
                pos = nxt
                continue
            nxt = min(e, b1)
            yield pos, nxt, self._tags[i]
            pos = nxt
            i += 1

    def owner_span(self, blk: int) -> tuple[int, int]:
        """Return ``(first block, end block)`` of the owner run holding ``blk`` (an owned block)."""
        i = bisect.bisect_right(self._starts, blk) - 1
        return self._starts[i], self._ends[i]

    def block_owner(self, blk: int) -> Owner | None:
        """Return the owner of one block or None."""
        for _s, _e, tag in self.owners(blk, blk + 1):
            return tag
        return None

    def _walk(self) -> None:
        """Walk the tree from the root directory, naming every reachable inode by its paths."""
        peer = self.peer
        if peer is not None and self._shared_all and not any(
            self._dir_entries_differ(info) for info in self.inodes.values() if info.mode & S_IFMT == S_IFDIR
        ):
            self.paths, self.ino_paths = peer.paths, peer.ino_paths  # every directory is A's, byte for byte
            self.walk_errors = peer.walk_errors
            self.errors.extend(peer.walk_errors)
            return
        errors_before = len(self.errors)
        paths: dict[str, int] = {"/": EXT4_ROOT_INO}
        ino_paths: dict[int, list[str]] = {EXT4_ROOT_INO: ["/"]}
        queue: list[tuple[int, str, int]] = [(EXT4_ROOT_INO, "/", 0)]
        seen_dirs = {EXT4_ROOT_INO}
        total = 0
        while queue:
            ino, path, depth = queue.pop()
            info = self.inodes.get(ino)
            if info is None or info.mode & S_IFMT != S_IFDIR:
                if ino == EXT4_ROOT_INO and self.gd[0][2] and self.inode_offset(ino) + self.inode_size <= self.avail:
                    self.errors.append("root directory inode 2 is not in use or not a directory")
                continue
            for name, child, _ft in self.dir_entries(info, path):
                total += 1
                if total > MAX_DIR_ENTRIES:
                    self.errors.append(f"more than {MAX_DIR_ENTRIES} directory entries; walk stopped")
                    queue.clear()
                    break
                if name in (".", ".."):
                    continue
                cpath = ("/" if path == "/" else path + "/") + name
                if cpath in paths:
                    self.errors.append(f"{path}: duplicate entry {name!r}")
                    continue
                paths[cpath] = child
                ino_paths.setdefault(child, []).append(cpath)
                cinfo = self.inodes.get(child)
                if cinfo is None:
                    self.errors.append(f"{cpath}: entry points to unused inode {child}")
                    continue
                if cinfo.mode & S_IFMT == S_IFDIR:
                    if child in seen_dirs:
                        self.errors.append(f"{cpath}: directory inode {child} is linked twice (loop)")
                        continue
                    if depth + 1 > MAX_PATH_DEPTH:
                        self.errors.append(f"{cpath}: deeper than {MAX_PATH_DEPTH} levels; not walked")
                        continue
                    seen_dirs.add(child)
                    queue.append((child, cpath, depth + 1))
        for lst in ino_paths.values():
            lst.sort()
        self.paths = paths
        self.ino_paths = ino_paths
        self.walk_errors = self.errors[errors_before:]

    def _dir_differs(self, info: InodeInfo) -> bool:
        """Return True when a byte of the directory's blocks (or its inline entries) differs from the other side."""
        if any(self._differs(p * self.bs, n * self.bs) for _l, p, n, _u in info.runs):
            return True
        return any(self._differs(o, n) for o, n in info.inline) if info.inline else False

    def _dir_entries_differ(self, info: InodeInfo) -> bool:
        """Return True when the directory's entries may read differently from the other side's.

        As :meth:`_dir_differs`, except that a leaf block's checksum does not count: with metadata_csum, a block
        whose bytes are the other side's up to its last 4, and which ends in a dirent tail, holds the same entries
        (an image built with another UUID differs in every tail and nowhere else).
        """
        if info.inline or not self.csum:
            return self._dir_differs(info)
        bs = self.bs
        for _l, p, n, _u in info.runs:
            if not self._differs(p * bs, n * bs):
                continue
            for k in range(n):
                off = (p + k) * bs
                if self._differs(off, bs - 4) or self.read(off + bs - 12, 8) != _DIR_TAIL_HEAD:
                    return True
        return False

    def dir_entries(self, info: InodeInfo, path: str = "") -> Iterable[tuple[str, int, int]]:
        """Yield ``(name, inode, file_type)`` of the live entries of a directory, in on-disk order."""
        peer = self.peer
        if peer is not None and peer._entries is not None and peer.inodes.get(info.ino) is info:
            cached = peer._entries.get(info.ino)
            if cached is not None and not self._dir_entries_differ(info):
                yield from cached
                return
        if self._entries is not None:
            # kept for side B without "." and "..", which the walk skips: a tree of many small directories
            # would otherwise keep two entries per directory for nothing
            entries = [e for e in self._read_entries(info, path) if e[0] not in (".", "..")]
            self._entries[info.ino] = entries
            yield from entries
            return
        yield from self._read_entries(info, path)

    def _read_entries(self, info: InodeInfo, path: str = "") -> Iterable[tuple[str, int, int]]:
        if info.flags & EXT4_INLINE_DATA_FL:
            for k, (off, n) in enumerate(info.inline):
                raw = self.read(off, n)
                if k == 0:
                    yield "..", struct.unpack_from("<I", raw)[0], 2
                yield from self._entries_in(raw, 4 if k == 0 else 0, n, path)
            return
        for _lblk, pblk, length, unwritten in info.runs:
            if unwritten or self._past_end("directory block of inode", info.ino, pblk, length):
                continue
            data = self.read(pblk * self.bs, length * self.bs)
            for k in range(length):
                yield from self._entries_in(data, k * self.bs, (k + 1) * self.bs, path)

    def _entries_in(self, data: bytes, start: int, end: int, path: str) -> Iterable[tuple[str, int, int]]:
        pos = start
        while pos + 8 <= end:
            ino, rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
            if not self.filetype:
                name_len |= ftype << 8
                ftype = 0
            if rec_len < 8 or rec_len % 4 or pos + rec_len > end or 8 + name_len > rec_len:
                self.errors.append(f"{path or 'directory'}: bad entry (rec_len {rec_len}, name_len {name_len}); "
                                   "the rest of that block is not named")
                break
            if ino and name_len:
                yield _name(data[pos + 8 : pos + 8 + name_len]), ino, ftype
            pos += rec_len

    def key_of(self, ino: int) -> str:
        """Return the alignment key of inode ``ino``: its first path in sort order, or ``ino:N``."""
        lst = self.ino_paths.get(ino)
        return lst[0] if lst else f"ino:{ino}"

    def ino_of(self, key: str) -> int | None:
        """Return the inode whose key is ``key``, or None."""
        if key.startswith("ino:"):
            try:
                ino = int(key[4:])
            except ValueError:
                return None
            if not 0 < ino <= self.inodes_count or ino in self.ino_paths:
                return None
            return ino
        found = self.paths.get(key)
        if found is None or self.key_of(found) != key:
            return None
        return found

    def path_attrs(self, ino: int) -> dict[str, Value]:
        """Return the rule-facing attrs of inode ``ino``: path, ino, file_type (and every path of a hard link)."""
        info = self.inodes.get(ino)
        attrs: dict[str, Value] = {"ino": ino}
        lst = self.ino_paths.get(ino)
        attrs["path"] = lst[0] if lst else ""
        if lst and len(lst) > 1:
            attrs["paths"] = tuple(lst)
        if info is not None:
            attrs["file_type"] = info.file_type
        if ino < self.first_ino:
            attrs["reserved"] = True
        if ino == self.journal_ino:
            attrs["special"] = "journal"
        elif ino == self.orphan_ino:
            attrs["special"] = "orphan_file"
        elif ino == EXT4_RESIZE_INO:
            attrs["special"] = "resize_inode"
        return attrs

    def _label(self, ino: int) -> str:
        lst = self.ino_paths.get(ino)
        return f"inode {ino} ({lst[0]})" if lst else f"inode {ino}"

    def _ranges(self) -> list[tuple[int, int]] | None:
        """Return this side's differing byte ranges inside the region (absolute), or None for "all"."""
        diff = self.ctx.diff
        if diff is None:
            return None
        delta = diff.delta if self.ctx.side == "b" else 0
        lo, hi = self.base - delta, self.base + self.size - delta
        starts, ends = diff.starts, diff.ends
        i = bisect.bisect_right(memoryview(ends), lo)
        j = bisect.bisect_left(memoryview(starts), hi)
        if i >= j:
            return []
        # sorted and disjoint: only the first and the last run can reach past the region (never empty once cut:
        # the first ends past lo, the last starts before hi)
        out = list(zip(starts[i:j], ends[i:j], strict=True))
        out[0] = (max(out[0][0], lo), out[0][1])
        out[-1] = (out[-1][0], min(out[-1][1], hi))
        if delta:
            out = [(s + delta, e + delta) for s, e in out]
        return out

    def feature_names(self) -> list[str]:
        """Return the names of the feature bits set in the superblock."""
        out: list[str] = []
        for value, names in ((self.compat, COMPAT_FEATURES), (self.incompat, INCOMPAT_FEATURES),
                             (self.ro_compat, RO_COMPAT_FEATURES)):
            out.extend(n for bit, n in names.items() if value & bit)
        return out

    def content_sha256(self, info: InodeInfo) -> str:
        """Return the SHA-256 hex of a file's logical content (holes and unwritten extents read as zero)."""
        if info.inline:
            return hashlib.sha256(self._inline_content(info)).hexdigest()
        h = hashlib.sha256()
        bs = self.bs
        size = info.size
        sparse = size > SHA_FULL_LIMIT
        pos = 0
        zero = bytes(min(READ_CHUNK, max(size, 1)))
        for lblk, pblk, length, unwritten in info.runs:
            fstart = lblk * bs
            if fstart >= size:
                break
            if fstart > pos and not sparse:
                gap = fstart - pos
                while gap > 0:
                    n = min(gap, len(zero))
                    h.update(zero[:n])
                    gap -= n
            end = min(size, fstart + length * bs)
            p = fstart
            while p < end:
                n = min(READ_CHUNK, end - p)
                if unwritten:
                    h.update(zero[:n] if n <= len(zero) else bytes(n))
                else:
                    h.update(self.read(pblk * bs + (p - fstart), n))
                p += n
            pos = max(pos, end)
        if pos < size and not sparse:
            gap = size - pos
            while gap > 0:
                n = min(gap, len(zero))
                h.update(zero[:n])
                gap -= n
        return h.hexdigest()

    def read_content(self, info: InodeInfo, limit: int) -> bytes | None:
        """Return a file's logical content when it is at most ``limit`` bytes, else None."""
        if info.size > limit:
            return None
        if info.inline:
            return self._inline_content(info)
        out = bytearray(info.size)
        for lblk, pblk, length, unwritten in info.runs:
            fstart = lblk * self.bs
            if fstart >= info.size or unwritten:
                continue
            n = min(length * self.bs, info.size - fstart)
            out[fstart : fstart + n] = self.read(pblk * self.bs, n)
        return bytes(out)

    def _inline_content(self, info: InodeInfo) -> bytes:
        """Return an inline-data file's content: ``i_block`` then the ``system.data`` value, cut at ``i_size``."""
        data = b"".join(self.read(o, n) for o, n in info.inline)
        return data[: info.size]

    def _lblk_to_pblk(self, info: InodeInfo, lblk: int) -> int | None:
        for lb, pb, n, _u in info.runs:
            if lb <= lblk < lb + n:
                return pb + (lblk - lb)
        return None

    def _lblks_of(self, info: InodeInfo, b0: int, b1: int) -> list[int]:
        out: list[int] = []
        for lb, pb, n, _u in info.runs:
            lo, hi = max(b0, pb), min(b1, pb + n)
            out.extend(lb + (p - pb) for p in range(lo, hi))
        return out

    def _group_runs(self, g: int, want_set: bool) -> list[tuple[int, int]]:
        """Return block runs of group ``g`` whose bitmap bit is set (or clear) and that no object owns."""
        first = self.group_first_block(g)
        nblocks = self.group_blocks(g)
        bits = int.from_bytes(self.bitmap("b", g), "little")
        r = self.cluster_ratio
        runs: list[tuple[int, int]] = []
        start = -1
        nclusters = -(-nblocks // r)
        for cidx in range(nclusters + 1):
            inside = cidx < nclusters and bool((bits >> cidx) & 1) == want_set
            if inside and start < 0:
                start = cidx
            elif not inside and start >= 0:
                runs.append((first + start * r, min(first + cidx * r, first + nblocks)))
                start = -1
        out: list[tuple[int, int]] = []
        for s, e in runs:
            for b0, b1, tag in self.owners(s, e):
                if tag is None and not (self.bs > 1024 and b0 == 0):
                    out.append((b0, b1))
        return out

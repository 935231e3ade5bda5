"""ext2/ext3/ext4 filesystems: every on-disk structure as nodes whose fields carry absolute byte extents.

The parser reads the superblock and the group descriptors, then scans every used inode with a precompiled
``struct`` (compiled from the construct declarations in :mod:`imgdiff.formats.c_ext4`), maps every allocated
block to its owner (static metadata, a file's data, an extent tree block, an xattr block, the journal) and walks
the directory tree to name inodes by path.  Only then does it build nodes, and only for the objects whose bytes
differ (``ctx.interesting``) plus those the engine asks for by key (``Node.expand``), so a 1 GiB image with a few
differing bytes costs one inode scan and one directory walk.

Tree (keys in brackets; all siblings have disjoint fields)::

    ext4 [ext4]
      ext4.boot [boot]                       bytes before the primary superblock
      ext4.superblock [superblock], [superblock@group:N]  (backups declared Derived copies of the primary)
      ext4.gdt [gdt], [gdt@group:N] -> ext4.group_desc [gd:N]
      ext4.reserved_gdt [rgdt], [rgdt@group:N]
      ext4.block_bitmap [bbitmap:N], ext4.inode_bitmap [ibitmap:N]
      ext4.inodes [inodes] -> ext4.inode [<path> | ino:N]
      ext4.directories [dirs] -> ext4.directory [<path>] -> ext4.dirent [<path>/<name> | deleted:<path>],
                                 ext4.dir_block / ext4.dx_root / ext4.dx_node [blk:L], ext4.extent_block,
                                 ext4.dir_block [inline:0 | inline:1]   (inline directory: i_block, system.data)
      ext4.files [files] -> ext4.file [<path> | ino:N] -> ext4.extent_block [eb:D:L], ext4.indirect_block
      ext4.xattr_blocks [xattrs] -> ext4.xattr_block [<path>]
      ext4.journal [journal] -> ext4.journal_block [jblk:N], ext4.extent_block
      ext4.orphan_file [orphan] -> ext4.orphan_block [blk:L]
      ext4.indirect_block [resize:dind]      the resize inode's block
      ext4.free [free:N]                     unallocated blocks of group N
      ext4.unowned [unowned:N] (raw)         allocated blocks nothing refers to
      ext4.beyond_end [beyond]               region bytes after the last filesystem block

``i_block`` is named by what it holds: an extent root (``i_block.extent[N].*``), block pointers, a fast symlink's
target (text), a device's ``i_block[0]``/``i_block[1]`` (old and new device encoding, shown as major:minor).  An
inline-data file or directory has its content in ``i_block`` and the ``system.data`` xattr value; those bytes belong
to its ``ext4.file`` (field ``data``, the rest ``slack``) or ``ext4.directory`` node, not to the inode.  A slow
symlink's ``data`` is its target text.

Checksums (superblock, group descriptors, bitmaps, inodes, directory tails, htree tails, extent blocks, xattr
blocks, orphan blocks, jbd2 superblock) are declared :class:`~imgdiff.model.Derived` with the bytes they cover and
the ``s_uuid`` seed.  Checksums are not recomputed.

References:
    https://docs.kernel.org/filesystems/ext4/ (Documentation/filesystems/ext4/: overview.rst, globals.rst,
    group_descr.rst, bitmaps.rst, inodes.rst, ifork.rst, directory.rst, attributes.rst, journal.rst,
    orphan.rst, checksums.rst, special_inodes.rst)
    fs/ext4/ext4.h, fs/ext4/ext4_extents.h, fs/ext4/namei.c, fs/ext4/xattr.h, include/linux/jbd2.h
    fs/ext4/inode.c (__ext4_iget: i_block[0] old_decode_dev, else i_block[1] new_decode_dev), fs/ext4/inline.c,
    include/linux/kdev_t.h
    e2fsprogs lib/ext2fs/ext2_fs.h, lib/ext2fs/openfs.c (ext2fs_descriptor_block_loc2), lib/ext2fs/closefs.c
    (ext2fs_bg_has_super), lib/ext2fs/inline_data.c (ext2fs_inline_data_get), lib/ext2fs/symlink.c,
    misc/create_inode.c (do_mknod_internal), debugfs/debugfs.c (device number display)
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import struct
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.c_ext4 import (
    BG_FLAGS,
    COMPAT_FEATURES,
    COMPAT_HAS_JOURNAL,
    COMPAT_ORPHAN_FILE,
    COMPAT_SPARSE_SUPER2,
    DIRENT_FILE_TYPES,
    DX_COUNTLIMIT,
    DX_ENTRY,
    DX_ROOT_INFO,
    DX_TAIL,
    EXT4_BG_BLOCK_UNINIT,
    EXT4_BG_INODE_UNINIT,
    EXT4_DIR_ENTRY_2,
    EXT4_DIR_ENTRY_TAIL,
    EXT4_DIR_TAIL_FT,
    EXT4_EA_INODE_FL,
    EXT4_EXT_MAGIC,
    EXT4_EXTENT,
    EXT4_EXTENT_HEADER,
    EXT4_EXTENT_IDX,
    EXT4_EXTENT_TAIL,
    EXT4_EXTENTS_FL,
    EXT4_GOOD_OLD_INODE_SIZE,
    EXT4_GROUP_DESC,
    EXT4_INDEX_FL,
    EXT4_INLINE_DATA_FL,
    EXT4_INODE,
    EXT4_MIN_INLINE_DATA_SIZE,
    EXT4_ORPHAN_BLOCK_MAGIC,
    EXT4_ORPHAN_BLOCK_TAIL,
    EXT4_RESIZE_INO,
    EXT4_ROOT_INO,
    EXT4_SUPER_BLOCK,
    EXT4_SUPER_MAGIC,
    EXT4_SUPERBLOCK_OFFSET,
    EXT4_XATTR_ENTRY,
    EXT4_XATTR_HEADER,
    EXT4_XATTR_IBODY_HEADER,
    EXT4_XATTR_INDEX_SYSTEM_DATA,
    EXT4_XATTR_MAGIC,
    EXT_INIT_MAX_LEN,
    FAKE_DIRENT,
    HASH_VERSIONS,
    INCOMPAT_64BIT,
    INCOMPAT_CSUM_SEED,
    INCOMPAT_FEATURES,
    INCOMPAT_FILETYPE,
    INCOMPAT_META_BG,
    INODE_FLAGS,
    JBD2_BLOCKTYPES,
    JBD2_COMMIT_BLOCK,
    JBD2_COMMIT_HEADER,
    JBD2_DESCRIPTOR_BLOCK,
    JBD2_FEATURE_INCOMPAT_64BIT,
    JBD2_FEATURE_INCOMPAT_CSUM_V2,
    JBD2_FEATURE_INCOMPAT_CSUM_V3,
    JBD2_FLAG_LAST_TAG,
    JBD2_FLAG_SAME_UUID,
    JBD2_MAGIC_NUMBER,
    JBD2_REVOKE_BLOCK,
    JBD2_REVOKE_HEADER,
    JOURNAL_BLOCK_TAG,
    JOURNAL_BLOCK_TAG3,
    JOURNAL_HEADER,
    JOURNAL_SUPERBLOCK,
    MODE_TYPES,
    RO_COMPAT_BIGALLOC,
    RO_COMPAT_FEATURES,
    RO_COMPAT_GDT_CSUM,
    RO_COMPAT_METADATA_CSUM,
    RO_COMPAT_SPARSE_SUPER,
    S_IFBLK,
    S_IFCHR,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    XATTR_PREFIXES,
)
from imgdiff.formats.compiled import BLOB_INLINE, Compiled
from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents, subtract_extents

NAME = "ext4"

MAX_GROUPS = 1 << 22
"""Refuse more block groups than this (a hostile superblock); 4 Mi groups is a 512 TiB filesystem at 4 KiB."""
MAX_EXTENT_DEPTH = 5
"""The kernel's extent trees never exceed depth 5 (``EXT4_MAX_EXTENT_DEPTH``)."""
MAX_TREE_BLOCKS = 1 << 20
"""Extent/indirect tree blocks visited per inode at most."""
MAX_DIR_ENTRIES = 20_000_000
"""Directory entries walked per filesystem at most (bounds a hostile or looping tree)."""
MAX_PATH_DEPTH = 2048
READ_CHUNK = 8 << 20
SYMLINK_MAX = 4096
"""Longest symlink target shown as text (``PATH_MAX``); a longer "target" is shown as a digest."""
SHA_FULL_LIMIT = 16 << 30
"""Files with more logical bytes than this are hashed over their mapped bytes only (holes are skipped)."""

_CSUM_SEEDS = ("ext4.superblock:s_uuid",)


C_SB = Compiled(EXT4_SUPER_BLOCK)
C_GD = Compiled(EXT4_GROUP_DESC)
C_INODE = Compiled(EXT4_INODE)
C_DIRENT = Compiled(EXT4_DIR_ENTRY_2)
C_DIRTAIL = Compiled(EXT4_DIR_ENTRY_TAIL)
C_FAKE = Compiled(FAKE_DIRENT)
C_DXINFO = Compiled(DX_ROOT_INFO)
C_DXCL = Compiled(DX_COUNTLIMIT)
C_DXENTRY = Compiled(DX_ENTRY)
C_DXTAIL = Compiled(DX_TAIL)
C_EH = Compiled(EXT4_EXTENT_HEADER)
C_EI = Compiled(EXT4_EXTENT_IDX)
C_EE = Compiled(EXT4_EXTENT)
C_ET = Compiled(EXT4_EXTENT_TAIL)
C_XH = Compiled(EXT4_XATTR_HEADER)
C_XIH = Compiled(EXT4_XATTR_IBODY_HEADER)
C_XE = Compiled(EXT4_XATTR_ENTRY)
C_OBT = Compiled(EXT4_ORPHAN_BLOCK_TAIL)
C_JSB = Compiled(JOURNAL_SUPERBLOCK, ">")
C_JH = Compiled(JOURNAL_HEADER, ">")
C_JCOMMIT = Compiled(JBD2_COMMIT_HEADER, ">")
C_JTAG3 = Compiled(JOURNAL_BLOCK_TAG3, ">")
C_JTAG = Compiled(JOURNAL_BLOCK_TAG, ">")
C_JREVOKE = Compiled(JBD2_REVOKE_HEADER, ">")

_SCAN, _SCAN_NAMES = C_INODE.subset(
    (
        "i_mode", "i_size_lo", "i_links_count", "i_blocks_lo", "i_flags", "i_block", "i_generation",
        "i_file_acl_lo", "i_size_high", "i_file_acl_high",
    )
)
_SCAN_EXTRA = C_INODE.span("i_extra_isize")
_SKIP_IBLOCK = frozenset({"i_block"})
_DIRENT = struct.Struct("<IHBB")
_EH = C_EH.struct
_EE = C_EE.struct
_EI = C_EI.struct
_GD_SCAN, _GD_SCAN_NAMES = C_GD.subset(
    ("bg_block_bitmap_lo", "bg_inode_bitmap_lo", "bg_inode_table_lo", "bg_flags", "bg_itable_unused_lo")
)
_GD_SCAN_HI, _GD_SCAN_HI_NAMES = C_GD.subset(
    ("bg_block_bitmap_hi", "bg_inode_bitmap_hi", "bg_inode_table_hi", "bg_itable_unused_hi")
)


# --------------------------------------------------------------------------------------------------------------
# value helpers


def _cstr(raw: bytes) -> str:
    # surrogateescape: a byte that is not UTF-8 survives losslessly (os.fsencode gives it back); see _name
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", errors="surrogateescape")


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=bytes(raw)))


def _hash_seed(words: tuple[int, ...]) -> str:
    return str(uuid.UUID(bytes=struct.pack("<4I", *words)))


@functools.lru_cache(maxsize=1 << 14)
def _seconds_text(seconds: int) -> str | None:
    """Return ``YYYY-MM-DDTHH:MM:SS`` of a UTC time, or None when out of range (memoized: files share seconds)."""
    try:
        t = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def _time_text(seconds: int, nsec: int | None = None) -> str:
    text = _seconds_text(seconds)
    if text is None:
        return f"{seconds} (out of range)"
    if nsec:
        return f"{text}.{nsec:09d}Z"
    return text + "Z"


def _time_hi_text(seconds: int, hi: int) -> str:
    """Return the text of a superblock time whose ``_hi`` byte extends it past 2038."""
    return _time_text(seconds + (hi << 32))


def _time_extra_text(seconds: int, extra: int) -> str:
    """Return the text of an inode time with its ``_extra`` word (nanoseconds and epoch bits)."""
    return _time_text(*_extra_time(seconds, extra))


def _inode_plan(limit: int) -> tuple[tuple[str, int, int, int, int, int], ...]:
    """Return, for inodes whose fixed fields end at ``limit``, each member's field recipe.

    ``(name, offset, size, value index, display code, index of the time's _extra word or -1)``; ``i_block`` is
    left out (:meth:`Ext4._iblock_fields` describes it).  Display codes: see :func:`_inode_fields`.
    """
    plan = _INODE_PLANS.get(limit)
    if plan is not None:
        return plan
    codes = {"i_mode": 1, "i_flags": 2, "i_dtime": 3}
    for name, xname in _INODE_TIME_EXTRA.items():
        codes[name] = 4
        codes[xname] = 5
    out = []
    for name, moff, size, i, _n, kind in C_INODE.members:
        if moff + size > limit:
            break
        if name == "i_block":
            continue
        assert kind == "int"
        xi = -1
        if name in _INODE_TIME_EXTRA:
            _xn, xo, xs, xidx, _xc, _xk = C_INODE._index[_INODE_TIME_EXTRA[name]]
            xi = xidx if xo + xs <= limit else -1
        out.append((name, moff, size, i, codes.get(name, 0), xi))
    plan = tuple(out)
    _INODE_PLANS[limit] = plan
    return plan


_INODE_PLANS: dict[int, tuple[tuple[str, int, int, int, int, int], ...]] = {}


def _inode_fields(raw: bytes, absoff: int, limit: int) -> list[Field]:
    """Return the fields of an inode's fixed members up to ``limit`` (``i_block`` excepted) with displays.

    Equivalent to ``C_INODE.fields(..., skip={"i_block"}, display=...)`` with the inode displays, without the
    per-member dictionary lookups: inode tables hold tens of thousands of inodes.
    """
    if len(raw) < C_INODE.size:
        raw = bytes(raw) + bytes(C_INODE.size - len(raw))
    vals = C_INODE.struct.unpack_from(raw, 0)
    out: list[Field] = []
    append = out.append
    for name, moff, size, i, code, xi in _inode_plan(limit):
        v = vals[i]
        if code == 0:
            disp: str | None = None
        elif code == 4:
            disp = _time_extra_text(v, vals[xi] if xi >= 0 else 0)
        elif code == 5:
            disp = f"nsec={v >> 2} epoch={v & 3}"
        elif code == 1:
            disp = _mode_text(v)
        elif code == 2:
            disp = _flags_text(v, INODE_FLAGS)
        else:
            disp = _time_text(v) if v else None
        # tuple.__new__ directly: the same named tuples without the Python-level __new__ of each
        append(_new(Field, (name, v, (_new(Extent, (absoff + moff, size)),), disp)))
    return out


_new = tuple.__new__


def _flags_text(value: int, names: dict[int, str]) -> str:
    out = [n for bit, n in names.items() if value & bit]
    rest = value & ~sum(names)
    if rest:
        out.append(f"0x{rest:x}")
    return ",".join(out) if out else "none"


def _signed32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def _extra_time(base_sec: int, extra: int) -> tuple[int, int]:
    """Return ``(seconds, nsec)`` of an inode time with its ``_extra`` word (epoch bits + nanoseconds)."""
    sec = _signed32(base_sec) + ((extra & 3) << 32)
    return sec, extra >> 2


def _mode_text(mode: int) -> str:
    return f"{MODE_TYPES.get(mode & S_IFMT, 'unknown')} {mode & 0o7777:04o}"


def _runs_text(bits: bytes, nbits: int, limit: int = 48) -> str:
    """Return the set bits of a little-endian bitmap as ``"0-1023,2048"``; long lists end in a digest."""
    runs: list[tuple[int, int]] = []
    start = -1
    value = int.from_bytes(bits, "little")
    i = 0
    while i < nbits:
        if value >> i == 0:
            break
        if (value >> i) & 1:
            if start < 0:
                start = i
        elif start >= 0:
            runs.append((start, i - 1))
            start = -1
        i += 1
    if start >= 0:
        runs.append((start, i - 1))
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    text = ",".join(parts) if parts else "none"
    if len(runs) > limit:
        text += f",... (+{len(runs) - limit} runs, sha256:{hashlib.sha256(bits).hexdigest()[:12]})"
    return text


def _gap_fields(fields: list[Field], start: int, end: int, name: str, read: Callable[[int, int], bytes]) -> None:
    """Append blob fields named ``name`` (``name.1``, ...) for bytes in ``[start, end)`` no field covers."""
    taken = [e for f in fields for e in f.extents]
    for k, gap in enumerate(subtract_extents(Extent(start, end - start), taken)):
        data = read(gap.offset, gap.length)
        fields.append(Field(name if k == 0 else f"{name}.{k}", _blob(data), (gap,), _blob_display(data)))


# Superblock field decoding (raw value -> field value, raw value -> display).
_SB_DECODE: dict[str, Callable[[Any], Value]] = {
    "s_uuid": _uuid,
    "s_journal_uuid": _uuid,
    "s_hash_seed": _hash_seed,
    "s_volume_name": _cstr,
    "s_last_mounted": _cstr,
    "s_mount_opts": _cstr,
    "s_first_error_func": _cstr,
    "s_last_error_func": _cstr,
    "s_encrypt_algos": bytes,
    "s_encrypt_pw_salt": bytes,
}
_SB_TIMES = ("s_mtime", "s_wtime", "s_lastcheck", "s_mkfs_time", "s_first_error_time", "s_last_error_time")
_INODE_TIMES = ("i_atime", "i_ctime", "i_mtime", "i_crtime")
_INODE_TIME_EXTRA = {"i_atime": "i_atime_extra", "i_ctime": "i_ctime_extra", "i_mtime": "i_mtime_extra",
                     "i_crtime": "i_crtime_extra"}


# --------------------------------------------------------------------------------------------------------------
# the Format interface


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region holds an ext2/3/4 superblock: magic 0xEF53 at byte 1080, revision 0 or 1.

    The geometry is checked by :func:`parse`, so a damaged superblock is reported (ParseError naming the field)
    instead of the region silently becoming unrecognised data.
    """
    if len(head) < EXT4_SUPERBLOCK_OFFSET + 0x60 or size < 2048:
        return False
    sb = head[EXT4_SUPERBLOCK_OFFSET:]
    magic = struct.unpack_from("<H", sb, C_SB.offset("s_magic"))[0]
    rev = struct.unpack_from("<I", sb, C_SB.offset("s_rev_level"))[0]
    return magic == EXT4_SUPER_MAGIC and rev <= 1


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("ext4 superblock", "filesystem", bytes s_blocks_count says)`` when ``head`` holds the superblock
    magic whatever the region's size (so a truncated image is reported as such), else None (0 bytes: unknown)."""
    magic_end = EXT4_SUPERBLOCK_OFFSET + C_SB.offset("s_magic") + 2
    if len(head) < magic_end or not recognizes(head[:2048].ljust(2048, b"\0"), 1 << 62):
        return None
    sb = head[EXT4_SUPERBLOCK_OFFSET : EXT4_SUPERBLOCK_OFFSET + 1024].ljust(1024, b"\0")
    blocks = struct.unpack_from("<I", sb, C_SB.offset("s_blocks_count_lo"))[0]
    if struct.unpack_from("<I", sb, C_SB.offset("s_feature_incompat"))[0] & INCOMPAT_64BIT:
        blocks |= struct.unpack_from("<I", sb, C_SB.offset("s_blocks_count_hi"))[0] << 32
    log = struct.unpack_from("<I", sb, C_SB.offset("s_log_block_size"))[0]
    return "ext4 superblock", "filesystem", blocks << (10 + log) if log <= 6 else 0


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``ext4`` node of ``[base, base + size)``; raises ParseError when the superblock is unusable."""
    vol = Volume(ctx, base, size)
    return vol.build(label)


# --------------------------------------------------------------------------------------------------------------
# per-inode information gathered by the bulk scan


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
        self.tree: list[tuple[int, int, int, str]] = []
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

    def error(self, msg: str) -> None:
        """Record a problem found while mapping this inode."""
        if self.errors is None:
            self.errors = []
        if len(self.errors) < 16:
            self.errors.append(msg)


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
        except (ParseError, struct.error, ValueError, IndexError, KeyError, OverflowError) as exc:
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


# --------------------------------------------------------------------------------------------------------------
# the volume


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
        self._tags: list[tuple[Any, ...]] = []
        self._bitmaps: dict[tuple[str, int], bytes] = {}
        self._read_groups()
        self._scan_inodes()
        self._map_blocks()
        self._walk()

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
        fields = []
        for f in node.fields:
            exts = tuple(Extent(e.offset, min(e.end, end) - e.offset) for e in f.extents if e.offset < end)
            if exts:
                fields.append(f._replace(extents=exts))
        node.fields = tuple(fields)
        node.children = [c for c in (self._clipped(c) for c in node.children) if c is not None]
        return node

    # ---------------------------------------------------------------------------------------------- errors

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

    # ---------------------------------------------------------------------------------------------- geometry

    def read(self, offset: int, size: int) -> bytes:
        """Return ``size`` bytes at filesystem-relative ``offset`` (zero past the end of the image)."""
        return self.ctx.read(self.base + offset, size)

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
            copies[key] = [(first + i, i * self.dpb) for i in range(self.old_desc_blocks)]
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

    # ---------------------------------------------------------------------------------------------- inode scan

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
            table = self.read(itable * self.bs, top * isz)
            mv = memoryview(table)
            first = g * self.ipg + 1
            for idx in range(top):
                if not (value >> idx) & 1:
                    continue
                ino = first + idx
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
                info.tree.append((dind, 2, 0, "ind"))
            info.fast = True
            return
        if info.flags & EXT4_INLINE_DATA_FL:
            info.fast = True
            return
        if ftype not in (0o100000, 0o040000, 0o120000) and info.ino >= self.first_ino:
            info.fast = True  # device numbers, fifo, socket
            return
        if ftype == S_IFLNK and not info.flags & EXT4_EA_INODE_FL:
            ea_blocks = (self.bs * self.cluster_ratio) >> 9 if info.file_acl else 0
            if blocks_lo - ea_blocks == 0:
                info.fast = True
                return
        if info.flags & EXT4_EXTENTS_FL:
            self._map_extents(info, iblock)
        else:
            self._map_indirect(info, iblock)

    def _map_extents(self, info: InodeInfo, iblock: bytes) -> None:
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
                    lblk, length, hi, lo = _EE.unpack_from(buf, off + 12 + 12 * i)
                    unwritten = length > EXT_INIT_MAX_LEN
                    if unwritten:
                        length -= EXT_INIT_MAX_LEN
                    pblk = lo | (hi << 32)
                    if length == 0 or pblk + length > self.blocks_count:
                        info.error(f"extent ({lblk}, {pblk}, {length}) outside the filesystem")
                        continue
                    info.runs.append((lblk, pblk, length, unwritten))
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
                info.tree.append((leaf, depth - 1, lblk, "eb"))
                children.append((self.read(leaf * self.bs, self.bs), 0, depth - 1, level + 1))
            stack.extend(reversed(children))
        info.runs.sort()

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
            info.tree.append((blk, level, lbase, "ind"))
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

    # ---------------------------------------------------------------------------------------------- block owners

    def _map_blocks(self) -> None:
        """Build the sorted map block range -> owner for static metadata and everything inodes refer to."""
        spans: list[tuple[int, int, tuple[Any, ...]]] = []
        if self.bs == 1024:
            spans.append((0, 1, ("boot",)))
        for key, blocks in self.gdt_copies.items():
            for blk, first in blocks:
                spans.append((blk, blk + 1, ("gdt", key, first)))
        for g in range(self.groups):
            if self.has_super(g):
                first = self.group_first_block(g)
                spans.append((first, first + 1, ("sb", g)))
                r0 = first + 1 + self.old_desc_blocks
                if self.rgdt_blocks:
                    spans.append((r0, r0 + self.rgdt_blocks, ("rgdt", g)))
            bb, ib, it, _flags, _u = self.gd[g]
            if 0 < bb < self.blocks_count:
                spans.append((bb, bb + 1, ("bbitmap", g)))
            if 0 < ib < self.blocks_count:
                spans.append((ib, ib + 1, ("ibitmap", g)))
            if 0 < it < self.blocks_count:
                spans.append((it, min(it + self.itb_per_group, self.blocks_count), ("itable", g)))
        for ino, info in self.inodes.items():
            owner: tuple[Any, ...]
            if ino == self.journal_ino:
                owner = ("journal",)
            elif ino == self.orphan_ino:
                owner = ("orphan",)
            elif info.mode & S_IFMT == S_IFDIR:
                owner = ("dir", ino)
            else:
                owner = ("file", ino)
            if ino == EXT4_RESIZE_INO:
                for blk, _lvl, _l, _k in info.tree:
                    spans.append((blk, blk + 1, ("resize",)))
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
                        spans.append((info.file_acl, info.file_acl + 1, ("xattr", info.file_acl)))
                    owners.append(ino)
        spans.sort(key=lambda s: (s[0], s[1]))
        self._starts = [s[0] for s in spans]
        self._ends = [s[1] for s in spans]
        self._tags = [s[2] for s in spans]

    def owners(self, b0: int, b1: int) -> Iterable[tuple[int, int, tuple[Any, ...] | None]]:
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

    def block_owner(self, blk: int) -> tuple[Any, ...] | None:
        """Return the owner of one block or None."""
        for _s, _e, tag in self.owners(blk, blk + 1):
            return tag
        return None

    # ---------------------------------------------------------------------------------------------- directory walk

    def _walk(self) -> None:
        """Walk the tree from the root directory, naming every reachable inode by its paths."""
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

    def dir_entries(self, info: InodeInfo, path: str = "") -> Iterable[tuple[str, int, int]]:
        """Yield ``(name, inode, file_type)`` of the live entries of a directory, in on-disk order."""
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

    # ---------------------------------------------------------------------------------------------- naming

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

    # ---------------------------------------------------------------------------------------------- what differs

    def _ranges(self) -> list[tuple[int, int]] | None:
        """Return this side's differing byte ranges inside the region (absolute), or None for "all"."""
        diff = self.ctx.diff
        if diff is None:
            return None
        delta = diff.delta if self.ctx.side == "b" else 0
        lo, hi = self.base - delta, self.base + self.size - delta
        i = bisect.bisect_right(diff.ends, lo)
        out: list[tuple[int, int]] = []
        while i < len(diff.starts) and diff.starts[i] < hi:
            s, e = max(diff.starts[i], lo) + delta, min(diff.ends[i], hi) + delta
            if e > s:
                out.append((s, e))
            i += 1
        return out

    def targets(self, ranges: list[tuple[int, int]]) -> set[tuple[Any, ...]]:
        """Return the objects whose bytes intersect ``ranges`` (absolute offsets)."""
        out: set[tuple[Any, ...]] = set()
        bs = self.bs
        for s, e in ranges:
            rs, re_ = s - self.base, min(e - self.base, self.limit)
            if rs >= re_:
                continue
            if re_ > self.fs_bytes:
                out.add(("beyond",))
                re_ = self.fs_bytes
                if rs >= re_:
                    continue
            if rs < EXT4_SUPERBLOCK_OFFSET:
                out.add(("boot",))
            if rs < 2048 and re_ > EXT4_SUPERBLOCK_OFFSET:
                out.add(("sb", 0))
            if bs > 1024 and rs < bs and re_ > 2048:
                out.add(("sb", 0))
            b0, b1 = rs // bs, -(-re_ // bs)
            for sb0, sb1, tag in self.owners(b0, b1):
                lo = max(rs, sb0 * bs)
                hi = min(re_, sb1 * bs)
                self._classify(out, sb0, sb1, tag, lo, hi)
        return out

    def _classify(self, out: set[tuple[Any, ...]], b0: int, b1: int, tag: tuple[Any, ...] | None,
                  lo: int, hi: int) -> None:
        bs = self.bs
        if tag is None:
            self._classify_unowned(out, b0, b1)
            return
        kind = tag[0]
        if kind == "sb":
            if tag[1] != 0:
                out.add(tag)
        elif kind == "gdt":
            key, first = tag[1], tag[2]
            block_of = self._gdt_block_of(key, first)
            d0 = first + (lo - block_of * bs) // self.desc_size
            d1 = first + (hi - 1 - block_of * bs) // self.desc_size
            for d in range(d0, d1 + 1):
                out.add(("gd", key, d) if d < self.groups else ("gdt", key))
        elif kind == "itable":
            g = tag[1]
            start = self.gd[g][2] * bs
            i0 = (lo - start) // self.inode_size
            i1 = (hi - 1 - start) // self.inode_size
            for idx in range(max(0, i0), min(self.ipg - 1, i1) + 1):
                ino = g * self.ipg + idx + 1
                out.add(("inode", ino))
                info = self.inodes.get(ino)
                if info is not None and info.inline:  # its content lives in the inode
                    isdir = info.mode & S_IFMT == S_IFDIR
                    out.add(("dir", ino) if isdir else ("file", ino))
                    out.add(("dirs",) if isdir else ("files",))
        elif kind in ("dir", "file"):
            out.add(tag)
            out.add(("dirs",) if kind == "dir" else ("files",))
        elif kind == "journal":
            out.add(("journal_blocks", b0, b1))
        elif kind == "orphan":
            out.add(("orphan_blocks", b0, b1))
        else:
            out.add(tag)

    def _gdt_block_of(self, key: str, first: int) -> int:
        for blk, f in self.gdt_copies.get(key, []):
            if f == first:
                return blk
        return 0

    def _classify_unowned(self, out: set[tuple[Any, ...]], b0: int, b1: int) -> None:
        blk = b0
        while blk < b1:
            if blk < self.first_data_block:
                out.add(("boot",))
                blk += 1
                continue
            g = (blk - self.first_data_block) // self.bpg
            gend = min(b1, self.group_first_block(g) + self.bpg)
            bits = self.bitmap("b", g)
            value = int.from_bytes(bits, "little")
            r = self.cluster_ratio
            c0 = (blk - self.group_first_block(g)) // r
            c1 = -(-(gend - self.group_first_block(g)) // r)
            mask = ((1 << (c1 - c0)) - 1) << c0
            if value & mask:
                out.add(("unowned", g))
            if (~value) & mask:
                out.add(("free", g))
            blk = gend

    # ---------------------------------------------------------------------------------------------- build

    def build(self, label: str) -> Node:
        """Return the filesystem node with detail for every differing object (everything when no diff)."""
        self.region_label = label
        ranges = self._ranges()
        full = ranges is None
        wanted = self.targets(ranges) if ranges is not None else set()
        errors = self.ctx.errors
        root = Node(
            kind="ext4",
            key="ext4",
            label="ext4",
            extents=(Extent(self.base, self.size),),
            attrs={
                "scope": True,
                "fs": "ext4",
                "block_size": self.bs,
                "uuid": _uuid(self.sb["s_uuid"]),
                "features": " ".join(self.feature_names()),
                "region": label,
            },
        )
        top = self.lazy(root, self._build_top)
        groups_with_super = [g for g in range(self.groups) if self.has_super(g)]

        def want(t: tuple[Any, ...]) -> bool:
            return full or t in wanted

        if want(("boot",)):
            top.add("boot")
        top.add("superblock")
        for g in groups_with_super[1:]:
            if want(("sb", g)):
                top.add(f"superblock@group:{g}")
        # Descriptor tables (children built for differing descriptors).
        gd_wanted: dict[str, set[int]] = {}
        for t in wanted:
            if t[0] == "gd":
                gd_wanted.setdefault(t[1], set()).add(t[2])
            elif t[0] == "gdt":
                gd_wanted.setdefault(t[1], set())
        for key in self.gdt_copies:
            if full or key == "gdt" or key in gd_wanted:
                top.add(key)
                node = top.made.get(key)
                if node is not None and node.expand is not None:
                    for d in sorted(range(self.groups) if full else gd_wanted.get(key, ())):
                        self.add(node, f"gd:{d}")
        if self.rgdt_blocks:
            for g in groups_with_super:
                if want(("rgdt", g)):
                    top.add("rgdt" if g == 0 else f"rgdt@group:{g}")
        for g in range(self.groups):
            if want(("bbitmap", g)):
                top.add(f"bbitmap:{g}")
            if want(("ibitmap", g)):
                top.add(f"ibitmap:{g}")
        # Inodes, directories, files.
        top.add("inodes")
        inodes = top.made["inodes"]
        if inodes is not None:
            inos = sorted(self.inodes) if full else sorted(t[1] for t in wanted if t[0] == "inode")
            for ino in inos:
                key = self.key_of(ino)
                self.add(inodes, key)
        top.add("dirs")
        top.add("files")
        dirs, files = top.made["dirs"], top.made["files"]
        for ino, info in sorted(self.inodes.items()) if full else []:
            if ino in (self.journal_ino, self.orphan_ino, EXT4_RESIZE_INO):
                continue
            if info.mode & S_IFMT == S_IFDIR and dirs is not None:
                self.add(dirs, self.key_of(ino))
            elif (info.runs or info.inline) and files is not None:
                self.add(files, self.key_of(ino))
        for t in sorted(wanted, key=repr):
            if t[0] == "dir" and dirs is not None:
                self.add(dirs, self.key_of(t[1]))
            elif t[0] == "file" and files is not None:
                self.add(files, self.key_of(t[1]))
        if self.xattr_owners:
            top.add("xattrs")
            xnode = top.made.get("xattrs")
            if xnode is not None:
                for blk, owners in sorted(self.xattr_owners.items()):
                    if full or ("xattr", blk) in wanted:
                        self.add(xnode, self.key_of(owners[0]))
        if self.journal_ino and self.journal_ino in self.inodes:
            top.add("journal")
            jnode = top.made.get("journal")
            if jnode is not None:
                for t in wanted:
                    if t[0] == "journal_blocks":
                        for jb in self._journal_lblks(t[1], t[2]):
                            self.add(jnode, f"jblk:{jb}")
        if self.orphan_ino and self.orphan_ino in self.inodes:
            top.add("orphan")
            onode = top.made.get("orphan")
            if onode is not None:
                info = self.inodes[self.orphan_ino]
                for t in wanted:
                    if t[0] == "orphan_blocks":
                        for lb in self._lblks_of(info, t[1], t[2]):
                            self.add(onode, f"blk:{lb}")
                if full:
                    for lb, _p, n, _u in info.runs:
                        for k in range(n):
                            self.add(onode, f"blk:{lb + k}")
        if want(("resize",)) and EXT4_RESIZE_INO in self.inodes and self.inodes[EXT4_RESIZE_INO].tree:
            top.add("resize:dind")
        for g in range(self.groups):
            if want(("free", g)):
                top.add(f"free:{g}")
            if ("unowned", g) in wanted:
                top.add(f"unowned:{g}")
        if ("beyond",) in wanted or (full and self.size > self.fs_bytes):
            top.add("beyond")
        msgs = list(dict.fromkeys(self.errors + self._missing_errors()))
        for info in self.inodes.values():
            if info.errors:
                msgs.extend(f"{self._label(info.ino)}: {m}" for m in info.errors)
        root.errors.extend(msgs)
        errors.extend(f"ext4 ({label}): {m}" for m in msgs)
        return root

    def feature_names(self) -> list[str]:
        """Return the names of the feature bits set in the superblock."""
        out: list[str] = []
        for value, names in ((self.compat, COMPAT_FEATURES), (self.incompat, INCOMPAT_FEATURES),
                             (self.ro_compat, RO_COMPAT_FEATURES)):
            out.extend(n for bit, n in names.items() if value & bit)
        return out

    def _build_top(self, key: str) -> Node | None:
        """Build a direct child of the ext4 node by key."""
        if key == "boot":
            return self._boot_node()
        if key == "superblock":
            return self._sb_node(0)
        if key.startswith("superblock@group:"):
            g = _int_suffix(key)
            return self._sb_node(g) if g is not None and 0 < g < self.groups and self.has_super(g) else None
        if key == "gdt" or key.startswith("gdt@group:"):
            return self._gdt_node(key) if key in self.gdt_copies else None
        if key == "rgdt" or key.startswith("rgdt@group:"):
            g = 0 if key == "rgdt" else _int_suffix(key)
            if g is None or not 0 <= g < self.groups or not self.has_super(g) or not self.rgdt_blocks:
                return None
            return self._rgdt_node(g, key)
        if key.startswith(("bbitmap:", "ibitmap:")):
            g = _int_suffix(key)
            return self._bitmap_node(key[0], g) if g is not None and 0 <= g < self.groups else None
        if key == "inodes":
            return self._inodes_node()
        if key == "dirs":
            return self._container("dirs", "ext4.directories", "directories", self._dir_node, True)
        if key == "files":
            return self._container("files", "ext4.files", "files", self._file_node, False)
        if key == "xattrs":
            return self._xattrs_node()
        if key == "journal":
            return self._journal_node() if self.journal_ino in self.inodes else None
        if key == "orphan":
            return self._orphan_node() if self.orphan_ino in self.inodes else None
        if key == "resize:dind":
            info = self.inodes.get(EXT4_RESIZE_INO)
            return self._resize_node() if info is not None and info.tree else None
        if key.startswith("free:"):
            g = _int_suffix(key)
            return self._free_node(g) if g is not None and 0 <= g < self.groups else None
        if key.startswith("unowned:"):
            g = _int_suffix(key)
            return self._unowned_node(g) if g is not None and 0 <= g < self.groups else None
        if key == "beyond":
            return self._beyond_node()
        return None

    # ---------------------------------------------------------------------------------------------- fixed metadata

    def _boot_node(self) -> Node:
        data = self.read(0, EXT4_SUPERBLOCK_OFFSET)
        ext = Extent(self.base, EXT4_SUPERBLOCK_OFFSET)
        return Node(
            kind="ext4.boot",
            key="boot",
            label="boot area (group 0 padding)",
            extents=(ext,),
            fields=(Field("group0_padding", _blob(data), (ext,), _blob_display(data)),),
        )

    def _sb_node(self, g: int) -> Node:
        if g == 0:
            off = EXT4_SUPERBLOCK_OFFSET
            raw = self.sb_raw
        else:
            off = self.group_first_block(g) * self.bs
            raw = self.read(off, 1024)
        absoff = self.base + off
        sb = C_SB.unpack(raw)
        display: dict[str, Callable[[Any], str | None]] = {
            "s_feature_compat": lambda v: _flags_text(v, COMPAT_FEATURES),
            "s_feature_incompat": lambda v: _flags_text(v, INCOMPAT_FEATURES),
            "s_feature_ro_compat": lambda v: _flags_text(v, RO_COMPAT_FEATURES),
            "s_def_hash_version": lambda v: HASH_VERSIONS.get(v, str(v)),
            "s_reserved": _blob_display,
        }
        for name in _SB_TIMES:
            hi = sb.get(name + "_hi", 0)
            display[name] = functools.partial(_time_hi_text, hi=hi)
        decode = dict(_SB_DECODE)
        fields = C_SB.fields(raw, 0, absoff, decode=decode, display=display)
        ext: list[Extent] = [Extent(absoff, 1024)]
        block_end = (off // self.bs + 1) * self.bs
        if block_end > off + 1024:
            pad = self.read(off + 1024, block_end - off - 1024)
            pext = Extent(absoff + 1024, len(pad))
            fields.append(Field("padding", _blob(pad), (pext,), _blob_display(pad)))
            ext.append(pext)
        derived: list[Derived] = []
        if g == 0:
            if self.csum:
                derived.append(Derived("s_checksum", covers=(Extent(absoff, 0x3FC),)))
            if self.incompat & INCOMPAT_CSUM_SEED:
                derived.append(Derived("s_checksum_seed", seeds=("ext4.superblock:s_uuid",)))
            derived.extend(self._sb_counter_derived())
        else:
            primary = {f.name: f.extents for f in C_SB.fields(self.sb_raw, 0, self.base + EXT4_SUPERBLOCK_OFFSET)}
            derived.extend(Derived(f.name, covers=primary[f.name]) for f in fields if f.name in primary)
        if sb["s_magic"] != EXT4_SUPER_MAGIC:
            err = [f"superblock copy in group {g} has no magic"]
        else:
            err = []
        key = "superblock" if g == 0 else f"superblock@group:{g}"
        return Node(
            kind="ext4.superblock",
            key=key,
            label="superblock" if g == 0 else f"backup superblock (group {g})",
            extents=tuple(ext),
            fields=tuple(fields),
            derived=tuple(derived),
            attrs={"group": g, "backup": g != 0},
            errors=err,
        )

    def _gdt_node(self, key: str) -> Node:
        blocks = sorted(self.gdt_copies[key], key=lambda t: t[1])
        exts = merge_extents(Extent(self.abs(b), self.bs) for b, _f in blocks)
        fields: list[Field] = []
        # Bytes after the last descriptor in the last table block.
        for blk, first in blocks:
            used = max(0, min(self.dpb, self.groups - first)) * self.desc_size
            if used < self.bs:
                pad = self.read(blk * self.bs + used, self.bs - used)
                fields.append(Field("padding" if not fields else f"padding.{len(fields)}", _blob(pad),
                                    (Extent(self.abs(blk, used), self.bs - used),), _blob_display(pad)))
        g = 0 if key == "gdt" else _int_suffix(key) or 0
        node = Node(
            kind="ext4.gdt",
            key=key,
            label="group descriptor table" if key == "gdt" else f"backup group descriptor table (group {g})",
            extents=exts,
            fields=tuple(fields),
            attrs={"group": g, "backup": key != "gdt"},
        )
        self.lazy(node, lambda k: self._gd_node(key, k))
        return node

    def _gd_location(self, key: str, d: int) -> int | None:
        for blk, first in self.gdt_copies.get(key, []):
            if first <= d < first + self.dpb:
                return blk * self.bs + (d - first) * self.desc_size
        return None

    def _gd_node(self, copy: str, key: str) -> Node | None:
        if not key.startswith("gd:"):
            return None
        d = _int_suffix(key)
        if d is None or not 0 <= d < self.groups:
            return None
        off = self._gd_location(copy, d)
        if off is None:
            return None
        raw = self.read(off, self.desc_size)
        absoff = self.base + off
        limit = min(self.desc_size, C_GD.size)
        fields = C_GD.fields(raw, 0, absoff, limit=limit,
                             display={"bg_flags": lambda v: _flags_text(v, BG_FLAGS)})
        if self.desc_size > C_GD.size:
            rest = raw[C_GD.size :]
            fields.append(Field("bg_padding", _blob(rest), (Extent(absoff + C_GD.size, len(rest)),),
                                _blob_display(rest)))
        derived: list[Derived] = []
        if copy == "gdt":
            derived.extend(self._gd_counter_derived(d))
            if self.gdt_csum:
                co, _cs = C_GD.span("bg_checksum")
                covers = tuple(subtract_extents(Extent(absoff, self.desc_size), [Extent(absoff + co, 2)]))
                derived.append(Derived("bg_checksum", covers=covers, seeds=self.seeds))
            if self.csum:
                bb, ib, _it, _fl, _u = self.gd[d]
                bb_len = -(-self.bpg // self.cluster_ratio) // 8
                if 0 < bb < self.blocks_count:
                    cov = (Extent(self.abs(bb), bb_len),)
                    derived.append(Derived("bg_block_bitmap_csum_lo", covers=cov, seeds=self.seeds))
                    if limit >= 64:
                        derived.append(Derived("bg_block_bitmap_csum_hi", covers=cov, seeds=self.seeds))
                if 0 < ib < self.blocks_count:
                    cov = (Extent(self.abs(ib), self.ipg // 8),)
                    derived.append(Derived("bg_inode_bitmap_csum_lo", covers=cov, seeds=self.seeds))
                    if limit >= 64:
                        derived.append(Derived("bg_inode_bitmap_csum_hi", covers=cov, seeds=self.seeds))
        else:
            poff = self._gd_location("gdt", d)
            if poff is not None:
                pabs = self.base + poff
                derived.extend(Derived(f.name, covers=tuple(e.shifted(pabs - absoff) for e in f.extents))
                               for f in fields)
        return Node(
            kind="ext4.group_desc",
            key=key,
            label=f"group descriptor {d}" + ("" if copy == "gdt" else f" (copy in {copy})"),
            extents=(Extent(absoff, self.desc_size),),
            fields=tuple(fields),
            derived=tuple(derived),
            attrs={"group": d, "backup": copy != "gdt"},
        )

    def _gd_counter_derived(self, d: int) -> list[Derived]:
        """Return the descriptor counters as Derived from the bitmaps and inode table they summarise."""
        bb, ib, it, _fl, _u = self.gd[d]
        out: list[Derived] = []
        if 0 < bb < self.blocks_count:
            cov = (Extent(self.abs(bb), -(-self.bpg // self.cluster_ratio) // 8),)
            out += [Derived(n, covers=cov) for n in ("bg_free_blocks_count_lo", "bg_free_blocks_count_hi")]
        if 0 < ib < self.blocks_count:
            cov = (Extent(self.abs(ib), self.ipg // 8),)
            out += [Derived(n, covers=cov) for n in ("bg_free_inodes_count_lo", "bg_free_inodes_count_hi",
                                                      "bg_itable_unused_lo", "bg_itable_unused_hi")]
        if 0 < it < self.blocks_count:
            cov = (Extent(self.abs(it), min(self.itb_per_group, self.blocks_count - it) * self.bs),)
            out += [Derived(n, covers=cov) for n in ("bg_used_dirs_count_lo", "bg_used_dirs_count_hi")]
        return out

    def _sb_counter_derived(self) -> list[Derived]:
        """Return the superblock free counts as Derived from the per-group counts they sum."""
        if self.groups > 4096:
            tables = tuple(merge_extents(Extent(self.abs(b), self.bs) for b, _f in self.gdt_copies.get("gdt", [])))
            return [Derived(n, covers=tables) for n in ("s_free_blocks_count_lo", "s_free_blocks_count_hi",
                                                        "s_free_inodes_count")]
        blocks: list[Extent] = []
        inodes: list[Extent] = []
        fb_lo, fb_hi = C_GD.span("bg_free_blocks_count_lo"), C_GD.span("bg_free_blocks_count_hi")
        fi_lo, fi_hi = C_GD.span("bg_free_inodes_count_lo"), C_GD.span("bg_free_inodes_count_hi")
        for d in range(self.groups):
            off = self._gd_location("gdt", d)
            if off is None:
                continue
            a = self.base + off
            blocks.append(Extent(a + fb_lo[0], fb_lo[1]))
            inodes.append(Extent(a + fi_lo[0], fi_lo[1]))
            if self.desc_size >= 64:
                blocks.append(Extent(a + fb_hi[0], fb_hi[1]))
                inodes.append(Extent(a + fi_hi[0], fi_hi[1]))
        return [Derived("s_free_blocks_count_lo", covers=tuple(blocks)),
                Derived("s_free_blocks_count_hi", covers=tuple(blocks)),
                Derived("s_free_inodes_count", covers=tuple(inodes))]

    def _rgdt_node(self, g: int, key: str) -> Node:
        first = self.group_first_block(g) + 1 + self.old_desc_blocks
        fields = []
        for i in range(self.rgdt_blocks):
            data = self.read((first + i) * self.bs, self.bs)
            words = [w for w in struct.unpack_from(f"<{self.bs // 4}I", data) if w]
            disp = f"{len(words)} block numbers" if words else _blob_display(data)
            fields.append(Field(f"rgdt[{i}]", _blob(data), (Extent(self.abs(first + i), self.bs),), disp))
        return Node(
            kind="ext4.reserved_gdt",
            key=key,
            label="reserved GDT blocks" + ("" if g == 0 else f" (group {g})"),
            extents=(Extent(self.abs(first), self.rgdt_blocks * self.bs),),
            fields=tuple(fields),
            attrs={"group": g, "backup": g != 0},
        )

    def _bitmap_node(self, which: str, g: int) -> Node | None:
        bb, ib, _it, flags, _u = self.gd[g]
        blk = bb if which == "b" else ib
        if not 0 < blk < self.blocks_count:
            return None
        data = self.read(blk * self.bs, self.bs)
        nbits = -(-self.bpg // self.cluster_ratio) if which == "b" else self.ipg
        nbytes = nbits // 8
        bits = data[:nbytes]
        unit = "clusters" if which == "b" and self.cluster_ratio > 1 else ("blocks" if which == "b" else "inodes")
        fields = [Field("bitmap", _runs_text(bits, nbits), (Extent(self.abs(blk), nbytes),),
                        f"{int.from_bytes(bits, 'little').bit_count()} of {nbits} {unit} in use")]
        if nbytes < self.bs:
            pad = data[nbytes:]
            fields.append(Field("padding", _blob(pad), (Extent(self.abs(blk, nbytes), len(pad)),), _blob_display(pad)))
        uninit = flags & (EXT4_BG_BLOCK_UNINIT if which == "b" else EXT4_BG_INODE_UNINIT)
        return Node(
            kind="ext4.block_bitmap" if which == "b" else "ext4.inode_bitmap",
            key=f"{which}bitmap:{g}",
            label=f"{'block' if which == 'b' else 'inode'} bitmap of group {g}",
            extents=(Extent(self.abs(blk), self.bs),),
            fields=tuple(fields),
            attrs={"group": g, "uninit": bool(uninit)},
        )

    # ---------------------------------------------------------------------------------------------- inodes

    def _inodes_node(self) -> Node:
        exts = []
        for g in range(self.groups):
            it = self.gd[g][2]
            if 0 < it < self.blocks_count:
                exts.append(Extent(self.abs(it), min(self.itb_per_group, self.blocks_count - it) * self.bs))
        node = Node(kind="ext4.inodes", key="inodes", label="inode tables", extents=merge_extents(exts))

        def build(key: str) -> Node | None:
            ino = self.ino_of(key)
            return self.inode_node(ino) if ino is not None else None

        self.lazy(node, build)
        return node

    def inode_node(self, ino: int) -> Node:
        """Return the node of inode ``ino`` with every field (used or not)."""
        off = self.inode_offset(ino)
        isz = self.inode_size
        raw = self.read(off, isz)
        absoff = self.base + off
        vals = C_INODE.unpack(raw)
        info = self.inodes.get(ino)
        errors: list[str] = []
        limit = EXT4_GOOD_OLD_INODE_SIZE
        extra = 0
        if isz > EXT4_GOOD_OLD_INODE_SIZE:
            extra = vals["i_extra_isize"]
            if extra % 4 or EXT4_GOOD_OLD_INODE_SIZE + extra > isz:
                if info is not None:
                    errors.append(f"i_extra_isize {extra} is not plausible")
                extra = 0
            limit = EXT4_GOOD_OLD_INODE_SIZE + max(extra, 2)
        fields = _inode_fields(raw, absoff, limit)
        fields.extend(self._iblock_fields(raw, absoff, vals, info))
        # The bytes after the fixed fields: in-inode extended attributes or unused space.
        xstart = limit
        if xstart < isz:
            # every field so far ends by ``limit``: only the xattr fields can cover bytes of the gap
            xfields: list[Field] = []
            if struct.unpack_from("<I", raw, xstart)[0] == EXT4_XATTR_MAGIC and xstart + 4 <= isz:
                xfields.extend(C_XIH.fields(raw, xstart, absoff + xstart, prefix="xattr."))
                xfields.extend(self._xattr_fields(raw, xstart + 4, xstart + 4, isz, absoff, errors))
            _gap_fields(xfields, absoff + xstart, absoff + isz, "i_extra_space",
                        _reader(raw, absoff))
            if info is not None and len(info.inline) > 1:  # the file or directory node owns the inline content
                xfields = [f for f in xfields if f.name != "xattr[system.data].value"]
            fields.extend(xfields)
        fields.sort(key=lambda f: f.extents[0].offset)
        derived: list[Derived] = []
        if self.csum:
            lo, _ = C_INODE.span("i_checksum_lo")
            csum_ext = [Extent(absoff + lo, 2)]
            hi, _ = C_INODE.span("i_checksum_hi")
            if isz > EXT4_GOOD_OLD_INODE_SIZE and extra >= 4:
                csum_ext.append(Extent(absoff + hi, 2))
            covers = tuple(subtract_extents(Extent(absoff, isz), csum_ext))
            derived.append(Derived("i_checksum_lo", covers=covers, seeds=self.seeds))
            if len(csum_ext) > 1:
                derived.append(Derived("i_checksum_hi", covers=covers, seeds=self.seeds))
        attrs = self.path_attrs(ino)
        if info is None:
            attrs["unused"] = True
            attrs["file_type"] = MODE_TYPES.get(vals["i_mode"] & S_IFMT, "none") if vals["i_mode"] else "none"
        else:
            attrs["links"] = info.links
            if info.errors:
                errors.extend(info.errors)
        return Node(
            kind="ext4.inode",
            key=self.key_of(ino) if info is not None else f"ino:{ino}",
            label=self._label(ino) + ("" if info is not None else " (unused)"),
            extents=(Extent(absoff, isz),),
            fields=tuple(fields),
            derived=tuple(derived),
            attrs=attrs,
            errors=errors,
        )

    def _iblock_fields(self, raw: bytes, absoff: int, vals: dict[str, Any], info: InodeInfo | None) -> list[Field]:
        """Return the fields of ``i_block``: an extent tree root, a block map, a symlink target or inline data."""
        off, size = C_INODE.span("i_block")
        ib = raw[off : off + size]
        a = absoff + off
        flags = vals["i_flags"]
        ftype = vals["i_mode"] & S_IFMT
        if info is not None and info.inline:
            return []  # the file or directory node owns the inline content
        if flags & EXT4_INLINE_DATA_FL:
            return [Field("i_block", _blob(ib), (Extent(a, size),), "inline data")]
        if info is not None and info.fast and ftype == S_IFLNK:
            target = ib[: min(info.size, size)]
            out = [Field("i_block", _name(target), (Extent(a, len(target)),), "symlink target")]
            if len(target) < size:
                rest = ib[len(target) :]
                out.append(Field("i_block.unused", _blob(rest), (Extent(a + len(target), size - len(target)),),
                                 _blob_display(rest)))
            return out
        if flags & EXT4_EXTENTS_FL and struct.unpack_from("<H", ib)[0] == EXT4_EXT_MAGIC:
            return self._extent_node_fields(ib, 0, a, size, "i_block.")
        if info is not None and info.fast and ftype in (S_IFCHR, S_IFBLK):
            return _device_fields(ib, a)
        if info is not None and info.fast:
            return [Field("i_block", struct.unpack_from("<15I", ib), (Extent(a, size),), "unused")]
        return [Field("i_block", struct.unpack_from("<15I", ib), (Extent(a, size),))]

    def _extent_node_fields(self, buf: bytes, off: int, absoff: int, size: int, prefix: str) -> list[Field]:
        """Return the fields of an extent header and its entries (in ``i_block`` or an extent block)."""
        fields = C_EH.fields(buf, off, absoff, prefix=prefix)
        _magic, entries, emax, depth, _gen = _EH.unpack_from(buf, off)
        room = (size - 12) // 12
        n = min(entries, emax, room)
        for i in range(n):
            eoff = 12 + 12 * i
            if depth == 0:
                fields.extend(C_EE.fields(buf, off + eoff, absoff + eoff, prefix=f"{prefix}extent[{i}].",
                                          display=_EE_DISPLAY))
            else:
                fields.extend(C_EI.fields(buf, off + eoff, absoff + eoff, prefix=f"{prefix}index[{i}]."))
        used = 12 + 12 * n
        end = size if prefix == "i_block." else min(size, 12 + 12 * min(emax, room))
        if end > used:
            rest = buf[off + used : off + end]
            fields.append(Field(f"{prefix}unused", _blob(rest), (Extent(absoff + used, end - used),),
                                _blob_display(rest)))
        return fields

    def _xattr_fields(self, buf: bytes, first: int, value_base: int, end: int, absoff: int,
                      errors: list[str], prefix: str = "xattr") -> list[Field]:
        """Return the fields of an xattr entry table at ``first`` whose values are relative to ``value_base``."""
        fields: list[Field] = []
        pos = first
        seen: dict[str, int] = {}
        count = 0
        while pos + 4 <= end:
            if struct.unpack_from("<I", buf, pos)[0] == 0:
                fields.append(Field(f"{prefix}.end", 0, (Extent(absoff + pos, 4),), "end of entries"))
                break
            if pos + 16 > end:
                errors.append(f"xattr entry at +{pos} runs past the end")
                break
            e = C_XE.unpack(buf, pos)
            nlen = e["e_name_len"]
            if pos + 16 + nlen > end:
                errors.append(f"xattr name at +{pos} runs past the end")
                break
            name = XATTR_PREFIXES.get(e["e_name_index"], f"{e['e_name_index']}:") + _name(buf[pos + 16 : pos + 16 + nlen])
            if name in seen:
                seen[name] += 1
                name = f"{name}#{seen[name]}"
            else:
                seen[name] = 1
            p = f"{prefix}[{name}]."
            fields.extend(C_XE.fields(buf, pos, absoff + pos, prefix=p))
            fields.append(Field(p + "e_name", _name(buf[pos + 16 : pos + 16 + nlen]),
                                (Extent(absoff + pos + 16, nlen),)))
            entry_end = pos + ((16 + nlen + 3) & ~3)
            if entry_end > pos + 16 + nlen:
                padn = entry_end - pos - 16 - nlen
                fields.append(Field(p + "e_pad", _blob(buf[pos + 16 + nlen : entry_end]),
                                    (Extent(absoff + pos + 16 + nlen, padn),)))
            vsize = e["e_value_size"]
            voff = value_base + e["e_value_offs"]
            if e["e_value_inum"] == 0 and vsize:
                vend = voff + ((vsize + 3) & ~3)
                if voff < entry_end or vend > end:
                    errors.append(f"xattr {name}: value at +{voff} size {vsize} outside its area")
                else:
                    val = buf[voff : voff + vsize]
                    fields.append(Field(p + "value", _xattr_value(val), (Extent(absoff + voff, vsize),),
                                        _xattr_value_display(val)))
                    if vend > voff + vsize:
                        fields.append(Field(p + "value_pad", _blob(buf[voff + vsize : vend]),
                                            (Extent(absoff + voff + vsize, vend - voff - vsize),)))
            pos = entry_end
            count += 1
            if count > 4096:
                errors.append("more than 4096 xattr entries")
                break
        # Overlapping values (hostile input) would make sibling fields overlap: drop later duplicates.
        return _disjoint(fields, errors)

    # ---------------------------------------------------------------------------------------------- containers

    def _container(self, key: str, kind: str, label: str, build: Callable[[int], Node | None], dirs: bool) -> Node:
        exts: list[Extent] = []
        for ino, info in self.inodes.items():
            if ino in (self.journal_ino, self.orphan_ino, EXT4_RESIZE_INO):
                continue
            if (info.mode & S_IFMT == S_IFDIR) != dirs:
                continue
            exts.extend(Extent(self.abs(p), n * self.bs) for _l, p, n, _u in info.runs)
            exts.extend(Extent(self.abs(b), self.bs) for b, _lv, _l, _k in info.tree)
            exts.extend(Extent(self.base + o, n) for o, n in info.inline)
        node = Node(kind=kind, key=key, label=label, extents=merge_extents(exts))

        def by_key(k: str) -> Node | None:
            ino = self.ino_of(k)
            if ino is None or ino not in self.inodes:
                return None
            info = self.inodes[ino]
            if ino in (self.journal_ino, self.orphan_ino, EXT4_RESIZE_INO):
                return None
            if (info.mode & S_IFMT == S_IFDIR) != dirs or (not info.runs and not info.tree and not info.inline):
                return None
            return build(ino)

        self.lazy(node, by_key)
        return node

    def _tree_nodes(self, info: InodeInfo, errors: list[str]) -> list[Node]:
        """Return the extent-tree / indirect block nodes of an inode."""
        out: list[Node] = []
        for blk, level, lblk, kind in info.tree:
            data = self.read(blk * self.bs, self.bs)
            a = self.abs(blk)
            if kind == "eb":
                fields = self._extent_node_fields(data, 0, a, self.bs, "")
                _m, _n, emax, _d, _g = _EH.unpack_from(data, 0)
                tail = 12 + 12 * emax
                derived: tuple[Derived, ...] = ()
                if self.csum and tail + 4 <= self.bs:
                    fields.extend(C_ET.fields(data, tail, a + tail))
                    derived = (Derived("eb_checksum", covers=(Extent(a, tail),),
                                       seeds=self.seeds + ("ext4.inode:i_generation",)),)
                    tail += 4
                _gap_fields(fields, a, a + self.bs, "padding", _reader(data, a))
                out.append(Node(kind="ext4.extent_block", key=f"eb:{level}:{lblk}",
                                label=f"extent tree block (depth {level}, from block {lblk})",
                                extents=(Extent(a, self.bs),), fields=tuple(sorted(fields, key=_fkey)),
                                derived=derived, attrs={"depth": level, "lblk": lblk, **self.path_attrs(info.ino)}))
            else:
                words = struct.unpack_from(f"<{self.bs // 4}I", data)
                nz = sum(1 for w in words if w)
                out.append(Node(kind="ext4.indirect_block", key=f"ind:{level}:{lblk}",
                                label=f"indirect block (level {level}, from block {lblk})",
                                extents=(Extent(a, self.bs),),
                                fields=(Field("entries", _blob(data), (Extent(a, self.bs),),
                                              f"{nz} block numbers"),),
                                attrs={"level": level, "lblk": lblk, **self.path_attrs(info.ino)}))
        del errors
        return out

    # ---------------------------------------------------------------------------------------------- files

    def _file_node(self, ino: int) -> Node:
        info = self.inodes[ino]
        bs = self.bs
        data_ext: list[Extent] = []
        offsets: list[int] = []
        slack_ext: list[Extent] = []
        unwritten_ext: list[Extent] = []
        beyond_ext: list[Extent] = []
        size = info.size
        pos = 0
        for off, n in info.inline:  # i_block, then the system.data value
            inside = max(0, min(n, size - pos))
            if inside:
                data_ext.append(Extent(self.base + off, inside))
                offsets.append(pos)
            if inside < n:
                slack_ext.append(Extent(self.base + off + inside, n - inside))
            pos += n
        for lblk, pblk, length, unwritten in info.runs:
            fstart = lblk * bs
            a = self.abs(pblk)
            nbytes = length * bs
            if unwritten:
                unwritten_ext.append(Extent(a, nbytes))
                continue
            inside = max(0, min(nbytes, size - fstart))
            if inside:
                data_ext.append(Extent(a, inside))
                offsets.append(fstart)
            if inside < nbytes:
                tail_len = (-inside) % bs if inside else 0
                if tail_len:
                    slack_ext.append(Extent(a + inside, tail_len))
                rest = nbytes - inside - tail_len
                if rest:
                    beyond_ext.append(Extent(a + inside + tail_len, rest))
        value: Value = self.content_sha256(info)
        disp = f"{size} bytes"
        if info.mode & S_IFMT == S_IFLNK and size <= SYMLINK_MAX:  # a slow (or inline) symlink: show the target
            target = self.read_content(info, SYMLINK_MAX)
            if target is not None:
                value, disp = _name(target), "symlink target"
        fields = [Field("data", value, tuple(data_ext), disp)] if data_ext else []
        for name, exts in (("slack", slack_ext), ("unwritten", unwritten_ext), ("beyond_eof", beyond_ext)):
            if exts:
                h = hashlib.sha256()
                nz = 0
                total = 0
                for e in exts:
                    chunk = self.ctx.read(e.offset, e.length)
                    h.update(chunk)
                    nz += e.length - chunk.count(0)
                    total += e.length
                value = "sha256:" + h.hexdigest()[:16]
                if total <= BLOB_INLINE:
                    value = b"".join(self.ctx.read(e.offset, e.length) for e in exts)
                fields.append(Field(name, value, tuple(exts),
                                    f"{total} bytes, all zero" if nz == 0 else f"{total} bytes, {nz} non-zero"))
        errors: list[str] = list(info.errors or [])
        children = self._tree_nodes(info, errors)
        attrs = self.path_attrs(ino)
        attrs.update({"content": True, "size": size, "file_offsets": tuple(offsets)})
        if info.inline:
            attrs["inline_data"] = True
        exts_all = [e for f in fields for e in f.extents] + [e for ch in children for e in ch.extents]
        return Node(
            kind="ext4.file",
            key=self.key_of(ino),
            label=f"file data of {self.key_of(ino)}",
            extents=merge_extents(exts_all),
            fields=tuple(fields),
            children=children,
            attrs=attrs,
            errors=errors,
        )

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

    # ---------------------------------------------------------------------------------------------- directories

    def _dir_node(self, ino: int) -> Node:
        info = self.inodes[ino]
        dpath = self.key_of(ino)
        errors: list[str] = list(info.errors or [])
        children: list[Node] = []
        dx = self._dx_blocks(info, errors)
        used_keys: dict[str, int] = {}
        entry_count = 0
        for k, (off, n) in enumerate(info.inline):
            data = self.read(off, n)
            a = self.base + off
            extra: list[Field] = []
            if k == 0:  # i_block starts with the parent directory's inode number (the ".." entry)
                extra = [Field("parent_inode", struct.unpack_from("<I", data)[0], (Extent(a, 4),), ".. entry")]
                data, a = data[4:], a + 4
            nodes = self._leaf_nodes(data, a, k, dpath, info, used_keys, errors, inline=True, block_fields=extra)
            entry_count += sum(1 for c in nodes if c.kind == "ext4.dirent")
            children.extend(nodes)
        for lblk, pblk, length, unwritten in info.runs:
            if unwritten:
                continue
            for k in range(length):
                lb, pb = lblk + k, pblk + k
                data = self.read(pb * self.bs, self.bs)
                a = self.abs(pb)
                if lb in dx:
                    children.extend(self._dx_block_nodes(data, a, lb, dx[lb], dpath, info, used_keys, errors))
                else:
                    nodes = self._leaf_nodes(data, a, lb, dpath, info, used_keys, errors)
                    entry_count += sum(1 for n in nodes if n.kind == "ext4.dirent")
                    children.extend(nodes)
        children.extend(self._tree_nodes(info, errors))
        exts = [Extent(self.abs(p), n * self.bs) for _l, p, n, _u in info.runs]
        exts.extend(Extent(self.abs(b), self.bs) for b, _lv, _l, _k in info.tree)
        exts.extend(Extent(self.base + o, n) for o, n in info.inline)
        attrs = self.path_attrs(ino)
        attrs.update({"htree": bool(dx), "entries": entry_count})
        if info.inline:
            attrs["inline_data"] = True
        node = Node(
            kind="ext4.directory",
            key=dpath,
            label=f"directory {dpath}",
            extents=merge_extents(exts),
            children=children,
            attrs=attrs,
            errors=errors,
        )
        return node

    def _dx_blocks(self, info: InodeInfo, errors: list[str]) -> dict[int, tuple[str, int]]:
        """Return ``{logical block: ("root" | "node", level)}`` of an indexed directory's interior blocks."""
        if not info.flags & EXT4_INDEX_FL or not info.runs or info.runs[0][0] != 0:
            return {}
        pblk = info.runs[0][1]
        root = self.read(pblk * self.bs, self.bs)
        info_len = root[24 + 5]
        levels = root[24 + 6]
        if root[24 + 5] != 8 or levels > 3:
            errors.append(f"dx_root: info_length {info_len} / indirect_levels {levels} not plausible; read linearly")
            return {}
        out: dict[int, tuple[str, int]] = {0: ("root", 0)}
        frontier = [(0, root, 24 + info_len)]
        for level in range(1, levels + 1):
            nxt = []
            for _lb, data, cl_off in frontier:
                limit, count = struct.unpack_from("<HH", data, cl_off)
                if count > limit or cl_off + 8 * limit > self.bs:
                    errors.append(f"dx count {count} / limit {limit} not plausible")
                    continue
                for i in range(count):
                    blk = struct.unpack_from("<I", data, cl_off + 8 * i + 4)[0]
                    if blk in out:
                        continue
                    out[blk] = ("node", level)
                    pb = self._lblk_to_pblk(info, blk)
                    if pb is not None:
                        nxt.append((blk, self.read(pb * self.bs, self.bs), 8))
            frontier = nxt
        return out

    def _lblk_to_pblk(self, info: InodeInfo, lblk: int) -> int | None:
        for lb, pb, n, _u in info.runs:
            if lb <= lblk < lb + n:
                return pb + (lblk - lb)
        return None

    def _dirent_key(self, dpath: str, name: str, used: dict[str, int], deleted: bool = False) -> str:
        path = ("/" if dpath == "/" else dpath + "/") + name
        key = f"deleted:{path}" if deleted else path
        n = used.get(key, 0) + 1
        used[key] = n
        return key if n == 1 else f"{key}#{n}"

    def _dirent_node(self, data: bytes, pos: int, end: int, a: int, lb: int, dpath: str,
                     used: dict[str, int], deleted: bool, htree: bool, slack_scan: bool = True) -> list[Node]:
        """Return the node of the entry at ``pos`` owning ``[pos, end)``, plus deleted entries in its slack."""
        ino, _rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
        if not self.filetype:
            name_len |= ftype << 8
        name = _name(data[pos + 8 : pos + 8 + name_len])
        fields = C_DIRENT.fields(data, pos, a + pos,
                                 display={"file_type": lambda v: DIRENT_FILE_TYPES.get(v, str(v))})
        if not self.filetype:
            fields = [f for f in fields if f.name not in ("name_len", "file_type")]
            fields.append(Field.at("name_len", name_len, a + pos + 6, 2))
        if name_len:
            fields.append(Field.at("name", name, a + pos + 8, name_len))
        nodes: list[Node] = []
        slack_start = pos + 8 + name_len
        my_end = end
        if slack_scan and end - slack_start >= 12:
            hidden = self._hidden_entries(data, slack_start, end)
            if hidden:
                my_end = hidden[0]
                for i, hpos in enumerate(hidden):
                    hend = hidden[i + 1] if i + 1 < len(hidden) else end
                    nodes.extend(self._dirent_node(data, hpos, hend, a, lb, dpath, used, True, htree,
                                                   slack_scan=False))
        if my_end > slack_start:
            s = data[slack_start:my_end]
            fields.append(Field("slack", _blob(s), (Extent(a + slack_start, my_end - slack_start),), _blob_display(s)))
        if ino == 0 and not name_len:
            key = f"{dpath.rstrip('/')}/#unused@{lb}:{pos}"
            path = ""
        else:
            key = self._dirent_key(dpath, name, used, deleted or ino == 0)
            path = ("/" if dpath == "/" else dpath + "/") + name
        attrs: dict[str, Value] = {
            "path": path,
            "parent": dpath,
            "ino": ino,
            "file_type": DIRENT_FILE_TYPES.get(ftype, str(ftype)) if self.filetype else "unknown",
            "lblk": lb,
            "htree": htree,
        }
        if deleted or ino == 0:
            attrs["deleted"] = True
        nodes.insert(0, Node(
            kind="ext4.dirent",
            key=key,
            label=f"directory entry {path or key}" + (" (deleted)" if deleted or ino == 0 else ""),
            extents=(Extent(a + pos, my_end - pos),),
            fields=tuple(fields),
            attrs=attrs,
        ))
        return nodes

    def _hidden_entries(self, data: bytes, start: int, end: int) -> list[int]:
        """Return positions of deleted entries left in ``[start, end)`` (the slack of a live entry)."""
        out: list[int] = []
        pos = (start + 3) & ~3
        while pos + 12 <= end:
            ino, rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
            if (0 < ino <= self.inodes_count and rec_len >= 12 and rec_len % 4 == 0 and pos + rec_len <= end
                    and 0 < name_len and 8 + name_len <= rec_len and ftype <= 7):
                name = data[pos + 8 : pos + 8 + name_len]
                if b"\0" not in name and b"/" not in name:
                    out.append(pos)
                    pos += (8 + name_len + 3) & ~3
                    continue
            pos += 4
        return out

    def _leaf_nodes(self, data: bytes, a: int, lb: int, dpath: str, info: InodeInfo,
                    used: dict[str, int], errors: list[str], inline: bool = False,
                    block_fields: list[Field] | None = None) -> list[Node]:
        """Return the entries of one directory block (or one part of an inline directory, ``inline=True``).

        An inline part has no checksum tail and starts at ``data[0]`` (the caller hands in ``i_block`` without its
        4-byte parent inode, or the ``system.data`` value); ``block_fields`` are extra fields of its block node.
        """
        nodes: list[Node] = []
        end = len(data) if inline else self.bs
        htree = bool(info.flags & EXT4_INDEX_FL)
        block_fields = list(block_fields or [])
        derived: tuple[Derived, ...] = ()
        if self.csum and end >= 12 and not inline:
            t_ino, t_rec, t_nl, t_ft = _DIRENT.unpack_from(data, end - 12)
            if t_ino == 0 and t_rec == 12 and t_nl == 0 and t_ft == EXT4_DIR_TAIL_FT:
                end -= 12
                block_fields = C_DIRTAIL.fields(data, end, a + end)
                derived = (Derived("det_checksum", covers=(Extent(a, end),),
                                   seeds=self.seeds + ("ext4.inode:i_generation",)),)
            else:
                errors.append(f"{dpath} block {lb}: no dirent checksum tail")
        pos = 0
        while pos < end:
            if pos + 8 > end:
                break
            _ino, rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
            if not self.filetype:
                name_len |= ftype << 8
            if rec_len < 8 or rec_len % 4 or pos + rec_len > end or 8 + name_len > rec_len:
                errors.append(f"{dpath} block {lb}: bad entry at +{pos} (rec_len {rec_len}, name_len {name_len})")
                break
            nodes.extend(self._dirent_node(data, pos, pos + rec_len, a, lb, dpath, used, False, htree))
            pos += rec_len
        if pos < end:
            rest = data[pos:end]
            block_fields.append(Field("unparsed", _blob(rest), (Extent(a + pos, end - pos),), _blob_display(rest)))
        if block_fields:
            exts = merge_extents(e for f in block_fields for e in f.extents)
            key, label = (f"inline:{lb}", f"inline directory data {lb} of {dpath}") if inline else (
                f"blk:{lb}", f"directory block {lb} of {dpath}")
            nodes.append(Node(kind="ext4.dir_block", key=key, label=label,
                              extents=exts, fields=tuple(sorted(block_fields, key=_fkey)), derived=derived,
                              attrs={"path": dpath, "lblk": lb, "ino": info.ino, "file_type": "dir",
                                     "htree": htree},
                              raw=any(f.name == "unparsed" for f in block_fields)))
        return nodes

    def _dx_block_nodes(self, data: bytes, a: int, lb: int, what: tuple[str, int], dpath: str, info: InodeInfo,
                        used: dict[str, int], errors: list[str]) -> list[Node]:
        nodes: list[Node] = []
        fields: list[Field] = []
        if what[0] == "root":
            for pos, name in ((0, "."), (12, "..")):
                ino, _rec_len, name_len, ftype = _DIRENT.unpack_from(data, pos)
                dfields = C_DIRENT.fields(data, pos, a + pos,
                                          display={"file_type": lambda v: DIRENT_FILE_TYPES.get(v, str(v))})
                dfields.append(Field.at("name", _name(data[pos + 8 : pos + 8 + min(name_len, 4)]), a + pos + 8, 4))
                path = ("/" if dpath == "/" else dpath + "/") + name
                nodes.append(Node(kind="ext4.dirent", key=self._dirent_key(dpath, name, used),
                                  label=f"directory entry {path}", extents=(Extent(a + pos, 12),),
                                  fields=tuple(dfields),
                                  attrs={"path": path, "parent": dpath, "ino": ino, "lblk": lb, "htree": True,
                                         "file_type": DIRENT_FILE_TYPES.get(ftype, str(ftype))}))
            fields.extend(C_DXINFO.fields(data, 24, a + 24,
                                          display={"hash_version": lambda v: HASH_VERSIONS.get(v, str(v))}))
            cl = 24 + data[24 + 5]
            kind = "ext4.dx_root"
        else:
            fields.extend(C_FAKE.fields(data, 0, a, prefix="fake."))
            cl = 8
            kind = "ext4.dx_node"
        limit, count = struct.unpack_from("<HH", data, cl)
        ok = count <= limit and cl + 8 * limit <= self.bs
        if not ok:
            errors.append(f"{dpath} dx block {lb}: count {count} / limit {limit} not plausible")
            limit = count = 0
        fields.extend(C_DXCL.fields(data, cl, a + cl))
        if count:
            fields.append(Field.at("block", struct.unpack_from("<I", data, cl + 4)[0], a + cl + 4, 4))
        for i in range(1, count):
            fields.extend(C_DXENTRY.fields(data, cl + 8 * i, a + cl + 8 * i, prefix=f"entries[{i}]."))
        used_end = cl + 8 * max(count, 1 if ok and limit else 0)
        tail = cl + 8 * limit
        if tail > used_end:
            rest = data[used_end:tail]
            fields.append(Field("unused", _blob(rest), (Extent(a + used_end, tail - used_end),), _blob_display(rest)))
        derived: tuple[Derived, ...] = ()
        if self.csum and ok and tail + 8 <= self.bs:
            fields.extend(C_DXTAIL.fields(data, tail, a + tail))
            derived = (Derived("dt_checksum", covers=(Extent(a, cl + 8 * count), Extent(a + tail, 4)),
                               seeds=self.seeds + ("ext4.inode:i_generation",)),)
        start = 24 if what[0] == "root" else 0
        _gap_fields(fields, a + start, a + self.bs, "padding", _reader(data, a))
        exts = merge_extents(e for f in fields for e in f.extents)
        nodes.append(Node(kind=kind, key=f"blk:{lb}",
                          label=f"{'htree root' if what[0] == 'root' else 'htree node'} block {lb} of {dpath}",
                          extents=exts, fields=tuple(sorted(fields, key=_fkey)), derived=derived,
                          attrs={"path": dpath, "lblk": lb, "level": what[1], "ino": info.ino, "file_type": "dir",
                                 "htree": True}))
        return nodes

    # ---------------------------------------------------------------------------------------------- xattr blocks

    def _xattrs_node(self) -> Node:
        exts = merge_extents(Extent(self.abs(b), self.bs) for b in self.xattr_owners)
        node = Node(kind="ext4.xattr_blocks", key="xattrs", label="extended attribute blocks", extents=exts)
        by_key = {self.key_of(owners[0]): blk for blk, owners in self.xattr_owners.items()}

        def build(key: str) -> Node | None:
            blk = by_key.get(key)
            return self._xattr_block_node(blk) if blk is not None else None

        self.lazy(node, build)
        return node

    def _xattr_block_node(self, blk: int) -> Node:
        data = self.read(blk * self.bs, self.bs)
        a = self.abs(blk)
        errors: list[str] = []
        fields = C_XH.fields(data, 0, a, decode={"h_reserved": tuple})
        if struct.unpack_from("<I", data)[0] == EXT4_XATTR_MAGIC:
            fields.extend(self._xattr_fields(data, 32, 0, self.bs, a, errors))
        else:
            errors.append(f"xattr block {blk}: bad h_magic")
        _gap_fields(fields, a, a + self.bs, "unused", _reader(data, a))
        owners = self.xattr_owners[blk]
        attrs = self.path_attrs(owners[0])
        attrs["owners"] = tuple(self.key_of(o) for o in owners)
        derived: tuple[Derived, ...] = ()
        if self.csum:
            co, _ = C_XH.span("h_checksum")
            derived = (Derived("h_checksum", covers=tuple(subtract_extents(Extent(a, self.bs), [Extent(a + co, 4)])),
                               seeds=self.seeds),)
        return Node(kind="ext4.xattr_block", key=self.key_of(owners[0]), label=f"xattr block of {self.key_of(owners[0])}",
                    extents=(Extent(a, self.bs),), fields=tuple(sorted(fields, key=_fkey)), derived=derived,
                    attrs=attrs, errors=errors)

    # ---------------------------------------------------------------------------------------------- journal

    def _lblks_of(self, info: InodeInfo, b0: int, b1: int) -> list[int]:
        out: list[int] = []
        for lb, pb, n, _u in info.runs:
            lo, hi = max(b0, pb), min(b1, pb + n)
            out.extend(lb + (p - pb) for p in range(lo, hi))
        return out

    def _journal_lblks(self, b0: int, b1: int) -> list[int]:
        info = self.inodes[self.journal_ino]
        out = self._lblks_of(info, b0, b1)
        return [lb for lb in out if lb > 0]

    def _journal_node(self) -> Node:
        info = self.inodes[self.journal_ino]
        errors: list[str] = list(info.errors or [])
        exts = [Extent(self.abs(p), n * self.bs) for _l, p, n, _u in info.runs]
        exts.extend(Extent(self.abs(b), self.bs) for b, _lv, _l, _k in info.tree)
        fields: list[Field] = []
        derived: tuple[Derived, ...] = ()
        jsb: dict[str, Any] = {}
        first = self._lblk_to_pblk(info, 0)
        if first is not None:
            data = self.read(first * self.bs, self.bs)
            a = self.abs(first)
            jsb = C_JSB.unpack(data)
            fields = C_JSB.fields(data, 0, a, decode={"s_uuid": _uuid},
                                  display={"h_blocktype": lambda v: JBD2_BLOCKTYPES.get(v, str(v)),
                                           "s_feature_incompat": lambda v: _flags_text(v, JBD2_INCOMPAT_NAMES)})
            if self.bs > 1024:
                pad = data[1024:]
                fields.append(Field("padding", _blob(pad), (Extent(a + 1024, len(pad)),), _blob_display(pad)))
            if jsb["h_magic"] != JBD2_MAGIC_NUMBER:
                errors.append("journal superblock magic is wrong")
            derived = (Derived("s_uuid", seeds=("ext4.superblock:s_uuid",)),)
            if jsb["s_feature_incompat"] & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3):
                co, _ = C_JSB.span("s_checksum")
                derived += (Derived("s_checksum", covers=(Extent(a, co), Extent(a + co + 4, 1024 - co - 4))),)
        node = Node(kind="ext4.journal", key="journal", label="journal", extents=merge_extents(exts), fields=tuple(fields),
                    derived=derived, attrs={**self.path_attrs(self.journal_ino),
                                            "maxlen": jsb.get("s_maxlen", 0), "start": jsb.get("s_start", 0)},
                    errors=errors)
        node.children.extend(self._tree_nodes(info, errors))

        def build(key: str) -> Node | None:
            if not key.startswith("jblk:"):
                return None
            n = _int_suffix(key)
            if n is None or n <= 0:
                return None
            pb = self._lblk_to_pblk(info, n)
            return self._journal_block_node(n, pb, jsb, info) if pb is not None else None

        self.lazy(node, build)
        return node

    def _journal_block_node(self, n: int, pblk: int, jsb: dict[str, Any], info: InodeInfo) -> Node:
        data = self.read(pblk * self.bs, self.bs)
        a = self.abs(pblk)
        fields: list[Field] = []
        attrs: dict[str, Value] = {"jblock": n}
        errors: list[str] = []
        incompat = jsb.get("s_feature_incompat", 0)
        csum = bool(incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3))
        magic, btype, seq = C_JH.struct.unpack_from(data, 0)
        derived: list[Derived] = []
        jseeds = ("ext4.journal:s_uuid",)
        tail = (Extent(a, self.bs - 4),)
        if magic == JBD2_MAGIC_NUMBER:
            attrs["blocktype"] = JBD2_BLOCKTYPES.get(btype, str(btype))
            attrs["sequence"] = seq
            disp = {"h_blocktype": lambda v: JBD2_BLOCKTYPES.get(v, str(v))}
            if btype == JBD2_DESCRIPTOR_BLOCK:
                fields.extend(C_JH.fields(data, 0, a, display=disp))
                tags = self._journal_tags(data, a, incompat, csum)
                fields.extend(tags)
                # Tag i describes the i-th journal block after the descriptor (the log wraps at s_maxlen).
                first, maxlen = jsb.get("s_first", 1) or 1, jsb.get("s_maxlen", 0)
                k = 0
                for f in tags:
                    if f.name.endswith(".t_checksum"):
                        jb = n + 1 + k
                        if maxlen and jb >= maxlen:
                            jb = first + (jb - maxlen)
                        pb = self._lblk_to_pblk(info, jb)
                        cov = (Extent(self.abs(pb), self.bs),) if pb is not None else ()
                        derived.append(Derived(f.name, covers=cov, seeds=jseeds))
                        k += 1
                if csum:
                    derived.append(Derived("t_checksum", covers=tail, seeds=jseeds))
            elif btype == JBD2_COMMIT_BLOCK:
                fields.extend(C_JCOMMIT.fields(data, 0, a, display=disp, decode={"h_padding": bytes,
                                                                                 "h_chksum": tuple}))
                co, cs = C_JCOMMIT.span("h_chksum")
                derived.append(Derived("h_chksum", covers=(Extent(a, co), Extent(a + co + cs, self.bs - co - cs)),
                                       seeds=jseeds))
            elif btype == JBD2_REVOKE_BLOCK:
                fields.extend(C_JREVOKE.fields(data, 0, a, display=disp))
                r_count = struct.unpack_from(">I", data, 12)[0]
                rsize = 8 if incompat & JBD2_FEATURE_INCOMPAT_64BIT else 4
                end = min(r_count, self.bs - (4 if csum else 0))
                if end > 16:
                    recs = struct.unpack_from(f">{(end - 16) // rsize}{'Q' if rsize == 8 else 'I'}", data, 16)
                    fields.append(Field("r_blocks", tuple(recs), (Extent(a + 16, len(recs) * rsize),),
                                        f"{len(recs)} revoked blocks"))
                if csum:
                    fields.append(Field.at("t_checksum", struct.unpack_from(">I", data, self.bs - 4)[0],
                                           a + self.bs - 4, 4))
                    derived.append(Derived("t_checksum", covers=tail, seeds=jseeds))
            else:
                fields.extend(C_JH.fields(data, 0, a, display=disp))
        _gap_fields(fields, a, a + self.bs, "data" if magic != JBD2_MAGIC_NUMBER else "unused",
                    _reader(data, a))
        return Node(kind="ext4.journal_block", key=f"jblk:{n}", label=f"journal block {n}",
                    extents=(Extent(a, self.bs),), fields=tuple(sorted(_disjoint(fields, errors), key=_fkey)),
                    derived=tuple(derived), attrs=attrs, errors=errors)

    def _journal_tags(self, data: bytes, a: int, incompat: int, csum: bool) -> list[Field]:
        fields: list[Field] = []
        end = self.bs - (4 if csum else 0)
        if incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3:
            comp, tsize = C_JTAG3, 16
        else:
            comp = C_JTAG
            tsize = 12 if incompat & JBD2_FEATURE_INCOMPAT_64BIT else 8
        pos = 12
        i = 0
        while pos + tsize <= end and i < self.bs // 8:
            vals = comp.unpack(data, pos)
            flags = vals["t_flags"]
            fields.extend(f for f in comp.fields(data, pos, a + pos, prefix=f"tag[{i}].")
                          if f.extents[0].end <= a + pos + tsize)
            pos += tsize
            if not flags & JBD2_FLAG_SAME_UUID and pos + 16 <= end:
                fields.append(Field(f"tag[{i}].uuid", _uuid(data[pos : pos + 16]), (Extent(a + pos, 16),)))
                pos += 16
            i += 1
            if flags & JBD2_FLAG_LAST_TAG:
                break
        if csum:
            fields.append(Field.at("t_checksum", struct.unpack_from(">I", data, self.bs - 4)[0], a + self.bs - 4, 4))
        return fields

    # ---------------------------------------------------------------------------------------------- orphan file

    def _orphan_node(self) -> Node:
        info = self.inodes[self.orphan_ino]
        exts = [Extent(self.abs(p), n * self.bs) for _l, p, n, _u in info.runs]
        exts.extend(Extent(self.abs(b), self.bs) for b, _lv, _l, _k in info.tree)
        errors: list[str] = list(info.errors or [])
        node = Node(kind="ext4.orphan_file", key="orphan", label="orphan file", extents=merge_extents(exts),
                    attrs=self.path_attrs(self.orphan_ino), errors=errors)
        node.children.extend(self._tree_nodes(info, errors))

        def build(key: str) -> Node | None:
            lb = _int_suffix(key) if key.startswith("blk:") else None
            pb = self._lblk_to_pblk(info, lb) if lb is not None else None
            if pb is None or lb is None:
                return None
            data = self.read(pb * self.bs, self.bs)
            a = self.abs(pb)
            t = self.bs - 8
            nent = t // 4
            words = struct.unpack_from(f"<{nent}I", data)
            fields = [Field("entries", tuple(w for w in words if w) or _blob(data[:t]), (Extent(a, t),),
                            f"{sum(1 for w in words if w)} orphan inodes")]
            fields.extend(C_OBT.fields(data, t, a + t))
            berr = [] if struct.unpack_from("<I", data, t)[0] == EXT4_ORPHAN_BLOCK_MAGIC else ["bad ob_magic"]
            derived = (Derived("ob_checksum", covers=(Extent(a, t + 4),), seeds=self.seeds),) if self.csum else ()
            return Node(kind="ext4.orphan_block", key=key, label=f"orphan file block {lb}",
                        extents=(Extent(a, self.bs),), fields=tuple(fields), derived=derived,
                        attrs={"lblk": lb}, errors=berr)

        self.lazy(node, build)
        return node

    def _resize_node(self) -> Node | None:
        info = self.inodes[EXT4_RESIZE_INO]
        blk = info.tree[0][0]
        data = self.read(blk * self.bs, self.bs)
        words = [w for w in struct.unpack_from(f"<{self.bs // 4}I", data) if w]
        a = self.abs(blk)
        return Node(kind="ext4.indirect_block", key="resize:dind", label="resize inode double-indirect block",
                    extents=(Extent(a, self.bs),),
                    fields=(Field("entries", tuple(words) if len(words) <= 64 else _blob(data), (Extent(a, self.bs),),
                                  f"{len(words)} reserved GDT block numbers"),),
                    attrs=self.path_attrs(EXT4_RESIZE_INO))

    # ---------------------------------------------------------------------------------------------- free space

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

    def _free_node(self, g: int) -> Node | None:
        runs = self._group_runs(g, False)
        if not runs:
            return None
        exts = tuple(Extent(self.abs(s), (e - s) * self.bs) for s, e in runs)
        h = hashlib.sha256()
        nz = 0
        total = 0
        for ext in exts:
            pos = ext.offset
            while pos < ext.end:
                n = min(READ_CHUNK, ext.end - pos)
                chunk = self.ctx.read(pos, n)
                h.update(chunk)
                nz += n - chunk.count(0)
                pos += n
            total += ext.length
        disp = f"{total // self.bs} free blocks, " + ("all zero" if nz == 0 else f"{nz} non-zero bytes")
        return Node(kind="ext4.free", key=f"free:{g}", label=f"free blocks of group {g}", extents=exts,
                    fields=(Field("unused", "sha256:" + h.hexdigest()[:16], exts, disp),), attrs={"group": g})

    def _unowned_node(self, g: int) -> Node | None:
        runs = self._group_runs(g, True)
        if not runs:
            return None
        exts = tuple(Extent(self.abs(s), (e - s) * self.bs) for s, e in runs)
        msg = f"group {g}: {sum(e - s for s, e in runs)} blocks are marked in use but no inode or table owns them"
        return Node(kind="ext4.unowned", key=f"unowned:{g}", label=f"allocated blocks nothing refers to (group {g})",
                    extents=exts, raw=True, attrs={"group": g}, errors=[msg])

    def _beyond_node(self) -> Node | None:
        if self.size <= self.fs_bytes:
            return None
        ext = Extent(self.base + self.fs_bytes, self.size - self.fs_bytes)
        h = hashlib.sha256()
        nz = 0
        pos = ext.offset
        while pos < ext.end:
            n = min(READ_CHUNK, ext.end - pos)
            chunk = self.ctx.read(pos, n)
            h.update(chunk)
            nz += n - chunk.count(0)
            pos += n
        return Node(kind="ext4.beyond_end", key="beyond", label="space after the last filesystem block",
                    extents=(ext,), fields=(Field("unused", "sha256:" + h.hexdigest()[:16], (ext,),
                                                  f"{ext.length} bytes, {nz} non-zero"),))


# --------------------------------------------------------------------------------------------------------------
# small helpers


def _old_decode_dev(v: int) -> str:
    """Return ``major:minor`` of the 16-bit device encoding in ``i_block[0]`` (``old_decode_dev``)."""
    return f"{(v >> 8) & 0xFF}:{v & 0xFF}"


def _new_decode_dev(v: int) -> str:
    """Return ``major:minor`` of the 32-bit device encoding in ``i_block[1]`` (``new_decode_dev``)."""
    return f"{(v & 0xFFF00) >> 8}:{(v & 0xFF) | ((v >> 12) & 0xFFF00)}"


def _device_fields(ib: bytes, a: int) -> list[Field]:
    """Return the device number fields of a character/block device's ``i_block``.

    The kernel reads ``i_block[0]`` with ``old_decode_dev`` when it is non-zero and ``i_block[1]`` with
    ``new_decode_dev`` otherwise (fs/ext4/inode.c ``__ext4_iget``); mke2fs -d writes the old form for majors and
    minors below 256 and the new one for larger numbers (misc/create_inode.c ``do_mknod_internal``).
    """
    old, new = struct.unpack_from("<2I", ib)
    if old:
        d0, d1 = f"device {_old_decode_dev(old)}", "not used (i_block[0] is set)" if new else None
    else:
        d0, d1 = "not used (the number is in i_block[1])", f"device {_new_decode_dev(new)}"
    rest = ib[8:]
    return [Field("i_block[0]", old, (Extent(a, 4),), d0), Field("i_block[1]", new, (Extent(a + 4, 4),), d1),
            Field("i_block.unused", _blob(rest), (Extent(a + 8, len(rest)),), _blob_display(rest))]


def _inline_xattr(raw: bytes, isz: int) -> tuple[int, int] | str | None:
    """Return ``(offset in the inode, size)`` of the ``system.data`` value in an inode's xattr area.

    None when the inode has no such attribute, a message when the area is damaged.
    """
    if isz <= EXT4_GOOD_OLD_INODE_SIZE or len(raw) < isz:
        return None
    extra = struct.unpack_from("<H", raw, EXT4_GOOD_OLD_INODE_SIZE)[0]
    start = EXT4_GOOD_OLD_INODE_SIZE + extra
    if extra % 4 or start + 4 > isz or struct.unpack_from("<I", raw, start)[0] != EXT4_XATTR_MAGIC:
        return None
    first = start + 4
    pos = first
    for _ in range(isz // 16):
        if pos + 4 > isz or struct.unpack_from("<I", raw, pos)[0] == 0:
            return None
        if pos + 16 > isz:
            return "xattr entry runs past the end of the inode"
        nlen, index, voffs, vinum, vsize, _hash = struct.unpack_from("<BBHIII", raw, pos)
        if pos + 16 + nlen > isz:
            return "xattr name runs past the end of the inode"
        if index == EXT4_XATTR_INDEX_SYSTEM_DATA and raw[pos + 16 : pos + 16 + nlen] == b"data":
            if vinum or (vsize and (first + voffs < pos + 16 + nlen or first + voffs + vsize > isz)):
                return f"system.data value at +{first + voffs} size {vsize} lies outside the inode"
            return first + voffs, vsize
        pos += (16 + nlen + 3) & ~3
    return None


JBD2_INCOMPAT_NAMES = {0x01: "revoke", 0x02: "64bit", 0x04: "async_commit", 0x08: "csum_v2", 0x10: "csum_v3",
                       0x20: "fast_commit"}


def _reader(data: bytes, base: int) -> Callable[[int, int], bytes]:
    """Return ``read(offset, n)`` over ``data`` that starts at absolute offset ``base``."""

    def read(offset: int, n: int) -> bytes:
        return data[offset - base : offset - base + n]

    return read


def _name(raw: bytes) -> str:
    # surrogateescape (PEP 383), as Python decodes file names: lossless; the JSON writes such a byte as \udcff,
    # text and markdown show it as \xff (report.text.printable)
    return bytes(raw).decode("utf-8", errors="surrogateescape")


def _int_suffix(key: str) -> int | None:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _fkey(f: Field) -> int:
    return f.extents[0].offset if f.extents else -1


def _ee_len_text(v: int) -> str:
    return f"{v - EXT_INIT_MAX_LEN} blocks, unwritten" if v > EXT_INIT_MAX_LEN else f"{v} blocks"


_EE_DISPLAY: dict[str, Callable[[Any], str | None]] = {"ee_len": _ee_len_text}


def _xattr_value(val: bytes) -> Value:
    if len(val) <= BLOB_INLINE:
        return bytes(val)
    return "sha256:" + hashlib.sha256(val).hexdigest()[:16]


def _xattr_value_display(val: bytes) -> str | None:
    text = bytes(val).rstrip(b"\0")
    if text and all(32 <= ch < 127 for ch in text):
        return text.decode("ascii")
    return f"{len(val)} bytes"


def _disjoint(fields: list[Field], errors: list[str]) -> list[Field]:
    """Drop fields that overlap an earlier one (only hostile input produces them)."""
    out: list[Field] = []
    taken: list[Extent] = []
    for f in fields:
        if any(e.offset < t.end and t.offset < e.end for e in f.extents for t in taken):
            errors.append(f"field {f.name} overlaps another structure; dropped")
            continue
        out.append(f)
        taken.extend(f.extents)
    return out

"""Inodes of the decoded inode table: one decoder per inode type, and the inode nodes with their derived fields.

Every inode starts with ``squashfs_base_inode_header`` (``inode_type``, ``mode``, ``uid``/``guid`` indexes into
the id table, ``mtime``, ``inode_number``); the type selects the rest (:data:`DECODERS`): a regular file its data
block position, fragment and ``block_list``; a directory where its listing lives in the directory table; a symlink
its target; a device ``rdev``; extended types (``L*``) a ``nlink``, an ``xattr`` index and wider fields.

Which inode fields are derived (folded into the cause that determines them):

* positions: ``start_block`` of a file (the stored bytes written before its first data block), of a directory
  (the directory-table blocks before its listing), ``offset`` of a directory (the decoded listing bytes before it),
  ``fragment``/``offset`` of a file (the stored bytes up to its fragment block);
* sizes and counts: ``file_size``, ``sparse`` and ``block_list`` (the file's content and its compressed blocks),
  ``symlink_size`` (the target), a directory's ``file_size``, ``nlink`` and ``i_count``/index (its listing);
* ``parent_inode`` (the parent's ``inode_number``).

``mode``, ``uid``/``guid``, ``mtime``, ``inode_number``, ``rdev``, the symlink target and ``xattr`` are causes of
their own.

References:
    squashfs-tools 4.5.1 ``squashfs_fs.h`` (``squashfs_*_inode_header``, ``squashfs_file_blocks``,
    ``SQUASHFS_INVALID_FRAG``), ``mksquashfs.c`` ``create_inode`` (which fields it fills, extended types when
    ``nlink > 1``, an xattr, ``start_block``/``file_size`` over 4 GiB or sparse); Linux ``fs/squashfs/inode.c``
    ``squashfs_read_inode``.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imgdiff.formats.compiled import Compiled, Record, blob_value
from imgdiff.formats.squashfs import c_squashfs as cs
from imgdiff.model import POSITION, Derived, Extent, Field, Node, Value

C_BASE = Compiled(cs.squashfs_base_inode_header)
C_INODE: dict[int, Compiled] = {
    cs.SQUASHFS_DIR_TYPE: Compiled(cs.squashfs_dir_inode_header),
    cs.SQUASHFS_FILE_TYPE: Compiled(cs.squashfs_reg_inode_header),
    cs.SQUASHFS_SYMLINK_TYPE: Compiled(cs.squashfs_symlink_inode_header),
    cs.SQUASHFS_BLKDEV_TYPE: Compiled(cs.squashfs_dev_inode_header),
    cs.SQUASHFS_CHRDEV_TYPE: Compiled(cs.squashfs_dev_inode_header),
    cs.SQUASHFS_FIFO_TYPE: Compiled(cs.squashfs_ipc_inode_header),
    cs.SQUASHFS_SOCKET_TYPE: Compiled(cs.squashfs_ipc_inode_header),
    cs.SQUASHFS_LDIR_TYPE: Compiled(cs.squashfs_ldir_inode_header),
    cs.SQUASHFS_LREG_TYPE: Compiled(cs.squashfs_lreg_inode_header),
    cs.SQUASHFS_LSYMLINK_TYPE: Compiled(cs.squashfs_symlink_inode_header),
    cs.SQUASHFS_LBLKDEV_TYPE: Compiled(cs.squashfs_ldev_inode_header),
    cs.SQUASHFS_LCHRDEV_TYPE: Compiled(cs.squashfs_ldev_inode_header),
    cs.SQUASHFS_LFIFO_TYPE: Compiled(cs.squashfs_lipc_inode_header),
    cs.SQUASHFS_LSOCKET_TYPE: Compiled(cs.squashfs_lipc_inode_header),
}
C_DIR_INDEX = Compiled(cs.squashfs_dir_index)
MAX_FILE = 1 << 40
"""File size at most (1 TiB): larger ones are corrupt inodes (and would not fit a decoded-space slot)."""
MAX_BLOCKS = 1 << 26
"""Data blocks of one file at most (64 Mi blocks of 4 KiB is 256 GiB)."""
MAX_DIR_INDEX = 1 << 16


class InodeError(ValueError):
    """An inode that does not fit in the decoded inode table or has an unknown type."""


@dataclass(slots=True)
class Tail:
    """A variable-length part after an inode's fixed header (block list, symlink target, directory index)."""

    name: str
    off: int
    """Offset relative to the inode's start."""
    size: int
    value: Value
    display: str | None = None


@dataclass(slots=True)
class InodeRec:
    """One decoded inode: where it is in the decoded table, its header values and its variable parts."""

    off: int
    itype: int
    size: int
    vals: dict[str, int]
    tails: list[Tail] = field(default_factory=list)
    blocks: tuple[int, ...] = ()
    """A regular file's ``block_list`` size words."""
    target: bytes = b""

    @property
    def file_type(self) -> str:
        """Return ``dir``, ``reg``, ``lnk``, ... for the inode type."""
        return cs.FILE_TYPES.get(self.itype, "unknown")

    @property
    def fragment(self) -> int:
        """Return the fragment index of a regular file (``SQUASHFS_INVALID_FRAG`` when none)."""
        return self.vals.get("fragment", cs.SQUASHFS_INVALID_FRAG)

    @property
    def xattr(self) -> int:
        """Return the xattr id index (``SQUASHFS_INVALID_XATTR`` when none)."""
        return self.vals.get("xattr", cs.SQUASHFS_INVALID_XATTR)


Decoder = Callable[[bytes, int, int, int], InodeRec]
"""``(decoded inode table, offset, inode type, block_log) -> InodeRec``."""


def _fixed(data: bytes, off: int, itype: int) -> tuple[dict[str, int], int]:
    comp = C_INODE[itype]
    if off + comp.size > len(data):
        raise InodeError(f"inode at {off} runs past the end of the inode table")
    return comp.unpack(data, off), comp.size


def file_blocks(size: int, fragment: int, block_log: int) -> int:
    """Return the number of ``block_list`` words of a file (``squashfs_file_blocks``)."""
    bs = 1 << block_log
    if fragment == cs.SQUASHFS_INVALID_FRAG:
        return (size + bs - 1) >> block_log
    return size >> block_log


def _block_word(w: int) -> str:
    size = w & ~cs.SQUASHFS_COMPRESSED_BIT_BLOCK
    if size == 0:
        return "sparse"
    return f"{size} bytes, {'uncompressed' if w & cs.SQUASHFS_COMPRESSED_BIT_BLOCK else 'compressed'}"


def _reg(data: bytes, off: int, itype: int, block_log: int) -> InodeRec:
    vals, n = _fixed(data, off, itype)
    if vals["file_size"] > MAX_FILE:
        raise InodeError(f"inode at {off}: file_size {vals['file_size']} is implausible")
    count = file_blocks(vals["file_size"], vals["fragment"], block_log)
    if count > MAX_BLOCKS or off + n + 4 * count > len(data):
        raise InodeError(f"inode at {off}: block list of {count} blocks runs past the inode table")
    import struct

    words = struct.unpack_from(f"<{count}I", data, off + n) if count else ()
    rec = InodeRec(off, itype, n + 4 * count, vals, blocks=words)
    rec.tails = [Tail(f"block_list[{i}]", n + 4 * i, 4, w, _block_word(w)) for i, w in enumerate(words)]
    return rec


def _symlink(data: bytes, off: int, itype: int, block_log: int) -> InodeRec:
    vals, n = _fixed(data, off, itype)
    size = vals["symlink_size"]
    extra = 4 if itype == cs.SQUASHFS_LSYMLINK_TYPE else 0
    if off + n + size + extra > len(data):
        raise InodeError(f"inode at {off}: symlink target runs past the inode table")
    target = data[off + n : off + n + size]
    rec = InodeRec(off, itype, n + size + extra, vals, target=target)
    rec.tails = [Tail("symlink", n, size, target.decode("utf-8", "surrogateescape"))]
    if extra:
        x = int.from_bytes(data[off + n + size : off + n + size + 4], "little")
        rec.vals["xattr"] = x
        rec.tails.append(Tail("xattr", n + size, 4, x))
    return rec


def _ldir(data: bytes, off: int, itype: int, block_log: int) -> InodeRec:
    vals, n = _fixed(data, off, itype)
    pos = n
    tails: list[Tail] = []
    for i in range(min(vals["i_count"], MAX_DIR_INDEX)):
        if off + pos + C_DIR_INDEX.size > len(data):
            raise InodeError(f"inode at {off}: directory index runs past the inode table")
        ent = C_DIR_INDEX.unpack(data, off + pos)
        for name, o, s in (("index", 0, 4), ("start_block", 4, 4), ("size", 8, 4)):
            tails.append(Tail(f"index[{i}].{name}", pos + o, s, ent[name]))
        nlen = ent["size"] + 1
        raw = data[off + pos + 12 : off + pos + 12 + nlen]
        tails.append(Tail(f"index[{i}].name", pos + 12, nlen, raw.decode("utf-8", "surrogateescape")))
        pos += 12 + nlen
    return InodeRec(off, itype, pos, vals, tails)


def _plain(data: bytes, off: int, itype: int, block_log: int) -> InodeRec:
    vals, n = _fixed(data, off, itype)
    return InodeRec(off, itype, n, vals)


DECODERS: dict[int, Decoder] = {
    cs.SQUASHFS_DIR_TYPE: _plain,
    cs.SQUASHFS_FILE_TYPE: _reg,
    cs.SQUASHFS_SYMLINK_TYPE: _symlink,
    cs.SQUASHFS_BLKDEV_TYPE: _plain,
    cs.SQUASHFS_CHRDEV_TYPE: _plain,
    cs.SQUASHFS_FIFO_TYPE: _plain,
    cs.SQUASHFS_SOCKET_TYPE: _plain,
    cs.SQUASHFS_LDIR_TYPE: _ldir,
    cs.SQUASHFS_LREG_TYPE: _reg,
    cs.SQUASHFS_LSYMLINK_TYPE: _symlink,
    cs.SQUASHFS_LBLKDEV_TYPE: _plain,
    cs.SQUASHFS_LCHRDEV_TYPE: _plain,
    cs.SQUASHFS_LFIFO_TYPE: _plain,
    cs.SQUASHFS_LSOCKET_TYPE: _plain,
}
"""Inode type -> decoder of that inode."""


def decode_inode(data: bytes, off: int, block_log: int) -> InodeRec:
    """Return the inode at decoded offset ``off`` of the inode table ``data``."""
    if off + C_BASE.size > len(data):
        raise InodeError(f"inode at {off} runs past the end of the inode table")
    itype = int.from_bytes(data[off : off + 2], "little")
    dec = DECODERS.get(itype)
    if dec is None:
        raise InodeError(f"inode at {off} has unknown type {itype}")
    return dec(data, off, itype, block_log)


def _time(v: int) -> str:
    try:
        return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(v)


_S_IF = {"dir": stat.S_IFDIR, "reg": stat.S_IFREG, "lnk": stat.S_IFLNK, "blk": stat.S_IFBLK, "chr": stat.S_IFCHR,
         "fifo": stat.S_IFIFO, "sock": stat.S_IFSOCK}


def _mode_of(file_type: str) -> Callable[[int], str | None]:
    bits = _S_IF.get(file_type, 0)
    return lambda v: stat.filemode(bits | (v & 0o7777))


def _rdev(v: int) -> str:
    return f"{(v >> 8) & 0xFFF}:{(v & 0xFF) | ((v >> 12) & 0xFFF00)}"


INODE_TYPES = {
    1: "DIR", 2: "FILE", 3: "SYMLINK", 4: "BLKDEV", 5: "CHRDEV", 6: "FIFO", 7: "SOCKET",
    8: "LDIR", 9: "LREG", 10: "LSYMLINK", 11: "LBLKDEV", 12: "LCHRDEV", 13: "LFIFO", 14: "LSOCKET",
}
_DISPLAY: dict[str, Callable[[int], str | None]] = {
    "mtime": _time,
    "rdev": _rdev,
    "inode_type": lambda v: INODE_TYPES.get(v, "?"),
}


def _const(text: str) -> Callable[[int], str | None]:
    return lambda _v: text


_DISPLAYS: dict[tuple[str, str | None, str | None], dict[str, Callable[[int], str | None]]] = {}
"""The display mappings made so far, per (file type, uid text, guid text): a few owners and types cover every
inode of an image, and one mapping per inode was ~900 bytes (150 MB for 166,000 inodes of two images)."""


def _displays(file_type: str, uid: str | None, guid: str | None) -> dict[str, Callable[[int], str | None]]:
    """Return how an inode's members are shown (shared, never modified: :class:`Record` only reads it)."""
    key = (file_type, uid, guid)
    disp = _DISPLAYS.get(key)
    if disp is None:
        if len(_DISPLAYS) >= 4096:  # an image with thousands of owners: do not keep them all
            _DISPLAYS.clear()
        disp = dict(_DISPLAY)
        disp["mode"] = _mode_of(file_type)
        for name, text in (("uid", uid), ("guid", guid)):
            if text is not None:
                disp[name] = _const(text)
        _DISPLAYS[key] = disp
    return disp


@dataclass(slots=True)
class InodeCovers:
    """The extents that the derived fields of one inode depend on (computed by the parser, which knows the layout)."""

    content: tuple[Extent, ...] = ()
    """The file's decoded content (``file_size``, ``sparse``)."""
    blocks: tuple[Extent, ...] = ()
    """Decoded range of each data block (``block_list[i]``)."""
    start: tuple[Extent, ...] = ()
    """What ``start_block`` depends on (stored bytes before the data blocks, or the directory blocks before)."""
    fragment: tuple[Extent, ...] = ()
    """What ``fragment`` and a file's ``offset`` depend on."""
    listing: tuple[Extent, ...] = ()
    """A directory's decoded listing (``file_size``, ``nlink``, ``i_count``, index)."""
    dir_offset: tuple[Extent, ...] = ()
    """What a directory's ``offset`` depends on (decoded directory bytes before its listing)."""
    parent: tuple[Extent, ...] = ()
    """The parent directory's ``inode_number`` field."""
    uid: str | None = None
    guid: str | None = None


def inode_node(rec: InodeRec, table: bytes, base: int, key: str, label: str, attrs: dict[str, Value],
               cov: InodeCovers) -> Node:
    """Return the ``squashfs.inode`` node of ``rec`` (decoded inode table ``table`` opened at ``base``)."""
    comp = C_INODE[rec.itype]
    at = base + rec.off
    record = Record(comp, table[rec.off : rec.off + comp.size], at, display=_displays(rec.file_type, cov.uid, cov.guid))
    fields: list[Field] = []
    for t in rec.tails:
        fields.append(Field.at(t.name, t.value if not isinstance(t.value, bytes) else blob_value(t.value),
                               at + t.off, t.size, t.display))
    derived: list[Derived] = []
    is_dir = rec.file_type == "dir"
    is_reg = rec.file_type == "reg"

    def d(name: str, covers: tuple[Extent, ...]) -> None:
        if covers:
            derived.append(Derived(name, covers=covers))

    if is_reg:
        d("start_block", cov.start)
        d("file_size", cov.content)
        d("sparse", cov.content)
        d("fragment", cov.fragment)
        d("offset", cov.fragment)
        for i, e in enumerate(cov.blocks):
            d(f"block_list[{i}]", (e,))
    if is_dir:
        d("start_block", cov.start)
        d("offset", cov.dir_offset)
        d("file_size", cov.listing)
        d("nlink", cov.listing)
        d("parent_inode", cov.parent)
        d("i_count", cov.listing)
        for t in rec.tails:
            d(t.name, cov.listing + cov.start)
    if rec.off:
        derived.append(Derived(POSITION, covers=(Extent(base, rec.off),)))
    if rec.file_type == "lnk":
        d("symlink_size", (Extent(at + comp.size, max(1, len(rec.target))),))
    return Node(kind="squashfs.inode", key=key, label=label, extents=(Extent(at, rec.size),),
                fields=tuple(fields), record=record, derived=tuple(derived), attrs=attrs)

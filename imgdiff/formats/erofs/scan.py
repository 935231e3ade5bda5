"""The EROFS walk: every inode reachable from the root, where its bytes are, and every directory entry.

:func:`scan` follows directories from ``root_nid`` (bounded: inode count, depth, visited NIDs) and returns one
:class:`Inode` per NID with the byte ranges it owns: the inode core (32 or 64 bytes), the xattr ibody, the inline
tail or the chunk index / block map array, the slot padding up to the next 32-byte slot, and its data (file-order
pieces for uncompressed layouts; the compressed clusters for compressed ones, mapped by
:mod:`imgdiff.formats.erofs.zdata`).  Node building is left to :mod:`imgdiff.formats.erofs.nodes`.

References:
    erofs-utils lib/namei.c (``erofs_read_inode_from_disk``), lib/data.c (``erofs_map_blocks_flatmode``,
    ``erofs_map_blocks`` for chunk-based inodes), lib/dir.c (dirent block walk), include/erofs_fs.h (v1.5);
    Linux fs/erofs/inode.c, data.c, dir.c.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from imgdiff.formats.compiled import Compiled
from imgdiff.formats.erofs.c_erofs import (
    EROFS_CHUNK_FORMAT_BLKBITS_MASK,
    EROFS_CHUNK_FORMAT_INDEXES,
    EROFS_DIRENT,
    EROFS_INODE_CHUNK_BASED,
    EROFS_INODE_COMPACT,
    EROFS_INODE_EXTENDED,
    EROFS_INODE_FLAT_COMPRESSION,
    EROFS_INODE_FLAT_COMPRESSION_LEGACY,
    EROFS_INODE_FLAT_INLINE,
    EROFS_INODE_FLAT_PLAIN,
    EROFS_NULL_ADDR,
)
from imgdiff.model import Extent

COMPACT = Compiled(EROFS_INODE_COMPACT)
EXTENDED = Compiled(EROFS_INODE_EXTENDED)
DIRENT = Compiled(EROFS_DIRENT)
MAX_INODES = 4_000_000
MAX_DEPTH = 4096
MAX_DIR_BYTES = 256 << 20
S_IFMT = 0o170000
MODE_TYPES = {0o100000: "reg", 0o040000: "dir", 0o120000: "lnk", 0o020000: "chr", 0o060000: "blk",
              0o010000: "fifo", 0o140000: "sock"}


class Reader:
    """Reads of one region (offsets relative to the region start, absolute extents out)."""

    def __init__(self, read: object, base: int, size: int) -> None:
        self._read = read
        self.base = base
        self.size = size

    def read(self, off: int, n: int) -> bytes:
        """Return ``n`` bytes at region offset ``off`` (zero-padded past the region)."""
        if off < 0 or n <= 0:
            return b""
        n_in = max(0, min(n, self.size - off))
        data: bytes = self._read(self.base + off, n_in) if n_in else b""  # type: ignore[operator]
        return data + bytes(n - len(data))


@dataclass(slots=True)
class Dirent:
    """One directory entry: where its 12-byte record and its name are (region offsets)."""

    name: str
    nid: int
    file_type: int
    rec: int
    name_off: int
    name_len: int
    block: int
    """Index of the directory block (file-order) holding it."""


@dataclass(slots=True)
class DirBlock:
    """One directory block: its region extents (in file order), entries, and the unused tail."""

    index: int
    extents: list[Extent]
    entries: list[Dirent] = field(default_factory=list)
    tail: list[Extent] = field(default_factory=list)


@dataclass(slots=True)
class Inode:
    """One inode and everything it owns (region offsets)."""

    nid: int
    path: str
    loc: int
    extended: bool
    raw: dict[str, int | bytes]
    layout: int
    mode: int
    size: int
    isize: int
    xattr_size: int
    paths: list[str] = field(default_factory=list)
    data: list[tuple[int, Extent]] = field(default_factory=list)
    """``(file offset, region extent)`` pieces of the file's stored data, in file order."""
    slack: list[Extent] = field(default_factory=list)
    """Bytes of the data blocks past the end of the file."""
    index: Extent | None = None
    """The chunk index / block map array (chunk-based inodes)."""
    meta_end: int = 0
    """Region offset after the inode core, xattrs, inline data or indexes."""
    slot_pad: Extent | None = None
    dir_blocks: list[DirBlock] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    compressed: bool = False
    zinfo: object | None = None
    """The cluster map of a compressed inode (:class:`imgdiff.formats.erofs.zdata.ZInfo`)."""

    @property
    def file_type(self) -> str:
        """Return ``reg``, ``dir``, ``lnk``, ... from the mode."""
        return MODE_TYPES.get(self.mode & S_IFMT, "unknown")


@dataclass(slots=True)
class Fs:
    """What the walk found."""

    bs: int
    meta: int
    inodes: dict[int, Inode] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def read_inode(r: Reader, fs: Fs, nid: int, path: str) -> Inode:
    """Read the inode ``nid`` and locate its inline/index metadata and uncompressed data (raises ValueError)."""
    loc = fs.meta + nid * 32
    if loc + 32 > r.size:
        raise ValueError(f"inode {nid} lies past the end of the image")
    head = r.read(loc, 64)
    fmt = int.from_bytes(head[:2], "little")
    extended = bool(fmt & 1)
    comp = EXTENDED if extended else COMPACT
    raw = comp.unpack(head)
    layout = (fmt >> 1) & 7
    isize = 64 if extended else 32
    icount = int(raw["i_xattr_icount"])
    xsize = 12 + 4 * (icount - 1) if icount else 0
    ino = Inode(nid=nid, path=path, loc=loc, extended=extended, raw=raw, layout=layout, mode=int(raw["i_mode"]),
                size=int(raw["i_size"]), isize=isize, xattr_size=xsize, paths=[path])
    end = loc + isize + xsize
    bs = fs.bs
    size = ino.size
    ftype = ino.file_type
    if ftype in ("chr", "blk", "fifo", "sock"):
        ino.meta_end = end
        return ino
    if layout in (EROFS_INODE_FLAT_PLAIN, EROFS_INODE_FLAT_INLINE):
        start = int(raw["i_u"]) * bs
        full = size // bs if layout == EROFS_INODE_FLAT_INLINE else -(-size // bs)
        if full:
            if start + full * bs > r.size + bs:
                raise ValueError(f"inode {nid}: data blocks past the end of the image")
            stored = min(size, full * bs)
            ino.data.append((0, Extent(start, stored)))
            if full * bs > stored:
                ino.slack.append(Extent(start + stored, full * bs - stored))
        tail = size - full * bs if layout == EROFS_INODE_FLAT_INLINE else 0
        if tail > 0:
            ino.data.append((full * bs, Extent(end, tail)))
            end += tail
    elif layout == EROFS_INODE_CHUNK_BASED:
        cfmt = int(raw["i_u"]) & 0xFFFF
        chunkbits = fs.bs.bit_length() - 1 + (cfmt & EROFS_CHUNK_FORMAT_BLKBITS_MASK)
        chunk = 1 << chunkbits
        count = -(-size // chunk) if size else 0
        unit = 8 if cfmt & EROFS_CHUNK_FORMAT_INDEXES else 4
        pos = -(-end // unit) * unit
        if count > (r.size // unit) + 1:
            raise ValueError(f"inode {nid}: {count} chunks is not plausible")
        arr = r.read(pos, count * unit)
        for k in range(count):
            blk = int.from_bytes(arr[k * unit + (4 if unit == 8 else 0) : k * unit + unit], "little")
            n = min(chunk, size - k * chunk)
            if blk == EROFS_NULL_ADDR:
                continue
            ino.data.append((k * chunk, Extent(blk * bs, n)))
            used = -(-n // bs) * bs
            if used > n:
                ino.slack.append(Extent(blk * bs + n, used - n))
        if pos > end:
            ino.slot_pad = Extent(end, pos - end)
        ino.index = Extent(pos, count * unit)
        end = pos + count * unit
    elif layout in (EROFS_INODE_FLAT_COMPRESSION, EROFS_INODE_FLAT_COMPRESSION_LEGACY):
        ino.compressed = True
    else:
        ino.errors.append(f"inode {nid}: unknown data layout {layout}")
    ino.meta_end = end
    return ino


def scan(r: Reader, bs: int, meta: int, root_nid: int, map_compressed: object = None) -> Fs:
    """Walk the tree from the root directory; return every inode reached."""
    fs = Fs(bs=bs, meta=meta)
    todo: deque[tuple[int, str, int]] = deque([(root_nid, "/", 0)])
    while todo:
        nid, path, depth = todo.popleft()
        seen = fs.inodes.get(nid)
        if seen is not None:
            seen.paths.append(path)
            continue
        if len(fs.inodes) >= MAX_INODES:
            fs.errors.append(f"more than {MAX_INODES} inodes; the rest is not parsed")
            break
        try:
            ino = read_inode(r, fs, nid, path)
        except ValueError as exc:
            fs.errors.append(f"{path}: {exc}")
            continue
        fs.inodes[nid] = ino
        if ino.compressed and map_compressed is not None:
            map_compressed(r, fs, ino)  # type: ignore[operator]
        if ino.file_type != "dir" or ino.compressed:
            continue
        if depth >= MAX_DEPTH:
            fs.errors.append(f"{path}: directories nested deeper than {MAX_DEPTH}")
            continue
        _read_dir(r, fs, ino)
        for blk in ino.dir_blocks:
            for d in blk.entries:
                if d.name in (".", ".."):
                    continue
                child = path.rstrip("/") + "/" + d.name
                todo.append((d.nid, child, depth + 1))
    return fs


def _read_dir(r: Reader, fs: Fs, ino: Inode) -> None:
    """Split a directory's data into blocks and parse the entries of each."""
    bs = fs.bs
    if ino.size > MAX_DIR_BYTES:
        ino.errors.append(f"directory of {ino.size} bytes is not plausible")
        return
    # the directory's bytes as region extents in file order, cut at block boundaries
    pieces: list[tuple[int, Extent]] = []
    for foff, ext in ino.data:
        pos = 0
        while pos < ext.length:
            n = min(bs - (foff + pos) % bs, ext.length - pos)
            pieces.append((foff + pos, Extent(ext.offset + pos, n)))
            pos += n
    blocks: dict[int, list[Extent]] = {}
    for foff, ext in pieces:
        blocks.setdefault(foff // bs, []).append(ext)
    for index in sorted(blocks):
        exts = blocks[index]
        data = b"".join(r.read(e.offset, e.length) for e in exts)
        blk = DirBlock(index=index, extents=exts)
        ino.dir_blocks.append(blk)

        def at(k: int, exts: list[Extent] = exts) -> int:
            for e in exts:
                if k < e.length:
                    return e.offset + k
                k -= e.length
            return exts[-1].end + k

        if len(data) < 12:
            blk.tail = [Extent(at(0), len(data))] if data else []
            continue
        first = int.from_bytes(data[8:10], "little")
        count = first // 12
        if first % 12 or count == 0 or first > len(data):
            ino.errors.append(f"directory block {index}: nameoff {first} is not plausible")
            blk.tail = list(exts)
            continue
        recs = [DIRENT.unpack(data, 12 * i) for i in range(count)]
        end_used = first
        for i, rec in enumerate(recs):
            noff = int(rec["nameoff"])
            nend = int(recs[i + 1]["nameoff"]) if i + 1 < count else len(data)
            if not first <= noff <= nend <= len(data):
                ino.errors.append(f"directory block {index}: entry {i} name offset {noff} is not plausible")
                break
            raw = data[noff:nend]
            if i + 1 == count:
                cut = raw.find(b"\0")
                raw = raw if cut < 0 else raw[:cut]
                nend = noff + len(raw)
            name = raw.decode("utf-8", errors="surrogateescape")
            blk.entries.append(Dirent(name=name, nid=int(rec["nid"]), file_type=int(rec["file_type"]),
                                      rec=at(12 * i), name_off=at(noff), name_len=nend - noff, block=index))
            end_used = max(end_used, nend)
        if end_used < len(data):
            tail_start = at(end_used)
            blk.tail = [Extent(tail_start, len(data) - end_used)] if _contiguous(exts) else _split(exts, end_used)


def _contiguous(exts: list[Extent]) -> bool:
    return all(exts[i].end == exts[i + 1].offset for i in range(len(exts) - 1))


def _split(exts: list[Extent], skip: int) -> list[Extent]:
    out: list[Extent] = []
    for e in exts:
        if skip >= e.length:
            skip -= e.length
            continue
        out.append(Extent(e.offset + skip, e.length - skip))
        skip = 0
    return out

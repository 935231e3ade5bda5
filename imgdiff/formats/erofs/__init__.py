"""EROFS read-only filesystems (mkfs.erofs; systemd-repart and NixOS appliance images): every on-disk structure.

The superblock sits at byte 1024; inodes are 32-byte slots from ``meta_blkaddr`` (NID = slot number), compact
(32 bytes) or extended (64 bytes), each followed by its xattr ibody and, for the flat-inline layout, the file's
tail; directories are blocks of 12-byte ``erofs_dirent`` records followed by the names; file data are whole
blocks (flat layouts), chunks (chunk-based) or compressed physical clusters (:mod:`imgdiff.formats.erofs.zdata`,
decoded into a decoded space so that a content change is a content finding and a compression change is not).
What nothing refers to (the boot area, block slack, unused metadata slots) is owned by ``boot``/``unused`` fields.

Tree (keys in brackets)::

    erofs [erofs]                               boot (bytes 0..1023), unused (what nothing refers to)
      erofs.superblock [superblock]             magic .. reserved2 (erofs-utils 1.5 names); checksum derived
      erofs.inodes [inodes] -> erofs.inode [<path>]      core fields, h_* ibody, xattr:<name>, slot_padding
      erofs.dirs [dirs] -> erofs.dir [<path>] -> erofs.dir_block [blk:N] -> erofs.dirent [<name>]
      erofs.files [files] -> erofs.file [<path>]          data (content), slack; compressed: clusters + data
      erofs.xattrs [shared-xattrs]              xattr@<id>:<name>

``checksum`` (crc32c of the superblock block from byte 1024 with the checksum zeroed, when the sb_csum feature is
set) is declared :class:`~imgdiff.model.Derived` over what it covers; it is verified.

References:
    https://docs.kernel.org/filesystems/erofs.html; erofs-utils include/erofs_fs.h (v1.5), lib/namei.c,
    lib/data.c, lib/dir.c, lib/zmap.c, lib/decompress.c, mkfs/main.c (``erofs_mkfs_superblock_csum_set``:
    crc32c over ``EROFS_BLKSIZ - EROFS_SUPER_OFFSET`` bytes); Linux fs/erofs/erofs_fs.h, super.c
    (``erofs_superblock_csum_verify``).
"""

from __future__ import annotations

import uuid

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import Compiled, blob_value
from imgdiff.formats.erofs.c_erofs import (
    COMPAT_FEATURES,
    EROFS_FEATURE_COMPAT_SB_CHKSUM,
    EROFS_SUPER_BLOCK,
    EROFS_SUPER_MAGIC_V1,
    EROFS_SUPER_OFFSET,
    INCOMPAT_FEATURES,
)
from imgdiff.formats.erofs.nodes import EAGER, Builder, lazy_group
from imgdiff.formats.erofs.scan import Reader, scan
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents, subtract_extents

NAME = "erofs"

SB = Compiled(EROFS_SUPER_BLOCK)
_CRC32C: list[int] = []


def crc32c(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """Return the raw (not inverted) CRC32C of ``data`` from ``crc``, as erofs computes it (``~0`` seed)."""
    if not _CRC32C:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC32C.append(c)
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region has the EROFS magic at byte 1024."""
    return size >= 2048 and len(head) >= 1028 and int.from_bytes(head[1024:1028], "little") == EROFS_SUPER_MAGIC_V1


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("erofs superblock", "filesystem", bytes the superblock's block count says)`` whatever the size."""
    if len(head) < EROFS_SUPER_OFFSET + 128 or not recognizes(head, 1 << 62):
        return None
    sb = SB.unpack(head[EROFS_SUPER_OFFSET : EROFS_SUPER_OFFSET + 128])
    bits = int(sb["blkszbits"])
    return "erofs superblock", "filesystem", int(sb["blocks"]) << bits if 9 <= bits <= 16 else 0


def _flags(v: int, names: dict[int, str]) -> str:
    out = [n for bit, n in names.items() if v & bit]
    rest = v & ~sum(names)
    if rest:
        out.append(f"0x{rest:x}")
    return ",".join(out) or "none"


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``erofs`` node of ``[base, base + size)``."""
    sbraw = ctx.read(base + EROFS_SUPER_OFFSET, 128)
    sb = SB.unpack(sbraw)
    if sb["magic"] != EROFS_SUPER_MAGIC_V1:
        raise ParseError("no EROFS superblock", base + EROFS_SUPER_OFFSET, "magic")
    bits = int(sb["blkszbits"])
    if not 9 <= bits <= 16:
        raise ParseError(f"blkszbits {bits} is not plausible", base + EROFS_SUPER_OFFSET + 12, "blkszbits")
    bs = 1 << bits
    r = Reader(ctx.read, base, size)
    from imgdiff.formats.erofs import zdata

    fs = scan(r, bs, int(sb["meta_blkaddr"]) * bs, int(sb["root_nid"]), zdata.map_inode)
    root = Node(kind="erofs", key="erofs", label="erofs", extents=(Extent(base, size),),
                attrs={"scope": True, "fs": "erofs", "region": label, "block_size": bs,
                       "uuid": str(uuid.UUID(bytes=bytes(sb["uuid"]))), "build_time": int(sb["build_time"])})
    root.errors.extend(fs.errors)
    b = Builder(ctx, r, fs)
    b.xattr_base = int(sb["xattr_blkaddr"]) * bs
    b.zero_padding = bool(int(sb["feature_incompat"]) & 1)  # lz4_0padding
    root.children.append(_superblock(ctx, base, sbraw, sb, bs))
    owned: list[Extent] = [Extent(0, EROFS_SUPER_OFFSET), Extent(EROFS_SUPER_OFFSET, 128 + 16 * int(sb["sb_extslots"]))]
    eager = len(fs.inodes) <= EAGER
    data_exts: set[Extent] = set()
    inodes: list[Node] = []
    dirs: list[Node] = []
    files: list[Node] = []
    later_i: dict[str, object] = {}
    later_d: dict[str, object] = {}
    later_f: dict[str, object] = {}
    zspaces = zdata.Spaces(ctx, b, label)
    for ino in fs.inodes.values():
        iext = b.inode_extents(ino)
        owned.extend(iext)
        inode_node = None
        if eager or b.differs(iext) or ino.compressed:
            inode_node = b.inode(ino)
            inodes.append(inode_node)
        else:
            later_i[ino.path] = lambda ino=ino: b.inode(ino)
        if ino.file_type == "dir" and not ino.compressed:
            dext = [e for blk in ino.dir_blocks for e in blk.extents]
            owned.extend(dext)
            if eager or b.differs(dext):
                dirs.append(b.directory(ino))
            else:
                later_d[ino.path] = lambda ino=ino: b.directory(ino)
            continue
        if ino.compressed:
            fext = zspaces.stored_extents(ino)
            owned.extend(fext)
            fnode = zspaces.file(ino)
            files.append(fnode)
            data = fnode.field_named("data")
            if inode_node is not None and data is not None:
                # the cluster index and the compressed block count follow from the decoded data (and settings)
                inode_node.derived = (*inode_node.derived, Derived("z_erofs_indexes", covers=data.extents),
                                      Derived("i_u", covers=data.extents))
            continue
        fext = [e for _o, e in ino.data] + ino.slack
        owned.extend(fext)
        data_exts.update(fext)  # chunk-based files may share deduplicated chunks
        if not fext and ino.file_type not in ("reg", "lnk"):
            continue
        if eager or b.differs(fext):
            files.append(b.file(ino))
        else:
            later_f[ino.path] = lambda ino=ino: b.file(ino)
    root.children.append(lazy_group("erofs.inodes", "inodes", "inodes", inodes, later_i))  # type: ignore[arg-type]
    root.children.append(lazy_group("erofs.dirs", "dirs", "directories", dirs, later_d))  # type: ignore[arg-type]
    root.children.append(lazy_group("erofs.files", "files", "files", files, later_f))  # type: ignore[arg-type]
    for ino in fs.inodes.values():  # shared xattrs of inodes not built yet are owned too
        if ino.xattr_size:
            head = r.read(ino.loc + ino.isize, min(ino.xattr_size, 12 + 4 * 255))
            for k in range(head[4] if len(head) > 4 else 0):
                if 12 + 4 * k + 4 <= len(head):
                    b.shared_entry(int.from_bytes(head[12 + 4 * k : 16 + 4 * k], "little"))
    shared = b.shared_node()
    if shared is not None:
        root.children.append(shared)
        owned.extend(Extent(e.offset - base, e.length) for e in shared.extents)
    fields: list[Field] = []
    boot = ctx.read(base, EROFS_SUPER_OFFSET)
    fields.append(Field("boot", blob_value(boot), (Extent(base, EROFS_SUPER_OFFSET),),
                        "all zero" if not boot.strip(b"\0") else "non-zero"))
    merged = merge_extents(e for e in owned if e.length > 0)
    unused = [Extent(base + e.offset, e.length) for e in subtract_extents(Extent(0, size), merged, presorted=True)]
    meta = [e for e in owned if e.length > 0 and e not in data_exts]
    overlap = _overlaps(merge_extents(meta), meta)
    if overlap:
        root.errors.append(f"{overlap} byte(s) are claimed by two structures")
    if unused:
        fields.append(Field("unused", _unused_value(ctx, unused), tuple(unused),
                            f"{sum(e.length for e in unused)} bytes nothing refers to"))
    root.fields = tuple(fields)
    for n in [root, *inodes]:
        ctx.errors.extend(f"{label}: {m}" for m in n.errors)
    return root


def _overlaps(merged: tuple[Extent, ...], owned: list[Extent]) -> int:
    return sum(e.length for e in owned if e.length > 0) - sum(e.length for e in merged)


def _unused_value(ctx: ParseContext, exts: list[Extent]) -> Value:
    if not any(ctx.interesting(e) for e in exts):
        return None
    nz = 0
    for e in exts:
        pos = e.offset
        while pos < e.end:
            n = min(1 << 20, e.end - pos)
            chunk = ctx.read(pos, n)
            nz += n - chunk.count(0)
            pos += n
    return "zero" if not nz else f"{nz} non-zero bytes"


def _superblock(ctx: ParseContext, base: int, sbraw: bytes, sb: dict[str, object], bs: int) -> Node:
    off = base + EROFS_SUPER_OFFSET
    fields = SB.fields(sbraw, 0, off, decode={
        "uuid": lambda v: str(uuid.UUID(bytes=bytes(v))),
        "volume_name": lambda v: bytes(v).split(b"\0", 1)[0].decode("utf-8", "replace"),
    }, display={
        "feature_compat": lambda v: _flags(int(v), COMPAT_FEATURES),
        "feature_incompat": lambda v: _flags(int(v), INCOMPAT_FEATURES),
        "checksum": lambda v: f"0x{int(v):08x}",
        "build_time": lambda v: _date(int(v)),
    })
    node = Node(kind="erofs.superblock", key="superblock", label="superblock",
                extents=(Extent(off, 128 + 16 * int(sb["sb_extslots"])),), fields=tuple(fields))  # type: ignore[call-overload]
    extslots = int(sb["sb_extslots"])  # type: ignore[call-overload]
    if extslots:
        raw = ctx.read(off + 128, 16 * extslots)
        node.fields = (*node.fields, Field("sb_extslots_data", blob_value(raw), (Extent(off + 128, 16 * extslots),)))
    if int(sb["feature_compat"]) & EROFS_FEATURE_COMPAT_SB_CHKSUM:  # type: ignore[call-overload]
        span = bs - EROFS_SUPER_OFFSET
        block = bytearray(ctx.read(off, span))
        block[4:8] = bytes(4)
        ok = crc32c(bytes(block)) == int(sb["checksum"])  # type: ignore[call-overload]
        node.attrs["checksum_ok"] = ok
        if not ok:
            node.errors.append("superblock checksum does not match crc32c of the superblock block")
        node.derived = (Derived("checksum", covers=(Extent(off, 4), Extent(off + 8, span - 8))),)
    return node


def _date(v: int) -> str | None:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return None

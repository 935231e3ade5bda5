"""EROFS compressed files: the cluster index, the physical clusters, and the decoded data in a decoded space.

A compressed inode (``EROFS_INODE_FLAT_COMPRESSION``: compact 2B/4B indexes; ``..._LEGACY``: 8-byte
``z_erofs_vle_decompressed_index`` records) is followed, at the next 8-byte boundary, by a ``z_erofs_map_header``
and one index entry per logical cluster.  A HEAD or PLAIN logical cluster starts an extent at
``lcn << lclusterbits | clusterofs`` stored in the physical cluster ``blkaddr`` (one block, or ``compressedlcs``
blocks with big pclusters); the extent runs to the next head.  LZ4 clusters are zero-padded at the front
(``lz4_0padding``); MicroLZMA clusters start with the inverted LZMA properties byte; PLAIN clusters hold the data
as is.

A file whose stored clusters may differ is decoded into a decoded space of its own (``ctx.decoded_space``): its
``data`` field lies there (so content rules and nested images see the file's bytes), and each stored cluster is a
``pcluster:<k>`` field declared :class:`~imgdiff.model.Derived` over the decoded range it holds: a content change
takes its clusters with it, and clusters that differ over equal decoded data are a compression difference.

References:
    erofs-utils lib/zmap.c (v1.5: ``z_erofs_fill_inode_lazy``, ``legacy_load_cluster_from_disk``,
    ``unpack_compacted_index``, ``compacted_load_cluster_from_disk``), lib/decompress.c (``z_erofs_decompress``:
    LZ4 with zero padding, SHIFTED plain clusters, MicroLZMA), include/erofs_fs.h; Linux fs/erofs/zmap.c,
    decompressor.c, decompressor_lzma.c; xz-embedded xz_dec_microlzma (the MicroLZMA header).
"""

from __future__ import annotations

import hashlib
import lzma
from dataclasses import dataclass, field

from imgdiff.formats.base import ParseContext
from imgdiff.formats.erofs.c_erofs import (
    EROFS_INODE_FLAT_COMPRESSION,
    Z_EROFS_ADVISE_BIG_PCLUSTER_1,
    Z_EROFS_ADVISE_COMPACTED_2B,
    Z_EROFS_ADVISE_INLINE_PCLUSTER,
    Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD,
    Z_EROFS_VLE_DI_D0_CBLKCNT,
    Z_EROFS_VLE_LEGACY_HEADER_PADDING,
)
from imgdiff.formats.erofs.scan import Fs, Inode, Reader
from imgdiff.model import Derived, Extent, Field, Node, Value
from imgdiff.source import BytesSource

MAX_DECODED = 256 << 20
"""Decoded bytes per file at most (larger compressed files keep their clusters undecoded)."""
MAX_LCLUSTERS = 1 << 24
"""Logical clusters per file at most (64 GiB of 4 KiB clusters): a hostile i_size cannot make the walk hang."""


@dataclass(slots=True)
class Cluster:
    """One extent of a compressed file: logical ``[la, la + llen)`` stored in ``[pa, pa + plen)`` (region)."""

    la: int
    llen: int
    pa: int
    plen: int
    plain: bool


@dataclass(slots=True)
class ZInfo:
    """The map of one compressed inode."""

    header: Extent
    indexes: Extent
    algorithm: int
    advise: int
    clusters: list[Cluster] = field(default_factory=list)


def _bits(buf: bytes, pos: int, lobits: int) -> tuple[int, int]:
    """Return ``(lo, type)`` of the compacted entry at bit ``pos`` (little-endian 32-bit window)."""
    v = int.from_bytes(buf[pos // 8 : pos // 8 + 4].ljust(4, b"\0"), "little") >> (pos & 7)
    return v & ((1 << lobits) - 1), (v >> lobits) & 3


def _compacted(buf: bytes, amortized: int, i: int, lclusterbits: int, big: bool) -> tuple[int, int, int, int]:
    """Decode entry ``i`` of one compacted pack ``buf``: ``(type, clusterofs, pblk or -1, delta0/compressedlcs)``."""
    vcnt = 2 if amortized == 4 else 16
    encodebits = ((vcnt * amortized) - 4) * 8 // vcnt
    lo, typ = _bits(buf, encodebits * i, lclusterbits)
    if typ == Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD:
        return typ, 1 << lclusterbits, -1, lo
    nblk = 0 if big else 1
    j = i
    while j > 0:
        j -= 1
        lo2, t2 = _bits(buf, encodebits * j, lclusterbits)
        if not big:
            if t2 == Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD:
                j -= lo2
            if j >= 0:
                nblk += 1
        elif t2 == Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD:
            if lo2 & Z_EROFS_VLE_DI_D0_CBLKCNT:
                j -= 1
                nblk += lo2 & ~Z_EROFS_VLE_DI_D0_CBLKCNT
                continue
            j -= lo2 - 2
        else:
            nblk += 1
    base = int.from_bytes(buf[vcnt * amortized - 4 : vcnt * amortized], "little")
    return typ, lo, base + nblk, 0


def map_inode(r: Reader, fs: Fs, ino: Inode) -> None:
    """Locate a compressed inode's map header, index area and clusters (errors go to ``ino.errors``)."""
    bs = fs.bs
    hpos = -(-(ino.loc + ino.isize + ino.xattr_size) // 8) * 8
    h = r.read(hpos, 8)
    advise = int.from_bytes(h[4:6], "little")
    alg = h[6] & 15
    lclusterbits = bs.bit_length() - 1 + (h[7] & 7)
    lc = 1 << lclusterbits
    total = -(-ino.size // lc) if ino.size else 0
    if total > min(r.size // 2 + 16, MAX_LCLUSTERS):
        ino.errors.append(f"compressed inode {ino.nid}: {total} logical clusters is not plausible")
        ino.meta_end = hpos + 8
        return
    big = bool(advise & Z_EROFS_ADVISE_BIG_PCLUSTER_1)
    entries: list[tuple[int, int, int, int]] = []
    if ino.layout == EROFS_INODE_FLAT_COMPRESSION:
        ebase = hpos + 8
        initial = (32 - ebase % 32) // 4
        if initial == 8:
            initial = 0
        c2b = (total - initial) // 16 * 16 if advise & Z_EROFS_ADVISE_COMPACTED_2B and initial < total else 0
        initial = min(initial, total)
        rest = total - initial - c2b
        size = initial * 4 + c2b * 2 + (-(-rest // 2) * 2) * 4
        area = r.read(ebase, size)
        for lcn in range(total):
            if lcn < initial:
                amort, rel, k = 4, lcn, 0
            elif lcn < initial + c2b:
                amort, rel, k = 2, lcn - initial, initial * 4
            else:
                amort, rel, k = 4, lcn - initial - c2b, initial * 4 + c2b * 2
            vcnt = 2 if amort == 4 else 16
            pack = k + (rel // vcnt) * vcnt * amort
            entries.append(_compacted(area[pack : pack + vcnt * amort], amort, rel % vcnt, lclusterbits, big))
        ino.meta_end = ebase + size
        idx = Extent(ebase, size)
    else:
        ebase = hpos + 8 + Z_EROFS_VLE_LEGACY_HEADER_PADDING
        area = r.read(ebase, total * 8)
        for lcn in range(total):
            di = area[lcn * 8 : lcn * 8 + 8]
            adv = int.from_bytes(di[:2], "little")
            typ = adv & 3
            if typ == Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD:
                entries.append((typ, lc, -1, int.from_bytes(di[4:6], "little")))
            else:
                entries.append((typ, int.from_bytes(di[2:4], "little"), int.from_bytes(di[4:8], "little"), 0))
        ino.meta_end = ebase + total * 8
        idx = Extent(hpos + 8, ino.meta_end - hpos - 8)
    info = ZInfo(header=Extent(hpos, 8), indexes=idx, algorithm=alg, advise=advise)
    tail = int.from_bytes(h[2:4], "little") if advise & Z_EROFS_ADVISE_INLINE_PCLUSTER else 0
    heads = [(lcn, e) for lcn, e in enumerate(entries) if e[0] != Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD]
    last = max((n for n, (lcn, e) in enumerate(heads) if lcn * lc + e[1] < ino.size), default=-1)
    for n, (lcn, (typ, ofs, pblk, _d)) in enumerate(heads):
        la = lcn * lc + ofs
        if la >= ino.size:
            continue
        nxt = heads[n + 1][0] * lc + heads[n + 1][1][1] if n + 1 < len(heads) else ino.size
        plen_blocks = 1
        if big and lcn + 1 < total and entries[lcn + 1][0] == Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD:
            d0 = entries[lcn + 1][3]
            if d0 & Z_EROFS_VLE_DI_D0_CBLKCNT:
                plen_blocks = max(1, d0 & ~Z_EROFS_VLE_DI_D0_CBLKCNT)
        pa, plen = pblk * bs, plen_blocks * bs
        if tail and n == last:  # ztailpacking: the last cluster follows the indexes in the inode
            pa, plen = ino.meta_end, tail
            ino.meta_end += tail
        elif pa + plen > r.size or nxt <= la:
            ino.errors.append(f"compressed inode {ino.nid}: cluster at lcn {lcn} is not plausible")
            continue
        info.clusters.append(Cluster(la=la, llen=min(nxt, ino.size) - la, pa=pa, plen=plen, plain=typ == 0))
    ino.zinfo = info


def decode_cluster(raw: bytes, c: Cluster, algorithm: int, zero_padding: bool) -> bytes:
    """Return the decoded bytes of one physical cluster (raises ValueError when it does not decode)."""
    if c.plain:
        return raw[: c.llen]
    if algorithm == 0:
        import lz4.block

        src = raw.lstrip(b"\0") if zero_padding else raw
        try:
            out: bytes = lz4.block.decompress(src, uncompressed_size=c.llen)
        except lz4.block.LZ4BlockError as exc:
            raise ValueError(f"lz4: {exc}") from None
        return out
    if algorithm == 1:
        src = raw.lstrip(b"\0")
        if not src:
            raise ValueError("lzma: empty cluster")
        props = (~src[0]) & 0xFF
        if props >= 9 * 5 * 5:
            raise ValueError("lzma: bad MicroLZMA properties byte")
        lc, lp, pb = props % 9, (props // 9) % 5, props // 45
        if lc + lp > 4:
            raise ValueError("lzma: lc + lp > 4 in the MicroLZMA properties byte")
        try:
            dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
                {"id": lzma.FILTER_LZMA1, "dict_size": 8 << 20, "lc": lc, "lp": lp, "pb": pb}])
            return dec.decompress(b"\0" + src[1:], max_length=c.llen)
        except lzma.LZMAError as exc:
            raise ValueError(f"lzma: {exc}") from None
    raise ValueError(f"compression algorithm {algorithm} is not supported")


class Spaces:
    """Builds the nodes of compressed files, decoding those whose clusters may differ into decoded spaces."""

    def __init__(self, ctx: ParseContext, builder: object, label: str) -> None:
        self.ctx = ctx
        self.b = builder
        self.label = label

    def stored_extents(self, ino: Inode) -> list[Extent]:
        """Return the region extents of a compressed file's physical clusters."""
        info = ino.zinfo if isinstance(ino.zinfo, ZInfo) else None
        return [Extent(c.pa, c.plen) for c in info.clusters] if info else []

    def file(self, ino: Inode) -> Node:
        """Return the ``erofs.file`` node of a compressed file."""
        b = self.b
        info = ino.zinfo if isinstance(ino.zinfo, ZInfo) else None
        attrs: dict[str, Value] = {"path": ino.path, "file_type": ino.file_type, "size": ino.size, "nid": ino.nid,
                                   "compressed": True}
        node = Node(kind="erofs.file", key=ino.path, label=f"file data of {ino.path}", attrs=attrs)
        if info is None:
            return node
        base = b.base  # type: ignore[attr-defined]
        stored = [Extent(base + c.pa, c.plen) for c in info.clusters]
        node.extents = tuple(stored)
        attrs["algorithm"] = {0: "lz4", 1: "lzma"}.get(info.algorithm, str(info.algorithm))
        differs = any(self.ctx.interesting(e) for e in stored)
        decoded: bytes | None = None
        if differs and ino.size > MAX_DECODED:
            node.errors.append(f"{ino.path}: {ino.size} bytes: larger than {MAX_DECODED}, not decoded")
        if differs and ino.size <= MAX_DECODED:
            zero = bool(getattr(b, "zero_padding", True))
            parts = bytearray(ino.size)
            try:
                for c in info.clusters:
                    raw = self.ctx.read(base + c.pa, c.plen)
                    out = decode_cluster(raw, c, info.algorithm, zero)
                    parts[c.la : c.la + len(out)] = out[: c.llen]
                decoded = bytes(parts)
            except ValueError as exc:
                node.errors.append(f"{ino.path}: not decoded: {exc}")
                self.ctx.errors.append(f"{self.label}: {ino.path}: not decoded: {exc}")
        fields: list[Field] = []
        derived: list[Derived] = []
        space = None
        if decoded is not None:
            space = self.ctx.decoded_space(ino.path, BytesSource(decoded), self.label)
            data = Extent(space, len(decoded))
            value: Value = decoded if len(decoded) <= 64 else "sha256:" + hashlib.sha256(decoded).hexdigest()[:16]
            if ino.file_type == "lnk":
                fields.append(Field("data", decoded.decode("utf-8", "surrogateescape"), (data,), "symlink target"))
            else:
                fields.append(Field("data", value, (data,), f"{ino.size} bytes, decoded"))
                attrs["content"] = True
            node.extents = (*stored, data)
        for k, (c, ext) in enumerate(zip(info.clusters, stored, strict=True)):
            name = f"pcluster:{k}"
            raw_v: Value = None
            if differs:
                raw_v = "sha256:" + hashlib.sha256(self.ctx.read(ext.offset, ext.length)).hexdigest()[:16]
            fields.append(Field(name, raw_v, (ext,), f"{c.plen} bytes {'plain' if c.plain else 'compressed'} "
                                                     f"for file bytes {c.la}..{c.la + c.llen - 1}"))
            if space is not None:
                derived.append(Derived(name, covers=(Extent(space + c.la, c.llen),)))
        node.fields = tuple(fields)
        node.derived = tuple(derived)
        return node

"""Compressed files: gzip member header, xz stream and block header, zstd frame header, and their payloads.

Header fields are named where the specifications name them (RFC 1952 ``FLG MTIME XFL OS FEXTRA FNAME FCOMMENT
FHCRC``; the xz file format's ``Stream Flags`` and ``Block Header``; RFC 8878's ``Frame_Header_Descriptor
Window_Descriptor Dictionary_ID Frame_Content_Size``).  When the whole file is in the inspected head the payload
is compared too (gzip and xz with the standard library; zstd only bytewise, as Python 3.11 has no zstd decoder):

* the same payload compressed differently, or the same compressed stream moved by a longer header, is one
  ``compressed data`` field covering the rest of the file;
* a payload that is a cpio newc archive differing only in member header fields or member order is one
  ``content.cpio`` field covering the compressed bytes (an initrd whose mtimes were not clamped);
* anything else is left to the file-level difference, which lists the differing byte ranges.

Files larger than the head (:data:`imgdiff.content.INSPECT_BYTES`) get their header fields only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from imgdiff.content import cpio as content_cpio
from imgdiff.content.common import ContentField, Recognizer, gunzip, unxz, utc, whole

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_OS = {
    0: "FAT filesystem (MS-DOS, Windows)", 1: "Amiga", 2: "VMS", 3: "Unix", 4: "VM/CMS", 5: "Atari TOS",
    6: "HPFS", 7: "Macintosh", 8: "Z-System", 9: "CP/M", 10: "TOPS-20", 11: "NTFS", 12: "QDOS",
    13: "Acorn RISCOS", 255: "unknown",
}
GZIP_FLAGS = ((0x01, "FTEXT"), (0x02, "FHCRC"), (0x04, "FEXTRA"), (0x08, "FNAME"), (0x10, "FCOMMENT"))
XZ_CHECKS = {0: "none", 1: "CRC32", 4: "CRC64", 10: "SHA-256"}
XZ_FILTERS = {0x21: "LZMA2", 0x03: "delta", 0x04: "BCJ x86", 0x05: "BCJ PowerPC", 0x06: "BCJ IA-64",
              0x07: "BCJ ARM", 0x08: "BCJ ARM-Thumb", 0x09: "BCJ SPARC", 0x0A: "BCJ ARM64"}


def _size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


# -- payloads -------------------------------------------------------------------------------------------------------


def payload_fields(
    kind: str, pa: bytes | None, pb: bytes | None, start: int, stop: int, base: int
) -> list[ContentField]:
    """Return the field for compressed bytes ``[start, stop)`` whose payloads are ``pa`` and ``pb``."""
    if pa is None or pb is None or stop <= start:
        return []
    if pa == pb:
        return [
            ContentField(
                kind, "compressed data", base + start, stop - start, len(pa), len(pb),
                f"same {len(pa)}-byte payload, compressed differently", f"same {len(pb)}-byte payload",
            )
        ]
    if content_cpio.is_cpio(pa) and content_cpio.is_cpio(pb):
        cmp = content_cpio.compare(pa, pb)
        if cmp.explained and cmp.fields:
            names = sorted({f.field for f in cmp.fields})
            name = "member order" if "member order" in names else ",".join(names)
            first = cmp.fields[0]
            more = f" (+{len(cmp.fields) - 1} more field(s))" if len(cmp.fields) > 1 else ""
            return [
                ContentField(
                    "content.cpio", name, base + start, stop - start, first.a, first.b,
                    f"in the {kind.split('.', 1)[1]}-compressed cpio: {first.display_a}{more}",
                    f"{first.display_b}",
                )
            ]
    return []


def _moved(kind: str, a: bytes, b: bytes, ha: int, hb: int, base: int, what: str) -> list[ContentField]:
    """Return a ``compressed data`` field when the bytes after two headers of different lengths are identical."""
    if ha == hb or a[ha:] != b[hb:]:
        return []
    start, stop = max(ha, hb), max(len(a), len(b))
    if stop <= start:
        return []
    return [
        ContentField(
            kind, "compressed data", base + start, stop - start, len(a) - ha, len(b) - hb,
            f"identical {what}, moved by {hb - ha:+d} bytes by the header", f"identical {what}",
        )
    ]


# -- gzip -------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class GzipHeader:
    """A parsed gzip member header: the fixed fields and the optional parts with their byte ranges."""

    flg: int
    mtime: int
    xfl: int
    os: int
    parts: dict[str, tuple[int, int, str | int]]
    end: int


def gzip_header(buf: bytes) -> GzipHeader:
    """Parse the member header at the start of ``buf`` (raises ValueError when truncated or not gzip)."""
    if buf[:2] != GZIP_MAGIC or len(buf) < 10 or buf[2] != 8:
        raise ValueError("not a deflate gzip member")
    flg, mtime, xfl, os_ = buf[3], struct.unpack_from("<I", buf, 4)[0], buf[8], buf[9]
    pos = 10
    parts: dict[str, tuple[int, int, str | int]] = {}
    if flg & 0x04:
        (xlen,) = struct.unpack_from("<H", buf, pos)
        parts["FEXTRA"] = (pos, pos + 2 + xlen, buf[pos + 2 : pos + 2 + xlen].hex())
        pos += 2 + xlen
    for bit, name in ((0x08, "FNAME"), (0x10, "FCOMMENT")):
        if flg & bit:
            end = buf.index(b"\0", pos)
            parts[name] = (pos, end + 1, buf[pos:end].decode("latin-1"))
            pos = end + 1
    if flg & 0x02:
        parts["FHCRC"] = (pos, pos + 2, struct.unpack_from("<H", buf, pos)[0])
        pos += 2
    if pos > len(buf):
        raise ValueError("truncated gzip header")
    return GzipHeader(flg, mtime, xfl, os_, parts, pos)


def _flags(flg: int) -> str:
    names = [n for bit, n in GZIP_FLAGS if flg & bit]
    return "|".join(names) if names else "none"


def _mtime(v: int) -> str:
    return "0 (no time stored)" if v == 0 else utc(v)


def _xfl(v: int) -> str:
    return {0: "0 (default)", 2: "2 (slowest, best compression)", 4: "4 (fastest)"}.get(v, str(v))


def gzip_fields(a: bytes, b: bytes, base: int, full: bool) -> list[ContentField]:
    """Return the differing fields of two gzip files (``full`` when both are entirely in ``a`` and ``b``)."""
    ha, hb = gzip_header(a), gzip_header(b)
    out: list[ContentField] = []

    def fixed(name: str, off: int, size: int, va: int, vb: int, show: Callable[[int], str]) -> None:
        if va != vb:
            out.append(ContentField("content.gzip", name, base + off, size, va, vb, show(va), show(vb)))

    fixed("FLG", 3, 1, ha.flg, hb.flg, _flags)
    fixed("MTIME", 4, 4, ha.mtime, hb.mtime, _mtime)
    fixed("XFL", 8, 1, ha.xfl, hb.xfl, _xfl)
    fixed("OS", 9, 1, ha.os, hb.os, lambda v: f"{v} ({GZIP_OS.get(v, 'undefined')})")
    for name in ("FEXTRA", "FNAME", "FCOMMENT", "FHCRC"):
        pa, pb = ha.parts.get(name), hb.parts.get(name)
        if pa is None and pb is None:
            continue
        if pa is not None and pb is not None and pa == pb:
            continue
        spans = [p for p in (pa, pb) if p is not None]
        start, stop = min(s for s, _e, _v in spans), max(e for _s, e, _v in spans)
        va = pa[2] if pa else None
        vb = pb[2] if pb else None
        out.append(
            ContentField(
                "content.gzip", name, base + start, stop - start, va, vb,
                "absent" if pa is None else None, "absent" if pb is None else None,
            )
        )
    if full:
        start = max(ha.end, hb.end)
        moved = _moved("content.gzip", a, b, ha.end, hb.end, base, "deflate stream and trailer")
        if moved:
            out.extend(moved)
        elif a[ha.end :] != b[hb.end :]:
            out.extend(payload_fields("content.gzip", gunzip(a), gunzip(b), start, max(len(a), len(b)), base))
    return out


def gzip(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """gzip (RFC 1952) member header, and the payload when the whole file is visible."""
    del path
    if head_a[:2] != GZIP_MAGIC or head_b[:2] != GZIP_MAGIC:
        return []
    return gzip_fields(head_a, head_b, 0, whole(head_a, size_a) and whole(head_b, size_b))


# -- xz ---------------------------------------------------------------------------------------------------------------


def _vli(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode an xz variable-length integer at ``pos``; return (value, next position)."""
    value = 0
    for i in range(9):
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError("xz VLI longer than 9 bytes")


@dataclass(slots=True)
class XzBlockHeader:
    """The first block header of an xz stream."""

    size: int
    compressed: int | None
    uncompressed: int | None
    filters: list[str]

    def text(self) -> str:
        """Return a human description: recorded sizes and the filter chain."""
        if self.compressed is None and self.uncompressed is None:
            sizes = "no sizes recorded (single-threaded xz)"
        else:
            parts = []
            if self.compressed is not None:
                parts.append(f"compressed {self.compressed}")
            if self.uncompressed is not None:
                parts.append(f"uncompressed {self.uncompressed}")
            sizes = "sizes recorded: " + ", ".join(parts) + " (multi-threaded xz)"
        return f"{sizes}; filters {' + '.join(self.filters)}"


def xz_block_header(buf: bytes, pos: int) -> XzBlockHeader | None:
    """Parse the block header at ``pos`` (None for an empty stream, whose index follows the stream header)."""
    if buf[pos] == 0:
        return None
    size = (buf[pos] + 1) * 4
    flags = buf[pos + 1]
    p = pos + 2
    comp = unc = None
    if flags & 0x40:
        comp, p = _vli(buf, p)
    if flags & 0x80:
        unc, p = _vli(buf, p)
    filters = []
    for _ in range((flags & 3) + 1):
        fid, p = _vli(buf, p)
        psize, p = _vli(buf, p)
        props = buf[p : p + psize]
        p += psize
        name = XZ_FILTERS.get(fid, f"0x{fid:x}")
        if fid == 0x21 and props:
            bits = props[0] & 0x3F
            dict_size = 0xFFFFFFFF if bits == 40 else (2 | (bits & 1)) << (bits // 2 + 11)
            name += f" (dictionary {_size_text(dict_size)})"
        filters.append(name)
    if p > pos + size:
        raise ValueError("xz block header overruns its size")
    return XzBlockHeader(size, comp, unc, filters)


def xz_blocks(buf: bytes) -> int | None:
    """Return the number of blocks of the (single) stream that fills ``buf``, from its index, or None."""
    if len(buf) < 24 or buf[-2:] != b"YZ":
        return None
    backward = (struct.unpack_from("<I", buf, len(buf) - 8)[0] + 1) * 4
    index = len(buf) - 12 - backward
    if index < 12 or buf[index] != 0:
        return None
    count, _ = _vli(buf, index + 1)
    return count


def xz_fields(a: bytes, b: bytes, base: int, full: bool) -> list[ContentField]:
    """Return the differing fields of two xz files."""
    if a[:6] != XZ_MAGIC or b[:6] != XZ_MAGIC or len(a) < 13 or len(b) < 13:
        raise ValueError("not xz")
    out: list[ContentField] = []
    if a[6:12] != b[6:12]:
        ca, cb = a[7] & 0x0F, b[7] & 0x0F
        out.append(
            ContentField(
                "content.xz", "Stream Flags", base + 6, 6, ca, cb,
                f"check {XZ_CHECKS.get(ca, ca)}", f"check {XZ_CHECKS.get(cb, cb)}",
            )
        )
    ba, bb = xz_block_header(a, 12), xz_block_header(b, 12)
    sa = ba.size if ba else 0
    sb = bb.size if bb else 0
    if a[12 : 12 + sa] != b[12 : 12 + sb] and (ba or bb):
        out.append(
            ContentField(
                "content.xz", "Block Header", base + 12, max(sa, sb),
                a[12 : 12 + sa].hex(), b[12 : 12 + sb].hex(),
                ba.text() if ba else "no block (empty stream)", bb.text() if bb else "no block (empty stream)",
            )
        )
    if full:
        start, stop = 12 + max(sa, sb), max(len(a), len(b))
        if a[12 + sa :] != b[12 + sb :]:
            pa, pb = unxz(a), unxz(b)
            fields = payload_fields("content.xz", pa, pb, start, stop, base)
            na, nb = xz_blocks(a), xz_blocks(b)
            if fields and fields[0].field == "compressed data" and na is not None and nb is not None:
                f = fields[0]
                fields[0] = ContentField(
                    f.kind, f.field, f.offset, f.size, f.a, f.b,
                    f"{f.display_a}: {na} block(s)", f"{f.display_b}: {nb} block(s)",
                )
            out.extend(fields)
    return out


def xz(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """xz stream header, first block header, and the payload when the whole file is visible."""
    del path
    if head_a[:6] != XZ_MAGIC or head_b[:6] != XZ_MAGIC:
        return []
    return xz_fields(head_a, head_b, 0, whole(head_a, size_a) and whole(head_b, size_b))


# -- zstd -------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ZstdFrameHeader:
    """A parsed zstd frame header (RFC 8878 section 3.1.1.1)."""

    fhd: int
    window: int | None
    dict_id: int | None
    content_size: int | None
    end: int
    offsets: dict[str, tuple[int, int]]

    def text(self) -> str:
        """Return a human description of the header."""
        parts = [f"content size {self.content_size}" if self.content_size is not None else "content size not recorded"]
        parts.append("single segment" if self.fhd & 0x20 else f"window {_size_text(self.window or 0)}")
        if self.dict_id:
            parts.append(f"dictionary {self.dict_id}")
        parts.append("checksum" if self.fhd & 0x04 else "no checksum")
        return ", ".join(parts)


def zstd_header(buf: bytes) -> ZstdFrameHeader:
    """Parse the frame header at the start of ``buf``."""
    if buf[:4] != ZSTD_MAGIC or len(buf) < 6:
        raise ValueError("not a zstd frame")
    fhd = buf[4]
    single = bool(fhd & 0x20)
    pos = 5
    offsets: dict[str, tuple[int, int]] = {}
    window = None
    if not single:
        w = buf[pos]
        log = 10 + (w >> 3)
        window = (1 << log) + ((1 << log) >> 3) * (w & 7)
        offsets["Window_Descriptor"] = (pos, 1)
        pos += 1
    did_size = (0, 1, 2, 4)[fhd & 3]
    dict_id = int.from_bytes(buf[pos : pos + did_size], "little") if did_size else None
    if did_size:
        offsets["Dictionary_ID"] = (pos, did_size)
    pos += did_size
    fcs_size = ((1 if single else 0), 2, 4, 8)[fhd >> 6]
    content = None
    if fcs_size:
        content = int.from_bytes(buf[pos : pos + fcs_size], "little") + (256 if fcs_size == 2 else 0)
        offsets["Frame_Content_Size"] = (pos, fcs_size)
    pos += fcs_size
    if pos > len(buf):
        raise ValueError("truncated zstd frame header")
    if single:
        window = content
    return ZstdFrameHeader(fhd, window, dict_id, content, pos, offsets)


def _skippable(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[1:4] == b"\x2a\x4d\x18" and buf[0] & 0xF0 == 0x50


def zstd_fields(a: bytes, b: bytes, base: int, full: bool) -> list[ContentField]:
    """Return the differing fields of two zstd files (the first frame's header; moved blocks when visible)."""
    if _skippable(a) or _skippable(b):
        la = 8 + struct.unpack_from("<I", a, 4)[0] if _skippable(a) else 0
        lb = 8 + struct.unpack_from("<I", b, 4)[0] if _skippable(b) else 0
        if a[:la] == b[:lb]:
            return []
        return [
            ContentField(
                "content.zstd", "Skippable_Frame", base, max(la, lb), a[:la][:16].hex(), b[:lb][:16].hex(),
                f"{la} bytes" if la else "absent", f"{lb} bytes" if lb else "absent",
            )
        ]
    ha, hb = zstd_header(a), zstd_header(b)
    out: list[ContentField] = []
    if ha.fhd != hb.fhd:
        stop = max(ha.end, hb.end)
        out.append(
            ContentField("content.zstd", "Frame_Header_Descriptor", base + 4, stop - 4, ha.fhd, hb.fhd, ha.text(), hb.text())
        )
    else:
        values = {"Window_Descriptor": (ha.window, hb.window), "Dictionary_ID": (ha.dict_id, hb.dict_id),
                  "Frame_Content_Size": (ha.content_size, hb.content_size)}
        for name, (off, size) in ha.offsets.items():
            va, vb = values[name]
            if va != vb:
                out.append(ContentField("content.zstd", name, base + off, size, va, vb, ha.text(), hb.text()))
    if full:
        out.extend(_moved("content.zstd", a, b, ha.end, hb.end, base, "compressed blocks"))
    return out


def zstd(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """zstd frame header (and identical blocks moved by a header of another length)."""
    del path
    za = head_a[:4] == ZSTD_MAGIC or _skippable(head_a)
    zb = head_b[:4] == ZSTD_MAGIC or _skippable(head_b)
    if not (za and zb):
        return []
    return zstd_fields(head_a, head_b, 0, whole(head_a, size_a) and whole(head_b, size_b))


# -- embedded streams (after an uncompressed cpio archive) ---------------------------------------------------------


def embedded(a: bytes, b: bytes, base: int, full: bool) -> list[ContentField]:
    """Return the fields of a compressed stream that starts at file offset ``base`` in both versions."""
    if a[:2] == GZIP_MAGIC and b[:2] == GZIP_MAGIC:
        return gzip_fields(a, b, base, full)
    if a[:6] == XZ_MAGIC and b[:6] == XZ_MAGIC:
        return xz_fields(a, b, base, full)
    if a[:4] == ZSTD_MAGIC and b[:4] == ZSTD_MAGIC:
        return zstd_fields(a, b, base, full)
    return []


RECOGNIZERS: tuple[Recognizer, ...] = (gzip, xz, zstd)
"""The recognisers of this module, in the order :func:`imgdiff.content.inspect` runs them."""

"""PE/COFF images (EFI applications, unified kernel images, boot loaders on the ESP).

Named fields (Microsoft PE format specification): the COFF header ``TimeDateStamp`` (``e_lfanew + 8``), the
optional header ``CheckSum`` (optional header + 64), the ``Certificate Table`` data directory entry (index 4: a
file offset and size) and the Authenticode ``WIN_CERTIFICATE`` it points to, whose PKCS#7 authenticated
attributes hold the ``signingTime``; and the ``TimeDateStamp`` of each debug directory entry.

The certificate table sits at the end of the file, so it is only compared when it lies inside the inspected head
(small EFI binaries; not a 40 MiB UKI, whose signature then stays in the file-level difference).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from imgdiff.content.common import ContentField, Recognizer, utc

SIGNING_TIME_OID = bytes.fromhex("06092a864886f70d010905")
"""DER of OID 1.2.840.113549.1.9.5 (pkcs-9 signingTime)."""


@dataclass(slots=True)
class PeHeaders:
    """Offsets and values of the fields this module compares."""

    coff: int
    timestamp: int
    checksum_off: int
    checksum: int
    cert_dir_off: int | None
    cert: tuple[int, int] | None
    debug: list[tuple[int, int]]
    """(file offset of the debug entry's TimeDateStamp, value)."""


def pe_headers(buf: bytes) -> PeHeaders:
    """Parse the headers of a PE image in ``buf`` (raises ValueError when it is not one)."""
    if buf[:2] != b"MZ" or len(buf) < 0x40:
        raise ValueError("no MZ header")
    (lfanew,) = struct.unpack_from("<I", buf, 0x3C)
    if buf[lfanew : lfanew + 4] != b"PE\0\0":
        raise ValueError("no PE signature")
    coff = lfanew + 4
    _machine, nsect, timestamp, _sym, _nsym, opt_size, _chars = struct.unpack_from("<HHIIIHH", buf, coff)
    opt = coff + 20
    (magic,) = struct.unpack_from("<H", buf, opt)
    if magic == 0x10B:
        dd, nrva_off = opt + 96, opt + 92
    elif magic == 0x20B:
        dd, nrva_off = opt + 112, opt + 108
    else:
        raise ValueError(f"unknown optional header magic 0x{magic:x}")
    (checksum,) = struct.unpack_from("<I", buf, opt + 64)
    (nrva,) = struct.unpack_from("<I", buf, nrva_off)
    cert_dir_off = cert = None
    if nrva > 4:
        cert_dir_off = dd + 4 * 8
        off, size = struct.unpack_from("<II", buf, cert_dir_off)
        cert = (off, size) if off and size else None
    sections = []
    sect = opt + opt_size
    for i in range(min(nsect, 96)):
        _name, vsize, vaddr, rawsize, rawptr = struct.unpack_from("<8sIIII", buf, sect + 40 * i)
        sections.append((vaddr, max(vsize, rawsize), rawptr))
    debug: list[tuple[int, int]] = []
    if nrva > 6:
        rva, size = struct.unpack_from("<II", buf, dd + 6 * 8)
        fo = _rva_to_offset(sections, rva) if rva and size else None
        if fo is not None:
            for i in range(min(size // 28, 16)):
                at = fo + 28 * i + 4
                if at + 4 <= len(buf):
                    debug.append((at, struct.unpack_from("<I", buf, at)[0]))
    return PeHeaders(coff, timestamp, opt + 64, checksum, cert_dir_off, cert, debug)


def _rva_to_offset(sections: list[tuple[int, int, int]], rva: int) -> int | None:
    for vaddr, size, rawptr in sections:
        if vaddr <= rva < vaddr + size:
            return rawptr + rva - vaddr
    return None


def signing_time(blob: bytes) -> tuple[int, str] | None:
    """Return (offset in ``blob``, text) of the PKCS#7 signingTime value, or None."""
    i = blob.find(SIGNING_TIME_OID)
    if i < 0:
        return None
    p = i + len(SIGNING_TIME_OID)
    if p + 4 > len(blob) or blob[p] != 0x31:  # SET OF
        return None
    p += 2
    tag, length = blob[p], blob[p + 1]
    raw = blob[p + 2 : p + 2 + length].decode("ascii", "replace")
    if tag == 0x17 and len(raw) >= 12:  # UTCTime YYMMDDHHMMSSZ
        year = int(raw[:2])
        year += 2000 if year < 50 else 1900
        text = f"{year}-{raw[2:4]}-{raw[4:6]} {raw[6:8]}:{raw[8:10]}:{raw[10:12]} UTC"
    elif tag == 0x18 and len(raw) >= 14:  # GeneralizedTime YYYYMMDDHHMMSSZ
        text = f"{raw[:4]}-{raw[4:6]}-{raw[6:8]} {raw[8:10]}:{raw[10:12]}:{raw[12:14]} UTC"
    else:
        return None
    return p + 2, text


def _cert_text(cert: tuple[int, int] | None) -> str:
    return f"offset 0x{cert[0]:x}, {cert[1]} bytes" if cert else "not signed"


def _stamp(v: int) -> str:
    return "0 (no time stored)" if v == 0 else utc(v)


def pe(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """PE/COFF TimeDateStamp, CheckSum, Certificate Table and Authenticode signature, debug entry times."""
    del path, size_a, size_b
    if head_a[:2] != b"MZ" or head_b[:2] != b"MZ":
        return []
    ha, hb = pe_headers(head_a), pe_headers(head_b)
    out: list[ContentField] = []
    if ha.coff == hb.coff and ha.timestamp != hb.timestamp:
        out.append(
            ContentField("content.pe", "TimeDateStamp", ha.coff + 4, 4, ha.timestamp, hb.timestamp,
                         _stamp(ha.timestamp), _stamp(hb.timestamp))
        )
    if ha.checksum_off == hb.checksum_off and ha.checksum != hb.checksum:
        out.append(
            ContentField("content.pe", "CheckSum", ha.checksum_off, 4, ha.checksum, hb.checksum,
                         f"0x{ha.checksum:08x}", f"0x{hb.checksum:08x}")
        )
    if ha.cert_dir_off is not None and ha.cert_dir_off == hb.cert_dir_off and ha.cert != hb.cert:
        out.append(
            ContentField("content.pe", "Certificate Table", ha.cert_dir_off, 8,
                         str(ha.cert[1]) if ha.cert else None, str(hb.cert[1]) if hb.cert else None,
                         _cert_text(ha.cert), _cert_text(hb.cert))
        )
    out.extend(_certificate(head_a, head_b, ha, hb))
    if len(ha.debug) == len(hb.debug):
        for (oa, va), (ob, vb) in zip(ha.debug, hb.debug, strict=True):
            if oa == ob and va != vb:
                out.append(ContentField("content.pe", "DebugDirectory.TimeDateStamp", oa, 4, va, vb, _stamp(va), _stamp(vb)))
    return out


def _certificate(a: bytes, b: bytes, ha: PeHeaders, hb: PeHeaders) -> list[ContentField]:
    """Return the WIN_CERTIFICATE field when both signatures start at the same offset inside the heads."""
    if ha.cert is None or hb.cert is None or ha.cert[0] != hb.cert[0]:
        return []
    off = ha.cert[0]
    ea, eb = off + ha.cert[1], off + hb.cert[1]
    if ea > len(a) or eb > len(b):
        return []  # beyond the inspected head: left to the file-level difference
    blob_a, blob_b = a[off:ea], b[off:eb]
    if blob_a == blob_b:
        return []
    ta, tb = signing_time(blob_a), signing_time(blob_b)
    da = f"signingTime {ta[1]}, {len(blob_a)} bytes" if ta else f"{len(blob_a)} bytes, no signingTime"
    db = f"signingTime {tb[1]}, {len(blob_b)} bytes" if tb else f"{len(blob_b)} bytes, no signingTime"
    return [ContentField("content.pe", "WIN_CERTIFICATE", off, max(ea, eb) - off, blob_a[:32].hex(), blob_b[:32].hex(), da, db)]


RECOGNIZERS: tuple[Recognizer, ...] = (pe,)
"""The recognisers of this module, in the order :func:`imgdiff.content.inspect` runs them."""

"""SUSP and Rock Ridge: the System Use entries of a directory record, their continuation areas and their fields.

A record's System Use field holds SUSP entries (4-byte header: Signature Word, Length, System Use Entry Version);
a CE entry points to a Continuation Area holding more entries (RRIP names that do not fit, the ER entry of the
root).  :func:`read_entries` follows CE chains (bounded) and returns every entry with its absolute offset, so a
record's fields can be named ``PX.posix_file_mode``, ``TF.modify``, ``NM.name_content`` wherever they are stored.

Field names are the SUSP 1.12 / RRIP 1.12 entry names.  A second entry with the same signature in one record (an
NM name split over two entries, two SL entries) gets ``#2`` after the signature: ``NM#2.name_content``.

References:
    IEEE P1281 System Use Sharing Protocol 1.12, section 5 (SP, CE, PD, ST, ER, ES);
    IEEE P1282 Rock Ridge Interchange Protocol 1.12, section 4.1 (PX, PN, SL, NM, CL, PL, RE, TF, SF) and 1.09 (RR);
    libisofs rockridge.c (rrip_write_px/tf/nm/sl/ce, susp_add_CE, the AAIP "AL" entry of doc/susp_aaip_2_0.txt).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from imgdiff.formats.compiled import Compiled, blob_value
from imgdiff.formats.iso9660.c_iso9660 import (
    NM_CONTINUE,
    NM_CURRENT,
    NM_PARENT,
    PX_SERIAL,
    SECTOR,
    SUSP_BODIES,
    SUSP_HEADER,
    TF_FLAGS,
    TF_LONG_FORM,
)
from imgdiff.formats.iso9660.values import (
    both32,
    dec_datetime,
    dec_datetime_display,
    record_date_display,
    record_date_value,
    text,
)
from imgdiff.model import Extent, Field, Value

MAX_CE_HOPS = 32
"""Continuation areas followed per record at most (a hostile CE chain ends here)."""
MAX_CE_LENGTH = 16 * SECTOR
"""Longest continuation area read (SUSP allows any length; libisofs writes at most one block per area)."""

C_HEADER = Compiled(SUSP_HEADER)
C_BODIES = {sig: Compiled(body) for sig, body in SUSP_BODIES.items()}
_BOTH = frozenset(
    name for body in SUSP_BODIES.values() for sub in body.subcons
    if (name := sub.name) is not None and sub.sizeof() == 8
)
"""Body members recorded in both-byte orders (all 8-byte members: RRIP and SUSP use 7.3.3 numbers)."""


class Entry(NamedTuple):
    """One SUSP entry as stored: its signature, its absolute offset and its bytes."""

    signature: str
    offset: int
    data: bytes


class SystemUse(NamedTuple):
    """Every entry of one record (its own area first, then the continuation areas) and where they are."""

    entries: tuple[Entry, ...]
    areas: tuple[Extent, ...]
    """The continuation area pieces this record's entries occupy (not its own System Use field)."""
    end: int
    """Bytes of the record's own System Use field taken by entries (the rest is padding)."""
    errors: tuple[str, ...] = ()


def split_entries(buf: bytes, base: int) -> tuple[list[Entry], int, str | None]:
    """Return the entries in ``buf`` (placed at absolute ``base``), the bytes they take, and an error or None.

    Parsing stops at an ST entry, at fewer than 4 bytes left, at a zero signature (padding) or at a length that
    does not fit.
    """
    out: list[Entry] = []
    pos = 0
    n = len(buf)
    while pos + 4 <= n:
        sig = buf[pos : pos + 2]
        if sig == b"\0\0":
            break
        length = buf[pos + 2]
        if length < 4 or pos + length > n:
            return out, pos, f"SUSP entry {sig!r} at 0x{base + pos:x} has length {length} (area of {n} bytes)"
        out.append(Entry(sig.decode("latin-1"), base + pos, bytes(buf[pos : pos + length])))
        pos += length
        if sig == b"ST":
            break
    return out, pos, None


def read_entries(own: bytes, own_offset: int, read: Callable[[int, int], bytes], limit: int) -> SystemUse:
    """Return the entries of a record's System Use field ``own`` and of the continuation areas it points to.

    ``read(offset, size)`` reads the image; ``limit`` is the end of the volume (areas beyond it are refused).
    """
    entries, end, err = split_entries(own, own_offset)
    errors: list[str] = [err] if err else []
    areas: list[Extent] = []
    seen: set[int] = set()
    pending = [e for e in entries if e.signature == "CE"]
    hops = 0
    while pending:
        ce = pending.pop(0)
        hops += 1
        if hops > MAX_CE_HOPS:
            errors.append(f"more than {MAX_CE_HOPS} continuation areas; the rest is not read")
            break
        if len(ce.data) < 28:
            errors.append(f"CE entry at 0x{ce.offset:x} is {len(ce.data)} bytes, not 28")
            continue
        block, off, length = both32(ce.data[4:12]), both32(ce.data[12:20]), both32(ce.data[20:28])
        start = block * SECTOR + off
        if length == 0 or length > MAX_CE_LENGTH or start + length > limit or start in seen:
            errors.append(f"CE entry at 0x{ce.offset:x} points to an implausible area ({block}, +{off}, {length})")
            continue
        seen.add(start)
        more, _used, err = split_entries(read(start, length), start)
        if err:
            errors.append(err)
        areas.append(Extent(start, length))
        entries.extend(more)
        pending.extend(e for e in more if e.signature == "CE")
    return SystemUse(tuple(entries), tuple(areas), end, tuple(errors))


# ------------------------------------------------------------------------------------------------------------
# what the entries say


def rr_name(entries: tuple[Entry, ...]) -> tuple[str | None, int]:
    """Return the Rock Ridge name (NM entries joined) or None, and the NM flags of the last entry."""
    parts: list[bytes] = []
    flags = 0
    for e in entries:
        if e.signature != "NM" or len(e.data) < 5:
            continue
        flags = e.data[4]
        if flags & (NM_CURRENT | NM_PARENT):
            return (("." if flags & NM_CURRENT else ".."), flags)
        parts.append(e.data[5:])
        if not flags & NM_CONTINUE:
            break
    if not parts:
        return None, flags
    return b"".join(parts).decode("utf-8", errors="surrogateescape"), flags


def symlink_target(entries: tuple[Entry, ...]) -> str | None:
    """Return the target of the SL entries (component records joined by ``/``) or None."""
    comps: list[str] = []
    cur = ""
    found = False
    for e in entries:
        if e.signature != "SL" or len(e.data) < 5:
            continue
        found = True
        body = e.data[5:]
        pos = 0
        while pos + 2 <= len(body):
            cflags, clen = body[pos], body[pos + 1]
            content = body[pos + 2 : pos + 2 + clen].decode("utf-8", errors="surrogateescape")
            pos += 2 + clen
            if cflags & 0x02:
                content = "."
            elif cflags & 0x04:
                content = ".."
            elif cflags & 0x08:
                comps.append("")
                continue
            cur += content
            if not cflags & 0x01:
                comps.append(cur)
                cur = ""
    if not found:
        return None
    if cur:
        comps.append(cur)
    target = "/".join(comps)
    return target if target else "/"


def has_rock_ridge(entries: tuple[Entry, ...]) -> bool:
    """Return True when the root's "." entries announce RRIP (an ER entry or any RR entry)."""
    return any(e.signature in ("ER", "PX", "NM", "TF", "RR") for e in entries)


# ------------------------------------------------------------------------------------------------------------
# fields


_TF_NAMES: dict[tuple[str, str], str] = {}


def _tf_fields(prefix: str, e: Entry) -> list[Field]:
    out: list[Field] = []
    flags = e.data[4]
    long_form = bool(flags & TF_LONG_FORM)
    width = 17 if long_form else 7
    pos = 5
    for bit, name in TF_FLAGS:
        if not flags & bit:
            continue
        raw = e.data[pos : pos + width]
        if len(raw) < width:
            break
        fname = _TF_NAMES.get((prefix, name)) or _TF_NAMES.setdefault((prefix, name), f"{prefix}.{name}")
        if long_form:
            out.append(Field(fname, dec_datetime(raw), (Extent(e.offset + pos, width),), dec_datetime_display(raw)))
        else:
            out.append(_new(Field, (fname, record_date_value(raw), (_new(Extent, (e.offset + pos, width)),),
                                    record_date_display(raw))))
        pos += width
    if pos < len(e.data):
        out.append(Field(f"{prefix}.unknown", blob_value(e.data[pos:]), (Extent(e.offset + pos, len(e.data) - pos),)))
    return out


def _tail(prefix: str, e: Entry, pos: int, name: str, decode: Callable[[bytes], Value] | None = None,
          display: str | None = None) -> list[Field]:
    if pos >= len(e.data):
        return []
    raw = e.data[pos:]
    value: Value = decode(raw) if decode else blob_value(raw)
    fname = _TF_NAMES.get((prefix, name)) or _TF_NAMES.setdefault((prefix, name), f"{prefix}.{name}")
    return [Field(fname, value, (Extent(e.offset + pos, len(raw)),), display)]


def _mode_display(v: int) -> str:
    kinds = {0o140000: "socket", 0o120000: "symlink", 0o100000: "file", 0o060000: "block", 0o040000: "dir",
             0o020000: "char", 0o010000: "fifo"}
    return f"{kinds.get(v & 0o170000, 'unknown')} {v & 0o7777:04o}"


_new = tuple.__new__
_HEADER_NAMES: dict[str, tuple[str, str, str]] = {}
_BODY_DECODE = {sig: {m[0]: both32 for m in body.members if m[0] in _BOTH} for sig, body in C_BODIES.items()}
_BODY_DISPLAY: dict[bytes, dict[str, Callable[[object], str | None]]] = {
    b"PX": {"posix_file_mode": lambda raw: _mode_display(both32(raw))},  # type: ignore[arg-type]
}


def entry_fields(e: Entry, prefix: str) -> list[Field]:
    """Return the fields of one entry, named ``<prefix>.<member>`` (``prefix`` is the signature, maybe ``#n``)."""
    names = _HEADER_NAMES.get(prefix)
    if names is None:
        names = _HEADER_NAMES.setdefault(prefix, (f"{prefix}.signature_word", f"{prefix}.length",
                                                   f"{prefix}.system_use_entry_version"))
    off, data = e.offset, e.data
    out: list[Field] = [
        _new(Field, (names[0], e.signature, (_new(Extent, (off, 2)),), None)),
        _new(Field, (names[1], data[2], (_new(Extent, (off + 2, 1)),), None)),
        _new(Field, (names[2], data[3], (_new(Extent, (off + 3, 1)),), None)),
    ]
    sig = e.signature.encode("latin-1")
    body = C_BODIES.get(sig)
    pos = 4
    if body is not None and len(data) >= 4 + body.size:
        out.extend(body.fields(data, 4, off + 4, prefix=prefix + ".", decode=_BODY_DECODE[sig],
                               display=_BODY_DISPLAY.get(sig)))
        pos = 4 + body.size
    if sig == b"PX" and len(data) >= pos + 8:
        out.append(Field(f"{prefix}.{PX_SERIAL}", both32(data[pos : pos + 8]), (Extent(off + pos, 8),)))
        pos += 8
    if sig == b"TF" and len(data) >= 5:
        return out + _tf_fields(prefix, e)
    if sig == b"NM":
        return out + _tail(prefix, e, pos, "name_content", lambda b: b.decode("utf-8", errors="replace"))
    if sig == b"SL":
        return out + _tail(prefix, e, pos, "component_area", display=symlink_target((e,)))
    if sig == b"ER" and len(data) >= 8:
        len_id, len_des, len_src = data[4], data[5], data[6]
        for name, n in (("ext_id", len_id), ("ext_des", len_des), ("ext_src", len_src)):
            raw = data[pos : pos + n]
            out.append(Field(f"{prefix}.{name}", text(raw), (Extent(off + pos, len(raw)),)))
            pos += n
        return out + _tail(prefix, e, pos, "unknown")
    if sig == b"PD":
        return out + _tail(prefix, e, pos, "padding_area")
    return out + _tail(prefix, e, pos, "data")


Member = tuple[str, int, str, Callable[[Any], Value] | None, Callable[[Any], str | None] | None]
"""One member of a described layout: field name, size, ``"int"`` (one byte) or ``"bytes"``, decoder, displayer."""


def _latin1(raw: bytes) -> str:
    return bytes(raw).decode("latin-1")


def _utf8(raw: bytes) -> str:
    return bytes(raw).decode("utf-8", errors="replace")


def _sl_display(raw: bytes) -> str | None:
    return symlink_target((Entry("SL", 0, b"SL\0\0\0" + bytes(raw)),))


_BODY_MEMBERS: dict[bytes, tuple[tuple[str, int, str], ...]] = {
    sig: tuple((m[0], m[2], "bytes" if m[5] == "bytes" else "int") for m in body.members)
    for sig, body in C_BODIES.items()
}
_TAILS: dict[bytes, tuple[str, Callable[[Any], Value] | None, Callable[[Any], str | None] | None]] = {
    b"NM": ("name_content", _utf8, None),
    b"SL": ("component_area", None, _sl_display),
    b"PD": ("padding_area", None, None),
}


def entry_members(e: Entry, prefix: str) -> list[Member] | None:
    """Return the layout of one entry as members named, decoded and displayed exactly as :func:`entry_fields` builds
    its fields (so a record can be described and compared without building them); None for an ER entry, whose
    texts' lengths make it a case of its own."""
    data = e.data
    sig = e.signature.encode("latin-1")
    if sig == b"ER":
        return None
    out: list[Member] = [(f"{prefix}.signature_word", 2, "bytes", _latin1, None),
                         (f"{prefix}.length", 1, "int", None, None),
                         (f"{prefix}.system_use_entry_version", 1, "int", None, None)]
    pos = 4
    body = _BODY_MEMBERS.get(sig)
    if body is not None and len(data) >= 4 + C_BODIES[sig].size:
        dec, disp = _BODY_DECODE[sig], _BODY_DISPLAY.get(sig, {})
        out.extend((f"{prefix}.{name}", size, kind, dec.get(name), disp.get(name)) for name, size, kind in body)
        pos = 4 + C_BODIES[sig].size
    if sig == b"PX" and len(data) >= pos + 8:
        out.append((f"{prefix}.{PX_SERIAL}", 8, "bytes", both32, None))
        pos += 8
    if sig == b"TF" and len(data) >= 5:
        flags = data[4]
        long_form = bool(flags & TF_LONG_FORM)
        width = 17 if long_form else 7
        pos = 5
        for bit, name in TF_FLAGS:
            if not flags & bit:
                continue
            if len(data) - pos < width:
                break
            if long_form:
                out.append((f"{prefix}.{name}", width, "bytes", dec_datetime, dec_datetime_display))
            else:
                out.append((f"{prefix}.{name}", width, "bytes", record_date_value, record_date_display))
            pos += width
        if pos < len(data):
            out.append((f"{prefix}.unknown", len(data) - pos, "bytes", None, None))
        return out
    name, decode, display = _TAILS.get(sig, ("data", None, None))
    if pos < len(data):
        out.append((f"{prefix}.{name}", len(data) - pos, "bytes", decode, display))
    return out


def _sig(raw: object) -> Value:
    return bytes(raw).decode("latin-1") if isinstance(raw, (bytes, bytearray)) else str(raw)


def entries_fields(entries: tuple[Entry, ...]) -> list[Field]:
    """Return the fields of every entry, duplicates of a signature numbered ``#2``, ``#3``..."""
    seen: dict[str, int] = {}
    out: list[Field] = []
    for e in entries:
        n = seen.get(e.signature, 0) + 1
        seen[e.signature] = n
        prefix = e.signature if n == 1 else f"{e.signature}#{n}"
        out.extend(entry_fields(e, prefix))
    return out

"""The Volume Descriptor Set (logical sectors 16 onwards): primary, supplementary (Joliet), boot record, terminator.

:func:`read_descriptors` finds the descriptors (bounded: at most :data:`MAX_DESCRIPTORS`, never past the image);
:func:`descriptor_node` gives each its node, every one of its 2048 bytes in a named field.  The root directory
record inside a primary/supplementary descriptor is a child node whose fields are declared copies of the root's
"." record; the Joliet descriptor's dates, sizes and identifiers are declared copies of the primary's (xorriso
writes both from the same values).

References:
    ECMA-119 8.1 (Volume Descriptor header), 8.2 (Boot Record), 8.3 (Terminator), 8.4 (Primary), 8.5
    (Supplementary: Volume Flags, Escape Sequences); Joliet specification (escape sequences %/@ %/C %/E);
    El Torito 1.0 section 2.0 (Boot Record Volume Descriptor: "EL TORITO SPECIFICATION", catalog pointer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imgdiff.errors import ParseError
from imgdiff.formats.compiled import Compiled
from imgdiff.formats.iso9660.c_iso9660 import (
    BOOT_RECORD,
    JOLIET_ESCAPES,
    PRIMARY_VOLUME_DESCRIPTOR,
    SECTOR,
    STANDARD_IDENTIFIER,
    TERMINATOR,
    VD_BOOT_RECORD,
    VD_PRIMARY,
    VD_SUPPLEMENTARY,
    VD_TERMINATOR,
)
from imgdiff.formats.iso9660.values import (
    be32,
    both16,
    both32,
    both_ok,
    dec_datetime,
    dec_datetime_display,
    text,
    ucs2,
)
from imgdiff.model import Derived, Extent, Node, Value

MAX_DESCRIPTORS = 64
"""Descriptors read at most before giving up on a terminator."""

C_PVD = Compiled(PRIMARY_VOLUME_DESCRIPTOR)
C_BOOT = Compiled(BOOT_RECORD)
C_TERM = Compiled(TERMINATOR)

ROOT_RECORD = "directory_record_for_root_directory"
DATES = (
    "volume_creation_date_and_time",
    "volume_modification_date_and_time",
    "volume_expiration_date_and_time",
    "volume_effective_date_and_time",
)
IDENTIFIERS = (
    "system_identifier", "volume_identifier", "volume_set_identifier", "publisher_identifier",
    "data_preparer_identifier", "application_identifier", "copyright_file_identifier", "abstract_file_identifier",
    "bibliographic_file_identifier",
)
BOTH32 = ("volume_space_size", "path_table_size")
BOTH16 = ("volume_set_size", "volume_sequence_number", "logical_block_size")
COPIED_FROM_PRIMARY = (*DATES, *IDENTIFIERS, *BOTH32[:1], *BOTH16, "file_structure_version")
"""Joliet descriptor fields that restate the primary descriptor's value (in UCS-2 for the identifiers)."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """One volume descriptor as found: where, which type, its key and its bytes."""

    lba: int
    offset: int
    type: int
    key: str
    label: str
    raw: bytes

    @property
    def extent(self) -> Extent:
        """Return the descriptor's 2048 bytes."""
        return Extent(self.offset, SECTOR)

    def value(self, name: str) -> Any:
        """Return the decoded value of a primary/supplementary descriptor member."""
        v = C_PVD.unpack(self.raw)[name]
        if name in BOTH32:
            return both32(v)
        if name in BOTH16:
            return both16(v)
        if name.startswith("location_of") and "_m_" in name:
            return be32(v)
        return v


def read_descriptors(read: Callable[[int, int], bytes], base: int, size: int) -> list[Descriptor]:
    """Return the descriptors from logical sector 16 up to the terminator; raise ParseError without a primary."""
    out: list[Descriptor] = []
    supp = 0
    for i in range(MAX_DESCRIPTORS):
        lba = 16 + i
        off = base + lba * SECTOR
        if off + SECTOR > base + size:
            break
        raw = read(off, SECTOR)
        if raw[1:6] != STANDARD_IDENTIFIER:
            break
        t = raw[0]
        if t == VD_PRIMARY and not any(d.type == VD_PRIMARY for d in out):
            key, label = "primary", "primary volume descriptor"
        elif t == VD_SUPPLEMENTARY:
            esc = raw[88:120]
            joliet = any(e in esc[:3] for e in JOLIET_ESCAPES)
            supp += 1
            if joliet and not any(d.key == "joliet" for d in out):
                key, label = "joliet", "Joliet volume descriptor"
            else:
                key, label = f"supplementary:{supp}", f"supplementary volume descriptor {supp}"
        elif t == VD_BOOT_RECORD:
            key, label = ("boot_record", "boot record (El Torito)") if raw[7:30] == b"EL TORITO SPECIFICATION" \
                else (f"boot_record:{lba}", "boot record")
        elif t == VD_TERMINATOR:
            key, label = "terminator", "volume descriptor set terminator"
        else:
            key, label = f"descriptor:{lba}", f"volume descriptor type {t}"
        out.append(Descriptor(lba, off, t, key, label, raw))
        if t == VD_TERMINATOR:
            break
    if not any(d.type == VD_PRIMARY for d in out):
        raise ParseError("no primary volume descriptor", base + 16 * SECTOR, "volume_descriptor_type")
    return out


def _decoders(joliet: bool) -> dict[str, Callable[[Any], Value]]:
    dec: dict[str, Callable[[Any], Value]] = {name: both32 for name in BOTH32}
    dec.update({name: both16 for name in BOTH16})
    dec.update({name: be32 for name in ("location_of_type_m_path_table", "location_of_optional_type_m_path_table")})
    dec.update({name: dec_datetime for name in DATES})
    dec["standard_identifier"] = text
    names = ucs2 if joliet else text
    dec.update({name: names for name in IDENTIFIERS})
    dec["escape_sequences"] = lambda raw: bytes(raw).rstrip(b"\0").decode("latin-1")
    return dec


_DISPLAY: dict[str, Callable[[Any], str | None]] = {name: dec_datetime_display for name in DATES}


def descriptor_node(d: Descriptor, primary: Descriptor | None) -> Node:
    """Return the node of one descriptor: every byte in a field, the root record as a child (primary/Joliet)."""
    node = Node(kind="iso9660.volume_descriptor", key=d.key, label=d.label, extents=(d.extent,),
                attrs={"lba": d.lba, "type": d.type})
    if d.type in (VD_PRIMARY, VD_SUPPLEMENTARY):
        joliet = d.key == "joliet"
        fields = C_PVD.fields(d.raw, 0, d.offset, skip=(ROOT_RECORD,), decode=_decoders(joliet), display=_DISPLAY)
        if d.type == VD_PRIMARY:
            fields = [f if f.name != "volume_flags" else f._replace(name="unused_field_7") for f in fields]
            fields = [f if f.name != "escape_sequences" else f._replace(name="unused_field_88") for f in fields]
        node.fields = tuple(fields)
        for name in (*BOTH32, *BOTH16):
            off, n = C_PVD.span(name)
            if not both_ok(d.raw[off : off + n]):
                node.errors.append(f"{d.label}: {name} little- and big-endian halves differ")
        if joliet and primary is not None:
            node.derived = tuple(
                Derived(name, covers=(Extent(primary.offset + C_PVD.offset(name), C_PVD.span(name)[1]),))
                for name in COPIED_FROM_PRIMARY
            )
    elif d.type == VD_BOOT_RECORD:
        node.fields = tuple(C_BOOT.fields(d.raw, 0, d.offset, decode={
            "standard_identifier": text, "boot_system_identifier": text, "boot_identifier": text}))
    elif d.type == VD_TERMINATOR:
        node.fields = tuple(C_TERM.fields(d.raw, 0, d.offset, decode={"standard_identifier": text}))
    else:
        head = C_TERM.fields(d.raw, 0, d.offset, decode={"standard_identifier": text})
        node.fields = tuple(f if f.name != "reserved_field_7" else f._replace(name="body") for f in head)
    return node


def root_record_extent(d: Descriptor) -> Extent:
    """Return the 34 bytes of the root directory record inside a primary/supplementary descriptor."""
    off, n = C_PVD.span(ROOT_RECORD)
    return Extent(d.offset + off, n)


def root_record(d: Descriptor) -> bytes:
    """Return the root directory record of a primary/supplementary descriptor."""
    off, n = C_PVD.span(ROOT_RECORD)
    return d.raw[off : off + n]


def field_extent(d: Descriptor, name: str) -> Extent:
    """Return where member ``name`` of a primary/supplementary descriptor is."""
    off, n = C_PVD.span(name)
    return Extent(d.offset + off, n)

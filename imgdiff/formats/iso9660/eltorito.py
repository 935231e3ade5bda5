"""El Torito: the boot catalog (validation entry, initial entry, section headers and entries) and the boot info table.

The catalog is read from the sector the Boot Record points to.  Each 32-byte entry is a node; the bytes after the
last entry are the catalog's ``unused`` field.  The validation entry's ``checksum_word`` is declared derived from
the entry's other bytes; an entry's ``load_rba`` (where its boot image is) is declared derived from whatever places
that image (the image file's directory record, or the GPT entry of an appended partition), so a moved image folds
into the cause that moved it.

``-boot-info-table`` makes mkisofs/xorriso patch bytes 8-63 of the BIOS boot image (``bi_pvd``, ``bi_file``,
``bi_length``, ``bi_csum``): those are a node of their own under the image file, every field derived.

References:
    "El Torito" Bootable CD-ROM Format Specification 1.0, sections 2.0-2.5 (catalog entries, checksum: the
    16-bit words of the validation entry sum to zero); xorrisofs(1) -boot-info-table; libisofs eltorito.c
    (write_validation_entry, write_section_header, make_boot_info_table: bi_csum is the 32-bit sum of the
    little-endian words of the image from byte 64).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from imgdiff.formats.compiled import Compiled
from imgdiff.formats.iso9660.c_iso9660 import (
    BOOT_INFO_OFFSET,
    BOOT_INFO_TABLE,
    BOOT_MEDIA_TYPES,
    BOOTABLE,
    EXTENSION_ENTRY,
    FINAL_SECTION_HEADER,
    NOT_BOOTABLE,
    PLATFORMS,
    SECTION_ENTRY,
    SECTION_HEADER,
    SECTION_HEADER_ENTRY,
    VALIDATION_ENTRY,
)
from imgdiff.formats.iso9660.values import text
from imgdiff.model import Derived, Extent, Field, Node

C_VALIDATION = Compiled(VALIDATION_ENTRY)
C_ENTRY = Compiled(SECTION_ENTRY)
C_HEADER = Compiled(SECTION_HEADER_ENTRY)
C_BOOT_INFO = Compiled(BOOT_INFO_TABLE)
ENTRY = 32
MAX_ENTRIES = 4096
"""Catalog entries read at most (64 sectors of catalog)."""


@dataclass(frozen=True, slots=True)
class BootImage:
    """One boot image the catalog names: the entry that names it, its platform and where it starts."""

    entry_key: str
    platform: int
    load_rba: int
    sector_count: int
    media: int
    bootable: bool


@dataclass(slots=True)
class Catalog:
    """The parsed catalog: its entry nodes (not yet attached), the images and what could not be read."""

    offset: int
    size: int
    entries: list[Node] = field(default_factory=list)
    images: list[BootImage] = field(default_factory=list)
    used: int = 0
    errors: list[str] = field(default_factory=list)


def _platform(v: object) -> str:
    return PLATFORMS.get(int(v), f"0x{int(v):02x}")  # type: ignore[call-overload]


def _media(v: object) -> str:
    m = int(v)  # type: ignore[call-overload]
    return BOOT_MEDIA_TYPES.get(m & 0x0F, f"type {m & 0x0F}") + (" +flags" if m & 0xF0 else "")


def _indicator(v: object) -> str:
    return {BOOTABLE: "bootable", NOT_BOOTABLE: "not bootable"}.get(int(v), f"0x{int(v):02x}")  # type: ignore[call-overload]


_ENTRY_DISPLAY: dict[str, Callable[[object], str | None]] = {
    "boot_indicator": _indicator,
    "boot_media_type": _media,
    "sector_count": lambda v: f"{int(v)} virtual sectors ({int(v) * 512} bytes)",  # type: ignore[call-overload]
}


def validation_checksum_ok(raw: bytes) -> bool:
    """Return True when the sixteen 16-bit words of a validation entry sum to zero (El Torito 2.1)."""
    return sum(struct.unpack("<16H", raw[:32])) & 0xFFFF == 0


def parse_catalog(read: Callable[[int, int], bytes], offset: int, size: int) -> Catalog:
    """Return the catalog at ``offset`` (``size`` bytes: the catalog file's length, or one sector)."""
    cat = Catalog(offset, size)
    data = read(offset, size)
    n = min(size // ENTRY, MAX_ENTRIES)
    if n < 2:
        cat.errors.append("boot catalog shorter than two entries")
        return cat
    raw = data[:ENTRY]
    v = C_VALIDATION.unpack(raw)
    vnode = Node(kind="iso9660.eltorito_validation", key="validation", label="validation entry",
                 extents=(Extent(offset, ENTRY),),
                 fields=tuple(C_VALIDATION.fields(raw, 0, offset, decode={"id_string": text},
                                                  display={"platform_id": _platform})),
                 attrs={"platform": _platform(v["platform_id"])})
    vnode.derived = (Derived("checksum_word", covers=(Extent(offset, 28), Extent(offset + 30, 2))),)
    if v["header_id"] != 1 or (v["key_byte_55"], v["key_byte_aa"]) != (0x55, 0xAA):
        cat.errors.append("boot catalog validation entry has no header ID 1 / key bytes 55 AA")
    elif not validation_checksum_ok(raw):
        cat.errors.append("boot catalog validation entry checksum does not sum to zero")
    cat.entries.append(vnode)
    cat.entries.append(_entry_node(data, 1, offset, "initial", "initial/default entry", int(v["platform_id"]), cat))
    i = 2
    section = 0
    final = False
    while i < n and not final:
        head = data[i * ENTRY]
        if head not in (SECTION_HEADER, FINAL_SECTION_HEADER):
            break
        section += 1
        raw = data[i * ENTRY : (i + 1) * ENTRY]
        h = C_HEADER.unpack(raw)
        hkey = f"section:{section}"
        cat.entries.append(Node(kind="iso9660.eltorito_section_header", key=hkey,
                                label=f"section header {section} ({_platform(h['platform_id'])})",
                                extents=(Extent(offset + i * ENTRY, ENTRY),),
                                fields=tuple(C_HEADER.fields(raw, 0, offset + i * ENTRY, decode={"id_string": text},
                                                             display={"platform_id": _platform})),
                                attrs={"platform": _platform(h["platform_id"])}))
        final = head == FINAL_SECTION_HEADER
        i += 1
        for k in range(int(h["number_of_section_entries"])):
            if i >= n:
                cat.errors.append(f"section {section} announces more entries than the catalog holds")
                break
            key = f"{hkey}:entry:{k + 1}"
            cat.entries.append(_entry_node(data, i, offset, key, f"section {section} entry {k + 1}",
                                           int(h["platform_id"]), cat))
            i += 1
            ext = 0
            while i < n and data[i * ENTRY] == EXTENSION_ENTRY:
                ext += 1
                raw = data[i * ENTRY : (i + 1) * ENTRY]
                cat.entries.append(Node(kind="iso9660.eltorito_extension", key=f"{key}:ext:{ext}",
                                        label=f"section {section} entry {k + 1} extension {ext}",
                                        extents=(Extent(offset + i * ENTRY, ENTRY),),
                                        fields=(Field("extension_indicator", raw[0], (Extent(offset + i * ENTRY, 1),)),
                                                Field("flags", raw[1], (Extent(offset + i * ENTRY + 1, 1),)),
                                                Field("vendor_unique_selection_criteria", bytes(raw[2:]),
                                                      (Extent(offset + i * ENTRY + 2, 30),)))))
                i += 1
    cat.used = i * ENTRY
    return cat


def _entry_node(data: bytes, i: int, offset: int, key: str, label: str, platform: int, cat: Catalog) -> Node:
    raw = data[i * ENTRY : (i + 1) * ENTRY]
    e = C_ENTRY.unpack(raw)
    node = Node(kind="iso9660.eltorito_entry", key=key, label=f"{label} ({_platform(platform)})",
                extents=(Extent(offset + i * ENTRY, ENTRY),),
                fields=tuple(C_ENTRY.fields(raw, 0, offset + i * ENTRY, display=_ENTRY_DISPLAY)),
                attrs={"platform": _platform(platform), "load_rba": int(e["load_rba"])})
    cat.images.append(BootImage(key, platform, int(e["load_rba"]), int(e["sector_count"]), int(e["boot_media_type"]),
                                e["boot_indicator"] == BOOTABLE))
    return node


def catalog_node(cat: Catalog, image_covers: Callable[[int], tuple[Extent, ...]],
                 interesting: Callable[[Extent], bool] | None) -> Node:
    """Return the ``boot_catalog`` node: the entries, ``load_rba`` declared derived, the unused rest."""
    node = Node(kind="iso9660.boot_catalog", key="boot_catalog", label="El Torito boot catalog",
                extents=(Extent(cat.offset, cat.size),), attrs={"images": len(cat.images)})
    for child in cat.entries:
        if child.kind == "iso9660.eltorito_entry":
            covers = image_covers(int(child.attrs["load_rba"]))  # type: ignore[arg-type]
            if covers:  # a UEFI image's sector count is its size; a BIOS one's is -boot-load-size
                uefi = child.attrs.get("platform") == "UEFI"
                child.derived = (Derived("load_rba", covers=covers),) + (
                    (Derived("sector_count", covers=covers),) if uefi else ())
        node.children.append(child)
    rest = cat.size - cat.used
    if rest > 0:
        node.fields = (Field("unused", rest, (Extent(cat.offset + cat.used, rest),),
                             f"{rest} bytes after the last entry"),)
    node.errors.extend(cat.errors)
    return node


def boot_info_present(head: bytes, image_lba: int, size: int) -> bool:
    """Return True when bytes 8-23 of a boot image hold a boot info table for this image (-boot-info-table)."""
    if len(head) < 64:
        return False
    bi_pvd, bi_file, bi_length = struct.unpack_from("<III", head, BOOT_INFO_OFFSET)
    return bi_pvd == 16 and bi_file == image_lba and bi_length == size


def boot_info_node(data_offset: int, head: bytes, covers: dict[str, tuple[Extent, ...]]) -> Node:
    """Return the boot info table node of an image file whose data starts at ``data_offset``.

    ``covers`` maps ``bi_file``/``bi_length``/``bi_csum`` to what they are computed from (the file's record
    fields, the image bytes from offset 64).
    """
    off = data_offset + BOOT_INFO_OFFSET
    fields = C_BOOT_INFO.fields(head, BOOT_INFO_OFFSET, off)
    node = Node(kind="iso9660.boot_info_table", key="boot_info_table", label="boot info table",
                extents=(Extent(off, C_BOOT_INFO.size),), fields=tuple(fields))
    node.derived = tuple(Derived(name, covers=ext) for name, ext in covers.items() if ext)
    return node


def boot_info_csum(read: Callable[[int, int], bytes], start: int, size: int) -> int:
    """Return the bi_csum of an image: the 32-bit sum of its little-endian 32-bit words from byte 64."""
    total = 0
    pos = 64
    while pos < size:
        n = min(1 << 20, size - pos)
        chunk = read(start + pos, n)
        chunk += bytes(-len(chunk) % 4)
        total += sum(struct.unpack(f"<{len(chunk) // 4}I", chunk))
        pos += n
    return total & 0xFFFFFFFF


"""The whole-image view of an isohybrid ISO: the ISO volume on top, the MBR/GPT xorriso writes aligned with it.

xorriso (``-isohybrid-mbr``, ``-isohybrid-gpt-basdat``, ``-append_partition``, ``-appended_part_as_gpt``) writes
an MBR and often a GPT into the System Area.  Their partitions either describe the ISO itself (GPT partition 1,
"Gap0"/the ISO's Basic Data partition from LBA 64; the MBR's 0x00/0x17 partition from LBA 0), a file inside it (the
old ``-e boot/efi.img -isohybrid-gpt-basdat`` EFI partition), or data appended after the volume space
(``-append_partition 2 0xef efi.img``: the ESP; "Gap1": padding).  Here the ISO is the top-level view:

    disk [disk]                         attrs table="iso9660"
      iso9660 [iso9660]                 the volume space minus the table bytes (see volume.py)
      mbr.protective|mbr [mbr]          the gpt package's MBR node (isohybrid boot code in BootCode)
      gpt [gpt]                         the gpt package's headers and entry arrays (the backup at the end of the image)
      partition [part:N:<type>]         only partitions past the volume space: the appended ESP -> vfat
      iso9660.padding [padding@<off>]   bytes past the volume space no partition or table holds

Partitions inside the volume get an ``iso_view`` attr on their GPT/MBR entry instead of a node, so no byte is
parsed twice and the ISO is never parsed again as a partition's content.  An appended partition whose bytes equal
a file of the ISO (NixOS grafts efi.img as ``/boot/efi.img`` and appends the same file) has every field declared a
copy of that file's, so its differences fold into the file's finding.

References:
    libisofs doc/boot_sectors.txt, system_area.c (make_isolinux_mbr: boot LBA*4 at MBR offset 432, MBR id at 440;
    iso_gpt_uuid/gpt_disk_guid_setup; assess_appended_gpt: "Gap0"/"Appended2"/"Gap1" entries);
    xorriso(1) -boot_image any gpt_disk_guid=, -append_partition, -appended_part_as_gpt.
"""

from __future__ import annotations

import hashlib

from imgdiff.errors import ParseError
from imgdiff.formats import gpt
from imgdiff.formats.base import ParseContext
from imgdiff.formats.iso9660.c_iso9660 import SECTOR, SYSTEM_AREA
from imgdiff.formats.iso9660.descriptors import field_extent
from imgdiff.formats.iso9660.values import area_fields
from imgdiff.formats.iso9660.volume import Volume
from imgdiff.model import Derived, Extent, Node, merge_extents, subtract_extents

COPY_CHECK_LIMIT = 256 << 20
"""Appended partitions larger than this are not compared with the files of the ISO."""


def parse_image(ctx: ParseContext) -> Node:
    """Return the ``disk`` node of a whole image that holds an ISO 9660 volume at offset 0."""
    size = ctx.src.size
    disk = Node(kind="disk", key="disk", label="disk", extents=(Extent(0, size),), attrs={"table": "iso9660"})
    head = ctx.read(0, 512)
    tables: list[Node] = []
    parts: list[tuple[int, str, int, int, str]] = []
    owned: list[Extent] = []
    if head[510:512] == b"\x55\xaa":
        try:
            tables, parts, owned = gpt.parse_tables(ctx, 0, size)
        except ParseError as exc:
            disk.errors.append(f"isohybrid partition table could not be parsed: {exc}")
            tables, parts, owned = [], [], []
    owned = list(merge_extents(owned))
    vol = Volume(ctx, 0, size, "image", foreign=tuple(owned), outside_image=lambda lba: _entry_covers(tables, lba),
                 tail=False)
    iso = vol.build()
    # One scope for the volume and its System Area tables: xorriso writes both from the same settings (the MBR id
    # and GPT GUIDs come from the volume date), so rules must be able to fold one into the other.
    iso.attrs["scope"] = False
    disk.attrs["fs"] = "iso9660"
    disk.children.append(iso)
    disk.children.extend(tables)
    disk.attrs["hybrid"] = next((t.kind for t in tables if t.kind == "gpt"), tables[0].kind if tables else "none")
    claimed: list[Extent] = [Extent(0, vol.end)] + owned
    for index, tname, start, length, guid in parts:
        end = min(start + length, size)
        entry = _entry(tables, index)
        if end <= vol.end:
            if entry is not None:
                entry.attrs["iso_view"] = _view(vol, start, end)
                if start <= SYSTEM_AREA + SECTOR and end >= vol.end - SECTOR:
                    entry.derived = entry.derived + (
                        Derived("EndingLBA", covers=(field_extent(vol.pvd, "volume_space_size"),)),)
            continue
        lo = max(start, vol.end)
        if lo >= end:
            continue
        pnode = Node(kind="partition", key=f"part:{index}:{tname}", label=f"partition {index} ({tname})",
                     extents=(Extent(lo, end - lo),),
                     attrs={"index": index, "ptype": tname, "guid": guid, "scope": True, "appended": True})
        child = ctx.parse_nested(lo, end - lo, tname)
        if child.raw and _zero(ctx, Extent(lo, end - lo)):  # xorriso's gap partitions ("Gap1"): zeros
            child = _padding(ctx, [Extent(lo, end - lo)], f"partition {index} contents (zeros)")
        pnode.children.append(child)
        if entry is not None:
            entry.attrs["iso_view"] = f"appended partition at {lo} (+{end - lo})"
        _copy_of_file(ctx, vol, pnode, child, Extent(lo, end - lo))
        disk.children.append(pnode)
        claimed.append(Extent(lo, end - lo))
    rest = subtract_extents(Extent(0, size), merge_extents(claimed), presorted=True)
    for gap in rest:
        disk.children.append(_padding(ctx, [gap], "padding after the ISO volume", key=f"padding@{gap.offset}"))
    _mbr_boot_code(tables, vol)
    ctx.errors.extend(disk.errors)
    return disk


def _entry(tables: list[Node], index: int) -> Node | None:
    """Return the primary GPT entry node (or nothing for an MBR partition) with this index."""
    for t in tables:
        if t.kind != "gpt":
            continue
        for arr in t.children:
            if arr.kind == "gpt.entries" and arr.key == "primary-entries":
                return next((e for e in arr.children if e.attrs.get("index") == index), None)
    return None


def _entry_covers(tables: list[Node], lba: int) -> tuple[Extent, ...]:
    """Return the StartingLBA/EndingLBA bytes of the GPT entries whose partition starts at ISO block ``lba``."""
    out: list[Extent] = []
    for t in tables:
        for _keys, n in t.walk():
            if n.kind != "gpt.entry":
                continue
            first = n.field_named("StartingLBA")
            last = n.field_named("EndingLBA")
            if first is not None and last is not None and first.value == lba * (SECTOR // 512):
                out.extend(first.extents + last.extents)
    return tuple(out)


def _view(vol: Volume, start: int, end: int) -> str:
    """Return what a partition inside the volume space shows: the ISO itself, a file, or a part of the ISO."""
    for key, info in vol.files.items():
        if info.data and info.data[0].offset == start:
            return f"file {info.rec.path}" if not key.startswith("joliet:") else f"file {key}"
    if start <= SYSTEM_AREA + SECTOR:
        return "the ISO 9660 volume"
    return f"bytes {start}-{end} of the ISO 9660 volume"


def _padding(ctx: ParseContext, exts: list[Extent], what: str, key: str = "padding") -> Node:
    interesting = None if ctx.diff is None else ctx.interesting
    fields = area_fields("padding", exts, 0, ctx.read, interesting, lambda n: f"{n} bytes ({what})")
    return Node(kind="iso9660.padding", key=key, label=what, extents=merge_extents(exts), fields=tuple(fields))


def _zero(ctx: ParseContext, e: Extent) -> bool:
    """Return True when ``e`` (at most :data:`COPY_CHECK_LIMIT` bytes) holds only zero bytes."""
    if e.length > COPY_CHECK_LIMIT:
        return False
    pos = e.offset
    while pos < e.end:
        n = min(1 << 20, e.end - pos)
        chunk = ctx.read(pos, n)
        if chunk.count(0) != len(chunk):
            return False
        pos += n
    return True


def _hash(ctx: ParseContext, e: Extent) -> str:
    h = hashlib.sha256()
    pos = e.offset
    while pos < e.end:
        n = min(1 << 20, e.end - pos)
        h.update(ctx.read(pos, n))
        pos += n
    return h.hexdigest()


def _copy_of_file(ctx: ParseContext, vol: Volume, pnode: Node, child: Node, ext: Extent) -> None:
    """Declare an appended partition's fields copies of the ISO file with the same bytes (NixOS ``efi.img``)."""
    if ext.length > COPY_CHECK_LIMIT or (ctx.diff is not None and not ctx.interesting(ext)):
        return
    same = [info for info in vol.files.values()
            if len(info.data) == 1 and info.data[0].length == ext.length and info.owner is None]
    if not same:
        return
    mine = _hash(ctx, ext)
    for info in same:
        if _hash(ctx, info.data[0]) != mine:
            continue
        delta = info.data[0].offset - ext.offset
        for _keys, n in child.walk():
            n.derived = n.derived + tuple(Derived(f.name, covers=tuple(e.shifted(delta) for e in f.extents))
                                          for f in n.fields if f.name not in {d.field for d in n.derived})
        pnode.attrs["copy_of"] = info.rec.path
        return


def _mbr_boot_code(tables: list[Node], vol: Volume) -> None:
    """Declare the isohybrid MBR boot code derived from the BIOS boot image's place (LBA*4 at offset 432)."""
    mbr = next((t for t in tables if t.kind.startswith("mbr")), None)
    if mbr is None or vol.catalog is None or len(vol.catalog.entries) < 2:
        return
    initial = vol.catalog.entries[1]
    rba = initial.field_named("load_rba")
    if rba is None:
        return
    mbr.derived = mbr.derived + (Derived("BootCode", covers=rba.extents),)
    mbr.attrs["isohybrid_boot_lba"] = int(rba.value) * 4  # type: ignore[arg-type]

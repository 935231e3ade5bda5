"""ISO 9660 (ECMA-119) with Rock Ridge, Joliet and El Torito, as xorriso writes it: every byte of the volume named.

A format package: :data:`NAME`, :func:`recognizes` and :func:`parse` (a volume in a region, e.g. an ISO file
inside another image) plus :func:`parse_image`, the whole-image view of an isohybrid ISO (the volume on top, the
MBR/GPT in its System Area aligned with it, appended partitions such as the ESP parsed as nested filesystems).

Modules, along the on-disk objects: ``c_iso9660`` (construct declarations), ``descriptors`` (volume descriptor
set), ``tree`` (the bounded directory walk), ``susp`` (SUSP/Rock Ridge entries and continuation areas),
``records`` (directory and record nodes), ``pathtables``, ``eltorito`` (boot catalog, boot info table),
``volume`` (scans, containers, files, unused sectors), ``hybrid`` (system area tables, appended partitions).

Tree (keys in brackets; all siblings have disjoint fields)::

    iso9660 [iso9660]
      iso9660.system_area [system_area]          sectors 0-15 not held by an MBR/GPT node
      iso9660.volume_descriptor [primary], [boot_record], [joliet], [terminator]
        iso9660.root_record [root_record]          (fields declared copies of the root's "." record)
      iso9660.path_table [path_table:<tree>:L|M|L2|M2] -> iso9660.path_table_record [<dir path>]
      iso9660.directories [directories] -> iso9660.directory [<dir path>] -> iso9660.dirrec [<path>|<dir>/.|<dir>/..]
      iso9660.joliet_directories [joliet_directories] -> iso9660.joliet_directory -> iso9660.joliet_dirrec
      iso9660.boot_catalog [boot_catalog] -> iso9660.eltorito_validation [validation],
                                             iso9660.eltorito_entry [initial], [section:N:entry:K],
                                             iso9660.eltorito_section_header [section:N], iso9660.eltorito_extension
      iso9660.files [files] -> iso9660.file [<path>] (data, slack, boot_info_table; the engine nests an image
                                                  such as /boot/efi.img under it)
      iso9660.boot_images [boot_images] -> iso9660.boot_image [lba:N]   El Torito images no file holds
      iso9660.unused [unused]                      sectors of the volume space nothing uses
      iso9660.tail [tail]                          region bytes after volume_space_size

Derived (copies and computed values): the Joliet descriptor's dates, sizes and identifiers (from the primary),
root records (from "."), "." and ".." records, Joliet records (from the primary record of the same path), path
table records (from the directory records; M and optional tables from the first L table), the validation entry
checksum, ``load_rba``/``sector_count`` of boot entries (from the image's record or GPT entry), the boot info
table, the isohybrid MBR boot code (boot image LBA), an appended partition that is a copy of an ISO file.

References:
    ECMA-119 4th edition (2019); Joliet specification (1995); IEEE P1281 SUSP 1.12 and P1282 RRIP 1.12;
    El Torito 1.0 (1995); libisofs 1.5.4 (ecma119.c, rockridge.c, eltorito.c, system_area.c,
    make_isohybrid_mbr.c) and xorriso(1)/xorrisofs(1) 1.5.4.
"""

from __future__ import annotations

from imgdiff.formats.base import ParseContext
from imgdiff.formats.iso9660.c_iso9660 import STANDARD_IDENTIFIER, SYSTEM_AREA
from imgdiff.formats.iso9660.hybrid import parse_image
from imgdiff.formats.iso9660.volume import Volume
from imgdiff.model import Node

NAME = "iso9660"

__all__ = ["NAME", "parse", "parse_image", "recognizes"]


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region holds a volume descriptor ("CD001") at logical sector 16."""
    return size >= SYSTEM_AREA + 2 * 2048 and head[SYSTEM_AREA + 1 : SYSTEM_AREA + 6] == STANDARD_IDENTIFIER


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``iso9660`` node of the volume in ``[base, base + size)``; raise ParseError without a primary."""
    return Volume(ctx, base, size, label).build()

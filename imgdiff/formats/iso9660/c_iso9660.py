"""construct declarations of ISO 9660 (ECMA-119), Joliet, SUSP/Rock Ridge entries and the El Torito boot catalog.

Declarations only; the modules of :mod:`imgdiff.formats.iso9660` turn them into nodes.  Field names are the
standards' names in snake case ("Location of Extent" -> ``location_of_extent``), so they grep against the
specifications and against libisofs/pycdlib, which use the same words.

ECMA-119 records numbers "both-byte orders" (7.2.3, 7.3.3: the little-endian value followed by the big-endian
copy).  Such a field is declared as ``Bytes(4)``/``Bytes(8)`` here and decoded by :func:`both16`/:func:`both32`
(the value is the little-endian half; the big-endian half is checked), because one field owns both halves: they are
one value written twice.

References:
    ECMA-119 4th edition (2019), sections 8.4 (Primary Volume Descriptor), 8.5 (Supplementary Volume Descriptor),
    8.2 (Boot Record), 8.3 (Volume Descriptor Set Terminator), 9.1 (Directory Record), 9.4 (Path Table Record),
    9.1.5 (recording date), 8.4.26.1 (dec-datetime);
    Joliet Specification (Microsoft, 1995): escape sequences %/@ %/C %/E, UCS-2 big-endian identifiers;
    IEEE P1281 System Use Sharing Protocol 1.12 (SUSP: SP, CE, ER, ES, PD, ST);
    IEEE P1282 Rock Ridge Interchange Protocol 1.12 (RRIP: PX, PN, SL, NM, CL, PL, RE, TF, SF, RR);
    "El Torito" Bootable CD-ROM Format Specification 1.0 (Phoenix/IBM, 1995), sections 2.0-2.4;
    libisofs ecma119.h, rockridge.c, eltorito.c (what xorriso writes).
"""

from __future__ import annotations

import construct as c

SECTOR = 2048
"""Logical sector (and, for xorriso, logical block) size of an ISO 9660 volume."""
SYSTEM_AREA = 16 * SECTOR
"""Logical sectors 0-15 are the System Area (ECMA-119 6.2.1): the isohybrid MBR/GPT lives there."""
STANDARD_IDENTIFIER = b"CD001"

VD_BOOT_RECORD = 0
VD_PRIMARY = 1
VD_SUPPLEMENTARY = 2
VD_PARTITION = 3
VD_TERMINATOR = 255

JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")
"""UCS-2 levels 1, 2 and 3 (Joliet specification, "Identification of Joliet")."""

# ECMA-119 9.1.6 File Flags
FLAG_EXISTENCE = 0x01
FLAG_DIRECTORY = 0x02
FLAG_ASSOCIATED_FILE = 0x04
FLAG_RECORD = 0x08
FLAG_PROTECTION = 0x10
FLAG_MULTI_EXTENT = 0x80
FILE_FLAG_NAMES = (
    (FLAG_EXISTENCE, "hidden"),
    (FLAG_DIRECTORY, "directory"),
    (FLAG_ASSOCIATED_FILE, "associated"),
    (FLAG_RECORD, "record"),
    (FLAG_PROTECTION, "protection"),
    (FLAG_MULTI_EXTENT, "multi-extent"),
)

VOLUME_DESCRIPTOR_HEADER = c.Struct(
    "volume_descriptor_type" / c.Int8ul,
    "standard_identifier" / c.Bytes(5),
    "volume_descriptor_version" / c.Int8ul,
)

PRIMARY_VOLUME_DESCRIPTOR = c.Struct(
    "volume_descriptor_type" / c.Int8ul,
    "standard_identifier" / c.Bytes(5),
    "volume_descriptor_version" / c.Int8ul,
    "volume_flags" / c.Int8ul,  # unused (zero) in the primary descriptor, Volume Flags in a supplementary one
    "system_identifier" / c.Bytes(32),
    "volume_identifier" / c.Bytes(32),
    "unused_field_72" / c.Bytes(8),
    "volume_space_size" / c.Bytes(8),  # 7.3.3 both-byte orders
    "escape_sequences" / c.Bytes(32),  # unused (zero) in the primary descriptor
    "volume_set_size" / c.Bytes(4),  # 7.2.3
    "volume_sequence_number" / c.Bytes(4),  # 7.2.3
    "logical_block_size" / c.Bytes(4),  # 7.2.3
    "path_table_size" / c.Bytes(8),  # 7.3.3
    "location_of_type_l_path_table" / c.Int32ul,
    "location_of_optional_type_l_path_table" / c.Int32ul,
    "location_of_type_m_path_table" / c.Bytes(4),  # 7.3.2 big-endian
    "location_of_optional_type_m_path_table" / c.Bytes(4),
    "directory_record_for_root_directory" / c.Bytes(34),
    "volume_set_identifier" / c.Bytes(128),
    "publisher_identifier" / c.Bytes(128),
    "data_preparer_identifier" / c.Bytes(128),
    "application_identifier" / c.Bytes(128),
    "copyright_file_identifier" / c.Bytes(37),
    "abstract_file_identifier" / c.Bytes(37),
    "bibliographic_file_identifier" / c.Bytes(37),
    "volume_creation_date_and_time" / c.Bytes(17),  # 8.4.26.1 dec-datetime
    "volume_modification_date_and_time" / c.Bytes(17),
    "volume_expiration_date_and_time" / c.Bytes(17),
    "volume_effective_date_and_time" / c.Bytes(17),
    "file_structure_version" / c.Int8ul,
    "reserved_field_882" / c.Int8ul,
    "application_use" / c.Bytes(512),
    "reserved_field_1395" / c.Bytes(653),
)
"""The Primary (8.4) and Supplementary (8.5) Volume Descriptor: one layout, 2048 bytes."""

BOOT_RECORD = c.Struct(
    "volume_descriptor_type" / c.Int8ul,
    "standard_identifier" / c.Bytes(5),
    "volume_descriptor_version" / c.Int8ul,
    "boot_system_identifier" / c.Bytes(32),
    "boot_identifier" / c.Bytes(32),
    "boot_catalog_pointer" / c.Int32ul,  # El Torito 2.0: absolute pointer to the first sector of the catalog
    "boot_system_use" / c.Bytes(1973),
)
"""The Boot Record (ECMA-119 8.2) as El Torito fills it (Boot System Use begins with the catalog pointer)."""

TERMINATOR = c.Struct(
    "volume_descriptor_type" / c.Int8ul,
    "standard_identifier" / c.Bytes(5),
    "volume_descriptor_version" / c.Int8ul,
    "reserved_field_7" / c.Bytes(2041),
)
"""The Volume Descriptor Set Terminator (8.3); any other descriptor type is kept as one opaque body."""

DIRECTORY_RECORD = c.Struct(
    "length_of_directory_record" / c.Int8ul,
    "extended_attribute_record_length" / c.Int8ul,
    "location_of_extent" / c.Bytes(8),  # 7.3.3
    "data_length" / c.Bytes(8),  # 7.3.3
    "recording_date_and_time" / c.Bytes(7),  # 9.1.5
    "file_flags" / c.Int8ul,
    "file_unit_size" / c.Int8ul,
    "interleave_gap_size" / c.Int8ul,
    "volume_sequence_number" / c.Bytes(4),  # 7.2.3
    "length_of_file_identifier" / c.Int8ul,
)
"""The fixed 33 bytes of a Directory Record (9.1); File Identifier, Padding Field and System Use follow."""

PATH_TABLE_RECORD = c.Struct(
    "length_of_directory_identifier" / c.Int8ul,
    "extended_attribute_record_length" / c.Int8ul,
    "location_of_extent" / c.Int32ul,
    "parent_directory_number" / c.Int16ul,
)
"""The fixed 8 bytes of a Path Table Record (9.4); Directory Identifier and Padding Field follow.

Type L tables store the numbers little-endian, type M tables big-endian (compile with ``">"``).
"""

# ------------------------------------------------------------------------------------------------------------
# SUSP / RRIP entries: every entry starts with the 4-byte header; the body layouts follow the signature.

SUSP_HEADER = c.Struct(
    "signature_word" / c.Bytes(2),
    "length" / c.Int8ul,
    "system_use_entry_version" / c.Int8ul,
)

SUSP_BODIES: dict[bytes, c.Struct] = {  # type: ignore[type-arg]
    b"SP": c.Struct("check_bytes" / c.Bytes(2), "len_skp" / c.Int8ul),
    b"CE": c.Struct(
        "block_location_of_continuation_area" / c.Bytes(8),
        "offset_to_start_of_continuation_area" / c.Bytes(8),
        "length_of_continuation_area" / c.Bytes(8),
    ),
    b"ER": c.Struct("len_id" / c.Int8ul, "len_des" / c.Int8ul, "len_src" / c.Int8ul, "ext_ver" / c.Int8ul),
    b"ES": c.Struct("extension_sequence" / c.Int8ul),
    b"PX": c.Struct(
        "posix_file_mode" / c.Bytes(8),
        "posix_file_links" / c.Bytes(8),
        "posix_file_user_id" / c.Bytes(8),
        "posix_file_group_id" / c.Bytes(8),
    ),
    b"PN": c.Struct("dev_t_high" / c.Bytes(8), "dev_t_low" / c.Bytes(8)),
    b"CL": c.Struct("location_of_child_directory" / c.Bytes(8)),
    b"PL": c.Struct("location_of_parent_directory" / c.Bytes(8)),
    b"NM": c.Struct("flags" / c.Int8ul),
    b"SL": c.Struct("flags" / c.Int8ul),
    b"TF": c.Struct("flags" / c.Int8ul),
    b"RR": c.Struct("flags" / c.Int8ul),
    b"ZF": c.Struct(
        "algorithm" / c.Bytes(2),
        "header_size_div_4" / c.Int8ul,
        "log2_of_block_size" / c.Int8ul,
        "uncompressed_size" / c.Bytes(8),
    ),
}
"""Fixed body members per signature; variable parts (names, ER texts, TF stamps) are handled by the parser."""

PX_SERIAL = "posix_file_serial_number"
"""RRIP 1.12 PX adds the 8-byte POSIX File Serial Number (inode number) after the group ID (44-byte PX)."""

SP_CHECK_BYTES = b"\xbe\xef"

TF_FLAGS = (
    (0x01, "creation"),
    (0x02, "modify"),
    (0x04, "access"),
    (0x08, "attributes"),
    (0x10, "backup"),
    (0x20, "expiration"),
    (0x40, "effective"),
)
"""RRIP 4.1.6: the time stamps a TF entry records, in the order they are recorded."""
TF_LONG_FORM = 0x80
"""TF flag bit 7: stamps are 17-byte dec-datetimes instead of 7-byte directory record dates."""

NM_CONTINUE = 0x01
NM_CURRENT = 0x02
NM_PARENT = 0x04
SL_CONTINUE = 0x01

# ------------------------------------------------------------------------------------------------------------
# El Torito boot catalog: 32-byte entries.

VALIDATION_ENTRY = c.Struct(
    "header_id" / c.Int8ul,
    "platform_id" / c.Int8ul,
    "reserved" / c.Int16ul,
    "id_string" / c.Bytes(24),
    "checksum_word" / c.Int16ul,
    "key_byte_55" / c.Int8ul,
    "key_byte_aa" / c.Int8ul,
)
"""El Torito 2.1: the Validation Entry (the 16-bit words of the entry sum to zero)."""

SECTION_ENTRY = c.Struct(
    "boot_indicator" / c.Int8ul,
    "boot_media_type" / c.Int8ul,
    "load_segment" / c.Int16ul,
    "system_type" / c.Int8ul,
    "unused_field_5" / c.Int8ul,
    "sector_count" / c.Int16ul,
    "load_rba" / c.Int32ul,
    "selection_criteria_type" / c.Int8ul,
    "vendor_unique_selection_criteria" / c.Bytes(19),
)
"""El Torito 2.2/2.4: the Initial/Default Entry and every Section Entry (the initial entry's last 20 bytes are
unused; they are named as in a section entry, xorriso leaves them zero)."""

SECTION_HEADER_ENTRY = c.Struct(
    "header_indicator" / c.Int8ul,
    "platform_id" / c.Int8ul,
    "number_of_section_entries" / c.Int16ul,
    "id_string" / c.Bytes(28),
)
"""El Torito 2.3: the Section Header Entry (0x90, or 0x91 for the final header)."""

BOOT_INFO_TABLE = c.Struct(
    "bi_pvd" / c.Int32ul,
    "bi_file" / c.Int32ul,
    "bi_length" / c.Int32ul,
    "bi_csum" / c.Int32ul,
    "bi_reserved" / c.Bytes(40),
)
"""The boot information table that ``-boot-info-table`` patches into bytes 8-63 of the BIOS boot image
(mkisofs/xorriso; names as in isolinux.asm and the xorrisofs man page)."""
BOOT_INFO_OFFSET = 8

PLATFORMS = {0: "x86 BIOS", 1: "PowerPC", 2: "Mac", 0xEF: "UEFI"}
BOOT_MEDIA_TYPES = {0: "no emulation", 1: "1.2M diskette", 2: "1.44M diskette", 3: "2.88M diskette", 4: "hard disk"}
BOOTABLE = 0x88
NOT_BOOTABLE = 0x00
SECTION_HEADER = 0x90
FINAL_SECTION_HEADER = 0x91
EXTENSION_ENTRY = 0x44

"""construct declarations of the btrfs on-disk structures, with the kernel's member names, and their constants.

Declarations and constants only; the other modules of :mod:`imgdiff.formats.btrfs` turn them into nodes (through
:class:`~imgdiff.formats.compiled.Compiled`).  Member names are those of ``include/uapi/linux/btrfs_tree.h`` (the
kernel) = ``kernel-shared/uapi/btrfs_tree.h`` (btrfs-progs).  Nested structures are flattened with a dotted prefix
(``dev_item.uuid``, ``atime.sec``, ``drop_progress.objectid``) because the struct fast path needs flat members;
the prefix is the member name of the embedded structure in the C declaration.  Every integer is little endian.

References:
    include/uapi/linux/btrfs_tree.h, include/uapi/linux/btrfs.h (Linux 6.x);
    btrfs-progs kernel-shared/uapi/btrfs_tree.h, kernel-shared/ctree.h
    https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html
"""

from __future__ import annotations

import construct as c

BTRFS_MAGIC = b"_BHRfS_M"
BTRFS_SUPER_INFO_OFFSET = 0x10000
BTRFS_SUPER_INFO_SIZE = 4096
BTRFS_SUPER_MIRROR_MAX = 3
BTRFS_SUPER_MIRROR_SHIFT = 12
BTRFS_CSUM_SIZE = 32
BTRFS_UUID_SIZE = 16
BTRFS_SYSTEM_CHUNK_ARRAY_SIZE = 2048
BTRFS_NUM_BACKUP_ROOTS = 4
BTRFS_MAX_LEVEL = 8
BTRFS_LABEL_SIZE = 256
BTRFS_DEVICE_RANGE_RESERVED = 1 << 20
"""btrfs never allocates the first MiB of a device (boot loader area and the primary superblock)."""


def btrfs_sb_offset(mirror: int) -> int:
    """Return the byte offset of superblock copy ``mirror`` (0: 64 KiB, 1: 64 MiB, 2: 256 GiB)."""
    start = 16 * 1024
    return start << (BTRFS_SUPER_MIRROR_SHIFT * mirror) if mirror else BTRFS_SUPER_INFO_OFFSET


def _embed(prefix: str, struct: c.Struct) -> list[c.Construct]:
    """Return the members of ``struct`` renamed ``prefix + name`` (a flattened embedded structure)."""
    return [(prefix + sub.name) / sub.subcon for sub in struct.subcons]


# fmt: off
BTRFS_DISK_KEY = c.Struct(
    "objectid" / c.Int64ul,
    "type" / c.Int8ul,
    "offset" / c.Int64ul,
)
"""``struct btrfs_disk_key`` (17 bytes)."""

BTRFS_TIMESPEC = c.Struct(
    "sec" / c.Int64ul,
    "nsec" / c.Int32ul,
)
"""``struct btrfs_timespec`` (12 bytes)."""

BTRFS_DEV_ITEM = c.Struct(
    "devid" / c.Int64ul,
    "total_bytes" / c.Int64ul,
    "bytes_used" / c.Int64ul,
    "io_align" / c.Int32ul,
    "io_width" / c.Int32ul,
    "sector_size" / c.Int32ul,
    "type" / c.Int64ul,
    "generation" / c.Int64ul,
    "start_offset" / c.Int64ul,
    "dev_group" / c.Int32ul,
    "seek_speed" / c.Int8ul,
    "bandwidth" / c.Int8ul,
    "uuid" / c.Bytes(BTRFS_UUID_SIZE),
    "fsid" / c.Bytes(BTRFS_UUID_SIZE),
)
"""``struct btrfs_dev_item`` (98 bytes): in the superblock and as the chunk tree's DEV_ITEM payload."""

BTRFS_ROOT_BACKUP = c.Struct(
    "tree_root" / c.Int64ul,
    "tree_root_gen" / c.Int64ul,
    "chunk_root" / c.Int64ul,
    "chunk_root_gen" / c.Int64ul,
    "extent_root" / c.Int64ul,
    "extent_root_gen" / c.Int64ul,
    "fs_root" / c.Int64ul,
    "fs_root_gen" / c.Int64ul,
    "dev_root" / c.Int64ul,
    "dev_root_gen" / c.Int64ul,
    "csum_root" / c.Int64ul,
    "csum_root_gen" / c.Int64ul,
    "total_bytes" / c.Int64ul,
    "bytes_used" / c.Int64ul,
    "num_devices" / c.Int64ul,
    "unused_64" / c.Bytes(32),
    "tree_root_level" / c.Int8ul,
    "chunk_root_level" / c.Int8ul,
    "extent_root_level" / c.Int8ul,
    "fs_root_level" / c.Int8ul,
    "dev_root_level" / c.Int8ul,
    "csum_root_level" / c.Int8ul,
    "unused_8" / c.Bytes(10),
)
"""``struct btrfs_root_backup`` (168 bytes): the superblock's four ``super_roots``."""

BTRFS_SUPER_BLOCK = c.Struct(
    "csum" / c.Bytes(BTRFS_CSUM_SIZE),       # 0x000
    "fsid" / c.Bytes(BTRFS_UUID_SIZE),       # 0x020
    "bytenr" / c.Int64ul,                    # 0x030
    "flags" / c.Int64ul,
    "magic" / c.Bytes(8),                    # 0x040
    "generation" / c.Int64ul,
    "root" / c.Int64ul,                      # 0x050
    "chunk_root" / c.Int64ul,
    "log_root" / c.Int64ul,                  # 0x060
    "__unused_log_root_transid" / c.Int64ul,
    "total_bytes" / c.Int64ul,               # 0x070
    "bytes_used" / c.Int64ul,
    "root_dir_objectid" / c.Int64ul,         # 0x080
    "num_devices" / c.Int64ul,
    "sectorsize" / c.Int32ul,                # 0x090
    "nodesize" / c.Int32ul,
    "__unused_leafsize" / c.Int32ul,
    "stripesize" / c.Int32ul,
    "sys_chunk_array_size" / c.Int32ul,      # 0x0A0
    "chunk_root_generation" / c.Int64ul,
    "compat_flags" / c.Int64ul,              # 0x0AC
    "compat_ro_flags" / c.Int64ul,
    "incompat_flags" / c.Int64ul,            # 0x0BC
    "csum_type" / c.Int16ul,                 # 0x0C4
    "root_level" / c.Int8ul,
    "chunk_root_level" / c.Int8ul,
    "log_root_level" / c.Int8ul,
    *_embed("dev_item.", BTRFS_DEV_ITEM),    # 0x0C9
    "label" / c.Bytes(BTRFS_LABEL_SIZE),     # 0x12B
    "cache_generation" / c.Int64ul,          # 0x22B
    "uuid_tree_generation" / c.Int64ul,
    "metadata_uuid" / c.Bytes(BTRFS_UUID_SIZE),  # 0x23B
    "nr_global_roots" / c.Int64ul,           # 0x24B
    "reserved" / c.Bytes(27 * 8),            # __le64 reserved[27]
    "sys_chunk_array" / c.Bytes(BTRFS_SYSTEM_CHUNK_ARRAY_SIZE),  # 0x32B
    *[m for i in range(BTRFS_NUM_BACKUP_ROOTS) for m in _embed(f"super_roots[{i}].", BTRFS_ROOT_BACKUP)],
    "padding" / c.Bytes(565),
)
"""``struct btrfs_super_block`` (4096 bytes at 64 KiB, mirrors at 64 MiB and 256 GiB)."""

BTRFS_HEADER = c.Struct(
    "csum" / c.Bytes(BTRFS_CSUM_SIZE),
    "fsid" / c.Bytes(BTRFS_UUID_SIZE),
    "bytenr" / c.Int64ul,
    "flags" / c.Int64ul,
    "chunk_tree_uuid" / c.Bytes(BTRFS_UUID_SIZE),
    "generation" / c.Int64ul,
    "owner" / c.Int64ul,
    "nritems" / c.Int32ul,
    "level" / c.Int8ul,
)
"""``struct btrfs_header`` (101 bytes): the start of every tree block (leaf or node)."""

BTRFS_ITEM = c.Struct(
    *_embed("key.", BTRFS_DISK_KEY),
    "offset" / c.Int32ul,
    "size" / c.Int32ul,
)
"""``struct btrfs_item`` (25 bytes): a leaf's item header; ``offset`` counts from the end of the header."""

BTRFS_KEY_PTR = c.Struct(
    *_embed("key.", BTRFS_DISK_KEY),
    "blockptr" / c.Int64ul,
    "generation" / c.Int64ul,
)
"""``struct btrfs_key_ptr`` (33 bytes): a node's pointer to a child block."""

BTRFS_INODE_ITEM = c.Struct(
    "generation" / c.Int64ul,
    "transid" / c.Int64ul,
    "size" / c.Int64ul,
    "nbytes" / c.Int64ul,
    "block_group" / c.Int64ul,
    "nlink" / c.Int32ul,
    "uid" / c.Int32ul,
    "gid" / c.Int32ul,
    "mode" / c.Int32ul,
    "rdev" / c.Int64ul,
    "flags" / c.Int64ul,
    "sequence" / c.Int64ul,
    "reserved" / c.Bytes(32),
    *_embed("atime.", BTRFS_TIMESPEC),
    *_embed("ctime.", BTRFS_TIMESPEC),
    *_embed("mtime.", BTRFS_TIMESPEC),
    *_embed("otime.", BTRFS_TIMESPEC),
)
"""``struct btrfs_inode_item`` (160 bytes)."""

BTRFS_INODE_REF = c.Struct(
    "index" / c.Int64ul,
    "name_len" / c.Int16ul,
)
"""``struct btrfs_inode_ref`` (10 bytes, then ``name``); one item packs the refs of one parent directory."""

BTRFS_INODE_EXTREF = c.Struct(
    "parent_objectid" / c.Int64ul,
    "index" / c.Int64ul,
    "name_len" / c.Int16ul,
)
"""``struct btrfs_inode_extref`` (18 bytes, then ``name``)."""

BTRFS_DIR_ITEM = c.Struct(
    *_embed("location.", BTRFS_DISK_KEY),
    "transid" / c.Int64ul,
    "data_len" / c.Int16ul,
    "name_len" / c.Int16ul,
    "type" / c.Int8ul,
)
"""``struct btrfs_dir_item`` (30 bytes, then ``name`` and ``data``): DIR_ITEM, DIR_INDEX and XATTR_ITEM payloads."""

BTRFS_FILE_EXTENT_ITEM_HEAD = c.Struct(
    "generation" / c.Int64ul,
    "ram_bytes" / c.Int64ul,
    "compression" / c.Int8ul,
    "encryption" / c.Int8ul,
    "other_encoding" / c.Int16ul,
    "type" / c.Int8ul,
)
"""The first 21 bytes of ``struct btrfs_file_extent_item``; inline extent data starts right after ``type``."""

BTRFS_FILE_EXTENT_ITEM_REG = c.Struct(
    "disk_bytenr" / c.Int64ul,
    "disk_num_bytes" / c.Int64ul,
    "offset" / c.Int64ul,
    "num_bytes" / c.Int64ul,
)
"""The rest of ``struct btrfs_file_extent_item`` (32 bytes) for regular and preallocated extents."""

BTRFS_ROOT_ITEM = c.Struct(
    *_embed("inode.", BTRFS_INODE_ITEM),
    "generation" / c.Int64ul,
    "root_dirid" / c.Int64ul,
    "bytenr" / c.Int64ul,
    "byte_limit" / c.Int64ul,
    "bytes_used" / c.Int64ul,
    "last_snapshot" / c.Int64ul,
    "flags" / c.Int64ul,
    "refs" / c.Int32ul,
    *_embed("drop_progress.", BTRFS_DISK_KEY),
    "drop_level" / c.Int8ul,
    "level" / c.Int8ul,
    "generation_v2" / c.Int64ul,             # from here on: absent in a legacy (239-byte) root item
    "uuid" / c.Bytes(BTRFS_UUID_SIZE),
    "parent_uuid" / c.Bytes(BTRFS_UUID_SIZE),
    "received_uuid" / c.Bytes(BTRFS_UUID_SIZE),
    "ctransid" / c.Int64ul,
    "otransid" / c.Int64ul,
    "stransid" / c.Int64ul,
    "rtransid" / c.Int64ul,
    *_embed("ctime.", BTRFS_TIMESPEC),
    *_embed("otime.", BTRFS_TIMESPEC),
    *_embed("stime.", BTRFS_TIMESPEC),
    *_embed("rtime.", BTRFS_TIMESPEC),
    "reserved" / c.Bytes(64),
)
"""``struct btrfs_root_item`` (439 bytes; 239 in the legacy format that ends before ``generation_v2``)."""

BTRFS_ROOT_REF = c.Struct(
    "dirid" / c.Int64ul,
    "sequence" / c.Int64ul,
    "name_len" / c.Int16ul,
)
"""``struct btrfs_root_ref`` (18 bytes, then ``name``): ROOT_REF and ROOT_BACKREF payloads."""

BTRFS_EXTENT_ITEM = c.Struct(
    "refs" / c.Int64ul,
    "generation" / c.Int64ul,
    "flags" / c.Int64ul,
)
"""``struct btrfs_extent_item`` (24 bytes), followed by inline back references."""

BTRFS_TREE_BLOCK_INFO = c.Struct(
    *_embed("key.", BTRFS_DISK_KEY),
    "level" / c.Int8ul,
)
"""``struct btrfs_tree_block_info`` (18 bytes): after a non-skinny tree block's EXTENT_ITEM."""

BTRFS_EXTENT_INLINE_REF = c.Struct(
    "type" / c.Int8ul,
    "offset" / c.Int64ul,
)
"""``struct btrfs_extent_inline_ref`` (9 bytes); for EXTENT_DATA_REF the data ref takes the place of ``offset``."""

BTRFS_EXTENT_DATA_REF = c.Struct(
    "root" / c.Int64ul,
    "objectid" / c.Int64ul,
    "offset" / c.Int64ul,
    "count" / c.Int32ul,
)
"""``struct btrfs_extent_data_ref`` (28 bytes)."""

BTRFS_SHARED_DATA_REF = c.Struct(
    "count" / c.Int32ul,
)
"""``struct btrfs_shared_data_ref`` (4 bytes)."""

BTRFS_BLOCK_GROUP_ITEM = c.Struct(
    "used" / c.Int64ul,
    "chunk_objectid" / c.Int64ul,
    "flags" / c.Int64ul,
)
"""``struct btrfs_block_group_item`` (24 bytes)."""

BTRFS_FREE_SPACE_INFO = c.Struct(
    "extent_count" / c.Int32ul,
    "flags" / c.Int32ul,
)
"""``struct btrfs_free_space_info`` (8 bytes)."""

BTRFS_DEV_EXTENT = c.Struct(
    "chunk_tree" / c.Int64ul,
    "chunk_objectid" / c.Int64ul,
    "chunk_offset" / c.Int64ul,
    "length" / c.Int64ul,
    "chunk_tree_uuid" / c.Bytes(BTRFS_UUID_SIZE),
)
"""``struct btrfs_dev_extent`` (48 bytes)."""

BTRFS_CHUNK = c.Struct(
    "length" / c.Int64ul,
    "owner" / c.Int64ul,
    "stripe_len" / c.Int64ul,
    "type" / c.Int64ul,
    "io_align" / c.Int32ul,
    "io_width" / c.Int32ul,
    "sector_size" / c.Int32ul,
    "num_stripes" / c.Int16ul,
    "sub_stripes" / c.Int16ul,
)
"""``struct btrfs_chunk`` without its first stripe (48 bytes); ``num_stripes`` btrfs_stripe follow."""

BTRFS_STRIPE = c.Struct(
    "devid" / c.Int64ul,
    "offset" / c.Int64ul,
    "dev_uuid" / c.Bytes(BTRFS_UUID_SIZE),
)
"""``struct btrfs_stripe`` (32 bytes)."""

BTRFS_FREE_SPACE_HEADER = c.Struct(
    *_embed("location.", BTRFS_DISK_KEY),
    "generation" / c.Int64ul,
    "num_entries" / c.Int64ul,
    "num_bitmaps" / c.Int64ul,
)
"""``struct btrfs_free_space_header`` (41 bytes): a free-space-cache (v1) header item in the root tree."""
# fmt: on

# ---- objectids (btrfs_tree.h) ---------------------------------------------------------------------------------

BTRFS_ROOT_TREE_OBJECTID = 1
BTRFS_EXTENT_TREE_OBJECTID = 2
BTRFS_CHUNK_TREE_OBJECTID = 3
BTRFS_DEV_TREE_OBJECTID = 4
BTRFS_FS_TREE_OBJECTID = 5
BTRFS_ROOT_TREE_DIR_OBJECTID = 6
BTRFS_CSUM_TREE_OBJECTID = 7
BTRFS_QUOTA_TREE_OBJECTID = 8
BTRFS_UUID_TREE_OBJECTID = 9
BTRFS_FREE_SPACE_TREE_OBJECTID = 10
BTRFS_BLOCK_GROUP_TREE_OBJECTID = 11
BTRFS_RAID_STRIPE_TREE_OBJECTID = 12
BTRFS_DEV_STATS_OBJECTID = 0
_U64 = 1 << 64
BTRFS_BALANCE_OBJECTID = _U64 - 4
BTRFS_ORPHAN_OBJECTID = _U64 - 5
BTRFS_TREE_LOG_OBJECTID = _U64 - 6
BTRFS_TREE_LOG_FIXUP_OBJECTID = _U64 - 7
BTRFS_TREE_RELOC_OBJECTID = _U64 - 8
BTRFS_DATA_RELOC_TREE_OBJECTID = _U64 - 9
BTRFS_EXTENT_CSUM_OBJECTID = _U64 - 10
BTRFS_FREE_SPACE_OBJECTID = _U64 - 11
BTRFS_FREE_INO_OBJECTID = _U64 - 12
BTRFS_FIRST_FREE_OBJECTID = 256
BTRFS_LAST_FREE_OBJECTID = _U64 - 256
BTRFS_FIRST_CHUNK_TREE_OBJECTID = 256
BTRFS_DEV_ITEMS_OBJECTID = 1

OBJECTID_NAMES: dict[int, str] = {
    BTRFS_ROOT_TREE_OBJECTID: "ROOT_TREE",
    BTRFS_EXTENT_TREE_OBJECTID: "EXTENT_TREE",
    BTRFS_CHUNK_TREE_OBJECTID: "CHUNK_TREE",
    BTRFS_DEV_TREE_OBJECTID: "DEV_TREE",
    BTRFS_FS_TREE_OBJECTID: "FS_TREE",
    BTRFS_ROOT_TREE_DIR_OBJECTID: "ROOT_TREE_DIR",
    BTRFS_CSUM_TREE_OBJECTID: "CSUM_TREE",
    BTRFS_QUOTA_TREE_OBJECTID: "QUOTA_TREE",
    BTRFS_UUID_TREE_OBJECTID: "UUID_TREE",
    BTRFS_FREE_SPACE_TREE_OBJECTID: "FREE_SPACE_TREE",
    BTRFS_BLOCK_GROUP_TREE_OBJECTID: "BLOCK_GROUP_TREE",
    BTRFS_RAID_STRIPE_TREE_OBJECTID: "RAID_STRIPE_TREE",
    BTRFS_BALANCE_OBJECTID: "BALANCE",
    BTRFS_ORPHAN_OBJECTID: "ORPHAN",
    BTRFS_TREE_LOG_OBJECTID: "TREE_LOG",
    BTRFS_TREE_LOG_FIXUP_OBJECTID: "TREE_LOG_FIXUP",
    BTRFS_TREE_RELOC_OBJECTID: "TREE_RELOC",
    BTRFS_DATA_RELOC_TREE_OBJECTID: "DATA_RELOC_TREE",
    BTRFS_EXTENT_CSUM_OBJECTID: "EXTENT_CSUM",
    BTRFS_FREE_SPACE_OBJECTID: "FREE_SPACE",
    BTRFS_FREE_INO_OBJECTID: "FREE_INO",
}
"""Names dump-tree prints for well-known objectids (key objectids below 256 and the negative ones)."""

# ---- item key types ------------------------------------------------------------------------------------------

BTRFS_INODE_ITEM_KEY = 1
BTRFS_INODE_REF_KEY = 12
BTRFS_INODE_EXTREF_KEY = 13
BTRFS_XATTR_ITEM_KEY = 24
BTRFS_VERITY_DESC_ITEM_KEY = 36
BTRFS_VERITY_MERKLE_ITEM_KEY = 37
BTRFS_ORPHAN_ITEM_KEY = 48
BTRFS_DIR_LOG_ITEM_KEY = 60
BTRFS_DIR_LOG_INDEX_KEY = 72
BTRFS_DIR_ITEM_KEY = 84
BTRFS_DIR_INDEX_KEY = 96
BTRFS_EXTENT_DATA_KEY = 108
BTRFS_EXTENT_CSUM_KEY = 128
BTRFS_ROOT_ITEM_KEY = 132
BTRFS_ROOT_BACKREF_KEY = 144
BTRFS_ROOT_REF_KEY = 156
BTRFS_EXTENT_ITEM_KEY = 168
BTRFS_METADATA_ITEM_KEY = 169
BTRFS_EXTENT_OWNER_REF_KEY = 172
BTRFS_TREE_BLOCK_REF_KEY = 176
BTRFS_EXTENT_DATA_REF_KEY = 178
BTRFS_SHARED_BLOCK_REF_KEY = 182
BTRFS_SHARED_DATA_REF_KEY = 184
BTRFS_BLOCK_GROUP_ITEM_KEY = 192
BTRFS_FREE_SPACE_INFO_KEY = 198
BTRFS_FREE_SPACE_EXTENT_KEY = 199
BTRFS_FREE_SPACE_BITMAP_KEY = 200
BTRFS_DEV_EXTENT_KEY = 204
BTRFS_DEV_ITEM_KEY = 216
BTRFS_CHUNK_ITEM_KEY = 228
BTRFS_RAID_STRIPE_KEY = 230
BTRFS_QGROUP_STATUS_KEY = 240
BTRFS_QGROUP_INFO_KEY = 242
BTRFS_QGROUP_LIMIT_KEY = 244
BTRFS_QGROUP_RELATION_KEY = 246
BTRFS_TEMPORARY_ITEM_KEY = 248
BTRFS_PERSISTENT_ITEM_KEY = 249
BTRFS_DEV_REPLACE_KEY = 250
BTRFS_UUID_KEY_SUBVOL = 251
BTRFS_UUID_KEY_RECEIVED_SUBVOL = 252
BTRFS_STRING_ITEM_KEY = 253

KEY_TYPE_NAMES: dict[int, str] = {
    BTRFS_INODE_ITEM_KEY: "INODE_ITEM",
    BTRFS_INODE_REF_KEY: "INODE_REF",
    BTRFS_INODE_EXTREF_KEY: "INODE_EXTREF",
    BTRFS_XATTR_ITEM_KEY: "XATTR_ITEM",
    BTRFS_VERITY_DESC_ITEM_KEY: "VERITY_DESC_ITEM",
    BTRFS_VERITY_MERKLE_ITEM_KEY: "VERITY_MERKLE_ITEM",
    BTRFS_ORPHAN_ITEM_KEY: "ORPHAN_ITEM",
    BTRFS_DIR_LOG_ITEM_KEY: "DIR_LOG_ITEM",
    BTRFS_DIR_LOG_INDEX_KEY: "DIR_LOG_INDEX",
    BTRFS_DIR_ITEM_KEY: "DIR_ITEM",
    BTRFS_DIR_INDEX_KEY: "DIR_INDEX",
    BTRFS_EXTENT_DATA_KEY: "EXTENT_DATA",
    BTRFS_EXTENT_CSUM_KEY: "EXTENT_CSUM",
    BTRFS_ROOT_ITEM_KEY: "ROOT_ITEM",
    BTRFS_ROOT_BACKREF_KEY: "ROOT_BACKREF",
    BTRFS_ROOT_REF_KEY: "ROOT_REF",
    BTRFS_EXTENT_ITEM_KEY: "EXTENT_ITEM",
    BTRFS_METADATA_ITEM_KEY: "METADATA_ITEM",
    BTRFS_EXTENT_OWNER_REF_KEY: "EXTENT_OWNER_REF",
    BTRFS_TREE_BLOCK_REF_KEY: "TREE_BLOCK_REF",
    BTRFS_EXTENT_DATA_REF_KEY: "EXTENT_DATA_REF",
    BTRFS_SHARED_BLOCK_REF_KEY: "SHARED_BLOCK_REF",
    BTRFS_SHARED_DATA_REF_KEY: "SHARED_DATA_REF",
    BTRFS_BLOCK_GROUP_ITEM_KEY: "BLOCK_GROUP_ITEM",
    BTRFS_FREE_SPACE_INFO_KEY: "FREE_SPACE_INFO",
    BTRFS_FREE_SPACE_EXTENT_KEY: "FREE_SPACE_EXTENT",
    BTRFS_FREE_SPACE_BITMAP_KEY: "FREE_SPACE_BITMAP",
    BTRFS_DEV_EXTENT_KEY: "DEV_EXTENT",
    BTRFS_DEV_ITEM_KEY: "DEV_ITEM",
    BTRFS_CHUNK_ITEM_KEY: "CHUNK_ITEM",
    BTRFS_RAID_STRIPE_KEY: "RAID_STRIPE",
    BTRFS_QGROUP_STATUS_KEY: "QGROUP_STATUS",
    BTRFS_QGROUP_INFO_KEY: "QGROUP_INFO",
    BTRFS_QGROUP_LIMIT_KEY: "QGROUP_LIMIT",
    BTRFS_QGROUP_RELATION_KEY: "QGROUP_RELATION",
    BTRFS_TEMPORARY_ITEM_KEY: "TEMPORARY_ITEM",
    BTRFS_PERSISTENT_ITEM_KEY: "PERSISTENT_ITEM",
    BTRFS_DEV_REPLACE_KEY: "DEV_REPLACE",
    BTRFS_UUID_KEY_SUBVOL: "UUID_KEY_SUBVOL",
    BTRFS_UUID_KEY_RECEIVED_SUBVOL: "UUID_KEY_RECEIVED_SUBVOL",
    BTRFS_STRING_ITEM_KEY: "STRING_ITEM",
}

# ---- flags and enumerations -----------------------------------------------------------------------------------

BTRFS_HEADER_FLAG_WRITTEN = 1 << 0
BTRFS_HEADER_FLAG_RELOC = 1 << 1
BTRFS_BACKREF_REV_SHIFT = 56
HEADER_FLAG_NAMES = {BTRFS_HEADER_FLAG_WRITTEN: "WRITTEN", BTRFS_HEADER_FLAG_RELOC: "RELOC"}

SUPER_FLAG_NAMES = {
    1 << 0: "WRITTEN",
    1 << 1: "RELOC",
    1 << 2: "ERROR",
    1 << 32: "SEEDING",
    1 << 33: "METADUMP",
    1 << 34: "METADUMP_V2",
    1 << 35: "CHANGING_FSID",
    1 << 36: "CHANGING_FSID_V2",
    1 << 38: "CHANGING_BG_TREE",
    1 << 39: "CHANGING_DATA_CSUM",
    1 << 40: "CHANGING_META_CSUM",
}

BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE = 1 << 0
BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID = 1 << 1
BTRFS_FEATURE_COMPAT_RO_BLOCK_GROUP_TREE = 1 << 3
COMPAT_RO_NAMES = {
    1 << 0: "FREE_SPACE_TREE",
    1 << 1: "FREE_SPACE_TREE_VALID",
    1 << 2: "VERITY",
    1 << 3: "BLOCK_GROUP_TREE",
}

BTRFS_FEATURE_INCOMPAT_SKINNY_METADATA = 1 << 8
BTRFS_FEATURE_INCOMPAT_METADATA_UUID = 1 << 10
BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2 = 1 << 13
INCOMPAT_NAMES = {
    1 << 0: "MIXED_BACKREF",
    1 << 1: "DEFAULT_SUBVOL",
    1 << 2: "MIXED_GROUPS",
    1 << 3: "COMPRESS_LZO",
    1 << 4: "COMPRESS_ZSTD",
    1 << 5: "BIG_METADATA",
    1 << 6: "EXTENDED_IREF",
    1 << 7: "RAID56",
    1 << 8: "SKINNY_METADATA",
    1 << 9: "NO_HOLES",
    1 << 10: "METADATA_UUID",
    1 << 11: "RAID1C34",
    1 << 12: "ZONED",
    1 << 13: "EXTENT_TREE_V2",
    1 << 14: "RAID_STRIPE_TREE",
    1 << 16: "SIMPLE_QUOTA",
    1 << 17: "REMAP_TREE",
}

BTRFS_CSUM_TYPE_CRC32 = 0
CSUM_TYPES = {0: ("crc32c", 4), 1: ("xxhash64", 8), 2: ("sha256", 32), 3: ("blake2b", 32)}
"""``enum btrfs_csum_type``: name and stored checksum size."""

BTRFS_BLOCK_GROUP_DATA = 1 << 0
BTRFS_BLOCK_GROUP_SYSTEM = 1 << 1
BTRFS_BLOCK_GROUP_METADATA = 1 << 2
BTRFS_BLOCK_GROUP_RAID0 = 1 << 3
BTRFS_BLOCK_GROUP_RAID1 = 1 << 4
BTRFS_BLOCK_GROUP_DUP = 1 << 5
BTRFS_BLOCK_GROUP_RAID10 = 1 << 6
BTRFS_BLOCK_GROUP_RAID5 = 1 << 7
BTRFS_BLOCK_GROUP_RAID6 = 1 << 8
BTRFS_BLOCK_GROUP_RAID1C3 = 1 << 9
BTRFS_BLOCK_GROUP_RAID1C4 = 1 << 10
BLOCK_GROUP_NAMES = {
    1 << 0: "DATA",
    1 << 1: "SYSTEM",
    1 << 2: "METADATA",
    1 << 3: "RAID0",
    1 << 4: "RAID1",
    1 << 5: "DUP",
    1 << 6: "RAID10",
    1 << 7: "RAID5",
    1 << 8: "RAID6",
    1 << 9: "RAID1C3",
    1 << 10: "RAID1C4",
}

BTRFS_FILE_EXTENT_INLINE = 0
BTRFS_FILE_EXTENT_REG = 1
BTRFS_FILE_EXTENT_PREALLOC = 2
FILE_EXTENT_TYPES = {0: "inline", 1: "regular", 2: "prealloc"}
COMPRESSION_TYPES = {0: "none", 1: "zlib", 2: "lzo", 3: "zstd"}

BTRFS_EXTENT_FLAG_DATA = 1 << 0
BTRFS_EXTENT_FLAG_TREE_BLOCK = 1 << 1
EXTENT_FLAG_NAMES = {1 << 0: "DATA", 1 << 1: "TREE_BLOCK", 1 << 8: "FULL_BACKREF"}

INODE_FLAG_NAMES = {
    1 << 0: "NODATASUM",
    1 << 1: "NODATACOW",
    1 << 2: "READONLY",
    1 << 3: "NOCOMPRESS",
    1 << 4: "PREALLOC",
    1 << 5: "SYNC",
    1 << 6: "IMMUTABLE",
    1 << 7: "APPEND",
    1 << 8: "NODUMP",
    1 << 9: "NOATIME",
    1 << 10: "DIRSYNC",
    1 << 11: "COMPRESS",
    1 << 31: "ROOT_ITEM_INIT",
}

FT_NAMES = {0: "unknown", 1: "reg", 2: "dir", 3: "chr", 4: "blk", 5: "fifo", 6: "sock", 7: "lnk", 8: "xattr"}
"""``BTRFS_FT_*`` directory entry types, as the short file-type names imgdiff uses everywhere."""

S_IFMT = 0o170000
MODE_TYPES = {0o040000: "dir", 0o100000: "reg", 0o120000: "lnk", 0o020000: "chr", 0o060000: "blk",
              0o010000: "fifo", 0o140000: "sock"}

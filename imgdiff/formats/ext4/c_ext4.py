"""construct declarations of the ext4 on-disk structures and the jbd2 journal structures they embed.

Declarations and constants only; :mod:`imgdiff.formats.ext4` turns them into nodes (and compiles the hot ones into
``struct.Struct`` formats for bulk scans).  Member names are the kernel's: ``fs/ext4/ext4.h``,
``fs/ext4/ext4_extents.h``, ``fs/ext4/namei.c`` (htree), ``fs/ext4/xattr.h``, ``include/linux/jbd2.h``.  Where
``ext4.h`` names a union member through a ``#define`` (``i_checksum_lo`` for ``osd2.linux2.l_i_checksum_lo``) the
macro name is used.  Multi-byte integers are little endian except in jbd2 structures, which are big endian.

References:
    https://docs.kernel.org/filesystems/ext4/ (Documentation/filesystems/ext4/: globals.rst, group_descr.rst,
    inodes.rst, directory.rst, ifork.rst, attributes.rst, journal.rst, orphan.rst, checksums.rst, blockgroup.rst)
    fs/ext4/ext4.h, fs/ext4/ext4_extents.h, fs/ext4/xattr.h, fs/ext4/namei.c, include/linux/jbd2.h (Linux 6.x)
"""

from __future__ import annotations

import construct as c

# fmt: off
EXT4_SUPER_BLOCK = c.Struct(
    "s_inodes_count" / c.Int32ul,            # 0x00
    "s_blocks_count_lo" / c.Int32ul,
    "s_r_blocks_count_lo" / c.Int32ul,
    "s_free_blocks_count_lo" / c.Int32ul,
    "s_free_inodes_count" / c.Int32ul,       # 0x10
    "s_first_data_block" / c.Int32ul,
    "s_log_block_size" / c.Int32ul,
    "s_log_cluster_size" / c.Int32ul,
    "s_blocks_per_group" / c.Int32ul,        # 0x20
    "s_clusters_per_group" / c.Int32ul,
    "s_inodes_per_group" / c.Int32ul,
    "s_mtime" / c.Int32ul,
    "s_wtime" / c.Int32ul,                   # 0x30
    "s_mnt_count" / c.Int16ul,
    "s_max_mnt_count" / c.Int16ul,
    "s_magic" / c.Int16ul,
    "s_state" / c.Int16ul,
    "s_errors" / c.Int16ul,
    "s_minor_rev_level" / c.Int16ul,
    "s_lastcheck" / c.Int32ul,               # 0x40
    "s_checkinterval" / c.Int32ul,
    "s_creator_os" / c.Int32ul,
    "s_rev_level" / c.Int32ul,
    "s_def_resuid" / c.Int16ul,              # 0x50
    "s_def_resgid" / c.Int16ul,
    "s_first_ino" / c.Int32ul,
    "s_inode_size" / c.Int16ul,
    "s_block_group_nr" / c.Int16ul,
    "s_feature_compat" / c.Int32ul,
    "s_feature_incompat" / c.Int32ul,        # 0x60
    "s_feature_ro_compat" / c.Int32ul,
    "s_uuid" / c.Bytes(16),                  # 0x68
    "s_volume_name" / c.Bytes(16),           # 0x78
    "s_last_mounted" / c.Bytes(64),          # 0x88
    "s_algorithm_usage_bitmap" / c.Int32ul,  # 0xC8
    "s_prealloc_blocks" / c.Int8ul,
    "s_prealloc_dir_blocks" / c.Int8ul,
    "s_reserved_gdt_blocks" / c.Int16ul,
    "s_journal_uuid" / c.Bytes(16),          # 0xD0
    "s_journal_inum" / c.Int32ul,            # 0xE0
    "s_journal_dev" / c.Int32ul,
    "s_last_orphan" / c.Int32ul,
    "s_hash_seed" / c.Array(4, c.Int32ul),   # 0xEC
    "s_def_hash_version" / c.Int8ul,         # 0xFC
    "s_jnl_backup_type" / c.Int8ul,
    "s_desc_size" / c.Int16ul,
    "s_default_mount_opts" / c.Int32ul,      # 0x100
    "s_first_meta_bg" / c.Int32ul,
    "s_mkfs_time" / c.Int32ul,               # 0x108
    "s_jnl_blocks" / c.Array(17, c.Int32ul),
    "s_blocks_count_hi" / c.Int32ul,         # 0x150
    "s_r_blocks_count_hi" / c.Int32ul,
    "s_free_blocks_count_hi" / c.Int32ul,
    "s_min_extra_isize" / c.Int16ul,
    "s_want_extra_isize" / c.Int16ul,
    "s_flags" / c.Int32ul,                   # 0x160
    "s_raid_stride" / c.Int16ul,
    "s_mmp_update_interval" / c.Int16ul,
    "s_mmp_block" / c.Int64ul,
    "s_raid_stripe_width" / c.Int32ul,       # 0x170
    "s_log_groups_per_flex" / c.Int8ul,
    "s_checksum_type" / c.Int8ul,
    "s_encryption_level" / c.Int8ul,
    "s_reserved_pad" / c.Int8ul,
    "s_kbytes_written" / c.Int64ul,          # 0x178
    "s_snapshot_inum" / c.Int32ul,           # 0x180
    "s_snapshot_id" / c.Int32ul,
    "s_snapshot_r_blocks_count" / c.Int64ul,
    "s_snapshot_list" / c.Int32ul,           # 0x190
    "s_error_count" / c.Int32ul,
    "s_first_error_time" / c.Int32ul,
    "s_first_error_ino" / c.Int32ul,
    "s_first_error_block" / c.Int64ul,       # 0x1A0
    "s_first_error_func" / c.Bytes(32),
    "s_first_error_line" / c.Int32ul,        # 0x1C8
    "s_last_error_time" / c.Int32ul,
    "s_last_error_ino" / c.Int32ul,
    "s_last_error_line" / c.Int32ul,
    "s_last_error_block" / c.Int64ul,        # 0x1D8
    "s_last_error_func" / c.Bytes(32),
    "s_mount_opts" / c.Bytes(64),            # 0x200
    "s_usr_quota_inum" / c.Int32ul,          # 0x240
    "s_grp_quota_inum" / c.Int32ul,
    "s_overhead_clusters" / c.Int32ul,
    "s_backup_bgs" / c.Array(2, c.Int32ul),
    "s_encrypt_algos" / c.Bytes(4),          # 0x254
    "s_encrypt_pw_salt" / c.Bytes(16),
    "s_lpf_ino" / c.Int32ul,                 # 0x268
    "s_prj_quota_inum" / c.Int32ul,
    "s_checksum_seed" / c.Int32ul,           # 0x270
    "s_wtime_hi" / c.Int8ul,
    "s_mtime_hi" / c.Int8ul,
    "s_mkfs_time_hi" / c.Int8ul,
    "s_lastcheck_hi" / c.Int8ul,
    "s_first_error_time_hi" / c.Int8ul,
    "s_last_error_time_hi" / c.Int8ul,
    "s_first_error_errcode" / c.Int8ul,
    "s_last_error_errcode" / c.Int8ul,
    "s_encoding" / c.Int16ul,                # 0x27C
    "s_encoding_flags" / c.Int16ul,
    "s_orphan_file_inum" / c.Int32ul,        # 0x280
    "s_reserved" / c.Bytes(94 * 4),          # __le32 s_reserved[94]
    "s_checksum" / c.Int32ul,                # 0x3FC
)
"""``struct ext4_super_block`` (1024 bytes at byte 1024 of the filesystem and of each backup group)."""

EXT4_GROUP_DESC = c.Struct(
    "bg_block_bitmap_lo" / c.Int32ul,
    "bg_inode_bitmap_lo" / c.Int32ul,
    "bg_inode_table_lo" / c.Int32ul,
    "bg_free_blocks_count_lo" / c.Int16ul,
    "bg_free_inodes_count_lo" / c.Int16ul,
    "bg_used_dirs_count_lo" / c.Int16ul,
    "bg_flags" / c.Int16ul,
    "bg_exclude_bitmap_lo" / c.Int32ul,
    "bg_block_bitmap_csum_lo" / c.Int16ul,
    "bg_inode_bitmap_csum_lo" / c.Int16ul,
    "bg_itable_unused_lo" / c.Int16ul,
    "bg_checksum" / c.Int16ul,               # 0x1E; a 32-byte descriptor ends here
    "bg_block_bitmap_hi" / c.Int32ul,
    "bg_inode_bitmap_hi" / c.Int32ul,
    "bg_inode_table_hi" / c.Int32ul,
    "bg_free_blocks_count_hi" / c.Int16ul,
    "bg_free_inodes_count_hi" / c.Int16ul,
    "bg_used_dirs_count_hi" / c.Int16ul,
    "bg_itable_unused_hi" / c.Int16ul,
    "bg_exclude_bitmap_hi" / c.Int32ul,
    "bg_block_bitmap_csum_hi" / c.Int16ul,
    "bg_inode_bitmap_csum_hi" / c.Int16ul,
    "bg_reserved" / c.Int32ul,
)
"""``struct ext4_group_desc`` (64 bytes with the 64bit feature, else the first 32)."""

EXT4_INODE = c.Struct(
    "i_mode" / c.Int16ul,                    # 0x00
    "i_uid" / c.Int16ul,
    "i_size_lo" / c.Int32ul,
    "i_atime" / c.Int32ul,                   # 0x08
    "i_ctime" / c.Int32ul,
    "i_mtime" / c.Int32ul,                   # 0x10
    "i_dtime" / c.Int32ul,
    "i_gid" / c.Int16ul,                     # 0x18
    "i_links_count" / c.Int16ul,
    "i_blocks_lo" / c.Int32ul,
    "i_flags" / c.Int32ul,                   # 0x20
    "l_i_version" / c.Int32ul,               # osd1.linux1
    "i_block" / c.Array(15, c.Int32ul),      # 0x28
    "i_generation" / c.Int32ul,              # 0x64
    "i_file_acl_lo" / c.Int32ul,             # 0x68
    "i_size_high" / c.Int32ul,
    "i_obso_faddr" / c.Int32ul,              # 0x70
    "i_blocks_high" / c.Int16ul,             # osd2.linux2.l_i_blocks_high
    "i_file_acl_high" / c.Int16ul,           # osd2.linux2.l_i_file_acl_high
    "i_uid_high" / c.Int16ul,                # 0x78
    "i_gid_high" / c.Int16ul,
    "i_checksum_lo" / c.Int16ul,             # 0x7C
    "l_i_reserved" / c.Int16ul,
    "i_extra_isize" / c.Int16ul,             # 0x80
    "i_checksum_hi" / c.Int16ul,
    "i_ctime_extra" / c.Int32ul,             # 0x84
    "i_mtime_extra" / c.Int32ul,             # 0x88
    "i_atime_extra" / c.Int32ul,             # 0x8C
    "i_crtime" / c.Int32ul,                  # 0x90
    "i_crtime_extra" / c.Int32ul,
    "i_version_hi" / c.Int32ul,              # 0x98
    "i_projid" / c.Int32ul,                  # 0x9C
)
"""``struct ext4_inode``: 128 bytes always, then ``i_extra_isize`` bytes of the large-inode fields."""

EXT4_GOOD_OLD_INODE_SIZE = 128

EXT4_DIR_ENTRY_2 = c.Struct(
    "inode" / c.Int32ul,
    "rec_len" / c.Int16ul,
    "name_len" / c.Int8ul,
    "file_type" / c.Int8ul,
)
"""``struct ext4_dir_entry_2`` header; ``name[name_len]`` follows, the entry is padded to ``rec_len``."""

EXT4_DIR_ENTRY_TAIL = c.Struct(
    "det_reserved_zero1" / c.Int32ul,
    "det_rec_len" / c.Int16ul,
    "det_reserved_zero2" / c.Int8ul,
    "det_reserved_ft" / c.Int8ul,
    "det_checksum" / c.Int32ul,
)
"""``struct ext4_dir_entry_tail``: the 12-byte checksum tail of a leaf block (metadata_csum)."""

EXT4_DIR_ENTRY_HASH = c.Struct(
    "hash" / c.Int32ul,
    "minor_hash" / c.Int32ul,
)
"""``struct ext4_dir_entry_hash``: stored after the name in casefolded+encrypted directories."""

FAKE_DIRENT = c.Struct(
    "inode" / c.Int32ul,
    "rec_len" / c.Int16ul,
    "name_len" / c.Int8ul,
    "file_type" / c.Int8ul,
)
"""``struct fake_dirent`` (fs/ext4/namei.c): the dirent header that hides a dx_node from linear readers."""

DX_ROOT_INFO = c.Struct(
    "reserved_zero" / c.Int32ul,
    "hash_version" / c.Int8ul,
    "info_length" / c.Int8ul,
    "indirect_levels" / c.Int8ul,
    "unused_flags" / c.Int8ul,
)
"""``struct dx_root_info`` at byte 24 of an htree root block, after the "." and ".." entries."""

DX_COUNTLIMIT = c.Struct(
    "limit" / c.Int16ul,
    "count" / c.Int16ul,
)
"""``struct dx_countlimit``: overlays the hash of the first ``dx_entry``."""

DX_ENTRY = c.Struct(
    "hash" / c.Int32ul,
    "block" / c.Int32ul,
)
"""``struct dx_entry``."""

DX_TAIL = c.Struct(
    "dt_reserved" / c.Int32ul,
    "dt_checksum" / c.Int32ul,
)
"""``struct dx_tail``: follows the ``limit`` entries of a dx_root/dx_node (metadata_csum)."""

EXT4_EXTENT_HEADER = c.Struct(
    "eh_magic" / c.Int16ul,
    "eh_entries" / c.Int16ul,
    "eh_max" / c.Int16ul,
    "eh_depth" / c.Int16ul,
    "eh_generation" / c.Int32ul,
)
"""``struct ext4_extent_header`` (in ``i_block`` and at the start of every extent tree block)."""

EXT4_EXTENT_IDX = c.Struct(
    "ei_block" / c.Int32ul,
    "ei_leaf_lo" / c.Int32ul,
    "ei_leaf_hi" / c.Int16ul,
    "ei_unused" / c.Int16ul,
)
"""``struct ext4_extent_idx``: an index entry (``eh_depth > 0``)."""

EXT4_EXTENT = c.Struct(
    "ee_block" / c.Int32ul,
    "ee_len" / c.Int16ul,
    "ee_start_hi" / c.Int16ul,
    "ee_start_lo" / c.Int32ul,
)
"""``struct ext4_extent``: a leaf entry (``eh_depth == 0``); ``ee_len > 32768`` marks an unwritten extent."""

EXT4_EXTENT_TAIL = c.Struct(
    "eb_checksum" / c.Int32ul,
)
"""``struct ext4_extent_tail``: right after ``eh_max`` entries of an extent tree block."""

EXT4_XATTR_HEADER = c.Struct(
    "h_magic" / c.Int32ul,
    "h_refcount" / c.Int32ul,
    "h_blocks" / c.Int32ul,
    "h_hash" / c.Int32ul,
    "h_checksum" / c.Int32ul,
    "h_reserved" / c.Array(3, c.Int32ul),
)
"""``struct ext4_xattr_header``: start of an external extended attribute block."""

EXT4_XATTR_IBODY_HEADER = c.Struct(
    "h_magic" / c.Int32ul,
)
"""``struct ext4_xattr_ibody_header``: start of the in-inode xattr area after ``i_extra_isize``."""

EXT4_XATTR_ENTRY = c.Struct(
    "e_name_len" / c.Int8ul,
    "e_name_index" / c.Int8ul,
    "e_value_offs" / c.Int16ul,
    "e_value_inum" / c.Int32ul,
    "e_value_size" / c.Int32ul,
    "e_hash" / c.Int32ul,
)
"""``struct ext4_xattr_entry`` header; ``e_name[e_name_len]`` follows, padded to 4 bytes."""

EXT4_ORPHAN_BLOCK_TAIL = c.Struct(
    "ob_magic" / c.Int32ul,
    "ob_checksum" / c.Int32ul,
)
"""``struct ext4_orphan_block_tail``: last 8 bytes of each orphan file block."""

JOURNAL_HEADER = c.Struct(
    "h_magic" / c.Int32ub,
    "h_blocktype" / c.Int32ub,
    "h_sequence" / c.Int32ub,
)
"""``journal_header_t`` (big endian), the ``s_header`` of the superblock and the start of every log block."""

JOURNAL_SUPERBLOCK = c.Struct(
    "h_magic" / c.Int32ub,                   # s_header
    "h_blocktype" / c.Int32ub,
    "h_sequence" / c.Int32ub,
    "s_blocksize" / c.Int32ub,               # 0x0C
    "s_maxlen" / c.Int32ub,
    "s_first" / c.Int32ub,
    "s_sequence" / c.Int32ub,                # 0x18
    "s_start" / c.Int32ub,
    "s_errno" / c.Int32sb,                   # 0x20
    "s_feature_compat" / c.Int32ub,          # 0x24
    "s_feature_incompat" / c.Int32ub,
    "s_feature_ro_compat" / c.Int32ub,
    "s_uuid" / c.Bytes(16),                  # 0x30
    "s_nr_users" / c.Int32ub,                # 0x40
    "s_dynsuper" / c.Int32ub,
    "s_max_transaction" / c.Int32ub,         # 0x48
    "s_max_trans_data" / c.Int32ub,
    "s_checksum_type" / c.Int8ul,            # 0x50
    "s_padding2" / c.Bytes(3),
    "s_num_fc_blks" / c.Int32ub,             # 0x54
    "s_head" / c.Int32ub,                    # 0x58
    "s_padding" / c.Bytes(40 * 4),           # __u32 s_padding[40]
    "s_checksum" / c.Int32ub,                # 0xFC
    "s_users" / c.Bytes(16 * 48),            # 0x100
)
"""``journal_superblock_t`` (1024 bytes, first block of the journal)."""

JBD2_COMMIT_HEADER = c.Struct(
    "h_magic" / c.Int32ub,
    "h_blocktype" / c.Int32ub,
    "h_sequence" / c.Int32ub,
    "h_chksum_type" / c.Int8ul,
    "h_chksum_size" / c.Int8ul,
    "h_padding" / c.Bytes(2),
    "h_chksum" / c.Array(8, c.Int32ub),
    "h_commit_sec" / c.Int64ub,
    "h_commit_nsec" / c.Int32ub,
)
"""``struct commit_header``."""

JOURNAL_BLOCK_TAG3 = c.Struct(
    "t_blocknr" / c.Int32ub,
    "t_flags" / c.Int32ub,
    "t_blocknr_high" / c.Int32ub,
    "t_checksum" / c.Int32ub,
)
"""``journal_block_tag3_t`` (descriptor tags with the csum_v3 feature)."""

JOURNAL_BLOCK_TAG = c.Struct(
    "t_blocknr" / c.Int32ub,
    "t_checksum" / c.Int16ub,
    "t_flags" / c.Int16ub,
    "t_blocknr_high" / c.Int32ub,
)
"""``journal_block_tag_t`` (``t_blocknr_high`` only with the 64bit journal feature)."""

JBD2_JOURNAL_BLOCK_TAIL = c.Struct(
    "t_checksum" / c.Int32ub,
)
"""``struct jbd2_journal_block_tail``: last 4 bytes of descriptor and revoke blocks (csum v2/v3)."""

JBD2_REVOKE_HEADER = c.Struct(
    "h_magic" / c.Int32ub,
    "h_blocktype" / c.Int32ub,
    "h_sequence" / c.Int32ub,
    "r_count" / c.Int32ub,
)
"""``jbd2_journal_revoke_header_t``; ``r_count`` counts bytes used including this header."""
# fmt: on

EXT4_SUPER_MAGIC = 0xEF53
EXT4_SUPERBLOCK_OFFSET = 1024
EXT4_EXT_MAGIC = 0xF30A
EXT4_XATTR_MAGIC = 0xEA020000
EXT4_ORPHAN_BLOCK_MAGIC = 0x0B10CA04
JBD2_MAGIC_NUMBER = 0xC03B3998
EXT4_DIR_TAIL_FT = 0xDE
"""``det_reserved_ft`` of a dirent checksum tail (``EXT4_FT_DIR_CSUM``)."""
EXT_INIT_MAX_LEN = 1 << 15
"""``ee_len`` above this marks an unwritten (uninitialised) extent."""
EXT4_N_BLOCKS = 15
EXT4_NDIR_BLOCKS = 12

# Special inodes (fs/ext4/ext4.h).
EXT4_BAD_INO = 1
EXT4_ROOT_INO = 2
EXT4_USR_QUOTA_INO = 3
EXT4_GRP_QUOTA_INO = 4
EXT4_BOOT_LOADER_INO = 5
EXT4_UNDEL_DIR_INO = 6
EXT4_RESIZE_INO = 7
EXT4_JOURNAL_INO = 8

RESERVED_INODE_NAMES: dict[int, str] = {
    EXT4_BAD_INO: "bad blocks inode",
    EXT4_ROOT_INO: "root directory",
    EXT4_USR_QUOTA_INO: "user quota inode",
    EXT4_GRP_QUOTA_INO: "group quota inode",
    EXT4_BOOT_LOADER_INO: "boot loader inode",
    EXT4_UNDEL_DIR_INO: "undelete directory inode",
    EXT4_RESIZE_INO: "reserved GDT blocks inode",
    EXT4_JOURNAL_INO: "journal inode",
    9: "exclude inode (snapshots)",
    10: "replica inode",
}

# s_feature_compat
COMPAT_FEATURES: dict[int, str] = {
    0x0001: "dir_prealloc", 0x0002: "imagic_inodes", 0x0004: "has_journal", 0x0008: "ext_attr",
    0x0010: "resize_inode", 0x0020: "dir_index", 0x0040: "lazy_bg", 0x0080: "exclude_inode",
    0x0100: "exclude_bitmap", 0x0200: "sparse_super2", 0x0400: "fast_commit", 0x0800: "stable_inodes",
    0x1000: "orphan_file",
}
# s_feature_incompat
INCOMPAT_FEATURES: dict[int, str] = {
    0x0001: "compression", 0x0002: "filetype", 0x0004: "needs_recovery", 0x0008: "journal_dev",
    0x0010: "meta_bg", 0x0040: "extent", 0x0080: "64bit", 0x0100: "mmp", 0x0200: "flex_bg",
    0x0400: "ea_inode", 0x1000: "dirdata", 0x2000: "metadata_csum_seed", 0x4000: "large_dir",
    0x8000: "inline_data", 0x10000: "encrypt", 0x20000: "casefold",
}
# s_feature_ro_compat
RO_COMPAT_FEATURES: dict[int, str] = {
    0x0001: "sparse_super", 0x0002: "large_file", 0x0004: "btree_dir", 0x0008: "huge_file",
    0x0010: "gdt_csum", 0x0020: "dir_nlink", 0x0040: "extra_isize", 0x0080: "has_snapshot",
    0x0100: "quota", 0x0200: "bigalloc", 0x0400: "metadata_csum", 0x0800: "replica", 0x1000: "read-only",
    0x2000: "project", 0x4000: "shared_blocks", 0x8000: "verity", 0x10000: "orphan_present",
}

COMPAT_HAS_JOURNAL = 0x0004
COMPAT_RESIZE_INODE = 0x0010
COMPAT_DIR_INDEX = 0x0020
COMPAT_SPARSE_SUPER2 = 0x0200
COMPAT_ORPHAN_FILE = 0x1000
INCOMPAT_FILETYPE = 0x0002
INCOMPAT_RECOVER = 0x0004
INCOMPAT_META_BG = 0x0010
INCOMPAT_EA_INODE = 0x0400
INCOMPAT_EXTENTS = 0x0040
INCOMPAT_64BIT = 0x0080
INCOMPAT_FLEX_BG = 0x0200
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_LARGEDIR = 0x4000
INCOMPAT_INLINE_DATA = 0x8000
INCOMPAT_DIRDATA = 0x1000
INCOMPAT_CASEFOLD = 0x20000
INCOMPAT_ENCRYPT = 0x10000
RO_COMPAT_SPARSE_SUPER = 0x0001
RO_COMPAT_GDT_CSUM = 0x0010
RO_COMPAT_BIGALLOC = 0x0200
RO_COMPAT_METADATA_CSUM = 0x0400

# bg_flags
BG_FLAGS: dict[int, str] = {0x0001: "INODE_UNINIT", 0x0002: "BLOCK_UNINIT", 0x0004: "ITABLE_ZEROED"}
EXT4_BG_INODE_UNINIT = 0x0001
EXT4_BG_BLOCK_UNINIT = 0x0002

# i_flags
INODE_FLAGS: dict[int, str] = {
    0x00000001: "SECRM", 0x00000002: "UNRM", 0x00000004: "COMPR", 0x00000008: "SYNC", 0x00000010: "IMMUTABLE",
    0x00000020: "APPEND", 0x00000040: "NODUMP", 0x00000080: "NOATIME", 0x00000100: "DIRTY",
    0x00000200: "COMPRBLK", 0x00000400: "NOCOMPR", 0x00000800: "ENCRYPT", 0x00001000: "INDEX",
    0x00002000: "IMAGIC", 0x00004000: "JOURNAL_DATA", 0x00008000: "NOTAIL", 0x00010000: "DIRSYNC",
    0x00020000: "TOPDIR", 0x00040000: "HUGE_FILE", 0x00080000: "EXTENTS", 0x00100000: "VERITY",
    0x00200000: "EA_INODE", 0x02000000: "DAX", 0x10000000: "INLINE_DATA", 0x20000000: "PROJINHERIT",
    0x40000000: "CASEFOLD", 0x80000000: "RESERVED",
}
EXT4_INDEX_FL = 0x00001000
EXT4_HUGE_FILE_FL = 0x00040000
EXT4_EXTENTS_FL = 0x00080000
EXT4_EA_INODE_FL = 0x00200000
EXT4_INLINE_DATA_FL = 0x10000000
EXT4_MIN_INLINE_DATA_SIZE = 60
"""``sizeof(i_block)``: the first 60 bytes of an inline-data file live in ``i_block`` (fs/ext4/ext4.h)."""
EXT4_XATTR_INDEX_SYSTEM_DATA = 7
"""xattr name index of ``system.data``, where inline data continues past ``i_block`` (fs/ext4/xattr.h)."""

# i_mode file type bits (S_IFMT) and the dirent file_type codes (EXT4_FT_*).
S_IFMT = 0o170000
MODE_TYPES: dict[int, str] = {
    0o010000: "fifo", 0o020000: "chr", 0o040000: "dir", 0o060000: "blk", 0o100000: "reg", 0o120000: "lnk",
    0o140000: "sock",
}
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFBLK = 0o060000
S_IFREG = 0o100000
S_IFLNK = 0o120000
DIRENT_FILE_TYPES: dict[int, str] = {
    0: "unknown", 1: "reg", 2: "dir", 3: "chr", 4: "blk", 5: "fifo", 6: "sock", 7: "lnk",
}

# dx_root_info.hash_version / s_def_hash_version
HASH_VERSIONS: dict[int, str] = {
    0: "legacy", 1: "half_md4", 2: "tea", 3: "legacy_unsigned", 4: "half_md4_unsigned", 5: "tea_unsigned",
    6: "siphash",
}

# Extended attribute name prefixes by e_name_index (fs/ext4/xattr.h, fs/ext4/xattr.c).
XATTR_PREFIXES: dict[int, str] = {
    1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default", 4: "trusted.", 6: "security.",
    7: "system.", 8: "system.richacl",
}

# jbd2
JBD2_BLOCKTYPES: dict[int, str] = {
    1: "descriptor", 2: "commit", 3: "superblock_v1", 4: "superblock_v2", 5: "revoke", 6: "fast_commit",
}
JBD2_DESCRIPTOR_BLOCK = 1
JBD2_COMMIT_BLOCK = 2
JBD2_REVOKE_BLOCK = 5
JBD2_FEATURE_INCOMPAT_REVOKE = 0x01
JBD2_FEATURE_INCOMPAT_64BIT = 0x02
JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x04
JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x08
JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x10
JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x20
JBD2_INCOMPAT_FEATURES: dict[int, str] = {
    0x01: "revoke", 0x02: "64bit", 0x04: "async_commit", 0x08: "csum_v2", 0x10: "csum_v3", 0x20: "fast_commit",
}
JBD2_FLAG_ESCAPE = 1
JBD2_FLAG_SAME_UUID = 2
JBD2_FLAG_DELETED = 4
JBD2_FLAG_LAST_TAG = 8

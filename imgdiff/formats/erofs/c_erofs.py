"""construct declarations of the EROFS on-disk structures (erofs-utils 1.5 ``include/erofs_fs.h`` names).

Declarations only; the modules of :mod:`imgdiff.formats.erofs` turn them into nodes.  The names are those of
erofs-utils 1.5 (Debian 12's mkfs.erofs, which made the fixtures): later headers renamed ``build_time`` to
``epoch``, ``build_time_nsec`` to ``fixed_nsec`` and the compact inode's ``i_reserved`` to ``i_mtime``.

References:
    erofs-utils include/erofs_fs.h (v1.5: ``struct erofs_super_block``, ``erofs_inode_compact``,
    ``erofs_inode_extended``, ``erofs_xattr_ibody_header``, ``erofs_xattr_entry``, ``erofs_inode_chunk_index``,
    ``erofs_dirent``, ``z_erofs_map_header``, ``z_erofs_vle_decompressed_index``); Linux fs/erofs/erofs_fs.h;
    https://docs.kernel.org/filesystems/erofs.html (on-disk layout).
"""

from __future__ import annotations

import construct as c

EROFS_SUPER_MAGIC_V1 = 0xE0F5E1E2
EROFS_SUPER_OFFSET = 1024
EROFS_FEATURE_COMPAT_SB_CHKSUM = 0x00000001

COMPAT_FEATURES = {0x1: "sb_csum", 0x2: "mtime"}
INCOMPAT_FEATURES = {0x1: "lz4_0padding", 0x2: "compr_cfgs|big_pcluster", 0x4: "chunked_file",
                     0x8: "device_table", 0x10: "ztailpacking", 0x20: "fragments", 0x40: "xattr_prefixes"}

EROFS_SUPER_BLOCK = c.Struct(
    "magic" / c.Int32ul,
    "checksum" / c.Int32ul,
    "feature_compat" / c.Int32ul,
    "blkszbits" / c.Int8ul,
    "sb_extslots" / c.Int8ul,
    "root_nid" / c.Int16ul,
    "inos" / c.Int64ul,
    "build_time" / c.Int64ul,
    "build_time_nsec" / c.Int32ul,
    "blocks" / c.Int32ul,
    "meta_blkaddr" / c.Int32ul,
    "xattr_blkaddr" / c.Int32ul,
    "uuid" / c.Bytes(16),
    "volume_name" / c.Bytes(16),
    "feature_incompat" / c.Int32ul,
    "available_compr_algs" / c.Int16ul,
    "extra_devices" / c.Int16ul,
    "devt_slotoff" / c.Int16ul,
    "reserved2" / c.Bytes(38),
)

# i_format: bit 0 version (0 compact, 1 extended), bits 1-3 data layout
EROFS_I_VERSION_BIT = 0
EROFS_I_DATALAYOUT_BIT = 1
EROFS_INODE_FLAT_PLAIN = 0
EROFS_INODE_FLAT_COMPRESSION_LEGACY = 1
EROFS_INODE_FLAT_INLINE = 2
EROFS_INODE_FLAT_COMPRESSION = 3
EROFS_INODE_CHUNK_BASED = 4
DATALAYOUTS = {0: "flat plain", 1: "compressed (full indexes)", 2: "flat inline", 3: "compressed (compact indexes)",
               4: "chunk-based"}

EROFS_INODE_COMPACT = c.Struct(
    "i_format" / c.Int16ul,
    "i_xattr_icount" / c.Int16ul,
    "i_mode" / c.Int16ul,
    "i_nlink" / c.Int16ul,
    "i_size" / c.Int32ul,
    "i_reserved" / c.Int32ul,
    "i_u" / c.Int32ul,
    "i_ino" / c.Int32ul,
    "i_uid" / c.Int16ul,
    "i_gid" / c.Int16ul,
    "i_reserved2" / c.Int32ul,
)

EROFS_INODE_EXTENDED = c.Struct(
    "i_format" / c.Int16ul,
    "i_xattr_icount" / c.Int16ul,
    "i_mode" / c.Int16ul,
    "i_reserved" / c.Int16ul,
    "i_size" / c.Int64ul,
    "i_u" / c.Int32ul,
    "i_ino" / c.Int32ul,
    "i_uid" / c.Int32ul,
    "i_gid" / c.Int32ul,
    "i_mtime" / c.Int64ul,
    "i_mtime_nsec" / c.Int32ul,
    "i_nlink" / c.Int32ul,
    "i_reserved2" / c.Bytes(16),
)

EROFS_XATTR_IBODY_HEADER = c.Struct(
    "h_reserved" / c.Int32ul,
    "h_shared_count" / c.Int8ul,
    "h_reserved2" / c.Bytes(7),
)

EROFS_XATTR_ENTRY = c.Struct(
    "e_name_len" / c.Int8ul,
    "e_name_index" / c.Int8ul,
    "e_value_size" / c.Int16ul,
)

XATTR_PREFIXES = {1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default", 4: "trusted.",
                  5: "lustre.", 6: "security."}

EROFS_INODE_CHUNK_INDEX = c.Struct(
    "advise" / c.Int16ul,
    "device_id" / c.Int16ul,
    "blkaddr" / c.Int32ul,
)
EROFS_CHUNK_FORMAT_BLKBITS_MASK = 0x001F
EROFS_CHUNK_FORMAT_INDEXES = 0x0020
EROFS_NULL_ADDR = 0xFFFFFFFF

EROFS_DIRENT = c.Struct(
    "nid" / c.Int64ul,
    "nameoff" / c.Int16ul,
    "file_type" / c.Int8ul,
    "reserved" / c.Int8ul,
)
FILE_TYPES = {0: "unknown", 1: "reg", 2: "dir", 3: "chr", 4: "blk", 5: "fifo", 6: "sock", 7: "lnk"}

Z_EROFS_MAP_HEADER = c.Struct(
    "h_reserved1" / c.Int16ul,
    "h_idata_size" / c.Int16ul,
    "h_advise" / c.Int16ul,
    "h_algorithmtype" / c.Int8ul,
    "h_clusterbits" / c.Int8ul,
)
Z_EROFS_VLE_DECOMPRESSED_INDEX = c.Struct(
    "di_advise" / c.Int16ul,
    "di_clusterofs" / c.Int16ul,
    "di_u" / c.Int32ul,
)
Z_EROFS_ADVISE_COMPACTED_2B = 0x0001
Z_EROFS_ADVISE_BIG_PCLUSTER_1 = 0x0002
Z_EROFS_ADVISE_BIG_PCLUSTER_2 = 0x0004
Z_EROFS_ADVISE_INLINE_PCLUSTER = 0x0008
Z_EROFS_VLE_LEGACY_HEADER_PADDING = 8
Z_EROFS_VLE_CLUSTER_TYPE_PLAIN = 0
Z_EROFS_VLE_CLUSTER_TYPE_HEAD = 1
Z_EROFS_VLE_CLUSTER_TYPE_NONHEAD = 2
Z_EROFS_VLE_DI_D0_CBLKCNT = 1 << 11
COMPRESSION_ALGS = {0: "lz4", 1: "lzma"}

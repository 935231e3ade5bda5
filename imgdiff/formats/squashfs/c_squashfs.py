"""construct declarations of the squashfs 4.0 on-disk structures, with the names of ``squashfs_fs.h``.

Declarations only; the parser modules of :mod:`imgdiff.formats.squashfs` compile them (:class:`Compiled`) and turn
them into nodes.  Struct and member names are those of squashfs-tools ``squashfs-tools/squashfs_fs.h`` (the kernel's
``fs/squashfs/squashfs_fs.h`` uses the same member names, with ``_header`` dropped from the inode struct names), so
that every field name greps against both.  The compressor option structs are those of the squashfs-tools compressor
wrappers (``gzip_wrapper.h`` ``struct gzip_comp_opts``, ``xz_wrapper.h`` ``struct comp_opts``, ``lz4_wrapper.h``,
``zstd_wrapper.h``, ``lzo_wrapper.h``).  Everything is little-endian.

References:
    squashfs-tools 4.5.1 ``squashfs-tools/squashfs_fs.h`` (struct squashfs_super_block, squashfs_*_inode_header,
    squashfs_dir_header, squashfs_dir_entry, squashfs_dir_index, squashfs_fragment_entry, squashfs_xattr_entry,
    squashfs_xattr_val, squashfs_xattr_id, squashfs_xattr_table; SQUASHFS_* flag and type numbers)
    Linux ``fs/squashfs/squashfs_fs.h``; https://dr-emann.github.io/squashfs/ (the format described field by field)
"""

from __future__ import annotations

import construct as c

SQUASHFS_MAGIC = 0x73717368
SQUASHFS_METADATA_SIZE = 8192
SQUASHFS_COMPRESSED_BIT = 1 << 15
"""Metadata block header: set when the block is stored uncompressed."""
SQUASHFS_COMPRESSED_BIT_BLOCK = 1 << 24
"""Data block size word and fragment entry ``size``: set when the block is stored uncompressed."""
SQUASHFS_INVALID_FRAG = 0xFFFFFFFF
SQUASHFS_INVALID_XATTR = 0xFFFFFFFF
SQUASHFS_INVALID_BLK = 0xFFFFFFFFFFFFFFFF
"""``lookup_table_start`` / ``xattr_id_table_start`` when the table is absent (``(long long) -1``)."""
SQUASHFS_XATTR_VALUE_OOL = 256
SQUASHFS_XATTR_PREFIX_MASK = 0xFF
XATTR_PREFIXES = {0: "user.", 1: "trusted.", 2: "security."}

# Superblock flags (bit numbers of squashfs_fs.h SQUASHFS_NOI .. SQUASHFS_NOID)
SUPER_FLAGS: tuple[tuple[int, str], ...] = (
    (1 << 0, "NOI"),            # inodes uncompressed (-noI)
    (1 << 1, "NOD"),            # data uncompressed (-noD)
    (1 << 2, "CHECK"),
    (1 << 3, "NOF"),            # fragments uncompressed (-noF)
    (1 << 4, "NO_FRAG"),        # -no-fragments
    (1 << 5, "ALWAYS_FRAG"),    # -always-use-fragments
    (1 << 6, "DUPLICATE"),      # duplicate checking (off with -no-duplicates)
    (1 << 7, "EXPORT"),         # NFS export table (-exports, the default; off with -no-exports)
    (1 << 8, "NOX"),            # xattrs uncompressed (-noX)
    (1 << 9, "NO_XATTR"),       # -no-xattrs
    (1 << 10, "COMP_OPT"),      # compressor options follow the superblock
    (1 << 11, "NOID"),          # id table uncompressed (-noId)
)
SQUASHFS_NO_FRAG = 1 << 4
SQUASHFS_EXPORT = 1 << 7
SQUASHFS_COMP_OPT = 1 << 10

COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
"""``compression`` ids (ZLIB_COMPRESSION .. ZSTD_COMPRESSION) and their mksquashfs ``-comp`` names."""

# Inode types (SQUASHFS_DIR_TYPE .. SQUASHFS_LSOCKET_TYPE)
SQUASHFS_DIR_TYPE = 1
SQUASHFS_FILE_TYPE = 2
SQUASHFS_SYMLINK_TYPE = 3
SQUASHFS_BLKDEV_TYPE = 4
SQUASHFS_CHRDEV_TYPE = 5
SQUASHFS_FIFO_TYPE = 6
SQUASHFS_SOCKET_TYPE = 7
SQUASHFS_LDIR_TYPE = 8
SQUASHFS_LREG_TYPE = 9
SQUASHFS_LSYMLINK_TYPE = 10
SQUASHFS_LBLKDEV_TYPE = 11
SQUASHFS_LCHRDEV_TYPE = 12
SQUASHFS_LFIFO_TYPE = 13
SQUASHFS_LSOCKET_TYPE = 14

FILE_TYPES = {
    1: "dir", 2: "reg", 3: "lnk", 4: "blk", 5: "chr", 6: "fifo", 7: "sock",
    8: "dir", 9: "reg", 10: "lnk", 11: "blk", 12: "chr", 13: "fifo", 14: "sock",
}
"""Inode type -> the file type names the engine uses (``attrs["file_type"]``)."""

# fmt: off
squashfs_super_block = c.Struct(
    "s_magic" / c.Int32ul,
    "inodes" / c.Int32ul,
    "mkfs_time" / c.Int32ul,
    "block_size" / c.Int32ul,
    "fragments" / c.Int32ul,
    "compression" / c.Int16ul,
    "block_log" / c.Int16ul,
    "flags" / c.Int16ul,
    "no_ids" / c.Int16ul,
    "s_major" / c.Int16ul,
    "s_minor" / c.Int16ul,
    "root_inode" / c.Int64ul,
    "bytes_used" / c.Int64ul,
    "id_table_start" / c.Int64ul,
    "xattr_id_table_start" / c.Int64ul,
    "inode_table_start" / c.Int64ul,
    "directory_table_start" / c.Int64ul,
    "fragment_table_start" / c.Int64ul,
    "lookup_table_start" / c.Int64ul,
)
"""The 96-byte superblock at offset 0 (``SQUASHFS_START``)."""

_base = (
    "inode_type" / c.Int16ul,
    "mode" / c.Int16ul,
    "uid" / c.Int16ul,
    "guid" / c.Int16ul,
    "mtime" / c.Int32ul,
    "inode_number" / c.Int32ul,
)

squashfs_base_inode_header = c.Struct(*_base)
squashfs_ipc_inode_header = c.Struct(*_base, "nlink" / c.Int32ul)
squashfs_lipc_inode_header = c.Struct(*_base, "nlink" / c.Int32ul, "xattr" / c.Int32ul)
squashfs_dev_inode_header = c.Struct(*_base, "nlink" / c.Int32ul, "rdev" / c.Int32ul)
squashfs_ldev_inode_header = c.Struct(*_base, "nlink" / c.Int32ul, "rdev" / c.Int32ul, "xattr" / c.Int32ul)
squashfs_symlink_inode_header = c.Struct(*_base, "nlink" / c.Int32ul, "symlink_size" / c.Int32ul)
"""Followed by ``symlink_size`` bytes of target; the extended (``LSYMLINK``) type then has a u32 ``xattr``."""
squashfs_reg_inode_header = c.Struct(
    *_base,
    "start_block" / c.Int32ul,
    "fragment" / c.Int32ul,
    "offset" / c.Int32ul,
    "file_size" / c.Int32ul,
)
"""Followed by ``block_list``: one u32 size word per data block."""
squashfs_lreg_inode_header = c.Struct(
    *_base,
    "start_block" / c.Int64ul,
    "file_size" / c.Int64ul,
    "sparse" / c.Int64ul,
    "nlink" / c.Int32ul,
    "fragment" / c.Int32ul,
    "offset" / c.Int32ul,
    "xattr" / c.Int32ul,
)
squashfs_dir_inode_header = c.Struct(
    *_base,
    "start_block" / c.Int32ul,
    "nlink" / c.Int32ul,
    "file_size" / c.Int16ul,
    "offset" / c.Int16ul,
    "parent_inode" / c.Int32ul,
)
squashfs_ldir_inode_header = c.Struct(
    *_base,
    "nlink" / c.Int32ul,
    "file_size" / c.Int32ul,
    "start_block" / c.Int32ul,
    "parent_inode" / c.Int32ul,
    "i_count" / c.Int16ul,
    "offset" / c.Int16ul,
    "xattr" / c.Int32ul,
)
"""Followed by ``i_count`` :data:`squashfs_dir_index` entries (each with its name)."""
squashfs_dir_index = c.Struct(
    "index" / c.Int32ul,
    "start_block" / c.Int32ul,
    "size" / c.Int32ul,
)
"""Followed by ``size + 1`` name bytes."""

squashfs_dir_header = c.Struct(
    "count" / c.Int32ul,
    "start_block" / c.Int32ul,
    "inode_number" / c.Int32ul,
)
"""``count`` is the number of entries that follow, minus one."""
squashfs_dir_entry = c.Struct(
    "offset" / c.Int16ul,
    "inode_number" / c.Int16sl,
    "type" / c.Int16ul,
    "size" / c.Int16ul,
)
"""Followed by ``size + 1`` name bytes; ``inode_number`` is relative to the header's."""

squashfs_fragment_entry = c.Struct(
    "start_block" / c.Int64ul,
    "size" / c.Int32ul,
    "unused" / c.Int32ul,
)
squashfs_xattr_entry = c.Struct(
    "type" / c.Int16ul,
    "size" / c.Int16ul,
)
"""Followed by ``size`` name bytes (without the prefix that ``type`` names)."""
squashfs_xattr_val = c.Struct(
    "vsize" / c.Int32ul,
)
"""Followed by ``vsize`` value bytes (an out-of-line value is an 8-byte reference)."""
squashfs_xattr_id = c.Struct(
    "xattr" / c.Int64ul,
    "count" / c.Int32ul,
    "size" / c.Int32ul,
)
squashfs_xattr_table = c.Struct(
    "xattr_table_start" / c.Int64ul,
    "xattr_ids" / c.Int32ul,
    "unused" / c.Int32ul,
)
"""Stored uncompressed at ``xattr_id_table_start``, followed by the xattr id table's block index."""

squashfs_id = c.Struct("id" / c.Int32ul)
"""One entry of the id table (``unsigned int``: a uid or gid)."""
squashfs_lookup_entry = c.Struct("inode" / c.Int64ul)
"""One entry of the export (inode lookup) table: the ``squashfs_inode`` reference of inode number ``n + 1``."""
squashfs_table_index = c.Struct("block" / c.Int64ul)
"""One entry of a table's block index (the lookup arrays of 8-byte metadata block positions)."""
metadata_block_header = c.Struct("c_byte" / c.Int16ul)
"""The 2-byte header of a metadata block: stored length, bit 15 set when stored uncompressed."""

# Compressor options (stored as one uncompressed metadata block right after the superblock when COMP_OPT is set)
gzip_comp_opts = c.Struct(
    "compression_level" / c.Int32sl,
    "window_size" / c.Int16sl,
    "strategy" / c.Int16sl,
)
xz_comp_opts = c.Struct(
    "dictionary_size" / c.Int32sl,
    "flags" / c.Int32sl,
)
"""``struct comp_opts`` of xz_wrapper.h; ``flags`` has one bit per BCJ filter tried (x86, powerpc, ia64, arm, ...)."""
lz4_comp_opts = c.Struct(
    "version" / c.Int32sl,
    "flags" / c.Int32sl,
)
zstd_comp_opts = c.Struct(
    "compression_level" / c.Int32sl,
)
lzo_comp_opts = c.Struct(
    "algorithm" / c.Int32sl,
    "compression_level" / c.Int32sl,
)
# fmt: on

COMP_OPTS = {1: gzip_comp_opts, 3: lzo_comp_opts, 4: xz_comp_opts, 5: lz4_comp_opts, 6: zstd_comp_opts}
"""Compressor id -> its options struct (lzma has none)."""

XZ_BCJ_FILTERS = ("x86", "powerpc", "ia64", "arm", "armthumb", "sparc", "arm64")
GZIP_STRATEGIES = ((1 << 0, "default"), (1 << 1, "filtered"), (1 << 2, "huffman_only"), (1 << 3, "run_length_encoded"),
                   (1 << 4, "fixed"))
LZO_ALGORITHMS = ("lzo1x_1", "lzo1x_1_11", "lzo1x_1_12", "lzo1x_1_15", "lzo1x_999")

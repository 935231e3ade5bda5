"""ext2/ext3/ext4 filesystems: every on-disk structure as nodes whose fields carry absolute byte extents.

The parser reads the superblock and the group descriptors, then scans every used inode with a precompiled
``struct`` (compiled from the construct declarations in :mod:`imgdiff.formats.ext4.c_ext4`), maps every allocated
block to its owner (static metadata, a file's data, an extent tree block, an xattr block, the journal) and walks
the directory tree to name inodes by path.  Only then does it build nodes, and only for the objects whose bytes
differ (``ctx.interesting``) plus those the engine asks for by key (``Node.expand``), so a 1 GiB image with a few
differing bytes costs one inode scan and one directory walk.

Tree (keys in brackets; all siblings have disjoint fields)::

    ext4 [ext4]
      ext4.boot [boot]                       bytes before the primary superblock
      ext4.superblock [superblock], [superblock@group:N]  (backups declared Derived copies of the primary)
      ext4.gdt [gdt], [gdt@group:N] -> ext4.group_desc [gd:N]
      ext4.reserved_gdt [rgdt], [rgdt@group:N]
      ext4.block_bitmap [bbitmap:N], ext4.inode_bitmap [ibitmap:N]
      ext4.inodes [inodes] -> ext4.inode [<path> | ino:N],
                              ext4.inode [(checksums only)]   one node for many inodes whose only differing
                                                              bytes are their checksums (see ``grouped``)
      ext4.directories [dirs] -> ext4.directory [<path>] -> ext4.dirent [<path>/<name> | deleted:<path>],
                                 ext4.dir_block / ext4.dx_root / ext4.dx_node [blk:L], ext4.extent_block,
                                 ext4.dir_block [inline:0 | inline:1]   (inline directory: i_block, system.data)
      ext4.files [files] -> ext4.file [<path> | ino:N] -> ext4.extent_block [eb:D:L], ext4.indirect_block
      ext4.xattr_blocks [xattrs] -> ext4.xattr_block [<path>]
      ext4.journal [journal] -> ext4.journal_block [jblk:N], ext4.extent_block
      ext4.orphan_file [orphan] -> ext4.orphan_block [blk:L]
      ext4.indirect_block [resize:dind]      the resize inode's block
      ext4.free [free:N]                     unallocated blocks of group N
      ext4.unowned [unowned:N] (raw)         allocated blocks nothing refers to
      ext4.beyond_end [beyond]               region bytes after the last filesystem block

``i_block`` is named by what it holds: an extent root (``i_block.extent[N].*``), block pointers, a fast symlink's
target (text), a device's ``i_block[0]``/``i_block[1]`` (old and new device encoding, shown as major:minor).  An
inline-data file or directory has its content in ``i_block`` and the ``system.data`` xattr value; those bytes belong
to its ``ext4.file`` (field ``data``, the rest ``slack``) or ``ext4.directory`` node, not to the inode.  A slow
symlink's ``data`` is its target text.

Checksums (superblock, group descriptors, bitmaps, inodes, directory tails, htree tails, extent blocks, xattr
blocks, orphan blocks, jbd2 superblock) are declared :class:`~imgdiff.model.Derived` with the bytes they cover and
the ``s_uuid`` seed.  Checksums are not recomputed.

References:
    https://docs.kernel.org/filesystems/ext4/ (Documentation/filesystems/ext4/: overview.rst, globals.rst,
    group_descr.rst, bitmaps.rst, inodes.rst, ifork.rst, directory.rst, attributes.rst, journal.rst,
    orphan.rst, checksums.rst, special_inodes.rst)
    fs/ext4/ext4.h, fs/ext4/ext4_extents.h, fs/ext4/namei.c, fs/ext4/xattr.h, include/linux/jbd2.h
    fs/ext4/inode.c (__ext4_iget: i_block[0] old_decode_dev, else i_block[1] new_decode_dev), fs/ext4/inline.c,
    include/linux/kdev_t.h
    e2fsprogs lib/ext2fs/ext2_fs.h, lib/ext2fs/openfs.c (ext2fs_descriptor_block_loc2), lib/ext2fs/closefs.c
    (ext2fs_bg_has_super), lib/ext2fs/inline_data.c (ext2fs_inline_data_get), lib/ext2fs/symlink.c,
    misc/create_inode.c (do_mknod_internal), debugfs/debugfs.c (device number display)
"""

from __future__ import annotations

import struct

from imgdiff.formats.base import ParseContext
from imgdiff.formats.ext4.c_ext4 import EXT4_SUPER_MAGIC, EXT4_SUPERBLOCK_OFFSET, INCOMPAT_64BIT
from imgdiff.formats.ext4.common import C_SB
from imgdiff.formats.ext4.targets import build
from imgdiff.formats.ext4.volume import Volume
from imgdiff.model import Node

NAME = "ext4"


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region holds an ext2/3/4 superblock: magic 0xEF53 at byte 1080, revision 0 or 1.

    The geometry is checked by :func:`parse`, so a damaged superblock is reported (ParseError naming the field)
    instead of the region silently becoming unrecognised data.
    """
    if len(head) < EXT4_SUPERBLOCK_OFFSET + 0x60 or size < 2048:
        return False
    sb = head[EXT4_SUPERBLOCK_OFFSET:]
    magic = struct.unpack_from("<H", sb, C_SB.offset("s_magic"))[0]
    rev = struct.unpack_from("<I", sb, C_SB.offset("s_rev_level"))[0]
    return magic == EXT4_SUPER_MAGIC and rev <= 1


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("ext4 superblock", "filesystem", bytes s_blocks_count says)`` when ``head`` holds the superblock
    magic whatever the region's size (so a truncated image is reported as such), else None (0 bytes: unknown)."""
    magic_end = EXT4_SUPERBLOCK_OFFSET + C_SB.offset("s_magic") + 2
    if len(head) < magic_end or not recognizes(head[:2048].ljust(2048, b"\0"), 1 << 62):
        return None
    sb = head[EXT4_SUPERBLOCK_OFFSET : EXT4_SUPERBLOCK_OFFSET + 1024].ljust(1024, b"\0")
    blocks = struct.unpack_from("<I", sb, C_SB.offset("s_blocks_count_lo"))[0]
    if struct.unpack_from("<I", sb, C_SB.offset("s_feature_incompat"))[0] & INCOMPAT_64BIT:
        blocks |= struct.unpack_from("<I", sb, C_SB.offset("s_blocks_count_hi"))[0] << 32
    log = struct.unpack_from("<I", sb, C_SB.offset("s_log_block_size"))[0]
    return "ext4 superblock", "filesystem", blocks << (10 + log) if log <= 6 else 0


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``ext4`` node of ``[base, base + size)``; raises ParseError when the superblock is unusable."""
    vol = Volume(ctx, base, size)
    return build(vol, label)

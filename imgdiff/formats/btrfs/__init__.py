"""btrfs filesystems: every on-disk structure as nodes whose fields carry absolute byte extents.

The parser reads the superblock, maps the logical address space through ``sys_chunk_array`` and the chunk tree,
walks the root tree and every tree it lists (extent, dev, fs, csum, uuid, free-space, block-group, data-reloc,
subvolumes, the log tree), names every inode by path, and assigns every physical byte of the device to an owner.
Nodes are built only where bytes differ (plus whatever the engine asks for by key).

Tree (keys in brackets; all siblings have disjoint fields)::

    btrfs [btrfs]
      btrfs.superblock [superblock], [superblock@mirror:N]    mirrors: Derived copies of the primary
      btrfs.tree [tree:<NAME>]                                ROOT_TREE, CHUNK_TREE, EXTENT_TREE, FS_TREE, 256, ...
        btrfs.leaf [leaf:<first item key>] / btrfs.node [node:<level>:<first key>]
          btrfs.block_copy [copy:N]                           DUP/RAID1 copies: Derived copies of the block
        btrfs.<item> [<item key>]                             item header + payload, e.g.
          btrfs.inode_item [/etc INODE_ITEM], btrfs.inode_ref [/etc INODE_REF /],
          btrfs.dir_item [/ DIR_INDEX etc], btrfs.file_extent_item [/etc/os-release EXTENT_DATA 0],
          btrfs.root_item [(FS_TREE ROOT_ITEM 0)], btrfs.chunk_item, btrfs.dev_item, btrfs.dev_extent,
          btrfs.extent_item, btrfs.block_group_item, btrfs.csum_item, btrfs.free_space_info,
          btrfs.uuid_item [UUID_KEY_SUBVOL FS_TREE], ...
      btrfs.files [files] -> btrfs.file [<path>]              data extents of regular files (data, slack, copies)
      btrfs.free [free:<TYPE>:<logical>(#stripe)]             unused chunk space
        btrfs.leaf / btrfs.node [stale:<offset>]              earlier tree blocks still lying there (attrs stale)
      btrfs.unallocated [unallocated:<offset>]                device space no chunk uses (and the boot area)
      btrfs.beyond_end [beyond]                               region bytes after the device's total_bytes

In file-system trees, items are keyed by path (inode numbers follow the staging tree's walk order and differ
between builds); elsewhere by the key as dump-tree prints it.  Inline file data is the ``data`` field of its
EXTENT_DATA item (attrs ``content``), regular file data the ``data`` field of a ``btrfs.file``.

Derived: every tree block's ``csum`` (over its bytes after the checksum), the superblock ``csum``, every field of a
superblock mirror and of a block's second copy (copies), and every csum-tree checksum (over the data sector it
covers).  Checksums are not recomputed.

References:
    include/uapi/linux/btrfs_tree.h, include/uapi/linux/btrfs.h; fs/btrfs/disk-io.c, volumes.c, tree-checker.c
    btrfs-progs kernel-shared/uapi/btrfs_tree.h, kernel-shared/print-tree.c, mkfs/main.c, mkfs/common.c,
    mkfs/rootdir.c; https://btrfs.readthedocs.io/en/latest/dev/On-disk-format.html
"""

from __future__ import annotations

from imgdiff.formats.base import ParseContext
from imgdiff.formats.btrfs.c_btrfs import BTRFS_MAGIC, BTRFS_SUPER_INFO_OFFSET, BTRFS_SUPER_INFO_SIZE
from imgdiff.formats.btrfs.parser import Btrfs
from imgdiff.model import Node

NAME = "btrfs"

_MAGIC_AT = BTRFS_SUPER_INFO_OFFSET + 0x40
HEAD_BYTES = BTRFS_SUPER_INFO_OFFSET + BTRFS_SUPER_INFO_SIZE
"""Bytes of a region :func:`recognizes` needs (the superblock at 64 KiB): detection reads this much."""


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region holds a btrfs superblock: ``_BHRfS_M`` at byte 0x10040.

    The rest (sizes, checksum type, chunk array) is checked by :func:`parse`, so a damaged superblock is reported
    instead of the region silently becoming unrecognised data.
    """
    return size >= BTRFS_SUPER_INFO_OFFSET + BTRFS_SUPER_INFO_SIZE and head[_MAGIC_AT : _MAGIC_AT + 8] == BTRFS_MAGIC


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``btrfs`` node of ``[base, base + size)``; raises ParseError when the superblock is unusable."""
    return Btrfs(ctx, base, size, label).node()

"""The file-system trees (FS_TREE, subvolumes, the data relocation tree): inodes, names, paths and file extents.

While the parser walks a file-system tree it hands every leaf item to :meth:`FsTree.collect`, which keeps what is
needed later and nothing else: each inode's mode and size (INODE_ITEM), its names (INODE_REF, INODE_EXTREF), each
directory's entries (DIR_INDEX, or DIR_ITEM where no index exists) and each file's extents (EXTENT_DATA).
:meth:`FsTree.resolve` then names inodes by path, walking the directories from ``root_dirid`` in name order so that
the path chosen for a hard-linked inode does not depend on inode numbers.  Inode numbers differ between builds
(btrfs-progs < 6.10.1 took them from the staging tree's ``st_ino``, later ones count in ``nftw()`` order), paths do
not: items and files are aligned by path.

References:
    include/uapi/linux/btrfs_tree.h (btrfs_inode_item, btrfs_inode_ref, btrfs_inode_extref, btrfs_dir_item,
    btrfs_file_extent_item), fs/btrfs/inode.c, btrfs-progs mkfs/rootdir.c
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from imgdiff.formats.btrfs.blocks import ItemRef
from imgdiff.formats.btrfs.c_btrfs import (
    BTRFS_DIR_INDEX_KEY,
    BTRFS_DIR_ITEM_KEY,
    BTRFS_EXTENT_DATA_KEY,
    BTRFS_FILE_EXTENT_INLINE,
    BTRFS_INODE_EXTREF_KEY,
    BTRFS_INODE_ITEM_KEY,
    BTRFS_INODE_REF_KEY,
    BTRFS_ROOT_ITEM_KEY,
    MODE_TYPES,
    S_IFMT,
)
from imgdiff.formats.btrfs.items import dir_entries, name_text

MAX_PATH_DEPTH = 2048
MAX_ENTRIES = 50_000_000
"""Directory entries kept per file-system tree at most (bounds a hostile tree)."""

_FE_HEAD = struct.Struct("<QQBBHB")
_FE_REG = struct.Struct("<QQQQ")


@dataclass(frozen=True, slots=True)
class FileExtent:
    """One EXTENT_DATA item: ``file_off`` in the file; for regular/prealloc extents the disk range it uses."""

    file_off: int
    type: int
    compression: int
    encryption: int
    ram_bytes: int
    disk_bytenr: int = 0
    disk_num_bytes: int = 0
    offset: int = 0
    num_bytes: int = 0
    inline_len: int = 0


@dataclass(slots=True)
class Inode:
    """What the parser keeps of an INODE_ITEM."""

    mode: int
    size: int
    nlink: int


@dataclass(slots=True)
class FsTree:
    """The collected contents of one file-system tree."""

    tree_id: int
    root_dirid: int = 256
    inodes: dict[int, Inode] = field(default_factory=dict)
    names: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    """inode -> its (parent inode, name) pairs from INODE_REF / INODE_EXTREF."""
    entries: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    """directory inode -> name -> (location objectid, location key type) from DIR_INDEX (DIR_ITEM as fallback)."""
    extents: dict[int, list[FileExtent]] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)
    """inode -> its path (the first in name order), filled by :meth:`resolve`."""
    aliases: dict[int, list[str]] = field(default_factory=dict)
    """inode -> every path it has, for hard-linked inodes only."""
    subvols: list[tuple[str, int]] = field(default_factory=list)
    """(path, subvolume id) of the subvolumes mounted inside this tree."""
    n_entries: int = 0
    errors: list[str] = field(default_factory=list)

    def collect(self, item: ItemRef, payload: bytes) -> None:
        """Keep what path resolution and file building need from one leaf item."""
        obj, typ, off = item.key
        if typ == BTRFS_INODE_ITEM_KEY and len(payload) >= 160:
            size, nlink = struct.unpack_from("<Q", payload, 16)[0], struct.unpack_from("<I", payload, 40)[0]
            mode = struct.unpack_from("<I", payload, 52)[0]
            self.inodes[obj] = Inode(mode, size, nlink)
        elif typ == BTRFS_INODE_REF_KEY:
            pos = 0
            while pos + 10 <= len(payload):
                n = struct.unpack_from("<H", payload, pos + 8)[0]
                self.names.setdefault(obj, []).append((off, name_text(payload[pos + 10 : pos + 10 + n])))
                pos += 10 + n
        elif typ == BTRFS_INODE_EXTREF_KEY:
            pos = 0
            while pos + 18 <= len(payload):
                parent = struct.unpack_from("<Q", payload, pos)[0]
                n = struct.unpack_from("<H", payload, pos + 16)[0]
                self.names.setdefault(obj, []).append((parent, name_text(payload[pos + 18 : pos + 18 + n])))
                pos += 18 + n
        elif typ in (BTRFS_DIR_INDEX_KEY, BTRFS_DIR_ITEM_KEY):
            if self.n_entries >= MAX_ENTRIES:
                return
            d = self.entries.setdefault(obj, {})
            for _p, v, name, _val in dir_entries(payload):
                nm = name_text(name)
                if typ == BTRFS_DIR_INDEX_KEY or nm not in d:
                    d[nm] = (v["location.objectid"], v["location.type"])
                    self.n_entries += 1
        elif typ == BTRFS_EXTENT_DATA_KEY and len(payload) >= _FE_HEAD.size:
            gen, ram, comp, enc, _other, etype = _FE_HEAD.unpack_from(payload, 0)
            del gen
            if etype == BTRFS_FILE_EXTENT_INLINE:
                fe = FileExtent(off, etype, comp, enc, ram, inline_len=len(payload) - _FE_HEAD.size)
            elif len(payload) >= _FE_HEAD.size + _FE_REG.size:
                db, dn, o, nb = _FE_REG.unpack_from(payload, _FE_HEAD.size)
                fe = FileExtent(off, etype, comp, enc, ram, db, dn, o, nb)
            else:
                return
            self.extents.setdefault(obj, []).append(fe)

    def file_type(self, ino: int) -> str:
        """Return ``reg``, ``dir``, ``lnk``, ... of an inode (``unknown`` when it has no INODE_ITEM)."""
        i = self.inodes.get(ino)
        return MODE_TYPES.get(i.mode & S_IFMT, "unknown") if i is not None else "unknown"

    def resolve(self, prefix: str) -> None:
        """Name every reachable inode by path below ``prefix`` (``""`` for the top level, ``"/sub"`` inside)."""
        root = self.root_dirid
        self.paths[root] = prefix or "/"
        all_paths: dict[int, list[str]] = {}
        stack: list[tuple[int, str, int]] = [(root, prefix, 0)]
        visited = {root}
        while stack:
            d, dpath, depth = stack.pop()
            ents = self.entries.get(d, {})
            # pushed in reverse name order: popped (and so named) in name order
            for name in sorted(ents, reverse=True):
                child, ktype = ents[name]
                path = f"{dpath}/{name}"
                if ktype == BTRFS_ROOT_ITEM_KEY:
                    self.subvols.append((path, child))
                    continue
                all_paths.setdefault(child, []).append(path)
                if child in visited:
                    continue
                if depth >= MAX_PATH_DEPTH:
                    self.errors.append(f"{path}: directory tree too deep")
                    continue
                visited.add(child)
                if self.file_type(child) == "dir":
                    stack.append((child, path, depth + 1))
        for ino, ps in all_paths.items():
            ps.sort()
            self.paths.setdefault(ino, ps[0])
            if len(ps) > 1:
                self.aliases[ino] = ps
        for ino in self.inodes:
            if ino not in self.paths and ino != root:
                self.errors.append(f"inode {ino} of tree {self.tree_id} is not reachable from the root directory")

    def path(self, ino: int) -> str:
        """Return the path of ``ino`` or ``ino:<n>`` for an unreachable one."""
        return self.paths.get(ino) or f"ino:{ino}"

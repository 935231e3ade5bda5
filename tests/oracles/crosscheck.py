"""Independent-oracle cross-checks: imgdiff's ext4 and FAT parsers against dissect.extfs and dissect.fat.

Used by ``tests/test_oracles.py`` (the fixture images) and by ``tests/oracles/e2fsprogs_crosscheck.py`` (the
e2fsprogs test images).  Not a test module itself.

:func:`crosscheck_image` parses an image with imgdiff (``ParseContext(diff=None)``: every node built), finds every
ext4 and FAT filesystem in imgdiff's tree (bare, or a GPT/MBR partition), opens the same byte range read-only
with dissect through a :class:`~dissect.util.stream.RangeStream`, and compares, path by path:

* ext4: the set of paths, path -> inode number, ``i_mode``, uid/gid (32-bit), ``i_links_count``, ``i_size``,
  symlink targets, extended attributes (``xattr:<name>`` in the inode, ``xattr_block:<name>`` in the external
  block; a value kept in an EA inode as the SHA-256 of that inode's data) and the SHA-256 of each regular file's
  content (inline data: ``i_block`` plus ``system.data``, as imgdiff's fields hold them);
* FAT: the set of paths (long names as stored; 8.3 names with the DIR_NTRes case bits applied), file/dir,
  ``DIR_Attr``, ``DIR_FileSize``, the first cluster, the raw write/creation times and the SHA-256 of the content.

Known dissect gaps (``/work/shared/reference/libraries.md`` and what the e2fsprogs images showed) are worked
around or left out, never reported as disagreements; each one is named here:

* dissect.fat ignores DIR_NTRes (``loader`` reads as ``LOADER``): the harness applies the two case bits itself;
  it runs with code page cp850, the one imgdiff (and mkfs.fat/mtools) use;
* dissect.fat reads only FAT #1 and skips deleted entries: imgdiff's deleted entries are not compared;
* dissect.extfs's ``ext4_inode`` is a fixed 256-byte layout whose ``i_extra`` starts at byte 160, so its own
  in-inode xattrs are right only for 256-byte inodes with ``i_extra_isize`` 32 (wrong for 28, 512-byte inodes,
  ...): the harness reads the area the kernel reads (``128 + i_extra_isize`` to the end of the inode, at the
  inode table dissect located) and parses it with dissect's entry parser ``_iter_xattr``;
* dissect.extfs uses ``s_inode_size`` as stored, which is 0 on revision-0 filesystems (128-byte inodes): the
  harness sets it to 128 (``REV0``);
* xattr names with no known prefix: dissect says ``unknown_prefix<name>``, imgdiff ``<index>:<name>``; index 8
  is ``system.richacl`` (dissect has no prefix for it): dissect's names are rewritten the imgdiff way;
* the inline-data xattr ``system.data`` is not compared as an xattr: imgdiff owns its value as part of the
  file's ``data`` (compared through the content SHA-256) or the directory's entries (compared as paths).

Names and symlink targets are compared as text decoded the way both readers decode them (UTF-8 with
``surrogateescape``, lossless).

Values are compared exactly; a disagreement is ``(path, field, dissect's value, imgdiff's value)``.  A value
that a reader could not produce is the string ``"<error: ...>"``; a path one reader lacks is the field ``path``.
"""

from __future__ import annotations

import hashlib
import io
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from imgdiff.formats import parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import blob_value
from imgdiff.model import Extent, Node
from imgdiff.source import LayeredSource, Source
from imgdiff.streams import open_input

MAX_ENTRIES = 5_000_000
"""Directory entries a dissect walk visits at most (a hostile image must not hang the check)."""
MAX_DEPTH = 256
READ_CHUNK = 1 << 20
HASH_LIMIT = 1 << 30
"""Regular files larger than this (only a corrupt i_size on these small images) are not hashed by either reader."""
LINK_MAX = 4096
"""Symlink targets are compared up to this many bytes (the kernel's PATH_MAX; a corrupt i_size can be huge)."""
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
XATTR_MAGIC = 0xEA020000
INLINE_DATA_XATTR = "system.data"
REV0 = "revision 0 filesystem: dissect.extfs is told s_inode_size 128 (it uses the on-disk 0)"

Values = dict[str, Any]
"""One path's compared fields: ``{"ino": 12, "mode": 0o100644, "xattr:user.x": b"...", ...}``."""


@dataclass
class Disagreement:
    """One field of one path on which the two readers disagree."""

    path: str
    field: str
    dissect: Any
    imgdiff: Any


@dataclass
class FsResult:
    """The cross-check of one filesystem: where it is, how many paths were compared, what disagreed."""

    fmt: str
    """``"ext4"`` or ``"vfat"``."""
    base: int
    size: int
    paths: int
    """Paths both readers have (compared field by field)."""
    fields: int
    """Field values compared on those paths."""
    disagreements: list[Disagreement] = field(default_factory=list)
    imgdiff_errors: list[str] = field(default_factory=list)
    dissect_errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Comparisons left out because of a named dissect gap."""


# ---------------------------------------------------------------------------------------------------------------
# imgdiff's view


def filesystems(root: Node) -> list[Node]:
    """Return imgdiff's ext4 and vfat nodes in the tree, in image order."""
    found = [n for _k, n in root.walk() if n.kind in ("ext4", "vfat")]
    return sorted(found, key=lambda n: n.extents[0].offset)


def _kid(node: Node, key: str) -> Node | None:
    """The built child ``key`` of ``node`` (no lazy expansion: the tree is fully built)."""
    for c in node.children:
        if c.key == key:
            return c
    return None


def _fv(node: Node, name: str) -> Any:
    f = node.field_named(name)
    return None if f is None else f.value


def ext4_ours(fs: Node, read: Callable[[int, int], bytes]) -> dict[str, Values]:
    """Return imgdiff's ext4 values per path (every name of a hard-linked inode is a path).

    ``read(offset, size)`` reads the image: a slow symlink's target is read at the extents of its ``data`` field.
    """
    inodes, files, xblocks = _kid(fs, "inodes"), _kid(fs, "files"), _kid(fs, "xattrs")
    data: dict[str, Any] = {}
    data_ext: dict[str, tuple[Extent, ...]] = {}
    for f in files.children if files is not None else ():
        d = f.field_named("data")
        if d is not None:
            data[f.key] = d.value
            data_ext[f.key] = d.extents
    external: dict[str, dict[str, Any]] = {}
    for xb in xblocks.children if xblocks is not None else ():
        values = _xattr_values(xb, data)
        for o in xb.attrs.get("owners") or (xb.key,):  # type: ignore[union-attr]
            external[str(o)] = values
    out: dict[str, Values] = {}
    for n in inodes.children if inodes is not None else ():
        paths = n.attrs.get("paths") or ((n.attrs.get("path"),) if n.attrs.get("path") else ())
        if n.attrs.get("unused") or not paths:
            continue
        mode = int(_fv(n, "i_mode") or 0)
        v: Values = {
            "ino": n.attrs.get("ino"),
            "mode": mode,
            "uid": int(_fv(n, "i_uid") or 0) | (int(_fv(n, "i_uid_high") or 0) << 16),
            "gid": int(_fv(n, "i_gid") or 0) | (int(_fv(n, "i_gid_high") or 0) << 16),
            "links": _fv(n, "i_links_count"),
            "size": int(_fv(n, "i_size_lo") or 0) | (int(_fv(n, "i_size_high") or 0) << 32),
        }
        inline = _xattr_values(n, data)
        v.update({"xattr:" + k: val for k, val in inline.items() if k != INLINE_DATA_XATTR})
        v.update({"xattr_block:" + k: val for k, val in external.get(n.key, {}).items()})
        ftype = stat.S_IFMT(mode)
        ib = n.field_named("i_block")
        inline_data = ib is not None and ib.display == "inline data"
        if ftype == stat.S_IFLNK:
            if ib is not None and ib.display == "symlink target":
                v["link"] = ib.value
            elif n.key in data_ext:  # slow or inline: the bytes imgdiff names as the symlink's data, in order
                want = min(v["size"], LINK_MAX)
                v["link"] = _text(b"".join(read(e.offset, e.length) for e in data_ext[n.key])[:want])
            elif inline_data:
                raw = _inline_bytes(ib.value, inline.get("system.data"), v["size"])  # type: ignore[union-attr]
                v["link"] = _text(raw) if isinstance(raw, bytes) else raw
            else:
                v["link"] = "" if v["size"] == 0 else "<imgdiff: no target>"
        elif ftype == stat.S_IFREG:
            if v["size"] > HASH_LIMIT:
                v["sha256"] = f"<not hashed: {v['size']} bytes>"
            elif n.key in data:
                v["sha256"] = data[n.key]
            elif v["size"] == 0:
                v["sha256"] = EMPTY_SHA256
            elif inline_data:
                raw = _inline_bytes(ib.value, inline.get("system.data"), v["size"])  # type: ignore[union-attr]
                v["sha256"] = hashlib.sha256(raw).hexdigest() if isinstance(raw, bytes) else raw
            else:
                v["sha256"] = "<imgdiff: no data field>"
        for p in paths:  # type: ignore[union-attr]
            out[str(p)] = v
    return out


def _xattr_values(n: Node, data: dict[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of the xattr entries in ``n``'s fields (``xattr[<name>].*``).

    A value kept in an EA inode (``e_value_inum``) is that inode's ``data`` SHA-256 as ``"ea_inode:<hex>"``.
    """
    entries: dict[str, dict[str, Any]] = {}
    for f in n.all_fields():
        if f.name.startswith("xattr[") and "]." in f.name:
            name, _, part = f.name[6:].rpartition("].")
            entries.setdefault(name, {})[part] = f.value
    out: dict[str, Any] = {}
    for name, e in entries.items():
        inum = e.get("e_value_inum") or 0
        if inum:
            out[name] = "ea_inode:" + str(data.get(f"ino:{inum}", f"<imgdiff: EA inode {inum} has no data field>"))
        elif "value" in e:
            out[name] = e["value"]
        else:
            out[name] = b"" if not e.get("e_value_size") else "<imgdiff: no value field>"
    return out


def _inline_bytes(iblock: Any, system_data: Any, size: int) -> bytes | str:
    """A file's inline data from imgdiff's ``i_block`` blob and its ``system.data`` xattr value."""
    if not isinstance(iblock, bytes):
        return "<imgdiff: inline data summarised>"
    content = iblock[:size]
    if size > len(iblock):
        if not isinstance(system_data, bytes):
            return "<imgdiff: inline data continues in a summarised system.data>"
        content += system_data[: size - len(iblock)]
    return content


def vfat_ours(fs: Node) -> dict[str, Values]:
    """Return imgdiff's FAT values per path (files and directories; no dot, label or deleted entries)."""
    data: dict[str, Any] = {}
    out: dict[str, Values] = {}
    for _k, n in fs.walk():
        if n.kind == "vfat.file":
            d = n.field_named("data")
            data[n.key] = d.value if d is not None else None
    for _k, n in fs.walk():
        if n.kind != "vfat.dirent" or n.attrs.get("dot") or n.attrs.get("file_type") not in ("file", "dir"):
            continue
        path = str(n.attrs["path"])
        is_dir = n.attrs["file_type"] == "dir"
        v: Values = {
            "type": "dir" if is_dir else "file",
            "attr": _fv(n, "DIR_Attr"),
            "cluster": n.attrs.get("first_cluster"),
            "wrt": (_fv(n, "DIR_WrtDate"), _fv(n, "DIR_WrtTime")),
            "crt": (_fv(n, "DIR_CrtDate"), _fv(n, "DIR_CrtTime"), _fv(n, "DIR_CrtTimeTenth")),
        }
        if not is_dir:
            v["size"] = _fv(n, "DIR_FileSize")
            v["sha256"] = data.get(path, "<imgdiff: no file node>")
        out[path] = v
    return out


# ---------------------------------------------------------------------------------------------------------------
# dissect's view

def _text(raw: bytes) -> str:
    """Bytes of a name or symlink target as both readers decode them (UTF-8, surrogateescape: lossless)."""
    return bytes(raw).decode("utf-8", errors="surrogateescape")


def _err(exc: BaseException) -> str:
    return f"<error: {type(exc).__name__}: {str(exc)[:80]}>"


def _sha(fh: BinaryIO, size: int) -> str:
    h = hashlib.sha256()
    left = size
    while left > 0:
        chunk = fh.read(min(READ_CHUNK, left))
        if not chunk:
            return f"<short read: {size - left} of {size} bytes>"
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def ext4_theirs(fh: BinaryIO, base: int, size: int, errors: list[str], skipped: list[str]) -> dict[str, Values]:
    """Return dissect.extfs's values per path for the ext4 at ``[base, base + size)`` of ``fh``."""
    from dissect.extfs import ExtFS
    from dissect.util.stream import RangeStream

    fs = ExtFS(RangeStream(fh, base, size))
    if fs.sb.s_rev_level == 0:  # GOOD_OLD_REV: s_inode_size is 0 on disk and means 128 (dissect reads it as 0)
        fs.sb.s_inode_size = 128
        skipped.append(REV0)
    out: dict[str, Values] = {}
    seen_dirs: set[int] = {2}
    stack: list[tuple[Any, str, int]] = [(fs.root, "/", 0)]
    count = 0
    out["/"] = _ext4_values(fs, fs.root)
    while stack:
        node, path, depth = stack.pop()
        try:
            entries = list(node.iterdir())
        except Exception as exc:  # noqa: BLE001 - any failure of the oracle is a finding, not a crash
            errors.append(f"{path}: iterdir: {_err(exc)}")
            continue
        for child in entries:
            count += 1
            if count > MAX_ENTRIES:
                errors.append(f"more than {MAX_ENTRIES} entries; walk stopped")
                return out
            name = child.filename or ""
            if name in (".", ".."):
                continue
            cpath = ("/" if path == "/" else path + "/") + name
            if cpath in out:
                errors.append(f"{cpath}: duplicate entry")
                continue
            out[cpath] = v = _ext4_values(fs, child)
            if stat.S_ISDIR(v["mode"]) and child.inum not in seen_dirs and depth < MAX_DEPTH:
                seen_dirs.add(child.inum)
                stack.append((child, cpath, depth + 1))
    return out


def _ext4_values(fs: Any, node: Any) -> Values:
    try:
        ino = node.inode
    except Exception as exc:  # noqa: BLE001
        return {"ino": node.inum, "mode": 0, "read": _err(exc)}
    mode = ino.i_mode
    v: Values = {
        "ino": node.inum,
        "mode": mode,
        "uid": ino.i_uid | (ino.i_uid_high << 16),
        "gid": ino.i_gid | (ino.i_gid_high << 16),
        "links": ino.i_links_count,
        "size": ino.i_size_lo | (ino.i_size_high << 32),
    }
    try:
        v.update({"xattr:" + k: val for k, val in _inode_xattrs(fs, node).items() if k != INLINE_DATA_XATTR})
    except Exception as exc:  # noqa: BLE001
        v["xattr:<all>"] = _err(exc)
    try:
        v.update({"xattr_block:" + k: val for k, val in _block_xattrs(fs, node).items()})
    except Exception as exc:  # noqa: BLE001
        v["xattr_block:<all>"] = _err(exc)
    ftype = stat.S_IFMT(mode)
    try:
        if ftype == stat.S_IFLNK:
            v["link"] = _text(node.open().read(min(v["size"], LINK_MAX)))
        elif ftype == stat.S_IFREG:
            if v["size"] > HASH_LIMIT:
                v["sha256"] = f"<not hashed: {v['size']} bytes>"
            else:
                v["sha256"] = _sha(node.open(), v["size"])
    except Exception as exc:  # noqa: BLE001
        v["link" if ftype == stat.S_IFLNK else "sha256"] = _err(exc)
    return v


def _xattr_dict(xattrs: Any) -> dict[str, Any]:
    """dissect XAttr objects as ``{name: value}``, named and valued the way imgdiff names and values them."""
    out: dict[str, Any] = {}
    for x in xattrs:
        idx, raw = x.entry.e_name_index, _text(x.entry.e_name)
        if x.prefix != "unknown_prefix":
            name = x.name
        elif idx == 8:  # EXT4_XATTR_INDEX_RICHACL: dissect has no prefix for it
            name = "system.richacl" + raw
        else:
            name = f"{idx}:{raw}"
        out[name] = ("ea_inode:" + hashlib.sha256(x.value).hexdigest()) if x.entry.e_value_inum else blob_value(x.value)
    return out


def _inode_xattrs(fs: Any, node: Any) -> dict[str, Any]:
    """The in-inode xattrs: dissect's entry parser over the area the kernel reads (module docstring)."""
    from dissect.extfs.extfs import _iter_xattr

    isize = fs.sb.s_inode_size
    extra = node.inode.i_extra_isize if isize > 128 else 0
    start = 128 + extra
    if extra == 0 or extra % 4 or start + 4 > isize:
        return {}  # the kernel looks for in-inode xattrs only after a valid, non-zero i_extra_isize
    group, index = divmod(node.inum - 1, fs.sb.s_inodes_per_group)
    gd = fs._read_group_desc(group)
    table = gd.bg_inode_table_lo | ((gd.bg_inode_table_hi << 32) if hasattr(gd, "bg_inode_table_hi") else 0)
    fs.fh.seek(table * fs.block_size + index * isize + start)
    area = fs.fh.read(isize - start)
    if int.from_bytes(area[:4], "little") != XATTR_MAGIC:
        return {}
    buf = io.BytesIO(area)
    buf.seek(4)
    return _xattr_dict(_iter_xattr(node, buf, len(area), 4))


def _block_xattrs(fs: Any, node: Any) -> dict[str, Any]:
    """The xattrs of the inode's external xattr block, as dissect reads them."""
    from dissect.extfs.c_ext import c_ext
    from dissect.extfs.extfs import _iter_xattr
    from dissect.util.stream import RangeStream

    ino = node.inode
    block = (ino.i_file_acl_high << 32) | ino.i_file_acl_lo
    if not block:
        return {}
    buf = RangeStream(fs.fh, block * fs.block_size, fs.block_size)
    if c_ext.ext4_xattr_header(buf).h_magic != c_ext.EXT4_XATTR_MAGIC:
        raise ValueError("Invalid xattr magic value")
    return _xattr_dict(_iter_xattr(node, buf, buf.size))


NTRES_LOWER_BASE = 0x08
NTRES_LOWER_EXT = 0x10


def vfat_theirs(fh: BinaryIO, base: int, size: int, errors: list[str]) -> dict[str, Values]:
    """Return dissect.fat's values per path for the FAT at ``[base, base + size)`` of ``fh``."""
    from dissect.fat import FATFS
    from dissect.util.stream import RangeStream

    fs = FATFS(RangeStream(fh, base, size), encoding="cp850")
    out: dict[str, Values] = {}
    stack: list[tuple[Any, str, int]] = [(fs.root, "/", 0)]
    seen: set[int] = set()
    count = 0
    while stack:
        node, path, depth = stack.pop()
        try:
            entries = list(node.iterdir())
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{path}: iterdir: {_err(exc)}")
            continue
        for e in entries:
            count += 1
            if count > MAX_ENTRIES:
                errors.append(f"more than {MAX_ENTRIES} entries; walk stopped")
                return out
            d = e.dirent
            if d.DIR_Attr & 0x08 and not d.DIR_Attr & 0x10:  # volume label
                continue
            if e.name in (".", ".."):
                continue
            name = e.name if e.ldirents else _ntres_case(e.short_name, d.DIR_NTRes)
            cpath = ("/" if path == "/" else path + "/") + name
            if cpath in out:
                errors.append(f"{cpath}: duplicate entry")
                continue
            is_dir = bool(d.DIR_Attr & 0x10)
            cluster = (d.DIR_FstClusHI << 16 | d.DIR_FstClusLO) if fs.type.name == "FAT32" else d.DIR_FstClusLO
            v: Values = {
                "type": "dir" if is_dir else "file",
                "attr": d.DIR_Attr,
                "cluster": cluster,
                "wrt": (d.DIR_WrtDate, d.DIR_WrtTime),
                "crt": (d.DIR_CrtDate, d.DIR_CrtTime, d.DIR_CrtTimeTenth),
            }
            if not is_dir:
                v["size"] = d.DIR_FileSize
                try:
                    v["sha256"] = _sha(e.open(), d.DIR_FileSize) if d.DIR_FileSize else EMPTY_SHA256
                except Exception as exc:  # noqa: BLE001
                    v["sha256"] = _err(exc)
            out[cpath] = v
            if is_dir and cluster not in seen and depth < MAX_DEPTH:
                seen.add(cluster)
                stack.append((e, cpath, depth + 1))
    return out


def _ntres_case(short: str, ntres: int) -> str:
    """Apply the DIR_NTRes lower-case bits that dissect.fat ignores to its 8.3 name."""
    base, dot, ext = short.partition(".")
    if ntres & NTRES_LOWER_BASE:
        base = base.lower()
    if ntres & NTRES_LOWER_EXT:
        ext = ext.lower()
    return base + dot + ext


# ---------------------------------------------------------------------------------------------------------------
# the comparison


def compare(theirs: dict[str, Values], ours: dict[str, Values], result: FsResult) -> None:
    """Fill ``result`` with the paths and fields on which dissect (``theirs``) and imgdiff (``ours``) differ."""
    for p in sorted(set(theirs) | set(ours)):
        if p not in ours:
            result.disagreements.append(Disagreement(p, "path", "present", "absent"))
            continue
        if p not in theirs:
            result.disagreements.append(Disagreement(p, "path", "absent", "present"))
            continue
        result.paths += 1
        a, b = theirs[p], ours[p]
        for k in sorted(set(a) | set(b)):
            result.fields += 1
            if a.get(k, "<absent>") != b.get(k, "<absent>"):
                result.disagreements.append(Disagreement(p, k, a.get(k, "<absent>"), b.get(k, "<absent>")))


class SourceIO(io.RawIOBase):
    """A read-only, seekable file object over an imgdiff :class:`~imgdiff.source.Source` (what dissect reads).

    It reads through imgdiff's input layer, so a compressed input is read decompressed and a filesystem in a
    decoded space at its decoded offset, exactly the bytes imgdiff parsed.
    """

    def __init__(self, src: Source, size: int) -> None:
        super().__init__()
        self.src = src
        self.size = size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buf: Any) -> int:
        data = self.src.read(self.pos, len(buf))
        n = len(data)
        buf[:n] = data
        self.pos += n
        return n


def crosscheck_image(path: Path) -> list[FsResult]:
    """Cross-check every ext4 and FAT filesystem imgdiff finds in ``path`` with dissect.

    The input is opened the way ``imgdiff explain`` opens it (a compressed image is decompressed); an image held
    inside a file is parsed by the engine only when comparing two images, so only the outer filesystem is checked.
    """
    results: list[FsResult] = []
    base_src = open_input(str(path))
    src = LayeredSource(base_src)
    try:
        ctx = ParseContext(src=src, diff=None)
        root = parse_image(ctx)
        for fs in filesystems(root):
            ext = fs.extents[0]
            res = FsResult(fs.kind, ext.offset, ext.length, 0, 0)
            res.imgdiff_errors = list(dict.fromkeys(fs.errors + [e for e in ctx.errors if e.startswith(f"{fs.kind} ")]))
            fh = io.BufferedReader(SourceIO(ctx.src, ext.offset + ext.length), 1 << 16)
            try:
                if fs.kind == "ext4":
                    ours = ext4_ours(fs, ctx.src.read)
                    theirs = ext4_theirs(fh, ext.offset, ext.length, res.dissect_errors, res.skipped)
                else:
                    ours = vfat_ours(fs)
                    theirs = vfat_theirs(fh, ext.offset, ext.length, res.dissect_errors)
            except Exception as exc:  # noqa: BLE001
                res.dissect_errors.append(f"dissect could not open it: {_err(exc)}")
                results.append(res)
                continue
            compare(theirs, ours, res)
            results.append(res)
    finally:
        src.close()
        base_src.close()
    return results

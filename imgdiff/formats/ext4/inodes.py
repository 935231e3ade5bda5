"""Inodes as nodes: the inode table slot's fields (a record built on demand), ``i_block`` named by what it holds, and the in-inode extended attributes."""

from __future__ import annotations

import functools
import struct
from typing import Any

from imgdiff.formats.compiled import Record
from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.formats.ext4.c_ext4 import (
    EXT4_EXT_MAGIC,
    EXT4_EXTENTS_FL,
    EXT4_GOOD_OLD_INODE_SIZE,
    EXT4_INLINE_DATA_FL,
    EXT4_XATTR_MAGIC,
    MODE_TYPES,
    S_IFBLK,
    S_IFCHR,
    S_IFLNK,
    S_IFMT,
    XATTR_PREFIXES,
)
from imgdiff.formats.ext4.common import (
    C_INODE,
    C_XE,
    C_XIH,
    _device_fields,
    _disjoint,
    _gap_fields,
    _inode_fields,
    _inode_plan,
    _inode_step_field,
    _name,
    _reader,
    _xattr_value,
    _xattr_value_display,
)
from imgdiff.formats.ext4.extents import extent_node_fields
from imgdiff.formats.ext4.volume import InodeInfo, Volume
from imgdiff.model import Derived, Extent, Field, Node, merge_extents, subtract_extents


def inodes_node(vol: Volume) -> Node:
    exts = []
    for g in range(vol.groups):
        it = vol.gd[g][2]
        if 0 < it < vol.blocks_count:
            exts.append(Extent(vol.abs(it), min(vol.itb_per_group, vol.blocks_count - it) * vol.bs))
    node = Node(kind="ext4.inodes", key="inodes", label="inode tables", extents=merge_extents(exts))

    def build(key: str) -> Node | None:
        ino = vol.ino_of(key)
        return inode_node(vol, ino) if ino is not None else None

    vol.lazy(node, build)
    return node

class InodeRecord(Record):
    """The fixed members of an inode table slot (``i_block`` excepted) with the inode displays, built on demand."""

    __slots__ = ()

    def __init__(self, raw: bytes, base: int, limit: int) -> None:  # Record's, without its keyword handling
        if len(raw) < _RECORD_SIZE:
            raw = bytes(raw) + bytes(_RECORD_SIZE - len(raw))
        self.compiled = C_INODE
        self.raw = raw[:_RECORD_SIZE]
        self.base = base
        self.limit = limit
        self.skip = _SKIP_IBLOCK
        self.prefix = ""
        self.decode = None
        self.display = None

    def fields(self) -> list[Field]:
        """Return every fixed member as a field (the bulk recipe of :func:`_inode_fields`)."""
        return _inode_fields(self.raw, self.base, self.limit or C_INODE.size)

    def _field(self, k: int, vals: tuple[Any, ...]) -> Field:
        """Build member ``k`` from its recipe (the inode displays); :meth:`Record.diff` builds fields through this."""
        step = _steps_by_member(self.limit or C_INODE.size)[k]
        return _inode_step_field(vals, self.base, step) if step is not None else super()._field(k, vals)


_SKIP_IBLOCK = frozenset({"i_block"})


@functools.cache
def _steps_by_member(limit: int) -> tuple[tuple[str, int, int, int, int, int] | None, ...]:
    """Return, per member of ``C_INODE``, its field recipe for inodes whose fixed part ends at ``limit`` (None:
    not described by a recipe)."""
    by_name = {step[0]: step for step in _inode_plan(limit)}
    return tuple(by_name.get(m[0]) for m in C_INODE.members)


_RECORD_SIZE = C_INODE.size


class InodeSlot:
    """All fields of one inode table slot, built on demand (see :class:`imgdiff.model.FieldSource`).

    The fixed members are an :class:`InodeRecord`; the rest of the slot (``i_block`` named by what it holds, the
    in-inode extended attributes, unused space) is decoded only when asked for, or when its bytes differ from
    the other side's.  Bytes of the slot that an inline-data file's content occupies are not the inode's.
    """

    __slots__ = ("_extra", "absoff", "info", "isz", "limit", "raw", "record", "vals", "vol")

    def __init__(self, vol: Volume, raw: bytes, absoff: int, limit: int, info: InodeInfo | None) -> None:
        self.vol = vol
        self.raw = raw
        self.absoff = absoff
        self.limit = limit
        self.isz = vol.inode_size
        self.info = info
        self.record = InodeRecord(raw, absoff, limit)
        self._extra: tuple[list[Field], list[str]] | None = None

    def extra(self, keep: bool = True) -> tuple[list[Field], list[str]]:
        """Return the fields of ``i_block`` and of the bytes after the fixed members, and the problems found.

        Kept for later calls unless ``keep`` is False (:meth:`diff` of a shifted image's 100,000 inodes, whose
        equal members nobody asks for again: kept, they were 200 MB).
        """
        if self._extra is None:
            errors: list[str] = []
            raw, absoff, isz, info = self.raw, self.absoff, self.isz, self.info
            vals = C_INODE.unpack(raw)
            fields = iblock_fields(self.vol, raw, absoff, vals, info)
            xstart = self.limit
            if xstart < isz:
                # every field so far ends by ``limit``: only the xattr fields can cover bytes of the gap
                xfields: list[Field] = []
                if struct.unpack_from("<I", raw, xstart)[0] == EXT4_XATTR_MAGIC and xstart + 4 <= isz:
                    xfields.extend(C_XIH.fields(raw, xstart, absoff + xstart, prefix="xattr."))
                    xfields.extend(xattr_fields(self.vol, raw, xstart + 4, xstart + 4, isz, absoff, errors))
                _gap_fields(xfields, absoff + xstart, absoff + isz, "i_extra_space", _reader(raw, absoff))
                if info is not None and len(info.inline) > 1:  # the file or directory node owns the content
                    xfields = [f for f in xfields if f.name != "xattr[system.data].value"]
                fields.extend(xfields)
            fields.sort(key=lambda f: f.extents[0].offset)
            if not keep:
                return fields, errors
            self._extra = (fields, errors)
        return self._extra

    def field(self, name: str) -> Field | None:
        """Return the field called ``name``, building only a fixed member or the variable part."""
        found = self.record.field(name)
        if found is not None:
            return found
        return next((f for f in self.extra()[0] if f.name == name), None)

    def fields(self) -> list[Field]:
        """Return every field of the slot, in offset order."""
        out = self.record.fields() + self.extra()[0]
        out.sort(key=lambda f: f.extents[0].offset)
        return out

    def spans(self) -> list[Extent]:
        """Return the slot's bytes, less an inline-data file's content (its file node owns those)."""
        slot = Extent(self.absoff, self.isz)
        if self.info is None or not self.info.inline:
            return [slot]
        base = self.vol.base
        return subtract_extents(slot, [Extent(base + o, n) for o, n in self.info.inline])

    def fields_in(self, ext: Extent) -> list[Field]:
        """Return the fields whose bytes overlap ``ext``."""
        out = self.record.fields_in(ext)
        lo, hi = ext.offset, ext.offset + ext.length
        iblock_at = self.absoff + _IBLOCK_OFF
        if hi > iblock_at and lo < iblock_at + _IBLOCK_LEN or hi > self.absoff + self.limit:
            out.extend(f for f in self.extra()[0]
                       if any(e.offset < hi and e.offset + e.length > lo for e in f.extents))
        return out

    def raw_span(self) -> tuple[int, bytes]:
        """Return the image offset of the slot and its bytes, as read (see ``Attributor._xor_of``)."""
        return self.absoff, self.raw

    def comparable(self, other: object) -> bool:
        """Return True for another slot of the same layout (fixed members up to the same limit)."""
        return isinstance(other, InodeSlot) and other.limit == self.limit and other.isz == self.isz

    def diff(self, other: object) -> list[tuple[Field | None, Field | None]]:
        """Return the pairs of fields that differ: fixed members from their values, the rest by name."""
        assert isinstance(other, InodeSlot)
        if self.raw == other.raw:
            return []
        out: list[tuple[Field | None, Field | None]] = list(self.record.diff(other.record))
        ra, rb = self.raw, other.raw
        if (ra[_IBLOCK_OFF : _IBLOCK_OFF + _IBLOCK_LEN] == rb[_IBLOCK_OFF : _IBLOCK_OFF + _IBLOCK_LEN]
                and ra[self.limit :] == rb[self.limit :]
                and (self.info is None) == (other.info is None)
                and (self.info is None or other.info is None
                     or (self.info.fast, self.info.inline != (), self.info.size)
                     == (other.info.fast, other.info.inline != (), other.info.size))):
            return out  # the variable part is byte for byte the same, and read the same way
        fa_list, fb_list = self.extra(keep=False)[0], other.extra(keep=False)[0]
        by_b = {f.name: f for f in fb_list}
        seen: set[str] = set()
        for fa in fa_list:
            seen.add(fa.name)
            fb = by_b.get(fa.name)
            if fb is not None and fa.value == fb.value and self._raw_of(fa) == other._raw_of(fb):
                continue
            out.append((fa, fb))
        out.extend((None, fb) for fb in fb_list if fb.name not in seen)
        return out

    def _raw_of(self, f: Field) -> bytes:
        return b"".join(self.raw[e.offset - self.absoff : e.end - self.absoff] for e in f.extents)


_IBLOCK_OFF, _IBLOCK_LEN = C_INODE.span("i_block")
_new = tuple.__new__
"""Named tuples without their Python-level ``__new__`` (one inode node per differing inode)."""


def inode_node(vol: Volume, ino: int) -> Node:
    """Return the node of inode ``ino`` (used or not); its fields are an :class:`InodeSlot`, built on demand.

    Built for every differing inode (every inode of a rebuilt image): the common case takes no detour.
    """
    isz = vol.inode_size
    raw = vol.inode_raw(ino)
    absoff = vol.base + vol.inode_offset(ino)
    info = vol.inodes.get(ino)
    errors: list[str] = []
    limit = EXT4_GOOD_OLD_INODE_SIZE
    extra = 0
    mode = raw[0] | raw[1] << 8
    if isz > EXT4_GOOD_OLD_INODE_SIZE:
        extra = raw[_EXTRA_ISIZE_OFF] | raw[_EXTRA_ISIZE_OFF + 1] << 8
        if extra % 4 or EXT4_GOOD_OLD_INODE_SIZE + extra > isz:
            if info is not None:
                errors.append(f"i_extra_isize {extra} is not plausible")
            extra = 0
        limit = EXT4_GOOD_OLD_INODE_SIZE + max(extra, 2)
    slot = InodeSlot(vol, raw, absoff, limit, info)
    if limit + 4 <= isz and raw[limit : limit + 4] == _XATTR_MAGIC_BYTES:
        errors.extend(slot.extra()[1])  # in-inode xattrs: decode now, so that a malformed table is reported
    both = vol.csum and isz > EXT4_GOOD_OLD_INODE_SIZE and extra >= 4
    twin = vol.peer_inode_node(ino, info)
    if twin is not None and len(twin.derived) == (2 if both else 1 if vol.csum else 0):
        # side A's node of the same inode, path and slot: only the bytes (and the errors found in them) are B's
        return Node("ext4.inode", twin.key, twin.label, twin.extents, (), [], twin.derived, twin.attrs, False, None,
                    errors + info.errors if info is not None and info.errors else errors, slot)
    derived: tuple[Derived, ...] = ()
    if vol.csum:
        covers = tuple([_new(Extent, (absoff + o, n)) for o, n in _csum_covers(isz, both)])
        lo = _new(Derived, ("i_checksum_lo", covers, vol.seeds))
        derived = (lo, _new(Derived, ("i_checksum_hi", covers, vol.seeds))) if both else (lo,)
    attrs = vol.path_attrs(ino)
    lst = vol.ino_paths.get(ino)
    if info is None:
        attrs["unused"] = True
        attrs["file_type"] = MODE_TYPES.get(mode & S_IFMT, "none") if mode else "none"
        key = f"ino:{ino}"
        label = f"inode {ino} ({lst[0]}) (unused)" if lst else f"inode {ino} (unused)"
    else:
        attrs["links"] = info.links
        if info.errors:
            errors.extend(info.errors)
        key = lst[0] if lst else f"ino:{ino}"
        label = f"inode {ino} ({lst[0]})" if lst else f"inode {ino}"
    node = Node("ext4.inode", key, label, (_new(Extent, (absoff, isz)),), (), [], derived, attrs, False, None,
                errors, slot)
    vol.keep_inode_node(ino, node)
    return node


@functools.cache
def _csum_covers(isz: int, both: bool) -> tuple[Extent, ...]:
    """Return what an inode's checksum covers, relative to its slot: the slot less the checksum field(s)."""
    csum = [Extent(_CSUM_LO_OFF, 2)] + ([Extent(_CSUM_HI_OFF, 2)] if both else [])
    return tuple(subtract_extents(Extent(0, isz), csum))


_EXTRA_ISIZE_OFF = C_INODE.span("i_extra_isize")[0]
_XATTR_MAGIC_BYTES = struct.pack("<I", EXT4_XATTR_MAGIC)
_CSUM_LO_OFF = C_INODE.span("i_checksum_lo")[0]
_CSUM_HI_OFF = C_INODE.span("i_checksum_hi")[0]


def iblock_fields(vol: Volume, raw: bytes, absoff: int, vals: dict[str, Any], info: InodeInfo | None) -> list[Field]:
    """Return the fields of ``i_block``: an extent tree root, a block map, a symlink target or inline data."""
    off, size = C_INODE.span("i_block")
    ib = raw[off : off + size]
    a = absoff + off
    flags = vals["i_flags"]
    ftype = vals["i_mode"] & S_IFMT
    if info is not None and info.inline:
        return []  # the file or directory node owns the inline content
    if flags & EXT4_INLINE_DATA_FL:
        return [Field("i_block", _blob(ib), (Extent(a, size),), "inline data")]
    if info is not None and info.fast and ftype == S_IFLNK:
        target = ib[: min(info.size, size)]
        out = [Field("i_block", _name(target), (Extent(a, len(target)),), "symlink target")]
        if len(target) < size:
            rest = ib[len(target) :]
            out.append(Field("i_block.unused", _blob(rest), (Extent(a + len(target), size - len(target)),),
                             _blob_display(rest)))
        return out
    if flags & EXT4_EXTENTS_FL and struct.unpack_from("<H", ib)[0] == EXT4_EXT_MAGIC:
        return extent_node_fields(vol, ib, 0, a, size, "i_block.")
    if info is not None and info.fast and ftype in (S_IFCHR, S_IFBLK):
        return _device_fields(ib, a)
    if info is not None and info.fast:
        return [Field("i_block", struct.unpack_from("<15I", ib), (Extent(a, size),), "unused")]
    return [Field("i_block", struct.unpack_from("<15I", ib), (Extent(a, size),))]

def xattr_fields(vol: Volume, buf: bytes, first: int, value_base: int, end: int, absoff: int,
                  errors: list[str], prefix: str = "xattr") -> list[Field]:
    """Return the fields of an xattr entry table at ``first`` whose values are relative to ``value_base``."""
    fields: list[Field] = []
    pos = first
    seen: dict[str, int] = {}
    count = 0
    while pos + 4 <= end:
        if struct.unpack_from("<I", buf, pos)[0] == 0:
            fields.append(Field(f"{prefix}.end", 0, (Extent(absoff + pos, 4),), "end of entries"))
            break
        if pos + 16 > end:
            errors.append(f"xattr entry at +{pos} runs past the end")
            break
        e = C_XE.unpack(buf, pos)
        nlen = e["e_name_len"]
        if pos + 16 + nlen > end:
            errors.append(f"xattr name at +{pos} runs past the end")
            break
        name = XATTR_PREFIXES.get(e["e_name_index"], f"{e['e_name_index']}:") + _name(buf[pos + 16 : pos + 16 + nlen])
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        p = f"{prefix}[{name}]."
        fields.extend(C_XE.fields(buf, pos, absoff + pos, prefix=p))
        fields.append(Field(p + "e_name", _name(buf[pos + 16 : pos + 16 + nlen]),
                            (Extent(absoff + pos + 16, nlen),)))
        entry_end = pos + ((16 + nlen + 3) & ~3)
        if entry_end > pos + 16 + nlen:
            padn = entry_end - pos - 16 - nlen
            fields.append(Field(p + "e_pad", _blob(buf[pos + 16 + nlen : entry_end]),
                                (Extent(absoff + pos + 16 + nlen, padn),)))
        vsize = e["e_value_size"]
        voff = value_base + e["e_value_offs"]
        if e["e_value_inum"] == 0 and vsize:
            vend = voff + ((vsize + 3) & ~3)
            if voff < entry_end or vend > end:
                errors.append(f"xattr {name}: value at +{voff} size {vsize} outside its area")
            else:
                val = buf[voff : voff + vsize]
                fields.append(Field(p + "value", _xattr_value(val), (Extent(absoff + voff, vsize),),
                                    _xattr_value_display(val)))
                if vend > voff + vsize:
                    fields.append(Field(p + "value_pad", _blob(buf[voff + vsize : vend]),
                                        (Extent(absoff + voff + vsize, vend - voff - vsize),)))
        pos = entry_end
        count += 1
        if count > 4096:
            errors.append("more than 4096 xattr entries")
            break
    # Overlapping values (hostile input) would make sibling fields overlap: drop later duplicates.
    return _disjoint(fields, errors)

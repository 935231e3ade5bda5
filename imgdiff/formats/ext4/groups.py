"""Superblocks (primary and backups), group descriptor tables and descriptors, reserved GDT blocks, block and inode bitmaps, the resize inode's block: the per-group metadata as nodes."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from imgdiff.formats.compiled import blob_display as _blob_display
from imgdiff.formats.compiled import blob_value as _blob
from imgdiff.formats.ext4.c_ext4 import (
    BG_FLAGS,
    COMPAT_FEATURES,
    EXT4_BG_BLOCK_UNINIT,
    EXT4_BG_INODE_UNINIT,
    EXT4_RESIZE_INO,
    EXT4_SUPER_MAGIC,
    EXT4_SUPERBLOCK_OFFSET,
    HASH_VERSIONS,
    INCOMPAT_CSUM_SEED,
    INCOMPAT_FEATURES,
    RO_COMPAT_FEATURES,
)
from imgdiff.formats.ext4.common import (
    _SB_DECODE,
    _SB_TIMES,
    C_GD,
    C_SB,
    _flags_text,
    _int_suffix,
    _runs_text,
    _time_hi_text,
)
from imgdiff.formats.ext4.volume import Volume
from imgdiff.model import Derived, Extent, Field, Node, merge_extents, subtract_extents


def boot_node(vol: Volume) -> Node:
    data = vol.read(0, EXT4_SUPERBLOCK_OFFSET)
    ext = Extent(vol.base, EXT4_SUPERBLOCK_OFFSET)
    return Node(
        kind="ext4.boot",
        key="boot",
        label="boot area (group 0 padding)",
        extents=(ext,),
        fields=(Field("group0_padding", _blob(data), (ext,), _blob_display(data)),),
    )

def sb_node(vol: Volume, g: int) -> Node:
    if g == 0:
        off = EXT4_SUPERBLOCK_OFFSET
        raw = vol.sb_raw
    else:
        off = vol.group_first_block(g) * vol.bs
        raw = vol.read(off, 1024)
    absoff = vol.base + off
    sb = C_SB.unpack(raw)
    display: dict[str, Callable[[Any], str | None]] = {
        "s_feature_compat": lambda v: _flags_text(v, COMPAT_FEATURES),
        "s_feature_incompat": lambda v: _flags_text(v, INCOMPAT_FEATURES),
        "s_feature_ro_compat": lambda v: _flags_text(v, RO_COMPAT_FEATURES),
        "s_def_hash_version": lambda v: HASH_VERSIONS.get(v, str(v)),
        "s_reserved": _blob_display,
    }
    for name in _SB_TIMES:
        hi = sb.get(name + "_hi", 0)
        display[name] = functools.partial(_time_hi_text, hi=hi)
    decode = dict(_SB_DECODE)
    fields = C_SB.fields(raw, 0, absoff, decode=decode, display=display)
    ext: list[Extent] = [Extent(absoff, 1024)]
    block_end = (off // vol.bs + 1) * vol.bs
    if block_end > off + 1024:
        pad = vol.read(off + 1024, block_end - off - 1024)
        pext = Extent(absoff + 1024, len(pad))
        fields.append(Field("padding", _blob(pad), (pext,), _blob_display(pad)))
        ext.append(pext)
    derived: list[Derived] = []
    if g == 0:
        if vol.csum:
            derived.append(Derived("s_checksum", covers=(Extent(absoff, 0x3FC),)))
        if vol.incompat & INCOMPAT_CSUM_SEED:
            derived.append(Derived("s_checksum_seed", seeds=("ext4.superblock:s_uuid",)))
        derived.extend(sb_counter_derived(vol))
    else:
        primary = {f.name: f.extents for f in C_SB.fields(vol.sb_raw, 0, vol.base + EXT4_SUPERBLOCK_OFFSET)}
        derived.extend(Derived(f.name, covers=primary[f.name]) for f in fields if f.name in primary)
    if sb["s_magic"] != EXT4_SUPER_MAGIC:
        err = [f"superblock copy in group {g} has no magic"]
    else:
        err = []
    key = "superblock" if g == 0 else f"superblock@group:{g}"
    return Node(
        kind="ext4.superblock",
        key=key,
        label="superblock" if g == 0 else f"backup superblock (group {g})",
        extents=tuple(ext),
        fields=tuple(fields),
        derived=tuple(derived),
        attrs={"group": g, "backup": g != 0},
        errors=err,
    )

def gdt_node(vol: Volume, key: str) -> Node:
    blocks = sorted(vol.gdt_copies[key], key=lambda t: t[1])
    exts = merge_extents(Extent(vol.abs(b), vol.bs) for b, _f in blocks)
    fields: list[Field] = []
    # Bytes after the last descriptor in the last table block.
    for blk, first in blocks:
        used = max(0, min(vol.dpb, vol.groups - first)) * vol.desc_size
        if used < vol.bs:
            pad = vol.read(blk * vol.bs + used, vol.bs - used)
            fields.append(Field("padding" if not fields else f"padding.{len(fields)}", _blob(pad),
                                (Extent(vol.abs(blk, used), vol.bs - used),), _blob_display(pad)))
    g = 0 if key == "gdt" else _int_suffix(key) or 0
    node = Node(
        kind="ext4.gdt",
        key=key,
        label="group descriptor table" if key == "gdt" else f"backup group descriptor table (group {g})",
        extents=exts,
        fields=tuple(fields),
        attrs={"group": g, "backup": key != "gdt"},
    )
    vol.lazy(node, lambda k: gd_node(vol, key, k))
    return node

def gd_location(vol: Volume, key: str, d: int) -> int | None:
    for blk, first in vol.gdt_copies.get(key, []):
        if first <= d < first + vol.dpb:
            return blk * vol.bs + (d - first) * vol.desc_size
    return None

def gd_node(vol: Volume, copy: str, key: str) -> Node | None:
    if not key.startswith("gd:"):
        return None
    d = _int_suffix(key)
    if d is None or not 0 <= d < vol.groups:
        return None
    off = gd_location(vol, copy, d)
    if off is None:
        return None
    raw = vol.read(off, vol.desc_size)
    absoff = vol.base + off
    limit = min(vol.desc_size, C_GD.size)
    fields = C_GD.fields(raw, 0, absoff, limit=limit,
                         display={"bg_flags": lambda v: _flags_text(v, BG_FLAGS)})
    if vol.desc_size > C_GD.size:
        rest = raw[C_GD.size :]
        fields.append(Field("bg_padding", _blob(rest), (Extent(absoff + C_GD.size, len(rest)),),
                            _blob_display(rest)))
    derived: list[Derived] = []
    if copy == "gdt":
        derived.extend(gd_counter_derived(vol, d))
        if vol.gdt_csum:
            co, _cs = C_GD.span("bg_checksum")
            covers = tuple(subtract_extents(Extent(absoff, vol.desc_size), [Extent(absoff + co, 2)]))
            derived.append(Derived("bg_checksum", covers=covers, seeds=vol.seeds))
        if vol.csum:
            bb, ib, _it, _fl, _u = vol.gd[d]
            bb_len = -(-vol.bpg // vol.cluster_ratio) // 8
            if 0 < bb < vol.blocks_count:
                cov = (Extent(vol.abs(bb), bb_len),)
                derived.append(Derived("bg_block_bitmap_csum_lo", covers=cov, seeds=vol.seeds))
                if limit >= 64:
                    derived.append(Derived("bg_block_bitmap_csum_hi", covers=cov, seeds=vol.seeds))
            if 0 < ib < vol.blocks_count:
                cov = (Extent(vol.abs(ib), vol.ipg // 8),)
                derived.append(Derived("bg_inode_bitmap_csum_lo", covers=cov, seeds=vol.seeds))
                if limit >= 64:
                    derived.append(Derived("bg_inode_bitmap_csum_hi", covers=cov, seeds=vol.seeds))
    else:
        poff = gd_location(vol, "gdt", d)
        if poff is not None:
            pabs = vol.base + poff
            derived.extend(Derived(f.name, covers=tuple(e.shifted(pabs - absoff) for e in f.extents))
                           for f in fields)
    return Node(
        kind="ext4.group_desc",
        key=key,
        label=f"group descriptor {d}" + ("" if copy == "gdt" else f" (copy in {copy})"),
        extents=(Extent(absoff, vol.desc_size),),
        fields=tuple(fields),
        derived=tuple(derived),
        attrs={"group": d, "backup": copy != "gdt"},
    )

def gd_counter_derived(vol: Volume, d: int) -> list[Derived]:
    """Return the descriptor counters as Derived from the bitmaps and inode table they summarise."""
    bb, ib, it, _fl, _u = vol.gd[d]
    out: list[Derived] = []
    if 0 < bb < vol.blocks_count:
        cov = (Extent(vol.abs(bb), -(-vol.bpg // vol.cluster_ratio) // 8),)
        out += [Derived(n, covers=cov) for n in ("bg_free_blocks_count_lo", "bg_free_blocks_count_hi")]
    if 0 < ib < vol.blocks_count:
        cov = (Extent(vol.abs(ib), vol.ipg // 8),)
        out += [Derived(n, covers=cov) for n in ("bg_free_inodes_count_lo", "bg_free_inodes_count_hi",
                                                  "bg_itable_unused_lo", "bg_itable_unused_hi")]
    if 0 < it < vol.blocks_count:
        cov = (Extent(vol.abs(it), min(vol.itb_per_group, vol.blocks_count - it) * vol.bs),)
        out += [Derived(n, covers=cov) for n in ("bg_used_dirs_count_lo", "bg_used_dirs_count_hi")]
    return out

def sb_counter_derived(vol: Volume) -> list[Derived]:
    """Return the superblock free counts as Derived from the per-group counts they sum."""
    if vol.groups > 4096:
        tables = tuple(merge_extents(Extent(vol.abs(b), vol.bs) for b, _f in vol.gdt_copies.get("gdt", [])))
        return [Derived(n, covers=tables) for n in ("s_free_blocks_count_lo", "s_free_blocks_count_hi",
                                                    "s_free_inodes_count")]
    blocks: list[Extent] = []
    inodes: list[Extent] = []
    fb_lo, fb_hi = C_GD.span("bg_free_blocks_count_lo"), C_GD.span("bg_free_blocks_count_hi")
    fi_lo, fi_hi = C_GD.span("bg_free_inodes_count_lo"), C_GD.span("bg_free_inodes_count_hi")
    for d in range(vol.groups):
        off = gd_location(vol, "gdt", d)
        if off is None:
            continue
        a = vol.base + off
        blocks.append(Extent(a + fb_lo[0], fb_lo[1]))
        inodes.append(Extent(a + fi_lo[0], fi_lo[1]))
        if vol.desc_size >= 64:
            blocks.append(Extent(a + fb_hi[0], fb_hi[1]))
            inodes.append(Extent(a + fi_hi[0], fi_hi[1]))
    return [Derived("s_free_blocks_count_lo", covers=tuple(blocks)),
            Derived("s_free_blocks_count_hi", covers=tuple(blocks)),
            Derived("s_free_inodes_count", covers=tuple(inodes))]

def rgdt_node(vol: Volume, g: int, key: str) -> Node:
    first = vol.group_first_block(g) + 1 + vol.old_desc_blocks
    fields = []
    for i in range(vol.rgdt_blocks):
        data = vol.read((first + i) * vol.bs, vol.bs)
        words = [w for w in struct.unpack_from(f"<{vol.bs // 4}I", data) if w]
        disp = f"{len(words)} block numbers" if words else _blob_display(data)
        fields.append(Field(f"rgdt[{i}]", _blob(data), (Extent(vol.abs(first + i), vol.bs),), disp))
    return Node(
        kind="ext4.reserved_gdt",
        key=key,
        label="reserved GDT blocks" + ("" if g == 0 else f" (group {g})"),
        extents=(Extent(vol.abs(first), vol.rgdt_blocks * vol.bs),),
        fields=tuple(fields),
        attrs={"group": g, "backup": g != 0},
    )

def bitmap_node(vol: Volume, which: str, g: int) -> Node | None:
    bb, ib, _it, flags, _u = vol.gd[g]
    blk = bb if which == "b" else ib
    if not 0 < blk < vol.blocks_count:
        return None
    data = vol.read(blk * vol.bs, vol.bs)
    nbits = -(-vol.bpg // vol.cluster_ratio) if which == "b" else vol.ipg
    nbytes = nbits // 8
    bits = data[:nbytes]
    unit = "clusters" if which == "b" and vol.cluster_ratio > 1 else ("blocks" if which == "b" else "inodes")
    fields = [Field("bitmap", _runs_text(bits, nbits), (Extent(vol.abs(blk), nbytes),),
                    f"{int.from_bytes(bits, 'little').bit_count()} of {nbits} {unit} in use")]
    if nbytes < vol.bs:
        pad = data[nbytes:]
        fields.append(Field("padding", _blob(pad), (Extent(vol.abs(blk, nbytes), len(pad)),), _blob_display(pad)))
    uninit = flags & (EXT4_BG_BLOCK_UNINIT if which == "b" else EXT4_BG_INODE_UNINIT)
    return Node(
        kind="ext4.block_bitmap" if which == "b" else "ext4.inode_bitmap",
        key=f"{which}bitmap:{g}",
        label=f"{'block' if which == 'b' else 'inode'} bitmap of group {g}",
        extents=(Extent(vol.abs(blk), vol.bs),),
        fields=tuple(fields),
        attrs={"group": g, "uninit": bool(uninit)},
    )

def resize_node(vol: Volume) -> Node | None:
    info = vol.inodes[EXT4_RESIZE_INO]
    blk = info.tree[0][0]
    data = vol.read(blk * vol.bs, vol.bs)
    words = [w for w in struct.unpack_from(f"<{vol.bs // 4}I", data) if w]
    a = vol.abs(blk)
    return Node(kind="ext4.indirect_block", key="resize:dind", label="resize inode double-indirect block",
                extents=(Extent(a, vol.bs),),
                fields=(Field("entries", tuple(words) if len(words) <= 64 else _blob(data), (Extent(a, vol.bs),),
                              f"{len(words)} reserved GDT block numbers"),),
                attrs=vol.path_attrs(EXT4_RESIZE_INO))

"""The FATs: every copy as a node, one field per entry where bytes differ, copies declared derived from FAT #1.

FAT entries are named ``FAT[n]`` (FAT12: ``FAT[2k,2k+1]``, the two 12-bit entries packed in three bytes), and each
entry's display says which path owns that cluster.  Entries whose bytes do not differ are summarised as runs
``FAT[a..b]`` valued by a SHA-256, so a FAT of millions of entries costs a field per differing entry.  When the FATs
are mirrored (always, except FAT32 with BPB_ExtFlags bit 7), every copy after the first is declared a
:class:`~imgdiff.model.Derived` copy of FAT #1 field by field.

References:
    Microsoft FAT specification (fatgen103), section 4 (FAT entries, FAT12 packing, end-of-chain and bad-cluster
    marks, FAT[0] media byte and FAT[1]) and section 3.5 (BPB_ExtFlags mirroring).
"""

from __future__ import annotations

import hashlib
import struct

from imgdiff.formats.vfat.volume import DETAIL_LIMIT, Volume
from imgdiff.model import Derived, Extent, Field, Node

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def entry_display(vol: Volume, n: int, v: int) -> str:
    """Return what FAT entry ``n`` holding ``v`` means, and which path owns cluster ``n``."""
    g = vol.geo
    mask = 0x0FFFFFFF if g.fat_type == "FAT32" else 0xFFFF
    v &= mask
    if n == 0:
        return f"media 0x{v & 0xFF:02X}"
    if n == 1:
        return "end of chain" if v >= vol.eoc else f"0x{v:X}"
    if v == 0:
        what = "free"
    elif v >= vol.eoc:
        what = "end of chain"
    elif v == vol.bad:
        what = "bad cluster"
    elif v == 1 or v > vol.bad:
        what = "reserved"
    else:
        what = f"next {v}"
    oid = vol.owner[n] if n < vol.hi else 0
    return f"{what} ({vol.paths[oid - 1]})" if oid else what


def fat_nodes(vol: Volume) -> list[Node]:
    """Return one node per FAT copy: entries in detail where bytes differ, runs of equal entries summarised."""
    g = vol.geo
    if g.fat_type == "FAT12":
        unit, per = 3, 2
    else:
        unit, per = (4, 1) if g.fat_type == "FAT32" else (2, 1)
    units = (vol.hi + per - 1) // per
    used = min(units * unit, g.fatsz * g.bps)
    units = used // unit
    chunk = g.bps if per == 2 else g.bps // unit  # units per chunk: one sector (FAT12: three sectors)
    detail = vol.ctx.diff is not None or units * per <= DETAIL_LIMIT
    always = 2 // per  # units that always get their own field: FAT[0] and FAT[1]
    out: list[Node] = []
    fat0 = vol.base + g.fat_offset(0)
    for k in range(g.nfats):
        off = vol.base + g.fat_offset(k)
        data = vol.ctx.read(off, used)
        fields: list[Field] = []
        run0 = -1

        def flush(u_end: int, off: int = off, data: bytes = data, fields: list[Field] = fields) -> None:
            nonlocal run0
            if run0 < 0:
                return
            e0, e1 = run0 * per, min(u_end * per, vol.hi) - 1
            blob = data[run0 * unit : u_end * unit]
            fields.append(
                Field(
                    f"FAT[{e0}..{e1}]",
                    hashlib.sha256(blob).hexdigest(),
                    (Extent(off + run0 * unit, (u_end - run0) * unit),),
                    f"{e1 - e0 + 1} entries",
                )
            )
            run0 = -1

        for c0 in range(0, units, chunk):
            c1 = min(units, c0 + chunk)
            cext = Extent(off + c0 * unit, (c1 - c0) * unit)
            if not detail or (c0 >= always and not vol.ctx.interesting(cext)):
                if run0 < 0:
                    run0 = c0
                if not detail:
                    flush(c1)
                continue
            for u in range(c0, c1):
                uext = Extent(off + u * unit, unit)
                if u >= always and not vol.ctx.interesting(uext):
                    if run0 < 0:
                        run0 = u
                    continue
                flush(u)
                fields.append(entry_field(vol, u, per, unit, data, off))
        flush(units)
        if used < g.fatsz * g.bps:
            n = g.fatsz * g.bps - used
            fields.append(Field("unused", n, (Extent(off + used, n),), f"{n} bytes after the last entry"))
        node = Node(
            kind="vfat.fat",
            key=f"fat:{k}",
            label=f"FAT #{k + 1}",
            extents=vol.ext(off, g.fatsz * g.bps),
            fields=tuple(fields),
            attrs={
                "index": k,
                "fat_type": g.fat_type,
                "active": k == g.active_fat,
                "detail": "entry" if detail else "sector",
            },
        )
        if k > 0 and g.mirrored:
            delta = off - fat0
            node.derived = tuple(
                Derived(f.name, covers=vol.clip(e.shifted(-delta) for e in f.extents)) for f in fields
            )
        out.append(node)
    return out


def entry_field(vol: Volume, u: int, per: int, unit: int, data: bytes, off: int) -> Field:
    """Return the field of FAT unit ``u`` (one entry; FAT12: the pair of entries packed in three bytes)."""
    ext = (Extent(off + u * unit, unit),)
    if per == 1:
        v = (_U32 if unit == 4 else _U16).unpack_from(data, u * unit)[0]
        return Field(f"FAT[{u}]", v, ext, entry_display(vol, u, v))
    b = data[u * 3 : u * 3 + 3].ljust(3, b"\0")
    v0 = b[0] | ((b[1] & 0x0F) << 8)
    v1 = (b[1] >> 4) | (b[2] << 4)
    n0, n1 = 2 * u, 2 * u + 1
    disp = f"{n0}: {entry_display(vol, n0, v0)}; {n1}: {entry_display(vol, n1, v1)}"
    return Field(f"FAT[{n0},{n1}]", (v0, v1), ext, disp)

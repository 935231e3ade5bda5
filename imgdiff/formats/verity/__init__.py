"""dm-verity hash devices: the verity superblock and every hash tree block, declared derived from what it hashes.

A dm-verity hash device (``veritysetup format``, systemd-repart ``Verity=hash``) starts with cryptsetup's 512-byte
superblock (salt, UUID, hash algorithm, block sizes, data block count); the hash tree follows at the next hash
block, top level first.  Level 0 holds one digest per data block, level ``i`` one digest per level ``i-1`` block,
and the root hash (not stored on the hash device) is the digest of the single top-level block.  Every digest is
``H(salt || block)`` (hash type 1; type 0 appends the salt).

Each hash block is a field declared :class:`~imgdiff.model.Derived` from the blocks it hashes and seeded by the
salt, so a salt change is one finding and a data change takes the whole tree with it.  The data blocks live on
another partition: :func:`imgdiff.formats.verity.tree.link_disk` (called by the GPT parser once every partition
is parsed) gives level 0 its covered data extents and declares the GPT partition GUIDs that systemd-repart takes
from the root hash (data partition: its first 128 bits; hash partition: its last 128 bits) derived from it.  The
signature partition (``Verity=signature``) is :mod:`imgdiff.formats.verity.sig` (not ``signature``: that name is the format protocol's truncation probe).

Tree (keys in brackets)::

    verity [verity]                          attrs root_hash, data_blocks, ...; field free (after the tree)
      verity.superblock [superblock]         signature .. _pad2 (cryptsetup names), padding (to the first block)
      verity.hash_level [level:N]            block:K (one per differing hash block) / blocks:K-L (equal runs);
                                             the top level also has root_hash (no bytes: derived from block:0)

References:
    cryptsetup lib/verity/verity.c (``struct verity_sb``, ``VERITY_hash_offset_block``) and
    lib/verity/verity_hash.c (``hash_levels``, ``create_or_verify``, ``verify_hash_block``);
    Linux Documentation/admin-guide/device-mapper/verity.rst (hash tree layout, salt placement);
    systemd src/partition/repart.c ``partition_format_verity_hash`` (v252: random salt and UUID, sha256, block
    size = sector size; partition UUIDs from the root hash halves).
"""

from __future__ import annotations

import uuid

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import Compiled, blob_value
from imgdiff.formats.verity.c_verity import HASH_TYPES, VERITY_SB, VERITY_SB_SIZE, VERITY_SIGNATURE
from imgdiff.formats.verity.tree import MAX_LEVELS, Geometry, root_hash
from imgdiff.model import Derived, Extent, Field, Node

NAME = "verity"

SB = Compiled(VERITY_SB)
SALT_SEED = "verity.superblock:salt"
MAX_FIELDS = 200_000
"""At most this many separate hash block fields per level (more differing blocks are grouped)."""


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region starts with a version 1 verity superblock."""
    return size >= VERITY_SB_SIZE and head[:8] == VERITY_SIGNATURE and head[8:12] == b"\x01\x00\x00\x00"


def signature(head: bytes) -> tuple[str, str, int] | None:
    """Return ``("verity superblock", "hash device", bytes the hash tree needs)`` whatever the region's size."""
    if not recognizes(head, VERITY_SB_SIZE) or len(head) < VERITY_SB_SIZE:
        return None
    sb = SB.unpack(head)
    try:
        geo = Geometry.of(int(sb["data_blocks"]), int(sb["data_block_size"]), int(sb["hash_block_size"]),
                          _cstr(sb["algorithm"]))
    except ValueError:
        return "verity superblock", "hash device", 0
    return "verity superblock", "hash device", geo.tree_end


def _cstr(raw: bytes) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("ascii", errors="replace")


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``verity`` node of the hash device ``[base, base + size)``."""
    head = ctx.read(base, VERITY_SB_SIZE)
    if not recognizes(head, size):
        raise ParseError("no verity superblock", base, "signature")
    sb = SB.unpack(head)
    salt_size = min(int(sb["salt_size"]), 256)
    salt = bytes(sb["salt"][:salt_size])
    algorithm = _cstr(sb["algorithm"])
    try:
        geo = Geometry.of(int(sb["data_blocks"]), int(sb["data_block_size"]), int(sb["hash_block_size"]), algorithm)
    except ValueError as exc:
        raise ParseError(f"verity superblock: {exc}", base, "hash_block_size") from None
    root = Node(kind="verity", key="verity", label="dm-verity hash tree", extents=(Extent(base, size),),
                attrs={"scope": True, "fs": "verity", "region": label, "algorithm": algorithm,
                       "hash_type": int(sb["hash_type"]), "data_blocks": geo.data_blocks,
                       "data_block_size": geo.data_block_size, "hash_block_size": geo.hash_block_size,
                       "levels": geo.levels})
    root.children.append(_superblock(head, base, geo, salt_size))
    end = base + geo.tree_end
    if end > base + size:
        msg = f"{label}: the hash tree ({geo.tree_end} bytes) runs past the end of the region ({size} bytes)"
        root.errors.append(msg)
        ctx.errors.append(msg)
    salt_ext = Extent(base + SB.offset("salt"), 256)
    top: Extent | None = None
    for level in range(geo.levels - 1, -1, -1):
        node = _level(ctx, base, size, geo, level)
        root.children.append(node)
        if level == geo.levels - 1:
            top = Extent(base + geo.level_block[level] * geo.hash_block_size, geo.hash_block_size)
    if top is not None and top.end <= base + size:
        block = ctx.read(top.offset, top.length)
        digest = root_hash(algorithm, int(sb["hash_type"]), salt, block)
        if digest is not None:
            hexed = digest.hex()
            root.attrs["root_hash"] = hexed
            root.attrs["root_covers"] = ((top.offset, top.length), (salt_ext.offset, salt_ext.length))
            top_node = root.children[-geo.levels]
            top_node.fields = (*top_node.fields, Field("root_hash", hexed, ()))
            top_node.derived = (*top_node.derived, Derived("root_hash", covers=(top, salt_ext), seeds=(SALT_SEED,)))
        else:
            root.errors.append(f"hash algorithm {algorithm!r} is not available: root hash not computed")
    if geo.tree_end < size:
        free = Extent(base + geo.tree_end, size - geo.tree_end)
        raw = ctx.read(free.offset, min(free.length, 1 << 20)) if ctx.interesting(free) else b""
        nz = free.length - raw.count(0) if raw else 0
        root.fields = (Field("free", "zero" if not nz else blob_value(raw), (free,),
                             f"{free.length} bytes after the hash tree"),)
    ctx.errors.extend(root.errors)
    return root


def _superblock(head: bytes, base: int, geo: Geometry, salt_size: int) -> Node:
    fields = SB.fields(head, 0, base, decode={
        "uuid": lambda v: str(uuid.UUID(bytes=bytes(v))),
        "algorithm": _cstr,
        "salt": lambda v: bytes(v[:salt_size]).hex(),
        "signature": lambda v: bytes(v).decode("ascii", errors="replace").rstrip("\0"),
    }, display={"hash_type": lambda v: HASH_TYPES.get(int(v))})
    first = geo.first_block * geo.hash_block_size
    exts = [Extent(base, first)]
    if first > VERITY_SB_SIZE:
        pad = Extent(base + VERITY_SB_SIZE, first - VERITY_SB_SIZE)
        fields.append(Field("padding", "zero", (pad,), f"{pad.length} bytes up to the first hash block"))
    return Node(kind="verity.superblock", key="superblock", label="verity superblock", extents=tuple(exts),
                fields=tuple(fields))


def _level(ctx: ParseContext, base: int, size: int, geo: Geometry, level: int) -> Node:
    """Return the node of one hash tree level: a field per differing block, one per run of equal blocks."""
    hbs = geo.hash_block_size
    first = geo.level_block[level]
    count = geo.level_size[level]
    start = base + first * hbs
    length = min(count * hbs, max(0, base + size - start))
    node = Node(kind="verity.hash_level", key=f"level:{level}",
                label=f"hash level {level}" + (" (top)" if level == geo.levels - 1 else ""),
                extents=(Extent(start, length),) if length else (), attrs={"level": level, "blocks": count})
    fields: list[Field] = []
    derived: list[Derived] = []
    usable = length // hbs
    k = 0
    singles = 0
    while k < usable:
        ext = Extent(start + k * hbs, hbs)
        if ctx.interesting(ext) and singles < MAX_FIELDS:
            singles += 1
            name = f"block:{k}"
            fields.append(Field(name, blob_value(ctx.read(ext.offset, hbs)), (ext,),
                                f"{geo.hashes_in(level, k)} digests"))
            derived.append(Derived(name, covers=geo.covers(base, level, k, k + 1), seeds=(SALT_SEED,)))
            k += 1
            continue
        j = k + 1
        while j < usable and not (ctx.interesting(Extent(start + j * hbs, hbs)) and singles < MAX_FIELDS):
            j += 1
        name = f"blocks:{k}-{j - 1}"
        fields.append(Field(name, None, (Extent(start + k * hbs, (j - k) * hbs),), f"{j - k} hash blocks"))
        derived.append(Derived(name, covers=geo.covers(base, level, k, j), seeds=(SALT_SEED,)))
        k = j
    node.fields = tuple(fields)
    node.derived = tuple(derived)
    return node


def level0_names(node: Node) -> list[tuple[str, int, int]]:
    """Return ``(field name, first block, end block)`` of each block field of a level node."""
    out: list[tuple[str, int, int]] = []
    for f in node.fields:
        if f.name.startswith("block:"):
            k = int(f.name[6:])
            out.append((f.name, k, k + 1))
        elif f.name.startswith("blocks:"):
            lo, hi = f.name[7:].split("-")
            out.append((f.name, int(lo), int(hi) + 1))
    return out


__all__ = ["MAX_LEVELS", "NAME", "level0_names", "parse", "recognizes"]

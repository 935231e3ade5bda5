"""dm-verity hash tree geometry, the root hash, and the ties between a hash partition and the rest of a GPT disk.

:class:`Geometry` places the levels the way cryptsetup's ``hash_levels`` does (top level first, right after the
superblock); :func:`root_hash` recomputes the root hash from the top-level block and the salt.  :func:`link_disk`
runs once the GPT parser has parsed every partition: it finds each hash partition's data partition (the one whose
GUID is the first half of the root hash, as systemd-repart sets it, else the Discoverable Partitions sibling type
``root-x86-64`` of ``root-x86-64-verity``), declares level 0 derived from the data blocks, and declares every GPT
``UniquePartitionGUID`` that equals a half of the root hash, and the signature partition's ``rootHash``, derived
from the root hash (the top-level block and the salt).

References:
    cryptsetup lib/verity/verity_hash.c (``hash_levels``, ``create_or_verify``, ``verify_hash_block``);
    systemd src/partition/repart.c ``partition_format_verity_hash`` (``memcpy_safe(dp->new_uuid.bytes, rh, 16)``,
    ``memcpy_safe(p->new_uuid.bytes, rh + rhs - 16, 16)``) and ``partition_format_verity_sig``;
    Discoverable Partitions Specification (``*-verity`` and ``*-verity-sig`` partition types).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from imgdiff.model import Derived, Extent, Node

MAX_LEVELS = 63
"""cryptsetup's VERITY_MAX_LEVELS."""
DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64, "sha384": 48, "sha224": 28, "md5": 16}


def _bits_down(u: int) -> int:
    i = 0
    while (u >> i) > 1:
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where each hash level lies on the hash device (in hash blocks) and what each block hashes."""

    data_blocks: int
    data_block_size: int
    hash_block_size: int
    digest_size: int
    per_block_bits: int
    levels: int
    first_block: int
    """The first hash block (the one after the superblock)."""
    level_block: tuple[int, ...]
    """The first hash block of each level (index 0 = the level that hashes the data)."""
    level_size: tuple[int, ...]
    tree_end: int
    """Byte offset after the last hash block."""

    @classmethod
    def of(cls, data_blocks: int, data_block_size: int, hash_block_size: int, algorithm: str) -> Geometry:
        """Compute the layout cryptsetup uses for these superblock values (raises ValueError when implausible)."""
        for name, v in (("data_block_size", data_block_size), ("hash_block_size", hash_block_size)):
            if v < 512 or v > 1 << 20 or v & (v - 1):
                raise ValueError(f"{name} {v} is not a power of two between 512 and 1 MiB")
        digest = DIGEST_SIZES.get(algorithm)
        if digest is None:
            try:
                digest = hashlib.new(algorithm).digest_size
            except (ValueError, TypeError):
                raise ValueError(f"unknown hash algorithm {algorithm!r}") from None
        if not 0 < data_blocks < 1 << 48:
            raise ValueError(f"data_blocks {data_blocks} is not plausible")
        bits = _bits_down(hash_block_size // digest)
        if bits == 0:
            raise ValueError("hash block smaller than two digests")
        levels = 0
        while bits * levels < 64 and (data_blocks - 1) >> (bits * levels):
            levels += 1
        if levels > MAX_LEVELS:
            raise ValueError("too many hash levels")
        first = -(-(512) // hash_block_size)  # VERITY_hash_offset_block: superblock rounded up to a hash block
        pos = first
        starts = [0] * levels
        sizes = [0] * levels
        for i in range(levels - 1, -1, -1):
            starts[i] = pos
            shift = (i + 1) * bits
            sizes[i] = (data_blocks + (1 << shift) - 1) >> shift
            pos += sizes[i]
        return cls(data_blocks, data_block_size, hash_block_size, digest, bits, levels, first, tuple(starts),
                   tuple(sizes), pos * hash_block_size)

    @property
    def per_block(self) -> int:
        """Return how many digests one hash block holds."""
        return 1 << self.per_block_bits

    def hashes_in(self, level: int, k: int) -> int:
        """Return how many digests block ``k`` of ``level`` holds."""
        below = self.data_blocks if level == 0 else self.level_size[level - 1]
        return max(0, min(self.per_block, below - k * self.per_block))

    def covers(self, base: int, level: int, k0: int, k1: int) -> tuple[Extent, ...]:
        """Return what blocks ``[k0, k1)`` of ``level`` hash on this hash device (nothing for level 0: the data)."""
        if level == 0:
            return ()
        lo = k0 * self.per_block
        hi = min(k1 * self.per_block, self.level_size[level - 1])
        if hi <= lo:
            return ()
        return (Extent(base + (self.level_block[level - 1] + lo) * self.hash_block_size,
                       (hi - lo) * self.hash_block_size),)

    def data_covers(self, data_base: int, k0: int, k1: int) -> tuple[Extent, ...]:
        """Return the data device bytes that level-0 blocks ``[k0, k1)`` hash, for data starting at ``data_base``."""
        lo = k0 * self.per_block
        hi = min(k1 * self.per_block, self.data_blocks)
        if hi <= lo:
            return ()
        return (Extent(data_base + lo * self.data_block_size, (hi - lo) * self.data_block_size),)


def root_hash(algorithm: str, hash_type: int, salt: bytes, block: bytes) -> bytes | None:
    """Return the digest of ``block`` the way dm-verity computes it (salt first for type 1, last for type 0)."""
    try:
        h = hashlib.new(algorithm)
    except (ValueError, TypeError):
        return None
    if hash_type == 1:
        h.update(salt)
    h.update(block)
    if hash_type == 0:
        h.update(salt)
    return h.digest()


# ----------------------------------------------------------------------------------------------------------------
# Ties on a GPT disk


def _guid_of(raw: bytes) -> str:
    """Return the GUID text systemd-repart gives a partition whose id128 bytes are ``raw`` (big-endian)."""
    return str(uuid.UUID(bytes=raw))


def _fs(part: Node, kind: str) -> Node | None:
    return next((c for c in part.children if c.kind == kind), None)


def link_disk(disk: Node) -> None:
    """Tie each dm-verity hash partition of ``disk`` to its data partition, the GPT GUIDs and its signature."""
    parts = [c for c in disk.children if c.kind == "partition"]
    hashes = [(p, v) for p in parts if (v := _fs(p, "verity")) is not None]
    if not hashes:
        return
    entries = [e for g in disk.children if g.kind == "gpt" for a in g.children if a.kind == "gpt.entries"
               for e in a.children]
    for part, tree in hashes:
        rh = tree.attrs.get("root_hash")
        covers = tree.attrs.get("root_covers")
        if not isinstance(rh, str) or not isinstance(covers, tuple):
            continue
        raw = bytes.fromhex(rh)
        root_ext = tuple(Extent(int(pair[0]), int(pair[1])) for pair in covers  # type: ignore[index,arg-type]
                         if isinstance(pair, tuple))
        data = _data_partition(parts, part, raw)
        if data is None:
            tree.errors.append("the data partition of this hash tree was not found: level 0 is not tied to it")
        else:
            tree.attrs["data_partition"] = data.key
            _tie_level0(tree, data.extents[0].offset)
            need = int(tree.attrs["data_blocks"]) * int(tree.attrs["data_block_size"])  # type: ignore[arg-type]
            if data.extents[0].length < need:
                tree.errors.append(f"the data partition ({data.extents[0].length} bytes) is shorter than the "
                                   f"{need} bytes the hash tree covers")
        halves = {_guid_of(raw[:16]): "first", _guid_of(raw[-16:]): "last"}
        for ent in entries:
            f = ent.field_named("UniquePartitionGUID")
            if f is not None and str(f.value) in halves:
                ent.derived = (*ent.derived, Derived("UniquePartitionGUID", covers=root_ext,
                                                     seeds=("verity.hash_level:root_hash",)))
                ent.attrs["verity_root_hash_half"] = halves[str(f.value)]
        for p in parts:
            sig = _fs(p, "verity.signature")
            if sig is not None and sig.attrs.get("rootHash") == rh:
                sig.derived = (*sig.derived, Derived("rootHash", covers=root_ext,
                                                     seeds=("verity.hash_level:root_hash",)))


def _data_partition(parts: list[Node], hash_part: Node, raw: bytes) -> Node | None:
    """Return the data partition of a hash partition: by the root hash GUID, else by the sibling type."""
    first = _guid_of(raw[:16])
    for p in parts:
        if p is not hash_part and str(p.attrs.get("guid", "")).lower() == first:
            return p
    ptype = str(hash_part.attrs.get("ptype", ""))
    if ptype.endswith("-verity"):
        want = ptype.removesuffix("-verity")
        same = [p for p in parts if p.attrs.get("ptype") == want]
        if len(same) == 1:
            return same[0]
    return None


def _tie_level0(tree: Node, data_base: int) -> None:
    from imgdiff.formats.verity import level0_names

    geo_attrs = tree.attrs
    geo = Geometry.of(int(geo_attrs["data_blocks"]), int(geo_attrs["data_block_size"]),  # type: ignore[arg-type]
                      int(geo_attrs["hash_block_size"]), str(geo_attrs["algorithm"]))  # type: ignore[arg-type]
    level0 = next((c for c in tree.children if c.kind == "verity.hash_level" and c.attrs.get("level") == 0), None)
    if level0 is None:
        return
    names = {name: (lo, hi) for name, lo, hi in level0_names(level0)}
    level0.derived = tuple(
        Derived(d.field, covers=geo.data_covers(data_base, *names[d.field]), seeds=d.seeds) if d.field in names else d
        for d in level0.derived
    )

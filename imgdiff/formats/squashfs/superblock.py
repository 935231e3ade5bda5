"""The squashfs superblock and the compressor options block after it.

The 96-byte ``squashfs_super_block`` at offset 0 holds what mksquashfs was told (``compression``, ``block_size``,
``flags``: fragments, duplicates, export table, xattrs, uncompressed tables), when it ran (``mkfs_time``), and
where it put everything (``bytes_used`` and the start of every table).  Positions and counts are declared derived:
a table start depends on the stored bytes before it, ``inodes``/``fragments``/``no_ids`` count the entries of
their tables, ``root_inode`` is the reference of the root directory's inode, ``block_log`` follows ``block_size``.
``mkfs_time``, ``compression``, ``block_size`` and ``flags`` are causes.

When ``flags`` has ``COMP_OPT``, the compressor's non-default options follow the superblock as one uncompressed
metadata block (``gzip_comp_opts``: ``compression_level``, ``window_size``, ``strategy``; xz ``comp_opts``:
``dictionary_size``, ``flags`` = BCJ filters; lz4 ``version``/``flags``; zstd ``compression_level``; lzo
``algorithm``/``compression_level``).

References:
    squashfs-tools 4.5.1 ``squashfs_fs.h`` (``struct squashfs_super_block``, ``SQUASHFS_MKFLAGS``),
    ``mksquashfs.c`` (``main``: ``sBlk.mkfs_time = mkfs_time_opt ? mkfs_time : time(NULL)``; ``check_env_var``:
    ``SOURCE_DATE_EPOCH``; ``write_filesystem_tables``), ``compressor.c`` ``write_compressor_options``,
    ``gzip_wrapper.c`` / ``xz_wrapper.c`` / ``lz4_wrapper.c`` / ``zstd_wrapper.c`` / ``lzo_wrapper.c``
    ``*_dump_options``; Linux ``fs/squashfs/super.c`` ``squashfs_fill_super``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from imgdiff.errors import ParseError
from imgdiff.formats.compiled import Compiled
from imgdiff.formats.squashfs import c_squashfs as cs
from imgdiff.model import Derived, Extent, Field, Node

C_SB = Compiled(cs.squashfs_super_block)
SB_SIZE = C_SB.size


@dataclass(slots=True)
class Super:
    """The superblock values the parser works with."""

    vals: dict[str, int]

    def __getattr__(self, name: str) -> int:
        try:
            return self.vals[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def has_lookup(self) -> bool:
        """Return True when an export (inode lookup) table is present."""
        return self.vals["lookup_table_start"] != cs.SQUASHFS_INVALID_BLK

    @property
    def has_xattrs(self) -> bool:
        """Return True when an xattr id table is present."""
        return self.vals["xattr_id_table_start"] != cs.SQUASHFS_INVALID_BLK


def read_super(head: bytes, size: int) -> Super:
    """Return the superblock of a region starting with ``head``; raise ParseError when it is unusable."""
    if len(head) < SB_SIZE:
        raise ParseError("squashfs superblock truncated", 0, "s_magic")
    v = C_SB.unpack(head)
    if v["s_magic"] != cs.SQUASHFS_MAGIC:
        raise ParseError("no squashfs magic", 0, "s_magic")
    if (v["s_major"], v["s_minor"]) != (4, 0):
        raise ParseError(f"squashfs {v['s_major']}.{v['s_minor']} is not supported (only 4.0)", 0, "s_major")
    bs = v["block_size"]
    if bs < 4096 or bs > 1 << 20 or bs & (bs - 1) or 1 << v["block_log"] != bs:
        raise ParseError(f"squashfs block_size {bs} / block_log {v['block_log']} are inconsistent", 0, "block_size")
    if v["bytes_used"] > size or v["bytes_used"] < SB_SIZE:
        raise ParseError(f"squashfs bytes_used {v['bytes_used']} does not fit the region of {size} bytes", 0,
                         "bytes_used")
    return Super(v)


def _flags(v: int) -> str:
    names = [n for bit, n in cs.SUPER_FLAGS if v & bit]
    return "|".join(names) if names else "none"


def _time(v: int) -> str:
    try:
        return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(v)


def _start(v: int) -> str | None:
    return "none" if v == cs.SQUASHFS_INVALID_BLK else None


def super_node(head: bytes, fs: int, covers: dict[str, tuple[Extent, ...]]) -> Node:
    """Return the ``squashfs.superblock`` node; ``covers`` gives each derived field what it depends on."""
    display = {
        "mkfs_time": _time,
        "flags": _flags,
        "compression": lambda v: cs.COMPRESSORS.get(v, "unknown"),
        "s_magic": lambda v: "hsqs",
        "lookup_table_start": _start,
        "xattr_id_table_start": _start,
    }
    fields = C_SB.fields(head, 0, fs, display=display)
    derived = [Derived(name, covers=c) for name, c in covers.items() if c]
    derived.append(Derived("block_log", covers=(Extent(fs + C_SB.offset("block_size"), 4),)))
    return Node(kind="squashfs.superblock", key="superblock", label="superblock", extents=(Extent(fs, SB_SIZE),),
                fields=tuple(fields), derived=tuple(derived))


def _strategies(v: int) -> str:
    names = [n for bit, n in cs.GZIP_STRATEGIES if v & bit]
    return "|".join(names) if names else "none"


def _bcj(v: int) -> str:
    names = [n for i, n in enumerate(cs.XZ_BCJ_FILTERS) if v & (1 << i)]
    return "|".join(names) if names else "none"


_OPT_DISPLAY = {
    1: {"strategy": _strategies},
    3: {"algorithm": lambda v: cs.LZO_ALGORITHMS[v] if 0 <= v < len(cs.LZO_ALGORITHMS) else "?"},
    4: {"flags": _bcj, "dictionary_size": lambda v: f"{v} bytes"},
    5: {"flags": lambda v: "LZ4_HC" if v & 1 else "none"},
}


def comp_opts_node(raw: bytes, compression: int, fs: int, pos: int) -> tuple[Node, int]:
    """Return the ``squashfs.compressor_options`` node at ``pos`` and its stored length (header included)."""
    c_byte = int.from_bytes(raw[:2], "little")
    size = c_byte & ~cs.SQUASHFS_COMPRESSED_BIT
    fields: list[Field] = [Field.at("c_byte", c_byte, fs + pos, 2, f"{size} bytes, uncompressed")]
    decl = cs.COMP_OPTS.get(compression)
    used = 0
    if decl is not None:
        comp = Compiled(decl)
        if size >= comp.size:
            fields.extend(comp.fields(raw, 2, fs + pos + 2, display=_OPT_DISPLAY.get(compression)))
            used = comp.size
    if size > used:
        fields.append(Field.at("options", raw[2 + used : 2 + size], fs + pos + 2 + used, size - used))
    node = Node(kind="squashfs.compressor_options", key="comp_opts",
                label=f"{cs.COMPRESSORS.get(compression, '?')} compressor options",
                extents=(Extent(fs + pos, 2 + size),), fields=tuple(fields),
                derived=(Derived("c_byte", covers=(Extent(fs + pos + 2, size),)),),
                attrs={"compression": cs.COMPRESSORS.get(compression, "?")})
    return node, 2 + size

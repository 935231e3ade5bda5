"""Data blocks and fragment blocks: the stored bytes of regular files, and their decoded content.

A regular file's content is ``file_size >> block_log`` full blocks (plus a last partial block unless it went into
a fragment), stored one after the other from the inode's ``start_block``; each ``block_list`` word is the stored
length of a block (bit 24 set when stored uncompressed, 0 for a sparse block that is not stored at all).  The
tail of a file smaller than a block (or every tail, with ``-always-use-fragments``) is packed with other tails into
a *fragment block*: the inode names the fragment (an index into the fragment table) and the ``offset`` of its tail
in the decoded fragment.  With duplicate checking (the default) a file equal to an earlier one points at the same
stored blocks and fragment.

:class:`FileContent` is a lazily decoding view of one file's content, opened by the parser as a decoded space
named after the file's path when its stored bytes differ; the stored blocks become fields ``block N`` declared
:class:`~imgdiff.model.Derived` over the decoded range each holds and over the stored bytes before them (its
position), and the file node's ``data`` field lies at the decoded offsets so that the engine compares, inspects and
nests the content itself.  A fragment block's stored bytes are derived from the tails it holds (in each file's
decoded space) and from its position.

References:
    squashfs-tools 4.5.1 ``squashfs_fs.h`` (``SQUASHFS_COMPRESSED_BIT_BLOCK``, ``squashfs_fragment_entry``,
    ``squashfs_file_blocks``), ``mksquashfs.c`` ``write_file_blocks``, ``write_fragment``, ``get_fragment``,
    ``duplicate``; Linux ``fs/squashfs/file.c`` (``squashfs_readpage``, ``read_blocklist``),
    ``fs/squashfs/fragment.c``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imgdiff.formats.squashfs.c_squashfs import SQUASHFS_COMPRESSED_BIT_BLOCK
from imgdiff.formats.squashfs.decompress import BlockError, Decoder
from imgdiff.formats.squashfs.metadata import position_cover
from imgdiff.model import POSITION, Derived, Extent, Field, Node

CACHE_BLOCKS = 32
"""Decoded blocks kept per filesystem (data blocks of all file views together, and fragment blocks): sequential
reads decode each block once, and memory stays bounded however many file views are open."""


class BlockCache:
    """A small LRU of decoded blocks shared by every file view of one filesystem."""

    def __init__(self, limit: int = CACHE_BLOCKS) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def get(self, key: tuple[int, int]) -> bytes | None:
        """Return the cached block ``key`` (and mark it recently used), or None."""
        got = self._items.get(key)
        if got is not None:
            self._items.move_to_end(key)
        return got

    def put(self, key: tuple[int, int], data: bytes) -> None:
        """Keep ``data`` as block ``key``, dropping the least recently used block past the limit."""
        self._items[key] = data
        if len(self._items) > self.limit:
            self._items.popitem(last=False)


@dataclass(slots=True)
class Block:
    """One data block of a file: where it is stored and which content bytes it holds."""

    pos: int
    """Stored position relative to the filesystem start (of the next stored byte when sparse)."""
    word: int
    """The ``block_list`` word."""
    foff: int
    """Offset of its first content byte in the file."""
    flen: int
    """Content bytes it holds."""

    @property
    def stored(self) -> int:
        """Return the stored length (0 for a sparse block)."""
        return self.word & ~SQUASHFS_COMPRESSED_BIT_BLOCK

    @property
    def compressed(self) -> bool:
        """Return True when the block is stored compressed."""
        return not self.word & SQUASHFS_COMPRESSED_BIT_BLOCK


def file_blocks(start: int, words: tuple[int, ...], block_size: int, file_size: int) -> list[Block]:
    """Return the data blocks of a file whose first block is stored at ``start``."""
    out: list[Block] = []
    pos = start
    for i, w in enumerate(words):
        foff = i * block_size
        out.append(Block(pos, w, foff, max(0, min(block_size, file_size - foff))))
        pos += w & ~SQUASHFS_COMPRESSED_BIT_BLOCK
    return out


class FragmentCache:
    """Decoded fragment blocks of one filesystem, decoded on first use and kept while few."""

    def __init__(self, read: Callable[[int, int], bytes], decode: Decoder, block_size: int,
                 entries: list[tuple[int, int]]) -> None:
        self.read = read
        self.decode = decode
        self.block_size = block_size
        self.entries = entries
        """``(start_block, size word)`` per fragment index."""
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.errors: list[str] = []

    def get(self, index: int) -> bytes:
        """Return the decoded fragment ``index`` (empty when it does not exist or does not decode)."""
        got = self._cache.get(index)
        if got is not None:
            self._cache.move_to_end(index)
            return got
        if not 0 <= index < len(self.entries):
            return b""
        start, word = self.entries[index]
        size = word & ~SQUASHFS_COMPRESSED_BIT_BLOCK
        raw = self.read(start, size)
        if word & SQUASHFS_COMPRESSED_BIT_BLOCK:
            out = raw[: self.block_size]
        else:
            try:
                out = self.decode(raw, self.block_size)
            except BlockError as exc:
                self.errors.append(f"fragment {index}: {exc}")
                out = b""
        self._cache[index] = out
        if len(self._cache) > CACHE_BLOCKS:
            self._cache.popitem(last=False)
        return out


class FileContent:
    """A regular file's content, decoded block by block on demand (a :class:`~imgdiff.source.Source`)."""

    def __init__(self, path: str, size: int, blocks: list[Block], read: Callable[[int, int], bytes],
                 decode: Decoder, block_size: int, frags: FragmentCache, fragment: int, frag_offset: int,
                 cache: BlockCache) -> None:
        self.path = path
        self.size = size
        self.blocks = blocks
        self.read_stored = read
        self.decode = decode
        self.block_size = block_size
        self.frags = frags
        self.fragment = fragment
        self.frag_offset = frag_offset
        self.tail_start = len(blocks) * block_size
        self._cache = cache
        self.errors: list[str] = []

    def _block(self, i: int) -> bytes:
        b = self.blocks[i]
        key = (b.pos, b.word)
        got = self._cache.get(key) if b.stored else None
        if got is not None:
            return got[: b.flen]
        if b.stored == 0:
            out = bytes(b.flen)
        else:
            raw = self.read_stored(b.pos, b.stored)
            if not b.compressed:
                out = raw[: b.flen]
            else:
                try:
                    out = self.decode(raw, self.block_size)[: b.flen]
                except BlockError as exc:
                    if not self.errors:
                        self.errors.append(f"{self.path}: data block {i}: {exc}")
                    out = b""
        out = out + bytes(b.flen - len(out)) if len(out) < b.flen else out
        if b.stored:
            self._cache.put(key, out)
        return out

    def _tail(self) -> bytes:
        n = self.size - self.tail_start
        if n <= 0:
            return b""
        frag = self.frags.get(self.fragment)
        out = frag[self.frag_offset : self.frag_offset + n]
        return out + bytes(n - len(out))

    def same_as(self, other: object) -> bool:
        """Return True when ``other`` provably holds the same content, found without decoding a data block.

        Both files have the same size and block layout, the same ``block_list`` words, the same compression, the
        same stored bytes of every block (wherever each is stored) and the same tail: a file that only moved
        (every block after a changed one does) costs a read of its stored bytes, not a decompression and a
        comparison of its content.
        """
        if not isinstance(other, FileContent):
            return False
        if (self.size, self.block_size, self.decode, len(self.blocks)) != (
                other.size, other.block_size, other.decode, len(other.blocks)):
            return False
        if any(x.word != y.word or x.flen != y.flen for x, y in zip(self.blocks, other.blocks, strict=True)):
            return False
        for x, y in zip(self.blocks, other.blocks, strict=True):
            if x.stored and self.read_stored(x.pos, x.stored) != other.read_stored(y.pos, y.stored):
                return False
        return self._tail() == other._tail()

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` content bytes at ``offset``."""
        size = min(size, self.size - offset)
        if offset < 0 or size <= 0:
            return b""
        parts: list[bytes] = []
        pos = offset
        end = offset + size
        while pos < end:
            if pos >= self.tail_start:
                tail = self._tail()
                parts.append(tail[pos - self.tail_start : end - self.tail_start])
                break
            i = pos // self.block_size
            blk = self._block(i)
            lo = pos - i * self.block_size
            hi = min(len(blk), end - i * self.block_size)
            parts.append(blk[lo:hi])
            pos = i * self.block_size + hi
            if hi <= lo:
                break
        return b"".join(parts)

    def data_extents(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Yield the whole requested range (sparse blocks read as zeros)."""
        if start < min(end, self.size):
            yield start, min(end, self.size)

    def close(self) -> None:
        """Nothing to release (the block cache belongs to the filesystem)."""


def file_node(path: str, label: str, size: int, blocks: list[Block], owned: list[bool], fs: int, first: int,
              content: Extent | None, attrs: dict[str, object]) -> Node:
    """Return the ``squashfs.file`` node: the stored blocks it owns and, when decoded, its ``data`` field."""
    fields: list[Field] = []
    derived: list[Derived] = []
    extents: list[Extent] = []
    for i, b in enumerate(blocks):
        if b.stored == 0 or not owned[i]:
            continue
        ext = Extent(fs + b.pos, b.stored)
        extents.append(ext)
        state = "compressed" if b.compressed else "uncompressed"
        name = f"block {i}"
        fields.append(Field(name, b.pos, (ext,), f"{b.stored} bytes {state} at {b.pos}"))
        covers = [position_cover(fs, first, b.pos)]
        if content is not None:
            covers.insert(0, Extent(content.offset + b.foff, b.flen))
        derived.append(Derived(name, covers=tuple(covers)))
    first_stored = next((b.pos for b, mine in zip(blocks, owned, strict=True) if mine and b.stored), None)
    if first_stored is not None:
        derived.append(Derived(POSITION, covers=(position_cover(fs, first, first_stored),)))
    if content is not None:
        fields.append(Field("data", f"{size} bytes", (content,) if content.length else (), None))
        if content.length:
            extents.append(content)
    node_attrs = {"path": path, "file_type": "reg", "size": size, **attrs}
    if content is not None:
        node_attrs["content"] = True
    return Node(kind="squashfs.file", key=path, label=label, extents=tuple(extents), fields=tuple(fields),
                derived=tuple(derived), attrs=node_attrs)  # type: ignore[arg-type]


def fragment_block_node(index: int, pos: int, word: int, fs: int, first: int, tails: list[Extent],
                        decoded: int) -> Node:
    """Return the ``squashfs.fragment_block`` node of fragment ``index`` (its stored bytes)."""
    stored = word & ~SQUASHFS_COMPRESSED_BIT_BLOCK
    state = "uncompressed" if word & SQUASHFS_COMPRESSED_BIT_BLOCK else "compressed"
    ext = Extent(fs + pos, stored)
    field = Field("block data", pos, (ext,), f"{stored} bytes {state} at {pos} ({decoded} decoded)")
    covers = (*tails, position_cover(fs, first, pos))
    return Node(kind="squashfs.fragment_block", key=f"frag:{index}", label=f"fragment block {index}",
                extents=(ext,), fields=(field,),
                derived=(Derived("block data", covers=covers), Derived(POSITION, covers=(covers[-1],))),
                attrs={"fragment": index})

"""Compressed streams: recognising them by magic and decoding them in bounded memory.

Used twice: for whole compressed inputs (``imgdiff explain a.raw.zst b.raw.zst``), which are decompressed into an
unnamed sparse scratch file under ``$TMPDIR`` before anything else happens, and for compressed files inside an
image (a zstd initrd on an ESP), whose decoded payload becomes a decoded space the engine compares and parses.

Decoding streams the data through a fixed-size buffer: memory does not grow with the payload.  All-zero chunks
are skipped with ``lseek`` so that a decompressed disk image costs disk space only for its data.  A payload larger
than the caller's limit stops with :class:`StreamError` (a zip bomb gets a clear message, not a full disk).

References:
    RFC 1952 (gzip), RFC 8878 (zstd frames), the .xz file format 1.1.0, bzip2 (``BZh`` + level digit).
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import tempfile
import zlib
from collections.abc import Generator
from typing import IO, BinaryIO

from imgdiff.errors import ImageError
from imgdiff.model import Extent
from imgdiff.source import BytesSource, ImageSource, Source

CHUNK = 1 << 20
"""Bytes decoded per step."""
IN_MEMORY = 8 << 20
"""Decoded payloads up to this size stay in memory; larger ones go to a sparse scratch file."""
MAX_INPUT_DECODED = int(os.environ.get("IMGDIFF_MAX_DECOMPRESSED", str(1 << 40)))
"""Largest decompressed whole input accepted (bytes; ``IMGDIFF_MAX_DECOMPRESSED`` overrides it)."""

KINDS: tuple[tuple[str, bytes], ...] = (
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("xz", b"\xfd7zXZ\x00"),
    ("gzip", b"\x1f\x8b\x08"),
    ("bzip2", b"BZh"),
)
"""Stream kinds by magic, as they start a file."""


class StreamError(Exception):
    """A compressed stream is corrupt, truncated, or decodes to more than allowed."""


def stream_kind(head: bytes) -> str | None:
    """Return ``"zstd"``, ``"xz"``, ``"gzip"`` or ``"bzip2"`` when ``head`` starts such a stream, else None."""
    for kind, magic in KINDS:
        if head.startswith(magic):
            if kind == "bzip2" and (len(head) < 4 or not 0x31 <= head[3] <= 0x39):
                return None
            return kind
    return None


class ExtentReader(io.RawIOBase):
    """A sequential, read-only file object over ``extents`` of a :class:`Source` (a file inside an image)."""

    def __init__(self, src: Source, extents: tuple[Extent, ...]) -> None:
        super().__init__()
        self.src = src
        self.extents = extents
        self.i = 0
        self.pos = 0

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buf`` with the next bytes of the extents; return how many (0 at the end)."""
        while self.i < len(self.extents) and self.pos >= self.extents[self.i].length:
            self.i += 1
            self.pos = 0
        if self.i >= len(self.extents):
            return 0
        e = self.extents[self.i]
        n = min(len(buf), e.length - self.pos)
        data = self.src.read(e.offset + self.pos, n)
        if not data:
            self.i = len(self.extents)
            return 0
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


def open_extents(src: Source, extents: tuple[Extent, ...]) -> IO[bytes]:
    """Return a buffered sequential reader over ``extents`` of ``src``."""
    return io.BufferedReader(ExtentReader(src, extents), buffer_size=CHUNK)


_NEED = {"magic": 4, "fhd": 1, "block": 3, "checksum": 4, "skippable": 4}


class ZstdFrames:
    """Walks the frame and block headers of a zstd stream as its bytes go by, to tell a complete stream from a cut one.

    python-zstandard's stream reader returns end-of-file, not an error, when its input stops inside a frame; this
    walker sees every byte the decoder reads and says afterwards whether the last frame ended (RFC 8878 3.1.1:
    Frame_Header, Data_Blocks each with a 3-byte Block_Header, optional Content_Checksum; skippable frames).
    """

    MAGIC = 0xFD2FB528

    def __init__(self) -> None:
        self.buf = bytearray()
        self.skip = 0
        self.state = "magic"
        self.frames = 0
        self.checksum = False

    def feed(self, data: bytes) -> None:
        """Account for the next compressed bytes."""
        pos = 0
        n = len(data)
        while pos < n:
            if self.skip:
                take = min(self.skip, n - pos)
                self.skip -= take
                pos += take
                if not self.skip and self.state == "after-last":
                    self.state = "checksum" if self.checksum else "magic"
                    if not self.checksum:
                        self.frames += 1
                continue
            need = _NEED.get(self.state) or self._header_len()
            take = min(need - len(self.buf), n - pos)
            self.buf += data[pos : pos + take]
            pos += take
            if len(self.buf) == need:
                self._advance(bytes(self.buf))
                self.buf.clear()

    def _header_len(self) -> int:
        return int(self.state.split(":")[1])

    def _advance(self, b: bytes) -> None:
        st = self.state
        if st == "magic":
            magic = int.from_bytes(b, "little")
            if magic == self.MAGIC:
                self.state = "fhd"
            elif magic & 0xFFFFFFF0 == 0x184D2A50:
                self.state = "skippable"
            else:
                raise StreamError("data after the last zstd frame is not a zstd frame")
        elif st == "fhd":
            fhd = b[0]
            single = (fhd >> 5) & 1
            self.checksum = bool((fhd >> 2) & 1)
            fcs = (0, 2, 4, 8)[fhd >> 6] if (fhd >> 6) or not single else 1
            rest = (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self.state = f"header:{rest}" if rest else "block"
        elif st.startswith("header:"):
            self.state = "block"
        elif st == "block":
            h = int.from_bytes(b, "little")
            last, btype, size = h & 1, (h >> 1) & 3, h >> 3
            if btype == 3:
                raise StreamError("reserved zstd block type")
            self.skip = 1 if btype == 1 else size
            if last:
                self.state = "after-last"
                if not self.skip:
                    self.state = "checksum" if self.checksum else "magic"
                    if not self.checksum:
                        self.frames += 1
        elif st == "checksum":
            self.state = "magic"
            self.frames += 1
        elif st == "skippable":
            self.skip = int.from_bytes(b, "little")
            self.state = "magic"

    def complete(self) -> bool:
        """Return True when the bytes seen so far end exactly after a whole frame."""
        return self.frames > 0 and self.state == "magic" and not self.buf and not self.skip


class _Tee(io.RawIOBase):
    """A reader that shows every byte it passes on to a :class:`ZstdFrames` walker."""

    def __init__(self, raw: IO[bytes], walker: ZstdFrames) -> None:
        super().__init__()
        self.raw = raw
        self.walker = walker

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buf))
        if not data:
            return 0
        self.walker.feed(data)
        buf[: len(data)] = data
        return len(data)


def _zstd_reader(raw: IO[bytes]) -> BinaryIO:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise StreamError("zstd needs the 'zstandard' package (pip install zstandard)") from exc
    # read_across_frames: a .zst made by concatenation (or pzstd) holds several frames
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    return reader  # type: ignore[return-value]


def decoder(kind: str, raw: IO[bytes]) -> BinaryIO:
    """Return a file object yielding the decoded bytes of the ``kind`` stream read from ``raw``."""
    if kind == "zstd":
        return _zstd_reader(raw)
    if kind == "xz":
        return lzma.open(raw, "rb", format=lzma.FORMAT_XZ)  # type: ignore[return-value]
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.open(raw, "rb")  # type: ignore[return-value]
    raise StreamError(f"unknown stream kind {kind!r}")


_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)


def chunks(kind: str, raw: IO[bytes], limit: int) -> Generator[bytes, None, None]:
    """Yield the decoded payload in chunks of at most :data:`CHUNK` bytes.

    Raises :class:`StreamError` when the stream is corrupt or truncated (after yielding what decoded) or when the
    payload exceeds ``limit`` bytes.
    """
    extra: tuple[type[BaseException], ...] = ()
    try:
        import zstandard

        extra = (zstandard.ZstdError,)
    except ImportError:  # pragma: no cover
        pass
    walker: ZstdFrames | None = None
    if kind == "zstd":
        walker = ZstdFrames()
        raw = io.BufferedReader(_Tee(raw, walker), buffer_size=CHUNK)
    dec = decoder(kind, raw)
    total = 0
    try:
        while True:
            try:
                block = dec.read(CHUNK)
            except _DECODE_ERRORS + extra + (StreamError,) as exc:
                raise StreamError(f"{kind} stream is corrupt or truncated after {total} decoded bytes: {exc}") from None
            if not block:
                if walker is not None:
                    try:
                        rest = raw.read()  # what the decoder left unread (trailing bytes)
                        if rest:
                            walker.feed(rest)
                    except StreamError as exc:
                        raise StreamError(f"{kind} stream: {exc}") from None
                    if not walker.complete():
                        raise StreamError(
                            f"{kind} stream is corrupt or truncated after {total} decoded bytes: the last frame "
                            "does not end"
                        )
                return
            total += len(block)
            if total > limit:
                raise StreamError(f"{kind} stream decodes to more than {limit} bytes; not decoded further")
            yield block
    finally:
        dec.close()


class Decoded:
    """A decoded payload: its bytes (in memory or a sparse scratch file), its size and what went wrong."""

    def __init__(self, source: Source, size: int, error: str = "") -> None:
        self.source = source
        self.size = size
        self.error = error


def decode(kind: str, raw: IO[bytes], limit: int, path: str = "<decoded>") -> Decoded:
    """Decode the whole ``kind`` stream from ``raw`` (at most ``limit`` bytes) into a readable source.

    A corrupt or truncated stream keeps what decoded before the fault and says so in ``error``.
    """
    buf = bytearray()
    fh: BinaryIO | None = None
    size = 0
    error = ""
    try:
        for block in chunks(kind, raw, limit):
            if fh is None:
                buf += block
                if len(buf) > IN_MEMORY:
                    fh = tempfile.TemporaryFile(prefix="imgdiff-")  # noqa: SIM115 - closed with the source
                    _sparse_write(fh, bytes(buf))
                    buf = bytearray()
            else:
                _sparse_write(fh, block)
            size += len(block)
    except StreamError as exc:
        error = str(exc)
    if fh is None:
        return Decoded(BytesSource(bytes(buf), path), size, error)
    fh.truncate(size)
    fh.flush()
    fd = os.dup(fh.fileno())
    fh.close()
    return Decoded(ImageSource.adopt(fd, path, size, kind), size, error)


SPARSE = 1 << 16
"""Granularity of hole detection when writing decoded data: all-zero pieces of this size become holes."""


def _sparse_write(fh: BinaryIO, block: bytes) -> None:
    """Write ``block`` at the current position, seeking over its all-zero :data:`SPARSE`-byte pieces."""
    if block.count(0) == len(block):
        fh.seek(len(block), os.SEEK_CUR)
        return
    for i in range(0, len(block), SPARSE):
        piece = block[i : i + SPARSE]
        if piece.count(0) == len(piece):
            fh.seek(len(piece), os.SEEK_CUR)
        else:
            fh.write(piece)


def open_input(path: str) -> ImageSource:
    """Open an input image read-only; a zstd/xz/gzip/bzip2 file is decompressed into a sparse scratch copy.

    The scratch file is unnamed (``tempfile.TemporaryFile`` under ``$TMPDIR``): it disappears when the source is
    closed, or when the process ends.  The returned source's ``path`` is the input's path and its
    ``decompressed`` attribute names the compression.
    """
    src = ImageSource(path)
    kind = stream_kind(src.read(0, 8))
    if kind is None:
        return src
    try:
        with os.fdopen(os.dup(src.fd), "rb", buffering=0) as raw:
            raw.seek(0)
            result = decode(kind, raw, MAX_INPUT_DECODED, path)  # type: ignore[arg-type]
    finally:
        src.close()
    if result.error and result.size == 0:
        raise ImageError(f"{path}: {result.error}")
    out = result.source
    if isinstance(out, BytesSource):  # a small image: keep the same type as large ones
        fh = tempfile.TemporaryFile(prefix="imgdiff-")  # noqa: SIM115
        _sparse_write(fh, out.data)
        fh.truncate(result.size)
        fh.flush()
        fd = os.dup(fh.fileno())
        fh.close()
        img = ImageSource.adopt(fd, path, result.size, kind)
    else:
        assert isinstance(out, ImageSource)
        img = out
    img.decompressed = kind
    img.decode_error = result.error
    return img


__all__ = ["Decoded", "ExtentReader", "StreamError", "chunks", "decode", "open_extents", "open_input", "stream_kind"]

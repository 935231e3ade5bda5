"""Block decompressors of squashfs, one per ``compression`` id, and what to install when one is missing.

Every metadata block, data block and fragment block of a squashfs image is compressed on its own with the
compressor the superblock names.  :func:`decoder` returns a function ``(stored bytes, largest output) -> bytes``:
gzip blocks are zlib streams (``zlib``), xz blocks complete .xz streams with any BCJ filter in their block headers
(``lzma``), legacy lzma blocks lzma_alone streams (``lzma.FORMAT_ALONE``), lz4 blocks raw LZ4 blocks
(``lz4.block``), zstd blocks zstd frames (``zstandard``) and lzo blocks raw LZO1X (``python-lzo``).  A compressor
whose Python module is not installed raises :class:`MissingDecompressor` naming the package (the parser then
gives a partial result with that message); a corrupt block raises :class:`BlockError`.

References:
    squashfs-tools 4.5.1 ``gzip_wrapper.c`` (zlib ``compress2``/``deflate``), ``xz_wrapper.c`` (``lzma_stream_buffer_encode``
    with LZMA2 and the BCJ filter chains), ``lzma_xz_wrapper.c`` (``lzma_alone_encoder``), ``lz4_wrapper.c``
    (``LZ4_compress_default``/``LZ4_compress_HC``), ``zstd_wrapper.c`` (``ZSTD_compressCCtx``), ``lzo_wrapper.c``
    (``lzo1x_*_compress``); Linux ``fs/squashfs/{zlib,xz,lz4,lzo,zstd}_wrapper.c``.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Callable

Decoder = Callable[[bytes, int], bytes]


class BlockError(ValueError):
    """A stored block does not decompress."""


class MissingDecompressor(ValueError):
    """The compressor's Python module is not installed."""


def _gzip(data: bytes, limit: int) -> bytes:
    try:
        d = zlib.decompressobj()
        out = d.decompress(data, limit)
    except zlib.error as exc:
        raise BlockError(f"gzip (zlib) block: {exc}") from None
    return out


def _xz(data: bytes, limit: int) -> bytes:
    try:
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data, limit)
    except lzma.LZMAError as exc:
        raise BlockError(f"xz block: {exc}") from None


def _lzma(data: bytes, limit: int) -> bytes:
    try:
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data, limit)
    except lzma.LZMAError as exc:
        raise BlockError(f"lzma block: {exc}") from None


def _lz4(data: bytes, limit: int) -> bytes:
    try:
        import lz4.block  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise MissingDecompressor("lz4 blocks need the Python package lz4 (pip install lz4)") from None
    try:
        out: bytes = lz4.block.decompress(data, uncompressed_size=limit, return_bytearray=False)
    except (lz4.block.LZ4BlockError, ValueError) as exc:
        raise BlockError(f"lz4 block: {exc}") from None
    return out


def _zstd(data: bytes, limit: int) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise MissingDecompressor("zstd blocks need the Python package zstandard (pip install zstandard)") from None
    out = bytearray()
    try:
        for chunk in zstandard.ZstdDecompressor().read_to_iter(data, write_size=65536):
            out += chunk
            if len(out) >= limit:  # bounded: a hostile block cannot expand past the block size
                break
    except zstandard.ZstdError as exc:
        raise BlockError(f"zstd block: {exc}") from None
    return bytes(out[:limit])


def _lzo(data: bytes, limit: int) -> bytes:
    try:
        import lzo  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise MissingDecompressor(
            "lzo blocks need the Python package python-lzo (GPL; building it needs gcc and liblzo2-dev: "
            "apt-get install liblzo2-dev && pip install python-lzo)"
        ) from None
    try:
        out: bytes = lzo.decompress(data, False, limit)
    except lzo.error as exc:
        raise BlockError(f"lzo block: {exc}") from None
    return out


DECODERS: dict[int, Decoder] = {1: _gzip, 2: _lzma, 3: _lzo, 4: _xz, 5: _lz4, 6: _zstd}
"""Superblock ``compression`` id -> block decoder."""


def decoder(compression: int) -> Decoder:
    """Return the decoder of ``compression``; raise :class:`MissingDecompressor` when it cannot work here."""
    fn = DECODERS.get(compression)
    if fn is None:
        raise MissingDecompressor(f"unknown squashfs compression id {compression}")
    if compression in (3, 5, 6):  # probe the optional module now, so the message comes once per image
        try:
            fn(b"", 0)
        except BlockError:
            pass
    return fn


__all__ = ["DECODERS", "BlockError", "MissingDecompressor", "decoder"]

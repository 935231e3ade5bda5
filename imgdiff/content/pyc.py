"""Python bytecode caches (``.pyc``): the 16-byte header of PEP 552.

Words: ``magic`` (the bytecode version, 2 bytes and ``\\r\\n``), ``flags`` (bit 0: hash-based, bit 1: check the
source), then either ``mtime`` and ``source_size`` of the source file (flags 0, timestamp-based) or the 8-byte
SipHash ``source_hash`` of the source (hash-based, what ``py_compile`` writes when SOURCE_DATE_EPOCH is set).  When
the two versions use different invalidation modes the eight bytes are reported as ``invalidation_data``.
"""

from __future__ import annotations

import struct

from imgdiff.content.common import ContentField, Recognizer, utc


def _mode(flags: int) -> str:
    if flags == 0:
        return "timestamp-based"
    if flags & 1:
        return "checked hash" if flags & 2 else "unchecked hash"
    return f"flags 0x{flags:x}"


def _data(flags: int, buf: bytes) -> str:
    if flags & 1:
        return f"source_hash {buf[8:16].hex()}"
    mtime, size = struct.unpack_from("<II", buf, 8)
    return f"mtime {utc(mtime)}, source_size {size}"


def is_pyc(path: str, buf: bytes) -> bool:
    """Return True for a bytecode cache: a ``.pyc`` name, or a magic word ending in ``\\r\\n``."""
    return len(buf) >= 16 and buf[2:4] == b"\r\n" and (path.endswith((".pyc", ".pyo")) or "__pycache__" in path)


def pyc(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """PEP 552 header of .pyc files."""
    del size_a, size_b
    if not (is_pyc(path, head_a) and is_pyc(path, head_b)):
        return []
    out: list[ContentField] = []
    ma, mb = struct.unpack_from("<H", head_a)[0], struct.unpack_from("<H", head_b)[0]
    if ma != mb:
        out.append(ContentField("content.pyc", "magic", 0, 4, ma, mb, f"bytecode magic {ma}", f"bytecode magic {mb}"))
        return out  # another interpreter version: the rest of the file is not comparable field by field
    fa, fb = struct.unpack_from("<I", head_a, 4)[0], struct.unpack_from("<I", head_b, 4)[0]
    if fa != fb:
        out.append(ContentField("content.pyc", "flags", 4, 4, fa, fb, _mode(fa), _mode(fb)))
        if head_a[8:16] != head_b[8:16]:
            out.append(
                ContentField("content.pyc", "invalidation_data", 8, 8, head_a[8:16], head_b[8:16],
                             _data(fa, head_a), _data(fb, head_b))
            )
        return out
    if fa & 1:
        if head_a[8:16] != head_b[8:16]:
            out.append(ContentField("content.pyc", "source_hash", 8, 8, head_a[8:16], head_b[8:16]))
        return out
    (ta, sa), (tb, sb) = struct.unpack_from("<II", head_a, 8), struct.unpack_from("<II", head_b, 8)
    if ta != tb:
        out.append(ContentField("content.pyc", "mtime", 8, 4, ta, tb, utc(ta), utc(tb)))
    if sa != sb:
        out.append(ContentField("content.pyc", "source_size", 12, 4, sa, sb, f"{sa} bytes", f"{sb} bytes"))
    return out


RECOGNIZERS: tuple[Recognizer, ...] = (pyc,)
"""The recognisers of this module, in the order :func:`imgdiff.content.inspect` runs them."""

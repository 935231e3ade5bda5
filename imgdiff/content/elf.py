"""ELF files: the GNU build ID note (``NT_GNU_BUILD_ID``, the ``.note.gnu.build-id`` section).

The note is found through the ``PT_NOTE`` program headers (executables, shared libraries), or through the
section headers (relocatable objects and kernel modules have no program headers) when they are inside the
inspected head.  The field is ``GNU_BUILD_ID``: the note's descriptor bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from imgdiff.content.common import ContentField, Recognizer

PT_NOTE = 4
SHT_NOTE = 7
NT_GNU_BUILD_ID = 3


def _notes(buf: bytes, start: int, size: int, align: int, end: str) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield (name, type, descriptor offset, descriptor size) of the notes in ``buf[start:start+size]``."""
    pos, stop = start, min(start + size, len(buf))
    a = max(align, 4)
    while pos + 12 <= stop:
        namesz, descsz, ntype = struct.unpack_from(end + "III", buf, pos)
        name_off = pos + 12
        desc_off = name_off + ((namesz + a - 1) & ~(a - 1))
        if desc_off + descsz > stop:
            return
        yield buf[name_off : name_off + namesz], ntype, desc_off, descsz
        pos = desc_off + ((descsz + a - 1) & ~(a - 1))


def build_id(buf: bytes) -> tuple[int, int, bytes] | None:
    """Return (offset, size, bytes) of the GNU build ID descriptor in an ELF file, or None."""
    if buf[:4] != b"\x7fELF" or len(buf) < 52:
        raise ValueError("not ELF")
    is64 = buf[4] == 2
    end = "<" if buf[5] == 1 else ">"
    if is64:
        phoff, shoff = struct.unpack_from(end + "QQ", buf, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", buf, 54)
    else:
        phoff, shoff = struct.unpack_from(end + "II", buf, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", buf, 42)
    regions: list[tuple[int, int, int]] = []
    for i in range(min(phnum, 256)):
        p = phoff + i * phentsize
        if p + phentsize > len(buf):
            break
        if is64:
            ptype, _flags, off, _va, _pa, filesz, _memsz, align = struct.unpack_from(end + "IIQQQQQQ", buf, p)
        else:
            ptype, off, _va, _pa, filesz, _memsz, _flags, align = struct.unpack_from(end + "IIIIIIII", buf, p)
        if ptype == PT_NOTE:
            regions.append((off, filesz, align))
    if not regions:
        for i in range(min(shnum, 4096)):
            s = shoff + i * shentsize
            if s + shentsize > len(buf):
                break
            if is64:
                _n, stype, _f, _addr, off, size, _l, _i, align, _e = struct.unpack_from(end + "IIQQQQIIQQ", buf, s)
            else:
                _n, stype, _f, _addr, off, size, _l, _i, align, _e = struct.unpack_from(end + "IIIIIIIIII", buf, s)
            if stype == SHT_NOTE:
                regions.append((off, size, align))
    for off, size, align in regions:
        for name, ntype, doff, dsize in _notes(buf, off, size, align if align in (4, 8) else 4, end):
            if name == b"GNU\0" and ntype == NT_GNU_BUILD_ID:
                return doff, dsize, buf[doff : doff + dsize]
    return None


def elf_build_id(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """GNU build ID note of ELF executables, libraries, objects and kernel modules."""
    del path, size_a, size_b
    if head_a[:4] != b"\x7fELF" or head_b[:4] != b"\x7fELF":
        return []
    ia, ib = build_id(head_a), build_id(head_b)
    if ia is None or ib is None or ia[2] == ib[2]:
        return []
    if ia[0] != ib[0]:
        return []  # the notes moved: the layout differs and the file-level difference stays
    size = max(ia[1], ib[1])
    return [ContentField("content.elf", "GNU_BUILD_ID", ia[0], size, ia[2], ib[2], ia[2].hex(), ib[2].hex())]


RECOGNIZERS: tuple[Recognizer, ...] = (elf_build_id,)
"""The recognisers of this module, in the order :func:`imgdiff.content.inspect` runs them."""

"""cpio "newc" archives (initramfs images): per-member header fields and member order.

The newc header (``070701``; ``070702`` with checksums) is 110 ASCII bytes: magic, then thirteen 8-digit hex
fields ``c_ino c_mode c_uid c_gid c_nlink c_mtime c_filesize c_devmajor c_devminor c_rdevmajor c_rdevminor
c_namesize c_check``; the name (NUL-terminated) follows, padded so that header+name is a multiple of 4, then the
data, padded to 4.  ``TRAILER!!!`` ends an archive.  Linux initrds are often an uncompressed archive (early CPU
microcode) followed by a compressed one; the compressed part is handed to :mod:`imgdiff.content.compressed`.

:func:`compare` names the header fields that differ between two archives member by member, and the member order
when both hold the same members in another order.  It also says whether those names account for every differing
byte, which is what lets a compressed archive be attributed as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgdiff.content.common import ContentField, Recognizer, utc, whole

MAGICS = (b"070701", b"070702")
HEADER = 110
TRAILER = "TRAILER!!!"
FIELDS = (
    "c_ino", "c_mode", "c_uid", "c_gid", "c_nlink", "c_mtime", "c_filesize", "c_devmajor", "c_devminor",
    "c_rdevmajor", "c_rdevminor", "c_namesize", "c_check",
)
"""The thirteen hex fields after the 6-byte magic, each 8 bytes."""
COMPARED = tuple(f for f in FIELDS if f not in ("c_filesize", "c_namesize"))
"""Fields compared member by member (size fields change the layout: the data is compared instead)."""
MAX_MEMBERS = 200_000


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True, slots=True)
class Member:
    """One archive member: where its header starts and ends, its name, header values and data range."""

    offset: int
    name: str
    values: tuple[int, ...]
    data_offset: int
    data_size: int
    end: int

    def value(self, name: str) -> int:
        """Return the header field ``name``."""
        return self.values[FIELDS.index(name)]

    def field_offset(self, name: str) -> int:
        """Return the offset of header field ``name`` in the buffer."""
        return self.offset + 6 + 8 * FIELDS.index(name)


@dataclass(slots=True)
class Archive:
    """The members of one archive in a buffer, and whether its trailer was reached inside the buffer."""

    start: int
    members: list[Member]
    end: int
    complete: bool


def is_cpio(buf: bytes, offset: int = 0) -> bool:
    """Return True when a newc header starts at ``offset``."""
    return buf[offset : offset + 6] in MAGICS


def parse(buf: bytes, offset: int = 0) -> Archive:
    """Parse the newc archive at ``offset`` as far as ``buf`` reaches (raises ValueError on a corrupt header)."""
    pos = offset
    members: list[Member] = []
    while pos + HEADER <= len(buf) and len(members) < MAX_MEMBERS:
        if buf[pos : pos + 6] not in MAGICS:
            raise ValueError(f"no cpio newc header at offset {pos}")
        values = tuple(int(buf[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(len(FIELDS)))
        namesize = values[FIELDS.index("c_namesize")]
        filesize = values[FIELDS.index("c_filesize")]
        name_end = pos + HEADER + namesize
        if namesize == 0 or name_end > len(buf):
            break
        name = buf[pos + HEADER : name_end - 1].decode("utf-8", "replace")
        data = offset + _align4(name_end - offset)
        end = offset + _align4(data + filesize - offset)
        member = Member(pos, name, values, data, filesize, end)
        if name == TRAILER:
            return Archive(offset, members, min(end, len(buf)), True)
        members.append(member)
        pos = end
    return Archive(offset, members, min(pos, len(buf)), False)


def _describe(m: Member, name: str) -> str:
    v = m.value(name)
    if name == "c_mtime":
        return f"{m.name}: {utc(v)}"
    if name == "c_mode":
        return f"{m.name}: {v:o}"
    return f"{m.name}: {v}"


@dataclass(slots=True)
class Comparison:
    """The named differences between two archives and whether they account for every differing byte."""

    fields: list[ContentField]
    explained: bool
    """True when the archives are equal once the named bytes are set aside (same length, nothing else differs)."""


def compare(a: bytes, b: bytes, base: int = 0, offset: int = 0) -> Comparison:
    """Compare the archives starting at ``offset`` in ``a`` and ``b``; field offsets are reported plus ``base``."""
    pa, pb = parse(a, offset), parse(b, offset)
    out: list[ContentField] = []
    named: list[tuple[int, int]] = []
    order_from: int | None = None
    for i, (ma, mb) in enumerate(zip(pa.members, pb.members, strict=False)):
        if ma.offset != mb.offset:
            break
        if ma.name != mb.name:
            order_from = i
            break
        if ma.data_size != mb.data_size:
            break  # another layout from here on: the data difference stays unnamed
        for name in COMPARED:
            va, vb = ma.value(name), mb.value(name)
            if va != vb:
                off = ma.field_offset(name)
                out.append(ContentField("content.cpio", name, base + off, 8, va, vb, _describe(ma, name), _describe(mb, name)))
                named.append((off, off + 8))
    if order_from is not None and _same_members(pa.members[order_from:], pb.members[order_from:], a, b):
        ma, mb = pa.members[order_from], pb.members[order_from]
        start = ma.offset
        stop = max(pa.end, pb.end)
        names_a = ", ".join(m.name for m in pa.members[order_from : order_from + 4])
        names_b = ", ".join(m.name for m in pb.members[order_from : order_from + 4])
        count = len(pa.members) - order_from
        out.append(
            ContentField(
                "content.cpio", "member order", base + start, stop - start, ma.name, mb.name,
                f"{count} members from #{order_from + 1} in another order: {names_a}, …",
                f"{names_b}, …",
            )
        )
        named.append((start, stop))
    return Comparison(out, _explained(a, b, named, pa, pb))


def _same_members(xs: list[Member], ys: list[Member], a: bytes, b: bytes) -> bool:
    """Return True when both lists hold the same members (name, mode, size, data), in any order."""
    if len(xs) != len(ys) or not xs:
        return False

    def key(m: Member, buf: bytes) -> tuple[str, int, int, bytes]:
        return (m.name, m.value("c_mode"), m.data_size, buf[m.data_offset : m.data_offset + m.data_size])

    return sorted(key(m, a) for m in xs) == sorted(key(m, b) for m in ys)


def _explained(a: bytes, b: bytes, named: list[tuple[int, int]], pa: Archive, pb: Archive) -> bool:
    """Return True when ``a`` and ``b`` are equal outside the ``named`` ranges (and both archives are complete)."""
    if len(a) != len(b) or not (pa.complete and pb.complete):
        return False
    xa, xb = bytearray(a), bytearray(b)
    for s, e in named:
        xa[s:e] = bytes(e - s)
        xb[s:e] = bytes(e - s)
    return xa == xb


def _after_archive(buf: bytes, end: int) -> int:
    """Return the offset after the zero padding that may follow an archive's trailer."""
    pos = end
    while pos < len(buf) and buf[pos] == 0:
        pos += 1
    return pos


def cpio_newc(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """Name the differing header fields of an uncompressed newc archive (and of a compressed archive after it)."""
    del path
    if not (is_cpio(head_a) and is_cpio(head_b)):
        return []
    result = compare(head_a, head_b)
    out = list(result.fields)
    # An early (uncompressed) archive followed by a compressed main archive, as dracut and the kernel build write.
    pa, pb = parse(head_a), parse(head_b)
    if pa.complete and pb.complete:
        na, nb = _after_archive(head_a, pa.end), _after_archive(head_b, pb.end)
        if na == nb and na < min(len(head_a), len(head_b)) and not is_cpio(head_a, na):
            from imgdiff.content.compressed import embedded

            full = whole(head_a, size_a) and whole(head_b, size_b)
            out.extend(embedded(head_a[na:], head_b[na:], na, full))
    return out


RECOGNIZERS: tuple[Recognizer, ...] = (cpio_newc,)
"""The recognisers of this module, in the order :func:`imgdiff.content.inspect` runs them."""

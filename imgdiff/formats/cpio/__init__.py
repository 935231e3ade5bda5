"""cpio "newc" archives (initramfs images) as a nested format: every member header field, name, data and padding.

A Linux initrd is one or more concatenated cpio archives, often an uncompressed one (early CPU microcode)
followed by a compressed one; this module parses the archives it finds from the start of its region, and hands
whatever follows them (a compressed archive, say) to the engine as a file-like ``trailing data`` node, which the
engine decodes and nests in turn.  Members are keyed by name, so a member that moved is a move, not a change.

Tree (keys in brackets)::

    cpio [cpio]                                 padding / padding#N after each trailer
      cpio.member [<name>] [<name>#N]           c_magic .. c_check, name, name_pad, data (content), data_pad
      cpio.trailer [TRAILER!!!] [TRAILER!!!#N]  the end-of-archive member
      cpio.trailing [trailing]                  bytes after the last archive: data (content)

``c_filesize`` and ``c_namesize`` are declared :class:`~imgdiff.model.Derived` from the data and name they
measure, ``c_check`` (``070702``) from the data it sums.

References:
    https://www.kernel.org/doc/html/latest/driver-api/early-userspace/buffer-format.html
    GNU cpio manual, "Options" / newc format; Linux ``init/initramfs.c`` (``do_header``, ``do_skip``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from imgdiff.errors import ParseError
from imgdiff.formats.base import ParseContext
from imgdiff.formats.compiled import blob_display, blob_value
from imgdiff.model import Derived, Extent, Field, Node, Value

NAME = "cpio"

MAGICS = (b"070701", b"070702")
HEADER = 110
TRAILER = "TRAILER!!!"
FIELDS = (
    "c_ino", "c_mode", "c_uid", "c_gid", "c_nlink", "c_mtime", "c_filesize", "c_devmajor", "c_devminor",
    "c_rdevmajor", "c_rdevminor", "c_namesize", "c_check",
)
"""The thirteen 8-digit hex fields after the 6-byte ``c_magic``."""
MAX_MEMBERS = 1_000_000
MAX_NAME = 4096
S_IFMT = 0o170000
MODE_TYPES = {0o100000: "reg", 0o040000: "dir", 0o120000: "lnk", 0o020000: "chr", 0o060000: "blk",
              0o010000: "fifo", 0o140000: "sock"}


def recognizes(head: bytes, size: int) -> bool:
    """Return True when the region starts with a newc cpio header."""
    return size >= HEADER and head[:6] in MAGICS and _hex_ok(head[6:HEADER])


def _hex_ok(raw: bytes) -> bool:
    try:
        int(raw, 16)
    except ValueError:
        return False
    return True


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _time_text(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the ``cpio`` node of ``[base, base + size)``; raises ParseError when it does not start a newc archive."""
    head = ctx.read(base, HEADER)
    if not recognizes(head, size):
        raise ParseError("no cpio newc header", base, "c_magic")
    root = Node(kind="cpio", key="cpio", label="cpio archive", extents=(Extent(base, size),),
                attrs={"scope": True, "fs": "cpio", "region": label})
    fields: list[Field] = []
    used: dict[str, int] = {}
    pos = 0
    members = 0
    archives = 0
    while pos + HEADER <= size and ctx.read(base + pos, 6) in MAGICS:
        archives += 1
        while True:
            if members >= MAX_MEMBERS:
                root.errors.append(f"more than {MAX_MEMBERS} members; the rest is not parsed")
                ctx.errors.append(f"cpio ({label}): more than {MAX_MEMBERS} members")
                pos = size
                break
            node, end, name = _member(ctx, base, pos, size, used, root.errors)
            if node is None:
                pos = size if end < 0 else end
                break
            root.children.append(node)
            members += 1
            pos = end
            if name == TRAILER:
                break
        if pos >= size:
            break
        # zero padding after the trailer (cpio pads its output to 512-byte blocks)
        pad_end = _zeros_end(ctx, base + pos, base + size) - base
        if pad_end > pos:
            fields.append(Field("padding" if archives == 1 else f"padding#{archives}", "zero",
                                (Extent(base + pos, pad_end - pos),), f"{pad_end - pos} bytes, all zero"))
            pos = pad_end
    if pos < size:
        rest = Extent(base + pos, size - pos)
        root.children.append(Node(kind="cpio.trailing", key="trailing", label="data after the last archive",
                                  extents=(rest,), fields=(Field("data", _digest(ctx, rest), (rest,),
                                                                   f"{rest.length} bytes"),),
                                  attrs={"content": True, "path": f"{label}#trailing", "file_type": "reg",
                                         "size": rest.length}))
    root.fields = tuple(fields)
    for msg in root.errors:
        ctx.errors.append(f"cpio ({label}): {msg}")
    return root


def _zeros_end(ctx: ParseContext, start: int, end: int) -> int:
    """Return the first offset in ``[start, end)`` that holds a non-zero byte (``end`` if none), 4-aligned."""
    pos = start
    while pos < end:
        n = min(1 << 16, end - pos)
        chunk = ctx.read(pos, n)
        stripped = len(chunk) - len(chunk.lstrip(b"\0"))
        if stripped < n:
            return pos + (stripped & ~3)
        pos += n
    return end


def _digest(ctx: ParseContext, ext: Extent) -> Value:
    import hashlib

    if ext.length <= 64:
        return ctx.read(ext.offset, ext.length)
    h = hashlib.sha256()
    pos = ext.offset
    while pos < ext.end:
        n = min(1 << 20, ext.end - pos)
        h.update(ctx.read(pos, n))
        pos += n
    return "sha256:" + h.hexdigest()


def _member(
    ctx: ParseContext, base: int, pos: int, size: int, used: dict[str, int], errors: list[str]
) -> tuple[Node | None, int, str]:
    """Parse the member at ``pos``; return (node, end offset, name), or (None, -1 | resume offset, "")."""
    a = base + pos
    hdr = ctx.read(a, HEADER)
    magic = hdr[:6]
    if magic not in MAGICS or not _hex_ok(hdr[6:HEADER]):
        errors.append(f"no member header at +{pos}")
        return None, pos, ""
    values = [int(hdr[6 + 8 * i : 14 + 8 * i], 16) for i in range(len(FIELDS))]
    vals = dict(zip(FIELDS, values, strict=True))
    namesize, filesize = vals["c_namesize"], vals["c_filesize"]
    if not 0 < namesize <= MAX_NAME or pos + HEADER + namesize > size:
        errors.append(f"member at +{pos}: c_namesize {namesize} is not plausible")
        return None, -1, ""
    raw_name = ctx.read(a + HEADER, namesize)
    name = raw_name.split(b"\0", 1)[0].decode("utf-8", errors="surrogateescape")
    data_off = pos + _align4(HEADER + namesize)
    if data_off + filesize > size:
        errors.append(f"member {name!r} at +{pos}: data of {filesize} bytes runs past the end")
        return None, -1, ""
    end = min(size, data_off + _align4(filesize))
    fields: list[Field] = [Field("c_magic", magic.decode(), (Extent(a, 6),))]
    mode = vals["c_mode"]
    for i, fname in enumerate(FIELDS):
        v = values[i]
        disp = None
        if fname == "c_mtime":
            disp = _time_text(v)
        elif fname == "c_mode":
            disp = f"0o{v:o}"
        fields.append(Field(fname, v, (Extent(a + 6 + 8 * i, 8),), disp))
    fields.append(Field("name", name, (Extent(a + HEADER, namesize),)))
    npad = data_off - pos - HEADER - namesize
    if npad:
        fields.append(Field("name_pad", ctx.read(a + HEADER + namesize, npad), (Extent(a + HEADER + namesize, npad),)))
    ftype = MODE_TYPES.get(mode & S_IFMT, "unknown")
    data_ext = Extent(base + data_off, filesize)
    path = name if name == TRAILER else "/" + name.removeprefix("./").lstrip("/")
    attrs: dict[str, Value] = {"path": "/" if name == "." else path, "file_type": ftype, "size": filesize}
    derived = [Derived("c_namesize", covers=(Extent(a + HEADER, namesize),))]
    if filesize:
        if ftype == "lnk" and filesize <= MAX_NAME:
            target = ctx.read(data_ext.offset, filesize).decode("utf-8", errors="surrogateescape")
            fields.append(Field("data", target, (data_ext,), "symlink target"))
        else:
            fields.append(Field("data", _digest(ctx, data_ext), (data_ext,), f"{filesize} bytes"))
            attrs["content"] = True
        derived.append(Derived("c_filesize", covers=(data_ext,)))
        if magic == b"070702":
            derived.append(Derived("c_check", covers=(data_ext,)))
    dpad = end - (data_off + filesize)
    if dpad > 0:
        p = Extent(data_ext.end, dpad)
        raw = ctx.read(p.offset, dpad)
        fields.append(Field("data_pad", blob_value(raw), (p,), blob_display(raw)))
    key = name
    n = used.get(name, 0) + 1
    used[name] = n
    if n > 1:
        key = f"{name}#{n}"
    kind = "cpio.trailer" if name == TRAILER else "cpio.member"
    node = Node(kind=kind, key=key, label=f"member {name}" if kind == "cpio.member" else "trailer",
                extents=(Extent(a, end - pos),), fields=tuple(fields), derived=tuple(derived), attrs=attrs)
    return node, end, name

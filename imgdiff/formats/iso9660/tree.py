"""The directory hierarchy of one ISO 9660 tree (the primary tree, or the Joliet copy): a bounded walk.

:class:`Tree` reads every directory extent once, splits it into Directory Records (ECMA-119 9.1, never crossing a
logical sector), follows each record's SUSP entries and continuation areas (Rock Ridge names), and indexes the
records by path.  It builds no nodes: :mod:`imgdiff.formats.iso9660.records` and :mod:`~.volume` do that only for
the directories and files whose bytes differ, so a 20,000-file image with a few differing bytes costs one walk.

Keys are paths: a directory ``/boot``, an entry ``/boot/bzImage`` (its Rock Ridge name, else its identifier
without ``;1``), the "." and ".." records ``/boot/.`` and ``/boot/..``; the second record of a multi-extent file
(or a duplicate name) gets ``#2``.

References:
    ECMA-119 6.8.1 (directory structure, records never span sectors), 9.1 (Directory Record: Padding Field when
    the identifier length is even), 6.5.2/9.1.6 (multi-extent files); SUSP 1.12 5.3 (SP: the root "." entry
    announces SUSP and LEN_SKP); RRIP 1.12 4.1.4 (NM).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from imgdiff.formats.compiled import Compiled
from imgdiff.formats.iso9660.c_iso9660 import (
    DIRECTORY_RECORD,
    FLAG_DIRECTORY,
    FLAG_MULTI_EXTENT,
    SECTOR,
    SP_CHECK_BYTES,
)
from imgdiff.formats.iso9660.susp import SystemUse, has_rock_ridge, read_entries, rr_name, symlink_target
from imgdiff.formats.iso9660.values import both32, iso_name
from imgdiff.model import Extent

C_DIRREC = Compiled(DIRECTORY_RECORD)
_REC = C_DIRREC.struct
RECORD_FIXED = C_DIRREC.size  # 33

MAX_RECORDS = 20_000_000
"""Directory records walked per tree at most (bounds a hostile or looping hierarchy)."""
MAX_DEPTH = 1024
MAX_DIR_BYTES = 256 << 20
"""Largest directory extent read (a directory of ~2 million records)."""


@dataclass(slots=True)
class Rec:
    """One Directory Record as found by the walk (no fields yet)."""

    offset: int
    """Absolute offset of the record."""
    length: int
    lba: int
    size: int
    flags: int
    name_length: int
    name: str
    path: str
    """The record's key: the path it names (``/boot/bzImage``), or ``<dir>/.`` and ``<dir>/..``."""
    role: str
    """``"dot"``, ``"dotdot"``, ``"dir"`` or ``"file"``."""
    su_offset: int
    """Absolute offset of the System Use field (after the identifier and its padding byte)."""
    su_length: int
    su: SystemUse | None = None
    extents: list[Extent] = field(default_factory=list)
    """File data: one extent, or several for a multi-extent file (the first record holds them all)."""
    symlink: str | None = None
    continues: bool = False
    """True for the second and later records of a multi-extent file (their extents are on the first)."""

    @property
    def record(self) -> Extent:
        """Return the bytes of the record itself."""
        return Extent(self.offset, self.length)

    def owned(self) -> list[Extent]:
        """Return every byte the record owns: itself and its continuation area pieces."""
        return [self.record, *(self.su.areas if self.su else ())]


@dataclass(slots=True)
class Dir:
    """One directory: its extent, its records in order, and the bytes after the records in each sector."""

    path: str
    extent: Extent
    recs: list[Rec] = field(default_factory=list)
    padding: list[Extent] = field(default_factory=list)
    naming: Rec | None = None
    """The record that names this directory in its parent (None for the root: the descriptor holds it)."""
    errors: list[str] = field(default_factory=list)


def join(parent: str, name: str) -> str:
    """Return ``parent/name`` for a directory path (``/`` is the root)."""
    return f"{parent.rstrip('/')}/{name}"


class Tree:
    """The walk of one hierarchy from its root directory record."""

    def __init__(
        self,
        read: Callable[[int, int], bytes],
        base: int,
        limit: int,
        root_record: bytes,
        joliet: bool,
        label: str,
    ) -> None:
        self.read = read
        self.base = base
        self.limit = limit
        self.joliet = joliet
        self.label = label
        self.dirs: dict[str, Dir] = {}
        self.by_path: dict[str, Rec] = {}
        """Every record by key (directories by the record naming them in their parent)."""
        self.files: list[Rec] = []
        """Non-directory records in walk order (multi-extent continuation records excluded)."""
        self.errors: list[str] = []
        self.susp = False
        self.skip = 0
        self.rock_ridge = False
        self.records = 0
        self._walk(root_record)

    # ---- the walk ------------------------------------------------------------------------------------------

    def _walk(self, root_record: bytes) -> None:
        if len(root_record) < RECORD_FIXED:
            self.errors.append(f"{self.label}: root directory record is too short")
            return
        lba, size = both32(root_record[2:10]), both32(root_record[10:18])
        seen: set[int] = set()
        queue: deque[tuple[str, int, int, Rec | None, int]] = deque([("/", lba, size, None, 0)])
        while queue:
            path, lba, size, naming, depth = queue.popleft()
            start = self.base + lba * SECTOR
            if lba in seen:
                self.errors.append(f"{self.label}: directory {path} reuses the extent of another directory (loop)")
                continue
            if depth > MAX_DEPTH:
                self.errors.append(f"{self.label}: directory {path} is nested deeper than {MAX_DEPTH} levels")
                continue
            if size > MAX_DIR_BYTES or start < self.base or start + size > self.limit:
                self.errors.append(f"{self.label}: directory {path} extent (LBA {lba}, {size} bytes) is implausible")
                continue
            seen.add(lba)
            d = Dir(path, Extent(start, size), naming=naming)
            self.dirs[path] = d
            for sub in self._directory(d, path == "/"):
                queue.append((sub.path, sub.lba, sub.size, sub, depth + 1))
            if self.records > MAX_RECORDS:
                self.errors.append(f"{self.label}: more than {MAX_RECORDS} directory records; the rest is not read")
                break

    def _directory(self, d: Dir, is_root: bool) -> list[Rec]:
        buf = self.read(d.extent.offset, d.extent.length)
        size = len(buf)
        subdirs: list[Rec] = []
        keys: set[str] = set()
        pos = 0
        prev: Rec | None = None
        head: Rec | None = None
        index = 0
        while pos < size:
            sector_end = min(size, (pos // SECTOR + 1) * SECTOR)
            n = buf[pos]
            if n == 0:
                d.padding.append(Extent(d.extent.offset + pos, sector_end - pos))
                pos = sector_end
                continue
            if n < RECORD_FIXED + 1 or pos + n > sector_end:
                d.errors.append(f"directory {d.path}: record length {n} at 0x{d.extent.offset + pos:x} is invalid")
                d.padding.append(Extent(d.extent.offset + pos, sector_end - pos))
                pos = sector_end
                continue
            rec = self._record(d, buf, pos, index, keys)
            index += 1
            self.records += 1
            pos += n
            if rec is None:
                continue
            if rec.role == "dot" and is_root and index == 1 and not self.susp:
                self._root_dot(rec)
            chained = (rec.role == "file" and head is not None and prev is not None and prev.role == "file"
                       and prev.flags & FLAG_MULTI_EXTENT and prev.name == rec.name)
            if chained and head is not None:
                head.extents.extend(rec.extents)  # a further extent of a multi-extent file
                rec.extents = []
                rec.continues = True
            elif rec.role == "file":
                self.files.append(rec)
                head = rec
            else:
                head = None
                if rec.role == "dir":
                    subdirs.append(rec)
            d.recs.append(rec)
            prev = rec
            if self.records > MAX_RECORDS:
                break
        self.errors.extend(d.errors)
        return subdirs

    def _root_dot(self, rec: Rec) -> None:
        """Detect SUSP (an SP entry first in the root's "." record) and Rock Ridge, then read the "." entries."""
        own = self.read(rec.su_offset, rec.su_length)
        if len(own) >= 7 and own[:2] == b"SP" and own[4:6] == SP_CHECK_BYTES:
            self.susp = True
            self.skip = own[6]
            rec.su = read_entries(own, rec.su_offset, self.read, self.limit)
            self.rock_ridge = has_rock_ridge(rec.su.entries)
            self.errors.extend(f"{self.label}: /: {e}" for e in rec.su.errors)

    def _record(self, d: Dir, buf: bytes, pos: int, index: int, keys: set[str]) -> Rec | None:
        length, _ear, loc, size, _date, flags, _fus, _igs, _vsn, nlen = _REC.unpack_from(buf, pos)
        if RECORD_FIXED + nlen > length:
            d.errors.append(f"directory {d.path}: identifier of {nlen} bytes does not fit the record at "
                            f"0x{d.extent.offset + pos:x}")
            return None
        ident = bytes(buf[pos + RECORD_FIXED : pos + RECORD_FIXED + nlen])
        su_rel = RECORD_FIXED + nlen + (1 - nlen % 2)
        su_len = max(0, length - su_rel)
        abs_pos = d.extent.offset + pos
        lba, fsize = both32(loc), both32(size)
        su: SystemUse | None = None
        if self.susp and su_len > self.skip:
            own = bytes(buf[pos + su_rel + self.skip : pos + length])
            su = read_entries(own, abs_pos + su_rel + self.skip, self.read, self.limit)
            if su.errors:
                d.errors.extend(f"{d.path}: {e}" for e in su.errors)
        if ident == b"\0":
            role, name = "dot", "."
        elif ident == b"\1":
            role, name = "dotdot", ".."
        else:
            role = "dir" if flags & FLAG_DIRECTORY else "file"
            rr = rr_name(su.entries)[0] if su is not None and self.rock_ridge else None
            name = rr if rr not in (None, "", ".", "..") else iso_name(ident, self.joliet)
            name = name.replace("/", "_") or "_"
        key = join(d.path, name)
        if key in keys:
            n = 2
            while f"{key}#{n}" in keys:
                n += 1
            key = f"{key}#{n}"
        keys.add(key)
        rec = Rec(abs_pos, length, lba, fsize, flags, nlen, name, key, role, abs_pos + su_rel, su_len, su)
        if role == "file":
            if fsize:
                start = self.base + lba * SECTOR
                if start + fsize > self.limit or start < self.base:
                    d.errors.append(f"file {key}: extent (LBA {lba}, {fsize} bytes) runs outside the volume")
                else:
                    rec.extents.append(Extent(start, fsize))
            if su is not None:
                rec.symlink = symlink_target(su.entries)
        if role in ("file", "dir"):
            self.by_path.setdefault(key, rec)
        return rec

    # ---- lookups -------------------------------------------------------------------------------------------

    def dir_of_lba(self) -> dict[int, str]:
        """Return ``{LBA: directory path}`` (path table records name directories by extent)."""
        return {(d.extent.offset - self.base) // SECTOR: p for p, d in self.dirs.items()}

    def owned(self) -> list[Extent]:
        """Return every byte the hierarchy's metadata owns: directory extents and continuation areas."""
        out: list[Extent] = []
        for d in self.dirs.values():
            out.append(d.extent)
            for r in d.recs:
                if r.su is not None:
                    out.extend(r.su.areas)
        return out

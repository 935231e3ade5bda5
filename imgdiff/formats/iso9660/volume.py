"""One ISO 9660 volume: the scans (descriptors, both trees, path tables, boot catalog) and the ``iso9660`` node.

:class:`Volume` reads the descriptors, walks the primary tree and the Joliet tree (:class:`~.tree.Tree`), reads
the path tables and the El Torito catalog and maps every file's extent, then builds the node tree.  Containers
(``directories``, ``joliet_directories``, ``files``) get children only where ``ctx.interesting()`` says bytes
differ; any other child is built on demand by key (``Node.expand``) through the ``{container: builder}`` table
:data:`BUILDERS`, so the engine can pair a differing directory in A with its unchanged partner in B.

Bytes of the volume space that no structure claims (gaps between extents, xorriso's trailing padding, unused parts
of continuation blocks) are the ``unused`` node's fields, one per differing MiB; bytes of the region past the
volume space are the ``tail`` node's (a volume parsed on its own; in the whole-image view the disk owns them).

References:
    ECMA-119 6.2 (volume space, System Area), 6.5 (file extents; a file's last sector is its own), 8.4.8 (Volume
    Space Size); libisofs ecma119.c (the order xorriso writes: descriptors, trees, path tables, catalog, file data,
    padding).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from imgdiff.formats.base import ParseContext
from imgdiff.formats.iso9660.c_iso9660 import SECTOR, SYSTEM_AREA, VD_PRIMARY
from imgdiff.formats.iso9660.descriptors import (
    Descriptor,
    descriptor_node,
    read_descriptors,
    root_record,
    root_record_extent,
)
from imgdiff.formats.iso9660.eltorito import (
    Catalog,
    boot_info_csum,
    boot_info_node,
    boot_info_present,
    catalog_node,
    parse_catalog,
)
from imgdiff.formats.iso9660.pathtables import Table, parse_table, table_node, table_refs
from imgdiff.formats.iso9660.records import COPIED_FIXED, RecordBuilder, fixed_fields
from imgdiff.formats.iso9660.tree import Rec, Tree
from imgdiff.formats.iso9660.values import area_fields, blob_display, dec_datetime_seconds, text
from imgdiff.model import Derived, Extent, Field, Node, Value, merge_extents, subtract_extents

READ_CHUNK = 1 << 20


class Target(NamedTuple):
    """A child built on demand: which container it belongs to and its key."""

    container: str
    key: str


@dataclass(slots=True)
class FileInfo:
    """What the volume knows about one file before building its node."""

    rec: Rec
    data: tuple[Extent, ...]
    slack: tuple[Extent, ...]
    owner: str | None = None
    """Path of the file that owns the same data (a hard link or a second name); None when this one owns it."""
    role: str = ""
    """``"boot_catalog"`` or ``"boot_image:<entry key>"`` when El Torito names this file."""


class Volume:
    """The scans of one volume in ``[base, base + size)`` and the builders of its nodes."""

    def __init__(self, ctx: ParseContext, base: int, size: int, label: str,
                 foreign: tuple[Extent, ...] = (), outside_image: Callable[[int], tuple[Extent, ...]] | None = None,
                 tail: bool = True) -> None:
        self.ctx = ctx
        self.base = base
        self.size = size
        self.label = label
        self.foreign = merge_extents(foreign)
        """Bytes of the system area another node owns (the isohybrid MBR/GPT in the whole-image view)."""
        self.outside_image = outside_image
        """Covers for a boot image outside the volume (an appended partition's GPT entry), by LBA."""
        self.with_tail = tail
        """False in the whole-image view, where the disk node owns what follows the volume space."""
        self.errors: list[str] = []
        self.vds = read_descriptors(ctx.read, base, size)
        self.pvd: Descriptor = next(d for d in self.vds if d.type == VD_PRIMARY)
        self.joliet_vd = next((d for d in self.vds if d.key == "joliet"), None)
        vss = self.pvd.value("volume_space_size")
        self.end = base + min(size, vss * SECTOR) if vss * SECTOR >= SYSTEM_AREA + SECTOR else base + size
        if vss * SECTOR > size:
            self.errors.append(f"volume_space_size {vss} sectors is larger than the region ({size} bytes)")
        if self.pvd.value("logical_block_size") != SECTOR:
            self.errors.append(f"logical_block_size {self.pvd.value('logical_block_size')} is not 2048")
        self.tree = Tree(ctx.read, base, self.end, root_record(self.pvd), False, "primary tree")
        self.jtree: Tree | None = None
        if self.joliet_vd is not None:
            self.jtree = Tree(ctx.read, base, self.end, root_record(self.joliet_vd), True, "Joliet tree")
        self.errors.extend(self.tree.errors)
        if self.jtree is not None:
            self.errors.extend(self.jtree.errors)
        self.tables: list[tuple[Table, Tree, bool]] = self._read_tables()
        self.catalog: Catalog | None = self._read_catalog()
        self.files: dict[str, FileInfo] = {}
        self._map_files()
        self._drop_overlaps()
        primary = RecordBuilder(self.tree, ctx.read)
        self.builders = {
            "directories": primary,
            "joliet_directories": RecordBuilder(self.jtree, ctx.read, self.tree, primary) if self.jtree else None,
        }
        self._made: dict[Target, Node | None] = {}

    # ---- scans -------------------------------------------------------------------------------------------------

    def _read_tables(self) -> list[tuple[Table, Tree, bool]]:
        """Return the path tables of the primary and the Joliet descriptor, each with its tree."""
        out: list[tuple[Table, Tree, bool]] = []
        for d, t, key in ((self.pvd, self.tree, "primary"), (self.joliet_vd, self.jtree, "joliet")):
            if d is None or t is None:
                continue
            values = {n: d.value(n) for n in ("path_table_size", "location_of_type_l_path_table",
                                               "location_of_optional_type_l_path_table",
                                               "location_of_type_m_path_table",
                                               "location_of_optional_type_m_path_table")}
            for ref in table_refs(values, self.base, key, "Joliet" if key == "joliet" else "primary"):
                if ref.offset + ref.size > self.end:
                    self.errors.append(f"{ref.label} lies outside the volume")
                    continue
                out.append((parse_table(ref, self.ctx.read, t, key == "joliet"), t, key == "joliet"))
        return out

    def _read_catalog(self) -> Catalog | None:
        """Return the El Torito boot catalog the boot record points to (its file's size, at most 64 sectors)."""
        boot = next((d for d in self.vds if d.key == "boot_record"), None)
        if boot is None:
            return None
        lba = int.from_bytes(boot.raw[71:75], "little")
        off = self.base + lba * SECTOR
        if not (SYSTEM_AREA <= off - self.base and off + SECTOR <= self.end):
            self.errors.append(f"boot catalog pointer {lba} lies outside the volume")
            return None
        cat_rec = next((r for r in self.tree.files if r.lba == lba and r.size), None)
        csize = min(max(SECTOR, cat_rec.size if cat_rec else SECTOR), 64 * SECTOR, self.end - off)
        catalog = parse_catalog(self.ctx.read, off, csize)
        self.errors.extend(f"boot catalog: {e}" for e in catalog.errors)
        return catalog

    def _map_files(self) -> None:
        """Give each file its data and slack extents; the first name of shared data owns it."""
        by_start: dict[int, str] = {}
        cat_off = self.catalog.offset if self.catalog else None
        images = {self.base + img.load_rba * SECTOR: img.entry_key for img in (self.catalog.images if self.catalog else [])}
        trees = [self.tree] + ([self.jtree] if self.jtree is not None else [])
        for t in trees:
            for rec in t.files:
                if t is self.jtree and (rec.path in self.tree.by_path or
                                        (rec.extents and rec.extents[0].offset in by_start)):
                    continue  # the Joliet name of a file the primary tree already placed
                key = rec.path if t is self.tree else f"joliet:{rec.path}"
                slack = []
                for e in rec.extents:
                    end = min(self.end, self.base + -(-(e.end - self.base) // SECTOR) * SECTOR)
                    if end > e.end:
                        slack.append(Extent(e.end, end - e.end))
                info = FileInfo(rec, tuple(rec.extents), tuple(slack))
                if rec.extents:
                    start = rec.extents[0].offset
                    if start in by_start:
                        info.owner = by_start[start]
                        info.data, info.slack = (), ()
                    else:
                        by_start[start] = key
                    if start == cat_off:
                        info.role = "boot_catalog"
                    elif start in images:
                        info.role = f"boot_image:{images[start]}"
                self.files[key] = info

    def _metadata(self) -> list[Extent]:
        """Return the extents of every structure other than file data (system area, descriptors, trees...)."""
        out: list[Extent] = [Extent(self.base, SYSTEM_AREA), *self.foreign]
        out.extend(d.extent for d in self.vds)
        out.extend(Extent(t.ref.offset, t.ref.size) for t, _tree, _j in self.tables)
        out.extend(self.tree.owned())
        if self.jtree is not None:
            out.extend(self.jtree.owned())
        if self.catalog is not None:
            out.append(Extent(self.catalog.offset, self.catalog.size))
        return out

    def _drop_overlaps(self) -> None:
        """Take file data that overlaps metadata or another file's data away from the file (hostile layouts)."""
        taken = list(merge_extents(e for e in self._metadata() if e.length > 0))
        ends = [e.end for e in taken]
        for key, info in sorted(self.files.items(), key=lambda kv: kv[1].data[0].offset if kv[1].data else -1):
            if not info.data or info.role == "boot_catalog":
                continue
            clash = None
            for e in info.data:
                i = bisect.bisect_right(ends, e.offset)
                if i < len(taken) and taken[i].offset < e.end:
                    clash = taken[i]
                    break
            if clash is not None:
                self.errors.append(f"file {info.rec.path}: data overlaps other structures at 0x{clash.offset:x}; "
                                   "its bytes are left to them")
                info.data, info.slack, info.role = (), (), "overlap"
                continue
            for e in (*info.data, *info.slack):
                i = bisect.bisect_right(ends, e.offset)
                taken.insert(i, e)
                ends.insert(i, e.end)

    def owned(self) -> list[Extent]:
        """Return every byte of the volume space some structure claims (the system area included)."""
        out = self._metadata()
        for info in self.files.values():
            if info.role != "boot_catalog":
                out.extend(info.data)
            out.extend(info.slack)
        out.extend(self._hidden_images())
        return out

    def _hidden_images(self) -> list[Extent]:
        """Return El Torito images inside the volume that no file holds (``-e --interval:...`` inside the ISO)."""
        if self.catalog is None:
            return []
        starts = {i.data[0].offset for i in self.files.values() if i.data}
        out = []
        for img in self.catalog.images:
            start = self.base + img.load_rba * SECTOR
            if start in starts or not self.base + SYSTEM_AREA <= start < self.end:
                continue
            n = max(img.sector_count, 1) * 512
            out.append(Extent(start, min(n, self.end - start)))
        return out

    # ---- nodes -------------------------------------------------------------------------------------------------

    def interesting(self, exts: tuple[Extent, ...] | list[Extent]) -> bool:
        """Return True when any of ``exts`` holds differing bytes."""
        return any(self.ctx.interesting(e) for e in exts)

    def build(self) -> Node:
        """Return the ``iso9660`` node."""
        pvd = self.pvd
        volid = text(pvd.raw[40:72])
        root = Node(kind="iso9660", key="iso9660", label=f"ISO 9660 ({volid})" if volid else "ISO 9660",
                    attrs={"scope": True, "fs": "iso9660", "volume_identifier": volid,
                           "volume_space_size": pvd.value("volume_space_size"),
                           "rock_ridge": self.tree.rock_ridge, "joliet": self.jtree is not None,
                           "files": len(self.tree.files), "dirs": len(self.tree.dirs),
                           "modification_date": text(pvd.raw[830:846]),
                           "volume_time": dec_datetime_seconds(pvd.raw[830:847])})
        sys_area = subtract_extents(Extent(self.base, SYSTEM_AREA), self.foreign)
        if sys_area:
            root.children.append(self._system_area(sys_area))
        for d in self.vds:
            root.children.append(self._descriptor(d))
        first: dict[bool, Table] = {}
        for table, tree, joliet in self.tables:
            ref = table.ref
            detail = self.ctx.interesting(Extent(ref.offset, ref.size)) or self.ctx.diff is None
            node = table_node(table, self.ctx.read, tree, first.get(joliet), detail, joliet)
            first.setdefault(joliet, table)
            root.children.append(node)
        root.children.append(self._container("directories", "directories", "iso9660.directories", self.tree))
        if self.jtree is not None:
            root.children.append(self._container("joliet_directories", "Joliet directories",
                                                 "iso9660.joliet_directories", self.jtree))
        if self.catalog is not None:
            root.children.append(catalog_node(self.catalog, self._image_covers, self._interesting_fn()))
        root.children.append(self._files_container())
        hidden = self._hidden_images()
        if hidden:
            root.children.append(self._boot_images(hidden))
        unused = self._unused()
        if unused is not None:
            root.children.append(unused)
        tail = self._tail()
        if tail is not None:
            root.children.append(tail)
        root.extents = merge_extents(e for c in root.children for e in c.extents)
        root.errors.extend(self.errors)
        self.ctx.errors.extend(f"{self.label}: iso9660: {e}" for e in self.errors)
        return root

    def _interesting_fn(self) -> Callable[[Extent], bool] | None:
        return None if self.ctx.diff is None else self.ctx.interesting

    def _system_area(self, exts: list[Extent]) -> Node:
        fields = area_fields("system_area", exts, self.base, self.ctx.read, self._interesting_fn(),
                             lambda n: f"{n} bytes of the system area (logical sectors 0-15)")
        return Node(kind="iso9660.system_area", key="system_area", label="system area",
                    extents=merge_extents(exts), fields=tuple(fields))

    def _descriptor(self, d: Descriptor) -> Node:
        node = descriptor_node(d, self.pvd)
        if d.type in (1, 2):
            tree = self.tree if d.key == "primary" else (self.jtree if d.key == "joliet" else None)
            ext = root_record_extent(d)
            raw = d.raw[ext.offset - d.offset : ext.end - d.offset]
            fields = fixed_fields(raw, ext.offset)
            fields.append(Field("file_identifier", raw[33], (Extent(ext.offset + 33, 1),)))
            child = Node(kind="iso9660.root_record", key="root_record", label="root directory record",
                         extents=(ext,), fields=tuple(fields), attrs={"path": "/", "file_type": "dir"})
            dot = tree.dirs["/"].recs[0] if tree is not None and "/" in tree.dirs and tree.dirs["/"].recs else None
            if dot is not None and dot.role == "dot":
                child.derived = tuple(Derived(name, covers=(f.extents[0].shifted(dot.offset - ext.offset),))
                                      for f in fields if (name := f.name) in COPIED_FIXED)
            node.children.append(child)
        return node

    def _container(self, key: str, label: str, kind: str, tree: Tree) -> Node:
        node = Node(kind=kind, key=key, label=label, extents=merge_extents(tree.owned()),
                    attrs={"count": len(tree.dirs)})
        for path, d in tree.dirs.items():
            owned = [d.extent] + [a for r in d.recs if r.su is not None for a in r.su.areas]
            if self.ctx.diff is None or self.interesting(owned):
                child = self.expand(Target(key, path))
                if child is not None:
                    node.children.append(child)
        node.expand = lambda k, c=key: self.expand(Target(c, k))
        return node

    def _files_container(self) -> Node:
        exts = [e for i in self.files.values() if i.role != "boot_catalog" for e in (*i.data, *i.slack)]
        node = Node(kind="iso9660.files", key="files", label="files", extents=merge_extents(exts),
                    attrs={"count": len(self.files)})
        for key, info in self.files.items():
            if self.ctx.diff is None or self.interesting(info.data + info.slack) or info.role.startswith("boot_image"):
                child = self.expand(Target("files", key))
                if child is not None:
                    node.children.append(child)
        node.expand = lambda k: self.expand(Target("files", k))
        return node

    def expand(self, target: Target) -> Node | None:
        """Return the child ``target`` (built once), or None when there is no such object."""
        if target in self._made:
            return self._made[target]
        build = BUILDERS.get(target.container)
        node = build(self, target.key) if build is not None else None
        self._made[target] = node
        return node

    def _directory(self, key: str, joliet: bool) -> Node | None:
        builder = self.builders["joliet_directories" if joliet else "directories"]
        tree = self.jtree if joliet else self.tree
        if builder is None or tree is None or key not in tree.dirs:
            return None
        return builder.directory_node(tree.dirs[key], self._interesting_fn())

    def _file(self, key: str) -> Node | None:
        info = self.files.get(key)
        if info is None:
            return None
        rec = info.rec
        from imgdiff.formats.iso9660.records import file_type

        attrs: dict[str, Value] = {"path": rec.path, "file_type": file_type(rec), "size": rec.size, "lba": rec.lba}
        if key.startswith("joliet:"):
            attrs["joliet_only"] = True
        if rec.symlink is not None:
            attrs["symlink"] = rec.symlink
        data = info.data if info.role != "boot_catalog" else ()
        node = Node(kind="iso9660.file", key=key, label=f"file {rec.path}", attrs=attrs,
                    extents=merge_extents([*data, *info.slack]))
        fields: list[Field] = []
        if info.owner is not None:
            attrs["same_data_as"] = info.owner
        elif info.role == "overlap":
            attrs["overlaps"] = True
        elif info.role == "boot_catalog":
            attrs["boot_catalog"] = True
        elif info.data:  # an image inside (/boot/efi.img) is parsed by the engine's nesting rounds
            fields.extend(self._data_fields(info, node, attrs))
        if info.role.startswith("boot_image:"):
            attrs["eltorito"] = info.role.split(":", 1)[1]
        if info.slack:
            blob = b"".join(self.ctx.read(e.offset, e.length) for e in info.slack)
            fields.append(Field("slack", _blob_value(blob), info.slack, blob_display(blob)))
        node.fields = tuple(fields)
        return node

    def _data_fields(self, info: FileInfo, node: Node, attrs: dict[str, Value]) -> list[Field]:
        """Return the ``data`` field (and the boot info table child when ``-boot-info-table`` patched the image)."""
        rec = info.rec
        data = info.data
        attrs["content"] = True
        if info.role.startswith("boot_image:") and len(data) == 1:
            head = self.ctx.read(data[0].offset, min(64, data[0].length))
            if boot_info_present(head, rec.lba, rec.size):
                start = data[0].offset
                covers: dict[str, tuple[Extent, ...]] = {
                    "bi_file": (Extent(rec.offset + 2, 8),),
                    "bi_length": (Extent(rec.offset + 10, 8),),
                    "bi_csum": (Extent(start + 64, rec.size - 64),) if rec.size > 64 else (),
                    "bi_pvd": (),
                }
                table = boot_info_node(start, self.ctx.read(start, 64), covers)
                stored = int.from_bytes(head[20:24], "little")
                if stored != boot_info_csum(self.ctx.read, start, rec.size):
                    table.errors.append("bi_csum does not match the image bytes")
                node.children.append(table)
                attrs["boot_info_table"] = True
                data = (Extent(start, 8), Extent(start + 64, data[0].length - 64)) if data[0].length > 64 else (
                    Extent(start, 8),)
        return [Field("data", self._hash(data), data, f"{rec.size} bytes")]

    def _hash(self, exts: tuple[Extent, ...]) -> str:
        h = hashlib.sha256()
        for e in exts:
            pos = e.offset
            while pos < e.end:
                n = min(READ_CHUNK, e.end - pos)
                h.update(self.ctx.read(pos, n))
                pos += n
        return h.hexdigest()

    def _image_covers(self, lba: int) -> tuple[Extent, ...]:
        """Return what places the boot image at ``lba``: its file's record fields, or an appended partition."""
        start = self.base + lba * SECTOR
        for info in self.files.values():
            if info.data and info.data[0].offset == start:
                return (Extent(info.rec.offset + 2, 8), Extent(info.rec.offset + 10, 8))
        if start >= self.end and self.outside_image is not None:
            return self.outside_image(lba)
        return ()

    def _boot_images(self, hidden: list[Extent]) -> Node:
        node = Node(kind="iso9660.boot_images", key="boot_images", label="El Torito images outside the tree",
                    extents=merge_extents(hidden))
        for e in hidden:
            lba = (e.offset - self.base) // SECTOR
            child = Node(kind="iso9660.boot_image", key=f"lba:{lba}", label=f"boot image at LBA {lba}",
                         extents=(e,), fields=(Field("data", self._hash((e,)), (e,), f"{e.length} bytes"),),
                         attrs={"content": True, "path": f"(El Torito image at LBA {lba})"})
            node.children.append(child)
        return node

    def _unused(self) -> Node | None:
        owned = merge_extents([e for e in self.owned() if e.length > 0])
        gaps = subtract_extents(Extent(self.base, self.end - self.base), owned, presorted=True)
        if not gaps:
            return None
        fields = area_fields("unused", gaps, self.base, self.ctx.read, self._interesting_fn(),
                             lambda n: f"{n // SECTOR} sectors no structure uses")
        return Node(kind="iso9660.unused", key="unused", label="unused sectors", extents=merge_extents(gaps),
                    fields=tuple(fields))

    def _tail(self) -> Node | None:
        n = self.base + self.size - self.end
        if n <= 0 or not self.with_tail:
            return None
        ext = [Extent(self.end, n)]
        fields = area_fields("outside", ext, self.base, self.ctx.read, self._interesting_fn(),
                             lambda k: f"{k} bytes after volume_space_size")
        return Node(kind="iso9660.tail", key="tail", label="after the volume space", extents=tuple(ext),
                    fields=tuple(fields))


def _blob_value(blob: bytes) -> Value:
    if len(blob) <= 64:
        return bytes(blob)
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


BUILDERS: dict[str, Callable[[Volume, str], Node | None]] = {
    "directories": lambda v, k: v._directory(k, False),
    "joliet_directories": lambda v, k: v._directory(k, True),
    "files": Volume._file,
}
"""How a container's child is built from its key (``Node.expand`` goes through here)."""

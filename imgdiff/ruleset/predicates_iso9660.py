"""ISO 9660 checks for the iso9660 rules: xorriso's date-derived identifiers, build-time stamps, copied mtimes.

xorriso (libisofs 1.5.4) derives identifiers from the volume date when one is pinned (``SOURCE_DATE_EPOCH`` sets
``-volume_date uuid`` to ``YYYYMMDDhhmmss00`` and ``-boot_image any gpt_disk_guid=volume_date_uuid``):

- isohybrid MBR id (MBR offset 440) = CRC-32 of the 16 uuid characters (make_isohybrid_mbr.c iso_make_mbr_id);
  without a uuid it is the CRC of the time_t modification time if one was set, else ``tv_sec ^ (tv_usec * 2000)``.
- GPT disk GUID = the uuid's characters 0-8, 14-15, 9-13 as bytes, marked version 4 (byte 7 high nibble 4, byte 8
  variant 10); partition GUID k = the disk GUID with byte 9 (and 10-12) XORed with k (ecma119.c
  gpt_disk_guid_setup, system_area.c iso_gpt_uuid, iso_mark_guid_version_4).  Without a uuid both are random.

Verified on xorriso 1.5.4 images: SOURCE_DATE_EPOCH=1700000000 gives the uuid ``2023111422132000``, MBR id
0x624e3853 and disk GUID 33323032-3133-4431-b230-303231333230.

Nodes are looked up in both trees by node path (``"/".join(key chain)``, the same string as
:attr:`Difference.node_path`), built once per comparison and cached in ``ctx.cache``.
"""

from __future__ import annotations

import uuid
import zlib

from imgdiff.model import Difference, Finding, Node
from imgdiff.ruleset.predicates import ExplainContext, annotation, predicate

STAMP_SLACK = 2
"""Seconds a record stamp may be off the volume time and still count as "written at build time"."""


def _index(ctx: ExplainContext) -> tuple[dict[str, Node], dict[str, Node]]:
    cached = ctx.cache.get("iso9660_index")
    if cached is None:
        cached = (_paths(ctx.tree_a), _paths(ctx.tree_b))
        ctx.cache["iso9660_index"] = cached
    return cached  # type: ignore[no-any-return]


def _paths(root: Node | None) -> dict[str, Node]:
    out: dict[str, Node] = {}
    if root is None:
        return out
    for keys, node in root.walk():
        if node.kind.startswith(("iso9660", "gpt", "mbr", "partition", "disk")):
            out["/".join(keys)] = node
    return out


def _volume_paths(root: Node | None) -> list[tuple[str, Node]]:
    """Return ``(node path, node)`` of every iso9660 node of a tree, deepest first."""
    if root is None:
        return []
    out = [("/".join(keys), n) for keys, n in root.walk() if n.kind == "iso9660"]
    return sorted(out, key=lambda pn: -len(pn[0]))


def _volume(root: Node | None, node_path: str, paths: list[tuple[str, Node]] | None = None) -> Node | None:
    """Return the iso9660 node that ``node_path`` lies in (or the ISO of a hybrid disk for its MBR/GPT)."""
    if root is None:
        return None
    for path, node in paths if paths is not None else _volume_paths(root):
        if node_path == path or node_path.startswith(path + "/"):
            return node
    if root.attrs.get("table") == "iso9660":
        return next((c for c in root.children if c.kind == "iso9660"), None)
    return None


def _volumes(d: Difference, ctx: ExplainContext) -> tuple[Node | None, Node | None]:
    paths = ctx.cache.get("iso9660_volume_paths")
    if paths is None:
        paths = ctx.cache["iso9660_volume_paths"] = (_volume_paths(ctx.tree_a), _volume_paths(ctx.tree_b))
    return _volume(ctx.tree_a, d.node_path, paths[0]), _volume(ctx.tree_b, d.node_path, paths[1])


def xorriso_uuid_guid(uuid16: str, counter: int = 0) -> str:
    """Return the GPT GUID xorriso derives from a 16-digit volume uuid (``counter`` 0: disk, k: partition k)."""
    raw = uuid16.encode("ascii")
    b = bytearray(raw[0:9] + raw[14:16] + raw[9:14])
    b[7] = (b[7] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    for i in range(4):
        b[9 + i] ^= (counter >> (8 * i)) & 0xFF
    return str(uuid.UUID(bytes_le=bytes(b)))


def xorriso_mbr_id(uuid16: str) -> int:
    """Return the isohybrid MBR id xorriso derives from a 16-digit volume uuid (CRC-32 of its characters)."""
    return zlib.crc32(uuid16.encode("ascii")) & 0xFFFFFFFF


def _uuid(vol: Node | None) -> str | None:
    if vol is None:
        return None
    v = vol.attrs.get("modification_date")
    return v if isinstance(v, str) and len(v) == 16 and v.isdigit() and v != "0" * 16 else None


def _guid_derived(value: object, uuid16: str | None, field: str) -> bool:
    if uuid16 is None or not isinstance(value, str):
        return False
    if field == "DiskGUID":
        return value == xorriso_uuid_guid(uuid16)
    return any(value == xorriso_uuid_guid(uuid16, k) for k in range(1, 256))


def _id_derived(d: Difference, vol_a: Node | None, vol_b: Node | None) -> tuple[bool, bool]:
    """Return whether A's and B's value of an identifier field is xorriso's derivation from its volume date."""
    ua, ub = _uuid(vol_a), _uuid(vol_b)
    if d.field == "UniqueMBRDiskSignature":
        return (ua is not None and d.a == xorriso_mbr_id(ua), ub is not None and d.b == xorriso_mbr_id(ub))
    return _guid_derived(d.a, ua, d.field), _guid_derived(d.b, ub, d.field)


def _hybrid(d: Difference, ctx: ExplainContext) -> bool:
    return any(root is not None and root.attrs.get("table") == "iso9660" for root in (ctx.tree_a, ctx.tree_b))


@predicate
def iso_hybrid_table(diff: Difference, ctx: ExplainContext) -> bool:
    """True for a field of the MBR/GPT of an isohybrid ISO image (xorriso wrote the table)."""
    return _hybrid(diff, ctx)


@predicate
def iso_ids_from_volume_date(diff: Difference, ctx: ExplainContext) -> bool:
    """True when both sides' GUID / MBR id is xorriso's derivation from that side's volume date (uuid)."""
    if not _hybrid(diff, ctx):
        return False
    va, vb = _volumes(diff, ctx)
    da, db = _id_derived(diff, va, vb)
    return da and db


@predicate
def iso_ids_not_from_volume_date(diff: Difference, ctx: ExplainContext) -> bool:
    """True when a side's GUID / MBR id is not derived from its volume date (random, or xorriso's clock)."""
    if not _hybrid(diff, ctx):
        return False
    va, vb = _volumes(diff, ctx)
    da, db = _id_derived(diff, va, vb)
    return not (da and db)


def _volume_time(vol: Node | None) -> int | None:
    v = vol.attrs.get("volume_time") if vol is not None else None
    return v if isinstance(v, int) else None


def _is_volume_time(d: Difference, ctx: ExplainContext) -> bool:
    va, vb = _volumes(d, ctx)
    ta, tb = _volume_time(va), _volume_time(vb)
    if ta is None or tb is None or not isinstance(d.a, int) or not isinstance(d.b, int):
        return False
    return abs(d.a - ta) <= STAMP_SLACK and abs(d.b - tb) <= STAMP_SLACK


@predicate
def iso_stamp_is_volume_time(diff: Difference, ctx: ExplainContext) -> bool:
    """True when a record time equals its image's own volume time on both sides (stamped at build time).

    xorriso gives nodes without a disk source (the root, implicit directories, the boot catalog) the image
    creation time (``-iso_nowtime``, the clock unless SOURCE_DATE_EPOCH pins it).
    """
    return _is_volume_time(diff, ctx)


@predicate
def iso_stamp_is_not_volume_time(diff: Difference, ctx: ExplainContext) -> bool:
    """True when a record time is not the build time on both sides (it came from the source file)."""
    return isinstance(diff.a, int) and isinstance(diff.b, int) and not _is_volume_time(diff, ctx)


def _field_value(nodes: dict[str, Node], path: str, name: str) -> object:
    n = nodes.get(path)
    f = n.field_named(name) if n is not None else None
    return f.value if f is not None else None


@predicate
def iso_tf_follows_modify(diff: Difference, ctx: ExplainContext) -> bool:
    """True when a TF access/attributes stamp equals the record's own TF modify stamp on both sides.

    With SOURCE_DATE_EPOCH xorriso sets atime and ctime to the mtime (``-volume_date all_file_dates
    set_to_mtime``), so they follow a changed mtime and belong to its finding.
    """
    ia, ib = _index(ctx)
    prefix = diff.field.split(".", 1)[0]
    modify = f"{prefix}.modify"
    return (_field_value(ia, diff.node_path, modify) == diff.a and diff.a is not None
            and _field_value(ib, diff.node_path, modify) == diff.b and diff.b is not None)


@predicate
def iso_tf_host_times(diff: Difference, ctx: ExplainContext) -> bool:
    """True when a TF access/attributes stamp differs from the record's TF modify stamp on some side.

    That is the source file's own atime/ctime, which xorriso records as is without SOURCE_DATE_EPOCH.
    """
    return not iso_tf_follows_modify(diff, ctx) and isinstance(diff.a, int) and isinstance(diff.b, int)


def _ancestors(nodes: dict[str, Node], path: str) -> list[Node]:
    parts = path.split("/")
    out: list[Node] = []
    for i in range(len(parts) - 1, 0, -1):
        n = nodes.get("/".join(parts[:i]))
        if n is not None:
            out.append(n)
    return out


def _in_efi_image(nodes: dict[str, Node], path: str) -> bool:
    for n in _ancestors(nodes, path):
        if n.kind == "iso9660.file" and n.attrs.get("nested"):
            p = str(n.attrs.get("path", ""))
            return bool(n.attrs.get("eltorito")) or p.lower().endswith("efi.img")
        if n.kind == "partition" and n.attrs.get("appended"):
            return n.attrs.get("ptype") == "esp" or bool(n.attrs.get("copy_of"))
    return False


@predicate
def iso_in_efi_image(diff: Difference, ctx: ExplainContext) -> bool:
    """True for a field inside the EFI boot image of an ISO (``/boot/efi.img``, the appended ESP)."""
    ia, ib = _index(ctx)
    return _in_efi_image(ia, diff.node_path) or _in_efi_image(ib, diff.node_path)


@predicate
def iso_efi_image_id_or_time(diff: Difference, ctx: ExplainContext) -> bool:
    """True for a vfat boot sector or directory entry field inside the EFI boot image of an ISO."""
    return diff.kind in ("vfat.boot_sector", "vfat.dirent") and iso_in_efi_image(diff, ctx)


@predicate
def iso_same_file_moved(diff: Difference, ctx: ExplainContext) -> bool:
    """True when a record's extent moved but the file it places has the same bytes on both sides."""
    ia, ib = _index(ctx)
    na, nb = ia.get(diff.node_path), ib.get(diff.node_path)
    if na is None or nb is None:
        return False
    if na.field_named("data_length") is not None and _field_value(ia, diff.node_path, "data_length") != \
            _field_value(ib, diff.node_path, "data_length"):
        return False
    path = na.attrs.get("path")
    if na.attrs.get("file_type") == "dir" or not isinstance(path, str):
        return True
    fa = _file(ia, diff.node_path, path)
    fb = _file(ib, diff.node_path, path)
    if fa is None or fb is None:
        return True
    return _data_value(fa) == _data_value(fb)


def _file(nodes: dict[str, Node], node_path: str, path: str) -> Node | None:
    parts = node_path.split("/")
    for i in range(len(parts), 0, -1):
        n = nodes.get("/".join(parts[:i]))
        if n is not None and n.kind == "iso9660":
            files = n.child("files")
            return files.child(path) if files is not None else None
    return None


def _data_value(n: Node) -> object:
    f = n.field_named("data")
    if f is not None:
        return f.value
    return n.attrs.get("sha256")


def _owning_file(nodes: dict[str, Node], node_path: str) -> Node | None:
    for n in _ancestors(nodes, node_path + "/x"):
        if n.kind == "iso9660.file":
            return n
    return None


@predicate
def iso_in_moved_file(diff: Difference, ctx: ExplainContext) -> bool:
    """True for a field inside a file (its nested filesystem) that is stored at another LBA with the same bytes."""
    ia, ib = _index(ctx)
    fa, fb = _owning_file(ia, diff.node_path), _owning_file(ib, diff.node_path)
    if fa is None or fb is None:
        key = diff.node_path
        fa = fa or _expand_file(ctx.tree_a, key)
        fb = fb or _expand_file(ctx.tree_b, key)
    if fa is None or fb is None:
        return False
    va = _data_value(fa)
    return fa.attrs.get("lba") != fb.attrs.get("lba") and va is not None and va == _data_value(fb)


def _expand_file(root: Node | None, node_path: str) -> Node | None:
    """Return the file node of ``node_path`` (``.../files/<path>/...``), built on demand when it is not yet."""
    if root is None or "/files/" not in node_path:
        return None
    head, rest = node_path.split("/files/", 1)
    node: Node | None = root
    for key in head.split("/")[1:]:
        node = node.child(key) if node is not None else None
    files = node.child("files") if node is not None else None
    if files is None:
        return None
    parts = rest.split("/")
    for i in range(len(parts), 0, -1):
        found = files.child("/".join(parts[:i]))
        if found is not None:
            return found
    return None


@annotation
def iso_date_source(finding: Finding, ctx: ExplainContext) -> str:
    """Say per image whether xorriso's volume date was pinned (ids derived from it) or its clock."""
    d = finding.causes[0]
    out = []
    for side, root in (("A", ctx.tree_a), ("B", ctx.tree_b)):
        vol = _volume(root, d.node_path)
        u = _uuid(vol)
        if root is None or vol is None or u is None:
            out.append(f"{side}: no volume date")
            continue
        mbr = next((c for c in root.children if c.kind.startswith("mbr")), None) if root.attrs.get("table") else None
        sig = mbr.field_named("UniqueMBRDiskSignature") if mbr is not None else None
        if sig is None:
            out.append(f"{side}: volume date {u} (no isohybrid MBR id to tell whether it was pinned)")
        elif sig.value == xorriso_mbr_id(u):
            out.append(f"{side}: volume date {u} was pinned (MBR id is its CRC-32: SOURCE_DATE_EPOCH or "
                       "-volume_date uuid was set)")
        else:
            out.append(f"{side}: volume date {u} is xorriso's clock (MBR id not derived from it: no "
                       "SOURCE_DATE_EPOCH)")
    return "; ".join(out)

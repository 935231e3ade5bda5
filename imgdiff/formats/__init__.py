"""The format registry and detection: which parser owns a region.

``FORMATS`` is ordered most specific first.  :func:`parse_image` parses a whole image; nested regions
(partitions) go through :func:`parse_region`, which falls back to a raw node and records why when a parser fails,
so a corrupt filesystem gives a partial result instead of an abort.
"""

from __future__ import annotations

import struct
from types import ModuleType

from imgdiff.errors import ImgdiffError
from imgdiff.formats import gpt, iso9660
from imgdiff.formats.base import ParseContext, raw_node
from imgdiff.model import Node

REGISTRY: tuple[str, ...] = (
    "imgdiff.formats.iso9660",
    "imgdiff.formats.ext4",
    "imgdiff.formats.vfat",
    "imgdiff.formats.verity",
    "imgdiff.formats.verity.sig",
    "imgdiff.formats.luks2",
    "imgdiff.formats.erofs",
    "imgdiff.formats.btrfs",
    "imgdiff.formats.squashfs",
)
"""The format modules tried on a region (a partition, a whole image, a nested file), most specific first.

Each module provides ``NAME``, ``recognizes(head, size)`` and ``parse(ctx, base, size, label)`` (the
:class:`~imgdiff.formats.base.Format` protocol).  Adding a format is one line here.
"""

FILESYSTEMS: list[ModuleType] = []
"""The loaded :data:`REGISTRY` modules (plus any added by :func:`register`), in the order they are tried."""

HEAD = 0x11000
"""Bytes of a region handed to ``recognizes``: 68 KiB, so that btrfs's superblock (at 64 KiB) is inside."""


def register(module: ModuleType) -> ModuleType:
    """Add a filesystem module (with NAME, recognizes, parse) to the registry and return it."""
    if module not in FILESYSTEMS:
        FILESYSTEMS.append(module)
    return module


def _load_builtin() -> None:
    import importlib

    for name in REGISTRY:
        try:
            register(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def parse_region(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the node of a filesystem region, or a raw node saying what could not be parsed."""
    if not FILESYSTEMS:
        _load_builtin()
    head = ctx.read(base, min(HEAD, size))
    for mod in FILESYSTEMS:
        try:
            if not mod.recognizes(head, size):
                continue
        except (IndexError, struct.error):
            continue
        try:
            node: Node = mod.parse(ctx, base, size, label)
            return node
        except (ImgdiffError, ValueError, struct.error, IndexError, KeyError, EOFError, OverflowError) as exc:
            msg = f"{label}: {mod.NAME} could not be parsed: {exc}"
            ctx.errors.append(msg)
            sig = _signature(mod, head)
            short = sig is not None and sig[2] > size
            node = raw_node(base, size, f"{mod.NAME} ({'truncated' if short else 'unparsed'})")
            node.attrs["format"] = node.label
            node.errors.append(msg)
            if short and sig is not None:
                node.errors.append(_too_short(ctx, sig, base, size, label))
                ctx.errors.append(node.errors[-1])
            return node
    for mod in FILESYSTEMS:
        sig = _signature(mod, head)
        if sig is not None:  # the magic is there, but the region is too short for recognizes()
            return _truncated(ctx, mod, sig, base, size, label)
    return raw_node(base, size, "unrecognised data")


def _signature(mod: ModuleType, head: bytes) -> tuple[str, str, int] | None:
    """Return ``mod.signature(head)``: (what was found, what it belongs to, bytes that needs; 0 if unknown)."""
    probe = getattr(mod, "signature", None)
    if probe is None:
        return None
    try:
        sig: tuple[str, str, int] | None = probe(head)
    except (IndexError, struct.error, ValueError):
        return None
    return sig


def _too_short(ctx: ParseContext, sig: tuple[str, str, int], base: int, size: int, label: str) -> str:
    """Return the error line of a region whose format signature survives but whose bytes are cut short."""
    found, unit, needs = sig
    whole = base == 0 and size == ctx.src.size
    where = f"the image ends at {size} bytes" if whole else f"the region is {size} bytes"
    need = f"the {unit} needs {needs} bytes" if needs > size else f"that is too short for the {unit}"
    text = f"{found} found, but {where}; {need} (truncated?)"
    return text if whole else f"{label}: {text}"


def _truncated(
    ctx: ParseContext, mod: ModuleType, sig: tuple[str, str, int], base: int, size: int, label: str
) -> Node:
    """Return the raw node of a region that carries ``mod``'s signature but is too short to parse."""
    node = raw_node(base, size, f"{mod.NAME} (truncated)")
    node.attrs["format"] = node.label
    node.errors.append(_too_short(ctx, sig, base, size, label))
    ctx.errors.append(node.errors[-1])
    return node


def parse_image(ctx: ParseContext) -> Node:
    """Return the root node of a whole image: a partitioned disk, or a bare filesystem, or raw data."""
    ctx.nested = parse_region
    size = ctx.src.size
    head = ctx.read(0, min(HEAD, size))
    root: Node
    if iso9660.recognizes(head, size):  # before GPT: an isohybrid ISO's MBR/GPT are a view of the ISO
        try:
            return iso9660.parse_image(ctx)
        except (ImgdiffError, ValueError, struct.error) as exc:
            ctx.errors.append(f"ISO 9660 volume could not be parsed: {exc}")
    if size >= 1024 and gpt.recognizes(head, size):
        try:
            root = gpt.parse(ctx, 0, size, "disk")
        except (ImgdiffError, ValueError, struct.error) as exc:
            ctx.errors.append(f"partition table could not be parsed: {exc}")
            root = _bare(ctx, size)
    elif (sig := _signature(gpt, head)) is not None:  # a GPT header, but too short a disk to parse
        root = Node(kind="image", key="disk", label="image", extents=raw_node(0, size, "").extents)
        root.attrs["table"] = "none"
        root.children.append(_truncated(ctx, gpt, sig, 0, size, "disk"))
    else:
        root = _bare(ctx, size)
    return root


def _bare(ctx: ParseContext, size: int) -> Node:
    root = Node(kind="image", key="disk", label="image", attrs={"table": "none"})
    if size:
        root.extents = (raw_node(0, size, "").extents)
        child = parse_region(ctx, 0, size, "image")
        child.attrs.setdefault("scope", True)
        root.children.append(child)
    return root


def image_format(root: Node) -> str:
    """Return a short description of what was detected: ``"gpt"``, ``"mbr"``, ``"ext4"``, ``"vfat (truncated)"``,
    ``"raw"``."""
    table = root.attrs.get("table")
    if table in ("gpt", "mbr"):
        return str(table)
    if root.children:  # a bare filesystem, or raw data (``vfat (truncated)`` when a signature survived)
        child = root.children[0]
        return str(child.attrs.get("format") or child.kind.split(".")[0])
    return "empty"

"""The format registry and detection: which parser owns a region.

:data:`REGISTRY` names the format packages tried on a region, most specific first; :func:`load` imports them and
checks each against the :class:`~imgdiff.formats.base.Format` protocol.  :func:`parse_image` parses a whole image;
nested regions (partitions) go through :func:`parse_region`, which falls back to a raw node and records why when a
parser fails, so a corrupt filesystem gives a partial result instead of an abort.
"""

from __future__ import annotations

import importlib
import struct
from types import ModuleType

from imgdiff.errors import ImgdiffError
from imgdiff.formats import gpt, iso9660
from imgdiff.formats.base import HEAD_BYTES, Format, ParseContext, raw_node
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
"""The format packages tried on a region (a partition, a whole image, a nested file), most specific first.

Each is a module implementing :class:`~imgdiff.formats.base.Format` (``NAME``, ``recognizes(head, size)``,
``parse(ctx, base, size, label)``; optionally ``signature(head)`` and ``HEAD_BYTES``).  Adding a format is one
line here.  Partition tables (:mod:`imgdiff.formats.gpt`) and the isohybrid view of an ISO are tried on a whole
image first, by :func:`parse_image`.
"""

FILESYSTEMS: list[ModuleType] = []
"""The loaded :data:`REGISTRY` modules (plus any added by :func:`register`), in the order they are tried."""

HEAD = HEAD_BYTES
"""Bytes of a region read for detection unless a format asks for more (see :func:`head_bytes`)."""


def register(module: ModuleType) -> ModuleType:
    """Add a format module to the registry and return it; raise TypeError when it is not a :class:`Format`."""
    if not isinstance(module, Format):
        missing = [m for m in ("NAME", "recognizes", "parse") if not hasattr(module, m)]
        raise TypeError(f"{module.__name__} is not a format module: it lacks {', '.join(missing)}")
    if module not in FILESYSTEMS:
        FILESYSTEMS.append(module)
    return module


def load() -> list[ModuleType]:
    """Import the :data:`REGISTRY` modules (once) and return the format modules in the order they are tried."""
    if not FILESYSTEMS:
        for name in REGISTRY:
            register(importlib.import_module(name))
    return FILESYSTEMS


def head_bytes() -> int:
    """Return how many bytes of a region detection reads: :data:`HEAD`, or more when a format's ``HEAD_BYTES``
    asks for it."""
    return max([HEAD, *(int(getattr(mod, "HEAD_BYTES", 0)) for mod in load())])


def parse_region(ctx: ParseContext, base: int, size: int, label: str) -> Node:
    """Return the node of a filesystem region, or a raw node saying what could not be parsed."""
    head = ctx.read(base, min(head_bytes(), size))
    for mod in load():
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

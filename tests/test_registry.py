"""The format and content-recogniser registries: every entry loads and satisfies its protocol, a module that does
not is refused by name, and a format's ``HEAD_BYTES`` reaches detection (a magic past the first 64 KiB)."""

from __future__ import annotations

import importlib
import types

import pytest

from imgdiff import content
from imgdiff.formats import FILESYSTEMS, REGISTRY, head_bytes, load, parse_region, register
from imgdiff.formats.base import HEAD_BYTES, Format, ParseContext
from imgdiff.model import Extent, Field, Node
from imgdiff.source import BytesSource


def test_every_registry_entry_is_a_format_in_order() -> None:
    mods = load()
    assert [m.__name__ for m in mods[: len(REGISTRY)]] == list(REGISTRY)
    assert all(isinstance(m, Format) for m in mods)
    names = [m.NAME for m in mods]
    assert len(set(names)) == len(names), names
    assert names[:3] == ["iso9660", "ext4", "vfat"]


def test_register_refuses_a_module_without_the_protocol() -> None:
    bogus = types.ModuleType("imgdiff_test_bogus")
    bogus.NAME = "bogus"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="imgdiff_test_bogus is not a format module: it lacks recognizes, parse"):
        register(bogus)
    assert bogus not in FILESYSTEMS


def _magic_at_128k() -> types.ModuleType:
    """A format whose magic sits at 128 KiB + 0x40, past what any registered format asks detection to read."""
    mod = types.ModuleType("imgdiff_test_deep")
    mod.NAME = "deep"  # type: ignore[attr-defined]
    mod.HEAD_BYTES = 0x21000  # type: ignore[attr-defined]

    def recognizes(head: bytes, size: int) -> bool:
        return head[0x20040:0x20048] == b"DEEPMAGC"

    def parse(ctx: ParseContext, base: int, size: int, label: str) -> Node:
        f = Field.at("magic", ctx.read(base + 0x20040, 8), base + 0x20040, 8)
        return Node(kind="deep", key="deep", label=label, extents=(Extent(base, size),), fields=(f,))

    mod.recognizes = recognizes  # type: ignore[attr-defined]
    mod.parse = parse  # type: ignore[attr-defined]
    return mod


def test_head_bytes_of_a_format_reaches_detection() -> None:
    data = bytearray(0x30000)
    data[0x20040:0x20048] = b"DEEPMAGC"
    ctx = ParseContext(src=BytesSource(bytes(data)))
    assert HEAD_BYTES == 65536
    assert head_bytes() == 0x11000  # btrfs asks for its superblock at 64 KiB
    assert parse_region(ctx, 0, len(data), "image").label == "unrecognised data"
    mod = register(_magic_at_128k())
    try:
        assert head_bytes() == 0x21000
        node = parse_region(ctx, 0, len(data), "image")
        assert (node.kind, node.fields[0].value) == ("deep", b"DEEPMAGC")
    finally:
        FILESYSTEMS.remove(mod)
    assert head_bytes() == 0x11000


def test_content_registry_runs_recognisers_in_order() -> None:
    assert [fn.__name__ for fn in content.recognizers()] == ["cpio_newc", "gzip", "xz", "zstd", "elf_build_id", "pe",
                                                             "pyc"]
    for name in content.REGISTRY:
        assert isinstance(importlib.import_module(name), content.RecognizerModule), name

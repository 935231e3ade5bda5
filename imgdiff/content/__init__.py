"""Content recognisers: which named fields inside a changed file of a known format differ.

The engine calls :func:`inspect` for every file whose data differs, with the head of both versions; each
:class:`ContentField` becomes a difference of kind ``content.<format>`` (``content.gzip`` / ``MTIME``) at the
absolute bytes of that field, so rules can name causes such as a gzip header time or a PE TimeDateStamp.

These are file formats seen inside a filesystem's files, apart from the on-disk formats of
:mod:`imgdiff.formats` (whole images and regions).  :data:`REGISTRY` lists the recogniser modules in the order
they run; each provides ``RECOGNIZERS``, a tuple of :data:`Recognizer` functions (the :class:`RecognizerModule`
protocol).  Adding a recogniser module is one line there.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from imgdiff.content.common import ContentField, Recognizer

__all__ = ["INSPECT_BYTES", "REGISTRY", "ContentField", "Recognizer", "RecognizerModule", "inspect", "recognizers"]

INSPECT_BYTES = 1 << 20
"""How much of each version of a file the recognisers see."""

REGISTRY: tuple[str, ...] = (
    "imgdiff.content.cpio",  # newc archives (and the compressed archive after an early one)
    "imgdiff.content.compressed",  # gzip, xz, zstd headers and payloads
    "imgdiff.content.elf",  # GNU build ID
    "imgdiff.content.pe",  # PE/COFF TimeDateStamp, CheckSum, Authenticode certificate
    "imgdiff.content.pyc",  # .pyc header (mtime or hash)
)
"""The recogniser modules, in the order their recognisers run."""


@runtime_checkable
class RecognizerModule(Protocol):
    """A recogniser module: the recognisers it provides, in the order they run."""

    RECOGNIZERS: tuple[Recognizer, ...]


_LOADED: list[Recognizer] = []


def recognizers() -> tuple[Recognizer, ...]:
    """Return every recogniser of the :data:`REGISTRY` modules, in order (the modules are imported on first use)."""
    if not _LOADED:
        found: list[Recognizer] = []
        for name in REGISTRY:
            mod = importlib.import_module(name)
            if not isinstance(mod, RecognizerModule) or not all(callable(fn) for fn in mod.RECOGNIZERS):
                raise TypeError(f"{name} is not a content recogniser module (it needs a RECOGNIZERS tuple)")
            found.extend(mod.RECOGNIZERS)
        _LOADED[:] = found
    return tuple(_LOADED)


def inspect(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """Return the differing named fields of a changed file, from every recogniser that knows its format."""
    out: list[ContentField] = []
    for fn in recognizers():
        try:
            out.extend(fn(path, head_a, head_b, size_a, size_b))
        except (ValueError, IndexError, KeyError, EOFError, OverflowError, UnicodeError) as exc:
            del exc  # a malformed embedded format is just not recognised
            continue
    return out

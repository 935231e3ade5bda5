"""Content-level inspection of a changed file: which named fields inside a known file format differ.

The engine calls :func:`inspect` for every file whose data differs, with the head of both versions; each
:class:`ContentField` becomes a difference of kind ``content.<format>`` (``content.gzip`` / ``MTIME``) at the
absolute bytes of that field, so rules can name causes such as a gzip header time or a PE TimeDateStamp.
Format recognisers register with :func:`recognizer`; modules ``imgdiff.formats.content_*`` are imported on use.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from imgdiff.model import Value

INSPECT_BYTES = 1 << 20
"""How much of each version of a file the recognisers see."""


@dataclass(frozen=True, slots=True)
class ContentField:
    """One differing field inside a file, at ``offset`` bytes from the start of the file."""

    kind: str
    field: str
    offset: int
    size: int
    a: Value
    b: Value
    display_a: str | None = None
    display_b: str | None = None
    derived: bool = False
    """True for a value computed from the rest of the file (PE CheckSum, gzip FHCRC, cpio c_check): it is
    folded into the cause that explains the file's other differing bytes."""
    change: str = "modified"
    """``"modified"``, or ``"moved"`` for identical data stored at another offset (a stream shifted by a
    longer header)."""


Recognizer = Callable[[str, bytes, bytes, int, int], list[ContentField]]
"""``fn(path, head_a, head_b, size_a, size_b) -> differing fields`` (empty when the format is not its own)."""

RECOGNIZERS: list[Recognizer] = []
_loaded = False


def recognizer(fn: Recognizer) -> Recognizer:
    """Register a content recogniser."""
    RECOGNIZERS.append(fn)
    return fn


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import imgdiff.formats as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("content_"):
            importlib.import_module(f"imgdiff.formats.{mod.name}")


def inspect(path: str, head_a: bytes, head_b: bytes, size_a: int, size_b: int) -> list[ContentField]:
    """Return the differing named fields of a changed file, from every recogniser that knows its format."""
    _load()
    out: list[ContentField] = []
    for fn in RECOGNIZERS:
        try:
            out.extend(fn(path, head_a, head_b, size_a, size_b))
        except (ValueError, IndexError, KeyError, EOFError, OverflowError, UnicodeError) as exc:
            del exc  # a malformed embedded format is just not recognised
            continue
    return out

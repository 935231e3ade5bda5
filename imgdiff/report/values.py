"""How values are shown: JSON-safe encoding and short human text, shared by every renderer."""

from __future__ import annotations

from typing import Any

from imgdiff.model import Value

MAX_TEXT = 80


def to_json(v: Value | Any) -> Any:
    """Return ``v`` as a JSON-safe value (bytes become hex strings, tuples lists)."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, tuple):
        return [to_json(x) for x in v]
    if v is None or isinstance(v, (int, str, float, bool)):
        return v
    return str(v)


def short(v: Value, display: str | None = None) -> str:
    """Return a one-line rendering of a value, with its display form when the parser gave one."""
    if isinstance(v, bool) or v is None:
        text = str(v).lower() if v is not None else "-"
    elif isinstance(v, int):
        text = f"{v} (0x{v:x})" if v > 9 else str(v)
    elif isinstance(v, (bytes, bytearray)):
        h = bytes(v).hex()
        text = h if len(h) <= 48 else f"{h[:40]}… ({len(v)} bytes)"
    else:
        text = str(v)
    if display and display != text:
        text = f"{text} [{display}]"
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return text

"""The LUKS2 JSON metadata area as fields: one per JSON leaf, named by its path (``keyslots.0.kdf.salt``).

The JSON text starts at the header's offset 4096 and is followed by NUL bytes up to ``hdr_size``.  Each leaf
value (string, number, boolean, null) is a field at the bytes of its text (a string without its quotes); the
braces, brackets, commas, colons and member names are one ``json`` field and the NUL fill ``padding``, so every
byte of the area has one owner.  The walk is bounded in depth and in leaves (hostile JSON).

References:
    LUKS2 On-Disk Format Specification, section 3 (JSON area: keyslots, tokens, segments, digests, config);
    cryptsetup lib/luks2/luks2_json_metadata.c (``LUKS2_hdr_validate``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_DEPTH = 16
MAX_LEAVES = 20_000
_WS = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Leaf:
    """One JSON leaf: its dotted path, the byte range of its text in the area, and its value."""

    path: str
    start: int
    end: int
    value: object


class JsonShapeError(ValueError):
    """The JSON text is deeper or larger than a LUKS2 header can be."""


def leaves(text: str) -> list[Leaf]:
    """Return every leaf of the JSON document ``text`` (character offsets; raises ValueError when invalid)."""
    out: list[Leaf] = []
    dec = json.JSONDecoder()

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        return pos

    def value(pos: int, path: str, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise JsonShapeError("JSON nested too deeply")
        pos = skip(pos)
        ch = text[pos : pos + 1]
        if ch == "{":
            pos = skip(pos + 1)
            if text[pos : pos + 1] == "}":
                return pos + 1
            while True:
                key, pos = dec.raw_decode(text, skip(pos))
                pos = skip(pos)
                if text[pos : pos + 1] != ":":
                    raise ValueError(f"':' expected at {pos}")
                pos = value(pos + 1, f"{path}.{key}" if path else str(key), depth + 1)
                pos = skip(pos)
                if text[pos : pos + 1] == ",":
                    pos += 1
                    continue
                if text[pos : pos + 1] == "}":
                    return pos + 1
                raise ValueError(f"',' or '}}' expected at {pos}")
        if ch == "[":
            pos = skip(pos + 1)
            if text[pos : pos + 1] == "]":
                return pos + 1
            i = 0
            while True:
                pos = skip(value(pos, f"{path}.{i}", depth + 1))
                i += 1
                if text[pos : pos + 1] == ",":
                    pos += 1
                    continue
                if text[pos : pos + 1] == "]":
                    return pos + 1
                raise ValueError(f"',' or ']' expected at {pos}")
        v, end = dec.raw_decode(text, pos)
        if len(out) >= MAX_LEAVES:
            raise JsonShapeError("too many JSON values")
        if isinstance(v, str):
            out.append(Leaf(path, pos + 1, end - 1, v))
        else:
            out.append(Leaf(path, pos, end, v))
        return end

    end = value(0, "", 0)
    if text[skip(end) :].strip():
        raise ValueError("data after the JSON document")
    return out


def byte_offsets(text: str) -> list[int] | None:
    """Return the byte offset of every character of ``text`` in UTF-8, or None when the text is ASCII."""
    if text.isascii():
        return None
    out: list[int] = []
    pos = 0
    for ch in text:
        out.append(pos)
        pos += len(ch.encode("utf-8", errors="surrogatepass"))
    out.append(pos)
    return out

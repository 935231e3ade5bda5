"""The stored files of compressed inputs: when both inputs were compressed, the compressed files are compared too.

``imgdiff explain a.raw.xz b.raw.xz`` compares the decompressed images byte for byte, but the artefacts a build
publishes are the compressed files: two equal images compressed by another xz thread count, zstd level or gzip
name/time are still two different files.  The facts of each file come from
:func:`imgdiff.formats.compressed.stored.stored_fields`; this module turns the facts that differ into
differences, so that the rules can name the compressor setting that made the files differ.

Nothing here is an image byte: the differences have no extents and count no bytes (``bytes_differing`` stays the
count over the decompressed images).
"""

from __future__ import annotations

from imgdiff.formats.compressed.stored import stored_fields
from imgdiff.model import Change, Difference, Value

LOCATION = "compressed file"


def compare_stored(path_a: str, kind_a: str, path_b: str, kind_b: str, same_payload: bool,
                   damaged: bool = False) -> list[Difference]:
    """Return the differences between two compressed input files (empty when they are byte-identical).

    With ``same_payload`` (the decompressed images are identical) the files' own difference (size and sha256) and
    the xz block count are reported too; otherwise they follow from the payloads and only the header settings,
    which no payload determines, are differences of their own.  The block count is compared only when both Index
    records were read.  With ``damaged`` (a stream did not decode to its end) the files' difference carries the
    attr ``stream = "damaged"``: trailing or missing bytes are not an encoder setting.
    """
    fa = stored_fields(path_a, kind_a)
    fb = stored_fields(path_b, kind_b)
    if fa["file"].value == fb["file"].value:
        return []
    out: list[Difference] = []
    if kind_a != kind_b:
        out.append(_diff("compression", kind_a, kind_b, None, None))
    else:
        for name, a in fa.items():
            if name == "file" or (name == "Blocks" and (not same_payload or name not in fb)):
                continue
            b = fb.get(name)
            if b is None or a.value != b.value:
                out.append(_diff(name, a.value, b.value if b else None, a.display, b.display if b else None))
        out.extend(_diff(name, None, b.value, None, b.display) for name, b in fb.items()
                   if name not in fa and name != "Blocks")
    if same_payload:
        out.append(_diff("file", fa["file"].value, fb["file"].value, fa["file"].display, fb["file"].display,
                         {"stream": "damaged" if damaged else "intact"}))
    return out


def _diff(field: str, a: Value, b: Value, display_a: str | None, display_b: str | None,
          attrs: dict[str, Value] | None = None) -> Difference:
    change = Change.MODIFIED if a is not None and b is not None else (Change.ADDED if a is None else Change.REMOVED)
    return Difference(
        node_path="stored",
        kind="image.compressed",
        field=field,
        change=change,
        a=a,
        b=b,
        extents_a=(),
        extents_b=(),
        location=LOCATION,
        attrs=attrs or {},
        display_a=display_a,
        display_b=display_b,
        scope="disk",
        chain=(LOCATION,),
    )


__all__ = ["compare_stored"]

"""The versioned JSON result (``imgdiff explain --json``) and its loader (the TUI opens saved results).

Version 1 contract: ``imgdiff_json_version``, ``a``, ``b``, ``identical``, ``summary`` (``bytes_compared``,
``bytes_differing``, ``bytes_unexplained``) and ``findings`` with ``rule``, ``title``, ``layer``, ``location``,
``fields``, ``paths``, ``a``, ``b``, ``bytes``, ``derived``, ``fix``.  Further keys (``explanation``,
``references``, ``details`` …) are additions; a consumer must ignore keys it does not know.

``summary.bytes_unexplained`` keeps its v1 meaning: differing bytes that no parsed field owns.  Bytes in parsed
fields that no rule explains are counted in the added ``summary.bytes_unclassified``, and ``bytes_explained`` is
what is left; what has no named cause is ``bytes_unexplained + bytes_unclassified``.  ``verdict`` is the first
line ``imgdiff explain`` prints; ``to_fix`` lists the causes most impactful first with their fixes per builder
(``fixes``: ``nixos``, ``repart``, ``mkosi``, ``plain``, filled in with this pair's values); each finding carries
its ``cause`` (short name) and ``fixes`` too, while ``fix`` stays the rule's prose.

Offsets at or above 2**56 are in a decoded space (a decompressed stream or a relocated image file inside the
image): ``decoded_spaces`` lists them (``base``, ``label``, ``size_a``, ``size_b``) and a detail's
``decoded_space`` is the index of the space its offsets are in (offset - base = offset inside the payload).

The text is always valid UTF-8 (or plain ASCII when the output stream cannot encode more).  A name byte that is
not UTF-8 is carried as Python carries it (``surrogateescape``, U+DC80 + byte) and written as the JSON escape
``\\udcff``: ``os.fsencode(name)`` gives the exact bytes back.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, TextIO

from imgdiff.model import Difference, Extent, Finding, ImageInfo, Report, Summary
from imgdiff.report.fixes import cause_label, fix_items, placeholders, rule_fixes
from imgdiff.report.summary import accounting, verdict
from imgdiff.report.values import to_json
from imgdiff.ruleset.schema import BUILDERS, FixRuleInfo
from imgdiff.source import SLOT, VBASE

VERSION = 1
HEX_KEEP = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(text: str) -> str:
    """Write lone surrogates (undecodable name bytes) as ``\\uXXXX`` escapes, so the text encodes as UTF-8.

    With ``ensure_ascii=False`` the encoder copies a string's characters as they are; a surrogate can only sit
    inside a JSON string there, where its escape means the same character.
    """
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _ascii_only(fh: TextIO) -> bool:
    """Return True when ``fh`` cannot take UTF-8 (``PYTHONIOENCODING=ascii``, a latin-1 locale): escape it all."""
    enc = getattr(fh, "encoding", None)
    if not enc:
        return False
    try:
        return codecs.lookup(enc).name != "utf-8"
    except LookupError:
        return True


def _diff(d: Difference, hexes: dict[int, tuple[str, str]] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Return one field's details; a group difference's offsets are cut to ``limit`` (``offsets_*_total`` added)."""
    out: dict[str, Any] = {
        "field": d.ref,
        "kind": d.kind,
        "change": d.change,
        "location": d.location,
        "chain": list(d.chain),
        "a": to_json(d.a),
        "b": to_json(d.b),
        "display_a": d.display_a,
        "display_b": d.display_b,
        "offsets_a": [[e.offset, e.length] for e in d.extents_a],
        "offsets_b": [[e.offset, e.length] for e in d.extents_b],
        "bytes": d.bytes,
        "path": d.attrs.get("path"),
    }
    if d.detail:
        out["detail"] = d.detail
    if d.count > 1:
        out["count"] = d.count  # a group: the fields of this many objects (offsets: every member's)
        for side, exts in (("a", d.extents_a), ("b", d.extents_b)):
            if limit is not None and len(exts) > limit:
                out[f"offsets_{side}"] = out[f"offsets_{side}"][:limit]
                out[f"offsets_{side}_total"] = len(exts)
    first = (d.extents_a or d.extents_b or (None,))[0]
    if first is not None and first.offset >= VBASE:
        out["decoded_space"] = (first.offset - VBASE) // SLOT  # index into the document's "decoded_spaces"
    if hexes and id(d) in hexes:
        out["hex_a"], out["hex_b"] = hexes[id(d)]
    return out


def _pair(f: Finding) -> tuple[Any, Any]:
    """Return the A and B values every cause shares, or ``(None, None)`` (stops at the first other pair)."""
    if not f.causes:
        return None, None
    d = f.causes[0]
    first = (repr(to_json(d.a)), repr(to_json(d.b)))
    for other in f.causes[1:]:
        if (other.a is not d.a or other.b is not d.b) and (repr(to_json(other.a)), repr(to_json(other.b))) != first:
            return None, None
    return to_json(d.a), to_json(d.b)


LIST_LIMIT = 200
"""Per finding, at most this many cause fields, paths and derived fields are listed (``*_total`` give the
counts); ``imgdiff explain --json --all-fields`` lists every one."""


def _bounded(items: list[Any], limit: int | None) -> list[Any]:
    return items if limit is None or len(items) <= limit else items[:limit]


def report_to_dict(
    report: Report, hexes: dict[int, tuple[str, str]] | None = None, limit: int | None = LIST_LIMIT
) -> dict[str, Any]:
    """Return the JSON document of ``report`` as plain data (lists per finding bounded by ``limit``; None: all)."""
    findings = []
    for f in report.findings:
        values = placeholders(report, f)
        a, b = _pair(f)
        causes = _bounded(f.causes, limit)
        derived = _bounded(f.derived, limit)
        paths = f.paths
        findings.append(
            {
                "rule": f.rule.id,
                "title": f.rule.title,
                "layer": f.rule.layer,
                "location": f.location,
                "chain": list(f.chain),
                "fields": [d.ref for d in causes],
                "fields_total": f.cause_count,
                "paths": _bounded(paths, limit),
                "paths_total": len(paths),
                "a": a,
                "b": b,
                "bytes": f.bytes,
                "derived": [d.ref for d in derived],
                "derived_total": f.derived_count,
                "fix": f.rule.fix,
                "cause": cause_label(report, f, values),
                "fixes": dict(rule_fixes(f.rule, values)),
                "name": f.rule.name,
                "explanation": f.rule.explanation,
                "component": f.rule.component,
                "fixed_in": f.rule.fixed_in,
                "references": list(f.rule.references),
                "note": f.note,
                "details": [_diff(d, hexes, limit) for d in causes],
                "derived_details": [_diff(d, hexes, limit) for d in derived],
            }
        )
    acc = accounting(report)
    items = fix_items(report)
    return {
        "imgdiff_json_version": VERSION,
        "a": report.a.path,
        "b": report.b.path,
        "identical": report.identical,
        "summary": {
            "bytes_compared": report.summary.bytes_compared,
            "bytes_differing": report.summary.bytes_differing,
            "bytes_unexplained": report.summary.bytes_unexplained,
            "bytes_unclassified": acc.unclassified,
            "bytes_explained": acc.explained,
        },
        "verdict": verdict(report, items),
        "to_fix": [
            {"rule": it.rule.id, "cause": it.cause, "bytes": it.bytes, "where": it.where, "fixes": dict(it.fixes)}
            for it in items
        ],
        "findings": findings,
        "images": {
            "a": _image(report.a),
            "b": _image(report.b),
        },
        "errors": report.errors,
        "context": report.context,
        "decoded_spaces": [
            {"base": sp.base, "label": sp.label, "size_a": sp.sizes.get("a"), "size_b": sp.sizes.get("b")}
            for sp in report.spaces
        ],
    }


def _image(info: ImageInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"size": info.size, "format": info.format}
    if info.decompressed:
        out["decompressed"] = info.decompressed  # sizes and offsets refer to the decompressed image
    return out


def dumps(report: Report, hexes: dict[int, tuple[str, str]] | None = None, limit: int | None = LIST_LIMIT) -> str:
    """Return the JSON text of ``report`` (stable key order, so equal results give equal text)."""
    return _escape_surrogates(json.dumps(report_to_dict(report, hexes, limit), indent=2, ensure_ascii=False)) + "\n"


def write(
    report: Report, fh: TextIO, hexes: dict[int, tuple[str, str]] | None = None, limit: int | None = LIST_LIMIT
) -> None:
    """Write exactly the text :func:`dumps` returns to ``fh``, in pieces (all non-ASCII escaped when ``fh``'s
    encoding is not UTF-8, so the bytes are valid JSON either way).

    A result with tens of thousands of differences encodes to millions of small strings; joining them into one
    text first (and encoding that) held several copies of the document at once.
    """
    ascii_only = _ascii_only(fh)
    chunks: list[str] = []
    for chunk in json.JSONEncoder(ensure_ascii=ascii_only, indent=2).iterencode(report_to_dict(report, hexes, limit)):
        chunks.append(chunk)
        if len(chunks) >= 16384:
            fh.write(_escape_surrogates("".join(chunks)))
            chunks.clear()
    chunks.append("\n")
    fh.write(_escape_surrogates("".join(chunks)))


def _ext(rows: list[list[int]]) -> tuple[Extent, ...]:
    return tuple(Extent(int(o), int(n)) for o, n in rows)


def load_report(data: dict[str, Any]) -> Report:
    """Rebuild a :class:`Report` from a saved JSON document (no image is read)."""
    if data.get("imgdiff_json_version") != VERSION:
        raise ValueError(f"unsupported imgdiff_json_version {data.get('imgdiff_json_version')!r}")

    def diff(x: dict[str, Any]) -> Difference:
        ref: str = x["field"]
        node_path, _, field = ref.rpartition("/")
        d = Difference(
            node_path=node_path,
            kind=x.get("kind", ""),
            field=field,
            change=x.get("change", "modified"),
            a=x.get("a"),
            b=x.get("b"),
            extents_a=_ext(x.get("offsets_a", [])),
            extents_b=_ext(x.get("offsets_b", [])),
            location=x.get("location", ""),
            attrs={"path": x["path"]} if x.get("path") else {},
            display_a=x.get("display_a"),
            display_b=x.get("display_b"),
            bytes=int(x.get("bytes", 0)),
            detail=x.get("detail"),
            chain=tuple(str(c) for c in x.get("chain", [])),
            count=max(1, int(x.get("count", 1))),
        )
        if "hex_a" in x:
            d.attrs["hex_a"] = x["hex_a"]
            d.attrs["hex_b"] = x.get("hex_b", "")
        return d

    findings = []
    for f in data.get("findings", []):
        fixes = f.get("fixes") if isinstance(f.get("fixes"), dict) else {}
        info = FixRuleInfo(
            id=f["rule"],
            name=f.get("name", f["rule"]),
            title=f.get("title", ""),
            layer=f.get("layer", "unknown"),
            explanation=f.get("explanation", ""),
            fix=f.get("fix", ""),
            references=tuple(f.get("references", [])),
            component=f.get("component", ""),
            fixed_in=f.get("fixed_in", ""),
            fix_for=tuple((k, str(fixes[k])) for k in BUILDERS if k in fixes),
            cause=str(f.get("cause", "")),
        )
        findings.append(
            Finding(
                rule=info,
                location=f.get("location", ""),
                causes=[diff(x) for x in f.get("details", [])],
                derived=[diff(x) for x in f.get("derived_details", [])],
                note=f.get("note", ""),
                bytes=int(f.get("bytes", 0)),
            )
        )
    s = data["summary"]
    images = data.get("images", {})
    return Report(
        a=_load_image(data["a"], images.get("a", {})),
        b=_load_image(data["b"], images.get("b", {})),
        summary=Summary(int(s["bytes_compared"]), int(s["bytes_differing"]), int(s["bytes_unexplained"])),
        findings=findings,
        errors=list(data.get("errors", [])),
        context=dict(data.get("context", {})),
    )


def _load_image(path: str, info: dict[str, Any]) -> ImageInfo:
    return ImageInfo(path, int(info.get("size", 0)), str(info.get("format", "")), str(info.get("decompressed", "")))


def hex_snippets(
    report: Report, read_a: Any, read_b: Any, limit: int | None = LIST_LIMIT
) -> dict[int, tuple[str, str]]:
    """Return the first bytes of every listed difference's extents on both sides, for viewers without the images."""
    out: dict[int, tuple[str, str]] = {}
    for f in report.findings:
        for d in _bounded(f.causes, limit) + _bounded(f.derived, limit):
            ea = d.extents_a or d.extents_b
            eb = d.extents_b or d.extents_a
            if not ea:
                continue
            out[id(d)] = (read_a(ea[0].offset, min(ea[0].length, HEX_KEEP)).hex(),
                          read_b(eb[0].offset, min(eb[0].length, HEX_KEEP)).hex())
    return out

"""The terminal summary of ``imgdiff explain``: findings grouped by partition, each with fields, values, fix."""

from __future__ import annotations

import re
from collections import OrderedDict

from imgdiff.model import Difference, Finding, ImageInfo, Report
from imgdiff.report.values import short

MAX_FIELDS = 12
"""Cause fields listed per finding before the rest is summarised."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return ``text`` with each name byte that is not UTF-8 (a ``surrogateescape`` surrogate) shown as ``\\xff``.

    Text and markdown go through this before they are written, so no output encoding meets a lone surrogate.
    """
    return _SURROGATE.sub(_escape, text)


def _group(f: Finding) -> str:
    loc = f.location or "disk"
    first = loc.split(" / ")[0]
    if first.startswith("partition") or first in ("image",):
        return first
    return "disk" if first in ("protective MBR", "MBR", "GPT", "unpartitioned space", "disk") else first


def _image(info: ImageInfo) -> str:
    comp = f" (decompressed from {info.decompressed})" if info.decompressed else ""
    return f"{info.format}{comp}, {info.size} bytes"


def _field_line(d: Difference, location: str) -> str:
    where = d.location
    if location and where.startswith(location):
        where = where[len(location) :].lstrip(" /")
    name = f"{where} / {d.field}" if where else d.field
    if d.change == "modified":
        vals = f"{short(d.a, d.display_a)} -> {short(d.b, d.display_b)}"
    elif d.change == "moved":
        vals = f"A holds {short(d.a) if d.a else 'nothing'}, B holds {short(d.b) if d.b else 'nothing'}"
    elif d.change == "raw":
        vals = f"{d.bytes} unparsed bytes differ"
    else:
        vals = f"{d.change}: {short(d.a if d.a is not None else d.b)}"
    line = f"      {name}: {vals}"
    if d.detail:
        line += f"\n        {d.detail}"
    return line


def render(report: Report, verbose: bool = False) -> str:
    """Return the human-readable summary of ``report``."""
    s = report.summary
    lines: list[str] = []
    if report.identical:
        lines.append(f"{report.a.path} and {report.b.path} are identical ({s.bytes_compared} bytes).")
    else:
        lines.append(
            f"{report.a.path} and {report.b.path} differ: {s.bytes_differing} of {s.bytes_compared} bytes, "
            f"{len(report.findings)} finding(s), {s.bytes_unexplained} byte(s) unexplained."
        )
        lines.append(f"  A: {_image(report.a)}   B: {_image(report.b)}")
        if report.a.decompressed or report.b.decompressed:
            lines.append("  (compressed input: byte counts and offsets refer to the decompressed images)")
    groups: OrderedDict[str, list[Finding]] = OrderedDict()
    for f in report.findings:
        groups.setdefault(_group(f), []).append(f)
    for group, fs in groups.items():
        lines.append("")
        lines.append(f"{group}:")
        for f in fs:
            lines.append(f"  [{f.rule.id}] {f.rule.title}  ({f.bytes} bytes; layer: {f.rule.layer})")
            lines.append(f"    at {f.location}")
            limit = len(f.causes) if verbose else MAX_FIELDS
            for d in f.causes[:limit]:
                lines.append(_field_line(d, f.location))
            if len(f.causes) > limit:
                lines.append(f"      … and {len(f.causes) - limit} more field(s) (--verbose lists all)")
            if f.paths:
                shown = f.paths if verbose else f.paths[:MAX_FIELDS]
                more = f" … and {len(f.paths) - len(shown)} more" if len(shown) < len(f.paths) else ""
                lines.append(f"    paths: {', '.join(shown)}{more}")
            if f.derived:
                names = sorted({f'{d.location.split(" / ")[-1]} {d.field}' for d in f.derived})
                shown_d = names if verbose else names[:6]
                more = f", … ({len(names) - len(shown_d)} more)" if len(shown_d) < len(names) else ""
                lines.append(f"    derived ({len(f.derived)}, folded in): {', '.join(shown_d)}{more}")
            if f.note:
                lines.append(f"    note: {f.note}")
            if f.rule.id != "unclassified" or verbose:
                lines.append(f"    fix: {f.rule.fix}")
    if report.errors:
        lines.append("")
        lines.append("could not be parsed (partial result):")
        lines.extend(f"  {e}" for e in report.errors)
    return "\n".join(lines) + "\n"

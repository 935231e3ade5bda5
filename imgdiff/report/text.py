"""The terminal output of ``imgdiff explain``: the verdict first, then what to fix, then the details.

Layout::

    not reproducible: 3 causes — repart seed, mke2fs hash seed, /etc/motd content
      2813 of 83886080 bytes differ: 2813 explained
      A: gpt, 83886080 bytes   B: gpt, 83886080 bytes

    to fix (most impactful first):
      1. repart seed  [GPT001, 349 bytes]
           NixOS:           image.repart.seed = "…";
           systemd-repart:  …

    details:
      partition 2 (root-x86-64) ▸ ext4
        [EXT002] … (16 bytes; layer: mkfs) — fix #2
          superblock / s_hash_seed: … -> …

Findings are grouped by the first scope of their chain (a partition, or the disk).  With ``color=True`` (a
terminal without ``NO_COLOR``) the verdict, rule ids, layers and commands are coloured; code spans then lose
their backticks.  ``builder`` picks one builder's fix per cause (default: every builder the rule has, NixOS
first).
"""

from __future__ import annotations

import re
from collections import OrderedDict

from imgdiff.model import Difference, Finding, ImageInfo, Report
from imgdiff.report.fixes import BUILDER_LABELS, FixItem, fix_items, scope_name
from imgdiff.report.rows import Row, group_rows
from imgdiff.report.summary import byte_line, verdict
from imgdiff.report.times import time_note
from imgdiff.report.values import short

MAX_FIELDS = 12
"""Cause fields listed per finding before the rest is summarised."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_CODE = re.compile(r"`([^`]+)`")
_BYTES1 = re.compile(r"\(1 bytes\)")

LAYER_COLOUR = {
    "repart": "35", "mkfs": "36", "nixos-module": "34", "content": "32", "bootloader": "33", "other": "37",
    "unknown": "31",
}


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return ``text`` with each name byte that is not UTF-8 (a ``surrogateescape`` surrogate) shown as ``\\xff``.

    Text and markdown go through this before they are written, so no output encoding meets a lone surrogate.
    """
    return _SURROGATE.sub(_escape, text)


class _Style:
    """ANSI styling, or none."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on and text else text

    def code(self, text: str) -> str:
        """Show the ``code`` spans of rule prose: coloured without backticks, or as they are."""
        if not self.on:
            return text
        return _CODE.sub(lambda m: f"\x1b[1;36m{m.group(1)}\x1b[0m", text)


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
    line = f"        {name}: {vals}"
    if d.detail:
        line += f"\n          {content_detail(d)}"
    return line


def _row_line(r: Row, location: str) -> str:
    """Return one grouped row: the field once, with a count and the first places, when it stands for several."""
    if r.count == 1:
        return _field_line(r.first, location)
    d = r.first
    places, n = r.places(location, 3)
    where = ", ".join(places) + (f", … ({n} places)" if n > len(places) else "")
    if r.same_values:
        vals = f"{short(d.a, d.display_a)} -> {short(d.b, d.display_b)}"
    else:
        vals = f"values vary, e.g. {short(d.a, d.display_a)} -> {short(d.b, d.display_b)}"
    return f"        {d.field} ×{r.count} ({where}): {vals}"


def content_detail(d: Difference) -> str:
    """Return a file difference's detail with the counts it states made explicit (file offsets vs image bytes).

    The engine's detail lists the differing ranges inside the file (offsets in the file's content); the
    difference's ``bytes`` count the differing bytes at the file's image extents on either side, which is more
    when the file's blocks moved.  Both are stated, so the two numbers never seem to contradict each other.
    """
    text = _BYTES1.sub("(1 byte)", d.detail or "")
    ranges = [int(n) for n in re.findall(r"\((\d+) bytes?\)", text)]
    in_file = sum(ranges)
    if ranges and "more ranges" not in text and in_file != d.bytes and d.field == "data":
        text += (
            f" — {in_file} byte(s) of content differ; {d.bytes} byte(s) differ at the file's places in the "
            "images (its blocks are not at the same offsets in A and B, or other bytes share them)"
        )
    return text


def _group(f: Finding) -> str:
    chain = f.chain
    if chain:
        return chain[0]
    loc = f.location or "disk"
    first = loc.split(" / ")[0]
    return first if first.startswith("partition") or first == "image" else "disk"


def _fix_lines(item: FixItem, st: _Style, indent: str) -> list[str]:
    width = max((len(BUILDER_LABELS.get(b, b)) for b, _ in item.fixes), default=0) + 1
    out = []
    for b, text in item.fixes:
        label = f"{BUILDER_LABELS.get(b, b)}:".ljust(width + 1)
        out.append(f"{indent}{st(label, '2')} {st.code(text)}")
    return out


def render(report: Report, verbose: bool = False, builder: str | None = None, color: bool = False) -> str:
    """Return the human-readable result of ``report``: verdict, to-fix list, details."""
    st = _Style(color)
    items = fix_items(report, builder)
    number = {it.rule.id: i for i, it in enumerate(items, start=1)}
    head = verdict(report, items)
    lines = [st(head, "1;32" if report.identical else "1;31")]
    if report.identical:
        lines.append(f"  {report.a.path} and {report.b.path} are identical ({report.summary.bytes_compared} bytes).")
    else:
        lines.append(f"  {byte_line(report)}")
        lines.append(f"  A: {report.a.path} ({_image(report.a)})")
        lines.append(f"  B: {report.b.path} ({_image(report.b)})")
        if report.a.decompressed or report.b.decompressed:
            lines.append("  (compressed input: byte counts and offsets refer to the decompressed images)")
        seed = report.context.get("seed")
        if seed:
            lines.append(f"  --seed {seed} was given: the GPT finding says whether each image's GUIDs derive from it")
    if items:
        lines.append("")
        lines.append(st("to fix (most impactful first):", "1"))
        for i, it in enumerate(items, start=1):
            where = f" in {', '.join(it.where)}" if it.where and it.where != ["disk"] else ""
            lines.append(f"  {i}. {st(it.cause, '1')}  [{it.rule.id}, {_n(it.bytes, 'byte')}{where}]")
            lines.extend(_fix_lines(it, st, "       "))
    groups: OrderedDict[str, list[Finding]] = OrderedDict()
    for f in report.findings:
        groups.setdefault(_group(f), []).append(f)
    if groups:
        lines.append("")
        lines.append(st("details:", "1"))
    for group, fs in groups.items():
        lines.append(f"  {st(group, '1')}:")
        for f in fs:
            layer = st(f.rule.layer, LAYER_COLOUR.get(f.rule.layer, "0"))
            ref = f" — fix #{number[f.rule.id]}" if f.rule.id in number else ""
            lines.append(f"    [{st(f.rule.id, '1')}] {f.rule.title}  ({_n(f.bytes, 'byte')}; layer: {layer}){ref}")
            lines.append(f"      at {scope_name(f)}" + (f" / {_tail(f)}" if _tail(f) else ""))
            if verbose:
                lines.extend(_field_line(d, f.location) for d in f.causes)
            else:
                rows = group_rows(f.causes)
                lines.extend(_row_line(r, f.location) for r in rows[:MAX_FIELDS])
                if len(rows) > MAX_FIELDS:
                    rest = sum(r.count for r in rows[MAX_FIELDS:])
                    lines.append(f"        … and {rest} more field(s) (--verbose lists all)")
            if f.paths:
                shown = f.paths if verbose else f.paths[:MAX_FIELDS]
                more = f" … and {len(f.paths) - len(shown)} more" if len(shown) < len(f.paths) else ""
                lines.append(f"      paths: {', '.join(shown)}{more}")
            if f.derived:
                names = sorted({f'{d.location.split(" / ")[-1]} {d.field}' for d in f.derived})
                shown_d = names if verbose else names[:6]
                more = f", … ({len(names) - len(shown_d)} more)" if len(shown_d) < len(names) else ""
                lines.append(st(f"      derived ({f.derived_count}, folded in): {', '.join(shown_d)}{more}", "2"))
            tnote = time_note(f)
            if tnote:
                lines.append(f"      times: {tnote}")
            if f.note:
                lines.append(f"      note: {f.note}")
            if f.rule.id == "unclassified" and verbose:
                lines.append(f"      fix: {f.rule.fix}")
    if report.errors:
        lines.append("")
        lines.append("could not be parsed (partial result):")
        lines.extend(f"  {e}" for e in report.errors)
    return "\n".join(lines) + "\n"


def _n(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _tail(f: Finding) -> str:
    """Return the part of the finding's location below its scope chain (``superblock``), or ``""``."""
    loc = f.location
    for label in f.chain:
        if loc.startswith(label):
            loc = loc[len(label) :].lstrip(" /")
    return loc if loc != f.location or not f.chain else ""

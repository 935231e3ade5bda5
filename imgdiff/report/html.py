"""One self-contained HTML page of a comparison, for CI artefacts (``imgdiff report --format html``).

Everything is inline (CSS, a few lines of JavaScript for "expand/collapse all"); the page loads nothing from the
network.  It holds the verdict, both images (name, size, SHA-256, recorded tools), the "to fix" list per builder,
one collapsible ``<details>`` per cause (open by default) with its fields table (one row per field and value
pattern), derived differences, paths, the fix, and a side-by-side hex excerpt of the first differing bytes of each
field row, then what no rule explains and what could not be parsed.

Hex excerpts are read through the report's open sources (:meth:`~imgdiff.model.Report.read`, so decompressed
inputs and decoded spaces work) or, for a report loaded from JSON, from the saved ``hex_a``/``hex_b`` snippets.
Like every renderer it never parses an image.
"""

from __future__ import annotations

import html
import os
import re

from imgdiff import __version__
from imgdiff.model import Difference, Finding, Report
from imgdiff.report.fixes import BUILDER_LABELS, FixItem, fix_items, scope_name
from imgdiff.report.markdown import build_rows, human_size, recorded_tools, rows_bytes
from imgdiff.report.rows import Row, group_rows
from imgdiff.report.summary import byte_line, verdict
from imgdiff.report.text import content_detail
from imgdiff.report.times import time_note
from imgdiff.report.values import short

MAX_ROWS = 200
"""Field rows per cause."""
OPEN_ROWS = 12
"""More field rows than this are folded into a nested ``<details>``."""
HEX_ROWS = 12
"""Field rows per cause that get a hex excerpt."""
HEX_BYTES = 48
"""Bytes per hex excerpt (three rows of 16)."""
SEEK = 4096
"""Bytes of a long field compared to find its first differing byte."""
MAX_PATHS = 500

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;
color:#1b1f24;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d0d7de}
.verdict{font-size:1.15em;font-weight:600;padding:.5em .8em;border-radius:6px;margin:.6em 0}
.bad{background:#ffebe9;border:1px solid #ff8182}.good{background:#dafbe1;border:1px solid #4ac26b}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 7px;
vertical-align:top;text-align:left}th{background:#f6f8fa}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
code{background:#f6f8fa;padding:0 3px;border-radius:3px;word-break:break-all}
details.cause{border:1px solid #d0d7de;border-radius:6px;margin:.8em 0;padding:.3em .9em}
details.cause>summary{font-weight:600;cursor:pointer;padding:.3em 0}
.layer{display:inline-block;border-radius:10px;padding:0 7px;font-size:12px;font-weight:500;background:#eaeef2}
.meta{color:#57606a}.fix li{margin:.2em 0}.builder{font-weight:600}
.hex{display:flex;gap:1.2em;flex-wrap:wrap;margin:.2em 0 .6em}.hex pre{margin:0;padding:.4em .6em;background:#f6f8fa;
border-radius:4px}.hex .d{background:#ffd8d3;color:#a40e26;font-weight:700}.side{font-weight:600;color:#57606a}
.tools button{margin-right:.5em}
"""

JS = """
function setAll(open){document.querySelectorAll('details').forEach(function(d){d.open=open;});}
"""


def esc(text: object) -> str:
    """Return ``text`` escaped for HTML (name bytes that are not UTF-8 as ``\\xff``)."""
    from imgdiff.report.text import printable

    return html.escape(printable(str(text)), quote=True)


_CODE = re.compile(r"`([^`]+)`")


def prose(text: str) -> str:
    """Return rule prose (markdown-ish: backtick code spans) as HTML."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", esc(" ".join(text.split())))


def _n(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- hex excerpts --------------------------------------------------------------------------------------------------


def _read(report: Report, side: str, offset: int, size: int) -> bytes | None:
    try:
        return report.read(side, offset, size)
    except (OSError, ValueError):
        return None


def _snippet(d: Difference, side: str) -> tuple[int, bytes] | None:
    text = d.attrs.get(f"hex_{side}")
    exts = (d.extents_a or d.extents_b) if side == "a" else (d.extents_b or d.extents_a)
    if not isinstance(text, str) or not exts:
        return None
    off = exts[0].offset
    m = re.match(r"@\+0x([0-9a-f]+): (.*)", text)
    if m:
        off += int(m.group(1), 16)
        text = m.group(2)
    try:
        return off, bytes.fromhex(text)
    except ValueError:
        return None


def hex_excerpt(report: Report, d: Difference) -> tuple[int, bytes, int, bytes] | None:
    """Return ``(offset A, bytes A, offset B, bytes B)`` around the first differing byte of ``d``, or None."""
    ea = (d.extents_a or d.extents_b)[:1]
    eb = (d.extents_b or d.extents_a)[:1]
    if not ea or not eb:
        return None
    a0, b0 = ea[0], eb[0]
    if report.sources is not None:
        n = min(max(a0.length, b0.length), SEEK)
        da = _read(report, "a", a0.offset, min(a0.length, n)) or b""
        db = _read(report, "b", b0.offset, min(b0.length, n)) or b""
        first = next((i for i, (x, y) in enumerate(zip(da, db, strict=False)) if x != y), 0)
        start = max(first - first % 16 - 16, 0) if first >= 16 else 0
        oa, ob = a0.offset + start, b0.offset + start
        shift = oa % 16
        oa, ob = oa - shift, ob - shift
        ba = _read(report, "a", oa, HEX_BYTES)
        bb = _read(report, "b", ob, HEX_BYTES)
        if ba is None or bb is None:
            return None
        return oa, ba, ob, bb
    sa, sb = _snippet(d, "a"), _snippet(d, "b")
    if sa is None or sb is None:
        return None
    return sa[0], sa[1][:HEX_BYTES], sb[0], sb[1][:HEX_BYTES]


def _hex_block(offset: int, data: bytes, other: bytes) -> str:
    lines = []
    for row in range(0, len(data), 16):
        cells = []
        for i in range(row, min(row + 16, len(data))):
            h = f"{data[i]:02x}"
            cells.append(f'<span class="d">{h}</span>' if i >= len(other) or other[i] != data[i] else h)
        lines.append(f"{offset + row:08x}  " + " ".join(cells))
    return "\n".join(lines)


def _hex(report: Report, d: Difference) -> str:
    got = hex_excerpt(report, d)
    if got is None:
        return ""
    oa, ba, ob, bb = got
    return (
        '<div class="hex">'
        f'<div><div class="side">A</div><pre>{_hex_block(oa, ba, bb)}</pre></div>'
        f'<div><div class="side">B</div><pre>{_hex_block(ob, bb, ba)}</pre></div>'
        "</div>"
    )


# -- sections ------------------------------------------------------------------------------------------------------


def _value(d: Difference, side: str) -> str:
    v, disp = (d.a, d.display_a) if side == "a" else (d.b, d.display_b)
    if d.change == "added" and side == "a" or d.change == "removed" and side == "b":
        return "<i>absent</i>"
    if d.change == "raw":
        return f"{d.bytes} unparsed byte(s)"
    return f"<code>{esc(short(v, disp))}</code>"


def _where(r: Row, base: str) -> str:
    places, n = r.places(base, 3)
    return esc(", ".join(places) + (f", … ({n} places)" if n > len(places) else ""))


def _fields(report: Report, f: Finding, with_hex: bool = True) -> str:
    rows = group_rows(f.causes)
    out = ["<table><tr><th>Where</th><th>Field</th><th>A</th><th>B</th><th>Count</th><th>Bytes</th></tr>"]
    hexes: list[str] = []
    for i, r in enumerate(rows[:MAX_ROWS]):
        d = r.first
        a, b = _value(d, "a"), _value(d, "b")
        if not r.same_values and r.count > 1:
            a, b = f"varies, e.g. {a}", f"varies, e.g. {b}"
        detail = f"<br><span class=meta>{esc(content_detail(d))}</span>" if d.detail else ""
        out.append(f"<tr><td>{_where(r, f.location)}</td><td><code>{esc(d.field)}</code>{detail}</td>"
                   f"<td>{a}</td><td>{b}</td><td>{r.count}</td><td>{r.bytes}</td></tr>")
        if with_hex and i < HEX_ROWS:
            block = _hex(report, d)
            if block:
                hexes.append(f"<div class=meta>{_where(r, f.location)} / <code>{esc(d.field)}</code></div>{block}")
    out.append("</table>")
    if len(rows) > MAX_ROWS:
        out.append(f"<p class=meta>… and {sum(r.count for r in rows[MAX_ROWS:])} more field(s).</p>")
    table = "\n".join(out)
    if len(rows) > OPEN_ROWS:
        table = f"<details><summary>Fields: {len(rows)} rows for {f.cause_count} differing fields</summary>{table}</details>"
    if hexes:
        table += "\n<details><summary>Bytes side by side (first differing bytes)</summary>" + "".join(hexes) + "</details>"
    return table


def _derived(f: Finding) -> str:
    if not f.derived:
        return ""
    rows = group_rows(f.derived)
    items = []
    for r in rows[:MAX_ROWS]:
        d = r.first
        count = f" ×{r.count}" if r.count > 1 else ""
        vals = f"{_value(d, 'a')} → {_value(d, 'b')}" if r.same_values or r.count == 1 else "values vary"
        items.append(f"<li>{_where(r, f.location)} / <code>{esc(d.field)}</code>{count}: {vals}</li>")
    return (f"<details><summary>Derived: {f.derived_count} consequences folded into this cause (not causes "
            f"themselves)</summary><ul>{''.join(items)}</ul></details>")


def _fix_list(fixes: list[tuple[str, str]]) -> str:
    return "<ul class=fix>" + "".join(
        f'<li><span class=builder>{esc(BUILDER_LABELS.get(b, b))}:</span> {prose(t)}</li>' for b, t in fixes
    ) + "</ul>"


def _cause(report: Report, f: Finding, n: int, item: FixItem | None) -> str:
    r = f.rule
    parts = [
        (f'<details class="cause" open id="cause-{n}"><summary>{n}. <span class="title">{esc(r.title)}</span> '
        f'({esc(r.id)}) — {_n(f.bytes, "byte")} <span class="layer">{esc(r.layer)}</span></summary>'),
        f"<p class=meta>where: {esc(scope_name(f))}"
        + (f" · responsible: {esc(r.component)}" if r.component else "")
        + (f" · fixed in: {esc(r.fixed_in)}" if r.fixed_in else "") + "</p>",
    ]
    if r.explanation:
        parts.append(f"<p>{prose(r.explanation)}</p>")
    parts.append(_fields(report, f))
    tnote = time_note(f)
    if tnote:
        parts.append(f"<p><b>Times:</b> {esc(tnote)}</p>")
    if f.note:
        parts.append(f"<p><b>Note:</b> {esc(f.note)}</p>")
    if f.paths:
        shown = ", ".join(f"<code>{esc(p)}</code>" for p in f.paths[:MAX_PATHS])
        more = f" … and {len(f.paths) - MAX_PATHS} more" if len(f.paths) > MAX_PATHS else ""
        parts.append(f"<details><summary>Paths ({len(f.paths)})</summary><p>{shown}{more}</p></details>")
    parts.append(_derived(f))
    if r.id != "unclassified":
        fixes = item.fixes if item is not None else [("plain", r.fix)]
        parts.append("<p><b>How to fix:</b></p>" + _fix_list(fixes))
    if r.references:
        refs = ", ".join(
            f'<a href="{esc(x)}">{esc(x)}</a>' if re.match(r"^https?://\S+$", x) else esc(x) for x in r.references
        )
        parts.append(f"<p class=meta>upstream: {refs}</p>")
    parts.append("</details>")
    return "\n".join(p for p in parts if p)


def render(report: Report, builder: str | None = None) -> str:
    """Return the HTML page of ``report`` (deterministic: same report, same bytes)."""
    items = fix_items(report, builder)
    by_rule = {it.rule.id: it for it in items}
    ctx = report.context
    title = f"imgdiff: {ctx['config']}" if ctx.get("config") else "imgdiff report"
    head = verdict(report, items)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{JS}</script></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<div class="verdict {"good" if report.identical else "bad"}" id="verdict">{esc(head)}</div>',
        f"<p>{esc(byte_line(report))}.</p>",
    ]
    rows = [
        ("image", esc(os.path.basename(report.a.path)), esc(os.path.basename(report.b.path))),
        ("size", f"{report.a.size} bytes ({human_size(report.a.size)})", f"{report.b.size} bytes ({human_size(report.b.size)})"),
        ("layout", esc(report.a.format), esc(report.b.format)),
    ]
    if ctx.get("sha256_a") or ctx.get("sha256_b"):
        rows.insert(2, ("sha256", f"<code>{esc(ctx.get('sha256_a', '—'))}</code>", f"<code>{esc(ctx.get('sha256_b', '—'))}</code>"))
    tools_a, tools_b = recorded_tools(report.tree_a), recorded_tools(report.tree_b)
    if tools_a or tools_b:
        rows.append(("tools the image records", "<br>".join(esc(t) for t in tools_a) or "—",
                     "<br>".join(esc(t) for t in tools_b) or "—"))
    out.append("<table><tr><th></th><th>A</th><th>B</th></tr>"
               + "".join(f"<tr><th>{k}</th><td>{a}</td><td>{b}</td></tr>" for k, a, b in rows) + "</table>")
    meta = []
    if ctx.get("config"):
        meta.append(f"configuration name (given with <code>--config</code>): <code>{esc(ctx['config'])}</code>")
    if ctx.get("seed"):
        meta.append(f"seed checked (given with <code>--seed</code>): <code>{esc(ctx['seed'])}</code>; the GPT finding "
                    "says whether each image's GUIDs derive from it")
    meta.append(f"generated by imgdiff {esc(__version__)}")
    out.append("<p class=meta>" + " · ".join(meta) + "</p>")
    if items:
        out.append("<h2>To fix (most impactful first)</h2><ol>")
        for it in items:
            where = f" in {esc(', '.join(it.where))}" if it.where and it.where != ["disk"] else ""
            out.append(f"<li><b>{esc(it.cause)}</b> — {esc(it.rule.id)}, {_n(it.bytes, 'byte')}{where}"
                       f"{_fix_list(it.fixes)}</li>")
        out.append("</ol>")
    if not report.identical:
        prow = build_rows(report)
        out.append("<h2>Regions</h2><table><tr><th>Region</th><th>Filesystem</th><th>Reproducible</th>"
                   "<th>Bytes differing</th><th>Causes</th></tr>")
        for r, (nbytes, exact) in zip(prow, rows_bytes(report, prow), strict=True):
            repro = f"no ({r.presence})" if r.presence else ("yes" if r.reproducible else "<b>no</b>")
            out.append(f"<tr><td>{esc(r.name)}</td><td>{esc(r.filesystem) or '—'}</td><td>{repro}</td>"
                       f"<td>{nbytes if exact else f'≤ {nbytes}'}</td><td>{esc(', '.join(r.rules)) or '—'}</td></tr>")
        out.append("</table>")
    tracked = [f for f in report.findings if f.rule.id != "unclassified"]
    open_ = [f for f in report.findings if f.rule.id == "unclassified"]
    if tracked:
        out.append('<h2>Causes</h2><p class="tools"><button onclick="setAll(true)">expand all</button>'
                   '<button onclick="setAll(false)">collapse all</button></p>')
        for i, f in enumerate(tracked, start=1):
            out.append(_cause(report, f, i, by_rule.get(f.rule.id)))
    if open_:
        out.append("<h2>Not yet tracked down</h2><p>No rule explains these differences, so their bytes count as "
                   "unexplained; the fields are listed so the cause can be tracked down.</p>")
        for j, f in enumerate(open_, start=len(tracked) + 1):
            out.append(_cause(report, f, j, None))
    if report.errors:
        out.append("<h2>Could not be parsed</h2><ul>" + "".join(f"<li>{esc(e)}</li>" for e in report.errors) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


__all__ = ["hex_excerpt", "render"]

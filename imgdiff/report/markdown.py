"""The markdown report of ``imgdiff report`` for the NixOS repart reproducibility tracker.

One file per irreproducible configuration, committable as-is: the verdict first, both images (name, size, SHA-256,
the tools the images record), what to fix (most impactful first, per builder, filled in with this pair's values),
what is (not) reproducible per partition, then one section per tracked-down cause (rule, layer, responsible
component, upstream references, the version that fixed it, the fields with their A → B values folded to one row
per field and value pattern, the derived differences folded into it, the changed files), then what is not yet
tracked down and what could not be parsed.  Long lists sit in ``<details>`` blocks; no link points into imgdiff's
own repository (the report is read on a tracker, not in a checkout).

The output is deterministic: the same report gives the same bytes (no timestamps, no temporary paths, stable
order).  Like every renderer this module only reads the :class:`~imgdiff.model.Report`; it never opens the images.
Changed files are shown from the contents the engine kept on the differences (``content_a``/``content_b``): text
as a short unified diff, binaries as their differing byte ranges, known formats through their ``content.*``
fields.  With ``content_diff=True`` the kept contents are also handed to ``diffoscope`` when it is installed.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from imgdiff import __version__
from imgdiff.model import Change, Difference, Extent, Finding, Node, Report, Value
from imgdiff.report.fixes import BUILDER_LABELS, FixItem, fix_items, scope_name
from imgdiff.report.rows import Row as FieldRow
from imgdiff.report.rows import group_rows
from imgdiff.report.summary import byte_line, verdict
from imgdiff.report.text import content_detail
from imgdiff.report.times import time_note
from imgdiff.report.values import short

MAX_FIELDS = 200
"""Field rows (one per field and value pattern) listed per finding."""
OPEN_ROWS = 10
"""A fields table with more rows than this is folded into a ``<details>`` block."""
MAX_DERIVED = 200
"""Derived rows listed per finding (inside a ``<details>`` block)."""
MAX_PATHS = 500
"""Paths listed per finding (inside a ``<details>`` block when more than :data:`OPEN_PATHS`)."""
OPEN_PATHS = 20
MAX_FILES = 10
"""Changed files shown in detail per finding."""
DIFF_LINES = 40
"""Lines of a unified diff shown per changed text file."""
MAX_EXTENTS = 4
"""Byte ranges listed per unclassified difference."""
DIFFOSCOPE_TIMEOUT = 60
"""Seconds diffoscope may take per changed file."""
DIFFOSCOPE_LINES = 60
"""Lines of diffoscope output shown per changed file."""
DIFFOSCOPE_BYTES = 8000
"""Characters of diffoscope output shown per changed file."""
MAX_VALUE = 120
"""Characters of a content field's displayed value."""

UNCLASSIFIED = "unclassified"
DISK_ROW = "disk"
NOT_TRACKED = "not yet tracked down"

_PLAIN_SPECIALS = re.compile(r"([\\`*_\[\]<|])")


# -- markdown escaping ----------------------------------------------------------------------------------------------


def plain(text: str) -> str:
    """Return ``text`` (data, not markdown) with the characters markdown would interpret escaped."""
    return _PLAIN_SPECIALS.sub(r"\\\1", " ".join(str(text).split()))


def code(text: str) -> str:
    """Return ``text`` as an inline code span, with a delimiter longer than any backtick run inside."""
    text = " ".join(str(text).split())
    if not text:
        return "` `"
    runs = [len(m) for m in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    """Return ``text`` made safe inside a table cell (``|`` escaped, even within code spans, as GFM needs)."""
    return " ".join(text.split()).replace("|", "\\|")


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """Return the lines of a GFM table; cells must already be markdown."""
    out = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(cell(c) for c in r) + " |")
    return out


def fence_for(text: str) -> str:
    """Return a code fence longer than any backtick run at the start of a line of ``text``."""
    runs = [len(m) for m in re.findall(r"^\s*(`{3,})", text, flags=re.MULTILINE)]
    return "`" * max(3, max(runs, default=0) + 1)


def human_size(n: int) -> str:
    """Return ``n`` bytes with an exact binary unit when there is one (``64 MiB``), else in bytes."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def extent_text(e: Extent) -> str:
    """Return ``0x100000 +512`` for an extent."""
    return f"0x{e.offset:x} +{e.length}"


def extents_text(extents: tuple[Extent, ...]) -> str:
    """Return the first few extents of a difference as text."""
    if not extents:
        return "—"
    shown = ", ".join(extent_text(e) for e in extents[:MAX_EXTENTS])
    if len(extents) > MAX_EXTENTS:
        shown += f", … ({len(extents) - MAX_EXTENTS} more)"
    return shown


# -- values -----------------------------------------------------------------------------------------------------------


def _value(v: Value, display: str | None) -> str:
    return code(short(v, display))


def _content_value(v: Value, display: str | None) -> str:
    """Return a content field's value: its display when the recogniser gave one (a date, a member name), else the value."""
    if display is None:
        return code(short(v))
    return code(display if len(display) <= MAX_VALUE else display[: MAX_VALUE - 1] + "…")


def values_ab(d: Difference) -> tuple[str, str]:
    """Return the A and B cells of a difference (markdown)."""
    if d.kind.startswith("content.") and d.change == Change.MODIFIED:
        return _content_value(d.a, d.display_a), _content_value(d.b, d.display_b)
    if d.change == Change.MODIFIED:
        return _value(d.a, d.display_a), _value(d.b, d.display_b)
    if d.change == Change.ADDED:
        return "(absent)", _value(d.b, d.display_b)
    if d.change == Change.REMOVED:
        return _value(d.a, d.display_a), "(absent)"
    if d.change == Change.MOVED:
        return (
            f"holds {code(str(d.a))}" if d.a else "holds nothing here",
            f"holds {code(str(d.b))}" if d.b else "holds nothing here",
        )
    return f"{d.bytes} unparsed byte(s)", f"{d.bytes} unparsed byte(s)"


def field_name(d: Difference) -> str:
    """Return the field cell: the spec name as code, with the embedded format for content fields."""
    if d.kind.startswith("content."):
        return f"{plain(d.kind.split('.', 1)[1])} {code(d.field)}"
    return code(d.field)


def where(d: Difference, base: str) -> str:
    """Return the difference's location relative to its finding's common location (a file's path for fields in it)."""
    if d.kind.startswith("content.") and d.attrs.get("path"):
        return code(str(d.attrs["path"]))
    loc = d.location
    if base and loc.startswith(base):
        loc = loc[len(base) :].lstrip(" /")
    return plain(loc or d.location.rsplit(" / ", 1)[-1])


# -- partitions -------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One line of the per-partition table: a partition, the disk outside partitions, or a bare filesystem."""

    name: str
    filesystem: str = ""
    offset: int | None = None
    size: int | None = None
    presence: str = ""
    """``"only in A"`` / ``"only in B"`` when the partition exists on one side."""
    order: int = 1 << 62
    """Sort key: the partition index, or (for partitions known only from a saved result) its first offset."""
    diffs: list[Difference] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    parts: list[tuple[Finding, list[Difference]]] = field(default_factory=list)
    """Each finding that touches this row with its differences inside the row."""

    @property
    def reproducible(self) -> bool:
        """Return True when nothing differs inside this row."""
        return not self.diffs and not self.presence


def _partitions(root: Node | None) -> dict[str, Node]:
    if root is None:
        return {}
    return {c.label: c for c in root.children if c.kind == "partition"}


def _fs_label(node: Node) -> str:
    return node.children[0].label if node.children else ""


def build_rows(report: Report) -> list[Row]:
    """Return the table rows: from the parsed trees when present, else from the difference locations."""
    fmt_a, fmt_b = report.a.format, report.b.format
    partitioned = fmt_a in ("gpt", "mbr") or fmt_b in ("gpt", "mbr")
    rows: dict[str, Row] = {}
    if partitioned:
        table_name = "/".join(dict.fromkeys(f.upper() for f in (fmt_a, fmt_b) if f in ("gpt", "mbr")))
        rows[DISK_ROW] = Row(name=f"partition table ({table_name}) and space outside partitions")
        pa, pb = _partitions(report.tree_a), _partitions(report.tree_b)
        labels = sorted(set(pa) | set(pb), key=lambda lb: (_part_order(pa.get(lb) or pb[lb]), lb))
        for lb in labels:
            na, nb = pa.get(lb), pb.get(lb)
            n = na or nb
            assert n is not None
            ext = n.extents[0] if n.extents else None
            fs_a = _fs_label(na) if na else ""
            fs_b = _fs_label(nb) if nb else ""
            fs = fs_a if fs_a == fs_b or not fs_b else (f"{fs_a} / {fs_b}" if fs_a else fs_b)
            presence = "only in B" if na is None else ("only in A" if nb is None else "")
            rows[lb] = Row(lb, fs, ext.offset if ext else None, ext.length if ext else None, presence,
                           _part_order(na or nb))
    else:
        fs = ""
        for root in (report.tree_a, report.tree_b):
            if root is not None and root.children:
                fs = root.children[0].label
                break
        rows[DISK_ROW] = Row(name="whole image", filesystem=fs or fmt_a, offset=0, size=report.a.size)
    live = report.tree_a is not None or report.tree_b is not None
    for f in report.findings:
        per_row: dict[str, list[Difference]] = {}
        for d in f.causes + f.derived:
            per_row.setdefault(_row_key(d, partitioned, rows, live), []).append(d)
        for key, diffs in per_row.items():
            row = rows.get(key)
            if row is None:  # a partition only known from the scope chains (a report loaded from JSON)
                first = min((e.offset for d in diffs for e in d.extents_a + d.extents_b), default=1 << 62)
                row = rows[key] = Row(name=key, order=first)
            row.diffs.extend(diffs)
            row.parts.append((f, diffs))
            if f.rule.id not in row.rules:
                row.rules.append(f.rule.id)
    order = [DISK_ROW] + sorted((k for k in rows if k != DISK_ROW), key=lambda k: (rows[k].order, k))
    return [rows[k] for k in order]


def _part_order(node: Node | None) -> int:
    if node is not None and isinstance(node.attrs.get("index"), int):
        return int(node.attrs["index"])  # type: ignore[arg-type]
    return 1 << 30


def _row_key(d: Difference, partitioned: bool, rows: dict[str, Row], live: bool) -> str:
    """Return the row of a difference: the partition its scope chain starts with, else the disk row."""
    if not partitioned or not d.chain:
        return DISK_ROW
    first = d.chain[0]
    if first in rows:
        return first
    # A saved result has no trees: its partitions are known only from the chains.
    return first if not live and first.startswith("partition ") else DISK_ROW


def _contained(inner: tuple[Extent, ...], outer: tuple[Extent, ...]) -> bool:
    return bool(inner) and all(any(o.offset <= e.offset and e.end <= o.end for o in outer) for e in inner)


def differing_bytes(diffs: list[Difference]) -> int:
    """Return the differing bytes of ``diffs``, not counting a difference whose bytes another one already holds.

    Each difference counts the differing bytes in the union of its A and B extents; a difference whose A and B
    extents both lie inside one already counted is skipped (a ``content.*`` field inside its file's ``data``).
    """
    order = sorted(diffs, key=lambda d: (-sum(e.length for e in d.extents_a + d.extents_b), d.ref))
    counted: list[Difference] = []
    total = 0
    for d in order:
        if any(_contained(d.extents_a, c.extents_a) and _contained(d.extents_b, c.extents_b) for c in counted):
            continue
        counted.append(d)
        total += d.bytes
    return total


def _overlap(xs: list[Extent], ys: list[Extent]) -> bool:
    xs, ys = sorted(xs), sorted(ys)
    i = j = 0
    while i < len(xs) and j < len(ys):
        if xs[i].offset < ys[j].end and ys[j].offset < xs[i].end:
            return True
        if xs[i].end <= ys[j].end:
            i += 1
        else:
            j += 1
    return False


def row_bytes(row: Row) -> tuple[int, bool]:
    """Return ``(differing bytes inside the row, exact)``.

    A finding lying wholly in the row counts its own byte total: the engine counts each differing byte in exactly
    one finding (a compressed file's bytes go to the stream's finding, not also to the file's).  A finding that
    spans rows counts its differences here; when those share bytes with another finding in the row the sum is an
    upper bound (not exact).
    """
    total = 0
    spans: list[list[Extent]] = []
    partial: list[int] = []
    for i, (f, diffs) in enumerate(row.parts):
        whole = len(diffs) == len(f.causes) + len(f.derived)
        total += f.bytes if whole else differing_bytes(diffs)
        spans.append([e for d in diffs for e in d.extents_a + d.extents_b])
        if not whole:
            partial.append(i)
    exact = not any(_overlap(spans[i], spans[j]) for i in partial for j in range(len(spans)) if j != i)
    return total, exact


def rows_bytes(report: Report, rows: list[Row]) -> list[tuple[int, bool]]:
    """Return ``(bytes, exact)`` per row; the disk row gets the remainder of the total when the others are exact."""
    out = [row_bytes(r) for r in rows]
    if len(rows) == 1 and rows[0].name == "whole image":
        return [(report.summary.bytes_differing, True)]
    if rows and not out[0][1] and all(ex for _n, ex in out[1:]):
        rest = report.summary.bytes_differing - sum(n for n, _ex in out[1:])
        out[0] = (max(rest, 0), True)
    return out


# -- changed files ----------------------------------------------------------------------------------------------------


def _is_text(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    return controls <= len(text) // 100


def unified(path: str, a: bytes, b: bytes, limit: int = DIFF_LINES) -> list[str]:
    """Return a unified diff of two text versions, capped at ``limit`` lines (a note says how many were cut)."""
    la = a.decode("utf-8").splitlines()
    lb = b.decode("utf-8").splitlines()
    lines = list(difflib.unified_diff(la, lb, f"a{path}", f"b{path}", n=2, lineterm=""))
    if not lines and a != b:
        lines = [f"--- a{path}", f"+++ b{path}", "(the files differ only in line endings or a final newline)"]
    if len(lines) > limit:
        cut = len(lines) - limit
        lines = lines[:limit] + [f"… {cut} more line(s) of diff not shown"]
    return lines


def _is_file_diff(d: Difference) -> bool:
    """Return True for a file's data difference or a named field inside a file."""
    if d.kind.startswith("content."):
        return True
    return d.field == "data" and (d.detail is not None or d.content_a is not None or bool(d.attrs.get("content")))


def _path_of(d: Difference) -> str:
    return str(d.attrs.get("path") or d.node_path)


@dataclass(slots=True)
class ChangedFile:
    """Everything the report says about one changed file, across all findings."""

    path: str
    location: str = ""
    data: Difference | None = None
    """The file-level ``data`` difference (absent when named fields account for every differing byte)."""
    fields: list[tuple[Difference, str]] = field(default_factory=list)
    """Named ``content.*`` fields inside the file, with the id of the rule that claimed each."""
    content_a: bytes | None = None
    content_b: bytes | None = None
    detail: str | None = None


class FileIndex:
    """The changed files of a whole report, by path (a file's differences may sit in several findings)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.files: dict[str, ChangedFile] = {}
        for f in findings:
            for d in f.causes:
                if _is_file_diff(d):
                    self._add(d, f.rule.id)

    def _add(self, d: Difference, rule_id: str) -> None:
        path = _path_of(d)
        cf = self.files.setdefault(path, ChangedFile(path=path))
        if d.kind.startswith("content."):
            cf.fields.append((d, rule_id))
            if not cf.location:
                cf.location = d.location.rsplit(" / ", 1)[0]
        else:
            cf.data = d
            cf.location = d.location
        if d.content_a is not None and d.content_b is not None and cf.content_a is None:
            cf.content_a, cf.content_b = d.content_a, d.content_b
        if d.detail and cf.detail is None:
            cf.detail = content_detail(d)

    def of(self, diffs: list[Difference]) -> list[ChangedFile]:
        """Return the changed files that ``diffs`` touch, ordered by path."""
        paths = sorted({_path_of(d) for d in diffs if _is_file_diff(d)})
        return [self.files[p] for p in paths if p in self.files]


class Diffoscope:
    """Runs diffoscope on kept file contents, once per file, with bounded time and output."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.exe = shutil.which("diffoscope") if enabled else None
        self.shown: dict[str, str] = {}
        """Path -> the section whose changed-files block already holds diffoscope's output for it."""

    def notice(self) -> str | None:
        """Return the line saying why no diffoscope output follows, or None when it runs."""
        if not self.enabled or self.exe:
            return None
        return "`--content-diff` was requested but diffoscope is not installed; the diffs below are imgdiff's own."

    def run(self, path: str, a: bytes, b: bytes) -> list[str]:
        """Return diffoscope's text output for the two versions of ``path`` (bounded), or a one-line reason."""
        if not self.exe:
            return []
        name = os.path.basename(path.rstrip("/")) or "file"
        with tempfile.TemporaryDirectory(prefix="imgdiff-md-") as tmp:
            for side, data in (("a", a), ("b", b)):
                os.mkdir(os.path.join(tmp, side))
                with open(os.path.join(tmp, side, name), "wb") as fh:
                    fh.write(data)
            try:
                proc = subprocess.run(
                    [self.exe, "--no-progress", "--text", "-", f"a/{name}", f"b/{name}"],
                    cwd=tmp,
                    capture_output=True,
                    timeout=DIFFOSCOPE_TIMEOUT,
                    check=False,
                    env=dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8"),
                )
            except subprocess.TimeoutExpired:
                return [f"(diffoscope did not finish within {DIFFOSCOPE_TIMEOUT} s)"]
            except OSError as exc:
                return [f"(diffoscope could not be run: {exc.strerror or exc})"]
            text = proc.stdout.decode("utf-8", "replace").replace(tmp, "")
            if proc.returncode not in (0, 1):
                err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
                return [f"(diffoscope failed with status {proc.returncode}: {err[-1] if err else 'no message'})"]
        lines = text[:DIFFOSCOPE_BYTES].splitlines()
        cut = len(text.splitlines()) - min(len(lines), DIFFOSCOPE_LINES)
        lines = lines[:DIFFOSCOPE_LINES]
        if cut > 0 or len(text) > DIFFOSCOPE_BYTES:
            lines.append(f"… diffoscope output cut ({len(text.splitlines())} lines in all)")
        return lines


def render_files(files: list[ChangedFile], finding: Finding, dscope: Diffoscope) -> list[str]:
    """Return the "Changed files" block of a finding: ranges, text diff, fields named by other findings."""
    out: list[str] = []
    mine = {id(d) for d in finding.causes}
    for cf in files[:MAX_FILES]:
        out.append(f"- {code(cf.path)} ({plain(cf.location)})")
        others = [(d, rid) for d, rid in cf.fields if id(d) not in mine]
        if others:
            counts: dict[tuple[str, str], int] = {}
            for d, rid in others:
                key = (field_name(d), code(rid) if rid != UNCLASSIFIED else NOT_TRACKED)
                counts[key] = counts.get(key, 0) + 1
            named = ", ".join(f"{fn}{f' ×{n}' if n > 1 else ''} ({rid})" for (fn, rid), n in counts.items())
            out.append(f"  - named fields of this file in other findings: {named}")
        if cf.detail:
            out.append(f"  - {plain(cf.detail)}")
        if cf.content_a is not None and cf.content_b is not None:
            if _is_text(cf.content_a) and _is_text(cf.content_b):
                lines = unified(cf.path, cf.content_a, cf.content_b)
                fence = fence_for("\n".join(lines))
                out.append("")
                out.append(f"  {fence}diff")
                out.extend(f"  {ln}" if ln else "" for ln in lines)
                out.append(f"  {fence}")
                out.append("")
                continue  # a text diff says it all; diffoscope is for binaries
            if not cf.fields:
                out.append("  - binary file without a known format: the differing byte ranges are all imgdiff can show")
            if cf.path in dscope.shown:
                out.append(f"  - diffoscope: see its output for this file under {dscope.shown[cf.path]} above")
                continue
            dl = dscope.run(cf.path, cf.content_a, cf.content_b)
            if dl:
                dscope.shown[cf.path] = code(finding.rule.id) if finding.rule.id != UNCLASSIFIED else NOT_TRACKED
                fence = fence_for("\n".join(dl))
                out.append("  - diffoscope:")
                out.append("")
                out.append(f"    {fence}")
                out.extend(f"    {ln}" if ln else "" for ln in dl)
                out.append(f"    {fence}")
                out.append("")
        elif dscope.enabled:
            out.append("  - no contents in this report for diffoscope (the file is larger than the engine keeps, or "
                       "the report was loaded from JSON)")
    if len(files) > MAX_FILES:
        rest = ", ".join(code(cf.path) for cf in files[MAX_FILES : MAX_FILES + 20])
        more = f" … and {len(files) - MAX_FILES - 20} more" if len(files) > MAX_FILES + 20 else ""
        out.append(f"- and {len(files) - MAX_FILES} more changed file(s): {rest}{more}")
    while out and out[-1] == "":
        out.pop()
    return out


# -- sections ---------------------------------------------------------------------------------------------------------

TOOL_FIELDS = {
    ("vfat.boot_sector", "BS_OEMName"): "vfat OEM name",
    ("iso9660.volume_descriptor", "data_preparer_identifier"): "ISO data preparer",
    ("iso9660.volume_descriptor", "application_identifier"): "ISO application",
}
"""Fields in which an image records the tool that wrote it (shown in the report header)."""
_TOOL_BUDGET = 3000


def recorded_tools(root: Node | None) -> list[str]:
    """Return ``"<value> (<what>)"`` for each tool name/version the image records (a bounded walk near the top)."""
    if root is None:
        return []
    out: dict[str, None] = {}
    queue: list[tuple[Node, int]] = [(root, 0)]
    budget = _TOOL_BUDGET
    while queue and budget > 0:
        node, depth = queue.pop(0)
        budget -= 1
        for f in node.fields:
            what = TOOL_FIELDS.get((node.kind, f.name))
            if what and isinstance(f.value, str) and f.value.strip():
                out[f"{' '.join(f.value.split())} ({what})"] = None
        if depth < 4:
            queue.extend((c, depth + 1) for c in node.children[:64])
    return list(out)


def _header(report: Report, rows: list[Row], items: list[FixItem]) -> list[str]:
    ctx = report.context
    config = ctx.get("config")
    title = f"# Reproducibility report: {plain(config)}" if config else "# Reproducibility report"
    s = report.summary
    out = [title, ""]
    if report.identical:
        out.append(f"**Reproducible:** the images are bit-for-bit identical ({s.bytes_compared} bytes compared).")
    else:
        head = verdict(report, items)
        label, _, rest = head.partition(": ")
        out.append(f"**{plain(label[:1].upper() + label[1:])}:** {plain(rest)}")
        out.append("")
        out.append(plain(byte_line(report)) + ".")
    out.append("")
    sha_a, sha_b = ctx.get("sha256_a"), ctx.get("sha256_b")
    body = [
        ["image", code(os.path.basename(report.a.path)), code(os.path.basename(report.b.path))],
        ["size", f"{report.a.size} bytes ({human_size(report.a.size)})",
         f"{report.b.size} bytes ({human_size(report.b.size)})"],
    ]
    if sha_a or sha_b:
        body.append(["sha256 (of the file as given)", code(sha_a) if sha_a else "—", code(sha_b) if sha_b else "—"])
    body.append(["layout", plain(report.a.format), plain(report.b.format)])
    tools_a, tools_b = recorded_tools(report.tree_a), recorded_tools(report.tree_b)
    if tools_a or tools_b:
        body.append(["tools the image records", "<br>".join(plain(t) for t in tools_a) or "—",
                     "<br>".join(plain(t) for t in tools_b) or "—"])
    for side, info in (("A", report.a), ("B", report.b)):
        if info.decompressed:
            body.append([f"{side} input", (f"{plain(info.decompressed)}-compressed; sizes and offsets are of the "
                                           "decompressed image"), ""])
    out.extend(table(["", "A", "B"], body))
    out.append("")
    if config:
        out.append(f"- configuration name (given with `--config`): {code(config)}")
    seed = ctx.get("seed")
    if seed:
        out.append(f"- seed checked (given with `--seed`; not necessarily the one the images were built with): "
                   f"{code(seed)}; the GPT finding says whether each image's GUIDs derive from it")
    out.append(f"- generated by: imgdiff {__version__}")
    if report.identical:
        return out
    out.append("")
    out.append(_sentence(rows))
    return out


def _sentence(rows: list[Row]) -> str:
    bad = [r for r in rows if not r.reproducible]
    good = [r for r in rows if r.reproducible]
    if not bad:
        return "Every region is reproducible."
    names = ", ".join(plain(r.name) for r in bad)
    verb = "is" if len(bad) == 1 else "are"
    if not good:
        return f"Not reproducible: {names}." if len(bad) > 1 else f"{names[:1].upper()}{names[1:]} {verb} not reproducible."
    others = ", ".join(plain(r.name) for r in good)
    return f"{names[:1].upper()}{names[1:]} {verb} not reproducible; reproducible: {others}."


def _to_fix(items: list[FixItem]) -> list[str]:
    """Return the "To fix" list: one numbered item per cause, its fix per builder as sub-bullets."""
    out = ["## To fix (most impactful first)", ""]
    for i, it in enumerate(items, start=1):
        where = f" in {plain(', '.join(it.where))}" if it.where and it.where != ["disk"] else ""
        out.append(f"{i}. **{plain(it.cause)}** — {code(it.rule.id)}, {_n(it.bytes, 'byte')}{where}")
        for b, text in it.fixes:
            out.append(f"   - {BUILDER_LABELS.get(b, b)}: {_inline(text)}")
    return out


def _n(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _inline(text: str) -> str:
    """Return rule prose (markdown with backtick code spans) on one line."""
    return " ".join(text.split())


def _rows_table(report: Report, rows: list[Row]) -> list[str]:
    body = []
    for r, (nbytes, exact) in zip(rows, rows_bytes(report, rows), strict=True):
        where_ = ""
        if r.offset is not None and r.size is not None:
            where_ = f"{r.offset} +{r.size} ({human_size(r.size)})" if r.size else f"{r.offset}"
        if r.presence:
            repro = f"no ({r.presence})"
        else:
            repro = "yes" if r.reproducible else "**no**"
        causes = ", ".join(code(x) if x != UNCLASSIFIED else NOT_TRACKED for x in r.rules) or "—"
        body.append(
            [plain(r.name), plain(r.filesystem) or "—", where_ or "—", repro, str(nbytes) if exact else f"≤ {nbytes}", causes]
        )
    return table(["Region", "Filesystem", "Offset +size", "Reproducible", "Bytes differing", "Causes"], body)


def _anchor(f: Finding, n: int) -> str:
    return f"{n}. {plain(f.rule.title)} ({f.rule.id})"


def _details(summary: str, lines: list[str]) -> list[str]:
    """Return ``lines`` folded into a ``<details>`` block (blank lines around, so markdown renders inside)."""
    return ["<details>", f"<summary>{summary}</summary>", "", *lines, "", "</details>"]


def _row_where(r: FieldRow, base: str) -> str:
    if r.count == 1:
        return where(r.first, base)
    places, n = r.places(base, 3)
    shown = ", ".join(plain(p) for p in places) + (f", … ({n} places)" if n > len(places) else "")
    return shown


def _row_values(r: FieldRow) -> tuple[str, str]:
    a, b = values_ab(r.first)
    if r.same_values or r.count == 1:
        return a, b
    return f"varies, e.g. {a}", f"varies, e.g. {b}"


def _fields_table(f: Finding) -> list[str]:
    rows = group_rows(f.causes)
    body = []
    for r in rows[:MAX_FIELDS]:
        a, b = _row_values(r)
        body.append([_row_where(r, f.location), field_name(r.first), a, b, str(r.count), str(r.bytes)])
    out = table(["Where", "Field", "A", "B", "Count", "Bytes"], body)
    if len(rows) > MAX_FIELDS:
        rest = sum(r.count for r in rows[MAX_FIELDS:])
        out += ["", f"… and {rest} more field(s) in {len(rows) - MAX_FIELDS} more row(s)."]
    if len(rows) > OPEN_ROWS:
        return _details(f"Fields: {len(rows)} rows for {f.cause_count} differing fields", out)
    return out


def _derived(f: Finding) -> list[str]:
    if not f.derived:
        return []
    rows = group_rows(f.derived)
    out = []
    for r in rows[:MAX_DERIVED]:
        a, b = _row_values(r)
        count = f" ×{r.count}" if r.count > 1 else ""
        out.append(f"- {_row_where(r, f.location)} / {field_name(r.first)}{count}: {a} → {b}")
    if len(rows) > MAX_DERIVED:
        out.append(f"- … and {sum(r.count for r in rows[MAX_DERIVED:])} more in {len(rows) - MAX_DERIVED} more row(s)")
    summary = (f"Derived differences: {f.derived_count} consequences folded into this cause (checksums, copies, "
               f"sizes), not causes themselves; {len(rows)} row(s)")
    return _details(summary, out)


def _paths(f: Finding) -> list[str]:
    paths = f.paths
    if not paths:
        return []
    shown = ", ".join(code(p) for p in paths[:MAX_PATHS])
    more = f" … and {len(paths) - MAX_PATHS} more" if len(paths) > MAX_PATHS else ""
    if len(paths) <= OPEN_PATHS:
        return [f"**Paths** ({len(paths)}): {shown}"]
    return _details(f"Paths ({len(paths)})", [shown + more])


def _cause_section(f: Finding, n: int, index: FileIndex, dscope: Diffoscope, item: FixItem | None) -> list[str]:
    r = f.rule
    out = [f"### {_anchor(f, n)}", ""]
    out.append(f"- rule: {code(r.id)} {code(r.name)}")
    out.append(f"- layer: **{plain(r.layer)}**")
    if r.component:
        out.append(f"- responsible: {plain(r.component)}")
    out.append(f"- where: {plain(scope_name(f))} ({_n(f.bytes, 'byte')} differ)")
    if r.fixed_in:
        out.append(f"- fixed in: {plain(r.fixed_in)}")
    if r.references:
        out.append("- upstream: " + ", ".join(_link(x) for x in r.references))
    out.append("")
    if r.explanation:
        out.extend(_paragraphs(r.explanation))
        out.append("")
    out.extend(_fields_table(f))
    out.append("")
    tnote = time_note(f)
    if tnote:
        out.append(f"**Times:** {plain(tnote)}")
        out.append("")
    if f.note:
        out.append(f"**Note:** {plain(f.note)}")
        out.append("")
    for block in (_paths(f), _derived(f)):
        if block:
            out.extend(block)
            out.append("")
    files = index.of(f.causes)
    if files:
        out.append("**Changed files:**")
        out.append("")
        out.extend(render_files(files, f, dscope))
        out.append("")
    out.append("**How to fix:**")
    out.append("")
    if item is not None and item.fixes:
        out.extend(f"- {BUILDER_LABELS.get(b, b)}: {_inline(text)}" for b, text in item.fixes)
    else:
        out.extend(_paragraphs(r.fix))
    out.append("")
    return out


def _link(ref: str) -> str:
    if re.match(r"^https?://\S+$", ref):
        return f"<{ref}>"
    return plain(ref)


def _paragraphs(text: str) -> list[str]:
    """Return rule prose (already markdown: rule authors write backticks) as paragraphs."""
    out: list[str] = []
    for p in text.strip().split("\n\n"):
        if out:
            out.append("")
        out.append(" ".join(p.split()))
    return out


def _unclassified_section(findings: list[Finding], index: FileIndex, dscope: Diffoscope) -> list[str]:
    out = [
        f"## {NOT_TRACKED[:1].upper()}{NOT_TRACKED[1:]}",
        "",
        (
            "No rule explains these differences yet, so their bytes count as unexplained. The fields and their byte "
            "offsets (absolute, in the image) are listed so that the cause can be tracked down."
        ),
        "",
    ]
    for f in findings:
        out.append(f"### {plain(scope_name(f))} ({_n(f.bytes, 'byte')})")
        out.append("")
        rows = group_rows(f.causes)
        body = []
        for r in rows[:MAX_FIELDS]:
            d = r.first
            a, b = _row_values(r)
            body.append(
                [_row_where(r, f.location), field_name(d), plain(d.change), a, b,
                 cell(extents_text(d.extents_a)),
                 "as in A" if d.change == Change.RAW else cell(extents_text(d.extents_b)), str(r.count), str(r.bytes)]
            )
        block = table(["Where", "Field", "Change", "A", "B", "Offsets in A", "Offsets in B", "Count", "Bytes"], body)
        if len(rows) > MAX_FIELDS:
            block += ["", f"… and {sum(r.count for r in rows[MAX_FIELDS:])} more difference(s)."]
        out.extend(_details(f"Fields: {len(rows)} rows for {f.cause_count} differences", block)
                   if len(rows) > OPEN_ROWS else block)
        out.append("")
        if f.derived:
            out.extend(_derived(f))
            out.append("")
        files = index.of(f.causes)
        if files:
            out.append("**Changed files:**")
            out.append("")
            out.extend(render_files(files, f, dscope))
            out.append("")
    return out


def render(report: Report, content_diff: bool = False, builder: str | None = None) -> str:
    """Return the markdown report of ``report`` (deterministic: same report, same text)."""
    rows = build_rows(report)
    dscope = Diffoscope(content_diff)
    index = FileIndex(report.findings)
    items = fix_items(report, builder)
    by_rule = {it.rule.id: it for it in items}
    out = _header(report, rows, items)
    out.append("")
    if items:
        out.extend(_to_fix(items))
        out.append("")
    out.append("## Partitions")
    out.append("")
    out.extend(_rows_table(report, rows))
    if report.tree_a is None and report.tree_b is None and not report.identical:
        out.append("")
        out.append("(Regions are taken from the differences' scopes: partitions without differences are not listed.)")
    out.append("")
    tracked = [f for f in report.findings if f.rule.id != UNCLASSIFIED]
    open_ = [f for f in report.findings if f.rule.id == UNCLASSIFIED]
    notice = dscope.notice()
    if notice and index.files:
        out.append(f"> {notice}")
        out.append("")
    elif notice:
        out.append(f"> {notice} (No changed file needed it.)")
        out.append("")
    if tracked:
        out.append("## Tracked-down causes")
        out.append("")
        summary_rows = [
            [str(i), code(f.rule.id), plain(f.rule.title), plain(f.rule.layer), plain(scope_name(f)), str(f.bytes)]
            for i, f in enumerate(tracked, start=1)
        ]
        out.extend(table(["#", "Rule", "Cause", "Layer", "Where", "Bytes"], summary_rows))
        out.append("")
        for i, f in enumerate(tracked, start=1):
            out.extend(_cause_section(f, i, index, dscope, by_rule.get(f.rule.id)))
    if open_:
        out.extend(_unclassified_section(open_, index, dscope))
    if report.errors:
        out.append("## Could not be parsed")
        out.append("")
        out.append("imgdiff could not fully parse or validate these structures, so the result may be partial (bytes "
                   "of an unparsed structure count as unexplained):")
        out.append("")
        out.extend(f"- {plain(e)}" for e in report.errors)
        out.append("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


__all__ = ["recorded_tools", "render"]

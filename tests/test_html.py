"""The HTML report (``imgdiff report --format html``): one self-contained page, checked in headless Chromium.

Chromium (Debian's ``chromium`` package, installed by .ci/setup) renders the page from a file URL with networking
off; the test dumps the rendered DOM and takes a screenshot.  Every cause's title must be in an open ``<details>``
of the rendered page, and the page must load nothing from anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from imgdiff.model import Report
from imgdiff.report import html
from imgdiff.report.json import dumps, hex_snippets, load_report

from .test_report import named

PAIRS = ["report-esp-root", "repart-esp-root-random", "content-formats", "gpt-identical", "iso-no-sde", "gpt-bad-crc"]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Causes(HTMLParser):
    """Collect the titles in ``<details class="cause" open>`` summaries and every resource-loading attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.open_causes = 0
        self.loads: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "details" and a.get("class") == "cause" and "open" in a:
            self.open_causes += 1
        if tag == "span" and a.get("class") == "title":
            self._in_title = True
            self.titles.append("")
        if tag in ("script", "img", "iframe", "link", "source", "video", "audio") and (a.get("src") or a.get("href")):
            self.loads.append(f"{tag} {a.get('src') or a.get('href')}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles[-1] += data


def parse(page: str) -> _Causes:
    p = _Causes()
    p.feed(page)
    return p


def _page(pair, name: str) -> tuple[str, Report]:  # type: ignore[no-untyped-def]
    """Return the HTML report of fixture pair ``name`` and its report (hex excerpts read while it is open)."""
    from imgdiff.engine.analysis import analyze

    a, b = pair(name)
    report = analyze(a, b, keep_open=True)
    try:
        return html.render(named(report, name)), report
    finally:
        report.close()


@pytest.mark.parametrize("name", PAIRS)
def test_page_is_self_contained_and_lists_every_cause(name: str, pair) -> None:  # type: ignore[no-untyped-def]
    page, report = _page(pair, name)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    p = parse(page)
    assert p.loads == [], p.loads  # nothing is fetched: CSS and JS are inline
    assert "<style>" in page and "<script>" in page
    tracked = [f for f in report.findings if f.rule.id != "unclassified"]
    assert [t for t in p.titles][: len(tracked)] == [f.rule.title for f in tracked]
    assert p.open_causes == len(report.findings)
    first = page.index('id="verdict"')
    assert first < page.index("<table>")  # the verdict comes first
    if name == "report-esp-root":
        assert ">not reproducible: 3 causes — repart seed (random GPT GUIDs), FAT volume ID, /etc/os-release content<" in page
        assert "debugfs -R &#x27;dump &quot;/etc/os-release&quot; os-release.a&#x27;" in page
        # side-by-side hex: the DiskGUID row, its bytes differing in red on both sides
        assert '<div class="hex"><div><div class="side">A</div><pre>00000230  de ff 01 00 00 00 00 00 <span class="d">8d</span>' in page


def test_page_from_saved_json_uses_the_snippets(pair) -> None:  # type: ignore[no-untyped-def]
    """A report loaded from JSON has no image to read: the hex excerpts come from the saved hex_a/hex_b."""
    from imgdiff.engine.analysis import analyze

    a, b = pair("gpt-repart-random-seed")
    report = analyze(a, b, keep_open=True)
    try:
        doc = dumps(report, hex_snippets(report, lambda o, n: report.read("a", o, n) or b"",
                                         lambda o, n: report.read("b", o, n) or b""))
    finally:
        report.close()
    loaded = load_report(json.loads(doc))
    page = html.render(loaded)
    assert page.count('<div class="hex">') >= 2 and '<span class="d">' in page
    assert "GPT disk and partition GUIDs are random" in page


def test_cli_writes_html(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = pair("report-esp-root")
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "imgdiff", "report", "--format", "html", "-o", str(out), str(a), str(b)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1 and r.stdout == "", r.stderr
    page = out.read_text()
    assert re.search(r"<th>sha256</th><td><code>[0-9a-f]{64}</code></td><td><code>[0-9a-f]{64}</code></td>", page)


@pytest.mark.skipif(chromium() is None, reason="chromium not installed (.ci/setup installs it)")
@pytest.mark.parametrize("name", ["repart-esp-root-random", "content-formats"])
def test_renders_in_headless_chromium(name: str, pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Chromium renders the page: every cause title is in an open <details> of the live DOM; a screenshot is made."""
    page, report = _page(pair, name)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    exe = chromium()
    assert exe is not None
    base = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    live = parse(dom.stdout)
    titles = [f.rule.title for f in report.findings if f.rule.id != "unclassified"]
    assert titles and all(t in live.titles for t in titles), (titles, live.titles)
    assert live.open_causes == len(report.findings)
    shot = tmp_path / "shot.png"
    r = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,1600", path.as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with content, not a blank screen

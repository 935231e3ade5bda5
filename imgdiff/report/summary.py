"""The answer first: byte accounting that counts unclassified bytes as unexplained, and the one-line verdict.

``bytes_unexplained`` of the JSON v1 contract (and :class:`~imgdiff.model.Summary`) counts only the differing
bytes that no parsed field owns.  Bytes in parsed fields that no rule explains (the ``unclassified`` findings) are
not explained either: :func:`accounting` separates the three kinds so every renderer states the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgdiff.model import Report
from imgdiff.report.fixes import FixItem, fix_items

UNCLASSIFIED = "unclassified"


@dataclass(frozen=True, slots=True)
class Accounting:
    """Where the differing bytes went."""

    differing: int
    explained: int
    """Differing bytes a rule names the cause of (its derived bytes included)."""
    unclassified: int
    """Differing bytes in parsed fields that no rule explains."""
    unparsed: int
    """Differing bytes that no parsed field owns (the JSON's ``bytes_unexplained``)."""

    @property
    def unexplained(self) -> int:
        """Return every differing byte without a named cause: unclassified plus unparsed."""
        return self.unclassified + self.unparsed


def accounting(report: Report) -> Accounting:
    """Return the byte accounting of ``report``.

    Unparsed (raw) differences sit in the unclassified findings too, so their bytes are taken out of those
    findings' totals.  When the model's summary carries ``bytes_unclassified`` (an engine count over the exact
    differing ranges) it is used as is.
    """
    s = report.summary
    unparsed = s.bytes_unexplained
    given = getattr(s, "bytes_unclassified", None)
    if isinstance(given, int):
        unclassified = given
    else:
        in_unclassified = sum(f.bytes for f in report.findings if f.rule.id == UNCLASSIFIED)
        unclassified = max(in_unclassified - unparsed, 0)
    unclassified = min(unclassified, max(s.bytes_differing - unparsed, 0))
    explained = max(s.bytes_differing - unclassified - unparsed, 0)
    return Accounting(s.bytes_differing, explained, unclassified, unparsed)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def byte_line(report: Report) -> str:
    """Return ``"2813 of 83886080 bytes differ: 2813 explained"`` (with unexplained kinds when there are any)."""
    acc = accounting(report)
    s = report.summary
    if report.identical:
        return f"{s.bytes_compared} bytes compared, none differ"
    if s.bytes_differing == 0 and report.a.size == report.b.size:
        return (f"{s.bytes_compared} bytes of the decompressed images compared, none differ; the compressed files "
                "differ")
    parts = [f"{acc.explained} explained"]
    if acc.unexplained:
        kinds = []
        if acc.unclassified:
            kinds.append(f"{acc.unclassified} in fields no rule explains")
        if acc.unparsed:
            kinds.append(f"{acc.unparsed} in regions imgdiff could not parse")
        parts.append(f"{acc.unexplained} unexplained ({', '.join(kinds)})")
    return f"{s.bytes_differing} of {s.bytes_compared} bytes differ: " + ", ".join(parts)


def verdict(report: Report, items: list[FixItem] | None = None, limit: int = 6) -> str:
    """Return the first line of every output: ``not reproducible: 3 causes — repart seed, …``."""
    if report.identical:
        return f"reproducible: the images are bit-for-bit identical ({report.summary.bytes_compared} bytes)"
    if items is None:
        items = fix_items(report)
    acc = accounting(report)
    if not items:
        if acc.unexplained:
            return f"not reproducible: no known cause — {_plural(acc.unexplained, 'byte')} differ that no rule explains"
        if report.summary.bytes_differing == 0 and report.a.size == report.b.size:
            return "not reproducible: the compressed files differ, the images inside are identical"
        return "not reproducible: the images differ (sizes only)"
    names = [it.cause for it in items[:limit]]
    if len(items) > limit:
        names.append(f"{len(items) - limit} more")
    text = f"not reproducible: {_plural(len(items), 'cause')} — {', '.join(names)}"
    if acc.unexplained:
        text += f"; {_plural(acc.unexplained, 'byte')} unexplained"
    return text


__all__ = ["Accounting", "accounting", "byte_line", "verdict"]

"""Say what time values are, from the values: one fixed value, one moment (a clock read once), or spread mtimes.

Rules name the mechanism that writes a time field; whether a given image holds a build clock, a pinned value or
its inputs' own modification times is a property of the values.  :func:`time_note` looks at the decoded times of
a finding's cause fields (the parsers' display strings, ``2024-05-06 07:08:00`` or ``2024-05-06T07:08:00Z``) on
each side and describes them without assuming: a single value that is a round epoch (a multiple of an hour or of
100,000 s, as ``SOURCE_DATE_EPOCH`` values and ``touch -d @1700000000`` are) is called a fixed value, values within
a few minutes of each other one moment, values spread over days the inputs' own times.
"""

from __future__ import annotations

import calendar
import re
import time

from imgdiff.model import Difference, Finding

_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)")
MOMENT = 600
"""Seconds within which times count as one moment."""


def parse_time(display: str | None) -> int | None:
    """Return the seconds since the epoch of the first ``YYYY-MM-DD hh:mm:ss`` in ``display`` (read as UTC)."""
    if not display:
        return None
    m = _DATE.search(display)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    try:
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (OverflowError, ValueError):
        return None


def _fmt(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def is_round(t: int) -> bool:
    """Return True for an epoch value a person or a pinned configuration would pick (not a clock reading)."""
    return t % 3600 == 0 or t % 100_000 == 0


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 3 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _side(name: str, values: list[int], n: int) -> str:
    """Describe one side's ``values`` of ``n`` time fields (a group's members each count)."""
    lo, hi = min(values), max(values)
    fields = "field" if n == 1 else f"all {n} fields"
    if lo == hi:
        if is_round(lo):
            return f"{name} has one fixed value in {fields}, {_fmt(lo)} (epoch {lo}, a round value: a pinned time, not a clock)"
        return f"{name} has one value in {fields}, {_fmt(lo)}"
    if hi - lo <= MOMENT:
        return f"{name}'s times lie within {_span(hi - lo)} ({_fmt(lo)} … {_fmt(hi)}): written at one moment"
    if hi - lo >= 86400:
        return f"{name}'s times spread over {_span(hi - lo)} ({_fmt(lo)} … {_fmt(hi)}): the inputs' own times"
    return f"{name}'s times spread over {_span(hi - lo)} ({_fmt(lo)} … {_fmt(hi)})"


def time_values(diffs: list[Difference]) -> tuple[list[int], list[int]]:
    """Return the decoded A and B times of the modified differences whose values are dates."""
    ta: list[int] = []
    tb: list[int] = []
    for d in diffs:
        if d.change != "modified":
            continue
        a, b = parse_time(d.display_a), parse_time(d.display_b)
        if a is not None and b is not None:
            ta.append(a)
            tb.append(b)
            if d.count > 1:  # a group: its display ends in its members' range ("all <earliest> … <latest>")
                ta.extend(_range(d.display_a, a))
                tb.extend(_range(d.display_b, b))
    return ta, tb


def _range(display: str | None, first: int) -> list[int]:
    """Return the earliest and latest time a group's display names after its first value (none: the first)."""
    tail = (display or "").rpartition("; all ")[2] if "; all " in (display or "") else ""
    found = [t for t in (parse_time(x) for x in tail.split(" … ")) if t is not None]
    return found or [first]


def time_note(f: Finding) -> str:
    """Return a sentence describing the finding's time values on both sides, or ``""`` when it has none."""
    ta, tb = time_values(f.causes)
    if not ta or len(ta) * 2 < len(f.causes):  # only for findings that are about times
        return ""
    n = sum(d.count for d in f.causes if d.change == "modified" and parse_time(d.display_a) is not None
            and parse_time(d.display_b) is not None)
    parts = [_side("A", ta, n), _side("B", tb, n)]
    if min(ta) == max(ta) and min(tb) == max(tb) and ta[0] != tb[0]:
        delta = tb[0] - ta[0]
        parts.append(f"B is {_span(abs(delta))} {'later' if delta > 0 else 'earlier'} than A")
    return "; ".join(parts) + "."


__all__ = ["is_round", "parse_time", "time_note", "time_values"]

"""Fold near-identical differences into one row per (node kind, field, change) and value pattern, with counts.

A finding about 45 inodes' ``i_generation`` or 24 directory entries' ``DIR_WrtTime`` is one row ("×45") in every
renderer instead of 45 lines: the row keeps the values when they are the same everywhere (or when a handful of
value pairs repeat) and otherwise says the values vary and shows the first example.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgdiff.model import Difference
from imgdiff.report.values import to_json

DISTINCT_PAIRS = 3
"""Up to this many different A → B value pairs of one field get a row each; more become one "varies" row."""


@dataclass(slots=True)
class Row:
    """Differences of one field (one kind, one change) that share a value pattern."""

    diffs: list[Difference] = field(default_factory=list)
    same_values: bool = True
    """True when every difference in the row has the same A and the same B value."""

    @property
    def first(self) -> Difference:
        """Return the example difference."""
        return self.diffs[0]

    @property
    def count(self) -> int:
        """Return how many fields the row stands for (a group difference counts its members)."""
        return sum(d.count for d in self.diffs)

    @property
    def bytes(self) -> int:
        """Return the differing bytes of the row's differences (summed)."""
        return sum(d.bytes for d in self.diffs)

    def places(self, base: str = "", limit: int = 4) -> tuple[list[str], int]:
        """Return the first ``limit`` places (paths, else locations below ``base``) and how many there are."""
        names: list[str] = []
        seen: set[str] = set()
        total = 0
        for d in self.diffs:
            name = str(d.attrs.get("path") or "") or _below(d.location, base, d.chain)
            if name not in seen:
                seen.add(name)
                names.append(name)
                total += d.count  # a group difference stands for that many objects
        return names[:limit], total


def _below(location: str, base: str, chain: tuple[str, ...] = ()) -> str:
    """Return ``location`` below ``base`` (the finding's common location), else below its scope chain."""
    whole = location
    if base and location.startswith(base):
        return location[len(base) :].lstrip(" /") or _last(whole)
    for label in chain:
        if location.startswith(label):
            location = location[len(label) :].lstrip(" /")
    return location or _last(whole)


def _last(location: str) -> str:
    """Return the innermost label of a location (for display when nothing lies below the common location)."""
    return location.rsplit(" / ", 1)[-1] or "here"


def _values_key(d: Difference) -> str:
    return repr((to_json(d.a), to_json(d.b), d.display_a, d.display_b))


def group_rows(diffs: list[Difference]) -> list[Row]:
    """Return the rows of ``diffs`` in first-seen order (a difference with a detail keeps a row of its own)."""
    buckets: dict[tuple[str, str, str], list[Difference]] = {}
    alone: list[Difference] = []
    order: list[tuple[str, str, str] | Difference] = []
    for d in diffs:
        if d.detail or d.change == "raw":
            alone.append(d)
            order.append(d)
            continue
        key = (d.kind, d.field, d.change)
        if key not in buckets:
            buckets[key] = []
            order.append(key)
        buckets[key].append(d)
    rows: list[Row] = []
    for k in order:
        if isinstance(k, Difference):
            rows.append(Row([k]))
            continue
        members = buckets[k]
        by_values: dict[str, list[Difference]] = {}
        for d in members:
            by_values.setdefault(_values_key(d), []).append(d)
        if len(by_values) <= DISTINCT_PAIRS:
            # a group difference's values are its first member's: its row's values vary
            rows.extend(Row(v, same_values=not any(d.count > 1 for d in v)) for v in by_values.values())
        else:
            rows.append(Row(members, same_values=False))
    return rows


__all__ = ["Row", "group_rows"]

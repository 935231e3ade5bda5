"""The rule data model and its strict loader: one TOML file per rule under rules/.

Unknown keys, missing keys, an unknown layer or change kind, an unknown predicate and duplicate ids or names are
errors (:class:`~imgdiff.errors.RuleError`) naming the file.  See rules/README.md for the schema.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgdiff.errors import RuleError
from imgdiff.model import LAYERS, Change, Difference, RuleInfo
from imgdiff.ruleset.predicates import ANNOTATIONS, PREDICATES, ExplainContext, load_all

RULE_KEYS = {
    "id", "name", "title", "layer", "component", "fixed_in", "explanation", "fix", "fix_for", "references", "priority",
    "fixtures", "derived", "match", "explains", "annotate",
}
REQUIRED = {"id", "name", "title", "layer", "component", "explanation", "fix", "references", "fixtures", "match"}
MATCH_KEYS = {"kind", "field", "change", "attrs", "predicate"}
CHANGES = {Change.MODIFIED, Change.ADDED, Change.REMOVED, Change.MOVED, Change.RAW}
ID_RE = re.compile(r"^[A-Z]{2,5}\d{3}$")
BUILDERS = ("nixos", "repart", "mkosi", "plain")
"""The builders a fix can be written for, in the order they are shown (NixOS first)."""
FIX_KEYS = {"cause", *BUILDERS}
PLACEHOLDERS = frozenset({
    "image_a", "image_b", "fs_a", "fs_b", "mtools_a", "mtools_b", "partition", "partition_offset", "path",
    "paths", "file", "value_a", "value_b", "uuid_a", "hex_a", "seed", "new_uuid",
})
"""Names a ``fix_for`` template may use as ``{name}`` (filled per finding by :mod:`imgdiff.report.fixes`)."""
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def default_rules_dir() -> Path:
    """Return the rules/ directory: installed beside the package, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "rules", here.parent / "rules"):
        if cand.is_dir():
            return cand
    raise RuleError("rules directory not found beside the imgdiff package")


@functools.cache
def _globs(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Return a fast test for "matches one of these fnmatch patterns" (exact names become a set lookup)."""
    exact = {p for p in patterns if not any(ch in p for ch in "*?[")}
    rx = [p for p in patterns if p not in exact]
    if not rx:
        return exact.__contains__
    compiled = re.compile("|".join(fnmatch.translate(p) for p in rx))
    return lambda s: s in exact or compiled.match(s) is not None


@dataclass(frozen=True, slots=True)
class FixRuleInfo(RuleInfo):
    """:class:`RuleInfo` with the fix split by builder (until the model carries these fields itself).

    ``fix_for`` holds ``(builder, template)`` pairs in :data:`BUILDERS` order; ``cause`` is the short name of the
    cause for the verdict line (a template too: ``"{paths} content"``).  ``fix`` stays the plain prose.
    """

    fix_for: tuple[tuple[str, str], ...] = ()
    cause: str = ""


def fix_for(info: RuleInfo) -> dict[str, str]:
    """Return the rule's fix templates by builder (empty for a rule in the old string-only form)."""
    return dict(getattr(info, "fix_for", ()))


def cause_name(info: RuleInfo) -> str:
    """Return the short cause name template of a rule (its title when the rule gives none)."""
    return str(getattr(info, "cause", "") or info.title)


def _fix_table(raw: Any, where: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """Validate a ``[fix_for]`` table; return its builder templates (in :data:`BUILDERS` order) and the cause."""
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: fix_for must be a table")
    unknown = set(raw) - FIX_KEYS
    if unknown:
        raise RuleError(
            f"{where}: unknown key(s) in fix_for: {', '.join(sorted(unknown))} (known: {', '.join(sorted(FIX_KEYS))})"
        )
    for k, v in raw.items():
        if not isinstance(v, str) or not v.strip():
            raise RuleError(f"{where}: fix_for.{k} must be a non-empty string")
        bad = sorted({m for m in _PLACEHOLDER_RE.findall(v) if m not in PLACEHOLDERS})
        if bad:
            raise RuleError(
                f"{where}: fix_for.{k} uses unknown placeholder(s) {', '.join('{' + b + '}' for b in bad)} "
                f"(known: {', '.join(sorted(PLACEHOLDERS))})"
            )
    if not any(b in raw for b in BUILDERS):
        raise RuleError(f"{where}: fix_for needs at least one of {', '.join(BUILDERS)}")
    return tuple((b, prose(raw[b])) for b in BUILDERS if b in raw), " ".join(str(raw.get("cause", "")).split())


@dataclass(frozen=True, slots=True)
class Match:
    """A conjunction of glob and value tests on a :class:`Difference`."""

    kind: tuple[str, ...] = ()
    field: tuple[str, ...] = ()
    change: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    predicate: str | None = None

    def kind_matches(self, kind: str) -> bool:
        """Return True when a difference of node ``kind`` passes the ``kind`` test (the first of :meth:`matches`)."""
        return not self.kind or _globs(self.kind)(kind)

    def field_matches(self, field: str) -> bool:
        """Return True when a difference of field ``field`` passes the ``field`` test."""
        return not self.field or _globs(self.field)(field)

    def matches(self, d: Difference, ctx: ExplainContext) -> bool:
        """Return True when ``d`` passes every test given."""
        if self.kind and not _globs(self.kind)(d.kind):
            return False
        if self.field and not _globs(self.field)(d.field):
            return False
        return self.matches_rest(d, ctx)

    def matches_rest(self, d: Difference, ctx: ExplainContext) -> bool:
        """Return True when ``d``, whose kind and field passed (:meth:`kind_matches`, :meth:`field_matches`),
        passes the other tests."""
        if self.change and d.change not in self.change:
            return False
        for k, v in self.attrs:
            if not fnmatch.fnmatchcase(str(d.attrs.get(k)), v):
                return False
        return not (self.predicate and not PREDICATES[self.predicate](d, ctx))


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: what it matches, what it explains, and the text a person reads."""

    info: RuleInfo
    match: Match
    explains: tuple[Match, ...] = ()
    priority: int = 50
    fixtures: tuple[str, ...] = ()
    derived: bool = False
    annotate: str | None = None
    source: str = ""

    @property
    def id(self) -> str:
        """Return the rule id (``GPT001``)."""
        return self.info.id


UNCLASSIFIED = RuleInfo(
    id="unclassified",
    name="unclassified",
    title="Differences no rule explains",
    layer="unknown",
    explanation="These fields differ and no rule recognises the pattern; the values and offsets are shown so that "
    "the cause can be tracked down (and a rule written).",
    fix="Investigate the named fields; if the cause is known, add a rule under rules/.",
)


def prose(text: str) -> str:
    """Return TOML prose with lines joined and paragraphs (blank lines) kept."""
    paras = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paras if p)


def _strs(v: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise RuleError(f"{where}: {key} must be a string or a list of strings")


def _match(raw: Any, where: str) -> Match:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: match must be a table")
    unknown = set(raw) - MATCH_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown key(s) in match: {', '.join(sorted(unknown))}")
    if not raw:
        raise RuleError(f"{where}: match is empty")
    change = _strs(raw.get("change", []), where, "change")
    bad = set(change) - CHANGES
    if bad:
        raise RuleError(f"{where}: unknown change kind(s): {', '.join(sorted(bad))}")
    attrs = raw.get("attrs", {})
    if not isinstance(attrs, dict):
        raise RuleError(f"{where}: match.attrs must be a table")
    pred = raw.get("predicate")
    if pred is not None and pred not in PREDICATES:
        raise RuleError(f"{where}: unknown predicate {pred!r}")
    return Match(
        kind=_strs(raw.get("kind", []), where, "kind"),
        field=_strs(raw.get("field", []), where, "field"),
        change=change,
        attrs=tuple(sorted((str(k), str(v)) for k, v in attrs.items())),
        predicate=pred,
    )


def load_rule(path: Path) -> Rule:
    """Parse and validate one rule file."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{where}: {exc}") from None
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
    missing = REQUIRED - set(raw)
    if missing:
        raise RuleError(f"{where}: missing key(s): {', '.join(sorted(missing))}")
    for k in ("id", "name", "title", "layer", "component", "explanation", "fix", "fixed_in", "annotate"):
        if k in raw and not isinstance(raw[k], str):
            raise RuleError(f"{where}: {k} must be a string")
    if not ID_RE.match(raw["id"]):
        raise RuleError(f"{where}: id {raw['id']!r} is not of the form ABC123")
    if not NAME_RE.match(raw["name"]):
        raise RuleError(f"{where}: name {raw['name']!r} is not kebab-case")
    if raw["layer"] not in LAYERS:
        raise RuleError(f"{where}: layer {raw['layer']!r} is not one of {', '.join(LAYERS)}")
    if "annotate" in raw and raw["annotate"] not in ANNOTATIONS:
        raise RuleError(f"{where}: unknown annotation {raw['annotate']!r}")
    explains = raw.get("explains", [])
    if not isinstance(explains, list):
        raise RuleError(f"{where}: explains must be an array of tables")
    priority = raw.get("priority", 50)
    if not isinstance(priority, int):
        raise RuleError(f"{where}: priority must be an integer")
    fixtures = _strs(raw["fixtures"], where, "fixtures")
    if not fixtures:
        raise RuleError(f"{where}: a rule needs at least one fixture pair")
    fixes, cause = _fix_table(raw["fix_for"], where) if "fix_for" in raw else ((), "")
    info = FixRuleInfo(
        id=raw["id"],
        name=raw["name"],
        title=raw["title"],
        layer=raw["layer"],
        explanation=prose(raw["explanation"]),
        fix=prose(raw["fix"]),
        references=_strs(raw["references"], where, "references"),
        component=raw["component"],
        fixed_in=raw.get("fixed_in", ""),
        fix_for=fixes,
        cause=cause,
    )
    return Rule(
        info=info,
        match=_match(raw["match"], where),
        explains=tuple(_match(e, f"{where} explains") for e in explains),
        priority=priority,
        fixtures=fixtures,
        derived=bool(raw.get("derived", False)),
        annotate=raw.get("annotate"),
        source=where,
    )


@dataclass(slots=True)
class RuleSet:
    """All rules, in the order they are tried (priority, then id)."""

    rules: list[Rule] = field(default_factory=list)

    def get(self, rule_id: str) -> Rule | None:
        """Return the rule with ``rule_id`` (or its name), or None."""
        return next((r for r in self.rules if rule_id in (r.id, r.info.name)), None)


def load_rules(directory: Path | None = None) -> RuleSet:
    """Load and validate every ``*.toml`` under ``directory`` (default: the shipped rules/).

    A missing path, a file, or a directory without rule files is a :class:`RuleError`: loading no rules would
    silently turn every finding into ``unclassified``.
    """
    load_all()
    if directory is None:
        directory = default_rules_dir()
    elif not directory.exists():
        raise RuleError(f"{directory}: no such rules directory")
    elif not directory.is_dir():
        raise RuleError(f"{directory}: is not a directory (rules are loaded from a directory of *.toml files)")
    rules = [load_rule(p) for p in sorted(directory.rglob("*.toml"))]
    if not rules:
        raise RuleError(f"{directory}: no rule files (*.toml) in this directory")
    ids: dict[str, str] = {}
    names: dict[str, str] = {}
    for r in rules:
        if r.id in ids:
            raise RuleError(f"{r.source}: id {r.id} already used by {ids[r.id]}")
        if r.info.name in names:
            raise RuleError(f"{r.source}: name {r.info.name} already used by {names[r.info.name]}")
        ids[r.id] = r.source
        names[r.info.name] = r.source
    rules.sort(key=lambda r: (-r.priority, r.id))
    return RuleSet(rules)

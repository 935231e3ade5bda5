"""Negative rule tests: on every fixture pair, the set of rules that fire equals the pair's expected set exactly.

Each pair directory holds ``expected-rules.txt``: one line per rule id that must fire, followed by the reason taken
from the recipe (``EXT002  mke2fs without -E hash_seed= draws s_hash_seed at random``); ``#`` starts a comment and
a pair where nothing may fire has comments only.  The expectation is decided from the recipe's knobs and the
tools' behaviour, never from imgdiff's output, so a rule that fires on a pair whose recipe lacks its cause fails
here, and so does a cause no rule names.

Where imgdiff disagrees with the recipe today, the expectation stays correct and the pair is listed in
``KNOWN_WRONG`` with the reason: that test is a strict xfail, so it turns red once the disagreement is fixed and
the entry must be removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgdiff.ruleset.schema import load_rules

from .conftest import PAIRS, all_pairs

EXPECTED_FILE = "expected-rules.txt"
UNCLASSIFIED = "unclassified"
RULE_IDS = frozenset(r.id for r in load_rules().rules)
_LINE = re.compile(r"^(?P<id>\S+)\s+(?P<reason>\S.*)$")

KNOWN_WRONG: dict[str, str] = {}
"""``{pair: why imgdiff is wrong there}``: a strict xfail each, removed when the fix lands."""


def parse_expected(path: Path) -> dict[str, str]:
    """Return ``{rule id: reason}`` from an ``expected-rules.txt``; raise ValueError on a malformed line."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"{path}:{n}: expected 'RULE_ID  reason', got {raw!r}")
        rid = m["id"]
        if rid in out:
            raise ValueError(f"{path}:{n}: {rid} listed twice")
        out[rid] = m["reason"].strip()
    return out


def pair_dirs() -> list[str]:
    """Every directory under fixtures/pairs (with or without images: a pair missing its file must fail)."""
    return sorted(p.name for p in PAIRS.iterdir() if p.is_dir())


def _cases() -> list[object]:
    cases: list[object] = []
    for name in all_pairs():
        if not (PAIRS / name / EXPECTED_FILE).exists():
            continue
        marks = [pytest.mark.xfail(reason=KNOWN_WRONG[name], strict=True)] if name in KNOWN_WRONG else []
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


@pytest.mark.parametrize("name", _cases())
def test_fired_rules_equal_expected(analyzed, name: str) -> None:  # type: ignore[no-untyped-def]
    expected = set(parse_expected(PAIRS / name / EXPECTED_FILE))
    fired = {f.rule.id for f in analyzed(name).findings}
    misfired = sorted(fired - expected)
    missing = sorted(expected - fired)
    assert not misfired and not missing, (
        f"{name}: fired {sorted(fired)}, expected {sorted(expected)}; "
        f"fired without its cause in the recipe: {misfired}; expected but not fired: {missing}"
    )


def test_every_pair_has_an_expected_rules_file() -> None:
    dirs = pair_dirs()
    assert len(dirs) >= 37
    missing = [d for d in dirs if not (PAIRS / d / EXPECTED_FILE).exists()]
    assert missing == [], f"pairs without {EXPECTED_FILE}: {missing}"


@pytest.mark.parametrize("name", pair_dirs())
def test_expected_rules_file_names_known_rules(name: str) -> None:
    path = PAIRS / name / EXPECTED_FILE
    if not path.exists():
        pytest.skip(f"no {EXPECTED_FILE} (test_every_pair_has_an_expected_rules_file fails for it)")
    expected = parse_expected(path)
    unknown = sorted(rid for rid in expected if rid not in RULE_IDS and rid != UNCLASSIFIED)
    assert unknown == [], f"{path}: not a rule id: {unknown}"
    for rid, reason in expected.items():
        assert len(reason) >= 10, f"{path}: {rid} needs a reason from the recipe, got {reason!r}"


def test_known_wrong_names_real_pairs() -> None:
    # A stale entry would silently keep a fixed pair xfailing under another name.
    assert set(KNOWN_WRONG) <= set(all_pairs())
    for name in KNOWN_WRONG:
        assert (PAIRS / name / EXPECTED_FILE).exists(), name


def test_parser_is_strict(tmp_path: Path) -> None:
    p = tmp_path / EXPECTED_FILE
    p.write_text("# comment only\n\nEXT002  random hash seed  # trailing comment\nGPT001\tGUIDs random\n")
    assert parse_expected(p) == {"EXT002": "random hash seed", "GPT001": "GUIDs random"}
    p.write_text("EXT002\n")
    with pytest.raises(ValueError, match="expected 'RULE_ID  reason'"):
        parse_expected(p)
    p.write_text("EXT002 a reason\nEXT002 again\n")
    with pytest.raises(ValueError, match="EXT002 listed twice"):
        parse_expected(p)

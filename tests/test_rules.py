"""The rule set: the strict loader, and every rule fires on each fixture pair it names (made by real tools)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgdiff.errors import RuleError
from imgdiff.ruleset.schema import load_rule, load_rules

from .conftest import PAIRS

RULES = load_rules()
CASES = [(r.id, fx) for r in RULES.rules for fx in r.fixtures]


def test_rule_set_is_not_empty_and_ids_unique() -> None:
    ids = [r.id for r in RULES.rules]
    assert len(ids) == len(set(ids))
    assert {"GPT001", "GPT002", "GPT003", "GPT004", "GPT005", "GPT006", "MBR001", "IMG001"} <= set(ids)


@pytest.mark.parametrize(("rule_id", "fixture"), CASES, ids=[f"{r}-{f}" for r, f in CASES])
def test_rule_fires_on_its_fixture(analyzed, rule_id: str, fixture: str) -> None:  # type: ignore[no-untyped-def]
    assert (PAIRS / fixture / "a.img.xz").exists(), f"{rule_id}: fixture pair {fixture} missing"
    report = analyzed(fixture)
    fired = {f.rule.id for f in report.findings}
    assert rule_id in fired, f"{rule_id} did not fire on {fixture}; fired: {sorted(fired)}"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "X.toml"
    p.write_text(text)
    return p


GOOD = """
id = "TST001"
name = "test-rule"
title = "t"
layer = "mkfs"
component = "c"
explanation = "e"
fix = "f"
references = ["https://example.org"]
fixtures = ["gpt-name-attrs"]
[match]
kind = ["gpt.entry"]
"""


def test_loader_accepts_a_minimal_rule(tmp_path: Path) -> None:
    r = load_rule(write(tmp_path, GOOD))
    assert r.id == "TST001" and r.match.kind == ("gpt.entry",) and r.priority == 50


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('title = "t"', 'title = "t"\ncolour = "red"'), "unknown key(s): colour"),
        (('layer = "mkfs"', 'layer = "kernel"'), "layer 'kernel' is not one of"),
        (('id = "TST001"', 'id = "test1"'), "id 'test1' is not of the form ABC123"),
        (('kind = ["gpt.entry"]', 'kind = ["gpt.entry"]\nfeild = ["x"]'), "unknown key(s) in match: feild"),
        (('kind = ["gpt.entry"]', 'predicate = "no_such_check"'), "unknown predicate 'no_such_check'"),
        (('kind = ["gpt.entry"]', 'change = ["changed"]'), "unknown change kind(s): changed"),
        (('fixtures = ["gpt-name-attrs"]\n', ""), "missing key(s): fixtures"),
    ],
)
def test_loader_is_strict(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_rule(write(tmp_path, GOOD.replace(*change)))


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.toml").write_text(GOOD)
    (tmp_path / "a" / "two.toml").write_text(GOOD.replace('name = "test-rule"', 'name = "other"'))
    with pytest.raises(RuleError, match="id TST001 already used"):
        load_rules(tmp_path)

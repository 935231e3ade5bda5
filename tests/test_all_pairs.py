"""`imgdiff explain` on every fixture pair: the exit status, the JSON contract and the byte accounting."""

from __future__ import annotations

import json

import pytest

from imgdiff.cli import main

from .conftest import all_pairs

PAIRS = all_pairs()


@pytest.mark.parametrize("name", PAIRS)
def test_explain_every_pair(pair, name: str, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    a, b = pair(name)
    status = main(["explain", "--json", str(a), str(b)])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == ""
    s = doc["summary"]
    assert status == (0 if doc["identical"] else 1)
    assert s["bytes_unexplained"] == 0, [f["fields"][:5] for f in doc["findings"] if f["rule"] == "unclassified"]
    if doc["identical"]:
        assert doc["findings"] == [] and s["bytes_differing"] == 0
        return
    # every differing byte counts in exactly one finding; only two compressed files of equal images differ in none
    assert sum(f["bytes"] for f in doc["findings"]) == s["bytes_differing"]
    assert s["bytes_differing"] > 0 or {f["rule"][:3] for f in doc["findings"]} == {"IMG"}
    for f in doc["findings"]:
        assert f["fields"], f["rule"]
        assert f["fix"] and f["layer"] and f["location"]
        assert not any(ref in f["fields"] for ref in f["derived"])

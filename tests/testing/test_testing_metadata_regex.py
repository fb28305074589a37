"""``expect.metadata``: a string is a regex searched in the value (as ``said``, ``queue`` and
request ``headers``); any other value must be equal, typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.errors import ConfigError
from voxflow.testing import parse_scenario_text
from voxflow.testing.runner import run_paths

FLOW = """flow t:
    timeout 5s

state start:
    answer
    meta reason = "invoice question from " + call.caller
    meta tries = 3
    meta confirmed = true
    hangup
"""


def _failures(tmp_path: Path, expect: str) -> list[str]:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "t.test.yaml").write_text(
        f"flow: t.flow\nscenarios:\n  - name: m\n    expect:\n      metadata: {expect}\n"
    )
    run = run_paths([tmp_path])
    assert not run.errors
    return run.outcomes[0].failures


def test_a_string_is_a_regex_searched_in_the_value(tmp_path: Path) -> None:
    assert _failures(tmp_path, '{reason: "^invoice question", tries: 3, confirmed: true}') == []


def test_a_regex_that_does_not_match_is_a_failure(tmp_path: Path) -> None:
    assert _failures(tmp_path, '{reason: "^refund"}') == [
        "metadata: 'reason' is 'invoice question from +15550100', expected a match of /^refund/"
    ]


def test_a_number_or_bool_compares_typed(tmp_path: Path) -> None:
    failures = _failures(tmp_path, "{tries: 4, confirmed: false}")
    assert failures == [
        "metadata: 'tries' is 3, expected 4",
        "metadata: 'confirmed' is True, expected False",
    ]


def test_a_string_regex_matches_a_number_by_its_text(tmp_path: Path) -> None:
    assert _failures(tmp_path, '{tries: "^3$"}') == []


def test_an_unset_key_says_so(tmp_path: Path) -> None:
    assert _failures(tmp_path, '{missing: "x"}') == [
        "metadata: 'missing' is unset (expected a match of /x/)"
    ]


def test_an_invalid_regex_is_refused_when_the_file_loads() -> None:
    with pytest.raises(ConfigError, match=r"t.test.yaml:5: .*invalid regular expression '\('"):
        parse_scenario_text(
            "flow: t.flow\nscenarios:\n  - name: m\n    expect:\n      metadata: {a: '('}\n",
            name="t.test.yaml",
        )

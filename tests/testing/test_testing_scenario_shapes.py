"""A scenario value of the wrong shape (``caller:`` given the caller's actions as a list, a
mapping where a string goes, a string where a list goes) is one line: file, the line of the key,
where, what was expected and what was found; never pydantic's wording ("Input should be a valid
string") or a line that points at the enclosing scenario."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import ConfigError
from voxflow.testing.scenario import load_scenario_file, parse_scenario_text

HEAD = "flow: shop.flow\nscenarios:\n  - name: x\n"


def _error(body: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_scenario_text(HEAD + body, name="s.test.yaml")
    return str(err.value)


def test_caller_given_as_a_list_of_actions() -> None:
    msg = _error("    caller:\n      - press: 1\n      - hangup\n")
    assert msg == (
        "s.test.yaml:4: scenarios.0.caller: expected the caller's number as a string "
        '(e.g. caller: "+15550100"), got a list; what the caller does goes under steps:'
    )


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        ("    caller: {number: 1}\n", 4, "scenarios.0.caller: expected the caller's number"),
        ("    steps: press 1\n", 4, "scenarios.0.steps: expected a list, got the string"),
        ("    speech: maybe\n", 4, "scenarios.0.speech: expected true or false, got the string"),
        ("    metadata: [a, b]\n", 4, "scenarios.0.metadata: expected a mapping, got a list"),
        ("    called: '100'\n    expect: [said]\n", 5, "scenarios.0.expect: expected a mapping"),
        ("    called: 100\n", 4, "scenarios.0.called: expected the dialled number as a string"),
        (
            "    mocks: {agent: [{turns: [{caller: [hi]}], tool: t}]}\n",
            4,
            "scenarios.0.mocks.agent.0.turns.0.caller: expected a string, got a list",
        ),
    ],
)
def test_wrong_shapes_name_the_key_line_and_what_was_expected(
    body: str, line: int, expected: str
) -> None:
    msg = _error(body)
    assert msg.startswith(f"s.test.yaml:{line}: {expected}"), msg
    assert "\n" not in msg and "Input should be" not in msg


def test_voxflow_test_prints_it_as_one_line(tmp_path: Path) -> None:
    (tmp_path / "s.test.yaml").write_text(HEAD + "    caller: [press 1, hangup]\n")
    result = CliRunner().invoke(cli, ["test", str(tmp_path / "s.test.yaml")])
    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: {tmp_path / 's.test.yaml'}:4: scenarios.0.caller: expected the caller's number "
        'as a string (e.g. caller: "+15550100"), got a list; what the caller does goes under '
        "steps:"
    ]


def test_a_scenario_file_that_is_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.test.yaml")
    with pytest.raises(ConfigError, match=r"cannot read scenario file .*not a regular file"):
        load_scenario_file(tmp_path / "pipe.test.yaml")


def test_a_scenario_whose_flow_is_missing_says_where_it_looked(tmp_path: Path) -> None:
    """``flow:`` is relative to the scenario file; a path written from the working directory
    (``flow: flows/x.flow`` in ``flows/tests/``) is named with where it was looked for, not as a
    flow that "does not compile"."""
    tests = tmp_path / "flows" / "tests"
    tests.mkdir(parents=True)
    (tests / "x.test.yaml").write_text("flow: flows/x.flow\nscenarios:\n  - name: a\n")
    result = CliRunner().invoke(cli, ["test", str(tests)])
    assert result.exit_code == 1, result.output
    looked = tests / "flows" / "x.flow"
    assert (
        f"error: {tests / 'x.test.yaml'}:1: flow: no such file flows/x.flow (looked for {looked}; "
        "the path is relative to the scenario file)"
    ) in result.output
    assert "does not compile" not in result.output


def test_a_scenario_file_with_an_empty_list_of_scenarios_says_so(tmp_path: Path) -> None:
    """``scenarios: []`` was "no scenario files (*.test.yaml) found in: s.test.yaml" (exit 2),
    about a file that was found; it is an error naming the file and the key's line."""
    (tmp_path / "shop.flow").write_text('flow shop:\n\nstate start:\n    say "Hi"\n    hangup\n')
    path = tmp_path / "s.test.yaml"
    path.write_text("# nothing yet\nflow: shop.flow\nscenarios: []\n")
    with pytest.raises(ConfigError) as err:
        load_scenario_file(path)
    assert str(err.value) == (
        f"{path}:3: scenarios: the list is empty; write at least one scenario (name, steps, expect)"
    )
    result = CliRunner().invoke(cli, ["test", str(path)])
    assert result.exit_code == 1 and "scenarios: the list is empty" in result.output, result.output
    assert "no scenario files" not in result.output


@pytest.mark.parametrize(
    ("body", "line", "key"),
    [
        (
            "    expect: {states: [a]}\n    steps: [{press: 1}]\n    expect: {said: [b]}\n",
            6,
            "expect",
        ),
        ("    expect:\n      said: [nothing like this]\n      said: [b]\n", 6, "said"),
        ("    expect: {variables: {n: 1, n: 2}}\n", 4, "n"),
    ],
)
def test_a_key_written_twice_is_an_error_not_the_last_one_kept(
    body: str, line: int, key: str
) -> None:
    """YAML keys are unique; the loader kept the last and dropped the first silently, so an
    expectation written first was never checked and the scenario passed."""
    msg = _error(body)
    assert msg.startswith(f"s.test.yaml:{line}: invalid YAML: "), msg
    assert f"'{key}' is written twice (first on line" in msg


def test_a_merge_key_may_still_be_overridden() -> None:
    text = (
        "flow: shop.flow\nbase: &b {caller: '+1555', speech: false}\nscenarios:\n"
        "  - name: x\n    <<: *b\n    caller: '+1666'\n    expect: {said: [hi]}\n"
    )
    with pytest.raises(ConfigError) as err:  # 'base' is no scenario file key
        parse_scenario_text(text, name="s.test.yaml")
    assert "unknown key 'base'" in str(err.value) and "twice" not in str(err.value)

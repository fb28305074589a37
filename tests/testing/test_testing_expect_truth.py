"""`voxflow test` asserts only what happened: empty lists, counts, requests, names, types."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.compiler.frontdoor import compile_flow
from voxflow.errors import ConfigError
from voxflow.ir.models import Flow
from voxflow.testing import check_expectations, parse_scenario_text, run_scenario
from voxflow.testing.runner import run_paths
from voxflow.testing.static import scenario_problems

FLOW = """\
flow shop:
    answers "300"

var items: list = []
var note: string = ""
var result: map = {}

state start:
    answer
    say "Welcome to the shop."
    http post "https://api.example.com/orders" into result:
        body {"sku": "A1", "qty": 2}
        headers {"Idempotency-Key": "key-{{ call.id }}"}
        on ok -> helper
        on error, timeout -> bye

state helper:
    agent "You help.":
        tool order(items: list as items "what", note: string as note "a note") "Order" -> bye
        on error, max_turns, timeout, noinput -> bye
    goto bye

state bye:
    say "Goodbye, {{ note }} {{ items | length }} {{ result.id }}."
    hangup
"""

HTTP_OK = "{url: orders, json: {id: 7}}"


def _flow(tmp_path: Path) -> Flow:
    (tmp_path / "shop.flow").write_text(FLOW)
    result = compile_flow(FLOW, str(tmp_path / "shop.flow"))
    assert result.flow is not None, result.diagnostics
    return result.flow


def _check(tmp_path: Path, body: str) -> list[str]:
    flow = _flow(tmp_path)
    sf = parse_scenario_text("flow: shop.flow\nscenarios:\n" + body, name="s.test.yaml")
    [sc] = sf.scenarios
    static = scenario_problems(flow, sc, sf.defaults, file="s.test.yaml")
    if static:
        return static
    res = run_scenario(flow, sc, sf.defaults)
    return [p for _, p in res.problems] + check_expectations(sc.expect, res)


AGENT = "agent: [{tool: order, args: {items: [a, b], note: hi}}]"


def test_empty_lists_assert_that_nothing_happened(tmp_path: Path) -> None:
    base = f"  - name: x\n    mocks: {{http: [{HTTP_OK}], {AGENT}}}\n    expect: "
    problems = _check(tmp_path, base + "{http: [], said: [], dialed: []}\n")
    assert any(p.startswith("http: expected nothing") for p in problems), problems
    assert any(p.startswith("said: expected nothing") for p in problems), problems
    assert not any(p.startswith("dialed") for p in problems)  # nothing was dialled
    assert _check(tmp_path, base + "{requests: []}\n")[0].startswith("requests: expected none")


def test_counts_and_case_insensitive_said(tmp_path: Path) -> None:
    base = f"  - name: x\n    mocks: {{http: [{HTTP_OK}], {AGENT}}}\n    expect: "
    once = "{said: [{match: goodbye, times: 1, ignore_case: true}]}\n"
    assert _check(tmp_path, base + once) == []
    problems = _check(tmp_path, base + "{said: [{match: Goodbye, times: 2}]}\n")
    assert problems and "matched 1 time(s)" in problems[0]
    assert _check(tmp_path, base + "{said: [welcome]}\n")  # case matters by default
    assert _check(tmp_path, base + "{said: [welcome], ignore_case: true}\n") == []
    assert _check(tmp_path, base + "{said: [{match: Sorry, times: 0}]}\n") == []


def test_requests_bodies_and_headers(tmp_path: Path) -> None:
    base = f"  - name: x\n    mocks: {{http: [{HTTP_OK}], {AGENT}}}\n    expect:\n      requests: "
    good = '[{method: POST, url: orders, json: {sku: A1}, headers: {idempotency-key: "^key-"}}]'
    assert _check(tmp_path, base + good + "\n") == []
    wrong_body = _check(tmp_path, base + "[{url: orders, json: {qty: 3}}]\n")
    assert wrong_body and "none matched" in wrong_body[0] and '"qty": 2' in wrong_body[0]
    wrong_header = _check(tmp_path, base + "[{url: orders, headers: {X-Other: .}}]\n")
    assert wrong_header and "none matched" in wrong_header[0]
    never = _check(tmp_path, base + "[{url: refunds, times: 0}, {body: '\"qty\": 2'}]\n")
    assert never == []
    made = _check(tmp_path, base + "[{url: orders, times: 0}]\n")
    assert made and "made 1 time(s), expected 0" in made[0]


def test_mocked_tool_arguments_are_type_checked(tmp_path: Path) -> None:
    body = (
        "  - name: x\n    mocks:\n      http: [" + HTTP_OK + "]\n"
        "      agent: [{tool: order, args: {items: one, note: 5, colour: red}}]\n"
    )
    problems = _check(tmp_path, body)
    assert any("'items' is declared list, got str 'one'" in p for p in problems), problems
    assert any("'note' is declared string, got int 5" in p for p in problems), problems
    assert any("no argument 'colour'" in p for p in problems), problems
    assert all(p.startswith("s.test.yaml:") for p in problems)
    missing = _check(tmp_path, "  - name: x\n    mocks: {agent: [{tool: order, args: {}}]}\n")
    assert any("required argument 'items' is missing" in p for p in missing)


def test_unknown_state_is_named_with_a_suggestion(tmp_path: Path) -> None:
    problems = _check(tmp_path, "  - name: x\n    expect: {states: [start, helpr]}\n")
    assert problems == [
        "s.test.yaml:3: expect.states: no such state 'helpr' (did you mean 'helper'?)"
    ]
    ended = _check(tmp_path, "  - name: x\n    expect: {ended: {state: by}}\n")
    assert ended and "no such state 'by'" in ended[0]


def test_bad_time_is_a_schema_error_with_the_others() -> None:
    text = (
        "flow: shop.flow\nscenarios:\n  - name: x\n    time: '25:00 monday'\n"
        "    steps: [{press: x}]\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_scenario_text(text, name="s.test.yaml")
    msg = str(err.value)
    assert "s.test.yaml:4: scenarios.0.time: invalid time '25:00 monday'" in msg  # time's line
    assert "is not DTMF" in msg  # reported together, before anything runs


def test_unquoted_yaml_time_is_accepted() -> None:
    sf = parse_scenario_text("flow: f\nscenarios:\n  - name: x\n    time: 2025-01-06T18:30:00\n")
    assert sf.scenarios[0].time == "2025-01-06T18:30:00"


def test_hangup_steps_have_their_line() -> None:
    text = "flow: f\nscenarios:\n  - name: x\n    steps:\n      - {press: 1}\n      - hangup\n"
    sf = parse_scenario_text(text)
    assert [a.line for a in sf.scenarios[0].steps] == [5, 6]


@pytest.mark.parametrize(
    "expect",
    [
        "",
        "    expect: {}\n",
        "    expect: {ignore_case: true, variables: {}}\n",
        "    expect: {not_said: [], not_visited: []}\n",  # forbids nothing
    ],
)
def test_a_scenario_that_checks_nothing_fails(tmp_path: Path, expect: str) -> None:
    body = f"  - name: x\n    mocks: {{http: [{HTTP_OK}], {AGENT}}}\n" + expect
    problems = _check(tmp_path, body)
    assert len(problems) == 1 and "expect: checks nothing" in problems[0], problems
    assert problems[0].startswith("s.test.yaml:3: ")
    assert _check(tmp_path, body.replace(expect, "") + "    expect: {ended: {}}\n") == []


def test_k_runs_only_matching_scenarios(tmp_path: Path) -> None:
    _flow(tmp_path)
    (tmp_path / "shop.test.yaml").write_text(
        "flow: shop.flow\nscenarios:\n"
        f"  - name: Orders fine\n    mocks: {{http: [{HTTP_OK}], {AGENT}}}\n"
        "    expect: {states: [start, bye]}\n"
        "  - name: broken\n    expect: {said: [never]}\n"
    )
    run = run_paths([tmp_path], select="orders")
    assert [o.scenario.name for o in run.outcomes] == ["Orders fine"]
    out = CliRunner().invoke(cli, ["test", str(tmp_path), "-k", "ORDERS"])
    assert out.exit_code == 0, out.output
    assert "1 passed, 0 failed" in out.output
    assert CliRunner().invoke(cli, ["test", str(tmp_path)]).exit_code == 1
    none = CliRunner().invoke(cli, ["test", str(tmp_path), "-k", "nothing like it"])
    assert none.exit_code == 2 and "no scenario name contains" in none.output


def test_the_time_of_day_example_in_testing_md_passes(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "testing.md").read_text()
    block = doc.split("### Example: a time-of-day flow", 1)[1].split("```yaml", 1)[1]
    shutil.copy(root / "flows" / "support_line.flow", tmp_path / "support_line.flow")
    shutil.copytree(root / "flows" / "shared", tmp_path / "shared")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "support.test.yaml").write_text(block.split("```", 1)[0])
    run = run_paths([tmp_path / "tests"])
    assert not run.errors and run.failed == 0 and run.passed == 3
    assert len(run_paths([tmp_path / "tests"], select="saturday").outcomes) == 1

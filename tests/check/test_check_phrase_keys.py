"""A quoted choice phrase made only of DTMF keys (``"1"``) is speech, not a key: lint warns
(VF410, with the key to write) and a scenario pressing it fails with a trace line saying why."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.testing import check_expectations, parse_scenario_text, run_scenario

FLOW = """\
flow shop:
    answers "100"

state start:
    answer
    menu "Press 1 for sales, 2 for support, star for the operator.":
        "1", "sales" -> sales
        2, "support" -> sales
        "*" -> sales
        "one two" -> sales
        on noinput, nomatch -> retry
        on exhausted -> operator

state sales:
    hangup

state operator:
    hangup
"""


def _flow() -> Flow:
    result = compile_flow(FLOW, "shop.flow")
    assert result.flow is not None, result.diagnostics
    return result.flow


def test_lint_warns_with_the_key_to_write() -> None:
    found = [
        (d.code, d.severity.value, d.span.line, d.span.col, d.message, d.hint)
        for d in compile_flow(FLOW, "shop.flow").diagnostics
    ]
    assert found == [
        ("VF410", "warning", 7, 9,
         '"1" is a spoken phrase, not a key: a caller pressing 1 gets nomatch',
         'did you mean the key? write 1 (or key "#" for * and #)'),
        ("VF410", "warning", 9, 9,
         '"*" is a spoken phrase, not a key: a caller pressing * gets nomatch',
         'did you mean the key? write key "*"'),
    ]  # fmt: skip


def test_pressing_the_quoted_key_fails_with_a_trace_line_saying_why() -> None:
    flow = _flow()
    sf = parse_scenario_text(
        "flow: shop.flow\nscenarios:\n  - name: sales by key\n    steps:\n      - press: 1\n"
        "    expect:\n      states: [start, sales]\n",
        name="s.test.yaml",
    )
    [sc] = sf.scenarios
    res = run_scenario(flow, sc, sf.defaults)
    problems = [p for _, p in res.problems] + check_expectations(sc.expect, res)
    assert problems and "'sales' was not visited" in problems[0], problems
    lines = [f"{t.who} {t.text}" for t in res.trace]
    why = 'keys 1 match no choice: "1" is a spoken phrase, not a key; for the key write 1'
    assert lines[lines.index("caller presses 1") + 1 :][:2] == [
        f"flow {why}",
        "flow gather -> nomatch (#1)",
    ], lines


def test_a_key_choice_and_other_nomatches_say_nothing_more() -> None:
    flow = _flow()
    sf = parse_scenario_text(
        "flow: shop.flow\nscenarios:\n  - name: two then nine\n    steps:\n"
        "      - press: 9\n      - press: 2\n    expect:\n      states: [start, sales]\n",
        name="s.test.yaml",
    )
    [sc] = sf.scenarios
    res = run_scenario(flow, sc, sf.defaults)
    assert [p for _, p in res.problems] + check_expectations(sc.expect, res) == []
    lines = [f"{t.who} {t.text}" for t in res.trace]
    assert not any("match no choice" in line for line in lines), lines
    assert "flow gather -> nomatch (#1)" in lines

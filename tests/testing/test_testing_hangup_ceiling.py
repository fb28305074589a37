"""``voxflow test`` bounds a call's ``on hangup`` body as a real call does (one interpreter,
``hangup_timeout``): a slow CRM within the ceiling gets every request; past it the body is cut,
the trace says so and the scenario fails (the update the flow meant did not happen)."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.testing import parse_scenario_text, run_scenario
from voxflow.testing.sim import SimResult

FLOW = """\
flow h:
    answers "200"

var _a: map
var _b: map

on hangup:
    http post "https://crm.example.test/a" timeout 90s into _a
    http post "https://crm.example.test/b" into _b

state start:
    answer
    say "Hello."
    hangup "done"
"""


def _run(delay: str, **kw: float) -> SimResult:
    flow = compile_flow(FLOW, "t.flow").flow
    assert flow is not None
    mocks = f"{{http: [{{url: /a, delay: {delay}}}, {{url: /b}}]}}"
    sf = parse_scenario_text(f"flow: t.flow\nscenarios:\n  - name: x\n    mocks: {mocks}\n")
    return run_scenario(flow, sf.scenarios[0], sf.defaults, **kw)


def _lines(res: SimResult) -> list[str]:
    return [f"{t.who} {t.text}" for t in res.trace]


def test_a_slow_crm_within_the_ceiling_gets_every_request() -> None:
    res = _run("8s")
    assert res.http == ["POST https://crm.example.test/a", "POST https://crm.example.test/b"]
    assert res.ended == ("completed", "done") and not res.problems


def test_a_body_past_the_default_ceiling_is_cut_and_the_scenario_fails() -> None:
    res = _run("70s")
    assert res.http == ["POST https://crm.example.test/a"]
    assert res.ended == ("completed", "done")  # the outcome stays what ended the call
    [(_, problem)] = res.problems
    assert "on hangup body was cut after 60 s" in problem
    assert any("on hangup body was cut after 60 s" in line for line in _lines(res))


def test_the_ceiling_is_the_one_given() -> None:
    res = _run("8s", hangup_timeout=5.0)
    assert res.http == ["POST https://crm.example.test/a"]
    assert any("cut after 5 s" in p for _, p in res.problems)

"""A ``goto`` in a flow-level handler that runs inside a subflow: lint, ``voxflow graph``
(the flow map), ``voxflow test`` and the run time agree on where it goes. The subflow's own
state of that name if it has one, else the flow's: the call leaves the subflow (every subflow
frame) for the flow's state, as the flow map draws it and lint checks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir import models as ir
from voxflow.ir.flowmap import build_flowmap
from voxflow.testing import FlowCoverage, parse_scenario_text, run_scenario
from voxflow.testing.simcall import SimResult
from voxflow.viz import render_graph

FLOW = """\
flow f:
    answers "900"

var seen: string = "main"

on noinput:
    say "No answer."
    goto bye
on nomatch -> retry
on exhausted -> bye

subflow ask() -> (ok: bool):
    var mine: string = "sub"
    state s:
        menu "Press 1." timeout 1s:
            1 -> done
    state done:
        return ok = true

state start:
    answer
    call ask() returns (ok):
        on returned -> yes
        on error -> yes

state yes:
    say "Yes."
    hangup "yes"

state bye:
    say "Bye {{ seen }}."
    hangup "bye"
"""

NESTED = FLOW.replace(
    "subflow ask() -> (ok: bool):",
    """subflow outer() -> (ok: bool):
    state o:
        call ask() returns (ok):
            on returned:
                return ok = ok
    state bye:
        return ok = false

subflow ask() -> (ok: bool):""",
).replace(
    "call ask() returns (ok):\n        on returned -> yes",
    "call outer() returns (ok):\n        on returned -> yes",
)

OWN_BYE = (
    FLOW.replace(
        "    state done:\n", "    state bye:\n        return ok = false\n    state done:\n"
    )
    .replace(
        "on returned -> yes",
        "on returned:\n            if ok:\n                goto yes\n            goto no",
    )
    .replace(
        "state bye:\n    say", 'state no:\n    say "No."\n    hangup "no"\n\nstate bye:\n    say'
    )
)

SILENT = "flow: f.flow\nscenarios:\n  - name: silent\n    steps: [{silence: 3s}]\n"


def _compiled(tmp_path: Path, text: str) -> ir.Flow:
    path = tmp_path / "f.flow"
    path.write_text(text)
    result = compile_flow(text, str(path))
    assert result.flow is not None and result.ok, result.diagnostics
    errors = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert errors == []
    return result.flow


def _silent(flow: ir.Flow) -> SimResult:
    return run_scenario(flow, parse_scenario_text(SILENT).scenarios[0])


@pytest.mark.parametrize("text", [FLOW, NESTED], ids=["subflow", "nested"])
def test_the_flows_state_is_entered_leaving_the_subflow(tmp_path: Path, text: str) -> None:
    flow = _compiled(tmp_path, text)
    res = _silent(flow)
    assert res.errors == [], res.trace
    assert res.ended == ("completed", "bye"), res.trace
    assert res.end_state == "bye"
    assert res.said == ["Press 1.", "No answer.", "Bye main."]
    assert res.states[-1] == "bye"
    # the flow map names the same state, and the scenario covers that transition
    targets = {e.target for e in build_flowmap(flow).edges.values() if e.src == "flow"}
    assert "bye" in targets and not any(t.endswith(".bye") for t in targets), targets
    cov = FlowCoverage(str(tmp_path / "f.flow"), flow)
    cov.add(res.hits)
    assert not [m for m in cov.missing() if "flow --noinput-->" in m], cov.missing()
    assert '"noinput, exhausted"| n_bye' in render_graph(flow, "mermaid").decode()


def test_a_subflow_state_of_that_name_wins(tmp_path: Path) -> None:
    flow = _compiled(tmp_path, OWN_BYE)
    res = _silent(flow)
    assert res.errors == [], res.trace
    assert res.states == ["start", "ask.s", "ask.bye", "no"], res.trace
    assert res.ended == ("completed", "no")
    targets = {e.target for e in build_flowmap(flow).edges.values() if e.src == "flow"}
    assert targets == {"ask.bye", "retry"}  # the main flow has no input step

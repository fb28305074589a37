"""Which transitions the flow map (coverage, ``voxflow graph``) counts and what it names them:
a flow-level handler inherited into a subflow names the state its goto is checked against, and
every written ``hangup`` step is a transition of its own."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir.flowmap import build_flowmap
from voxflow.testing import FlowCoverage, parse_scenario_text, run_scenario
from voxflow.viz import render_graph

INHERITED = """\
flow f:
    answers "900"

on error -> bye

subflow ask() -> (ok: bool):
    state s:
        menu "Press 1.":
            1 -> done
            on noinput, nomatch -> retry
            on exhausted -> done
    state done:
        return ok = true

state start:
    answer
    call ask()
    hangup

state bye:
    say "Bye."
    hangup
"""

TWO_HANGUPS = """\
flow two:
    answers "900"

var vip: bool = false

state start:
    answer
    if vip:
        hangup "vip"
    hangup "regular"
"""


def _cov(tmp_path: Path, name: str, text: str) -> FlowCoverage:
    path = tmp_path / name
    path.write_text(text)
    result = compile_flow(text, str(path))
    assert result.flow is not None and result.ok, result.diagnostics
    return FlowCoverage(str(path), result.flow)


def test_an_inherited_flow_handler_names_the_flows_state(tmp_path: Path) -> None:
    cov = _cov(tmp_path, "f.flow", INHERITED)
    targets = {(e.src, e.label, e.target) for e in build_flowmap(cov.flow).edges.values()}
    assert ("flow", "error", "bye") in targets
    assert not [t for t in targets if t[2] == "ask.bye"], targets  # no such state
    # one transition for the handler, whichever state (main flow or subflow) inherits it
    flow_edges = [e for e in cov.fm.required_edges() if e.src == "flow"]
    assert [(e.target, sorted(e.states)) for e in flow_edges] == [
        ("bye", ["ask.done", "ask.s", "bye", "start"])
    ]
    mermaid = render_graph(cov.flow, "mermaid").decode()
    assert "ask.bye" not in mermaid and "ask_bye" not in mermaid


def test_a_subflow_state_of_the_same_name_is_the_target_there(tmp_path: Path) -> None:
    own = INHERITED.replace(
        "    state done:\n", "    state bye:\n        return ok = false\n    state done:\n"
    )
    cov = _cov(tmp_path, "f.flow", own)
    targets = {e.target: sorted(e.states) for e in cov.fm.edges.values() if e.src == "flow"}
    assert targets == {"bye": ["bye", "start"], "ask.bye": ["ask.bye", "ask.done", "ask.s"]}


def test_two_hangup_steps_in_one_state_are_two_transitions(tmp_path: Path) -> None:
    cov = _cov(tmp_path, "two.flow", TWO_HANGUPS)
    assert cov.transitions() == (0, 2), cov.missing()
    sf = parse_scenario_text("flow: two.flow\nscenarios:\n  - name: regular\n    steps: []\n")
    cov.add(run_scenario(cov.flow, sf.scenarios[0]).hits)
    assert cov.transitions() == (1, 2), cov.missing()
    assert cov.missing() == ["transition start --> hangup (line 9)"]
    # the drawing still has one arrow from start to the hang-up
    mermaid = render_graph(cov.flow, "mermaid").decode()
    assert mermaid.count("n_start --") == 1, mermaid

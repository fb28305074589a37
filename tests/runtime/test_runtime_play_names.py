"""A ``play`` whose sound name comes from a variable (an HTTP answer, the caller) cannot reach
outside the sounds: no ``..`` segment, no absolute path, no scheme of its own, no NUL."""

from __future__ import annotations

import json

import pytest

from voxflow.compiler import compile_flow
from voxflow.testing import parse_scenario_text, run_scenario
from voxflow.testing.sim import SimResult

FLOW = """\
flow t:
    answers "100"
    timeout 5s

on error, timeout:
    say "Sorry."
    hangup "failed"

state start:
    answer
    http get "https://api.example.com/prompt" into r
    play "{{ r.name }}"
    play "custom/{{ r.name }}"
    hangup
"""


def _run(name: str) -> SimResult:
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None, result.diagnostics
    sf = parse_scenario_text(
        "flow: t.flow\nscenarios:\n  - name: x\n    mocks:\n      http:\n"
        f"        - {{url: prompt, json: {{name: {json.dumps(name)}}}}}\n"
    )
    [sc] = sf.scenarios
    return run_scenario(result.flow, sc, sf.defaults)


@pytest.mark.parametrize(
    "name",
    [
        "../../../etc/passwd",
        "/etc/passwd",
        "recording:someone-else",
        "vm-intro\x00x",
        "a/../../b",
        "a\\..\\..\\b",
    ],
)
def test_a_sound_name_from_outside_cannot_leave_the_sounds(name: str) -> None:
    res = _run(name)
    assert res.ended == ("completed", "failed"), (name, res.ended)
    assert "Sorry." in res.said
    assert not any("passwd" in p or "someone" in p for p in res.played), res.played


def test_a_plain_sound_name_from_a_variable_plays() -> None:
    res = _run("vm-intro")
    assert res.ended is not None and res.ended[1] != "failed", res.ended
    assert res.played == ["vm-intro", "custom/vm-intro"], res.played

"""Ring groups in the language: several endpoints lower to one dial step, '&' dial strings are
refused at lint time and at run time, and the simulator runs groups through the real driver."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.ir import DialStep, Flow, Template
from voxflow.testing import parse_scenario_text, run_scenario

FLOW = """flow ring:
    timeout 5s

var who: string = "PJSIP/alice"

state start:
    answer
    dial "{{ who }}", "PJSIP/bob" ring hunt timeout 10s:
        on answered -> bye
        on busy, noanswer, failed -> bye

state bye:
    hangup
"""


def _flow(text: str = FLOW) -> Flow:
    result = compile_flow(text, "t.flow")
    assert result.flow is not None and not result.diagnostics, result.diagnostics
    return result.flow


def _errors(text: str) -> list[tuple[int, str]]:
    diags = compile_flow(text, "t.flow").diagnostics
    return [(d.span.line, d.message) for d in diags if d.code != "VF302"]


def test_several_endpoints_lower_to_a_ring_group() -> None:
    step = _flow().states["start"].steps[1]
    assert isinstance(step, DialStep)
    assert step.ring == "hunt" and step.timeout_ms == 10_000
    assert step.others == (Template(source="PJSIP/bob"),)


def test_ampersand_strings_ring_without_endpoints_and_extra_texts_are_errors() -> None:
    amp = FLOW.replace('"{{ who }}", "PJSIP/bob" ring hunt', '"PJSIP/alice&PJSIP/bob"')
    assert _errors(amp) == [
        (8, "'&' in a dial string: ARI cannot ring several endpoints in one string")
    ]
    lone = FLOW.replace('"{{ who }}", "PJSIP/bob" ring hunt', '"PJSIP/bob" ring hunt')
    assert _errors(lone) == [(8, "'ring' needs several endpoints (a ring group)")]
    say = FLOW.replace("    answer\n", '    say "a", "b"\n')
    assert (7, "'say' takes one text") in _errors(say)


def _run(flow: Flow, mocks: str) -> list[str]:
    sf = parse_scenario_text(f"flow: t.flow\nscenarios:\n  - name: s\n    mocks: {mocks}\n")
    res = run_scenario(flow, sf.scenarios[0])
    assert not res.problems, res.problems
    return [line.text for line in res.trace]


def test_a_template_that_renders_an_ampersand_is_a_runtime_error() -> None:
    flow = _flow(FLOW.replace('"PJSIP/alice"', '"PJSIP/alice&PJSIP/carol"'))
    trace = _run(flow, "{}")
    assert any("ARI cannot ring several endpoints in one string" in t for t in trace), trace


def test_hunting_falls_through_to_the_next_endpoint() -> None:
    trace = _run(_flow(), "{dial: [{endpoint: alice, result: busy}, {endpoint: bob}]}")
    assert "dial PJSIP/bob: answered, bridged" in trace
    assert "dial -> answered (#1)" in trace


SCREEN = """flow screen:
    timeout 5s

state start:
    answer
    dial "PJSIP/agent" timeout 20s:
        dtmf "1,2"
        whisper "Call from {{ call.caller }}. Press 1 to take it."
        accept "1"
        accept_timeout 4s
        on answered -> bye
        on busy, noanswer, failed -> vm

state vm:
    hangup "voicemail"

state bye:
    hangup
"""


def test_far_leg_options_lower_and_are_checked() -> None:
    step = _flow(SCREEN).states["start"].steps[1]
    assert isinstance(step, DialStep)
    assert (step.far_dtmf, step.accept, step.accept_timeout_ms) == ("1,2", "1", 4000)
    assert step.whisper is not None and "call.caller" in step.whisper.source
    assert _errors(SCREEN.replace('accept "1"', 'accept "yes"')) == [
        (9, "'accept' takes DTMF keys, not 'yes'")
    ]
    no_accept = SCREEN.replace('        accept "1"\n', "")
    assert _errors(no_accept) == [(9, "'accept_timeout' needs 'accept'")]


def _ended(mocks: str) -> tuple[str, str] | None:
    sf = parse_scenario_text(f"flow: t.flow\nscenarios:\n  - name: s\n    mocks: {mocks}\n")
    res = run_scenario(_flow(SCREEN), sf.scenarios[0])
    assert not res.problems, res.problems
    assert any('hears "Call from' in line.text for line in res.trace)
    return res.ended


def test_screening_accept_decline_and_silence() -> None:
    assert _ended('{dial: [{endpoint: agent, presses: "1"}]}') == ("completed", "normal")
    assert _ended('{dial: [{endpoint: agent, presses: "2"}]}') == ("completed", "voicemail")
    assert _ended("{}") == ("completed", "voicemail")  # no key within accept_timeout

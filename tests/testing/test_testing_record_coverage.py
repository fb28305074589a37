"""The simulator's recordings (silence ends them, nothing heard is noinput) and the coverage
rule that an ``exhausted`` nothing can produce is not required."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir.models import Flow
from voxflow.testing import FlowCoverage, parse_scenario_text, run_scenario

FLOW = """\
flow rec:
    answers "300"

state start:
    answer
    record "msg" into message max 1m silence 3s:
        prompt "Leave a message."
        on done -> thanks
        on noinput -> bye
        on exhausted -> bye
        on error -> bye

state thanks:
    say "Thanks."
    hangup "saved"

state bye:
    say "Bye."
    hangup "nothing"
"""


def _flow(tmp_path: Path, text: str = FLOW) -> Flow:
    path = tmp_path / "rec.flow"
    path.write_text(text)
    result = compile_flow(text, str(path))
    assert result.flow is not None, result.diagnostics
    return result.flow


def _run(flow: Flow, steps: str) -> tuple[list[str], tuple[str, str] | None, float | None]:
    sf = parse_scenario_text(f"flow: rec.flow\nscenarios:\n  - name: s\n    steps: {steps}\n")
    res = run_scenario(flow, sf.scenarios[0])
    assert not res.problems, res.problems
    return res.states, res.ended, res.ended_at


def test_silence_from_the_start_is_noinput(tmp_path: Path) -> None:
    states, ended, at = _run(_flow(tmp_path), "[]")
    assert states == ["start", "bye"]
    assert ended == ("completed", "nothing")
    assert at is not None and at < 10  # 3 s of silence, not the 1 minute maximum


def test_speech_then_silence_is_a_message(tmp_path: Path) -> None:
    states, ended, at = _run(_flow(tmp_path), '[{say: "call me back tomorrow please"}]')
    assert states == ["start", "thanks"]
    assert ended == ("completed", "saved")
    assert at is not None and at < 15


def test_talking_keeps_the_recording_going(tmp_path: Path) -> None:
    # two sentences 2.5 s apart (under the 3 s of silence): one message; the second
    # sentence resets the silence clock, so the call ends later than after one sentence
    one = _run(_flow(tmp_path), '[{say: "one two three"}]')[2]
    two = _run(_flow(tmp_path), '[{say: "one two three"}, {wait: 2.5s}, {say: "four five"}]')
    assert two[0] == ["start", "thanks"]
    assert one is not None and two[2] is not None and two[2] > one + 2.5


def test_terminator_key_is_done_even_when_nothing_was_said(tmp_path: Path) -> None:
    states, ended, _ = _run(_flow(tmp_path), '[{press: "#"}]')
    assert ended == ("completed", "saved")
    assert states == ["start", "thanks"]


def test_exhausted_without_a_retry_is_not_required(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    cov = FlowCoverage("rec.flow", flow)
    missing = cov.missing()
    assert not any("exhausted" in m for m in missing), missing
    assert any("noinput" in m for m in missing)
    # with a retry in a handler, exhausted can happen and must be covered
    retried = FLOW.replace("on noinput -> bye", 'on noinput:\n            say "Again."\n'
                           "            retry")  # fmt: skip
    cov2 = FlowCoverage("rec.flow", _flow(tmp_path, retried))
    assert any("exhausted" in m for m in cov2.missing())


RETRIED = FLOW.replace("flow rec:", "flow rec:\n    retries 2").replace(
    "on noinput -> bye", 'on noinput:\n            say "Again."\n            retry'
)


def test_record_takes_the_headers_retries(tmp_path: Path) -> None:
    flow = _flow(tmp_path, RETRIED)
    step = flow.states["start"].steps[1]
    assert getattr(step, "max_attempts", None) == 2
    sf = parse_scenario_text("flow: rec.flow\nscenarios:\n  - name: s\n    steps: []\n")
    res = run_scenario(flow, sf.scenarios[0])
    assert res.said.count("Leave a message.") == 2  # the silent attempt was tried again
    assert res.said.count("Again.") == 2
    assert res.ended == ("completed", "nothing")


def test_a_retry_that_runs_out_is_not_counted_as_taken(tmp_path: Path) -> None:
    one_try = RETRIED.replace("retries 2", "retries 1")
    flow = _flow(tmp_path, one_try)
    sf = parse_scenario_text("flow: rec.flow\nscenarios:\n  - name: s\n    steps: []\n")
    res = run_scenario(flow, sf.scenarios[0])
    cov = FlowCoverage("rec.flow", flow)
    cov.add(res.hits)
    assert any("noinput--> retry" in m for m in cov.missing()), cov.missing()


def test_a_recording_is_transcribed_into_its_variable(tmp_path: Path) -> None:
    text = (
        FLOW.replace("flow rec:", "flow rec:\n    retries 1")
        .replace(
            'record "msg" into message max 1m silence 3s:',
            'record "msg" into message max 1m silence 3s:\n        transcribe said',
        )
        .replace('say "Thanks."', 'say "You said {{ said }}."')
    )
    flow = _flow(tmp_path, text)
    sf = parse_scenario_text(
        'flow: rec.flow\nscenarios:\n  - name: s\n    steps: [{say: "call me back tomorrow"}]\n'
    )
    res = run_scenario(flow, sf.scenarios[0])
    assert not res.problems, res.problems
    assert res.variables["said"] == "call me back tomorrow"
    assert "You said call me back tomorrow." in res.said

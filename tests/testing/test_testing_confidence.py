"""Scripted callers say things with a recogniser's ``confidence``; traces carry it and replay
turns a recognition back into a ``say`` with it (a rejected one is rejected again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from voxflow.compiler import compile_flow
from voxflow.runtime.redaction import RedactingTrace, Redactor
from voxflow.runtime.trace import TraceWriter
from voxflow.testing.replay import scenario_from_trace
from voxflow.testing.scenario import Action, Scenario, ScenarioDefaults
from voxflow.testing.sim import _Sim


def test_a_say_takes_a_confidence_from_0_to_1() -> None:
    a = Action.model_validate({"say": "sales", "confidence": 0.4})
    assert a.confidence == 0.4 and a.describe() == 'say "sales" confidence 0.4'
    assert Action.model_validate({"say": "sales"}).confidence is None
    for bad, why in (
        ({"say": "sales", "confidence": 1.5}, "less than or equal to 1"),
        ({"say": "sales", "confidence": "high"}, "a number from 0 to 1"),
        ({"say": "sales", "confidence": True}, "a number from 0 to 1"),
        ({"press": "1", "confidence": 0.5}, "confidence goes with a say"),
    ):
        with pytest.raises(ValidationError, match=why):
            Action.model_validate(bad)


def _says(*inputs: dict[str, object]) -> list[dict[str, object]]:
    records = [{"type": "input", "kind": "speech", **i} for i in inputs]
    data, _ = scenario_from_trace(records)
    return list(data["steps"])


def test_replay_says_what_was_recognised_with_its_confidence() -> None:
    steps = _says(
        {"text": "sales", "confidence": 0.8, "alternatives": ["sales"], "min_confidence": 0.3},
        {"text": "", "confidence": 0.2, "alternatives": ["support", "sales"],
         "min_confidence": 0.3},
        {"text": "", "alternatives": ["billing"]},  # rejected with no confidence (a partial)
        {"text": ""},  # rejected, nothing kept
        {"text": "operator"},  # a recogniser without confidence
    )  # fmt: skip
    assert steps == [
        {"say": "sales", "confidence": 0.8},
        {"say": "support", "confidence": 0.2},  # under its threshold: the flow decides again
        {"say": "billing", "confidence": 0},  # never recognised, whatever the threshold
        {"say": "(not understood)", "confidence": 0},
        {"say": "operator"},
    ]


def test_timed_replay_places_the_speech_before_the_recognition_latency() -> None:
    records = [
        {"t": 0.0, "type": "prompt", "text": "Say sales or support."},
        {"t": 6.5, "type": "input", "kind": "speech", "text": "sales", "latency_ms": 2000},
        {"t": 9.0, "type": "input", "kind": "speech", "text": "support please"},
    ]
    data, _ = scenario_from_trace(records)
    # speech ended 2 s before the result; the simulated caller says a word in 0.3 s
    assert [s["at"] for s in data["steps"]] == [4.2, 8.4]


PIN_FLOW = """\
flow pin:
    answers "100"

var pin: string sensitive

state start:
    answer
    gather "Say your four digit PIN." input speech into pin:
        capture digits
        min_digits 4
        max_digits 4
        confidence 0.5
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "Thank you."
    goto bye

state bye:
    say "Bye."
    hangup
"""


def test_a_rejected_sentence_into_a_sensitive_variable_keeps_its_n_best_out_of_the_trace(
    tmp_path: Path,
) -> None:
    """The real driver, redaction and trace writer on the simulator: the recogniser's
    alternatives of a rejected answer are what was said, so they are redacted too."""
    flow = compile_flow(PIN_FLOW, "pin.flow").flow
    assert flow is not None
    steps = [{"say": "four three two one", "confidence": 0.3}, {"say": "one two three four"}]
    scenario = Scenario.model_validate({"name": "pin", "speech": True, "steps": steps})
    sim = _Sim(flow, scenario, ScenarioDefaults())
    writer = TraceWriter(tmp_path, "call", clock=sim.loop.time)
    trace = RedactingTrace(writer, Redactor(flow, lambda: sim.driver.state))
    inner = sim.driver.trace

    class Tee:
        def write(self, type_: str, /, **fields: Any) -> None:
            inner.write(type_, **fields)
            trace.write(type_, **fields)

        def close(self) -> None:
            trace.close()

    sim.driver.trace = Tee()
    result = sim.run()
    assert not result.problems, result.problems
    assert writer.path is not None
    text = writer.path.read_text()
    assert "four three" not in text and "4321" not in text and "1234" not in text
    said = [json.loads(x) for x in text.splitlines() if '"input"' in x]
    assert said[0]["alternatives"] == ["<redacted>"] and said[0]["confidence"] == 0.3
    assert said[0]["min_confidence"] == 0.5
    records = [json.loads(x) for x in text.splitlines()]
    outcomes = [r["outcome"] for r in records if r["type"] == "outcome"]
    assert outcomes[:2] == ["nomatch", "match"], outcomes

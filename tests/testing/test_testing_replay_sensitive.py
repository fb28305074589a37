"""A redacted trace replays: speech said into a sensitive variable is traced masked, with a
stand-in that takes the same path. The trace is written by the real interpreter, redaction and
trace writer (``RedactingTrace`` over ``TraceWriter``, as ``voxflow run --trace``) on the
simulator's virtual-time call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from voxflow.compiler import compile_flow
from voxflow.ir import models as ir
from voxflow.runtime.redaction import RedactingTrace, Redactor
from voxflow.runtime.trace import CallTrace, TraceWriter
from voxflow.testing.replay import replay_trace
from voxflow.testing.scenario import Scenario, ScenarioDefaults
from voxflow.testing.sim import _Sim

FLOW = """\
flow pin:
    answers "100"

var pin: string sensitive

state start:
    answer
    gather "Say your four digit PIN." input speech into pin:
        capture digits
        min_digits 4
        max_digits 4
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "Thank you, PIN {{ pin }} is noted."
    goto bye

state bye:
    say "Bye."
    hangup
"""


class _Tee:
    """The simulator's own trace and a real one, both written by the driver."""

    def __init__(self, *traces: CallTrace) -> None:
        self.traces = traces

    def write(self, type_: str, /, **fields: Any) -> None:
        for t in self.traces:
            t.write(type_, **fields)

    def close(self) -> None:
        for t in self.traces:
            t.close()


def _traced_call(tmp_path: Path, flow: ir.Flow, said: str) -> Path:
    """Run one call saying ``said`` and write its redacted trace as ``voxflow run`` does."""
    scenario = Scenario.model_validate({"name": "pin", "speech": True, "steps": [{"say": said}]})
    sim = _Sim(flow, scenario, ScenarioDefaults())
    writer = TraceWriter(tmp_path / "traces", "call", clock=sim.loop.time)
    trace = RedactingTrace(writer, Redactor(flow, lambda: sim.driver.state))
    trace.write("call.started", flow=flow.name, caller="+15550100", called="100",
                direction="inbound", speech=True, metadata={}, started=sim.clock())  # fmt: skip
    sim.driver.trace = _Tee(sim.driver.trace, trace)
    result = sim.run()
    assert not result.problems, result.problems
    assert writer.path is not None
    return writer.path


def test_speech_into_a_sensitive_variable_replays_from_the_redacted_trace(
    tmp_path: Path,
) -> None:
    (tmp_path / "pin.flow").write_text(FLOW)
    flow = compile_flow(FLOW, "pin.flow").flow
    assert flow is not None
    trace = _traced_call(tmp_path, flow, "four three two one")
    text = trace.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    said = [r for r in records if r["type"] == "input"]
    assert said and said[0]["text"] == "<redacted>", said
    assert "four three" not in text and "4321" not in text
    assert [r["outcome"] for r in records if r["type"] == "outcome"] == ["match"]
    report = replay_trace(trace, str(tmp_path / "pin.flow"))
    assert report.same, report.render()
    assert any("stand-in" in n for n in report.notes), report.notes
    assert report.result is not None and "4321" not in "\n".join(
        t.render() for t in report.result.trace
    )


def test_a_sentence_that_did_not_match_still_does_not_on_replay(tmp_path: Path) -> None:
    (tmp_path / "pin.flow").write_text(FLOW)
    flow = compile_flow(FLOW, "pin.flow").flow
    assert flow is not None
    trace = _traced_call(tmp_path, flow, "my secret is banana")
    text = trace.read_text()
    assert "banana" not in text
    outcomes = [json.loads(x).get("outcome") for x in text.splitlines()]
    assert "nomatch" in outcomes
    report = replay_trace(trace, str(tmp_path / "pin.flow"))
    assert report.same, report.render()

"""Tool argument constraints (JSON Schema) written in the flow: lowered into the tool's schema,
checked by lowering, validated before the exit is taken with one corrective retry."""

from __future__ import annotations

import json

from ai_fakes import FakeOpenAI, FakeVoice, ScriptedCall, sse, tool_chunks

from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir.models import AgentStep, Flow
from voxflow.runtime import events as ev
from voxflow.runtime.agent_step import FlowAgentRunner, settings_for_step
from voxflow.runtime.step import initial_state, step

FLOW = """flow table:
    timeout 5s

var party: number
var day: string
var dishes: list

state start:
    answer
    agent "You take table bookings.":
        model "small-model"
        temperature 0.2
        tool book(
            party: number "people" min 1 max 8,
            day: string one_of ["fri", "sat"],
            dishes: list items {"type": "object", "required": ["dish"]} max_length 3
        ) "Book a table" -> booked
        on max_turns, timeout, noinput, exhausted, error -> bye

state booked:
    say "{{ party }} on {{ day }}, {{ len(dishes) }} dishes."
    hangup

state bye:
    hangup
"""


def _flow(text: str = FLOW) -> Flow:
    result = compile_flow(text, "t.flow")
    assert result.flow is not None and result.diagnostics == [], result.diagnostics
    return result.flow


def test_constraints_become_the_arguments_json_schema() -> None:
    step_ = _flow().states["start"].steps[1]
    assert isinstance(step_, AgentStep)
    args = {a.name: json.loads(a.constraints or "{}") for a in step_.tools[0].args}
    assert args["party"] == {"minimum": 1, "maximum": 8}
    assert args["day"] == {"enum": ["fri", "sat"]}
    assert args["dishes"]["maxItems"] == 3 and args["dishes"]["items"]["required"] == ["dish"]


def test_bad_constraints_are_reported() -> None:
    cases = {
        "min 1 max 8": 'min "one"',
        'one_of ["fri", "sat"]': "one_of 3",
        "max_length 3": "pattern 3",
        '"people" min 1': '"people" minimum 1',
    }
    messages = []
    for old, new in cases.items():
        result = compile_flow(FLOW.replace(old, new), "t.flow")
        messages += [d.message for d in result.diagnostics if d.code == "VF408"]
    assert messages == [
        "'min' takes a number",
        '\'one_of\' takes a list of values, e.g. ["mon", "tue"]',
        "'pattern' does not apply to a list argument",
        "unknown constraint 'minimum'",
    ]


async def test_a_call_outside_the_constraints_gets_one_corrective_retry(
    fake_openai: FakeOpenAI,
) -> None:
    flow = _flow()
    state, cmds = step(flow, initial_state(flow, ev.CallInfo("c1", "+1555", "+1800")), ev.Start(0))
    op = next(c for c in cmds if isinstance(c, ev.Op))
    state, cmds = step(flow, state, ev.OpDone(op.cid, None, now=0))
    cmd = next(c for c in cmds if isinstance(c, ev.Agent))
    spec = settings_for_step(cmd).exits[0].spec().parameters
    assert spec["properties"]["party"]["maximum"] == 8
    bad = {"party": 12, "day": "sun", "dishes": [{"dish": "soup"}]}
    good = {"party": 4, "day": "sat", "dishes": [{"dish": "soup"}, {"dish": "cake"}]}
    fake_openai.chat += [
        sse(tool_chunks([("book", json.dumps(bad))])),
        sse(tool_chunks([("book", json.dumps(good))])),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    call = ScriptedCall(FakeVoice(["A table for twelve on Sunday"]), llm)
    try:
        result = await FlowAgentRunner()(call, cmd)
    finally:
        await llm.aclose()
    assert result["outcome"] == "tool:book" and result["args"] == good
    retry = fake_openai.requests[1].body["messages"][-1]["content"]
    assert "party" in retry and "8" in retry and "sun" in retry
    state, _ = step(flow, state, ev.OpDone(cmd.cid, result, now=1))
    assert state.state_name == "booked"
    assert state.variables()["party"] == 4 and state.variables()["day"] == "sat"


async def test_the_steps_model_and_temperature_go_with_each_request(
    fake_openai: FakeOpenAI,
) -> None:
    flow = _flow()
    state, cmds = step(flow, initial_state(flow, ev.CallInfo("c1", "+1555", "+1800")), ev.Start(0))
    op = next(c for c in cmds if isinstance(c, ev.Op))
    _, cmds = step(flow, state, ev.OpDone(op.cid, None, now=0))
    cmd = next(c for c in cmds if isinstance(c, ev.Agent))
    good = {"party": 2, "day": "fri", "dishes": []}
    fake_openai.chat.append(sse(tool_chunks([("book", json.dumps(good))])))
    llm = OpenAIChatModel(model="default-model", base_url=fake_openai.url, timeout=10)
    call = ScriptedCall(FakeVoice(["Two on Friday"]), llm)
    try:
        result = await FlowAgentRunner()(call, cmd)
    finally:
        await llm.aclose()
    assert result["outcome"] == "tool:book"
    body = fake_openai.requests[0].body
    assert (body["model"], body["temperature"]) == ("small-model", 0.2)


def test_temperature_is_checked() -> None:
    bad = compile_flow(FLOW.replace("temperature 0.2", "temperature 5"), "t.flow")
    assert [d.message for d in bad.diagnostics] == ["'temperature' must be between 0 and 2"]

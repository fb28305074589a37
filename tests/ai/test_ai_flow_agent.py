"""The agent step adapter: the receptionist flow compiled for real, its agent command from the
real step function, run by FlowAgentRunner against a local OpenAI-compatible server; the result
goes back into step() so tool arguments land in the flow's variables."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from ai_fakes import FakeOpenAI, FakeVoice, ScriptedCall, sse, text_chunks, tool_chunks

from voxflow.agent.agent import AgentAction
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.compiler.frontdoor import compile_flow
from voxflow.errors import CallEndedError
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.agent_step import FlowAgentRunner, settings_for_step
from voxflow.runtime.step import RunState, initial_state, step

FLOW = Path(__file__).resolve().parents[2] / "flows" / "ai_receptionist.flow"


def _receptionist() -> Flow:
    result = compile_flow(FLOW.read_text(), str(FLOW))
    assert result.flow is not None, result.diagnostics
    return result.flow


def _to_agent_step(flow: Flow) -> tuple[RunState, ev.Agent]:
    """Start a call and answer it: the next op is the agent command."""
    state, cmds = step(
        flow, initial_state(flow, ev.CallInfo("c1", "+15551234567", "+18005550123")), ev.Start(0)
    )
    for _ in range(5):
        agent = next((c for c in cmds if isinstance(c, ev.Agent)), None)
        if agent is not None:
            return state, agent
        op = next(c for c in cmds if isinstance(c, ev.Op))
        state, cmds = step(flow, state, ev.OpDone(op.cid, None, now=0))
    raise AssertionError("no agent command")


def test_settings_come_from_the_compiled_step() -> None:
    _, cmd = _to_agent_step(_receptionist())
    s = settings_for_step(cmd)
    assert "+15551234567" in s.system_prompt  # the template was rendered
    assert s.greeting is not None and s.greeting.startswith("Hi, thanks for calling Acme")
    assert (s.max_turns, s.timeout_s, s.silence_s) == (12, 300.0, 8.0)
    assert (s.filler, s.filler_after_s, s.give_up_s) == ("One moment please.", 1.5, 10.0)
    assert s.context == "reset"
    specs = {e.name: e.spec().parameters for e in s.exits}
    assert set(specs) == {"transfer_to_human", "book_callback", "end_call"}
    assert specs["book_callback"]["required"] == ["time", "number"]
    assert specs["book_callback"]["properties"]["time"]["type"] == "string"
    assert specs["end_call"]["properties"] == {}
    again = settings_for_step(cmd, continuing=True)
    assert again.greeting is None and again.context == "append"


async def test_tool_exit_binds_typed_arguments_in_the_flow(fake_openai: FakeOpenAI) -> None:
    flow = _receptionist()
    state, cmd = _to_agent_step(flow)
    fake_openai.chat += [
        # first a call with a missing argument: one corrective retry, then a good call
        sse(tool_chunks([("book_callback", '{"time": "tomorrow 10am"}')])),
        sse(
            tool_chunks(
                [("book_callback", json.dumps({"time": "tomorrow 10am", "number": "555 0101"}))]
            )
        ),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    call = ScriptedCall(FakeVoice(["Please call me back tomorrow at ten"]), llm)
    try:
        result = await FlowAgentRunner()(call, cmd)
    finally:
        await llm.aclose()
    assert result["outcome"] == "tool:book_callback"
    assert result["args"] == {"time": "tomorrow 10am", "number": "555 0101"}
    assert "caller: Please call me back tomorrow at ten" in result["transcript"]
    assert len(result["metrics"]) == 1 and result["metrics"][0]["llm_ttft_ms"] is not None
    retry = fake_openai.requests[1].body["messages"][-1]
    assert retry["role"] == "tool" and "missing required argument 'number'" in retry["content"]
    state, _cmds = step(flow, state, ev.OpDone(cmd.cid, result, now=1))
    assert state.state_name == "callback_booked"
    assert state.variables()["callback_time"] == "tomorrow 10am"
    assert state.variables()["callback_number"] == "555 0101"


async def test_retry_after_noinput_continues_the_conversation(fake_openai: FakeOpenAI) -> None:
    flow = _receptionist()
    _, cmd = _to_agent_step(flow)
    fake_openai.chat.append(sse(tool_chunks([("end_call", "{}")], text="Goodbye!")))
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    voice = FakeVoice([None, "that's all, thanks"])
    call = ScriptedCall(voice, llm)
    runner = FlowAgentRunner()
    try:
        first = await runner(call, cmd)
        assert first["outcome"] == "noinput"
        second = await runner(call, cmd)
    finally:
        await llm.aclose()
    assert second["outcome"] == "tool:end_call"
    messages = fake_openai.requests[0].body["messages"]
    # the greeting of the first attempt is still in the context; it was not said twice
    assert [m["role"] for m in messages] == ["system", "assistant", "user"]
    assert sum("thanks for calling" in (m.get("content") or "") for m in messages) == 1


async def test_lines_are_reported_as_spoken_and_heard(fake_openai: FakeOpenAI) -> None:
    _, cmd = _to_agent_step(_receptionist())
    cmd = dataclasses.replace(cmd, filler_after_ms=50)
    fake_openai.chat += [
        sse(text_chunks("Sure, let me look."), first_delay=0.5),  # slow model: filler first
        sse(tool_chunks([("end_call", "{}")])),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    voice = FakeVoice(["do you open on saturday", "no thanks bye"])
    call = ScriptedCall(voice, llm)
    lines: list[tuple[str, str, int]] = []  # who, text, listens started when it was reported
    try:
        result = await FlowAgentRunner()(
            call, cmd, on_line=lambda who, text: lines.append((who, text, len(voice.listens)))
        )
    finally:
        await llm.aclose()
    assert result["outcome"] == "tool:end_call" and result["reported"] is True
    assert [(who, text) for who, text, _ in lines] == [
        ("agent", "Hi, thanks for calling Acme. How can I help you today?"),
        ("caller", "do you open on saturday"),
        ("agent", "One moment please."),
        ("agent", "Sure, let me look."),
        ("caller", "no thanks bye"),
    ]
    # live: the greeting before the caller was listened to, the reply before the next listen
    assert [n for _, _, n in lines] == [0, 1, 1, 1, 2]


async def test_hangup_during_the_step_raises_call_ended(fake_openai: FakeOpenAI) -> None:
    _, cmd = _to_agent_step(_receptionist())
    fake_openai.chat.append(sse(text_chunks("Sure. " * 50), delay=0.01))
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    call = ScriptedCall(FakeVoice(["hello", "<hangup>"]), llm)
    try:
        with pytest.raises(CallEndedError):
            await asyncio.wait_for(FlowAgentRunner()(call, cmd), 30)
    finally:
        await llm.aclose()
    assert call.agent.steps["last"][1] == "hangup"


async def test_actions_answer_the_model_and_see_marked_metadata(fake_openai: FakeOpenAI) -> None:
    _, cmd = _to_agent_step(_receptionist())
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def hours(args: Any, metadata: Any) -> Any:
        calls.append((dict(args), dict(metadata)))
        return {"open": "9am", "close": "5pm"}

    action = AgentAction(
        "office_hours",
        "Opening hours of an office",
        hours,
        {"type": "object", "properties": {"office": {"type": "string"}}, "required": ["office"]},
    )
    fake_openai.chat += [
        sse(tool_chunks([("office_hours", '{"office": "Boston"}')])),
        sse(tool_chunks([("end_call", "{}")], text="We open at nine.")),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    call = ScriptedCall(FakeVoice(["when does Boston open"]), llm)
    call.metadata.update_for_webhook(account="A-9")
    call.metadata["pin"] = "0000"
    try:
        result = await FlowAgentRunner(actions=[action])(call, cmd)
        with pytest.raises(ValueError, match="share names"):
            clash = AgentAction("end_call", "x", hours)
            await FlowAgentRunner(actions=[clash])(call, cmd)
    finally:
        await llm.aclose()
    assert result["outcome"] == "tool:end_call"
    assert calls == [({"office": "Boston"}, {"account": "A-9"})]
    offered = {t["function"]["name"] for t in fake_openai.requests[0].body["tools"]}
    assert offered == {
        "transfer_to_human",
        "book_callback",
        "end_call",
        "check_availability",
        "office_hours",
    }
    tool_msg = fake_openai.requests[1].body["messages"][-1]
    assert tool_msg["role"] == "tool" and json.loads(tool_msg["content"])["open"] == "9am"
    with pytest.raises(ValueError, match="invalid tool parameter schema"):
        AgentAction("bad", "x", hours, {"type": "objekt"})

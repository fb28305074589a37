"""'context summary': an agent step that starts afresh but keeps an LLM-written summary of the
conversation so far in its system prompt."""

from __future__ import annotations

from ai_fakes import FakeOpenAI, FakeVoice, ScriptedCall, sse, text_chunks, tool_chunks

from voxflow.agent.agent import SUMMARY_PROMPT
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.agent_step import FlowAgentRunner
from voxflow.runtime.step import RunState, initial_state, step

FLOW = """flow two:
    timeout 5s

state first:
    answer
    agent "You are the front desk.":
        tool pass_on() "Pass the caller to billing" -> billing
        on max_turns, timeout, noinput, exhausted, error -> bye

state billing:
    agent "You are billing.":
        context summary
        tool done() "The caller is done" -> bye
        on max_turns, timeout, noinput, exhausted, error -> bye

state bye:
    hangup
"""


def _flow() -> Flow:
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None and result.diagnostics == [], result.diagnostics
    return result.flow


def _next_agent(flow: Flow, state: RunState, cmds: list[ev.Command]) -> tuple[RunState, ev.Agent]:
    for _ in range(5):
        agent = next((c for c in cmds if isinstance(c, ev.Agent)), None)
        if agent is not None:
            return state, agent
        op = next(c for c in cmds if isinstance(c, ev.Op))
        state, cmds = step(flow, state, ev.OpDone(op.cid, None, now=0))
    raise AssertionError("no agent command")


async def test_the_next_step_starts_with_a_summary_instead_of_the_history(
    fake_openai: FakeOpenAI,
) -> None:
    flow = _flow()
    state, cmds = step(flow, initial_state(flow, ev.CallInfo("c1", "+1555", "+1800")), ev.Start(0))
    state, first = _next_agent(flow, state, cmds)
    fake_openai.chat += [
        sse(tool_chunks([("pass_on", "{}")])),
        sse(text_chunks("Dana disputes invoice 4471 of 30 dollars.")),
        sse(tool_chunks([("done", "{}")])),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    call = ScriptedCall(FakeVoice(["I'm Dana, invoice 4471 is wrong", "yes thanks"]), llm)
    runner = FlowAgentRunner()
    try:
        one = await runner(call, first)
        state, cmds = step(flow, state, ev.OpDone(first.cid, one, now=1))
        state, second = _next_agent(flow, state, cmds)
        two = await runner(call, second)
    finally:
        await llm.aclose()
    assert one["outcome"] == "tool:pass_on" and two["outcome"] == "tool:done"
    summary_request = fake_openai.requests[1].body["messages"]
    assert summary_request[0] == {"role": "system", "content": SUMMARY_PROMPT}
    assert "caller: I'm Dana, invoice 4471 is wrong" in summary_request[1]["content"]
    billing = fake_openai.requests[2].body["messages"]
    assert billing[0]["role"] == "system"
    assert billing[0]["content"].startswith("You are billing.")
    assert "Dana disputes invoice 4471" in billing[0]["content"]
    assert not any("invoice 4471 is wrong" in str(m.get("content")) for m in billing)

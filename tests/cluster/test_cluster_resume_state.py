"""What a resumed call gets back besides its state (issue 20): its agent conversation, its
anytime commands and scope handlers, and its sensitive variables (kept in the checkpoint,
never logged). Worker A (in-process, ``drain = "handover"``) serves the call; the checkpoint is
checked in Redis while A still runs (what a ``kill -9`` would leave), then A hands the call
over and worker B resumes it. On the sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _cluster_kit import running_redis, until

from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.cluster import ClusterState
from voxflow.runtime import events as ev
from voxflow.runtime.agent_memory import RESUMED
from voxflow.runtime.config import Settings
from voxflow.runtime.driver import AgentRunner
from voxflow.runtime.port import AgentHost
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.voice.providers import ChatMessage

AGENT_FLOW = """\
flow talk "an agent conversation moves to another worker":
    answers "100"

state start:
    answer
    goto talk

state talk:
    agent "You are Acme's receptionist.":
        greeting "Hi, how can I help?"
        max_turns 12
        tool end_call() "The caller is done" -> bye
        on max_turns, timeout, noinput, error -> bye

state bye:
    play "sound:goodbye"
    hangup "done"
"""

SCOPED_FLOW = """\
flow scoped "anytime commands and secrets survive a hand-over":
    answers "100"

var pin: string = "" sensitive

state start:
    answer
    set pin = "43" + "21"
    goto menu

scope business:
    anytime "operator", 0 -> operator

    state menu:
        play "sound:vm-login"
        menu "Press 1." timeout 60s:
            1 -> done
            on noinput, nomatch -> done

state operator:
    if pin == "4321":
        play "sound:transfer"
    hangup "operator"

state done:
    hangup "done"
"""


class Runner:
    """An agent runner (the driver's AgentRunner interface) over the call's real CallAgent:
    ``say`` lines are added to its history and reported as spoken; then it waits for ``until``
    (never set on worker A: the conversation is in progress when A stops)."""

    def __init__(self, lines: list[tuple[str, str]], result: Mapping[str, Any] | None) -> None:
        self.lines = lines
        self.result = result
        self.seen: list[list[tuple[str, str]]] = []
        self.steps: list[dict[str, Any]] = []

    async def __call__(
        self,
        call: AgentHost,
        cmd: ev.Agent,
        /,
        *,
        on_line: Callable[[str, str], None] | None = None,
    ) -> Mapping[str, Any]:
        agent: Any = call.agent
        self.seen.append([(m.role, m.content) for m in agent.history])
        self.steps.append(dict(agent.steps))
        for role, text in self.lines:
            agent.history.append(ChatMessage("user" if role == "user" else "assistant", text))
            if on_line is not None:
                on_line("caller" if role == "user" else "agent", text)
        if self.result is None:
            await asyncio.Event().wait()  # mid-conversation until the worker stops
        return dict(self.result or {})


@asynccontextmanager
async def _worker(
    sb: Sandbox, flow: Path, state: ClusterState, runner: AgentRunner | None = None
) -> AsyncIterator[FlowServer]:
    """An in-process worker holding the app name, draining by hand-over when the block ends."""
    await state.hold_app("voxflow", poll=0.05)
    reg = FlowRegistry()
    reg.load([flow])
    llm = OpenAIChatModel(model="m", base_url="http://127.0.0.1:9/v1")  # the runner never asks
    kw: dict[str, Any] = {"event_wait": 2.0, "reconnect_initial": 0.05, "reconnect_max": 0.2}
    app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow", llm=llm, **kw)
    settings = Settings(grace_period=2, drain="handover", redis_url="redis://unused")
    server = FlowServer(app, reg, settings, store=state, agent_runner=runner)
    stop = asyncio.Event()
    task = asyncio.ensure_future(server.serve(stop))
    try:
        await sb.wait_app("voxflow", 20)
        await until(lambda: app.sweeps > 0 or task.done(), 20, "worker started")
        yield server
    finally:
        stop.set()
        await task
        await state.flush()
        await state.release_app()
        await llm.aclose()


def _played(sb: Sandbox, cid: str) -> list[str]:
    exp = sb.calls[cid].experience()
    return [str(e["uri"]) for e in exp if e["type"] == "playback" and e["state"] == "playing"]


async def test_a_resumed_agent_conversation_keeps_its_history(tmp_path: Path) -> None:
    flow = tmp_path / "talk.flow"
    flow.write_text(AGENT_FLOW)
    said = [("assistant", "Hi, how can I help?"), ("user", "My boiler is leaking.")]
    first = Runner(said, None)
    second = Runner([("assistant", "Goodbye.")], {"outcome": "tool:end_call", "args": {}})
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="a") as a,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        async with _worker(sb, flow, a, first):
            call = await sb.place_call(from_="+15550500", to="100")

            async def in_checkpoint() -> bool:
                cp = await b.checkpoint(call.id)
                return cp is not None and cp.state == "talk" and list(cp.agent) == said

            for _ in range(500):  # written while A runs: a kill -9 now would leave it
                if await in_checkpoint():
                    break
                await asyncio.sleep(0.02)
            assert await in_checkpoint()
        assert call.hangup_cause is None  # handed over, not hung up
        async with _worker(sb, flow, b, second) as server:
            await call.wait_hangup(20)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].outcome == "completed" and server.resumed == 1
        assert len(first.seen) == 1 and len(second.seen) == 1
        assert [m for m in second.seen[0] if m[0] != "system"] == said  # the history came back
        assert second.steps[0].get(RESUMED) is True  # its step continues: no second greeting
        assert _played(sb, call.id) == ["sound:goodbye"]
        assert await b.call_entries() == [] and not sb.pbx.channels and not sb.pbx.bridges


async def test_anytime_commands_and_sensitive_variables_survive_a_hand_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    flow = tmp_path / "scoped.flow"
    flow.write_text(SCOPED_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="a") as a,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        async with _worker(sb, flow, a):
            call = await sb.place_call(from_="+15550600", to="100")
            await until(lambda: "sound:vm-login" in _played(sb, call.id), 15, "A's menu")
            for _ in range(500):
                cp = await b.checkpoint(call.id)
                if cp is not None and cp.state == "menu":
                    break
                await asyncio.sleep(0.02)
            assert cp is not None and cp.state == "menu"
            assert cp.variables == {"pin": "4321"}  # kept for the next worker (Redis only)
        async with _worker(sb, flow, b) as server:
            await until(lambda: _played(sb, call.id).count("sound:vm-login") == 2, 15, "resumed")
            await call.press("0")  # the scope's anytime command, active in the resumed menu
            await call.wait_hangup(15)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].reason == "operator"
        assert _played(sb, call.id)[-1] == "sound:transfer"  # the secret came back
        assert "4321" not in caplog.text  # never logged, on either worker
        assert await b.call_entries() == [] and not sb.pbx.channels and not sb.pbx.bridges

"""What a resumed call gets back besides its state (issue 20): its agent conversation (worker A
killed with SIGKILL mid-conversation), its anytime commands and scope handlers, and its
sensitive variables (kept in the checkpoint, never logged; A hands the call over). Worker B
resumes the call. On the sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _agent_worker import SAID, Runner
from _cluster_kit import running_redis, until

from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.cluster import ClusterState
from voxflow.cluster.metrics import WorkerCollector
from voxflow.runtime.agent_memory import RESUMED
from voxflow.runtime.config import Settings
from voxflow.runtime.driver import AgentRunner
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

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


async def test_an_agent_conversation_resumes_with_its_history_after_kill_9(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "talk.flow"
    flow.write_text(AGENT_FLOW)
    second = Runner((("assistant", "Goodbye."),), {"outcome": "tool:end_call", "args": {}})
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        script = Path(__file__).with_name("_agent_worker.py")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), sb.ari_url, sb.user, sb.password, rs.url, str(flow),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550500", to="100")

            async def in_checkpoint() -> bool:
                cp = await b.checkpoint(call.id)
                return cp is not None and cp.state == "talk" and cp.agent == SAID

            for _ in range(1000):  # A checkpoints the conversation while it goes on
                if await in_checkpoint():
                    break
                await asyncio.sleep(0.02)
            assert await in_checkpoint()
        finally:
            proc.send_signal(signal.SIGKILL)  # kill -9 mid-conversation
            await proc.wait()
        assert call.hangup_cause is None
        async with _worker(sb, flow, b, second) as server:  # takes the name once A's hold expires
            await call.wait_hangup(20)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].outcome == "completed" and server.resumed == 1
        assert len(second.seen) == 1
        assert [m for m in second.seen[0] if m[0] != "system"] == list(SAID)  # history is back
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
        async with _worker(sb, flow, a) as first:
            call = await sb.place_call(from_="+15550600", to="100")
            await until(lambda: "sound:vm-login" in _played(sb, call.id), 15, "A's menu")
            for _ in range(500):
                cp = await b.checkpoint(call.id)
                if cp is not None and cp.state == "menu":
                    break
                await asyncio.sleep(0.02)
            assert cp is not None and cp.state == "menu"
            assert cp.variables == {"pin": "4321"}  # kept for the next worker (Redis only)
        assert first.handed_over == 1 and call.id not in first.results
        metrics = {s.name: s.value for m in WorkerCollector(first, a).collect() for s in m.samples}
        assert metrics["voxflow_calls_handed_over_total"] == 1
        async with _worker(sb, flow, b) as server:
            await until(lambda: _played(sb, call.id).count("sound:vm-login") == 2, 15, "resumed")
            await call.press("0")  # the scope's anytime command, active in the resumed menu
            await call.wait_hangup(15)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].reason == "operator"
        assert _played(sb, call.id)[-1] == "sound:transfer"  # the secret came back
        assert "4321" not in caplog.text  # never logged, on either worker
        assert await b.call_entries() == [] and not sb.pbx.channels and not sb.pbx.bridges

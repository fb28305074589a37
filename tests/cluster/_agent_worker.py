"""A worker process for the kill -9 agent test: ``python _agent_worker.py ARI_URL USER PASSWORD
REDIS_URL FLOW``. It serves FLOW in cluster mode (app ``voxflow``, worker id ``a``, a 1 s hold
on the app name) with :class:`Runner` as its agent runner, mid-conversation forever."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import Any

from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.cluster import ClusterState
from voxflow.runtime import events as ev
from voxflow.runtime.config import Settings
from voxflow.runtime.port import AgentHost
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.telephony.app import VoxtraApp
from voxflow.voice.providers import ChatMessage

SAID = (("assistant", "Hi, how can I help?"), ("user", "My boiler is leaking."))


class Runner:
    """An agent runner (the driver's AgentRunner interface) over the call's real CallAgent:
    ``lines`` are added to its history and reported as spoken or heard; then it returns
    ``result``, or (None) waits forever: the conversation is in progress."""

    def __init__(self, lines: tuple[tuple[str, str], ...], result: Mapping[str, Any] | None):
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
        on_action: object = None,  # this runner's steps have no flow actions
    ) -> Mapping[str, Any]:
        agent: Any = call.agent
        self.seen.append([(m.role, m.content) for m in agent.history])
        self.steps.append(dict(agent.steps))
        for role, text in self.lines:
            agent.history.append(ChatMessage("user" if role == "user" else "assistant", text))
            if on_line is not None:
                on_line("caller" if role == "user" else "agent", text)
        if self.result is None:
            await asyncio.Event().wait()
        return dict(self.result or {})


async def main(ari_url: str, user: str, password: str, redis_url: str, flow: str) -> None:
    reg = FlowRegistry()
    reg.load([flow])
    llm = OpenAIChatModel(model="m", base_url="http://127.0.0.1:9/v1")  # the runner never asks
    async with ClusterState(redis_url, worker_id="a", heartbeat=0.3, worker_ttl=1.0) as state:
        await state.hold_app("voxflow")
        app = VoxtraApp(ari_url, user, password, "voxflow", llm=llm)
        server = FlowServer(
            app, reg, Settings(grace_period=2), store=state, agent_runner=Runner(SAID, None)
        )
        await server.serve(asyncio.Event())  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))

"""A caller who comes back after the call ended ``unknown``, without Redis (one ``voxflow run``
process, Asterisk 22's per-call outbound websockets, on the sandbox).

An agent has the caller past the queue's wait (its timeout + ``PER_CALL_QUEUE_SLACK``): the
per-call socket is long closed and nothing reaches the worker, so the call ends ``unknown``.
When the agent hangs up, ``Queue()`` sends the caller back (``CONTINUE``, the ``c`` option) on
a new socket. The process that ended it kept its checkpoint in memory and goes on with the flow
at the queue step (``answered``); its end is reported again (a second ``call.ended``, its own
``Idempotency-Key``, after the first's ``unknown``; the trace has both). Another process (a
restart) keeps nothing of it: the caller is hung up, and the log says why."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest
from _e2e_kit import serving, until
from aiohttp import web
from http_kit import local_http

from voxflow.runtime.config import Settings
from voxflow.runtime.events import End
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.trace import read_trace
from voxflow.sandbox import QueueAgent
from voxflow.sandbox.outbound import OutboundWebsocket
from voxflow.sandbox.server import Sandbox
from voxflow.telephony import dialplan
from voxflow.telephony.app import VoxtraApp

FLOW = """flow back "A queue, then a survey":
    answers "100"

state start:
    answer
    queue "desk" timeout 1s:
        on answered:
            say "Thanks for talking to us."
            hangup "answered"
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"
"""


@asynccontextmanager
async def _hooks() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver: each JSON body with its ``Idempotency-Key`` as ``_key``."""
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        body["_key"] = request.headers.get("Idempotency-Key", "")
        got.append(body)
        return web.Response(status=204)

    async with local_http("/hook", hook) as base:
        yield f"{base}/hook", got


def _ended(hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [h for h in hooks if h["event"] == "call.ended"]


async def test_a_caller_back_after_an_unknown_end_resumes_in_the_same_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialplan, "PER_CALL_QUEUE_SLACK", 0.5)  # the wait: 1 + 0.5 s
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW)
    traces = tmp_path / "traces"
    async with _hooks() as (url, hooks):
        settings = Settings(grace_period=5, webhook_url=url, trace_dir=str(traces))
        async with serving([flow], mode="per_call", settings=settings) as env:
            env.sb.add_queue("desk", [QueueAgent("ann", answer_after=0.3, talk=3.0)])
            call = await env.call("100")
            end = await env.result(call, 20)
            assert end.outcome == "unknown", end
            await until(lambda: len(_ended(hooks)) == 1, "the first call.ended", 10)
            # the agent hangs up: Queue() returns CONTINUE, the caller is back in Stasis
            await env.wait_line(call, "Thanks for talking to us.", 15)
            assert not call.ended or "Thanks for talking to us." in env.said(call)
            await call.wait_hangup(15)
            await until(lambda: env.server.results[call.id] != end, "the resumed end", 10)
            assert env.server.results[call.id] == End("completed", "answered")
            await until(lambda: len(_ended(hooks)) == 2, "the second call.ended", 10)
    ended = _ended(hooks)
    assert [(h["data"]["outcome"], h["data"]["reason"][:10]) for h in ended] == [
        ("unknown", "queue desk"),
        ("completed", "answered"),
    ]
    assert [h["_key"] for h in ended] == [f"{call.id}:call.ended", f"{call.id}:call.ended:returned"]
    records = read_trace(traces / f"{call.id}.jsonl")
    outcomes = [r["outcome"] for r in records if r["type"] == "call.ended"]
    assert outcomes == ["unknown", "completed"]
    first, second = [r for r in records if r["type"] == "call.started"]
    assert "returned" not in first
    assert second["returned"].startswith("queue-return,CONTINUE,")
    assert second["after_unknown"] is True
    assert second["called"] == first["called"] == "100"  # not the dialplan's 'queue'

    assert not env.server.away, "the kept checkpoint is taken by the return"


async def test_a_caller_back_to_another_process_is_hung_up_and_the_log_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the process that ended the call is not the one its return reaches (a restart: Asterisk's
    # websocket now goes to another worker, with nothing in memory); without Redis nothing is
    # shared, so the caller is hung up, and the log says why
    monkeypatch.setattr(dialplan, "PER_CALL_QUEUE_SLACK", 0.5)
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW)
    caplog.set_level(logging.WARNING, "voxflow")
    async with serving([flow], mode="per_call") as first:
        first.sb.add_queue("desk", [QueueAgent("ann", answer_after=0.3, talk=3.0)])
        call = await first.call("100")
        assert (await first.result(call, 20)).outcome == "unknown"
        assert first.server.away, "kept for its return"
        async with _another_worker(first.sb, flow) as second:
            await call.wait_hangup(15)
            await asyncio.sleep(0.2)
            assert call.id not in second.results
        assert "Thanks for talking to us." not in first.said(call)
    assert any(
        call.id in r.getMessage() and "nothing of it is kept" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


@asynccontextmanager
async def _another_worker(sb: Sandbox, flow: Path) -> AsyncIterator[FlowServer]:
    """A second worker (its own VoxtraApp and FlowServer, nothing shared with the first), which
    the sandbox's per-call websockets connect to from now on."""
    reg = FlowRegistry()
    reg.load([flow])
    app = VoxtraApp(
        sb.ari_url, sb.user, sb.password, "voxflow", mode="per_call", listen=("127.0.0.1", 0)
    )
    server = FlowServer(app, reg, Settings(grace_period=5))
    stop = asyncio.Event()
    serve = asyncio.ensure_future(server.serve(stop))
    try:
        async with asyncio.timeout(20):
            while app.links is None or app.links.server.port == 0:  # noqa: ASYNC110 - binds
                await asyncio.sleep(0.01)
        sb.add_outbound_websocket(
            OutboundWebsocket(
                "voxflow",
                f"ws://127.0.0.1:{app.links.server.port}/voxflow",
                sb.user,
                sb.password,
                connection_type="per_call_config",
                reconnect_interval=0.05,
                close_after_end=0.1,
            )
        )
        yield server
    finally:
        stop.set()
        await serve


async def test_with_away_ttl_0_the_caller_back_is_hung_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialplan, "PER_CALL_QUEUE_SLACK", 0.5)
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW)
    settings = Settings(grace_period=5, away_ttl=0.0)
    async with serving([flow], mode="per_call", settings=settings) as env:
        env.sb.add_queue("desk", [QueueAgent("ann", answer_after=0.3, talk=3.0)])
        call = await env.call("100")
        assert (await env.result(call, 20)).outcome == "unknown"
        assert not env.server.away
        await call.wait_hangup(15)
        await asyncio.sleep(0.2)
        assert "Thanks for talking to us." not in env.said(call)

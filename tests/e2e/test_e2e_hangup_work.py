"""A flow's ``on hangup`` work against a slow CRM, over real ARI on the sandbox: it runs to its
end past the app's ``handler_grace`` (a slow-but-working CRM loses nothing), a body past its
ceiling (``hangup_timeout``) is cut and the call's end says so (trace, ``call.ended`` webhook,
the End), and a stopping server waits for the work that runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _e2e_kit import serving, until
from aiohttp import web
from http_kit import local_http

from voxflow.cluster.metrics import WorkerCollector
from voxflow.runtime.config import Settings
from voxflow.testing.replay import replay_trace

FLOW = """flow bye "Posts the call to the CRM":
    answers "300"

var _a: map
var _b: map

on hangup:
    http post "{base}/crm_a" timeout 10s into _a
    http post "{base}/crm_b" into _b

state start:
    answer
    pause 30s
    hangup "done"
"""

GRACE = 0.2  # the app's handler_grace: the CRM takes longer


@dataclass
class Crm:
    """A CRM answering ``/crm_a`` after ``slow`` s, and a webhook receiver at ``/hook``."""

    slow: float
    base: str = ""
    got: list[str] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the test is over


@asynccontextmanager
async def _crm(slow: float) -> AsyncIterator[Crm]:
    crm = Crm(slow)

    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "hook":
            if request.headers.get("X-Voxflow-Event") == "call.ended":
                crm.hooks.append(json.loads(await request.read()))
            return web.Response(status=204)
        crm.got.append(name)
        if name == "crm_a":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(crm.done.wait(), crm.slow)
        crm.got.append(f"{name} answered")
        return web.json_response({"ok": True})

    async with local_http("/{name}", handle) as base:
        crm.base = base
        try:
            yield crm
        finally:
            crm.done.set()


def _settings(crm: Crm, tmp_path: Path, **kw: Any) -> Settings:
    kw.setdefault("grace_period", 5)
    traces = str(tmp_path / "traces")
    return Settings(webhook_url=f"{crm.base}/hook", trace_dir=traces, **kw)


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    [trace] = (tmp_path / "traces").glob("*.jsonl")
    return [json.loads(line) for line in trace.read_text().splitlines()]


async def test_a_slow_crm_gets_every_request_after_the_caller_hung_up(tmp_path: Path) -> None:
    async with _crm(slow=4 * GRACE) as crm:
        flow = tmp_path / "bye.flow"
        flow.write_text(FLOW.format(base=crm.base))
        settings = _settings(crm, tmp_path)
        async with serving([flow], settings=settings, app={"handler_grace": GRACE}) as env:
            call = await env.call("300")
            await env.wait_line(call, "-> start")
            await call.hangup()
            end = await env.result(call, 30)
            await until(lambda: bool(crm.hooks), "call.ended delivered")
    assert crm.got == ["crm_a", "crm_a answered", "crm_b", "crm_b answered"]
    assert (end.outcome, end.on_hangup_cut) == ("caller_hangup", None)
    assert crm.hooks[0]["data"] == {"outcome": "caller_hangup", "reason": "caller"}
    assert not [r for r in _records(tmp_path) if r["type"] == "on_hangup.cut"]


async def test_work_past_the_ceiling_is_cut_and_the_end_says_so(tmp_path: Path) -> None:
    async with _crm(slow=30) as crm:
        flow = tmp_path / "bye.flow"
        flow.write_text(FLOW.format(base=crm.base))
        settings = _settings(crm, tmp_path, hangup_timeout=4 * GRACE)
        async with serving([flow], settings=settings, app={"handler_grace": GRACE}) as env:
            call = await env.call("300")
            await env.wait_line(call, "-> start")
            await call.hangup()
            end = await env.result(call, 30)
            await until(lambda: bool(crm.hooks), "call.ended delivered")
            lines = env.said(call, "system")
            metrics = {m.name: m.samples[0].value for m in WorkerCollector(env.server).collect()}
    assert metrics["voxflow_on_hangup_cut"] == 1
    assert crm.got[0] == "crm_a" and "crm_b" not in crm.got  # crm_b was never sent
    assert (end.outcome, end.on_hangup_cut) == ("caller_hangup", 4 * GRACE)
    cut = {"status": "cut", "after": 4 * GRACE, "by": "hangup_timeout", "pending_requests": 1}
    assert crm.hooks[0]["data"] == {
        "outcome": "caller_hangup",
        "reason": "caller",
        "on_hangup": cut,
    }
    records = _records(tmp_path)
    [ended] = [r for r in records if r["type"] == "call.ended"]
    assert ended["outcome"] == "caller_hangup" and ended["on_hangup"] == cut
    assert [r["state"] for r in records if r["type"] == "on_hangup.cut"] == ["start"]
    assert any("on hangup body was cut after 0.8 s" in line for line in lines)
    [trace] = (tmp_path / "traces").glob("*.jsonl")
    report = replay_trace(trace, str(flow))  # voxflow replay cuts it at the call's ceiling too
    assert report.same, report.render()
    assert report.result is not None and report.result.on_hangup_cut == 4 * GRACE


async def test_a_body_the_app_cancels_is_a_cut_said_as_one(tmp_path: Path) -> None:
    """Whatever cancels the handler in its ``on hangup`` body (here the app's grace, set below
    the ceiling), the end is not lost: the trace, the webhook and the End say it was cut."""
    async with _crm(slow=30) as crm:
        flow = tmp_path / "bye.flow"
        flow.write_text(FLOW.format(base=crm.base))
        async with serving([flow], settings=_settings(crm, tmp_path)) as env:
            env.app.ended_handler_grace = 0.3
            call = await env.call("300")
            await env.wait_line(call, "-> start")
            await call.hangup()
            end = await env.result(call, 30)
            await until(lambda: bool(crm.hooks), "call.ended delivered")
    assert end.outcome == "caller_hangup" and end.on_hangup_cut is not None
    assert "crm_b" not in crm.got
    assert crm.hooks[0]["data"]["on_hangup"]["status"] == "cut"
    [ended] = [r for r in _records(tmp_path) if r["type"] == "call.ended"]
    assert ended["on_hangup"]["pending_requests"] == 1 and ended["on_hangup"]["by"] == "cancelled"


async def test_a_stopping_server_waits_for_the_work_that_runs(tmp_path: Path) -> None:
    async with _crm(slow=4 * GRACE) as crm:
        flow = tmp_path / "bye.flow"
        flow.write_text(FLOW.format(base=crm.base))
        settings = _settings(crm, tmp_path, grace_period=0)
        async with serving([flow], settings=settings, app={"handler_grace": GRACE}) as env:
            call = await env.call("300")
            await env.wait_line(call, "-> start")
            await call.hangup()
            await until(lambda: "crm_a" in crm.got, "the CRM got the first request")
        # the server stopped (as on SIGTERM) while the CRM was answering
        end = env.server.results[call.id]
    assert crm.got == ["crm_a", "crm_a answered", "crm_b", "crm_b answered"]
    assert (end.outcome, end.on_hangup_cut) == ("caller_hangup", None)
    assert [h["data"]["outcome"] for h in crm.hooks] == ["caller_hangup"]

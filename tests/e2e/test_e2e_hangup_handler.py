"""A flow's ``on hangup`` runs every step, over real ARI on the sandbox: the flow hanging up
itself and the caller hanging up both run its two HTTP requests and the log between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from _e2e_kit import serving
from aiohttp import web
from http_kit import local_http

FLOW = """flow bye "Hang-up handler":
    answers "300"

var _a: map
var _b: map

on hangup:
    http post "{base}/a" into _a
    log "between the requests"
    http post "{base}/b" into _b

state start:
    answer
    pause {pause}
    hangup "done"
"""


@asynccontextmanager
async def _crm() -> AsyncIterator[tuple[str, list[str]]]:
    got: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(request.path)
        return web.json_response({"ok": True})

    async with local_http("/{name}", handle) as base:
        yield base, got


async def test_on_hangup_runs_every_step_when_the_flow_hangs_up(tmp_path: Path) -> None:
    async with _crm() as (base, got):
        flow = tmp_path / "bye.flow"
        flow.write_text(FLOW.format(base=base, pause="100ms"))
        async with serving([flow]) as env:
            call = await env.call("300")
            end = await env.result(call)
    assert (end.outcome, end.reason) == ("completed", "done")
    assert got == ["/a", "/b"]


async def test_on_hangup_runs_every_step_when_the_caller_hangs_up(tmp_path: Path) -> None:
    async with _crm() as (base, got):
        flow = tmp_path / "bye.flow"
        flow.write_text(FLOW.format(base=base, pause="30s"))
        async with serving([flow]) as env:
            call = await env.call("300")
            await env.wait_line(call, "-> start")
            await call.hangup()
            end = await env.result(call)
    assert end.outcome == "caller_hangup"
    assert got == ["/a", "/b"]

"""An http step's string ``body`` (alone, or an item of a literal list or map) is a template, as
a subflow argument is: a server on 127.0.0.1 receives it rendered, over real ARI on the
sandbox. Any other string in an expression is used as written, which lint says (VF308)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from _e2e_kit import serving
from aiohttp import web
from http_kit import local_http

from voxflow.compiler import compile_flow

FLOW = """flow send "Bodies":
    answers "310"

var n: number = 7

state start:
    answer
    http post "{base}/text":
        body "{{{{ call.caller }}}} called"
        on ok, error, timeout -> more

state more:
    http post "{base}/map":
        body {{"caller": "{{{{ call.caller }}}}", "n": n, "list": ["#{{{{ n }}}}", "{{x}}"]}}
        on ok, error, timeout -> done

state done:
    hangup
"""


@asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    got: dict[str, Any] = {}

    async def handle(request: web.Request) -> web.Response:
        got[request.path] = await request.json()
        return web.json_response({"ok": True})

    async with local_http("/{name}", handle) as base:
        yield base, got


async def test_string_bodies_are_rendered_as_templates(tmp_path: Path) -> None:
    async with _receiver() as (base, got):
        flow = tmp_path / "send.flow"
        flow.write_text(FLOW.format(base=base))
        assert compile_flow(flow.read_text(), str(flow)).diagnostics == []
        async with serving([flow]) as env:
            call = await env.call("310", from_="+15550142")
            end = await env.result(call)
    assert end.outcome == "completed"
    assert got == {
        "/text": "+15550142 called",
        "/map": {"caller": "+15550142", "n": 7, "list": ["#7", "{x}"]},
    }

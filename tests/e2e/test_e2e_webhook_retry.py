"""One process, no Redis (issue 20): a ``call.ended`` the receiver refuses is retried in the
background with the same ``Idempotency-Key`` (the call's end and teardown do not wait for it)
and delivered once the receiver answers. Over real ARI on the sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _e2e_kit import serving
from aiohttp import web

from voxflow.runtime.config import Settings
from voxflow.runtime.webhooks import RetryPolicy

FLOW = """flow bye "Ends at once":
    answers "300"

state start:
    answer
    hangup "done"
"""


async def test_a_refused_call_ended_is_retried_after_the_call_is_gone(tmp_path: Path) -> None:
    down = True
    tries: list[str] = []
    processed: dict[str, bytes] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("X-Voxflow-Event") != "call.ended":
            return web.Response(status=204)
        key = request.headers.get("Idempotency-Key", "")
        tries.append(key)
        if down:
            return web.Response(status=503)
        processed.setdefault(key, body)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    flow = tmp_path / "bye.flow"
    flow.write_text(FLOW)
    try:
        settings = Settings(grace_period=5, webhook_url=url, webhook_secret="s")
        async with serving([flow], settings=settings) as env:
            hooks = env.server.webhooks
            hooks.retry = RetryPolicy(attempts=20, initial=0.05, max_delay=0.2)
            call = await env.call("300")
            end = await env.result(call)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while len(tries) < 2 or env.server.drivers or env.sb.pbx.channels:
                assert loop.time() < deadline, "the call never ended while its webhook failed"
                await asyncio.sleep(0.02)
            assert not processed and hooks.retried >= 1  # the call is gone, the webhook retries
            down = False
            while not processed:
                assert loop.time() < deadline, "call.ended never delivered"
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert end.outcome == "completed"
    assert set(tries) == {f"{call.id}:call.ended"} and list(processed) == [f"{call.id}:call.ended"]
    assert hooks.sent >= 1 and hooks.failed == 0

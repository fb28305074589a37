"""An http step's ``retries N backoff D``: a server on 127.0.0.1 that answers 503 gets the
request 1 + N times from a call on the sandbox, and ``voxflow test`` sends the same requests
(the run time and the simulator share one retry policy, ``with_retries``)."""

from __future__ import annotations

from pathlib import Path

from _e2e_kit import serving
from aiohttp import web

from voxflow.runtime.events import End
from voxflow.testing.runner import run_paths

FLOW = """flow retry "Retries":
    answers "320"
    timeout 5s

var order: map = {{}}

state start:
    answer
    http {method} "{base}/orders/42" into order {retries}:
        on ok:
            hangup "ok"
        on error, timeout:
            hangup "down"
"""

SCENARIO = """flow: retry.flow
scenarios:
  - name: the order service is down
    mocks:
      http: [{url: orders, status: 503}]
    expect:
      http: [{match: "orders/42$", times: TIMES}]
      ended: {reason: down}
"""


async def _hits(tmp_path: Path, method: str, retries: str) -> tuple[int, int]:
    """Requests the server got from a call on the sandbox, and those voxflow test sent."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"error": "down"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/orders/{n}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        flow = tmp_path / "retry.flow"
        flow.write_text(FLOW.format(method=method, base=base, retries=retries))
        async with serving([flow]) as env:
            call = await env.call("320")
            assert await env.result(call, 30) == End("completed", "down")
    finally:
        await runner.cleanup()
    served = len(hits)
    for times in range(0, 8):
        (tmp_path / "retry.test.yaml").write_text(SCENARIO.replace("TIMES", str(times)))
        run = run_paths([tmp_path])
        assert not run.errors
        if run.outcomes[0].failures == []:
            return served, times
    raise AssertionError("voxflow test sent no number of requests from 0 to 7")


async def test_retries_and_backoff_are_what_was_sent(tmp_path: Path) -> None:
    assert await _hits(tmp_path, "get", "retries 3 backoff 100ms") == (4, 4)


async def test_retries_0_sends_once_and_the_default_is_two_retries(tmp_path: Path) -> None:
    assert await _hits(tmp_path, "put", "retries 0") == (1, 1)
    assert await _hits(tmp_path, "delete", "") == (3, 3)

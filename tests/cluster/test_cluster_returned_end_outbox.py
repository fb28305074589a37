"""A call that ended ``unknown`` and came back ends twice (its second ``call.ended`` has the
Idempotency-Key ``<id>:call.ended:returned``): both webhooks stay in the outbox until delivered.
The first may still be undelivered (its receiver down, retrying) when the second is claimed;
the second must not replace it, and the first's delivery must not remove the second's entry,
or a worker killed then loses one. Real redis-server, a worker process killed with SIGKILL,
and a receiver that refuses until told otherwise."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from _cluster_kit import running_redis, until
from aiohttp import web

from voxflow.cluster import ClusterState
from voxflow.runtime.webhook_retry import RetryPolicy
from voxflow.runtime.webhooks import WebhookSender

SECRET = "returned-end-secret"
FIRST, RETURNED = "c1:call.ended", "c1:call.ended:returned"

_WORKER_A = """
import asyncio, sys
from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.webhook_retry import RetryPolicy
from voxflow.runtime.webhooks import WebhookSender, build_payload

FLOW = '''flow f "f":
    answers "100"

state start:
    answer
    hangup "done"
'''

def body(outcome):
    return build_payload("call.ended", call_id="c1", flow="f", metadata={}, webhook_keys=(),
                         data={"outcome": outcome, "reason": ""})

async def main(url, hooks, secret):
    a = ClusterState(url, worker_id="a", heartbeat=0.1)
    sender = WebhookSender(hooks, secret, retry=RetryPolicy(initial=0.1, max_delay=0.2,
                                                            attempts=1000, max_elapsed=3600))
    a.attach_webhooks(sender)
    async with a:
        first = body("unknown")  # sent to the dialplan's queue: its end, retried
        assert await a.claim_end("c1", ("c1:call.ended", first))
        sender.emit_built("call.ended", "c1", "c1:call.ended", first)
        flow = compile_flow(FLOW, "f.flow").flow
        fhash = await a.publish(flow)
        await a.away.keep_away("c1", Checkpoint(fhash, "start", {}), flow)
        assert await a.away.come_back("c1")  # the caller came back: the call ends again
        second = body("completed")
        assert await a.claim_end("c1", ("c1:call.ended:returned", second))
        sender.emit_built("call.ended", "c1", "c1:call.ended:returned", second)
        print("ready", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:]))
"""


@asynccontextmanager
async def _receiver(
    accepts: Callable[[str], bool],
) -> AsyncIterator[tuple[str, list[str]]]:
    """``/hooks``: 204 for the keys ``accepts``, else 503; yields the keys answered 204."""
    got: list[str] = []

    async def hooks(request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("Idempotency-Key", "")
        if not accepts(key):
            return web.Response(status=503)
        got.append(key)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", hooks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hooks", got
    finally:
        await runner.cleanup()


async def _pending(state: ClusterState) -> dict[str, str]:
    raw = await state.redis.hgetall(state.outbox.key)
    return {json.loads(v)["key"]: json.loads(v)["worker"] for v in raw.values()}


async def _worker_a(redis_url: str, hooks: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER_A, redis_url, hooks, SECRET,
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line == b"ready\n", line
    return proc


@pytest.mark.parametrize("first_delivered", [False, True])
async def test_both_ends_of_a_returned_call_reach_the_receiver_when_their_worker_dies(
    tmp_path: Path, first_delivered: bool
) -> None:
    """``first_delivered``: the receiver took the first end before the worker died (its entry
    left the outbox, not the returned end's); else it refused both until then."""
    accept: set[str] = {FIRST} if first_delivered else set()
    async with (
        running_redis(tmp_path) as rs,
        _receiver(lambda key: key in accept or "*" in accept) as (hooks, got),
        ClusterState(rs.url, worker_id="b", heartbeat=0.1, outbox_every=0.1) as b,
    ):
        proc = await _worker_a(rs.url, hooks)
        try:
            if first_delivered:
                await until(lambda: got == [FIRST], 15, "a delivers the first end")
                for _ in range(200):  # its done() goes with a's next tick
                    if FIRST not in await _pending(b):
                        break
                    await asyncio.sleep(0.02)
            want = {RETURNED: "a"} if first_delivered else {FIRST: "a", RETURNED: "a"}
            assert await _pending(b) == want  # each its own entry, both a's
        finally:
            proc.send_signal(signal.SIGKILL)  # a dies with its webhook(s) undelivered
            await proc.wait()
        accept.add("*")  # the receiver is back
        sender = WebhookSender(hooks, SECRET, retry=RetryPolicy(initial=0.1, max_delay=0.2))
        b.attach_webhooks(sender)
        try:
            await until(lambda: {FIRST, RETURNED} <= set(got), 20, "b delivers a's ends")
            for _ in range(200):
                if not await _pending(b):
                    break
                await asyncio.sleep(0.02)
            assert await _pending(b) == {}
        finally:
            await sender.aclose()

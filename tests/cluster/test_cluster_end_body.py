"""A call's ``call.ended`` is built once in cluster mode when nothing changed between its end
claim (which writes it to the outbox) and its sending: the claimed body is what the receiver
gets (issue 20). An ``on hangup`` body that went on after the claim (past an HTTP step) has it
built again (the webhook metadata it set then is in it).
Real redis-server, sandbox and a local HTTP receiver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _cluster_kit import post_recorder, running_redis, until, worker

from voxflow.cluster import ClusterState
from voxflow.runtime.config import Settings
from voxflow.runtime.webhooks import WebhookSender
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow quick "ends at once":
    answers "100"
{hangup}
state start:
    answer
    hangup "done"
"""
ON_HANGUP = """
var r: map

on hangup:
    http post "{url}/step" into r
    meta note = "late" webhook
"""


@pytest.mark.parametrize("hangup", ["", ON_HANGUP], ids=["as-claimed", "on-hangup"])
async def test_call_ended_is_the_claimed_body_unless_the_end_changed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hangup: str
) -> None:
    built: list[bytes] = []
    payload = WebhookSender.payload

    def counted(self: WebhookSender, event: str, **kw: Any) -> bytes | None:
        body = payload(self, event, **kw)
        if event == "call.ended" and body is not None:
            built.append(body)
        return body

    monkeypatch.setattr(WebhookSender, "payload", counted)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b", heartbeat=0.1) as b,
        post_recorder() as (url, got),
    ):
        flow = tmp_path / "quick.flow"
        flow.write_text(FLOW.replace("{hangup}", hangup).replace("{url}", url))
        settings = Settings(grace_period=2, webhook_url=f"{url}/hooks")
        async with worker(sb, flow, b, settings=settings) as server:
            call = await sb.place_call(from_="+15550410", to="100")
            await call.wait_hangup(15)
            await until(lambda: any(g[1] == "call.ended" for g in got), 15, "call.ended")
            await server.webhooks.flush(5)
        [body] = [g[3] for g in got if g[1] == "call.ended"]
        assert await b.redis.hgetall(b.outbox.key) == {}  # delivered: it left the outbox
    if not hangup:
        assert built == [body]  # built once, with the claim, and sent as it was claimed
        assert json.loads(body)["data"]["outcome"] == "completed"
    else:
        assert len(built) == 2 and built[-1] == body  # built again after the on hangup body
        assert json.loads(body)["metadata"] == {"note": "late"}
        assert json.loads(built[0])["metadata"] == {}

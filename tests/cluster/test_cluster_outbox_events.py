"""Every webhook carries an ``Idempotency-Key`` derived from the call and the event, and the ones
nothing would send again after a worker death (``call.started``, ``recording.ready``) go through
the Redis outbox like ``call.ended`` (issue 20). Real redis-server, the sandbox, a local HTTP
receiver and ``voxflow run`` workers, one killed (SIGKILL) at the fault point
``webhook_held:recording.ready``: the recording was made, its webhook held, not sent."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import redis.asyncio as aioredis
from _cluster_kit import (
    Got,
    checkpointed,
    post_recorder,
    running_redis,
    until,
    worker_process,
    workers_registered,
)
from forked import Forked

from voxflow.cluster import ClusterState
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.webhook_retry import RetryPolicy
from voxflow.runtime.webhooks import OUTBOX_EVENTS, WebhookSender
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow rec "records once":
    answers "100"

var n: number = 0
var _d: string

state start:
    answer
    goto rec

state rec:
    set n = n + 1
    gather "Press 1." into _d:
        capture digits
        max_digits 1
        timeout 60s
        on noinput, nomatch -> done
    record_start "msg-{{ n }}"
    record_stop "msg-{{ n }}"
    goto menu

state menu:
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


async def _resumed(r: aioredis.Redis, call_id: str, pid: int) -> str:
    """The state worker ``pid`` resumed the call in: ``rec`` (re-entered: a recording started
    again) when the killed worker's last checkpoint was still in ``rec``, ``menu`` when its
    checkpoint of ``menu`` went with the tick that held the recording's webhook (at most 60 s)."""
    for _ in range(3000):
        raw, entry = await r.mget(f"voxflow:checkpoint:{call_id}", f"voxflow:call:{call_id}")
        if raw is not None and entry is not None:
            cp = Checkpoint.from_json(raw)
            if (cp.state, cp.variables.get("n")) == ("rec", 2):
                return "rec"
            mine = str(json.loads(entry)["worker"]).endswith(f"-{pid}")
            if mine and (cp.state, cp.variables.get("n")) == ("menu", 1):
                return "menu"
        await asyncio.sleep(0.02)
    raise AssertionError(f"call {call_id} was not resumed by worker {pid}")


def _hooks(got: Got, event: str) -> list[tuple[str, dict[str, object]]]:
    """(Idempotency-Key, body) of each ``event`` webhook received, in order."""
    return [(g[2], json.loads(g[3])) for g in got if g[0] == "/hooks" and g[1] == event]


async def test_a_recording_ready_held_by_a_killed_worker_is_sent_once_by_another(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        post_recorder() as (url, got),
    ):
        r = aioredis.Redis.from_url(rs.url)
        flow = tmp_path / "rec.flow"
        flow.write_text(FLOW)
        config = tmp_path / "voxflow.toml"
        config.write_text("[cluster]\nfailover_ttl = 1.0\n")
        hooks = f"{url}/hooks"
        fault = "webhook_held:recording.ready"
        a = await worker_process(sb, flow, rs.url, config, hooks, fault=fault)
        b: Forked | None = None
        b_log = tmp_path / "b.log"
        try:
            await sb.wait_app("voxflow", 60)
            b = await worker_process(sb, flow, rs.url, config, hooks, log=b_log)
            await workers_registered(r, 2)
            call = await sb.place_call(from_="+15550700", to="100")
            await checkpointed(r, call.id, "rec", n=1)
            await call.press("1")  # a records msg-1, holds its recording.ready and dies
            async with asyncio.timeout(30):
                await a.communicate()
            assert a.returncode == -signal.SIGKILL
            names = ["msg-1"]
            if await _resumed(r, call.id, b.pid) == "rec":  # a's menu checkpoint did not go
                await call.press("1")  # b records msg-2
                await checkpointed(r, call.id, "menu", n=2)
                names.append("msg-2")
            await call.press("1")
            assert await call.wait_hangup(30) == 16
            await until(lambda: len(_hooks(got, "recording.ready")) >= len(names), 30, "recordings")
            await until(lambda: bool(_hooks(got, "call.ended")), 30, "call.ended")
            for _ in range(500):
                if not await r.hlen("voxflow:outbox"):
                    break
                await asyncio.sleep(0.02)
            assert await r.hlen("voxflow:outbox") == 0
            await asyncio.sleep(0.3)  # more outbox rounds: nothing repeats
        finally:
            for p in (a, b):
                if p is not None and p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            for p in (a, b):
                if p is not None:
                    async with asyncio.timeout(30):
                        await p.communicate()
            await r.aclose()
        recorded = _hooks(got, "recording.ready")
        assert sorted((k, str(b["data"])) for k, b in recorded) == [
            (f"{call.id}:recording:{name}", str({"name": name, "format": "wav"})) for name in names
        ]  # each once; msg-1 by b (once a is out of the registry), with the key a gave it
        assert "sending the recording.ready of dead worker" in b_log.read_text()
        assert [k for k, _ in _hooks(got, "call.started")] == [f"{call.id}:call.started"]
        assert [k for k, _ in _hooks(got, "call.ended")] == [f"{call.id}:call.ended"]
        entered = [k for k, _ in _hooks(got, "state.entered")]
        assert all(k.startswith(f"{call.id}:") and k.endswith(":state.entered") for k in entered)
        assert not sb.pbx.channels and not sb.pbx.bridges


async def test_every_event_is_keyed_and_the_kept_ones_wait_in_the_outbox_until_delivered(
    tmp_path: Path,
) -> None:
    """In-process: a ``call.started`` and a ``recording.ready`` are in the outbox (one entry
    each, keyed by their ``Idempotency-Key``) while the receiver answers 503, with their key on
    every try; a ``state.entered`` is keyed but never kept; all leave once delivered."""
    fail = {"on": True}
    retry = RetryPolicy(attempts=1000, initial=0.05, factor=1.0, max_delay=0.05)
    async with (
        running_redis(tmp_path) as rs,
        post_recorder(status=lambda: 503 if fail["on"] else 200) as (url, got),
        ClusterState(rs.url, worker_id="w") as st,
    ):
        sender = WebhookSender(f"{url}/hooks", retry=retry)
        st.attach_webhooks(sender)
        kw = {"call_id": "c1", "flow": "f", "metadata": {}}
        sender.emit("call.started", **kw)
        sender.emit("recording.ready", **kw, data={"name": "m"}, key="c1:recording:m")
        sender.emit("state.entered", **kw, key="c1:2:state.entered")
        await until(lambda: len(got) >= 6, 15, "the first tries and a retry of each")
        raw = await st.redis.hgetall(st.outbox.key)
        held = {k.decode(): json.loads(v) for k, v in raw.items()}
        assert set(held) == {"c1:call.started", "c1:recording:m"}
        assert {h["event"] for h in held.values()} == {"call.started", "recording.ready"}
        assert {h["call"] for h in held.values()} == {"c1"}
        fail["on"] = False
        await sender.flush(30)
        await st.flush()
        assert await st.redis.hlen(st.outbox.key) == 0
        await sender.aclose()
    keys = {(g[1], g[2]) for g in got}  # every try of an event with its key
    assert keys == {
        ("call.started", "c1:call.started"),
        ("recording.ready", "c1:recording:m"),
        ("state.entered", "c1:2:state.entered"),
    }
    assert OUTBOX_EVENTS == {"call.started", "recording.ready", "call.ended"}

"""A call resumed from its checkpoint re-runs its state's recording under a name of its own
(issue 20): a worker killed (SIGKILL) while recording ``msg``, or right after (its
``recording.ready`` sent, the call still in the state), leaves ``msg`` on Asterisk (still
recording, or stored); the resuming worker's ``record_start "msg"`` gets 409 (ifExists=fail) and
records ``msg-r1``: the first is kept, each ``recording.ready`` is sent once under its own key,
and the call reaches its normal end. Real redis-server, the sandbox, two ``voxflow run``
workers and a local HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _cluster_kit import (
    Got,
    checkpointed,
    outbox_empty,
    post_recorder,
    running_redis,
    until,
    worker_process,
    workers_registered,
)
from forked import Forked

from voxflow.sandbox.server import Sandbox

FLOW = """\
flow rec "records under one name":
    answers "100"

var tries: number = 0
var _d: string

state start:
    answer
    goto rec

state rec:
    set tries = tries + 1
    gather "Press 1." into _d:
        capture digits
        max_digits 1
        timeout 60s
        on noinput, nomatch -> done
    record_start "msg"
    gather "Press 1." into _d:
        capture digits
        max_digits 1
        timeout 60s
        on noinput, nomatch -> done
    record_stop "msg"
    gather "Press 1." into _d:
        capture digits
        max_digits 1
        timeout 60s
        on noinput, nomatch -> done
    goto menu

state menu:
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


def _ready(got: Got) -> list[tuple[str, str]]:
    """(Idempotency-Key, recording name) of each ``recording.ready`` received, in order."""
    out = []
    for path, event, key, body in got:
        if path == "/hooks" and event == "recording.ready":
            out.append((key, str(json.loads(body)["data"]["name"])))
    return out


@pytest.mark.parametrize("when", ["during", "after"])
async def test_a_resumed_call_records_again_under_its_own_name(tmp_path: Path, when: str) -> None:
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
        live = sb.pbx.live_recordings
        a = await worker_process(sb, flow, rs.url, config, hooks, log=tmp_path / "a.log")
        b: Forked | None = None
        try:
            await sb.wait_app("voxflow", 60)
            b = await worker_process(sb, flow, rs.url, config, hooks, log=tmp_path / "b.log")
            await workers_registered(r, 2)
            call = await sb.place_call(from_="+15550710", to="100")
            await checkpointed(r, call.id, "rec", tries=1)
            await call.press("1")  # a starts recording msg
            await until(lambda: "msg" in live, 30, "a recording msg")
            if when == "after":
                await call.press("1")  # a stops it and sends its recording.ready
                await until(lambda: bool(_ready(got)), 30, "msg's recording.ready")
                await outbox_empty(r)  # delivered and settled: a second send would be a repeat
            a.send_signal(signal.SIGKILL)
            async with asyncio.timeout(30):
                await a.communicate()
            await checkpointed(r, call.id, "rec", tries=2)  # b re-entered rec
            await call.press("1")  # b records again: msg is taken (live or stored)
            await until(lambda: "msg-r1" in live, 30, "the resumed call recording msg-r1")
            await call.press("1")
            await until(lambda: "msg-r1" in {n for _, n in _ready(got)}, 30, "msg-r1 ready")
            await call.press("1")
            await checkpointed(r, call.id, "menu", tries=2)
            await call.press("1")
            assert await call.wait_hangup(30) == 16
            await until(lambda: any(g[1] == "call.ended" for g in got), 30, "call.ended")
            await outbox_empty(r)
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
        names = ["msg", "msg-r1"] if when == "after" else ["msg-r1"]
        assert sorted(_ready(got)) == [(f"{call.id}:recording:{n}", n) for n in names]
        ended = [json.loads(g[3]) for g in got if g[1] == "call.ended"]
        assert len(ended) == 1 and ended[0]["data"] == {"outcome": "completed", "reason": "done"}
        assert sb.recordings_dir is not None
        stored = {p.stem for p in sb.recordings_dir.iterdir()}
        assert {"msg", "msg-r1"} <= stored  # the dead worker's recording is kept
        assert not sb.pbx.channels and not sb.pbx.bridges and not live

"""A per-call outbound websocket drops while its worker lives (a network blip) and Asterisk's
re-connection reaches the other worker through the balancer: the other worker adopts the call
and resumes it at its checkpointed menu; the first one lets the call go without ending it (no
``on hangup``, no end claim, no ``call.ended``) once the link is not back within its grace,
and the call ends once, on the worker that drives it. Two in-process workers in cluster mode,
a round-robin balancer, the sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _cluster_kit import MENU_FLOW, checkpointed_at, played, running_redis, until, webhook_receiver
from _outbound_kit import connect_per_call, per_call_worker
from tcp_balancer import Balancer

from voxflow.cluster import ClusterState
from voxflow.runtime import server
from voxflow.sandbox.outbound import OutboundWebsocket
from voxflow.sandbox.server import Sandbox


async def test_a_dropped_link_moved_to_the_other_worker_ends_the_call_once(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "menu.flow"
    flow.write_text(MENU_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        ClusterState(rs.url, worker_id="b") as sb_state,
        per_call_worker(flow, sa, hook_url) as a,
        per_call_worker(flow, sb_state, hook_url) as b,
    ):
        ports = [s.app.links.server.port for s in (a, b) if s.app.links is not None]
        async with Balancer(ports) as balancer:
            connect_per_call(sb, balancer.port)
            call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
            await checkpointed_at(rs.url, call.id, "menu", 30, picked="early")
            assert call.id in a.drivers  # round robin: the first connection went to a
            [name] = [n for n in sb.outbound.sockets if n.startswith("voxflow:")]
            await sb.outbound.sockets[name].ws.close()  # the network drops the call's socket
            await until(lambda: played(sb, call.id).count("sound:vm-login") == 2, 15, "on b")
            assert call.id in b.drivers
            await until(lambda: call.id not in a.drivers, 10, "a lets the call go")
            await asyncio.sleep(0.3)  # what a would do after its grace has time to show
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in b.results, 10, "the call's end on b")
            assert b.results[call.id].outcome == "completed"
            assert call.id not in a.results  # a did not end it
            await until(lambda: any(h["event"] == "call.ended" for h in hooks), 10, "ended")
            await asyncio.sleep(0.3)
            ended = [h["data"] for h in hooks if h["event"] == "call.ended"]
            assert [(d["outcome"], d.get("reason")) for d in ended] == [("completed", "done")]
            assert await sa.call_entries() == []


PAUSE_FLOW = """\
flow paused "acts on its own clock":
    answers "100"

var picked: string = "none"

state start:
    answer
    play "sound:hello-world"
    set picked = "early"
    goto menu

state menu:
    play "sound:vm-login"
    pause 2s
    goto later

state later:
    hangup "later"
"""


async def test_a_dropped_link_taken_by_the_other_worker_stops_the_first_within_its_grace(
    tmp_path: Path,
) -> None:
    # a's link grace is 4 s; its flow pauses 2 s (a timer of its own: no Asterisk event
    # needed) when the link drops. Once b adopted the call (its registry entry names b), a
    # must not act on it any more: it went on until its grace was over, entered 'later' (a
    # second state.entered webhook) and ended the call there while b drove it
    flow = tmp_path / "paused.flow"
    flow.write_text(PAUSE_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        ClusterState(rs.url, worker_id="b") as sb_state,
        per_call_worker(flow, sa, hook_url, link_grace=4.0) as a,
        per_call_worker(flow, sb_state, hook_url) as b,
    ):
        ports = [s.app.links.server.port for s in (a, b) if s.app.links is not None]
        async with Balancer(ports) as balancer:
            connect_per_call(sb, balancer.port)
            call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
            await checkpointed_at(rs.url, call.id, "menu", 30, picked="early")
            assert call.id in a.drivers
            ch = sb.pbx.channels[call.id]
            await until(
                lambda: "sound:vm-login" in played(sb, call.id) and not ch.playbacks, 15,
                "a pauses",
            )  # fmt: skip
            [name] = [n for n in sb.outbound.sockets if n.startswith("voxflow:")]
            await sb.outbound.sockets[name].ws.close()
            await until(lambda: played(sb, call.id).count("sound:vm-login") == 2, 15, "on b")
            await until(lambda: call.id not in a.drivers, 1.0, "a lets go before its grace")
            await call.wait_hangup(15)
            await until(lambda: call.id in b.results, 10, "the call's end on b")
            assert b.results[call.id].reason == "later"
            await asyncio.sleep(1.0)  # past a's pause, within its grace
            assert call.id not in a.results
            entered = [h["data"]["state"] for h in hooks if h["event"] == "state.entered"]
            assert entered.count("later") == 1, entered
            ended = [h["data"] for h in hooks if h["event"] == "call.ended"]
            assert [(d["outcome"], d.get("reason")) for d in ended] == [("completed", "later")]


ACT_FLOW = """\
flow acting "acts while its link is down":
    answers "100"

var picked: string = "none"

state start:
    answer
    play "sound:hello-world"
    set picked = "early"
    goto menu

state menu:
    play "sound:vm-login"
    pause 2s
    play "sound:goodbye"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"

on error:
    hangup "error"
"""


async def test_a_request_while_the_link_is_down_never_runs_the_error_handling_of_a_moved_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a's pause ends while its link is down and before a learns that b adopted the call (its
    # registry reads are made rare here: the window is up to 0.2 s in production). The play
    # after it failed at once, so a ran the flow's `on error` (and ended the call) while b
    # drove it; now the request waits for the link, and a lets the call go quietly
    monkeypatch.setattr(server, "MOVED_POLL", 30.0)
    flow = tmp_path / "acting.flow"
    flow.write_text(ACT_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        ClusterState(rs.url, worker_id="b") as sb_state,
        per_call_worker(flow, sa, hook_url, link_grace=4.0) as a,
        per_call_worker(flow, sb_state, hook_url) as b,
    ):
        ports = [s.app.links.server.port for s in (a, b) if s.app.links is not None]
        async with Balancer(ports) as balancer:
            connect_per_call(sb, balancer.port)
            call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
            await checkpointed_at(rs.url, call.id, "menu", 30, picked="early")
            assert call.id in a.drivers
            ch = sb.pbx.channels[call.id]
            await until(
                lambda: "sound:vm-login" in played(sb, call.id) and not ch.playbacks, 15,
                "a pauses",
            )  # fmt: skip
            [name] = [n for n in sb.outbound.sockets if n.startswith("voxflow:")]
            await sb.outbound.sockets[name].ws.close()
            await until(lambda: played(sb, call.id).count("sound:vm-login") == 2, 15, "on b")
            await until(lambda: call.id not in a.drivers, 10, "a lets the call go")
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in b.results, 10, "the call's end on b")
            assert b.results[call.id].reason == "done"
            assert call.id not in a.results
            await asyncio.sleep(0.3)
            ended = [h["data"] for h in hooks if h["event"] == "call.ended"]
            assert [(d["outcome"], d.get("reason")) for d in ended] == [("completed", "done")]


async def test_a_dropped_link_with_many_calls_reads_their_entries_in_one_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a persistent link carries three calls; while it is down the worker watches their
    # registry entries (has another worker adopted them?): one read per poll for all three,
    # not one GET per call every 0.2 s
    flow = tmp_path / "menu.flow"
    flow.write_text(MENU_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, _hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        per_call_worker(flow, sa, hook_url, link_grace=5.0, mode="persistent") as a,
    ):
        assert a.app.links is not None
        uri = f"ws://127.0.0.1:{a.app.links.server.port}/voxflow"
        cfg = OutboundWebsocket("voxflow", uri, "asterisk", "secret", "persistent")
        cfg.reconnect_interval = 1.0
        sb.add_outbound_websocket(cfg)
        await sb.wait_app("voxflow")
        calls = [await sb.place_call(from_=f"+1555010{i}", to="100") for i in range(3)]
        for call in calls:
            await checkpointed_at(rs.url, call.id, "menu", 30, picked="early")
        reads: list[list[str]] = []
        redis = sa.redis
        get, mget = redis.get, redis.mget

        async def counted_get(key: str) -> object:
            if ":call:" in key:
                reads.append([key])
            return await get(key)

        async def counted_mget(keys: list[str], *more: str) -> object:
            if any(":call:" in k for k in keys):
                reads.append(list(keys))
            return await mget(keys, *more)

        monkeypatch.setattr(redis, "get", counted_get)
        monkeypatch.setattr(redis, "mget", counted_mget)
        links = a.app.links
        for conn in list(links.server.connections):
            conn.abort()  # the network drops; Asterisk reconnects after 1 s
        await until(lambda: not links.up("voxflow"), 5, "the link down")
        await until(lambda: links.up("voxflow"), 10, "the link back")
        assert reads, "the registry was not read while the link was down"
        ids = {c.id for c in calls}
        for keys in reads:
            assert {k.rsplit("call:", 1)[-1] for k in keys} == ids, reads
        for call in calls:
            await call.press("1")
        for call in calls:
            await call.wait_hangup(15)


async def test_a_request_the_drop_cut_off_never_runs_the_error_handling_of_a_moved_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as above, but a's play is in flight (Asterisk served it and answers late) when the
    # link drops: the request lost with the socket failed at once and a ran `on error`
    monkeypatch.setattr(server, "MOVED_POLL", 30.0)
    flow = tmp_path / "acting.flow"
    flow.write_text(ACT_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        ClusterState(rs.url, worker_id="b") as sb_state,
        per_call_worker(flow, sa, hook_url, link_grace=4.0) as a,
        per_call_worker(flow, sb_state, hook_url) as b,
    ):
        ports = [s.app.links.server.port for s in (a, b) if s.app.links is not None]
        async with Balancer(ports) as balancer:
            connect_per_call(sb, balancer.port)
            call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
            await checkpointed_at(rs.url, call.id, "menu", 30, picked="early")
            assert call.id in a.drivers
            ch = sb.pbx.channels[call.id]
            await until(
                lambda: "sound:vm-login" in played(sb, call.id) and not ch.playbacks, 15,
                "a pauses",
            )  # fmt: skip
            sb.faults.slow_requests(1.0, method="POST", path=r"/play$")
            await until(lambda: "sound:goodbye" in played(sb, call.id), 15, "a's play served")
            [name] = [n for n in sb.outbound.sockets if n.startswith("voxflow:")]
            await sb.outbound.sockets[name].ws.close()  # a's play has no answer yet
            sb.faults.slow_requests(0)
            await until(lambda: played(sb, call.id).count("sound:vm-login") == 2, 15, "on b")
            await until(lambda: call.id not in a.drivers, 10, "a lets the call go")
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in b.results, 10, "the call's end on b")
            assert b.results[call.id].reason == "done"
            assert call.id not in a.results
            await asyncio.sleep(0.3)
            ended = [h["data"] for h in hooks if h["event"] == "call.ended"]
            assert [(d["outcome"], d.get("reason")) for d in ended] == [("completed", "done")]

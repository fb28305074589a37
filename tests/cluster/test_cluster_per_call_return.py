"""Per-call outbound websockets through a balancer: a call that comes back from ``Queue()``
re-enters Stasis on a new socket, which can reach another worker, while the first one is
still open (Asterisk closes it 3 s after the call's StasisEnd: _outbound_kit.CLOSE_AFTER_END).
That worker goes on with the flow at the queue step (the checkpoint's trip); the worker that
sent the call to the queue, when its wait for the return is over, neither ends the call nor
removes its registry entry (it came back elsewhere): the call ends once, with the outcome of
the worker that drives it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _cluster_kit import played, running_redis, until, webhook_receiver
from _outbound_kit import connect_per_call, per_call_worker
from tcp_balancer import Balancer

from voxflow.cluster import ClusterState
from voxflow.sandbox import QueueAgent
from voxflow.sandbox.server import Sandbox
from voxflow.telephony import dialplan

FLOW = """\
flow queued "a queue, then a survey":
    answers "100"

state start:
    answer
    queue "support" timeout 2s:
        on answered -> survey
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"

state survey:
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "surveyed"
"""


async def test_a_call_back_from_the_queue_on_the_other_worker_ends_once_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialplan, "PER_CALL_QUEUE_SLACK", 0.5)  # a's wait: 2 + 0.5 s
    flow = tmp_path / "queued.flow"
    flow.write_text(FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        ClusterState(rs.url, worker_id="b") as sb_state,
        per_call_worker(flow, sa, hook_url) as a,
        per_call_worker(flow, sb_state, hook_url) as b,
    ):
        sb.add_queue("support", [QueueAgent(answer_after=0.5, talk=0.3)])
        ports = [s.app.links.server.port for s in (a, b) if s.app.links is not None]
        async with Balancer(ports) as balancer:
            connect_per_call(sb, balancer.port)
            call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
            await until(lambda: call.id in a.drivers, 15, "a takes the call")
            await until(lambda: call.id in b.drivers, 15, "back, on b")
            # ~0.8 s after its StasisEnd: a's socket is still open (closed 3 s after it)
            assert a.app.links is not None and a.app.links.links, "a's socket closed already"
            await until(lambda: "sound:vm-login" in played(sb, call.id), 15, "resumed on b")
            await until(lambda: call.id not in a.drivers, 15, "a's wait is over")
            await asyncio.sleep(0.3)  # a's end, if it ran one, reaches Redis and the receiver
            assert [e.worker for e in await sa.call_entries()] == ["b"]
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in b.results, 10, "the call's end on b")
            assert b.results[call.id].outcome == "completed"
            assert call.id not in a.results
            await until(lambda: any(h["event"] == "call.ended" for h in hooks), 10, "ended")
            await asyncio.sleep(0.3)
            ended = [h["data"] for h in hooks if h["event"] == "call.ended"]
            assert [(d["outcome"], d.get("reason")) for d in ended] == [("completed", "surveyed")]
            assert await sa.call_entries() == []


async def test_a_call_back_from_its_agent_after_it_ended_unknown_resumes_on_any_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a's wait for the queue's return is over while the agent still talks: the call ends
    # 'unknown' (no word from Asterisk). When the agent hangs up, Queue() sends the caller
    # back (CONTINUE, the `c` option): whichever worker the balancer picks resumes the flow at
    # the queue step (answered -> survey); the caller was hung up ("no call waiting")
    monkeypatch.setattr(dialplan, "PER_CALL_QUEUE_SLACK", 0.5)  # a's wait: 2 + 0.5 s
    flow = tmp_path / "queued.flow"
    flow.write_text(FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        ClusterState(rs.url, worker_id="a") as sa,
        ClusterState(rs.url, worker_id="b") as sb_state,
        per_call_worker(flow, sa, hook_url) as a,
        per_call_worker(flow, sb_state, hook_url) as b,
    ):
        sb.add_queue("support", [QueueAgent(answer_after=0.5, talk=4.0)])
        ports = [s.app.links.server.port for s in (a, b) if s.app.links is not None]
        async with Balancer(ports) as balancer:
            connect_per_call(sb, balancer.port)
            call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
            await until(lambda: call.id in a.drivers, 15, "a takes the call")
            await until(lambda: call.id in a.results, 15, "a's wait is over")
            assert a.results[call.id].outcome == "unknown"
            await until(lambda: "sound:vm-login" in played(sb, call.id), 15, "back, resumed")
            assert not call.ended, "the returning caller was hung up"
            await call.press("1")
            await call.wait_hangup(15)

            def surveyed() -> bool:
                ends = [s.results.get(call.id) for s in (a, b)]
                return any(e is not None and e.reason == "surveyed" for e in ends)

            await until(surveyed, 10, "the resumed call's end")
            await until(lambda: sum(h["event"] == "call.ended" for h in hooks) == 2, 10, "ended")
            ended = [h["data"] for h in hooks if h["event"] == "call.ended"]
            assert [d["outcome"] for d in ended] == ["unknown", "completed"]
            assert ended[1]["reason"] == "surveyed"
            keys = [h["_key"] for h in hooks if h["event"] == "call.ended"]
            assert len(set(keys)) == 2, keys  # a receiver dropping repeats gets both
            for _ in range(50):  # the end's registry removal rides the writer's next tick
                if not await sa.call_entries():
                    break
                await asyncio.sleep(0.1)
            assert await sa.call_entries() == []
            assert not await sa.redis.keys("*away*")  # restored when it came back

"""A worker killed (SIGKILL) while its call is out in the shipped dialplan (``queue``: in
``Queue()``; ``transfer``: a ``Dial()`` not answered yet): when the dialplan sends the call back
(``Stasis(voxflow,queue-return,...)``), the worker that took the application over (classic
mode; persistent outbound websocket: the one Asterisk re-connected to) goes on with the flow at
that step's outcome, with the call's variables, as the dead worker would have."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _cluster_kit import checkpointed_at, running_redis, until, worker, worker_process
from _outbound_kit import outbound_cluster

from voxflow.cluster import ClusterState, node_app
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.sandbox import QueueAgent
from voxflow.sandbox.caller import SimCall
from voxflow.sandbox.server import Sandbox


def _config(tmp: Path) -> Path:
    config = tmp / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 1.0\n")
    return config


def _out(sb: Sandbox, call_id: str, kind: str) -> bool:
    """The caller is out in the dialplan: queued, or its transfer rings."""
    return any(e["type"] == kind for e in sb.calls[call_id].experience())


FLOW = """\
flow queued "a queue":
    answers "100"

var picked: string = "none"

state start:
    answer
    set picked = "early"
    goto waiting

state waiting:
    queue "support" timeout 60s:
        on answered:
            if picked == "early":
                play "sound:vm-goodbye"
            hangup "answered"
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"
"""


TRANSFER_FLOW = """\
flow transferred "a transfer":
    answers "100"

var picked: string = "none"

state start:
    answer
    set picked = "early"
    goto sending

on error:
    if picked == "early":
        play "sound:vm-goodbye"
    hangup "not reached"

state sending:
    transfer "2001"
"""


async def _out_when_its_worker_dies(
    sb: Sandbox, flow: Path, redis_url: str, state: str, trip: str
) -> SimCall:
    """A call a worker process serves until it is checkpointed at ``state`` and out in the
    dialplan at ``trip`` (``queue`` / ``transfer``); the worker is then killed."""
    proc = await worker_process(sb, flow, redis_url, _config(flow.parent))
    try:
        await sb.wait_app("voxflow", 60)
        call = await sb.place_call(from_="+15550100", to="100")
        await checkpointed_at(redis_url, call.id, state, 30, picked="early")
        await until(lambda: _out(sb, call.id, trip), 30, f"the call out at its {trip}")
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    return call


async def _goes_on_at_b(
    sb: Sandbox, flow: Path, b: ClusterState, call: SimCall, trip: str, reason: str
) -> None:
    """Worker ``b`` takes the application over; when ``call`` comes back from its ``trip`` the
    flow ends with ``reason`` after the goodbye its variable chose, the trip made once."""
    await asyncio.wait_for(b.hold_app(node_app(sb.ari_url, "voxflow")), 10)
    async with worker(sb, flow, b) as server:
        await until(lambda: call.id in server.results, 30, "the call's end on B")
        assert server.results[call.id].outcome == "completed"
        assert server.results[call.id].reason == reason
    exp = sb.calls[call.id].experience()
    assert [e["type"] for e in exp].count(trip) == 1  # not queued / transferred again
    played = [str(e["uri"]) for e in exp if e["type"] == "playback"]
    assert played[-1:] == ["sound:vm-goodbye"]  # the variable came back with the call
    assert await b.call_entries() == []
    assert not sb.pbx.channels and not sb.pbx.bridges


COMPUTED_FLOW = FLOW.replace(
    'var picked: string = "none"\n', 'var picked: string = "none"\nvar level: number = 3\n'
).replace('queue "support" timeout 60s:', 'queue "support" timeout 60s priority level:')
"""A queue step whose ``priority`` is computed when it starts (a copy of the IR's step)."""


@pytest.mark.parametrize("text", [FLOW, COMPUTED_FLOW], ids=["literal", "computed"])
async def test_a_call_back_from_the_queue_goes_on_at_the_queue_step(
    tmp_path: Path, text: str
) -> None:
    flow = tmp_path / "queued.flow"
    flow.write_text(text)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        sb.add_queue("support", [QueueAgent(answer_after=3.0, talk=0.5)])
        call = await _out_when_its_worker_dies(sb, flow, rs.url, "waiting", "queue")
        await _goes_on_at_b(sb, flow, b, call, "queue", "answered")


async def test_a_transfer_not_answered_after_its_worker_died_fails_into_on_error(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "transferred.flow"
    flow.write_text(TRANSFER_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        sb.set_outbound_behaviour("2001", "noanswer")
        sb.pbx.contexts.ring_timeout = 3.0  # Dial(...,3): NOANSWER after 3 s
        call = await _out_when_its_worker_dies(sb, flow, rs.url, "sending", "transfer")
        await _goes_on_at_b(sb, flow, b, call, "transfer", "not reached")


async def test_a_persistent_socket_moved_while_its_call_was_queued(tmp_path: Path) -> None:
    async with outbound_cluster(tmp_path, "persistent", flow_text=FLOW) as rig:
        sb = rig.sb
        sb.add_queue("support", [QueueAgent(answer_after=3.0, talk=0.5)])
        call = await sb.place_call(from_="+15550100", to="100")
        await until(lambda: _out(sb, call.id, "queue"), 30, "the caller is queued")
        for _ in range(500):  # written as the queue step started
            cp = await rig.probe.checkpoint(call.id)
            if cp is not None and cp.trip is not None:
                break
            await asyncio.sleep(0.02)
        assert cp is not None and cp.trip is not None and cp.trip["op"] == "queue"
        [entry] = await rig.probe.call_entries()
        [holder] = [w for w in rig.ws if w.worker_id == entry.worker]
        await holder.kill()
        await call.wait_hangup(30)
        exp = sb.calls[call.id].experience()
        assert [e["type"] for e in exp].count("queue") == 1
        played = [str(e["uri"]) for e in exp if e["type"] == "playback"]
        assert played[-1:] == ["sound:vm-goodbye"]
        await rig.settled([call])
        ended = [h["data"] for h in rig.hooks if h["event"] == "call.ended"]
        assert {(d["outcome"], d.get("reason")) for d in ended} == {("completed", "answered")}


SUBFLOW_FLOW = """\
flow queued_inside "a queue inside a subflow":
    answers "100"

var picked: string = "none"
var reached: bool = false

subflow wait_in(line: string) -> (answered: bool):
    var note: string = "none"
    state enter:
        set note = "inside"
        goto waiting
    state waiting:
        queue "{{ line }}" timeout 60s:
            on answered:
                if note == "inside":
                    return answered = true
                return answered = false
            on timeout, failed:
                return answered = false

state start:
    answer
    set picked = "early"
    goto waiting

state waiting:
    call wait_in(line = "support") returns (answered as reached):
        on returned:
            if reached and picked == "early":
                play "sound:vm-goodbye"
                hangup "answered"
            hangup "not answered"
"""


async def test_a_call_back_from_a_queue_inside_a_subflow_goes_on_in_the_subflow(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "queued_inside.flow"
    flow.write_text(SUBFLOW_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        sb.add_queue("support", [QueueAgent(answer_after=3.0, talk=0.5)])
        call = await _out_when_its_worker_dies(sb, flow, rs.url, "waiting", "queue")
        cp = await b.checkpoint(call.id)  # the subflow's frame and its trip were written
        assert cp is not None and cp.trip is not None and cp.trip["op"] == "queue"
        assert [c["subflow"] for c in cp.calls] == ["wait_in"]
        assert cp.calls[0]["variables"]["note"] == "inside"
        await _goes_on_at_b(sb, flow, b, call, "queue", "answered")


async def test_a_call_back_from_the_queue_while_no_worker_holds_the_app_waits_for_one(
    tmp_path: Path,
) -> None:
    # the call comes back (Stasis(voxflow,queue-return,...)) before the standby took the name
    # over: Stasis() fails (STASISSTATUS=FAILED, next priority) and the shipped context tries
    # again every 0.5 s; it was hung up by the Hangup() after the first failure
    flow = tmp_path / "queued.flow"
    flow.write_text(FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        sb.add_queue("support", [QueueAgent(answer_after=0.5, talk=0.3)])
        call = await _out_when_its_worker_dies(sb, flow, rs.url, "waiting", "queue")
        ch = sb.pbx.channels.get(call.id)
        assert ch is not None
        await until(
            lambda: ch.hungup or ch.variables.get("STASISSTATUS") == "FAILED", 30,
            "the return fails while nobody holds the app",
        )  # fmt: skip
        assert not ch.hungup, "the caller was hung up at the first failed return"
        await _goes_on_at_b(sb, flow, b, call, "queue", "answered")


KEYED_FLOW = """\
flow keyed "a queue with an exit key":
    answers "100"

var picked: string = "none"
var q: map = {}

state start:
    answer
    set picked = "early"
    goto waiting

state waiting:
    queue "support" timeout 60s into q:
        1 -> message
        on answered:
            hangup "answered"
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"

state message:
    if picked == "early" and q.position == 1:
        play "sound:vm-goodbye"
    hangup "message"
"""


async def test_a_key_the_step_does_not_list_after_a_take_over_keeps_the_caller_s_place(
    tmp_path: Path,
) -> None:
    # the worker that takes the call over queues it again at its QUEUEPOSITION for the time
    # left, as the worker that queued it does (it ended the step 'failed' before)
    flow = tmp_path / "keyed.flow"
    flow.write_text(KEYED_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        proc = await worker_process(sb, flow, rs.url, _config(tmp_path))
        try:
            await sb.wait_app("voxflow", 60)
            first = await sb.place_call(from_="+15550100", to="100")
            await checkpointed_at(rs.url, first.id, "waiting", 30, picked="early")
            await until(lambda: _out(sb, first.id, "queue"), 30, "the first caller queued")
            second = await sb.place_call(from_="+15550101", to="100")
            await checkpointed_at(rs.url, second.id, "waiting", 30, picked="early")
            await until(lambda: _out(sb, second.id, "queue"), 30, "the second caller queued")
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        support = sb.pbx.contexts.queues["support"]
        assert support.waiting == [first.id, second.id]
        await asyncio.wait_for(b.hold_app(node_app(sb.ari_url, "voxflow")), 10)
        async with worker(sb, flow, b) as server:
            await first.press("5")  # no exit key of the step: out of Queue(), to B, back in
            queued = lambda: sum(e["type"] == "queue" for e in first.experience())  # noqa: E731
            await until(lambda: queued() == 2 or first.id in server.results, 30, "queued again")
            assert first.id not in server.results, server.results[first.id]
            assert support.waiting == [first.id, second.id]  # its place, not the back
            ch = sb.pbx.channels[first.id]
            fields = ch.app_data.split(",")
            assert fields[8] == "1"  # Queue()'s position argument
            assert 0 < int(fields[4]) < 60  # for the time left, not the step's whole timeout
            await first.press("1")
            await until(lambda: first.id in server.results, 30, "the first call's end on B")
            assert server.results[first.id].reason == "message"
            await second.press("1")
            await until(lambda: second.id in server.results, 30, "the second call's end on B")
            assert server.results[second.id].reason == "message"
        for call in (first, second):
            played = [str(e["uri"]) for e in call.experience() if e["type"] == "playback"]
            assert played[-1:] == ["sound:vm-goodbye"]  # first in line when it left
        assert await b.call_entries() == []
        assert not sb.pbx.channels and not sb.pbx.bridges


PRIO_FLOW = """\
flow queued "two queues":
    answers "100"

state start:
    answer
    queue "sales" timeout 4s priority 10:
        on answered, failed:
            hangup "sales"
        on timeout:
            goto support

state support:
    queue "support" timeout 2s:
        on answered, failed:
            hangup "answered"
        on timeout:
            hangup "timeout"
"""


async def test_a_queue_step_without_priority_after_a_take_over_sets_back_the_queue_prio(
    tmp_path: Path,
) -> None:
    # the QUEUE_PRIO the call had before voxflow set it is in the checkpoint: the worker that
    # took the call over sets it back for the next step without priority (it kept 10)
    flow = tmp_path / "queued.flow"
    flow.write_text(PRIO_FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        proc = await worker_process(sb, flow, rs.url, _config(tmp_path))
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550100", to="100")
            await until(lambda: _out(sb, call.id, "queue"), 30, "the call in sales")
            await _queue_prio_checkpointed(rs.url, call.id)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert sb.pbx.channels[call.id].variables.get("QUEUE_PRIO") == "10"
        support = sb.pbx.contexts.queues["support"]
        await asyncio.wait_for(b.hold_app(node_app(sb.ari_url, "voxflow")), 10)
        async with worker(sb, flow, b) as server:
            await until(lambda: call.id in support.prio, 30, "the caller in support")
            assert support.prio[call.id] == 0  # not 10
            await until(lambda: call.id in server.results, 30, "the call's end on B")
        assert server.results[call.id].reason == "timeout"


async def _queue_prio_checkpointed(url: str, call_id: str) -> None:
    """Until the call's checkpoint holds the QUEUE_PRIO it had before voxflow set it ("")."""
    r = aioredis.Redis.from_url(url)
    try:
        for _ in range(1500):
            raw = await r.get(f"voxflow:checkpoint:{call_id}")
            if raw is not None and Checkpoint.from_json(raw).queue_prio == "":
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"call {call_id}: no QUEUE_PRIO of before in its checkpoint")
    finally:
        await r.aclose()

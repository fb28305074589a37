"""The cluster under load (issue 20): two sandbox Asterisk nodes, three ``voxflow run --redis``
worker processes and a real redis-server (append-only file, as docs/deploy.md asks).

Topology (classic mode: one events socket per application name per node): worker A serves
node 1, worker B serves node 2, worker C stands by for node 1. Calls alternate between the
nodes (what Kamailio's dispatcher does). Over 200 calls:

* A is killed with SIGKILL while 40 calls of node 1 wait in the menu: C takes node 1 over and
  every one of them resumes at its menu and ends normally;
* a new flow version is published (``voxflow cluster publish``) while 20 calls are in the
  menu: new calls take it, those 20 finish on theirs;
* Redis is killed and restarted while 20 calls are in the menu (10 of them end while it is
  down, 10 new calls arrive meanwhile): no call is lost.

At the end every call ended completed with exactly one ``call.ended`` (and one
``call.started``) webhook across the workers, the registry is empty and neither node has a
channel or bridge left."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from _cluster_kit import by_key, start_redis, until, webhook_receiver, worker_process
from click.testing import CliRunner
from forked import Forked

from voxflow.cli.main import cli
from voxflow.cluster import ClusterState, node_app
from voxflow.sandbox.caller import SimCall
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow load "the cluster load test":
    answers "100"

var version: string = "none"

state start:
    answer
    set version = "v1"
    goto menu

state menu:
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    if version == "v1":
        play "sound:goodbye"
    hangup "done"
"""
V1, V2 = "sound:vm-login", "sound:vm-password"


def _played(sb: Sandbox, cid: str) -> list[str]:
    exp = sb.calls[cid].experience()
    return [str(e["uri"]) for e in exp if e["type"] == "playback" and e["state"] == "playing"]


class Load:
    """The two nodes, the registry (read only) and every call placed so far with its node."""

    def __init__(self, nodes: tuple[Sandbox, Sandbox], probe: ClusterState) -> None:
        self.nodes = nodes
        self.probe = probe
        self.calls: list[tuple[Sandbox, SimCall]] = []

    async def place(self, node: int) -> SimCall:
        sb = self.nodes[node]
        call = await sb.place_call(from_=f"+1555{len(self.calls):07d}", to="100")
        assert call.id.startswith(f"ast{node + 1}-")  # systemname: ids unique across nodes
        self.calls.append((sb, call))
        return call

    async def in_menu(self, node: int, prompt: str = V1) -> SimCall:
        """A call placed on ``node`` whose menu prompt started (it waits there until pressed)."""
        call = await self.place(node)
        await call.wait_for("playback", 60, uri=prompt, state="playing")
        return call

    async def quick(self, node: int, prompt: str = V1) -> SimCall:
        """A whole call: the menu's prompt, 1 pressed, the flow hangs up."""
        call = await self.in_menu(node, prompt)
        await call.press("1")
        try:
            await call.wait_hangup(60)
        except TimeoutError:
            raise AssertionError(f"{call.id} did not end: {call.experience()}") from None
        return call

    async def menus_checkpointed(self, calls: list[SimCall]) -> None:
        want = {c.id for c in calls}
        for _ in range(1000):
            got = {e.id for e in await self.probe.call_entries() if e.state == "menu"}
            if want <= got:
                return
            await asyncio.sleep(0.03)
        raise AssertionError(f"{len(want - got)} call(s) not checkpointed in their menu")


async def _finish(calls: list[SimCall]) -> None:
    for c in calls:
        await c.press("1")
    await asyncio.gather(*(c.wait_hangup(60) for c in calls))


async def _hooks_for(hooks: list[dict[str, Any]], event: str, ids: set[str]) -> None:
    await until(lambda: ids <= {h["call_id"] for h in hooks if h["event"] == event}, 30, event)


@pytest.mark.long
@pytest.mark.timeout(300)  # 230 calls through 3 processes: 50-90 s here, 230 s at load 25
async def test_two_nodes_three_workers_kill_publish_and_redis_restart(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    flow = tmp_path / "v1" / "load.flow"
    flow.write_text(FLOW)
    v2 = FLOW.replace(V1, V2).replace('set version = "v1"', 'set version = "v2"')
    (tmp_path / "v2" / "load.flow").write_text(v2)
    config = tmp_path / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 3.0\n")
    rs = await start_redis(tmp_path / "redis", aof=True)
    procs: list[Forked] = []
    try:
        async with (
            Sandbox(port=0, preload_sounds=False, system_name="ast1") as n1,
            Sandbox(port=0, preload_sounds=False, system_name="ast2") as n2,
            webhook_receiver() as (hook_url, hooks),
        ):
            probe = ClusterState(rs.url, worker_id="probe")  # reads only
            load = Load((n1, n2), probe)
            try:
                procs += await asyncio.gather(  # A, B and C: two of them on node 1
                    worker_process(n1, flow, rs.url, config, hook_url),
                    worker_process(n2, flow, rs.url, config, hook_url),
                    worker_process(n1, flow, rs.url, config, hook_url),
                )
                await n1.wait_app("voxflow", 60)
                await n2.wait_app("voxflow", 60)
                by_id = {f"{socket.gethostname()}-{p.pid}": p for p in procs}
                for _ in range(1000):  # all three registered
                    if set(by_id) <= {w.id for w in await probe.workers()}:
                        break
                    await asyncio.sleep(0.03)
                holder = await probe.redis.get(f"voxflow:app:{node_app(n1.ari_url, 'voxflow')}")
                a = by_id[holder.decode()]  # serves node 1; the other stands by for it
                c_id = next(i for i, p in by_id.items() if p not in (a, procs[1]))
                await _run_load(load, a, c_id, rs, tmp_path, hooks)
            finally:
                for p in procs:
                    if p.returncode is None:
                        p.send_signal(signal.SIGTERM)
                for p in procs:
                    try:
                        await asyncio.wait_for(p.wait(), 20)
                    except TimeoutError:  # calls still running after a failure: end it
                        p.kill()
                        await p.wait()
                await probe.redis.aclose()
            ids = {c.id for _, c in load.calls}
            assert len(ids) == len(load.calls) >= 200
            ended, started = by_key(hooks, "call.ended"), by_key(hooks, "call.started")
            assert set(ended) == ids and set(ended.values()) == {1}  # once each, by key
            assert set(started) == ids and set(started.values()) == {1}
            outcomes = {h["data"]["outcome"] for h in hooks if h["event"] == "call.ended"}
            assert outcomes == {"completed"}
            for sb in (n1, n2):
                assert not sb.pbx.channels and not sb.pbx.bridges
    finally:
        await rs.stop()


async def _run_load(
    load: Load,
    a: Forked,
    c_id: str,
    rs: Any,
    tmp: Path,
    hooks: list[dict[str, Any]],
) -> None:
    # 1. 100 whole calls over the two nodes
    await asyncio.gather(*(load.quick(i % 2) for i in range(100)))
    # 2. kill -9 of A while 40 calls of node 1 are mid-menu; node 2 keeps taking calls
    held = list(await asyncio.gather(*(load.in_menu(0) for _ in range(40))))
    await load.menus_checkpointed(held)
    await _hooks_for(hooks, "call.started", {c.id for c in held})
    # and out of the outbox: a kill between a delivery and its entry's drop (lingering up to
    # 0.2 s for a tick) has the webhook sent again by another worker (at least once)
    started = [f"{c.id}:call.started" for c in held]
    for _ in range(500):
        if not any(await load.probe.redis.hmget("voxflow:outbox", started)):
            break
        await asyncio.sleep(0.02)
    assert a.returncode is None, "A lost node 1 before the kill (stalled past failover_ttl?)"
    a.send_signal(signal.SIGKILL)
    await a.wait()
    await asyncio.gather(*(load.quick(1) for _ in range(20)))
    n1 = load.nodes[0]
    for call in held:
        await until(lambda call=call: _played(n1, call.id).count(V1) == 2, 60, "resumed")
    moved = {e.worker for e in await load.probe.call_entries() if e.state == "menu"}
    assert moved == {c_id}  # the 40 calls are C's now
    await _finish(held)
    for call in held:  # nothing before the menu repeated, the variable survived
        assert _played(n1, call.id) == [V1, V1, "sound:goodbye"]
    # 3. a new version published while 20 calls wait in the menu
    old = list(await asyncio.gather(*(load.in_menu(i % 2) for i in range(20))))
    await load.menus_checkpointed(old)
    publish = ["cluster", "publish", str(tmp / "v2"), "--redis", rs.url]
    done = await asyncio.to_thread(CliRunner().invoke, cli, publish)  # voxflow cluster publish
    assert done.exit_code == 0, done.output
    new = await asyncio.gather(*(load.quick(i % 2, V2) for i in range(20)))
    await _finish(old)
    for sb, call in load.calls:
        if call in old:
            assert _played(sb, call.id) == [V1, "sound:goodbye"]  # finished on their version
        elif call in new:
            assert _played(sb, call.id) == [V2]
    # 4. Redis restarted while 20 calls are mid-menu; 10 end while it is down, 10 arrive
    waiting = list(await asyncio.gather(*(load.in_menu(i % 2, V2) for i in range(20))))
    await load.menus_checkpointed(waiting)
    await rs.stop()
    await _finish(waiting[:10])
    await asyncio.gather(*(load.quick(i % 2, V2) for i in range(10)))
    restarted = await start_redis(tmp / "redis", port=rs.port, aof=True)
    rs.proc = restarted.proc
    await _finish(waiting[10:])
    await _hooks_for(hooks, "call.ended", {c.id for _, c in load.calls})
    for _ in range(1000):
        if await load.probe.call_entries() == []:
            break
        await asyncio.sleep(0.03)
    assert [e.id for e in await load.probe.call_entries()] == []

"""Mid-call failover in the outbound-websocket modes (issue 20), on the sandbox, a real
redis-server, HAProxy (docs/deploy/haproxy.cfg) and two ``voxflow run --ari-mode ...`` worker
processes. A worker killed with SIGKILL while calls wait in a menu past the first state:

* per_call: Asterisk re-connects each call's own websocket (``reconnect_attempts`` tries,
  ``reconnect_interval`` apart; docs.asterisk.org "ARI Outbound Websockets"), HAProxy sends it to
  the live worker, which finds the channel in ``voxflow:<channel>`` with no session and adopts
  it: the call resumes at its checkpointed menu;
* persistent: Asterisk re-connects the application's one websocket, HAProxy sends it to the
  other worker, which adopts every call of the application the same way.

Every call ends normally, once (one ``call.ended`` webhook), the registry is empty, and no
channel or bridge is left on the node.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _cluster_kit import played, until
from _outbound_kit import finish_calls, outbound_cluster

from voxflow.cluster import ClusterState
from voxflow.sandbox import SimCall
from voxflow.sandbox.server import Sandbox


async def _kill_and_finish(
    sb: Sandbox, probe: ClusterState, calls: list[SimCall], where: dict[str, str], victim: str
) -> float:
    """The caller side after the kill: each moved call hears its menu again; every caller
    presses 1 and the call ends. Returns the longest kill -> resumed prompt time (s)."""
    killed = time.monotonic()
    moved = [c for c in calls if where[c.id] == victim]
    assert moved, "the killed worker served no call"
    resumed: dict[str, float] = {}

    def scan() -> bool:
        for c in moved:
            if c.id not in resumed and played(sb, c.id).count("sound:vm-login") == 2:
                resumed[c.id] = time.monotonic() - killed
        return len(resumed) == len(moved)

    await until(scan, 30, "the killed worker's calls resume at their menu")
    entries = {e.id: e.worker for e in await probe.call_entries()}
    assert victim not in entries.values() and len(entries) == len(calls)
    await finish_calls(sb, calls, moved)
    return max(resumed.values())


@pytest.mark.long
async def test_per_call_sockets_of_a_killed_worker_resume_on_the_other_one(tmp_path: Path) -> None:
    async with outbound_cluster(tmp_path, "per_call") as rig:
        calls, where = await rig.place(4, "+1555030")
        victim = rig.busiest(where)
        await victim.kill()
        slowest = await _kill_and_finish(rig.sb, rig.probe, calls, where, victim.worker_id)
        assert slowest < 5.0
        await rig.settled(calls)


@pytest.mark.long
async def test_a_persistent_socket_moves_to_the_other_worker_with_every_call(
    tmp_path: Path,
) -> None:
    async with outbound_cluster(tmp_path, "persistent") as rig:
        calls, where = await rig.place(4, "+1555040")
        [holder] = set(where.values())  # one socket for the application: one worker
        victim = rig.busiest(where)
        await victim.kill()
        slowest = await _kill_and_finish(rig.sb, rig.probe, calls, where, holder)
        assert slowest < 5.0
        await rig.settled(calls)

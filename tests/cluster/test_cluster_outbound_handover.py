"""Drain by hand-over in the outbound-websocket modes (issue 20), on the sandbox, a real
redis-server, HAProxy (docs/deploy/haproxy.cfg) and two ``voxflow run --ari-mode ...
--drain handover`` worker processes. SIGTERM on the worker serving calls that wait in a menu:
its /readyz answers 503 and it refuses new connections at once; once HAProxy's checks took it
out, its calls' flows stop without ending, their checkpoints are written, it forgets them
without hanging up and closes their websockets; Asterisk re-connects them through HAProxy to
the other worker, which adopts each and resumes it at its menu. The draining worker exits 0;
no caller is hung up, no reconnection fails; every call ends once, normally.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import pytest
from _cluster_kit import played, until
from _outbound_kit import WorkerProc, finish_calls, outbound_cluster

from voxflow.cluster import ClusterState
from voxflow.sandbox import SimCall
from voxflow.sandbox.server import Sandbox


async def _refuses_at_once(victim: WorkerProc) -> None:
    """Right after SIGTERM, while the worker still runs: /readyz is 503 and a connection to its
    websocket port is refused (so HAProxy re-dispatches it; nothing can land there)."""
    async with asyncio.timeout(5):
        while True:
            async with aiohttp.ClientSession() as http, http.get(victim.metrics + "/readyz") as r:
                if r.status == 503:
                    break
            await asyncio.sleep(0.02)
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", victim.port)
            except ConnectionRefusedError:
                break
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            await asyncio.sleep(0.02)
    assert victim.proc.returncode is None  # still draining: the refusal is its own


async def _drain_and_finish(
    sb: Sandbox,
    probe: ClusterState,
    calls: list[SimCall],
    where: dict[str, str],
    victim: WorkerProc,
) -> None:
    """SIGTERM the victim; its calls resume at their menu on the other worker without a
    hang-up; then every caller presses 1 and the call ends normally."""
    moved = [c for c in calls if where[c.id] == victim.worker_id]
    assert moved, "the draining worker served no call"
    victim.proc.terminate()
    await _refuses_at_once(victim)
    await until(
        lambda: all(played(sb, c.id).count("sound:vm-login") == 2 for c in moved),
        30,
        "the drained worker's calls resume at their menu",
    )
    assert await asyncio.wait_for(victim.proc.wait(), 30) == 0
    await asyncio.wait_for(victim.drain, 10)
    out = "".join(victim.out)
    assert f"{len(moved)} call(s) in progress handed over" in out, out
    assert all(c.hangup_cause is None and not c.ended for c in calls)  # nobody was hung up
    assert sb.outbound.failures == 0  # every re-connection found a worker at once or retried
    entries = {e.id: e.worker for e in await probe.call_entries()}
    assert victim.worker_id not in entries.values() and len(entries) == len(calls)
    await finish_calls(sb, calls, moved)


@pytest.mark.long
async def test_sigterm_hands_per_call_sockets_over_to_the_other_worker(tmp_path: Path) -> None:
    async with outbound_cluster(tmp_path, "per_call", drain="handover") as rig:
        calls, where = await rig.place(6, "+1555050")
        await _drain_and_finish(rig.sb, rig.probe, calls, where, rig.busiest(where))
        await rig.settled(calls)


@pytest.mark.long
async def test_sigterm_hands_the_persistent_socket_over_with_every_call(tmp_path: Path) -> None:
    async with outbound_cluster(tmp_path, "persistent", drain="handover") as rig:
        calls, where = await rig.place(4, "+1555060")
        assert len(set(where.values())) == 1  # one socket for the application: one worker
        await _drain_and_finish(rig.sb, rig.probe, calls, where, rig.busiest(where))
        await rig.settled(calls)

"""One standby worker for several Asterisk nodes (issue 20): ``voxflow run --ari-url
NODE1,NODE2 --redis URL`` stands by for both nodes' application names and takes over the node
whose worker dies, holding only that node's name; the other node's worker keeps its own.
Two sandbox nodes, three worker processes (one killed with ``kill -9``), a real redis-server.
The standby logs its take-over's timeline (voxflow.cluster.takeover)."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import pytest
from _cluster_kit import MENU_FLOW, played, running_redis, until, worker_process

from voxflow.cluster import ClusterState, node_app
from voxflow.sandbox.server import Sandbox


async def _log_has(log: Path, text: str, count: int = 1, timeout: float = 60.0) -> None:
    """Until ``log`` holds ``text`` ``count`` times (fails after ``timeout`` s)."""
    await until(
        lambda: log.is_file() and log.read_text().count(text) >= count,
        timeout,
        f"{count} x {text!r} in {log.name}",
    )


async def _in_menu(state: ClusterState, call_id: str) -> None:
    """Until the call's checkpoint says it waits in the menu (at most 30 s)."""
    for _ in range(1500):
        cp = await state.checkpoint(call_id)
        if cp is not None and cp.state == "menu":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"call {call_id} never reached the menu")


@pytest.mark.long
async def test_one_standby_takes_over_whichever_node_s_worker_dies(tmp_path: Path) -> None:
    flow = tmp_path / "nodes.flow"
    flow.write_text(MENU_FLOW)
    config = tmp_path / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 10.0\n")  # the take-over must not wait for it
    standby_log = tmp_path / "standby.log"
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False, system_name="ast1") as sb1,  # call ids unique
        Sandbox(port=0, preload_sounds=False, system_name="ast2") as sb2,  # across the nodes
        ClusterState(rs.url, worker_id="probe") as probe,
    ):
        names = [node_app(sb.ari_url, "voxflow") for sb in (sb1, sb2)]
        procs = [
            await worker_process(sb1, flow, rs.url, config),
            await worker_process(sb2, flow, rs.url, config),
        ]
        try:
            await sb1.wait_app("voxflow", 60)
            await sb2.wait_app("voxflow", 60)
            ids = [f"{socket.gethostname()}-{p.pid}" for p in procs]
            nodes = f"{sb1.ari_url},{sb2.ari_url}"
            procs.append(
                await worker_process(sb1, flow, rs.url, config, ari_url=nodes, log=standby_log)
            )
            standby = f"{socket.gethostname()}-{procs[2].pid}"
            await _log_has(standby_log, "standby: app", count=2)  # it watches both nodes

            call2 = await sb2.place_call(from_="+15550201", to="100")
            await _in_menu(probe, call2.id)
            procs[1].send_signal(signal.SIGKILL)  # node 2's worker dies mid-menu
            await procs[1].wait()
            await until(
                lambda: played(sb2, call2.id).count("sound:vm-login") >= 2,
                30,
                "the menu again on node 2, from the standby",
            )
            held = [await probe.redis.get(f"voxflow:app:{n}") for n in names]
            assert held == [ids[0].encode(), standby.encode()]  # node 2's name only
            await call2.press("1")
            await call2.wait_hangup(30)
            assert played(sb2, call2.id)[-1] == "sound:goodbye"  # resumed with its variables

            call1 = await sb1.place_call(from_="+15550101", to="100")  # node 1: its own worker
            await _in_menu(probe, call1.id)
            [entry] = [e for e in await probe.call_entries() if e.id == call1.id]
            assert entry.worker == ids[0]
            await call1.press("1")
            await call1.wait_hangup(30)
            await until(lambda: procs[0].returncode is None, 1, "node 1's worker lives")

            await _log_has(standby_log, "take-over timeline")
            line = next(x for x in standby_log.read_text().splitlines() if "timeline" in x)
            for point in ("held", "connected", "listed", "swept", "adopted", "entered", "prompt"):
                assert f"{point} " in line, (point, line)
            for _ in range(500):  # the ends are written by each worker's next writer tick
                if not await probe.call_entries():
                    break
                await asyncio.sleep(0.02)
            assert await probe.call_entries() == []
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGKILL)
                await proc.wait()

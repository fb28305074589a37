"""Redis stalls (SIGSTOP) longer than the failover TTL while a worker process serves a call and
a standby waits: keys' TTLs run on in Redis, but nobody may take over a live worker. After
Redis resumes, the serving worker keeps its application name and its call (no replayed
prompt), and the call ends normally."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from _cluster_kit import MENU_FLOW, checkpointed_at, played, start_redis, worker_process

from voxflow.cluster import ClusterState, node_app
from voxflow.sandbox.server import Sandbox


async def test_a_stalled_redis_moves_no_call(tmp_path: Path) -> None:
    flow = tmp_path / "menu.flow"
    flow.write_text(MENU_FLOW)
    config = tmp_path / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 1.0\n")
    rs = await start_redis(tmp_path / "r")
    try:
        async with (
            Sandbox(port=0, preload_sounds=False) as sb,
            ClusterState(rs.url, worker_id="b", heartbeat=0.3, worker_ttl=1.0) as b,
        ):
            proc = await worker_process(sb, flow, rs.url, config)
            try:
                await sb.wait_app("voxflow", 60)
                call = await sb.place_call(from_="+15550100", to="100")
                await checkpointed_at(rs.url, call.id, "menu", 30)
                standby = asyncio.ensure_future(b.hold_app(node_app(sb.ari_url, "voxflow")))
                await asyncio.sleep(0.5)
                assert not standby.done()
                rs.proc.send_signal(signal.SIGSTOP)  # 3 x the failover TTL
                await asyncio.sleep(3.0)
                rs.proc.send_signal(signal.SIGCONT)
                await asyncio.sleep(3.0)  # the standby's polls and A's heartbeats race here
                assert not standby.done(), "the standby took a live worker's name over"
                standby.cancel()
                await call.press("1")
                await call.wait_hangup(15)
                assert played(sb, call.id).count("sound:vm-login") == 1  # never resumed
            finally:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
    finally:
        rs.proc.send_signal(signal.SIGCONT)
        await rs.stop()

"""``voxflow run --redis --metrics-port`` as a process: it registers, holds the app name, serves
/metrics, /healthz and /readyz; SIGTERM leaves the registry and releases the app name."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import forked
import redis.asyncio as aioredis
from _cluster_kit import line_matching, running_redis

from voxflow.cluster import ClusterState, node_app
from voxflow.sandbox.server import Sandbox

FLOW = 'flow tiny "t":\n    answers "100"\n\nstate start:\n    hangup "done"\n'


async def test_a_worker_process_registers_serves_health_and_leaves_on_sigterm(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "tiny.flow"
    flow.write_text(FLOW)
    # The released marker lives one failover TTL (3 s by default): on a loaded machine the
    # process's exit after it released the name can take longer than that. A long TTL keeps
    # the marker readable after the exit (it changes nothing else this test looks at).
    config = tmp_path / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 60\n")
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        aiohttp.ClientSession() as http,
    ):
        probe = ClusterState(rs.url, worker_id="probe")  # reads only: never registers itself
        env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password, "PYTHONUNBUFFERED": "1"}
        proc = await forked.spawn(
            "run", str(flow),
            "--ari-url", sb.ari_url, "--ari-user", sb.user, "--redis", rs.url, "--no-audio",
            "--metrics-port", "0", "--config", str(config), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            worker_id = (await line_matching(proc.stdout, r"cluster mode: worker (\S+)"))[1]
            base = (
                await line_matching(proc.stdout, r"metrics on (http://127\.0\.0\.1:\d+)/metrics")
            )[1]
            await sb.wait_app("voxflow", 60)
            async with http.get(base + "/readyz") as r:
                assert r.status == 200
            async with http.get(base + "/metrics") as r:
                assert "voxflow_active_calls 0.0" in await r.text()
            assert [w.id for w in await probe.workers()] == [worker_id]
            held = f"voxflow:app:{node_app(sb.ari_url, 'voxflow')}"  # 127.0.0.1:<port>/voxflow
            assert await probe.redis.get(held) == worker_id.encode()
            assert await probe.redis.get("voxflow:current:tiny") is not None  # released
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            assert await probe.workers() == []
            released = f"released:{worker_id}".encode()  # a standby takes it at once
            assert await probe.redis.get(held) == released
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await probe.redis.aclose()


async def test_a_worker_whose_redis_password_is_refused_says_so_and_exits(tmp_path: Path) -> None:
    """A wrong password (or none where Redis wants one) is a setting no retry fixes: the
    worker exits with a clear error (it used to print "cluster mode" and wait as a standby,
    logging a refused heartbeat every 10 s); the password is in no output."""
    flow = tmp_path / "tiny.flow"
    flow.write_text(FLOW)
    async with running_redis(tmp_path) as rs:
        admin = aioredis.Redis.from_url(rs.url)
        await admin.config_set("requirepass", "good-pw")
        await admin.aclose()
        env = {**os.environ, "VOXFLOW_ARI_PASSWORD": "x"}
        env.pop("VOXFLOW_REDIS_URL", None)
        for url in (rs.url.replace("redis://", "redis://:wrong-s3cret@"), rs.url):
            proc = await forked.spawn(
                "run", str(flow), "--ari-url", "http://127.0.0.1:1/ari", "--ari-user", "u",
                "--redis", url, "--no-audio", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            text = out.decode() + err.decode()
            assert proc.returncode == 2, text
            assert "--redis: Redis refused this worker's credentials" in text
            assert "cluster mode" not in text and "Traceback" not in text
            assert "wrong-s3cret" not in text

"""``voxflow cluster status``: the workers and calls Redis holds, as text or JSON; ``voxflow
cluster publish``: a new flow version reaches a running worker (new calls take it, a call in
progress finishes on its own); clear errors."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import forked
from _cluster_kit import running_redis, until, worker

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.sandbox.server import Sandbox

FLOW = 'flow tiny "t":\n    answers "100"\n\nstate start:\n    hangup "done"\n'


async def _voxflow(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VOXFLOW_REDIS_URL"}
    proc = await forked.spawn(
        *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cluster_lists_workers_and_calls(tmp_path: Path) -> None:
    flow = compile_flow(FLOW, "tiny.flow").flow
    assert flow is not None
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="w1") as w:
        await w.begin("chan-1", flow, "ab" * 32)
        await w.beat()
        code, out, err = await _voxflow("cluster", "status", "--redis", rs.url, "--json")
        assert code == 0, err
        data = json.loads(out)
        assert [x["id"] for x in data["workers"]] == ["w1"]
        assert [(c["id"], c["worker"], c["flow"]) for c in data["calls"]] == [
            ("chan-1", "w1", "tiny")
        ]
        code, out, _ = await _voxflow("cluster", "status", "--redis", rs.url)
        assert code == 0 and "w1  1 call(s)" in out and "chan-1  on w1  tiny@abababababab" in out


async def test_cluster_errors_are_clear(tmp_path: Path) -> None:
    code, _, err = await _voxflow("cluster", "status", "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "config file not found" in err
    (tmp_path / "voxflow.toml").write_text("")
    code, _, err = await _voxflow("cluster", "status", "--config", str(tmp_path / "voxflow.toml"))
    assert code == 2 and "no Redis URL" in err
    code, _, err = await _voxflow(
        "cluster", "status", "--redis", "redis://:pw-secret@127.0.0.1:1/0"
    )
    assert code == 3 and "cannot reach Redis at 127.0.0.1:1" in err
    assert "Traceback" not in err and "pw-secret" not in err


MENU = """\
flow released "a menu":
    answers "100"

state start:
    answer
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    play "sound:goodbye"
    hangup "done"
"""


def _played(sb: Sandbox, cid: str) -> list[str]:
    exp = sb.calls[cid].experience()
    return [str(e["uri"]) for e in exp if e["type"] == "playback" and e["state"] == "playing"]


async def test_a_published_version_reaches_running_workers(tmp_path: Path) -> None:
    v1 = tmp_path / "released.flow"
    v1.write_text(MENU)
    (tmp_path / "v2").mkdir()
    v2 = tmp_path / "v2" / "released.flow"
    v2.write_text(
        MENU.replace("sound:vm-login", "sound:vm-password").replace("goodbye", "vm-goodbye")
    )
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="w") as state,
        worker(sb, v1, state) as server,
    ):
        old = await sb.place_call(from_="+15550100", to="100")
        await until(lambda: "sound:vm-login" in _played(sb, old.id), 10, "v1 menu")
        code, out, err = await _voxflow("cluster", "publish", str(v2), "--redis", rs.url)
        assert code == 0 and "released released " in out, err
        new = await sb.place_call(from_="+15550101", to="100")
        await until(lambda: "sound:vm-password" in _played(sb, new.id), 10, "v2 menu")
        for call in (old, new):
            await call.press("1")
            await call.wait_hangup(10)
        await until(lambda: {old.id, new.id} <= set(server.results), 10, "both ended")
    assert _played(sb, old.id) == ["sound:vm-login", "sound:goodbye"]  # v1 to its end
    assert _played(sb, new.id) == ["sound:vm-password", "sound:vm-goodbye"]


async def test_publish_refuses_an_invalid_flow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.flow"
    bad.write_text("flow bad\n")
    async with running_redis(tmp_path) as rs:
        code, _, err = await _voxflow("cluster", "publish", str(bad), "--redis", rs.url)
    assert code == 1 and "invalid flow(s)" in err and "Traceback" not in err

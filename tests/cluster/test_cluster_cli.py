"""``voxflow cluster``: the workers and calls Redis holds, as text or JSON; clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from _cluster_kit import running_redis

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow

FLOW = 'flow tiny "t":\n    answers "100"\n\nstate start:\n    hangup "done"\n'


async def _voxflow(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VOXFLOW_REDIS_URL"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from voxflow.cli.main import main; main()", *args, env=env,
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
        code, out, err = await _voxflow("cluster", "--redis", rs.url, "--json")
        assert code == 0, err
        data = json.loads(out)
        assert [x["id"] for x in data["workers"]] == ["w1"]
        assert [(c["id"], c["worker"], c["flow"]) for c in data["calls"]] == [
            ("chan-1", "w1", "tiny")
        ]
        code, out, _ = await _voxflow("cluster", "--redis", rs.url)
        assert code == 0 and "w1  1 call(s)" in out and "chan-1  on w1  tiny@abababababab" in out


async def test_cluster_errors_are_clear(tmp_path: Path) -> None:
    code, _, err = await _voxflow("cluster", "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "config file not found" in err
    (tmp_path / "voxflow.toml").write_text("")
    code, _, err = await _voxflow("cluster", "--config", str(tmp_path / "voxflow.toml"))
    assert code == 2 and "no Redis URL" in err
    code, _, err = await _voxflow("cluster", "--redis", "redis://:pw-secret@127.0.0.1:1/0")
    assert code == 3 and "cannot reach Redis at 127.0.0.1:1" in err
    assert "Traceback" not in err and "pw-secret" not in err

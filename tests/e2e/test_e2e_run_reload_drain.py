"""Hot reload with calls in progress, and ``voxflow run`` draining calls on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import forked

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import serving

from voxflow.runtime.events import End
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.trace import read_trace
from voxflow.sandbox.server import Sandbox
from voxflow.testing.replay import replay_trace

HOT = """flow hot "Hot reload demo":
    answers "100"
    timeout 5s

state main:
    answer
    menu "Version {v}. Press 1.":
        1 -> done
        on noinput, nomatch -> retry
        on exhausted:
            hangup "no input"

state done:
    say "Done {v}."
    hangup
"""
BROKEN = HOT.replace("1 -> done", "1 -> nowhere")


def _write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


async def _until(pred: object, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():  # type: ignore[operator]
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.05)


async def test_hot_reload_pins_calls_in_progress(tmp_path: Path) -> None:
    flow = tmp_path / "hot.flow"
    _write(flow, HOT.format(v="one"), 0)
    reloads: list[dict[Path, str]] = []

    def on_reload(reg: FlowRegistry) -> None:
        reloads.append(dict(reg.problems))

    async with serving([flow], server={"watch_interval": 0.1, "on_reload": on_reload}) as env:
        a = await env.call("100", from_="+15550001")
        await env.wait_line(a, "Version one.")
        _write(flow, HOT.format(v="two"), 1)
        await _until(lambda: env.server.registry.versions()[0].version == 2)
        b = await env.call("100", from_="+15550002")
        await env.wait_line(b, "Version two.")
        await a.press("1")  # a finishes on the version it started with
        await b.press("1")
        assert await env.result(a) == End("completed", "normal")
        assert await env.result(b) == End("completed", "normal")
        assert env.said(a) == ["Version one. Press 1.", "Done one."]
        assert env.said(b) == ["Version two. Press 1.", "Done two."]

        _write(flow, BROKEN.format(v="three"), 2)  # does not validate: not loaded
        await _until(lambda: any(flow in r for r in reloads))
        problem = next(r[flow] for r in reloads if flow in r)
        assert "nowhere" in problem and "hot.flow:8:" in problem
        assert env.server.registry.versions()[0].version == 2
        c = await env.call("100", from_="+15550003")
        await env.wait_line(c, "Version two.")
        await c.hangup()
        assert await env.result(c) == End("caller_hangup", "caller")


async def _lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


async def test_voxflow_run_drains_on_sigterm(tmp_path: Path) -> None:
    flow = tmp_path / "hot.flow"
    _write(flow, HOT.format(v="one"), 0)
    exe = Path(sys.executable).with_name("voxflow")
    async with Sandbox(port=0) as sb:
        proc = await forked.spawn(
            "run", str(flow), "--ari-url", sb.ari_url, "--ari-user", sb.user,
            "--ari-password", sb.password, "--grace", "2", "--no-audio", "--watch",
            "--trace", str(tmp_path / "traces"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            prog=str(exe),
        )  # fmt: skip
        out: list[str] = []
        err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.ensure_future(_lines(proc.stdout, out)),
            asyncio.ensure_future(_lines(proc.stderr, err)),
        ]
        try:
            await sb.wait_app("voxflow", 60)
            # --watch: an edit that no longer validates is reported and not loaded
            _write(flow, BROKEN.format(v="two"), 1)
            await _until(lambda: "not reloaded" in "".join(err), 30)
            assert "nowhere" in "".join(err)

            finishing = await sb.place_call(from_="+15550001", to="100")
            lingering = await sb.place_call(from_="+15550002", to="100")
            await finishing.wait_answered(20)
            await lingering.wait_answered(20)
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            sent = asyncio.get_running_loop().time()
            await _until(lambda: "stopping" in "".join(out), 20)
            late = await sb.place_call(from_="+15550003", to="100")
            await finishing.press("1")  # still served during the grace period
            assert await finishing.wait_hangup(20) == 16
            assert next(e for e in finishing.experience() if e["type"] == "hangup")["by"] == "pbx"
            await late.wait_hangup(20)
            assert "answered" not in [e["type"] for e in late.experience()]
            await lingering.wait_hangup(20)  # hung up when the grace period ran out
            assert asyncio.get_running_loop().time() - sent >= 1.5
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await asyncio.gather(*readers, return_exceptions=True)
        text = "".join(out)
        assert "stopping: no new calls; 2 call(s) in progress" in text
        assert "stopped after 2 call(s)" in text
        assert not sb.pbx.channels
        # the lingering call was hung up by voxflow, not by its caller
        traces = [read_trace(p) for p in sorted((tmp_path / "traces").glob("*.jsonl"))]
        lingered = next(t for t in traces if t[0].get("caller") == "+15550002")
        types = [r["type"] for r in lingered]
        assert "caller.hangup" not in types and types.count("call.started") == 1
        assert {"type": "hangup", "reason": "grace period over", "by": "app"}.items() <= next(
            r for r in lingered if r["type"] == "hangup"
        ).items()
        assert lingered[-1]["type"] == "call.ended" and lingered[-1]["outcome"] == "error"
        # ... and its trace replays as the same call: the app hangs up at the same second
        lingering_trace = next(
            p for p in sorted((tmp_path / "traces").glob("*.jsonl"))
            if read_trace(p)[0].get("caller") == "+15550002"
        )  # fmt: skip
        _write(flow, HOT.format(v="one"), 3)  # the flow the call ran
        report = replay_trace(lingering_trace, str(flow))
        assert report.same, report.render()

"""`voxflow run --ari-mode per_call|persistent`: the CLI worker Asterisk 22 connects to (here the
sandbox, connecting out like Asterisk) serves a flow with REST over the socket; SIGTERM stops it."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import forked
import pytest

from voxflow.sandbox import Sandbox
from voxflow.sandbox.outbound import OutboundWebsocket

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


@pytest.mark.parametrize("mode", ["per_call", "persistent"])
async def test_voxflow_run_serves_asterisk_s_outbound_websockets(mode: str) -> None:
    port = free_port()
    exe = Path(sys.executable).with_name("voxflow")
    async with Sandbox(port=0) as sb:
        proc = await forked.spawn(
            "run", str(FLOWS / "main_ivr.flow"), "--ari-mode", mode,
            "--listen", f"127.0.0.1:{port}", "--ari-user", "asterisk", "--ari-password", "s3cret",
            "--no-audio", "--grace", "1",
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
            async with asyncio.timeout(60):
                while "serving" not in "".join(out):  # noqa: ASYNC110 - the reader appends
                    await asyncio.sleep(0.05)
            assert f"for Asterisk's {mode} websockets on ws://127.0.0.1:{port}" in "".join(out)
            sb.add_outbound_websocket(
                OutboundWebsocket(
                    "voxflow",
                    f"ws://127.0.0.1:{port}/voxflow",
                    "asterisk",
                    "s3cret",
                    connection_type="per_call_config" if mode == "per_call" else "persistent",
                    reconnect_interval=0.1,
                )
            )
            if mode == "persistent":
                await sb.wait_app("voxflow", 20)
            call = await sb.place_call(from_="+15550001", to="+18005550100", app="voxflow")
            await call.wait_answered(20)
            await asyncio.sleep(0.3)
            await call.press("2")  # support: the queue, through the dialplan
            cont = await call.wait_for("continue", 30)
            assert (cont["context"], cont["exten"]) == ("voxflow-queue", "queue")
            assert not sb.rest_api.http_log  # no ARI URL: everything went over the socket
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await asyncio.gather(*readers, return_exceptions=True)
        assert "stopped after 1 call(s)" in "".join(out), "".join(err)

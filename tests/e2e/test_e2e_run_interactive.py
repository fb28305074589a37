"""``voxflow run`` as a user runs it: interactively on a terminal (pty), and the typed-line
protocol of the interactive caller."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voxflow.cli.run_interactive import interactive_caller, parse_line
from voxflow.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("1", ("press", "1")),
        (" 12 34# ", ("press", "1234#")),
        ("*9d", ("press", "*9D")),
        ("sales please", ("say", "sales please")),
        ("say 1 2 3", ("say", "1 2 3")),
        ("hangup", ("hangup", "")),
        ("Quit", ("hangup", "")),
        ("   ", None),
    ],
)
def test_typed_lines(line: str, action: tuple[str, str] | None) -> None:
    assert parse_line(line) == action


async def test_interactive_caller_presses_says_and_hangs_up() -> None:
    async with Sandbox(port=0) as sb:
        from voxflow.telephony.app import VoxtraApp

        app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow")

        @app.default()
        async def handler(session: object) -> None:
            await session.answer()  # type: ignore[attr-defined]
            await session.wait_ended()  # type: ignore[attr-defined]

        async with app:
            await sb.wait_app("voxflow", 20)
            call = await sb.place_call(to="100")
            await call.wait_answered(20)
            rfd, wfd = os.pipe()
            os.set_blocking(rfd, False)
            echoed: list[str] = []
            task = asyncio.ensure_future(interactive_caller(call, fd=rfd, echo=echoed.append))
            try:
                os.write(wfd, b"12#\nhello there\n\nhangup\n")
                await asyncio.wait_for(task, 60)
            finally:
                os.close(wfd)
                os.close(rfd)
            kinds = [(e["type"], e.get("digit") or e.get("text")) for e in call.experience()]
            assert ("pressed", "1") in kinds and ("pressed", "#") in kinds
            assert ("said", "hello there") in kinds
            assert kinds[-1][0] == "hangup" and call.hangup_by == "caller"  # type: ignore[attr-defined]
            assert echoed == ["         (you say) hello there"]


def _read_until(fd: int, needle: str, buf: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in "".join(buf):
            return True
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        buf.append(chunk.decode("utf-8", "replace"))
    return needle in "".join(buf)


@pytest.mark.skipif(sys.platform != "linux", reason="pty test")
def test_voxflow_run_interactive_on_a_terminal() -> None:
    exe = Path(sys.executable).with_name("voxflow")
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    proc = subprocess.Popen(
        [str(exe), "run", str(ROOT / "flows" / "main_ivr.flow")],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=ROOT,
    )  # fmt: skip
    os.close(slave)
    out: list[str] = []
    try:
        assert _read_until(master, "You are the caller", out, 60), "".join(out)
        assert _read_until(master, "For sales, press 1", out, 60), "".join(out)
        os.write(master, b"2\n")
        # the shipped queues have no agents: the caller waits in the queue, then hangs up
        assert _read_until(master, "queue support", out, 60), "".join(out)
        os.write(master, b"hangup\n")
        assert _read_until(master, "outcome:", out, 60), "".join(out)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = "".join(out).replace("\r", "")
    assert "CALLER  [pressed 2]" in text
    assert "-> support" in text and "queue support" in text
    assert "outcome: caller_hangup" in text

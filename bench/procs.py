"""Helpers the benchmarks share for the processes they start (a sandbox, redis-server,
callers), and the menu flow the failover benchmarks interrupt."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from pathlib import Path

__all__ = ["MENU_FLOW", "free_port", "redis_server", "wait_up"]

MENU_FLOW = """\
flow failover "a menu past the first state":
    answers "100"

state start:
    answer
    goto menu

state menu:
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""
"""A call waits in ``menu`` (one prompt, then 60 s for a key): where a failover bench kills."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_up(port: int, timeout: float = 60.0) -> None:
    """Wait until something accepts connections on ``port`` (a sandbox starts slowly on a busy
    machine); ``SystemExit`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                msg = f"nothing accepted connections on port {port} within {timeout:g} s"
                raise SystemExit(msg) from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def redis_server(tmp: Path) -> tuple[asyncio.subprocess.Process, str]:
    """redis-server on a free 127.0.0.1 port, no persistence, its directory ``tmp``; returns
    once it accepts connections: the process and its URL (the caller kills it)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", "",
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_up(port)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc, f"redis://127.0.0.1:{port}/0"

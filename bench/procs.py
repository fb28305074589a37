"""Helpers the benchmarks share for the processes they start (a sandbox, callers)."""

from __future__ import annotations

import asyncio
import socket
import time

__all__ = ["free_port", "wait_up"]


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

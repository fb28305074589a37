"""The interactive caller of ``voxflow run`` on a terminal: the user is the caller.

Each line typed is one action: digits (``0-9 * # A-D``) are pressed as DTMF, ``hangup`` (or
Ctrl-D) hangs up, anything else is a sentence spoken into the call with espeak-ng. Standard input
is read through the event loop (``add_reader``), so the call's audio and the flow keep running
while the user types.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable
from typing import Any

from voxflow.errors import CallEndedError

__all__ = ["HELP", "interactive_caller", "parse_line"]

HELP = (
    "You are the caller. Type digits then Enter to press them (e.g. 1 or 1234#), type a sentence "
    "to say it, 'hangup' or Ctrl-D to hang up."
)
_DTMF = re.compile(r"^[0-9*#A-Da-d]+$")
_HANGUP = frozenset({"hangup", "hang up", "bye", "quit", "exit", "/hangup", "/quit"})


def parse_line(line: str) -> tuple[str, str] | None:
    """One typed line -> ``("press", digits)``, ``("say", text)``, ``("hangup", "")``, or None
    for a blank line. A ``say`` prefix forces speech (``say 1 2 3``)."""
    text = line.strip()
    if not text:
        return None
    if text.lower() in _HANGUP:
        return ("hangup", "")
    if text.lower().startswith("say "):
        return ("say", text[4:].strip())
    compact = text.replace(" ", "")
    if _DTMF.match(compact):
        return ("press", compact.upper())
    return ("say", text)


async def interactive_caller(
    call: Any, *, fd: int = 0, echo: Callable[[str], None] = print
) -> None:
    """Read actions from file descriptor ``fd`` and perform them on ``call`` (a SimCall) until
    the call ends or the user hangs up. Nothing is left registered on the loop afterwards."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    buffer = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(fd)
            lines.put_nowait(None)
            return
        buffer.extend(chunk)
        while b"\n" in buffer:
            raw, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            lines.put_nowait(raw.decode("utf-8", "replace"))

    loop.add_reader(fd, readable)
    ended = asyncio.ensure_future(call.wait_hangup(timeout=365 * 86400.0))
    try:
        while not call.ended:
            getter = asyncio.ensure_future(lines.get())
            await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            line = getter.result()
            action = ("hangup", "") if line is None else parse_line(line)
            if action is None:
                continue
            kind, arg = action
            try:
                if kind == "hangup":
                    await call.hangup()
                    break
                if kind == "press":
                    await call.press(arg)
                else:
                    echo(f"         (you say) {arg}")
                    await call.say(arg)
            except CallEndedError:
                break
    finally:
        loop.remove_reader(fd)
        ended.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await ended

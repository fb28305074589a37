"""The scripted caller of a ``voxflow run`` sandbox call: the script's actions, or a default one
that picks the first menu's first choice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from voxflow.ir import models as ir
from voxflow.runtime.caller_script import CallerAction, parse_script

if TYPE_CHECKING:
    from voxflow.sandbox.caller import SimCall

__all__ = ["EXIT_FLOW", "ScriptedCaller", "default_script", "play_script"]

EXIT_FLOW = 1
"""Exit code of ``voxflow run`` for invalid flows, a flow ending in ``error`` or a failed script."""


EXPECT_GRACE = 1.0
"""Seconds an ``expect`` gives the flow to react to the caller's last action: ``press 2`` then
``expect "..."`` checks what the flow said in answer, not only what it said before the key."""


def default_script(flow: ir.Flow) -> list[CallerAction]:
    """A demo caller: waits until the first menu is heard, picks its first choice, listens for
    a while, hangs up."""
    found = _first_choice_key(flow)
    lines = ["wait 2s"]
    if found:
        key, prompt = found
        words = prompt.split("{", 1)[0].replace('"', "").split()[:4]
        if words:
            lines = [f'wait for "{" ".join(words)}" 30s', "wait 1s"]
        lines.append(f"press {key}")
    lines += ["wait 12s", "hangup"]
    return parse_script("\n".join(lines), name="<default caller>")


def _first_choice_key(flow: ir.Flow) -> tuple[str, str] | None:
    todo = [flow.states[flow.initial]] if flow.initial in flow.states else []
    seen: set[str] = set()
    while todo:
        st = todo.pop(0)
        if st.name in seen:
            continue
        seen.add(st.name)
        for s in st.steps:
            if isinstance(s, ir.GatherStep) and s.choices and s.input != "speech":
                for c in s.choices:
                    if c.keys:
                        return c.keys[0], s.prompt.source if s.prompt else ""
            if isinstance(s, ir.GotoStep) and s.state in flow.states:
                todo.append(flow.states[s.state])
    return None


async def play_script(call: SimCall, script: list[CallerAction], heard: Callable[[], str]) -> int:
    """Act ``script`` as the caller of ``call`` (``heard()``: what the caller has heard so far);
    0, or ``EXIT_FLOW`` at the first ``wait for``/``expect`` whose text was not heard in time."""
    return await ScriptedCaller(script, heard).play(call)


class ScriptedCaller:
    """Plays a caller script on a sandbox call and remembers how far it got, so that the
    ``wait for``/``expect`` lines the call did not live to reach still count (``after_end``)."""

    def __init__(self, script: list[CallerAction], heard: Callable[[], str]) -> None:
        self.script = script
        self.heard = heard
        self.at = 0
        """Index of the action playing (or next to play)."""

    async def play(self, call: SimCall) -> int:
        """Act the script; 0, or ``EXIT_FLOW`` at the first ``wait for``/``expect`` whose text
        was not heard in time (also when the call ended before the line was reached)."""
        for i, action in enumerate(self.script):
            self.at = i
            if call.ended:
                return self.after_end()
            if action.kind in ("wait", "silence"):
                if action.kind == "silence":
                    await call.silence(action.seconds)
                else:
                    await asyncio.sleep(action.seconds)
            elif action.kind == "press":
                await call.press(action.text)
            elif action.kind == "say":
                await call.say(action.text)
            elif action.kind == "hangup":
                await call.hangup()
            elif action.kind in ("wait_for", "expect") and not await self._heard(call, action):
                return EXIT_FLOW  # the run ends at once: the caller hangs up
        self.at = len(self.script)
        return 0

    async def _heard(self, call: SimCall, action: CallerAction) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (action.seconds if action.kind == "wait_for" else EXPECT_GRACE)
        while action.text.lower() not in self.heard().lower():
            if loop.time() >= deadline or call.ended:
                click.echo(
                    f"caller script line {action.line}: did not hear {action.text!r}", err=True
                )
                return False
            await asyncio.sleep(0.1)
        return True

    def after_end(self) -> int:
        """The call ended before the script did: each ``wait for``/``expect`` line left must
        have been heard during the call (the other actions could not be played); exit code."""
        heard = self.heard().lower()
        for action in self.script[self.at :]:
            if action.kind in ("wait_for", "expect") and action.text.lower() not in heard:
                click.echo(
                    f"caller script line {action.line}: did not hear {action.text!r} "
                    "(the call ended first)",
                    err=True,
                )
                return EXIT_FLOW
        return 0

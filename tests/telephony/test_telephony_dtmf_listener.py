"""CallSession.add_dtmf_listener on the sandbox: digits synchronously, "" once at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from vf_sandbox_util import WAIT, make_app, sandbox_fixture, until

from voxflow.sandbox import Sandbox
from voxflow.telephony.session import CallSession


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


async def test_listener_sees_digits_then_end_and_can_be_removed(sb: Sandbox) -> None:
    app = make_app(sb)
    first: list[str] = []
    second: list[str] = []
    late: list[str] = []
    queued: list[str | None] = []
    sessions: list[CallSession] = []
    removed = asyncio.Event()

    def bad(digit: str) -> None:
        raise RuntimeError("listener bug")

    @app.default()
    async def handle(call: CallSession) -> None:
        sessions.append(call)
        await call.answer()
        call.add_dtmf_listener(first.append)
        call.add_dtmf_listener(bad)  # a raising listener breaks neither others nor the queue
        remove = call.add_dtmf_listener(second.append)
        await until(lambda: len(first) == 2)
        remove()
        removed.set()
        queued.append(await call.listen_dtmf(timeout=WAIT))
        queued.append(await call.listen_dtmf(timeout=WAIT))
        queued.append(await call.listen_dtmf(timeout=WAIT))
        await call.wait_ended(WAIT)
        call.add_dtmf_listener(late.append)  # after the end: told at once

    async with app:
        sim = await sb.place_call(to="100")
        await until(lambda: bool(sessions) and sessions[0].state.value == "in_progress")
        await sim.press("12")
        await removed.wait()
        await sim.press("3")
        await until(lambda: len(queued) == 3)
        await sim.hangup()
        await until(lambda: late == [""])
    assert first == ["1", "2", "3", ""]
    assert second == ["1", "2"]
    assert queued == ["1", "2", "3"]

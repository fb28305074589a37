"""A flow's outcome is kept when the app's handler grace cancels its driver while it finishes
(``voxflow run`` prints it: the interactive-terminal test lost it on a loaded machine)."""

from __future__ import annotations

import asyncio

import pytest
from _e2e_kit import FLOWS, serving

from voxflow.runtime.config import Settings
from voxflow.runtime.driver import CallDriver


async def test_the_outcome_stands_when_the_grace_cancels_a_finishing_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finish = CallDriver._finish
    finishing = asyncio.Event()

    async def slow_finish(self: CallDriver) -> None:  # type: ignore[type-arg]
        await finish(self)
        finishing.set()
        await asyncio.Event().wait()  # outlasts the app's handler grace, as on a loaded machine

    monkeypatch.setattr(CallDriver, "_finish", slow_finish)
    settings = Settings(grace_period=5, hangup_timeout=0.1)  # the app's grace: 0.1 s after it
    async with serving(
        [FLOWS / "main_ivr.flow"], app={"handler_grace": 0.1}, settings=settings
    ) as env:
        call = await env.call("100")
        await env.wait_line(call, "-> main_menu")
        await call.hangup()
        end = await env.result(call, 30)
        assert finishing.is_set()
        assert end.outcome == "caller_hangup"
        assert str(call.id) not in env.server.drivers

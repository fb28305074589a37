"""Only real DTMF keys (0-9 * # A-D, one each) reach a call: an impossible digit in a
ChannelDtmfReceived is an invalid event, counted and skipped, never a key a flow sees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from vf_sandbox_util import WAIT, make_app, sandbox_fixture

from voxflow.ari.models import ChannelDtmfReceived, EventParser
from voxflow.sandbox import Sandbox
from voxflow.telephony.session import CallSession

BAD = ["é", "55555", "", "1#", " "]


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


@pytest.mark.parametrize("lazy", [True, False])
@pytest.mark.parametrize("digit", [*BAD, "5", "*", "#", "D"])
def test_the_parser_takes_only_real_dtmf_keys(lazy: bool, digit: str) -> None:
    parser = EventParser(lazy=lazy)
    raw = {"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": "c1", "state": "Up"}}
    event = parser.parse(json.dumps(raw, ensure_ascii=False).encode())
    if digit in BAD:
        assert event is None and parser.invalid == 1
    else:
        assert isinstance(event, ChannelDtmfReceived) and event.digit == digit
        assert parser.invalid == 0


async def test_a_flow_never_sees_an_impossible_key(sb: Sandbox) -> None:
    app = make_app(sb)
    digits: list[str | None] = []
    done = asyncio.Event()
    answered = asyncio.Event()

    @app.default()
    async def handle(call: CallSession) -> None:
        await call.answer()
        answered.set()
        while not digits or digits[-1] not in ("#", None):
            digits.append(await call.listen_dtmf(timeout=WAIT))
        await call.hangup()
        done.set()

    async with app:
        sim = await sb.place_call(to="100")
        await asyncio.wait_for(answered.wait(), WAIT)
        channel = sb.pbx.channels[sim.id]
        for bad in BAD:  # as Asterisk's websocket would carry them: real JSON frames
            sb.pbx.emit_channel("ChannelDtmfReceived", channel, digit=bad, duration_ms=100)
        await sim.press("7#")
        await asyncio.wait_for(done.wait(), WAIT)
        rejected = app._events.rejected
    assert digits == ["7", "#"]
    assert rejected["invalid"] == len(BAD)

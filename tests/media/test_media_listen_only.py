"""Listen-only media on a call bridged to a human, through the embedded sandbox PBX.

The caller is in a mixing bridge with an agent's leg; ``listen()`` must not take the caller out
of it (a channel is in one bridge at a time), so ``CallMedia`` snoops the caller (``spy=in``: what
the caller says) and bridges that snoop with its externalMedia channel. The caller's espeak-ng
speech reaches pocketsphinx through the snoop while the agent keeps hearing the caller, and the
caller's hang-up removes the snoop, the externalMedia channel, the media bridge and the RTP port
while the agent's leg is still up."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from media_rig import PHRASES, Rig, audible, open_rig, recognise, speak, until

from voxflow.errors import MediaError
from voxflow.media.callmedia import CallMedia
from voxflow.media.pacer import shared_pacer
from voxflow.telephony.session import CallSession

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """Both phones use DTX (no RTP while silent): the snoop then sends nothing in silence and
    the end of the caller's utterance is found without packets."""
    async with open_rig(caller_dtx=True) as r:
        yield r


@pytest.mark.long
async def test_listen_only_on_a_bridged_call_transcribes_through_a_spy_in_snoop(rig: Rig) -> None:
    pbx = rig.sb.pbx
    agent_leg: asyncio.Future[CallSession] = asyncio.get_running_loop().create_future()
    seen: dict[str, Any] = {}

    async def agent(call: CallSession) -> Any:  # the human: stays up after the caller leaves
        agent_leg.set_result(call)
        await call.wait_ended(90)
        return "agent gone"

    async def caller(call: CallSession) -> Any:
        seen["bridge"] = await call.bridge_with(await agent_leg)
        listening = asyncio.ensure_future(call.listen(15, phrases=PHRASES, end_silence_ms=600))
        media = await call.call_voice()
        assert isinstance(media, CallMedia)
        # The snoop joins the media bridge once it is in Stasis (after its REST answer).
        await until(
            lambda: (
                media.socket is not None
                and media.snoop_id in pbx.channels
                and media.bridge_id in pbx.bridges
                and len(pbx.bridges[media.bridge_id or ""].members) == 2
            )
        )
        assert media.socket is not None
        seen["media"] = media
        seen["port"] = media.socket.local[1]
        seen["members"] = {b.id: {c.id for c in b.members} for b in pbx.bridges.values()}
        snoop = pbx.channels[media.snoop_id or ""]
        seen["snoop"] = (snoop.tech, snoop.snoop_of.id if snoop.snoop_of else None, snoop.snoop_spy)
        with pytest.raises(MediaError, match="listen-only"):
            await call.send_audio(b"\xff" * 160)
        return await listening

    sim_agent = await rig.call(agent, to="200")
    sim = await rig.call(caller, to="100")
    await until(lambda: "snoop" in seen)
    await speak(sim, "I would like to pay my bill")
    text = await rig.result()
    assert text is not None and "pay my bill" in text

    media: CallMedia = seen["media"]
    assert media.listen_only and media.snoop_id and media.channel_id and media.bridge_id
    snoop_id, em_id, media_bridge = media.snoop_id, media.channel_id, media.bridge_id
    # The caller stayed in the agent's bridge; our bridge holds only the snoop and externalMedia.
    assert seen["members"][seen["bridge"]] == {sim.id, sim_agent.id}
    assert seen["members"][media_bridge] == {snoop_id, em_id}
    assert seen["snoop"] == ("Snoop", sim.id, "in")
    assert pbx.channels[em_id].tech == "UnicastRTP"
    assert media.socket is not None and media.socket.stats.received > 50
    # The agent heard the caller through their own bridge all along.
    assert "pay my bill" in await recognise(audible(sim_agent.heard_audio()))

    await sim.hangup()
    await until(
        lambda: (
            snoop_id not in pbx.channels
            and em_id not in pbx.channels
            and media_bridge not in pbx.bridges
            and seen["port"] not in rig.ports.in_use
        )
    )
    assert media.socket is None or media.socket.closed
    assert shared_pacer().streams == 0
    assert seen["bridge"] not in pbx.bridges  # bridge_with's bridge goes when one party leaves
    assert sim_agent.id in pbx.channels  # torn down by the caller's hang-up, not the agent's

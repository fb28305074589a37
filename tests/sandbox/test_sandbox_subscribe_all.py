"""An observer app with ``subscribeAll=true`` sees every channel's life, as the capture's observer
did (captures/events-subscribeall-sample.json): ChannelCreated first, ChannelDestroyed last, one
of each per channel, also for a dialplan channel whose own app got no ChannelDestroyed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import aiohttp
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures"


def test_the_capture_has_one_created_and_one_destroyed_per_channel() -> None:
    events = json.loads((CAPTURE / "events-subscribeall-sample.json").read_text())
    kinds = Counter(
        (e["type"], e["channel"]["id"])
        for e in events
        if e["type"] in ("ChannelCreated", "ChannelDestroyed")
    )
    ids = {cid for _, cid in kinds}
    assert ids
    assert all(kinds[("ChannelCreated", c)] == kinds[("ChannelDestroyed", c)] == 1 for c in ids)
    assert events[0]["type"] == "ChannelCreated"


async def test_a_subscribe_all_observer_sees_created_and_destroyed(
    sandbox: Sandbox, ari: RawAri
) -> None:
    async with aiohttp.ClientSession() as s:
        obs = RawAri(sandbox, s)
        await obs.connect("observer", subscribeAll="true")
        await sandbox.wait_app("observer")
        call = await sandbox.place_call(to="100")
        await ari.next("StasisStart")
        assert (await ari.req("DELETE", f"/channels/{call.id}"))[0] == 204
        mine = [e["type"] for e in await ari.collect(quiet=0.2)]
        assert "ChannelDestroyed" not in mine  # a dialplan channel: StasisEnd is its end
        seen = [e["type"] for e in await obs.collect(quiet=0.2) if e["channel"]["id"] == call.id]
        await obs.close()
    assert seen[0] == "ChannelCreated" and seen[-1] == "ChannelDestroyed", seen
    assert seen.count("ChannelCreated") == seen.count("ChannelDestroyed") == 1

"""externalMedia and snoop channels enter Stasis after the REST answer, ``stasis_delay`` later, as
on Asterisk 22 (capture external-media-ordering.json); until then addChannel answers
``422 Channel not in Stasis application``. A manual virtual clock holds the delay open."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from conftest import RawAri, connected

from voxflow.errors import ConfigError
from voxflow.sandbox import Sandbox, VirtualClock

NOT_IN_STASIS = {"message": "Channel not in Stasis application"}


@pytest.fixture
async def held() -> AsyncIterator[tuple[Sandbox, VirtualClock]]:
    clock = VirtualClock(auto=False)
    async with Sandbox(port=0, clock=clock, stasis_delay=0.02, preload_sounds=False) as sb:
        yield sb, clock


async def _drain(ari: RawAri) -> None:
    while not ari.events.empty():
        ari.events.get_nowait()


async def test_external_media_enters_stasis_after_the_reply(
    held: tuple[Sandbox, VirtualClock],
) -> None:
    sb, clock = held
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{udp.getsockname()[1]}"
        async with connected(sb) as ari:
            status, _ = await ari.req("POST", "/bridges", type="mixing", bridgeId="b1")
            assert status == 200
            status, body = await ari.req(
                "POST",
                "/channels/externalMedia",
                app="voxflow",
                external_host=host,
                format="ulaw",
                channelId="em1",
            )
            assert status == 200 and body["state"] == "Down"
            assert body["dialplan"]["app_name"] == "AppDial2"
            assert set(body["channelvars"]) == {"UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT"}
            status, err = await ari.req("POST", "/bridges/b1/addChannel", channel="em1")
            assert (status, err) == (422, NOT_IN_STASIS)
            assert ari.events.empty()
            await clock.advance(0.03)
            events = [await ari.next() for _ in range(5)]
            assert [(e["type"], e.get("dialstatus", e.get("variable"))) for e in events] == [
                ("Dial", ""),
                ("ChannelStateChange", None),
                ("Dial", "ANSWER"),
                ("ChannelVarset", "STASISSTATUS"),
                ("StasisStart", None),
            ]
            start = events[-1]["channel"]
            assert start["state"] == "Up"
            assert (start["dialplan"]["app_name"], start["dialplan"]["app_data"]) == (
                "Stasis",
                "voxflow",
            )
            status, _ = await ari.req("POST", "/bridges/b1/addChannel", channel="em1")
            assert status == 204
            await ari.req("DELETE", "/channels/em1")
            await ari.req("DELETE", "/bridges/b1")


async def test_snoop_enters_stasis_after_the_reply(held: tuple[Sandbox, VirtualClock]) -> None:
    sb, clock = held
    async with connected(sb) as ari:
        call = await sb.place_call()
        await ari.next("StasisStart")
        await ari.req("POST", "/bridges", type="mixing", bridgeId="b2")
        status, body = await ari.req(
            "POST", f"/channels/{call.id}/snoop", spy="in", app="voxflow", snoopId="sn1"
        )
        assert status == 200 and body["state"] == "Up"
        assert body["name"].startswith(f"Snoop/{call.id}-")
        assert body["dialplan"]["app_name"] == ""
        status, err = await ari.req("POST", "/bridges/b2/addChannel", channel="sn1")
        assert (status, err) == (422, NOT_IN_STASIS)
        await clock.advance(0.03)
        start = await ari.next()
        assert (start["type"], start["channel"]["id"]) == ("StasisStart", "sn1")
        status, _ = await ari.req("POST", "/bridges/b2/addChannel", channel="sn1")
        assert status == 204
        await call.hangup()


async def test_a_channel_deleted_before_stasis_never_enters(
    held: tuple[Sandbox, VirtualClock],
) -> None:
    sb, clock = held
    async with connected(sb) as ari:
        call = await sb.place_call()
        await ari.next("StasisStart")
        await ari.req("POST", f"/channels/{call.id}/snoop", spy="in", app="voxflow", snoopId="sn2")
        status, _ = await ari.req("DELETE", "/channels/sn2")
        assert status == 204
        await _drain(ari)
        await clock.advance(0.05)
        assert all(e["type"] != "StasisStart" for e in await ari.collect(quiet=0.1))
        await call.hangup()


def test_stasis_delay_must_be_a_sane_range() -> None:
    with pytest.raises(ConfigError):
        Sandbox(stasis_delay=(0.03, 0.01))
    with pytest.raises(ConfigError):
        Sandbox(stasis_delay=-1.0)

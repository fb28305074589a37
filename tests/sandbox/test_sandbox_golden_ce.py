"""Golden fidelity for captured scenarios C (externalMedia, recordings, bridge play/record,
teardown) and E (explicit subscriptions, bridge MOH): the same REST steps as the capture,
and the same event types, order and field sets (ids and timestamps aside)."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import aiohttp
from conftest import RawAri
from test_sandbox_golden import _captured, _shape

from voxflow.sandbox import Sandbox


class _Sink(asyncio.DatagramProtocol):
    """The external side of the externalMedia channel: counts what it receives."""

    def __init__(self) -> None:
        self.count = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.count += 1


async def _upto(ari: RawAri, etype: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Events up to and including the next one of ``etype``."""
    got = []
    while True:
        ev = await ari.next(timeout=timeout)
        got.append(ev)
        if ev["type"] == etype:
            return got


async def _wav_seconds(ari: RawAri, name: str) -> float:
    async with ari.session.get(
        f"{ari.sb.ari_url}/recordings/stored/{name}/file", headers=ari.headers
    ) as r:
        assert r.status == 200 and r.content_type == "audio/wav"
        with wave.open(io.BytesIO(await r.read())) as w:
            return w.getnframes() / w.getframerate()


async def test_scenario_c_external_media_records_bridge_play_teardown(
    sandbox: Sandbox, ari: RawAri
) -> None:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        got: list[dict[str, Any]] = []
        status, em = await ari.req("POST", "/channels/externalMedia", app="voxflow",
                                   external_host=f"127.0.0.1:{port}", format="ulaw",
                                   channelId="vf-em-1")  # fmt: skip
        assert status == 200 and em["channelvars"]["UNICASTRTP_LOCAL_PORT"]
        got += await _upto(ari, "StasisStart")
        status, _ = await ari.req("POST", "/channels", endpoint="Local/200@voxflow-in",
                                  context="caller", extension="audio", priority="1",
                                  channelId="vf-src-1", otherChannelId="vf-src-2")  # fmt: skip
        assert status == 200
        got += await _upto(ari, "StasisStart")
        await ari.req("POST", "/channels/vf-src-2/answer")
        got.append(await ari.next())
        status, rec = await ari.req("POST", "/channels/vf-src-2/record", name="vf-audio-rec",
                                    format="wav", maxDurationSeconds="3",
                                    ifExists="overwrite")  # fmt: skip
        assert (status, rec["state"]) == (201, "recording")
        got += await _upto(ari, "RecordingFinished")
        assert 2.5 < await _wav_seconds(ari, "vf-audio-rec") <= 3.1  # the ;1 half's prompts
        await ari.req("POST", "/bridges", type="mixing", bridgeId="vf-em-bridge")
        await ari.req("POST", "/bridges/vf-em-bridge/addChannel", channel="vf-em-1,vf-src-2")
        got += [await ari.next() for _ in range(4)]
        status, body = await ari.req("GET", "/channels/vf-em-1/rtp_statistics")
        assert (status, body) == (404, {"message": "RTP info not found"})
        await ari.req("POST", "/bridges/vf-em-bridge/removeChannel", channel="vf-src-2")
        got += [await ari.next(), await ari.next()]
        status, pb = await ari.req("POST", "/bridges/vf-em-bridge/play", media="sound:hello-world")
        assert (status, pb["target_uri"]) == (201, "bridge:vf-em-bridge")
        got += await _upto(ari, "PlaybackFinished")
        status, rec = await ari.req("POST", "/bridges/vf-em-bridge/record",
                                    name="vf-inbound-rtp-rec", format="wav",
                                    maxDurationSeconds="3", ifExists="overwrite")  # fmt: skip
        assert (status, rec["state"]) == (201, "queued")
        got += await _upto(ari, "RecordingFinished")
        await ari.req("DELETE", "/channels/vf-em-1")
        await ari.req("DELETE", "/channels/vf-src-2")
        await ari.req("DELETE", "/bridges/vf-em-bridge")
        got += await ari.collect()
        # RTP reaches the externalMedia socket only while something plays into its bridge (the
        # Local's prompts, the bridge playback); nothing in silence (capture rtp-silence.json).
        assert sink.count > 40
    finally:
        transport.close()
    expected = [e for e in _captured("C-") if e["type"] != "ChannelUserevent"]
    assert [_shape(e) for e in got] == [_shape(e) for e in expected]
    peers = [e["value"] for e in got if e.get("variable") == "BRIDGEPEER"]
    assert peers[0].startswith("Local/200@voxflow-in-") and peers[0].endswith(";2")
    assert peers[1] == em["name"]
    assert peers[3].startswith("Announcer/ARI-") and peers[4].startswith("Recorder/ARI-")


async def test_scenario_e_explicit_subscriptions_and_bridge_moh(
    sandbox: Sandbox, ari: RawAri
) -> None:
    got: list[dict[str, Any]] = []
    await ari.req("POST", "/channels", endpoint="Local/300@voxflow-in", context="caller",
                  extension="wait", priority="1", channelId="vf-e-1",
                  otherChannelId="vf-e-2")  # fmt: skip
    got.append(await ari.next("StasisStart"))
    await ari.req("POST", "/channels/vf-e-2/answer")
    got.append(await ari.next())
    status, br = await ari.req("POST", "/bridges/vf-bridge-2", type="mixing,dtmf_events",
                               name="explicit")  # fmt: skip
    assert (status, br["bridge_type"], br["name"]) == (200, "mixing", "explicit")
    status, app = await ari.req("POST", "/applications/voxflow/subscription",
                                eventSource="bridge:vf-bridge-2,channel:vf-e-2")  # fmt: skip
    assert status == 200
    assert (app["channel_ids"], app["bridge_ids"]) == (["vf-e-2"], ["vf-bridge-2"])
    await ari.req("POST", "/bridges/vf-bridge-2/addChannel", channel="vf-e-2", role="participant")
    await ari.req("POST", "/bridges/vf-bridge-2/moh", mohClass="default")
    await ari.req("DELETE", "/bridges/vf-bridge-2/moh")
    await ari.req("DELETE", "/bridges/vf-bridge-2")
    await ari.req("DELETE", "/channels/vf-e-2")
    got += await ari.collect()
    status, app = await ari.req("GET", "/applications/voxflow")
    assert (app["channel_ids"], app["bridge_ids"]) == ([], [])
    expected = [e for e in _captured("E-") if e["type"] != "ChannelUserevent"]
    assert [_shape(e) for e in got] == [_shape(e) for e in expected]
    peers = [e["value"] for e in got if e.get("variable") == "BRIDGEPEER"]
    assert peers[0].startswith("Announcer/ARI_MOH-") and peers[1] == ""
    hangups = [(e["cause"], e["soft"]) for e in got if e["type"] == "ChannelHangupRequest"]
    assert hangups == [(32, True), (16, True)]


async def test_events_handshake_without_app_is_400(sandbox: Sandbox) -> None:
    """Asterisk answers 400 (HTML body naming the missing param); see docs/sandbox.md for
    the second 400 Asterisk also writes on the same connection, which the sandbox does not."""
    url = sandbox.events_url("x").replace("app=x&", "")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async with s.get(
            url,
            headers={"Upgrade": "websocket", "Connection": "Upgrade",
                     "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
        ) as r:  # fmt: skip
            assert r.status == 400
            assert "HTTP request is missing param: [app]" in await r.text()

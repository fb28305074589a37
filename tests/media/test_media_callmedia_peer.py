"""CallMedia against a small ARI+RTP peer written here: aiohttp routes answering externalMedia,
bridges and snoop like the Asterisk 22 captures, and a UDP socket exchanging real RTP (paced ulaw,
optional loss/reorder). Exercises listen, say, barge-in (speech and DTMF), fan-out, teardown."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from voxflow.ari.rest import AriRestClient
from voxflow.errors import MediaError
from voxflow.media import codecs
from voxflow.media.callmedia import CallMedia
from voxflow.media.chunk import AudioChunk
from voxflow.media.rtp import RtpPacket, parse_rtp
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.telephony.voice import BargeIn, VoiceContext

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

PHRASES = ["check my balance", "talk to an agent", "pay my bill", "operator"]


class Peer:
    """Asterisk's side: ARI REST for externalMedia/bridges/snoop plus one RTP socket."""

    def __init__(self, loss: float = 0.0, reorder: float = 0.0, seed: int = 3) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.setblocking(False)
        self.external_host: tuple[str, int] | None = None
        self.received: list[tuple[float, RtpPacket]] = []
        self.loss, self.reorder = loss, reorder
        self.rng = random.Random(seed)
        self._tasks: list[asyncio.Task[Any]] = []
        app = web.Application()
        app.router.add_route("*", "/ari/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)

    async def __aenter__(self) -> Peer:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/ari"
        self._tasks.append(asyncio.ensure_future(self._recv()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.rtp.close()
        await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        params = dict(request.query)
        self.requests.append((request.method, path, params))
        if path == "/channels/externalMedia":
            if "external_host" not in params:
                msg = "external_host is required for all but websocket server connections"
                return web.json_response({"message": msg}, status=400)
            host, port = params["external_host"].rsplit(":", 1)
            self.external_host = (host, int(port))
            return web.json_response(
                {
                    "id": params["channelId"],
                    "name": f"UnicastRTP/{params['external_host']}-0x7f194c018850",
                    "state": "Down",
                    "channelvars": {
                        "UNICASTRTP_LOCAL_PORT": str(self.rtp.getsockname()[1]),
                        "UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1",
                    },
                }
            )
        if path.endswith("/snoop"):
            return web.json_response({"id": params["snoopId"], "name": "Snoop/x", "state": "Up"})
        if path == "/bridges" and request.method == "POST":
            return web.json_response({"id": params["bridgeId"], "bridge_type": "mixing"})
        if request.method == "DELETE" or path.endswith("/addChannel"):
            return web.Response(status=204)
        return web.json_response({"message": "Not found"}, status=404)

    async def _recv(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.rtp, 2048)
            self.received.append((loop.time(), parse_rtp(data)))

    async def send_speech(self, pcm8k: bytes, *, ssrc: int = 1115415051) -> None:
        """Send 8 kHz pcm16 as paced 20 ms ulaw RTP, with the configured impairments."""
        assert self.external_host is not None
        ulaw = codecs.ulaw_encode(pcm8k)
        ulaw += b"\xff" * (-len(ulaw) % 160)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        held: list[bytes] = []
        for i in range(len(ulaw) // 160):
            pkt = RtpPacket(
                0, (14867 + i) & 0xFFFF, 160 * (i + 1), ssrc, ulaw[i * 160 : i * 160 + 160]
            )
            data = pkt.serialize()
            if self.rng.random() < self.loss:
                continue
            if self.rng.random() < self.reorder:
                held.append(data)
                continue
            self.rtp.sendto(data, self.external_host)
            for h in held:
                self.rtp.sendto(h, self.external_host)
            held.clear()
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - loop.time()))

    async def send_silence(self, seconds: float) -> None:
        await self.send_speech(bytes(int(16000 * seconds)), ssrc=999)


async def _speech(text: str) -> bytes:
    tts = EspeakTTS(sample_rate=8000)
    return b"".join([c async for c in tts.synthesize(text)])


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    async with Peer() as p:
        yield p


def _ctx(rest: AriRestClient, bridged: str | None = None, **opts: Any) -> VoiceContext:
    return VoiceContext(
        rest=rest,
        channel_id="caller-1",
        app_name="voxflow",
        tts=EspeakTTS(),
        stt=PocketSphinxSTT(),
        vad=None,
        current_bridge_id=lambda: bridged,
        options=opts,
    )


async def test_setup_sends_from_external_host_and_tears_down(peer: Peer) -> None:
    ports = PortRange(0, 0)
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest), ports=ports)
        await media.send_audio(b"\x55" * 480)  # 3 frames of ulaw
        assert media.socket is not None
        local = media.socket.local
        for _ in range(200):
            if len(peer.received) >= 3:
                break
            await asyncio.sleep(0.01)
        await media.aclose()
        await media.aclose()
    paths = [(m, p) for m, p, _ in peer.requests]
    assert paths[0] == ("POST", "/channels/externalMedia")
    params = peer.requests[0][2]
    assert params["external_host"] == f"127.0.0.1:{local[1]}"
    assert params["format"] == "ulaw" and params["app"] == "voxflow"
    em = params["channelId"]
    add = next(p for m, path, p in peer.requests if path.endswith("/addChannel"))
    assert set(add["channel"].split(",")) == {em, "caller-1"}
    assert ("DELETE", f"/channels/{em}") in paths
    assert any(m == "DELETE" and p.startswith("/bridges/") for m, p in paths)
    # Strict RTP: every packet came from the socket named as external_host.
    assert len(peer.received) == 3
    assert {p.ssrc for _, p in peer.received} == {peer.received[0][1].ssrc}
    assert ports.in_use == frozenset()


async def test_listen_only_when_bridged_uses_spy_in_snoop(peer: Peer) -> None:
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest, bridged="human-bridge"))
        await media.start()
        with pytest.raises(MediaError, match="listen-only"):
            await media.send_audio(b"\xff" * 160)
        await media.aclose()
    snoop = next((p, q) for m, p, q in peer.requests if p.endswith("/snoop"))
    assert snoop[0] == "/channels/caller-1/snoop" and snoop[1]["spy"] == "in"
    add = next(q for m, p, q in peer.requests if p.endswith("/addChannel"))
    assert snoop[1]["snoopId"] in add["channel"] and "caller-1" not in add["channel"]
    assert ("DELETE", f"/channels/{snoop[1]['snoopId']}") in [(m, p) for m, p, _ in peer.requests]


@pytest.mark.parametrize(("loss", "reorder"), [(0.0, 0.0), (0.05, 0.05)])
async def test_listen_returns_what_the_caller_said(loss: float, reorder: float) -> None:
    async with Peer(loss=loss, reorder=reorder) as peer, AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        await media.start()
        speech = await _speech("I would like to pay my bill")
        listening = asyncio.ensure_future(media.listen(10, phrases=PHRASES, end_silence_ms=600))
        await asyncio.sleep(0.1)
        await peer.send_silence(0.3)
        await peer.send_speech(speech)
        await peer.send_silence(1.0)
        text = await asyncio.wait_for(listening, 20)
        if loss:
            assert media.jitter.stats.lost > 0
        await media.aclose()
    assert text is not None and "pay my bill" in text


async def test_listen_times_out_with_none(peer: Peer) -> None:
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        await media.start()
        sending = asyncio.ensure_future(peer.send_silence(0.6))
        assert await media.listen(0.4) is None
        await sending
        await media.aclose()


async def test_audio_stream_fan_out(peer: Peer) -> None:
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        await media.start()

        async def take(n: int) -> list[AudioChunk]:
            out = []
            async for c in media.audio_stream():
                out.append(c)
                if len(out) == n:
                    break
            return out

        a = asyncio.ensure_future(take(10))
        b = asyncio.ensure_future(take(10))
        await asyncio.sleep(0.05)
        await peer.send_silence(0.3)
        ra, rb = await asyncio.wait_for(asyncio.gather(a, b), 10)
        await media.aclose()
    assert [c.sequence for c in ra] == [c.sequence for c in rb]
    assert all(c.codec == "ulaw" and c.sample_rate == 8000 and len(c.payload) == 160 for c in ra)


async def test_say_reaches_caller_and_is_recognisable(peer: Peer) -> None:
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        result = await asyncio.wait_for(media.say("talk to an agent", barge_in=BargeIn("none")), 20)
        await media.aclose()
    assert not result.interrupted and result.heard_ms > 500
    pkts = [p for _, p in peer.received]
    assert pkts[0].marker and not any(p.marker for p in pkts[1:])
    times = [t for t, _ in peer.received]
    gaps = np.diff(times)
    assert 0.015 < float(np.median(gaps)) < 0.025  # paced, not burst
    pcm8 = codecs.ulaw_decode(b"".join(p.payload for p in pkts))
    stt = PocketSphinxSTT()
    stream = await stt.open_stream(phrases=PHRASES)
    await stream.feed(codecs.resample(pcm8, 8000, 16000))
    assert "talk to an agent" in (await stream.finish()).text


async def test_barge_in_by_speech_and_by_dtmf(peer: Peer) -> None:
    long_text = "This is a long announcement. " * 8
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        await media.start()
        prompt = asyncio.ensure_future(media.say(long_text, barge_in=BargeIn("any", 200)))
        await asyncio.sleep(0.6)
        speech = await _speech("operator")
        loop = asyncio.get_running_loop()
        onset = loop.time()
        await peer.send_speech(speech)
        result = await asyncio.wait_for(prompt, 10)
        assert result.interrupted and result.by == "speech"
        await asyncio.sleep(0.1)
        last_rx = peer.received[-1][0]
        # Speech started at `onset` (espeak has ~50 ms of lead-in), min_speech 200 ms, so audio
        # must stop well before the end of the 1+ s utterance.
        assert last_rx - onset < 0.6
        assert result.heard_ms < 3000 and media.outbound.idle

        peer.received.clear()
        prompt = asyncio.ensure_future(media.say(long_text, barge_in=BargeIn("dtmf")))
        await asyncio.sleep(0.5)
        media.on_dtmf("5")
        t_dtmf = loop.time()
        result = await asyncio.wait_for(prompt, 10)
        await asyncio.sleep(0.1)
        assert result.interrupted and result.by == "dtmf" and result.digit == "5"
        assert peer.received[-1][0] - t_dtmf < 0.1
        await media.aclose()


async def test_tts_missing_is_runtime_error(peer: Peer) -> None:
    async with AriRestClient(peer.url, "u", "p") as rest:
        ctx = _ctx(rest)
        ctx.tts = None
        ctx.stt = None
        media = CallMedia(ctx)
        with pytest.raises(RuntimeError, match="AI pipeline not configured"):
            await media.say("hi")
        with pytest.raises(RuntimeError, match="AI pipeline not configured"):
            await media.listen(1)
        await media.aclose()

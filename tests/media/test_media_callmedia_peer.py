"""CallMedia against a small ARI+RTP peer written here: aiohttp routes answering externalMedia,
bridges and snoop like the Asterisk 22 captures, and a UDP socket receiving our RTP.

Only what the sandbox tests (``test_media_sandbox_calls.py``, ``test_media_listen_only.py``)
cannot see stays here: the exact externalMedia/bridge/snoop requests and wire-level packet timing
and marker bits of what we send."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from shared_stt import shared_stt

from voxflow.ari.rest import AriRestClient
from voxflow.errors import AriUnprocessable, MediaError
from voxflow.media.callmedia import CallMedia
from voxflow.media.codecs import ulaw_encode
from voxflow.media.rtp import RtpPacket, parse_rtp
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import WebRtcVad
from voxflow.voice.call import BargeIn, VoiceContext
from voxflow.voice.providers import VoiceActivityDetector

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

PHRASES = ["check my balance", "talk to an agent", "pay my bill", "operator"]

SO_TIMESTAMPNS = 35  # Linux's (the socket module does not name it): arrival times, ns


class Peer:
    """Asterisk's side: ARI REST for externalMedia/bridges/snoop plus one RTP socket."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.setblocking(False)
        self.external_host: tuple[str, int] | None = None
        self.received: list[tuple[float, RtpPacket]] = []
        self.refuse_add = 0  # addChannel answers 422 "not in Stasis" this many times first
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
        if path.endswith("/addChannel") and self.refuse_add > 0:
            self.refuse_add -= 1
            return web.json_response({"message": "Channel not in Stasis application"}, status=422)
        if request.method == "DELETE" or path.endswith("/addChannel"):
            return web.Response(status=204)
        return web.json_response({"message": "Not found"}, status=404)

    async def _recv(self) -> None:
        """Read the RTP socket as it becomes readable (:meth:`drain`)."""
        self.rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self.rtp.fileno(), readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                self.drain()
        finally:
            loop.remove_reader(self.rtp.fileno())

    def drain(self) -> None:
        """Take every datagram waiting, stamped with the kernel's arrival time
        (SO_TIMESTAMPNS): the wire's pacing, not when a loaded loop got round to reading."""
        while True:
            try:
                data, anc, _, _ = self.rtp.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return
            t = time.time()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, ns = struct.unpack("qq", raw[:16])
                    t = sec + ns / 1e9
            self.received.append((t, parse_rtp(data)))


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
        stt=shared_stt(),
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
        for _ in range(200):  # (the first packet may hold more than 20 ms: sent at once)
            if sum(len(p.payload) for _, p in peer.received) >= 480:
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
    assert sum(len(p.payload) for _, p in peer.received) == 480
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


async def test_say_is_paced_on_the_wire_with_one_marker(peer: Peer) -> None:
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        result = await asyncio.wait_for(media.say("talk to an agent", barge_in=BargeIn("none")), 20)
        await media.aclose()
    peer.drain()  # every packet sent is on the socket (loopback): none left unread
    assert not result.interrupted and result.heard_ms > 500
    pkts = [p for _, p in peer.received]
    # One talkspurt: the marker on its first packet only. A loaded machine may skip ticks (or
    # synthesis may fall behind); each gap then jumps the timestamp and carries the marker, so
    # the marker must be exactly where the timestamp is not one packet's audio on (a talkspurt
    # started at once: its first packet holds the audio up to a tick, 20-40 ms).
    assert pkts[0].marker and 160 <= len(pkts[0].payload) < 320
    for before, after in itertools.pairwise(pkts):
        assert after.sequence == (before.sequence + 1) & 0xFFFF
        jumped = (after.timestamp - before.timestamp) & 0xFFFFFFFF != len(before.payload)
        assert after.marker == jumped
    assert sum(p.marker for p in pkts) <= 1 + len(pkts) // 20  # paced, not one spurt per frame
    times = [t for t, _ in peer.received]
    gaps = np.diff(times)
    assert 0.015 < float(np.median(gaps)) < 0.025  # paced, not burst
    assert round(sum(len(p.payload) for p in pkts) / 8) == result.heard_ms


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


async def test_without_stasis_events_a_refused_add_channel_is_retried(peer: Peer) -> None:
    # A VoiceContext without expect_stasis_start (no events seen): the 422 Asterisk answers
    # before the externalMedia channel entered Stasis is retried, bounded by stasis_wait.
    peer.refuse_add = 2
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest), ports=PortRange(0, 0))
        await media.start()
        await media.aclose()
    adds = [p for m, p, _ in peer.requests if p.endswith("/addChannel")]
    assert len(adds) == 3
    peer.refuse_add = 1000
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest, stasis_wait=0.05), ports=PortRange(0, 0))
        with pytest.raises(AriUnprocessable):
            await media.start()
        await media.aclose()


class _CountingVad:
    """A VoiceActivityDetector that counts its decisions around the real webrtcvad."""

    def __init__(self, inner: VoiceActivityDetector) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.frame_ms = inner.frame_ms
        self.calls = 0

    def is_speech(self, frame: bytes) -> bool:
        self.calls += 1
        return self.inner.is_speech(frame)


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_only_the_vads_watched_decide_and_one_needed_again_is_primed(peer: Peer) -> None:
    """A barge-in (strict) watcher alone runs the strict VAD only; a listener joining primes the
    listening VAD on the last 200 ms, then both decide every frame."""
    async with AriRestClient(peer.url, "u", "p") as rest:
        media = CallMedia(_ctx(rest))
        await media.start()
        loose, strict = _CountingVad(media._vad), _CountingVad(media._strict_vad)
        media._vad, media._strict_vad = loose, strict
        assert peer.external_host is not None
        noise = np.random.default_rng(3).normal(0, 300, 160 * 40).astype("<i2").tobytes()
        payloads = [ulaw_encode(noise[i : i + 320]) for i in range(0, len(noise), 320)]
        sent = 0

        def send(n: int) -> None:
            nonlocal sent
            for _ in range(n):
                pkt = RtpPacket(0, 100 + sent, 160 * sent, 7, payloads[sent % len(payloads)])
                peer.rtp.sendto(pkt.serialize(), peer.external_host)
                sent += 1

        send(12)  # before anyone watches: no VAD runs
        await _until(lambda: media.jitter.stats.emitted == 12)
        assert loose.calls == strict.calls == 0
        barge = asyncio.ensure_future(media.wait_for_speech(60_000))
        await _until(lambda: strict.calls == 10)  # primed on the last 10 frames
        send(20)
        await _until(lambda: strict.calls == 30)
        assert loose.calls == 0  # the prompt's barge-in needs the strict VAD only
        listening = asyncio.ensure_future(media.listen(30))
        await _until(lambda: loose.calls == 10)  # primed when it is needed again
        send(5)
        await _until(lambda: strict.calls == 35 and loose.calls == 15)
        for task in (barge, listening):
            task.cancel()
        await asyncio.gather(barge, listening, return_exceptions=True)
        await media.aclose()


async def test_a_webrtc_vad_given_for_the_app_is_one_per_call() -> None:
    # webrtcvad keeps state between frames: one instance shared by every call let one caller's
    # speech turn the other callers' quiet lines into "speech" (bench/calls.py's spoken answers
    # started recognitions on calls that had only pressed a key).
    shared = WebRtcVad(8000, 20, 1)
    medias = []
    for channel in ("caller-1", "caller-2"):
        ctx = _ctx(None, vad=None)  # type: ignore[arg-type]  # never started: no ARI is used
        ctx.channel_id, ctx.vad = channel, shared
        medias.append(CallMedia(ctx))
    a, b = (m._vad for m in medias)
    assert isinstance(a, WebRtcVad) and isinstance(b, WebRtcVad)
    assert a is not b and shared not in (a, b)
    assert (a.sample_rate, a.frame_ms, a.aggressiveness) == (8000, 20, 1) == (
        b.sample_rate, b.frame_ms, b.aggressiveness)  # fmt: skip
    # Its state is the call's own: speech on one call leaves the other's decisions as they were.
    rng = np.random.default_rng(3)
    loud = (rng.normal(0, 3000, 160) * np.sin(np.arange(160) / 3)).astype("<i2").tobytes()
    quiet = rng.normal(0, 30, 160 * 50).astype("<i2").tobytes()
    fresh = WebRtcVad(8000, 20, 1)
    expected = [fresh.is_speech(quiet[i : i + 320]) for i in range(0, len(quiet), 320)]
    for _ in range(50):
        a.is_speech(loud)
    assert [b.is_speech(quiet[i : i + 320]) for i in range(0, len(quiet), 320)] == expected

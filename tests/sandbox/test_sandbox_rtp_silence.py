"""What the sandbox sends to an externalMedia socket while nobody talks, as Asterisk 22 does
(capture rtp-silence.json): a 2-channel bridge (``simple_bridge``) only forwards, so a caller who
sends nothing in silence (DTX) gives no RTP at all; with a third channel the bridge is ``softmix``
and sends 50 packets/s of silence. Across a gap the sequence number continues, the timestamp
follows the elapsed time and the first packet after the gap has the marker bit."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "captures" / "rtp-silence.json").read_text()
)


def _phase(prefix: str) -> dict[str, Any]:
    [phase] = [p for p in CAPTURE["phases"] if p["phase"].startswith(prefix + "-")]
    return phase


def _technology(channels: int) -> str:
    """The bridge technology Asterisk reported with ``channels`` members (a GET or POST answer)."""
    return next(
        e["response"]["technology"]
        for s in CAPTURE["steps"]
        for e in s["log"]
        if e.get("path", "").startswith("/bridges") and e.get("method") in ("GET", "POST")
        and isinstance(e.get("response"), dict) and "technology" in e["response"]
        and len(e["response"]["channels"]) == channels
    )  # fmt: skip


FIRST = _phase("P3")["first_packets"][0]  # the very first packet the socket ever got
AFTER_GAP = _phase("P6")["first_packets"][0]  # the first one after a silent gap
SOFTMIX = _phase("P7")  # 3 channels, nobody talks


class Peer(asyncio.DatagramProtocol):
    """The externalMedia socket: (arrival time, marker, seq, ts, payload) of every packet, and
    the (length, payload type) of each."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, int, int, int, bytes]] = []
        self.shapes: set[tuple[int, int]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        _, m_pt, seq, ts, _ = struct.unpack("!BBHII", data[:12])
        self.packets.append((time.monotonic(), m_pt >> 7, seq, ts, data[12:]))
        self.shapes.add((len(data), m_pt & 0x7F))

    async def wait_count(self, n: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.packets) < n:  # noqa: ASYNC110 - packets arrive from the socket
                await asyncio.sleep(0.01)


def _tone(seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (np.sin(2 * np.pi * 300 * t) * 9000).astype("<i2").tobytes()


async def _media_bridge(sandbox: Sandbox, ari: RawAri, port: int, *, dtx: bool) -> str:
    """externalMedia + an answered caller in bridge b1; returns the caller's channel id."""
    status, _ = await ari.req(
        "POST", "/channels/externalMedia", app="voxflow", channelId="em1",
        external_host=f"127.0.0.1:{port}", format="ulaw",
    )  # fmt: skip
    assert status == 200
    await ari.next("StasisStart")
    call = await sandbox.place_call(dtx=dtx)
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.req("POST", "/bridges/b1", type="mixing")
    status, _ = await ari.req("POST", "/bridges/b1/addChannel", channel=f"em1,{call.id}")
    assert status == 204
    return call.id


async def test_two_channel_bridge_forwards_only(sandbox: Sandbox, ari: RawAri) -> None:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        cid = await _media_bridge(sandbox, ari, transport.get_extra_info("sockname")[1], dtx=True)
        _, bridge = await ari.req("GET", "/bridges/b1")
        assert bridge["technology"] == _technology(2) == "simple_bridge"
        await asyncio.sleep(0.3)
        assert _phase("P5")["packets"] == 0  # the other member idle in Stasis
        assert peer.packets == []  # nobody talks: no RTP at all
        caller = sandbox.calls[cid]
        await caller.say_audio(_tone(0.2))
        await peer.wait_count(10)
        first_burst = len(peer.packets)
        await asyncio.sleep(0.3)  # silent again: the packets stop
        assert len(peer.packets) == first_burst
        gap_start = peer.packets[-1]
        await caller.say_audio(_tone(0.2))
        await peer.wait_count(first_burst + 5)
        resumed = peer.packets[first_burst]
        assert peer.packets[0][1] == FIRST["marker"] == 0  # the very first packet: no marker
        assert resumed[1] == AFTER_GAP["marker"] == 1
        assert all(p[1] == 0 for p in peer.packets[first_burst + 1 :])
        assert peer.shapes == {(FIRST["len"], FIRST["pt"])} == {(172, 0)}
        assert resumed[2] == (gap_start[2] + 1) & 0xFFFF  # sequence continues
        elapsed = resumed[0] - gap_start[0]
        ts_gap = (resumed[3] - gap_start[3]) & 0xFFFFFFFF  # samples: whole 20 ms frames
        # (compared in integers: the gap's length varies with load, and e.g. 0.36 % 0.02 is
        # 0.0199... in floating point)
        # timestamp = wall clock: the gap spans at least the 0.3 s of silence; it differs from
        # the gap seen on arrival only by the two packets' delays (up to ~0.1 s each under load)
        assert ts_gap % 160 == 0 and ts_gap / 8000 >= 0.3 and abs(ts_gap / 8000 - elapsed) < 0.25
    finally:
        transport.close()


async def test_a_caller_without_dtx_sends_silence_that_is_forwarded(
    sandbox: Sandbox, ari: RawAri
) -> None:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        await _media_bridge(sandbox, ari, transport.get_extra_info("sockname")[1], dtx=False)
        await peer.wait_count(10)
        assert all(p[4] == b"\xff" * 160 for p in peer.packets)
    finally:
        transport.close()


async def test_a_third_channel_makes_softmix_send_silence(sandbox: Sandbox, ari: RawAri) -> None:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        await _media_bridge(sandbox, ari, transport.get_extra_info("sockname")[1], dtx=True)
        third = await sandbox.place_call(dtx=True)
        await ari.req("POST", f"/channels/{third.id}/answer")
        await ari.req("POST", "/bridges/b1/addChannel", channel=third.id)
        _, bridge = await ari.req("GET", "/bridges/b1")
        assert bridge["technology"] == _technology(3) == "softmix"
        await peer.wait_count(10)
        # as captured: every packet of the phase is ulaw silence (0xFF), 172 bytes, pt 0
        assert SOFTMIX["packets_all_ulaw_silence_payload"] == SOFTMIX["packets"] > 0
        silence = SOFTMIX["first_packets"][0]
        assert silence["payload_head_hex"] == "ff" * 8
        assert all(p[4] == b"\xff" * 160 for p in peer.packets)  # ulaw silence
        assert peer.shapes == {(silence["len"], silence["pt"])}
        await ari.req("POST", "/bridges/b1/removeChannel", channel=third.id)
        _, bridge = await ari.req("GET", "/bridges/b1")
        assert bridge["technology"] == "simple_bridge"
        assert _phase("P8")["packets"] == 0
        await asyncio.sleep(0.1)
        count = len(peer.packets)
        await asyncio.sleep(0.3)
        assert len(peer.packets) == count  # back to simple_bridge: the packets stop
    finally:
        transport.close()

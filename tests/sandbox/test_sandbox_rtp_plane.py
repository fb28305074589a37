"""The batched RTP plane: stall recovery, odd packet sizes, malformed and foreign packets."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import time

import numpy as np
from conftest import RawAri

from voxflow.media import codecs
from voxflow.sandbox import Sandbox, SimCall
from voxflow.sandbox.rtp import RtpFar


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[float, int, int]] = []  # (arrival, seq, timestamp)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        seq, ts = struct.unpack("!HI", data[2:8])
        self.got.append((time.monotonic(), seq, ts))


async def _em_call(
    sandbox: Sandbox, ari: RawAri, port: int
) -> tuple[dict[str, object], SimCall, RtpFar]:
    status, em = await ari.req("POST", "/channels/externalMedia", app="voxflow",
                               external_host=f"127.0.0.1:{port}", format="ulaw")  # fmt: skip
    assert status == 200
    call = await sandbox.place_call()
    await ari.req("POST", f"/channels/{call.id}/answer")
    _, br = await ari.req("POST", "/bridges", type="mixing")
    await ari.req("POST", f"/bridges/{br['id']}/addChannel", channel=f"{em['id']},{call.id}")
    far = sandbox.pbx.channels[str(em["id"])].far
    assert isinstance(far, RtpFar)
    return em, call, far


async def test_a_stalled_loop_skips_periods_instead_of_bursting(
    sandbox: Sandbox, ari: RawAri
) -> None:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
    try:
        em, _, _ = await _em_call(sandbox, ari, transport.get_extra_info("sockname")[1])
        await asyncio.sleep(0.3)
        time.sleep(0.25)  # noqa: ASYNC251  # blocking the loop on purpose: ~12 periods missed
        stalled_at, resumed = len(peer.got), time.monotonic()
        await asyncio.sleep(0.3)
        after = peer.got[stalled_at:]
        elapsed = time.monotonic() - resumed
        assert len(after) >= 8
        seqs = [s for _, s, _ in peer.got]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # nothing lost
        steps = [(b[2] - a[2]) & 0xFFFFFFFF for a, b in itertools.pairwise(peer.got)]
        assert max(steps) >= 160 * 10  # the timestamp jumped over the skipped periods
        # Every jump is periods the sandbox skipped (on a loaded machine, more stalls than ours).
        assert sum(s - 160 for s in steps) == 160 * sandbox.rtp.skipped_packets
        # No catch-up burst: after the stall no more packets are sent than periods began, plus
        # the <= 2 late ones a tick may still catch up (server._RESYNC). Counted, not timed by
        # arrival gaps: on a loaded machine every late tick's catch-up arrives back to back.
        # A burst of the stalled periods would add ~12.
        assert len(after) <= (elapsed + 0.04) / 0.02 + 1
        assert sandbox.rtp.skipped_packets >= 10
        await ari.req("DELETE", f"/channels/{em['id']}")
    finally:
        transport.close()


async def test_odd_sizes_malformed_and_foreign_packets(sandbox: Sandbox, ari: RawAri) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
    try:
        em, call, far = await _em_call(sandbox, ari, transport.get_extra_info("sockname")[1])
        local = ("127.0.0.1", int(em["channelvars"]["UNICASTRTP_LOCAL_PORT"]))  # type: ignore[index]
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 500 / 8000) * 7000).astype("<i2").tobytes()
        payload = codecs.ulaw_encode(tone)
        # 10 ms packets (80 bytes), with a CSRC and padding on some: re-cut into 20 ms frames.
        for i in range(100):
            chunk = payload[i * 80 : (i + 1) * 80]
            if i % 3 == 0:
                pkt = struct.pack("!BBHIII", 0x81, 0, i, i * 80, 7, 99) + chunk
            elif i % 3 == 1:
                pkt = struct.pack("!BBHII", 0xA0, 0, i, i * 80, 7) + chunk + b"\x00\x00\x03"
            else:
                pkt = struct.pack("!BBHII", 0x80, 0, i, i * 80, 7) + chunk
            transport.sendto(pkt, local)
            if i % 2:
                await asyncio.sleep(0.02)
        transport.sendto(b"\x80\x00", local)  # truncated
        transport.sendto(b"\x40" + bytes(171), local)  # RTP version 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(struct.pack("!BBHII", 0x80, 0, 1, 0, 9) + payload[:160], local)
        await asyncio.sleep(0.4)
        heard = np.frombuffer(call.heard_audio(), "<i2")
        loud = int((np.abs(heard) > 3000).sum())
        assert loud == 5000  # all of the 1 s tone (5000 of its 8000 samples exceed 3000)
        assert far.packets_in == 100
        assert far.rejected == 2 and far.dropped_foreign == 1
        await ari.req("DELETE", f"/channels/{em['id']}")
    finally:
        transport.close()

"""externalMedia over RTP/UDP: the sandbox's side of a UnicastRTP channel.

Like chan_rtp with strict RTP: the sandbox always sends to ``external_host`` and accepts
packets only from it. One UDP socket per channel. Frames go out on the PBX's shared
20 ms tick; received payloads are decoded into a FIFO the tick drains (the bridge does
not retime externalMedia input). Faults (loss, reorder, jitter) apply to what it sends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections import deque
from typing import Any, cast

import numpy as np

from voxflow.errors import MediaError, RtpPacketError
from voxflow.media.rtp import parse_rtp

from .audio import Frame, decode_payload, encode_frame

__all__ = ["PAYLOAD_TYPES", "LatenessProbe", "RtpFar", "RtpFaults", "open_rtp"]

log = logging.getLogger(__name__)

PAYLOAD_TYPES = {"ulaw": 0, "alaw": 8, "slin16": 118}
_TS_STEP = {"ulaw": 160, "alaw": 160, "slin16": 320}
_HDR = struct.Struct("!BBHII")


class RtpFaults:
    """Impairments applied to packets the sandbox sends (seeded, so runs repeat)."""

    def __init__(self, seed: int = 1) -> None:
        self.loss = 0.0
        self.reorder = 0.0
        self.jitter_ms = 0.0
        self.rng = random.Random(seed)

    @property
    def active(self) -> bool:
        return bool(self.loss or self.reorder or self.jitter_ms)


class LatenessProbe:
    """Records how late each packet left relative to its tick's scheduled time."""

    def __init__(self, limit: int = 2_000_000) -> None:
        self.deadline = 0.0
        self.samples: list[float] = []
        self.limit = limit


class RtpFar(asyncio.DatagramProtocol):
    """The far end of an externalMedia channel: an RTP peer at ``remote``."""

    wants_tick = True

    def __init__(
        self,
        codec: str,
        remote: tuple[str, int],
        faults: RtpFaults,
        lateness: LatenessProbe | None = None,
    ) -> None:
        self.codec = codec
        self.pt = PAYLOAD_TYPES[codec]
        self.step = _TS_STEP[codec]
        self.remote = remote
        self.faults = faults
        self.lateness = lateness
        self.transport: asyncio.DatagramTransport | None = None
        rng = random.Random()
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16)
        self.ts = rng.getrandbits(32)
        self.inbox: deque[Frame] = deque(maxlen=50)
        self._held: bytes | None = None
        self._silence = encode_frame(np.zeros(160, np.int16), codec)
        self.packets_in = 0
        self.packets_out = 0
        self.dropped_foreign = 0
        self.rejected = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    # asyncio.DatagramProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport, so no
        # isinstance check here (an assert made every externalMedia channel mute).
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if (addr[0], addr[1]) != self.remote:
            self.dropped_foreign += 1
            return
        try:
            pkt = parse_rtp(data)
        except RtpPacketError:
            self.rejected += 1
            return
        if pkt.payload_type != self.pt or not pkt.payload:
            return
        self.packets_in += 1
        try:
            self.inbox.append(decode_payload(pkt.payload, self.codec))
        except (ValueError, MediaError):
            return

    # FarEnd
    def next_spoken(self) -> Frame | None:
        return self.inbox.popleft() if self.inbox else None

    def hear(self, frame: Frame | None, tick: int) -> None:
        tr = self.transport
        if tr is None or self.closed:
            return
        payload = self._silence if frame is None else encode_frame(frame, self.codec)
        pkt = _HDR.pack(0x80, self.pt, self.seq, self.ts, self.ssrc) + payload
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + self.step) & 0xFFFFFFFF
        if self.faults.active:
            self._send_impaired(pkt)
        else:
            tr.sendto(pkt, self.remote)
        self.packets_out += 1
        probe = self.lateness
        if probe is not None and self._loop is not None and len(probe.samples) < probe.limit:
            probe.samples.append(self._loop.time() - probe.deadline)

    def _send_impaired(self, pkt: bytes) -> None:
        f = self.faults
        if f.loss and f.rng.random() < f.loss:
            return
        if f.reorder and self._held is None and f.rng.random() < f.reorder:
            self._held = pkt
            return
        out = [pkt]
        if self._held is not None:
            out.append(self._held)
            self._held = None
        for p in out:
            if f.jitter_ms and self._loop is not None:
                delay = f.rng.uniform(0, f.jitter_ms) / 1000
                self._loop.call_later(delay, self._send_raw, p)
            else:
                self._send_raw(p)

    def _send_raw(self, pkt: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.sendto(pkt, self.remote)

    def far_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "hangup":
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def open_rtp(
    host: str,
    codec: str,
    remote: tuple[str, int],
    faults: RtpFaults,
    lateness: LatenessProbe | None,
) -> tuple[RtpFar, tuple[str, int]]:
    """Bind a UDP socket on ``host`` (ephemeral port) for one externalMedia channel."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: RtpFar(codec, remote, faults, lateness), local_addr=(host, 0)
    )
    sock = transport.get_extra_info("sockname")
    return proto, (sock[0], sock[1])

"""externalMedia over real RTP/UDP: REST answer shape, events, strict RTP, bridged audio."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct

import numpy as np
from conftest import RawAri

from voxflow.sandbox import Sandbox
from voxflow.sandbox.audio import decode_payload, encode_frame


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)


async def test_external_media_rtp_both_ways(sandbox: Sandbox, ari: RawAri) -> None:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        status, body = await ari.req("POST", "/channels/externalMedia", app="voxflow",
                                     format="ulaw")  # fmt: skip
        assert (status, body["message"]) == (
            400, "external_host is required for all but websocket server connections"
        )  # fmt: skip
        status, em = await ari.req(
            "POST", "/channels/externalMedia", app="voxflow", channelId="em1",
            external_host=f"127.0.0.1:{port}", format="ulaw",
        )  # fmt: skip
        assert status == 200 and em["state"] == "Down"
        assert em["name"].startswith(f"UnicastRTP/127.0.0.1:{port}-0x")
        local_port = int(em["channelvars"]["UNICASTRTP_LOCAL_PORT"])
        events = await ari.collect()
        assert [e.get("dialstatus", e["type"]) for e in events] == [
            "", "ChannelStateChange", "ANSWER", "ChannelVarset", "StasisStart"
        ]  # fmt: skip
        assert all("channelvars" not in e.get("channel", {}) for e in events)
        call = await sandbox.place_call()
        await ari.req("POST", f"/channels/{call.id}/answer")
        await ari.req("POST", "/bridges/b1", type="mixing")
        await ari.req("POST", "/bridges/b1/addChannel", channel=f"em1,{call.id}")
        # Caller speaks: the peer receives it as 20 ms ulaw RTP.
        tone = (np.sin(np.arange(4000) * 2 * np.pi * 300 / 8000) * 9000).astype("<i2")
        await call.say_audio(tone.tobytes())
        await asyncio.sleep(0.1)
        assert len(peer.packets) > 20
        hdr = [struct.unpack("!BBHII", p[:12]) for p in peer.packets]
        assert all(h[0] == 0x80 and h[1] & 0x7F == 0 for h in hdr)
        assert all(len(p) == 172 for p in peer.packets)
        seqs = [h[2] for h in hdr]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        loud = [np.abs(decode_payload(p[12:], "ulaw")).max() for p in peer.packets]
        assert max(loud) > 5000
        # The peer sends from the socket it named (strict RTP): the caller hears it.
        frame = encode_frame((np.ones(160) * 6000).astype(np.int16), "ulaw")
        for i in range(25):
            pkt = struct.pack("!BBHII", 0x80, 0, 100 + i, 160 * i, 1234) + frame
            transport.sendto(pkt, ("127.0.0.1", local_port))
            await asyncio.sleep(0.02)
        # A stranger's packets are dropped.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            for i in range(25):
                stranger.sendto(struct.pack("!BBHII", 0x80, 0, i, 0, 9) + frame,
                                ("127.0.0.1", local_port))  # fmt: skip
        await asyncio.sleep(0.3)
        heard = np.frombuffer(call.heard_audio(), "<i2")
        assert (np.abs(heard) > 4000).sum() >= 20 * 160
        assert (np.abs(heard) > 4000).sum() < 40 * 160
        await ari.req("DELETE", "/channels/em1")
        ends = [e["type"] for e in await ari.collect()]
        assert ends[-1] == "ChannelDestroyed" and "ChannelLeftBridge" in ends
    finally:
        transport.close()

"""SimCall.say: espeak-ng speech reaches an externalMedia peer as real RTP audio."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import struct
import time

import numpy as np
import pytest
from conftest import RawAri

from voxflow.media import codecs
from voxflow.sandbox import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self._more = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)
        self._more.set()

    async def count(self, n: int) -> None:
        """Wait until ``n`` packets have arrived."""
        while len(self.packets) < n:
            self._more.clear()
            await self._more.wait()


@pytest.mark.parametrize("fmt", ["ulaw", "slin16"])
async def test_say_arrives_over_external_media_rtp(sandbox: Sandbox, ari: RawAri, fmt: str) -> None:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        status, em = await ari.req("POST", "/channels/externalMedia", app="voxflow",
                                   external_host=f"127.0.0.1:{port}", format=fmt)  # fmt: skip
        assert status == 200
        call = await sandbox.place_call()
        await ari.req("POST", f"/channels/{call.id}/answer")
        _, br = await ari.req("POST", "/bridges", type="mixing")
        await ari.req("POST", f"/bridges/{br['id']}/addChannel", channel=f"{em['id']},{call.id}")
        await asyncio.sleep(0.2)
        [far] = [f for f in sandbox.rtp.fars.values() if f.remote[1] == port]
        # packet i of the peer is packet i the channel sent (loopback); a skip is counted at the
        # end of a tick and its jump is in the next packet sent: the window is from the first
        # packet sent after the first count to the first packet sent after the last
        before, skipped = far.packets_out, sandbox.rtp.skipped_packets
        # A stall mid-sentence (a loaded machine does this at random): the sandbox skips the
        # missed periods as Asterisk's timer does, so the timestamps below jump over them.
        loop.call_later(0.5, time.sleep, 0.1)
        await call.say("hello, I would like to check my balance")
        await asyncio.sleep(0.2)
        last, skipped_end = far.packets_out, sandbox.rtp.skipped_packets
        async with asyncio.timeout(10):
            await peer.count(last + 1)
        packets = peer.packets[before : last + 1]
        spec = codecs.codec_spec(fmt)
        assert {p[1] & 0x7F for p in packets} == {spec.payload_type}
        assert {len(p) - 12 for p in packets} == {spec.frame_bytes()}
        pcm = np.frombuffer(
            b"".join(codecs.decode(p[12:], fmt) for p in packets), dtype="<i2"
        ).astype(np.float64)
        frame = spec.frame_samples()
        rms = np.sqrt(np.mean(pcm[: len(pcm) // frame * frame].reshape(-1, frame) ** 2, axis=1))
        voiced = int((rms > 300).sum())  # 20 ms frames with speech energy
        said = next(e for e in call.experience() if e["type"] == "said")
        spoken_s = said["end"] - said["start"]
        assert 1.0 < spoken_s < 6.0
        # most of the sentence carried audio: of the periods sent (a skipped period's audio is
        # never sent, and a loaded machine skips more than the forced stall)
        assert voiced * 0.02 > 0.5 * (spoken_s - (skipped_end - skipped) * 0.02)
        assert voiced * 0.02 <= spoken_s + 0.1  # and no more than was said
        # Sequence numbers advance by one per packet; timestamps follow the media clock (RFC 3550
        # 5.1): one frame per packet, except over skipped periods, where they jump by exactly the
        # periods skipped and the packet after the jump has the marker bit (rtp-silence.json).
        seqs = [struct.unpack("!H", p[2:4])[0] for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        steps = [
            ((struct.unpack("!I", b[4:8])[0] - struct.unpack("!I", a[4:8])[0]) & 0xFFFFFFFF, b[1])
            for a, b in itertools.pairwise(packets)
        ]
        assert all(step % frame == 0 and step >= frame for step, _ in steps)
        assert all(m & 0x80 for step, m in steps if step > frame)
        assert sum(step // frame - 1 for step, _ in steps) == skipped_end - skipped
        assert skipped_end > skipped  # the stall was skipped, not caught up
        await ari.req("DELETE", f"/channels/{em['id']}")
        await call.hangup()
    finally:
        transport.close()

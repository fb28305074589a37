"""CPU of one call's media path per received packet, by what the call is doing (no sockets).

    .venv/bin/python bench/media_path.py [--packets 20000] [--repeat 7]

Feeds serialized RTP packets through what a worker runs for each one it receives (``RtpStats``
parse -> ``CallMedia._on_packet``: jitter buffer, the VADs its watchers need, the watchers) and
stamps outbound frames (``OutboundStream.packet_for_tick``), on the thread's own CPU clock, best
of ``--repeat`` runs (the least disturbed by other processes on a shared machine). The states:

* ``idle``: nobody watches (between prompts, or a prompt without speech barge-in);
* ``barge-in, quiet``: a prompt with speech barge-in while the caller is silent (digital zeros,
  what a quiet caller in a mixing bridge sends);
* ``barge-in, line noise``: the same with low line noise;
* ``barge-in + listen``: a listener and a barge-in watcher at once, line noise.

The syscalls (``recv``/``send``, ~1-1.5 and ~5 us a packet on loopback) and asyncio's own
dispatch come on top; ``--sockets N`` measures them for the receive side: N ``RtpSocket``s on
the event loop, a packet sent to each, the loop's CPU until every one has been read and parsed
(epoll, the reader callback, ``recv_into``, parse; the handler does nothing), best of
``--repeat``. ``bench/calls.py`` measures whole calls.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import numpy as np

from voxflow.media.callmedia import CallMedia
from voxflow.media.codecs import ulaw_encode
from voxflow.media.pacer import OutboundStream
from voxflow.media.rtp import RtpPacket, RtpStats
from voxflow.media.transport import RtpSocket
from voxflow.media.vad import SpeechDetector
from voxflow.media.watcher import SpeechWatcher
from voxflow.voice.call import VoiceContext

STATES = ("idle", "barge-in, quiet", "barge-in, line noise", "barge-in + listen")


def _media() -> CallMedia:
    ctx = VoiceContext(
        rest=None,  # type: ignore[arg-type]  # never started: no ARI is used
        channel_id="bench",
        app_name="bench",
        tts=None,
        stt=None,
        vad=None,
        current_bridge_id=lambda: None,
        options={},
    )
    return CallMedia(ctx)


def _packets(n: int, noisy: bool, seq0: int) -> list[bytes]:
    if noisy:
        pcm = np.random.default_rng(1).normal(0, 10, 160 * 200).astype("<i2").tobytes()
        payloads = [ulaw_encode(pcm[i * 320 : (i + 1) * 320]) for i in range(200)]
    else:
        payloads = [b"\xff" * 160]
    return [
        RtpPacket(0, (seq0 + k) & 0xFFFF, 160 * k, 5, payloads[k % len(payloads)]).serialize()
        for k in range(n)
    ]


def _receive_us(media: CallMedia, state: str, packets: list[bytes]) -> float:
    media._watchers.clear()
    if state != "idle":
        media._watch(SpeechWatcher(SpeechDetector(min_speech_ms=60), strict=True))
    if state == "barge-in + listen":
        media._watch(SpeechWatcher(SpeechDetector(min_speech_ms=100), collect=True))
    stats = RtpStats()
    started = time.thread_time()
    for data in packets:
        packet = stats.parse(data)
        if packet is not None:
            media._on_packet(packet)
    spent = time.thread_time() - started
    if media._stall_timer is not None:
        media._stall_timer.cancel()
        media._stall_timer = None
    watching = 0 if state == "idle" else 2 if state == "barge-in + listen" else 1
    if len(media._watchers) != watching:
        raise RuntimeError(f"{state}: the noise was taken for speech; lower its level")
    return spent / len(packets) * 1e6


def _stamp_us(n: int) -> float:
    stream = OutboundStream()
    stream.enqueue(b"\xff" * 160 * n)
    started = time.thread_time()
    for tick in range(n):
        stream.packet_for_tick(tick)
    return (time.thread_time() - started) / n * 1e6


async def _run(n: int, repeat: int) -> dict[str, float]:
    best = dict.fromkeys([*STATES, "stamp (send side)"], float("inf"))
    seq = 0
    for _ in range(repeat):
        for state in STATES:
            media = _media()  # fresh jitter buffer and VADs for each state
            packets = _packets(n, noisy="noise" in state or "listen" in state, seq0=seq)
            seq += n
            best[state] = min(best[state], _receive_us(media, state, packets))
        best["stamp (send side)"] = min(best["stamp (send side)"], _stamp_us(n))
    return best


async def _socket_receive_us(n: int, rounds: int, repeat: int) -> float:
    """Loop CPU per packet received on ``n`` sockets (read and parsed, nothing more)."""
    got = [0]

    def on_packet(_: RtpPacket) -> None:
        got[0] += 1

    pairs: list[tuple[RtpSocket, socket.socket]] = []
    for _ in range(n):
        rx = await RtpSocket.open(on_packet=on_packet)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.bind(("127.0.0.1", 0))
        tx.connect(rx.local)
        rx.set_remote(*tx.getsockname())
        pairs.append((rx, tx))
    data = RtpPacket(0, 1, 160, 5, b"\xff" * 160).serialize()
    best = float("inf")
    try:
        for _ in range(repeat):
            spent, base = 0.0, got[0]
            for k in range(rounds):
                for _, tx in pairs:
                    tx.send(data)
                started = time.thread_time()
                while got[0] < base + (k + 1) * n:  # noqa: ASYNC110 - spins the loop, no wait
                    await asyncio.sleep(0)
                spent += time.thread_time() - started
            best = min(best, spent / (n * rounds) * 1e6)
    finally:
        for rx, tx in pairs:
            await rx.aclose()
            tx.close()
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--sockets", type=int, default=0, help="also: receive on N real sockets")
    args = ap.parse_args()
    best = asyncio.run(_run(args.packets, args.repeat))
    if args.sockets:
        rounds = max(1, args.packets // args.sockets)
        us = asyncio.run(_socket_receive_us(args.sockets, rounds, args.repeat))
        best[f"socket receive, {args.sockets} sockets"] = us
    print(f"{'per packet (us CPU, best of ' + str(args.repeat) + ')':<40} {'us':>7}")
    for state, us in best.items():
        print(f"{state:<40} {us:>7.2f}")


if __name__ == "__main__":
    main()

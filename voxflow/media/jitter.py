"""Inbound reorder/jitter buffer keyed on RTP sequence number. Pure code.

In-order packets come out at once (no added delay). When a packet is missing, later packets wait
until ``depth`` frames are buffered past the hole, then the hole is filled with silence of the
right length (from the timestamps) and counted as lost. With ``conceal=True`` (what ``CallMedia``
uses) the first ``conceal_frames`` lost frames of a run repeat the last good frame instead,
fading linearly (gain 1, 2/3, 1/3 for 3 frames), then silence. Why: zero-filled 20 ms holes
inside words make pocketsphinx miss phrases; at 5 % random loss over 90 espeak utterances it
missed 11 with silence fill, 2 with this repeat-and-fade, 3 with halving per frame.

A silent gap in which the sender sent nothing (DTX, or Asterisk's two-channel bridge: sequence
numbers continue, the timestamp jumps, the next packet has the marker bit) is not loss: nothing
is filled, and a packet lost just before a talkspurt is filled with silence, never with a repeat
of the audio before the gap.

Late and duplicate packets are dropped and counted. Sequence numbers wrap at 2**16 and timestamps
at 2**32; a new SSRC or a jump of more than ``resync_after`` packets restarts the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from voxflow.media.codecs import codec_spec, decode, encode, silence
from voxflow.media.rtp import RtpPacket, seq_delta, ts_delta
from voxflow.voice.chunk import AudioChunk

__all__ = ["JitterBuffer", "JitterStats"]


def _chunk_maker() -> Callable[[str, int, bytes, int, int], AudioChunk]:
    """A constructor for :class:`AudioChunk` that fills the slots directly: the frozen
    dataclass ``__init__`` costs an ``object.__setattr__`` per field, twice as long, once per
    received packet."""
    new = object.__new__
    names = ("codec", "sample_rate", "payload", "sequence", "timestamp")
    if set(names) != {f.name for f in fields(AudioChunk)}:  # pragma: no cover - a new field
        raise TypeError("AudioChunk fields changed: update _chunk_maker")
    s_codec, s_rate, s_payload, s_seq, s_ts = (getattr(AudioChunk, n).__set__ for n in names)

    def make(codec: str, rate: int, payload: bytes, seq: int, ts: int) -> AudioChunk:
        chunk: AudioChunk = new(AudioChunk)
        s_codec(chunk, codec)
        s_rate(chunk, rate)
        s_payload(chunk, payload)
        s_seq(chunk, seq)
        s_ts(chunk, ts)
        return chunk

    return make


_chunk = _chunk_maker()


@dataclass(slots=True)
class JitterStats:
    """Counters: packets pushed, frames emitted, packets lost (filled), of those concealed (a
    faded repeat, not silence), late, duplicate, arrived out of order, and stream restarts."""

    pushed: int = 0
    emitted: int = 0
    lost: int = 0
    concealed: int = 0
    late: int = 0
    duplicates: int = 0
    reordered: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Reorders the packets of one inbound stream of wire codec ``codec``."""

    def __init__(
        self,
        codec: str = "ulaw",
        *,
        depth: int = 3,
        resync_after: int = 100,
        conceal: bool = False,
        conceal_frames: int = 3,
    ) -> None:
        spec = codec_spec(codec)
        self.codec = codec
        self.sample_rate = spec.sample_rate
        self.depth = max(0, depth)
        self.resync_after = resync_after
        self.stats = JitterStats()
        self._width = spec.sample_width
        self._frame_samples = spec.frame_samples(20)
        self._pending: dict[int, RtpPacket] = {}
        self._ssrc: int | None = None
        self._next_seq = 0
        self._next_ts = 0
        self._highest = 0  # seq_delta of the furthest buffered packet from _next_seq
        self.conceal = conceal
        self.conceal_frames = conceal_frames
        self._last_payload = b""
        self._lost_run = 0

    @property
    def buffered(self) -> int:
        """Packets waiting for a hole before them to fill."""
        return len(self._pending)

    def push(self, packet: RtpPacket) -> list[AudioChunk]:
        """Add a packet; return the frames now ready, in order (silence for lost ones)."""
        self.stats.pushed += 1
        if (
            packet.sequence == self._next_seq
            and not self._pending
            and packet.ssrc == self._ssrc
            and self._ssrc is not None
        ):  # the common case, in order with nothing waiting: no buffering at all
            self._next_seq = (packet.sequence + 1) & 0xFFFF
            self._highest = 0
            return [self._emit_packet(packet)]
        if self._ssrc != packet.ssrc:
            out = self.flush() if self._ssrc is not None else []
            if self._ssrc is not None:
                self.stats.resyncs += 1
            self._restart(packet)
            return out + self._release()
        d = seq_delta(packet.sequence, self._next_seq)
        if d < 0:
            if d < -self.resync_after:
                out = self.flush()
                self.stats.resyncs += 1
                self._restart(packet)
                return out + self._release()
            self.stats.late += 1
            return []
        if d > self.resync_after:
            out = self.flush()
            self.stats.resyncs += 1
            self._restart(packet)
            return out + self._release()
        if packet.sequence in self._pending:
            self.stats.duplicates += 1
            return []
        if d < self._highest:
            self.stats.reordered += 1
        self._highest = max(self._highest, d)
        self._pending[packet.sequence] = packet
        return self._release()

    def flush(self) -> list[AudioChunk]:
        """Emit everything buffered, filling holes with silence (end of stream, or a stall)."""
        out: list[AudioChunk] = []
        while self._pending:
            out.extend(self._emit_next())
        return out

    def _restart(self, packet: RtpPacket) -> None:
        self._pending.clear()
        self._ssrc = packet.ssrc
        self._last_payload = b""
        self._lost_run = 0
        self._next_seq = packet.sequence
        self._next_ts = packet.timestamp
        self._highest = 0
        self._pending[packet.sequence] = packet

    def _release(self) -> list[AudioChunk]:
        out: list[AudioChunk] = []
        while self._pending and (self._next_seq in self._pending or self._highest >= self.depth):
            out.extend(self._emit_next())
        return out

    def _emit_packet(self, packet: RtpPacket) -> AudioChunk:
        payload = packet.payload
        self._next_ts = (packet.timestamp + len(payload) // self._width) & 0xFFFFFFFF
        self.stats.emitted += 1
        self._last_payload = payload
        self._lost_run = 0
        return _chunk(self.codec, self.sample_rate, payload, packet.sequence, packet.timestamp)

    def _emit_next(self) -> list[AudioChunk]:
        seq = self._next_seq
        packet = self._pending.pop(seq, None)
        self._next_seq = (seq + 1) & 0xFFFF
        self._highest = max(0, self._highest - 1)
        if packet is not None:
            return [self._emit_packet(packet)]
        # A hole: fill up to the next packet's timestamp when it is close, else one frame.
        samples = self._frame_samples
        following = self._pending.get(self._next_seq)
        talkspurt = False
        if following is not None:
            gap = ts_delta(following.timestamp, self._next_ts)
            if 0 < gap <= 4 * self._frame_samples:
                samples = gap
            # A timestamp far ahead (or a marker) starts a new talkspurt after a silent gap in
            # which nothing was sent: the lost packet is not the continuation of old audio.
            talkspurt = following.marker or gap > 4 * self._frame_samples
        ts = self._next_ts
        self._next_ts = (ts + samples) & 0xFFFFFFFF
        self.stats.lost += 1
        self.stats.emitted += 1
        self._lost_run += 1
        fill = silence(self.codec, samples) if talkspurt else self._fill(samples)
        return [AudioChunk(self.codec, self.sample_rate, fill, seq, ts)]

    def _fill(self, samples: int) -> bytes:
        """Audio for a hole of ``samples``: silence, or a faded repeat of the last frame."""
        last = self._last_payload
        if not self.conceal or not last or self._lost_run > self.conceal_frames:
            return silence(self.codec, samples)
        pcm = np.frombuffer(decode(last, self.codec), "<i2")
        gain = 1.0 - (self._lost_run - 1) / self.conceal_frames
        pcm = np.resize(pcm, samples) * gain  # resize tiles or truncates
        self.stats.concealed += 1
        return encode(pcm.astype("<i2").tobytes(), self.codec)

"""The inbound half of a call's media path: packets -> jitter buffer -> consumers and VADs.

:class:`CallInbound` is what :class:`~voxflow.media.callmedia.CallMedia` does with each RTP packet
it receives (``_on_packet``: jitter buffer, fan-out to ``audio_stream()`` consumers, the VADs its
speech watchers need and the watchers), and with the time in which none comes (the quiet-line
timer ``_on_quiet``: the jitter buffer released after 100 ms without packets, and, while someone
listens, the time without packets fed to the listeners as silence). Its state is made by
``CallMedia.__init__``; the attributes are declared here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from voxflow.media.codecs import CodecSpec, Resampler, decode
from voxflow.media.interpolate import Decimator
from voxflow.media.jitter import JitterBuffer
from voxflow.media.rtp import RtpPacket
from voxflow.media.watcher import SpeechWatcher
from voxflow.voice.chunk import AudioChunk
from voxflow.voice.providers import VoiceActivityDetector

__all__ = ["CallInbound"]

_STALL_FLUSH_S = 0.1  # jitter buffer released after this long without packets
_GAP_FILL_S = 0.06  # then, while someone listens, silence is accounted this often
_LOOP_LAG_S = 0.04  # a quiet timer this late means a busy loop, not a silent line
# A gap in the packets shorter than this is late packets, not a pause: its silence is kept out
# of the listeners' audio (the endpointer counts it). The timestamps cannot tell: a stalled
# sender's next packet continues the audio mid-word, yet Asterisk (its RTP timestamps follow the
# wall clock) and the sandbox (``skip_periods``) jump the timestamp and set the marker as after
# silence. bench/calls.py under load: gaps of 100-160 ms inside "billing", decided as "sales"
# (issue 18, session 11). Once a gap is this long its silence joins the audio at once (a DTX
# caller who stopped: the recogniser's streaming end needs to hear it).
_LATE_GAP_MS = 200


class CallInbound:
    """The inbound path of :class:`~voxflow.media.callmedia.CallMedia` (module docstring)."""

    codec: str
    spec: CodecSpec
    jitter: JitterBuffer
    dropped_chunks: int
    wrong_payload_type: int
    gap_frames: int
    _closed: bool
    _vad: VoiceActivityDetector
    _strict_vad: VoiceActivityDetector
    _vad_frame: int
    _vad_resampler: Decimator | Resampler | None
    _vad_buf: bytes
    _recent: deque[bytes]
    _consumers: list[asyncio.Queue[AudioChunk | None]]
    _watchers: list[SpeechWatcher]
    _stall_timer: asyncio.TimerHandle | None
    _last_rx: float
    _quiet_due: float
    _lag_deferred: bool
    _gap_mark: float
    _gap_filled = 0  # silent frames fed for the current gap (0: none)

    def _on_packet(self, packet: RtpPacket) -> None:
        if packet.payload_type != self.spec.payload_type:
            self.wrong_payload_type += 1
            return
        for chunk in self.jitter.push(packet):
            self._deliver(chunk)
        loop = asyncio.get_running_loop()
        self._last_rx = loop.time()
        if self._stall_timer is None and (self.jitter.buffered or self._watchers):
            self._arm_quiet(loop, self._last_rx + _STALL_FLUSH_S)

    def _arm_quiet(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._quiet_due = when
        self._stall_timer = loop.call_at(when, self._on_quiet)

    def _on_quiet(self) -> None:
        """No packet for ``_STALL_FLUSH_S``: release the jitter buffer and, while someone
        listens, count the time without packets as silence (:meth:`_fill_silence`). One timer,
        re-armed from the last packet's time. A late timer (a busy loop, e.g. an STT engine
        starting) lets the socket deliver what queued meanwhile; its lateness is never silence."""
        self._stall_timer = None
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = now - self._quiet_due  # unobserved: a sender on this loop (sandbox) stalled too
        if late > _LOOP_LAG_S:
            self._gap_mark = max(self._gap_mark, self._last_rx) + late
            if not self._lag_deferred:
                self._lag_deferred = True  # once: a loop late every time still ends utterances
                self._arm_quiet(loop, now + _GAP_FILL_S / 3)
                return
        self._lag_deferred = False
        if now - self._last_rx < _STALL_FLUSH_S * 0.99:  # packets came meanwhile
            if self.jitter.buffered or self._watchers:
                self._arm_quiet(loop, self._last_rx + _STALL_FLUSH_S)
            return
        for chunk in self.jitter.flush():
            self._deliver(chunk)
        if self._watchers:
            self._fill_silence(now)
            self._arm_quiet(loop, now + _GAP_FILL_S)

    def _fill_silence(self, now: float) -> None:
        """Phones with silence suppression/DTX, trunks, Local channels and a two-channel Asterisk
        bridge send no RTP while nobody talks (capture rtp-silence.json): the wall-clock time
        since the last packet is fed to the listeners as silent VAD frames, so end-pointing and
        barge-in decide as if silence had been sent. The utterance's audio gets them once the
        gap lasts ``_LATE_GAP_MS``; a shorter gap was late packets, and its silence is dropped
        from the audio when they come (``SpeechWatcher.gap_ended``, in ``_deliver``)."""
        mark = max(self._gap_mark, self._last_rx)
        frame_s = self._vad.frame_ms / 1000
        n = int((now - mark) / frame_s)
        if n <= 0:
            return
        self._gap_mark = mark + n * frame_s
        self.gap_frames += n
        self._vad_buf = b""
        self._gap_filled += n
        quiet = bytes(self._vad_frame)
        for _ in range(n):
            if not self._watchers:
                break
            self._feed(quiet, False, False, True)
        if self._gap_filled * self._vad.frame_ms >= _LATE_GAP_MS:  # a pause: audio from now on
            for w in self._watchers:
                w.gap_ended(real=True)

    def _deliver(self, chunk: AudioChunk) -> None:
        self._recent.append(chunk.payload)
        for q in self._consumers:
            if q.full():
                q.get_nowait()
                self.dropped_chunks += 1
            q.put_nowait(chunk)
        if not self._watchers:
            return
        pcm = decode(chunk.payload, self.codec)
        if self._gap_filled:  # the first audio after a gap: a short one was late packets
            for w in self._watchers:
                w.gap_ended(real=False)  # (a long one's silence is in the audio already)
            self._gap_filled = 0
        if self._vad_resampler is not None:
            pcm = self._vad_resampler.process(pcm)
        buf = self._vad_buf + pcm if self._vad_buf else pcm
        n = self._vad_frame
        while len(buf) >= n and self._watchers:
            frame, buf = (buf, b"") if len(buf) == n else (buf[:n], buf[n:])
            # Only the VADs someone listens to decide (a prompt's barge-in watcher needs the
            # strict one alone); one that is needed again is primed first (``_watch``).
            loose, strict = self._needed_vads(self._watchers)
            voiced = self._vad.is_speech(frame) if loose else False
            strict_voiced = self._strict_vad.is_speech(frame) if strict else voiced
            self._feed(frame, voiced, strict_voiced)
        self._vad_buf = buf

    def _feed(self, frame: bytes, voiced: bool, strict_voiced: bool, filled: bool = False) -> None:
        """``frame`` and its decisions to every watcher (``filled``: silence for time without
        packets); those done are dropped once all were fed (rare: an onset, an utterance's end;
        only then is the list rebuilt)."""
        watchers = self._watchers
        ended: list[SpeechWatcher] | None = None
        for w in watchers:
            if w.feed(frame, strict_voiced if w.strict else voiced, filled):
                ended = [w] if ended is None else [*ended, w]
        if ended is not None:
            self._watchers = [w for w in watchers if w not in ended]

    def _needed_vads(self, watchers: Sequence[SpeechWatcher]) -> tuple[bool, bool]:
        """Which VADs ``watchers`` need: (the listening one, the stricter barge-in one). With a
        single VAD (a custom one decides alone) it is "the listening one" for everybody."""
        if self._strict_vad is self._vad:
            return bool(watchers), False
        loose = strict = False
        for w in watchers:  # (one or two watchers: a loop, not two generators, per frame)
            if w.strict:
                strict = True
            else:
                loose = True
        return loose, strict

    def _watch(self, watcher: SpeechWatcher) -> SpeechWatcher:
        before = self._needed_vads(self._watchers)
        after = self._needed_vads([*self._watchers, watcher])
        vads = [v for v, was, now in zip(self._vad_pair, before, after, strict=True) if now > was]
        if vads:
            self._prime_vads(vads)
        self._watchers.append(watcher)
        return watcher

    @property
    def _vad_pair(self) -> tuple[VoiceActivityDetector, VoiceActivityDetector]:
        return self._vad, self._strict_vad

    def _prime_vads(self, vads: Sequence[VoiceActivityDetector]) -> None:
        """Run ``vads`` over the last ~200 ms before they decide again.

        A VAD only sees audio while a watcher needs it (the listening VAD is not run during a
        prompt that only the barge-in VAD watches). webrtcvad adapts to the noise floor over
        ~100 ms, so a VAD that last saw silence calls the first frames of steady line noise
        speech: a prompt armed for barge-in mid-noise would stop at once. Priming on recent
        audio (decisions discarded) avoids that."""
        if not self._watchers:
            self._vad_buf = b""
        if self._vad_resampler is not None or not self._recent:
            return  # a custom VAD at another rate: left alone
        pcm = decode(b"".join(self._recent), self.codec)
        n = self._vad_frame
        for i in range(0, len(pcm) - n + 1, n):
            for vad in vads:
                vad.is_speech(pcm[i : i + n])

    def _unwatch(self, watcher: SpeechWatcher) -> None:
        watcher.on_start = None  # it may hold the prompt that holds it: leave no cycle behind
        self._watchers[:] = [w for w in self._watchers if w is not watcher]

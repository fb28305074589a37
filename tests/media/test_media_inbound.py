"""CallMedia's inbound path (media/inbound.py): which VADs decide each frame, and what every
speech watcher is fed, checked frame by frame against the watchers fed by hand."""

from __future__ import annotations

import asyncio
import struct

from voxflow.media.callmedia import CallMedia
from voxflow.media.codecs import decode, ulaw_encode
from voxflow.media.rtp import RtpPacket
from voxflow.media.vad import SpeechDetector
from voxflow.media.watcher import SpeechWatcher
from voxflow.voice.call import VoiceContext


class _ScriptedVad:
    """A VoiceActivityDetector whose k-th decision is ``script[k]``; it counts its calls."""

    sample_rate = 8000
    frame_ms = 20

    def __init__(self, script: list[bool]) -> None:
        self.script = script
        self.calls = 0

    def is_speech(self, frame: bytes) -> bool:
        voiced = self.script[self.calls]
        self.calls += 1
        return voiced


def _media() -> CallMedia:
    ctx = VoiceContext(
        rest=None,  # type: ignore[arg-type]  # never started: packets are handed in directly
        channel_id="caller-1",
        app_name="voxflow",
        tts=None,
        stt=None,
        vad=None,
        current_bridge_id=lambda: None,
        options={},
    )
    return CallMedia(ctx)


def _watchers() -> tuple[SpeechWatcher, SpeechWatcher, SpeechWatcher]:
    """A prompt's barge-in (strict, onset only), a listener (collects the utterance) and a
    slower strict onset watcher."""
    barge = SpeechWatcher(SpeechDetector(min_speech_ms=60), strict=True)
    listen = SpeechWatcher(SpeechDetector(min_speech_ms=100, end_silence_ms=200), collect=True)
    slow = SpeechWatcher(SpeechDetector(min_speech_ms=160), strict=True)
    return barge, listen, slow


def _drain(q: asyncio.Queue[bytes | None]) -> list[bytes | None]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def test_each_frame_reaches_every_watcher_and_those_done_leave_after_it() -> None:
    """Every frame's decisions go to every watcher still watching (the listening VAD's to the
    listener, the strict one's to the barge-in watchers); a watcher done in a frame (an onset,
    an utterance's end) is dropped after all were fed that frame; a VAD runs only while a
    watcher needs it. Checked against the same watchers fed by hand."""
    n = 40
    loose_script = [8 <= k < 16 or 30 <= k < 33 for k in range(n)]
    strict_script = [6 <= k < 20 for k in range(n)]
    media = _media()
    loose, strict = _ScriptedVad(loose_script), _ScriptedVad(strict_script)
    media._vad, media._strict_vad = loose, strict
    watched = _watchers()
    for w in watched:
        media._watch(w)
    by_hand = _watchers()
    left = list(by_hand)
    payloads = [ulaw_encode(struct.pack("<h", 200 * k) * 160) for k in range(n)]  # all differ
    strict_runs = loose_runs = 0
    gone_at: dict[int, int] = {}
    for k, payload in enumerate(payloads):
        media._on_packet(RtpPacket(0, 1000 + k, 160 * k, 9, payload))
        if any(w.strict for w in left):
            strict_runs += 1
        if any(not w.strict for w in left):
            loose_runs += 1
        pcm = decode(payload, "ulaw")
        done = [w for w in left if w.feed(pcm, (strict_script if w.strict else loose_script)[k])]
        for w in done:
            gone_at[by_hand.index(w)] = k
        left = [w for w in left if w not in done]
        assert [watched.index(w) for w in media._watchers] == [by_hand.index(w) for w in left]
    if media._stall_timer is not None:
        media._stall_timer.cancel()
    assert gone_at == {0: 8, 2: 13, 1: 25}  # barge-in's onset, the slow onset, the utterance's end
    assert (strict.calls, loose.calls) == (strict_runs, loose_runs) == (14, 26)
    assert all(w.started.done() for w in watched)
    audio = _drain(watched[1].audio)
    assert audio == _drain(by_hand[1].audio)
    # The listener's utterance: its pre-roll (every frame so far) and each frame to its end.
    assert audio == [decode(p, "ulaw") for p in payloads[:26]] + [None]

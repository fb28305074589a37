"""A listener on a call's VAD decisions: speech onset, and optionally the utterance's audio.

``CallMedia`` feeds every watcher one decision per VAD frame (from the listening VAD, or from the
stricter barge-in VAD when ``strict``); ``listen`` collects the utterance (with a pre-roll of the
frames before the onset was confirmed), barge-in and ``wait_for_speech`` only want the onset.

Time without packets is fed as silent frames (``CallInbound._fill_silence``: DTX phones send
nothing while quiet), marked ``filled``: the endpointer counts them at once, but the utterance's
audio gets them only once the gap is long enough to be a pause (``gap_ended``: 200 ms,
``inbound._LATE_GAP_MS``) or the utterance ends in it. Packets that were only
late (a sender stalled mid-word) used to reach the recogniser after that silence: "billing"
chopped by five 140 ms gaps was decided as "sales" under load (bench/calls.py, issue 18 session
11; docs/speech.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from voxflow.errors import CallEndedError
from voxflow.media.vad import SpeechDetector, VadEvent

__all__ = ["SpeechWatcher"]


class SpeechWatcher:
    """Someone waiting on VAD decisions: onset (and optionally the utterance's audio)."""

    def __init__(
        self,
        detector: SpeechDetector,
        *,
        collect: bool = False,
        preroll_frames: int = 15,
        strict: bool = False,
    ) -> None:
        self.detector = detector
        self.collect = collect
        self.strict = strict  # fed the stricter barge-in VAD's decisions
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.preroll: deque[bytes] = deque(maxlen=preroll_frames)
        self.on_start: Callable[[], None] | None = None
        self._filled: list[bytes] = []  # silence fed for time without packets, not yet audio
        self.unread_at_end = 0  # frames of the utterance's audio not yet read when it ended

    def feed(self, pcm: bytes, voiced: bool, filled: bool = False) -> bool:
        """Account one frame (``filled``: silence for time without packets, module docstring);
        True when the watcher is done and can be dropped."""
        event: VadEvent | None = self.detector.feed(voiced)
        if not self.started.done():
            if self.collect:
                self.preroll.append(pcm)
            if event is not None and event.kind == "start":
                self.started.set_result(None)
                if self.on_start is not None:
                    self.on_start()
                if not self.collect:
                    return True
                for frame in self.preroll:
                    self.audio.put_nowait(frame)
                self.preroll.clear()
            return False
        if filled:
            self._filled.append(pcm)
        else:
            self.gap_ended(real=True)  # (a caller that did not say: as before)
            self.audio.put_nowait(pcm)
        if event is not None and event.kind == "end":
            self.gap_ended(real=True)  # the utterance ended in it: the sender meant it
            self.unread_at_end = self.audio.qsize()
            self.audio.put_nowait(None)
            return True
        return False

    def gap_ended(self, *, real: bool) -> None:
        """Silence was fed for time without packets: ``real``, the gap is a pause (long enough):
        the silence is the caller's and joins the audio; otherwise packets came again soon,
        late, continuing the caller's audio: the silence is dropped from it (the endpointer
        has counted it)."""
        if real:
            for pcm in self._filled:
                self.audio.put_nowait(pcm)
        self._filled.clear()

    def close(self) -> None:
        if not self.started.done():
            self.started.set_exception(CallEndedError("media closed"))
            self.started.exception()  # mark retrieved: nobody may be waiting any more
        self.audio.put_nowait(None)

"""A listener on a call's VAD decisions: speech onset, and optionally the utterance's audio.

``CallMedia`` feeds every watcher one decision per VAD frame (from the listening VAD, or from the
stricter barge-in VAD when ``strict``); ``listen`` collects the utterance (with a pre-roll of the
frames before the onset was confirmed), barge-in and ``wait_for_speech`` only want the onset.
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

    def feed(self, pcm: bytes, voiced: bool) -> bool:
        """Account one frame; True when the watcher is done and can be dropped."""
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
        self.audio.put_nowait(pcm)
        if event is not None and event.kind == "end":
            self.audio.put_nowait(None)
            return True
        return False

    def close(self) -> None:
        if not self.started.done():
            self.started.set_exception(CallEndedError("media closed"))
            self.started.exception()  # mark retrieved: nobody may be waiting any more
        self.audio.put_nowait(None)

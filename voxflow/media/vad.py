"""Voice activity detection on pcm16 frames, and the endpointing state machine built on it.

:class:`WebRtcVad` wraps the ``webrtcvad`` module from the ``webrtcvad-wheels`` package. Why that
one: it is maintained (prebuilt wheels for current Pythons, unlike the original ``webrtcvad``), it
needs no model download (Silero needs onnxruntime and a model file), it takes 10/20/30 ms frames
at 8/16/32/48 kHz which matches RTP framing, and it costs a few microseconds per frame, so
hundreds of calls fit on one core. Its aggressiveness (0-3) trades missed speech for false alarms.

:class:`SpeechDetector` is pure: fed one decision per frame, it reports speech onset after
``min_speech_ms`` of (mostly) voiced frames and the end of the utterance after ``end_silence_ms``
of silence, or after the shorter ``complete_silence_ms`` while its listener has set ``complete``
(the recogniser's partial result is already a whole expected phrase: VoiceXML's "complete
timeout", so a caller who said "sales" does not wait out a window meant for pauses mid-sentence),
or after the shortest ``final_silence_ms`` while it has set ``final`` (a whole phrase that no
other expected phrase extends: nothing the caller could add would still match, so the silence
only has to show that the caller stopped, not that they will not go on), or after
``settled_silence_ms`` (0: at the next frame) while it has set ``settled`` (such a phrase, and
the recogniser's own searches put the end of speech behind them: they, not the VAD, showed that
the caller stopped; the VAD keeps calling ~60-140 ms after the last word speech). Anything else
(part of a phrase, no phrase, free speech) ends after ``quiet_silence_ms`` instead of
``end_silence_ms`` while the listener has set ``quiet`` (the recogniser's unconstrained search
has heard no speech for a while either): long enough for a caller's pause mid-sentence.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import webrtcvad

from voxflow.errors import ConfigError

__all__ = ["SpeechDetector", "VadEvent", "WebRtcVad"]


class WebRtcVad:
    """WebRTC VAD: ``is_speech(frame)`` on exactly ``frame_ms`` of pcm16 at ``sample_rate``."""

    def __init__(
        self, sample_rate: int = 8000, frame_ms: int = 20, aggressiveness: int = 2
    ) -> None:
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ConfigError(f"webrtcvad supports 8/16/32/48 kHz, not {sample_rate}")
        if frame_ms not in (10, 20, 30):
            raise ConfigError(f"webrtcvad takes 10, 20 or 30 ms frames, not {frame_ms}")
        if aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"VAD aggressiveness must be 0-3, not {aggressiveness}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.aggressiveness = aggressiveness
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: bytes) -> bool:
        """True when this frame holds speech. Frames of the wrong size count as non-speech."""
        if len(frame) != self.frame_bytes:
            return False
        return bool(self._vad.is_speech(frame, self.sample_rate))


@dataclass(frozen=True, slots=True)
class VadEvent:
    """``kind`` is "start" (speech onset confirmed) or "end" (end of utterance); ``at_ms`` is
    the stream time of the decision."""

    kind: str
    at_ms: int


class SpeechDetector:
    """Onset and endpoint decisions from per-frame VAD results. Pure; one per listener."""

    def __init__(
        self,
        *,
        frame_ms: int = 20,
        min_speech_ms: int = 200,
        end_silence_ms: int = 800,
        complete_silence_ms: int | None = None,
        final_silence_ms: int | None = None,
        settled_silence_ms: int | None = None,
        quiet_silence_ms: int | None = None,
    ) -> None:
        self.frame_ms = frame_ms
        self._need = max(1, min_speech_ms // frame_ms)
        self._window: deque[bool] = deque(maxlen=max(self._need + self._need // 2, 1))
        self._end_frames = max(1, end_silence_ms // frame_ms)
        short = end_silence_ms if complete_silence_ms is None else complete_silence_ms
        self._complete_frames = max(1, min(short, end_silence_ms) // frame_ms)
        final = short if final_silence_ms is None else final_silence_ms
        self._final_frames = max(1, min(final, short, end_silence_ms) // frame_ms)
        # None: ``settled`` is ignored; else frames of silence it needs (0: ends at once)
        settled = settled_silence_ms
        self._settled_frames = None if settled is None else max(0, settled) // frame_ms
        quiet = end_silence_ms if quiet_silence_ms is None else quiet_silence_ms
        self._quiet_frames = max(1, min(quiet, end_silence_ms) // frame_ms)
        self.complete = False  # set by the listener: what was heard so far is a whole phrase
        self.final = False  # ... that no other expected phrase extends
        self.settled = False  # ... and the recogniser heard the caller stop
        self.quiet = False  # set by the listener: the recogniser has heard no speech lately
        self.ended_by: str | None = None  # settled / final / complete / quiet / silence
        self._silent = 0
        self.in_speech = False
        self.speech_ms = 0
        self.elapsed_ms = 0

    @property
    def silence_ms(self) -> int:
        """Silence since the last voiced frame (at an "end" event: the window that ended it)."""
        return self._silent * self.frame_ms

    def feed(self, voiced: bool) -> VadEvent | None:
        """Account one frame; return an event when speech starts or the utterance ends."""
        self.elapsed_ms += self.frame_ms
        if not self.in_speech:
            self._window.append(voiced)
            if sum(self._window) >= self._need:
                self.in_speech = True
                self._silent = 0
                self.speech_ms = sum(self._window) * self.frame_ms
                return VadEvent("start", self.elapsed_ms)
            return None
        if voiced:
            self._silent = 0
            self.speech_ms += self.frame_ms
        else:
            self._silent += 1
        settled = self.settled and self._settled_frames is not None
        if settled and self._silent >= (self._settled_frames or 0):
            self.ended_by = "settled"
        elif not voiced and self._silent >= self._window_frames():
            self.ended_by = self._window_kind()
        else:
            return None
        self.in_speech = False
        self._window.clear()
        return VadEvent("end", self.elapsed_ms)

    def _window_frames(self) -> int:
        """The silence that ends the utterance now, in frames."""
        if self.final:
            return self._final_frames
        if self.complete:
            return self._complete_frames
        return self._quiet_frames if self.quiet else self._end_frames

    def _window_kind(self) -> str:
        """What the window that ended the utterance was for (``ended_by``)."""
        if self.final or self.complete:
            return "final" if self.final else "complete"
        return "quiet" if self.quiet and self._quiet_frames < self._end_frames else "silence"

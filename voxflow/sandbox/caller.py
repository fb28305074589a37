"""Scripted callers: the simulated phone on the far end of a sandbox call.

A :class:`SimCall` is the far end of an inbound call it placed (``Sandbox.place_call``) or
of an outbound call the app originated to ``PJSIP/...``. It presses digits, speaks text
(espeak-ng audio sent as the caller's voice), stays silent, hangs up, and records what
the caller experienced, in order, with times relative to the call's start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from voxflow.errors import CallEndedError

from .audio import (
    FRAME_SAMPLES,
    Frame,
    add_noise,
    check_caller_voice,
    espeak_pcm16_async,
    frames_from_pcm16,
)

if TYPE_CHECKING:
    from .model import Channel
    from .pbx import Pbx

__all__ = ["SimCall"]

_QUIET = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_QUIET.setflags(write=False)

log = logging.getLogger(__name__)


class SimCall:
    """One simulated phone. ``direction`` is ``"inbound"`` (it called the PBX) or
    ``"outbound"`` (the PBX called it). Once answered it sends 20 ms silence frames while
    quiet, or nothing at all with ``dtx=True``."""

    def __init__(
        self,
        pbx: Pbx,
        *,
        direction: str,
        from_: str,
        to: str,
        app: str,
        record_heard: bool = True,
        dtx: bool = False,
    ) -> None:
        self._pbx = pbx
        self.dtx = dtx
        self.direction = direction
        self.from_ = from_
        self.to = to
        self.app = app
        self.id = ""
        self.channel: Channel | None = None
        self.state = "ringing" if direction == "inbound" else "alerting"
        self.hangup_cause: int | None = None
        self.hangup_by: str | None = None
        self._record_heard = record_heard
        self._t0 = pbx.clock.now()
        self._exp: list[dict[str, Any]] = []
        self._speech: deque[Frame] = deque()
        self._speech_done: list[tuple[int, asyncio.Future[None]]] = []
        self._spoken_count = 0
        self._queued_count = 0
        self._heard: list[tuple[int, Frame]] = []
        self._first_tick: int | None = None
        self._last_tick = 0
        self._audio_open: dict[str, Any] | None = None
        self._ended = asyncio.Event()
        self._changed = asyncio.Event()

    # --- FarEnd ----------------------------------------------------------------------------

    def _t(self) -> float:
        return round(self._pbx.clock.now() - self._t0, 3)

    def _note(self, kind: str, **data: Any) -> dict[str, Any]:
        entry = {"t": self._t(), "type": kind, **data}
        self._exp.append(entry)
        self._changed.set()
        return entry

    @property
    def wants_tick(self) -> bool:
        return bool(self._speech) or self._audio_open is not None

    def next_spoken(self) -> Frame | None:
        if not self._speech:
            # A phone sends 20 ms of silence while its user is quiet; with ``dtx`` (silence
            # suppression, DTX, many trunks) it sends nothing.
            return None if self.dtx or self.state != "up" else _QUIET
        frame = self._speech.popleft()
        self._spoken_count += 1
        while self._speech_done and self._speech_done[0][0] <= self._spoken_count:
            fut = self._speech_done.pop(0)[1]
            if not fut.done():
                fut.set_result(None)
        return frame

    def hear(self, frame: Frame | None, tick: int) -> None:
        if self._first_tick is None:
            self._first_tick = tick
        self._last_tick = tick
        audible = frame is not None and bool(frame.any())
        if audible and frame is not None:
            if self._record_heard:
                self._heard.append((tick, frame))
            if self._audio_open is None:
                self._audio_open = self._note("audio", start=self._t(), end=None)
        elif self._audio_open is not None:
            self._audio_open["end"] = self._t()
            self._audio_open = None

    def far_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "answered":
            self.state = "up"
            self._note("answered")
        elif kind == "hangup":
            self._ended_by(data.get("cause", 16), data.get("by", "pbx"))
        elif kind == "dtmf":
            self._note("dtmf", digit=data["digit"], duration_ms=data["duration_ms"])
        elif kind == "playback":
            self._note("playback", **data)
        elif kind == "bridge":
            self._note("bridge", bridge=data["bridge"], partners=data["partners"])
        elif kind in ("continue", "redirect", "ringing", "recorded", "hold", "unhold", "moh"):
            self._note(kind, **data)
        else:
            self._note(kind, **data)

    def _ended_by(self, cause: int, by: str) -> None:
        if self._ended.is_set():
            return
        if self._audio_open is not None:
            self._audio_open["end"] = self._t()
            self._audio_open = None
        self.state = "ended"
        self.hangup_cause = cause
        self.hangup_by = by
        self._note("hangup", cause=cause, by=by)
        self._speech.clear()
        for _, fut in self._speech_done:
            if not fut.done():
                fut.set_exception(CallEndedError("the call ended while the caller was speaking"))
                fut.exception()  # retrieved: nobody may be awaiting it
        self._speech_done.clear()
        self._ended.set()

    # --- what the script does --------------------------------------------------------------

    def _live_channel(self) -> Channel:
        ch = self.channel
        if ch is None or ch.hungup or self._ended.is_set():
            raise CallEndedError(f"call {self.id or '(not connected)'} has ended")
        return ch

    async def press(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 100) -> None:
        """Press DTMF digits; each arrives as ChannelDtmfReceived at the end of its tone."""
        bad = [d for d in digits if d.upper() not in "0123456789ABCD*#"]
        if bad:
            raise ValueError(f"not a DTMF digit: {bad[0]!r}")
        for i, d in enumerate(digits.upper()):
            self._live_channel()
            self._note("pressed", digit=d)
            await self._pbx.clock.sleep(duration_ms / 1000)
            ch = self._live_channel()
            self._pbx.dtmf_received(ch, d, duration_ms)
            if i < len(digits) - 1:
                await self._pbx.clock.sleep(gap_ms / 1000)

    async def say_audio(self, pcm16: bytes, *, label: str = "") -> None:
        """Send 8 kHz pcm16 as the caller's voice; returns once it has all been sent."""
        self._live_channel()
        frames = frames_from_pcm16(pcm16)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued_count += len(frames)
        self._speech.extend(frames)
        self._speech_done.append((self._queued_count, fut))
        self._pbx.wake_media()
        entry = self._note("said", text=label, start=self._t(), end=None)
        await fut
        entry["end"] = self._t()

    async def say(
        self,
        text: str,
        *,
        voice: str = "en-us",
        speed: int = 160,
        noise_snr_db: float | None = None,
    ) -> None:
        """Speak ``text`` into the call as the caller: espeak-ng ``voice`` (``en-us``, ``en-gb``,
        ``en-us+f3``...) at ``speed`` words per minute, 8 kHz, with white background noise
        ``noise_snr_db`` below the speech when given. It reaches the app as G.711 (or the
        channel's codec), like a phone's voice."""
        check_caller_voice(voice, speed)
        self._live_channel()
        pcm = await espeak_pcm16_async(text, voice=voice, speed=speed)
        if noise_snr_db is not None:
            pcm = add_noise(pcm, noise_snr_db, seed=len(text))
        await self.say_audio(pcm, label=text)

    async def silence(self, seconds: float) -> None:
        """Stay quiet for ``seconds`` (of the sandbox clock)."""
        self._note("silence", seconds=seconds)
        await self._pbx.clock.sleep(seconds)

    async def hangup(self, cause: int = 16) -> None:
        """The caller hangs up (idempotent)."""
        ch = self.channel
        if self._ended.is_set():
            return
        self._ended_by(cause, "caller")
        if ch is not None and not ch.hungup:
            if ch.state != "Up" and ch.ari_created:
                self._pbx.destroy_unanswered(ch, cause)
            else:
                self._pbx.hangup(ch, cause, from_far=True)

    async def hold(self, music_class: str = "") -> None:
        """The phone puts the call on hold (a SIP re-INVITE): the app gets ChannelHold."""
        ch = self._live_channel()
        self._note("held", music_class=music_class)
        fields = {"musicclass": music_class} if music_class else {}
        self._pbx.emit_channel("ChannelHold", ch, **fields)

    async def unhold(self) -> None:
        """The phone takes the call off hold: the app gets ChannelUnhold."""
        ch = self._live_channel()
        self._note("unheld")
        self._pbx.emit_channel("ChannelUnhold", ch)

    async def answer(self) -> None:
        """Answer an outbound call that is ringing (behaviour ``ring``)."""
        ch = self._live_channel()
        self._pbx.far_answer(ch)

    async def reject(self, status: str = "busy") -> None:
        """Reject a ringing outbound call: ``busy`` or ``congestion``."""
        ch = self._live_channel()
        cause = {"busy": 17, "congestion": 34}.get(status)
        if cause is None:
            raise ValueError("status must be 'busy' or 'congestion'")
        self._pbx.dial_event(ch, status.upper(), ch.variables.get("__dial_target", ""))
        self._pbx.destroy_unanswered(ch, cause)

    # --- what the test reads ---------------------------------------------------------------

    def experience(self) -> list[dict[str, Any]]:
        """What the caller saw and heard, in order (copies)."""
        return [dict(e) for e in self._exp]

    def heard_audio(self) -> bytes:
        """Everything the caller heard, 8 kHz pcm16, silences included."""
        if not self._heard or self._first_tick is None:
            return b""
        start = self._first_tick
        total = self._last_tick - start + 1
        out = np.zeros(total * FRAME_SAMPLES, dtype=np.int16)
        for tick, frame in self._heard:
            i = (tick - start) * FRAME_SAMPLES
            out[i : i + FRAME_SAMPLES] = frame
        return out.astype("<i2").tobytes()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_hangup(self, timeout: float = 30.0) -> int:
        """Wait (real seconds) until the call ends; returns the hang-up cause."""
        await asyncio.wait_for(self._ended.wait(), timeout)
        return self.hangup_cause or 0

    async def wait_for(self, kind: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """Wait (real seconds) for an experience entry of ``kind`` whose fields match."""

        def find() -> dict[str, Any] | None:
            for e in self._exp:
                if e["type"] == kind and all(e.get(k) == v for k, v in match.items()):
                    return e
            return None

        async def loop() -> dict[str, Any]:
            while True:
                self._changed.clear()
                got = find()
                if got is not None:
                    return dict(got)
                if self._ended.is_set() and kind != "hangup":
                    raise CallEndedError(f"call ended before {kind} {match or ''}")
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def wait_answered(self, timeout: float = 30.0) -> None:
        """Wait (real seconds) until the PBX side answered."""
        await self.wait_for("answered", timeout)

    def __repr__(self) -> str:
        return f"SimCall(id={self.id!r}, {self.direction}, {self.from_}->{self.to}, {self.state})"

"""record on the sandbox: Asterisk's maxSilenceSeconds ends the recording (done), and a recording
in which nothing was heard is noinput."""

from __future__ import annotations

import asyncio
import contextlib
import math
from array import array
from pathlib import Path

import numpy as np
from _e2e_kit import serving

from voxflow.errors import CallEndedError
from voxflow.runtime.events import End
from voxflow.sandbox.audio import espeak_pcm16_async

FLOW = """flow rec_silence "Record silence":
    answers "400"
    timeout 5s

var message: string

state main:
    answer
    record "rs-{{ call.id }}" into message max MAXs silence 1s:
        on done:
            hangup "saved"
        on noinput:
            hangup "nothing heard"
        on error:
            hangup "record error"
"""


def _tone(seconds: float) -> bytes:
    n = int(8000 * seconds)
    return array(
        "h", (int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(n))
    ).tobytes()


async def test_silence_after_speech_ends_the_recording_as_done(tmp_path: Path) -> None:
    flow = tmp_path / "rec_silence.flow"
    flow.write_text(FLOW.replace("MAX", "60"))
    async with serving([flow]) as env:
        call = await env.call("400")
        await env.wait_line(call, "recording ")
        await call.say_audio(_tone(2.5), label="a message")
        # 1 s of silence ends it (Asterisk's maxSilenceSeconds), long before the 60 s maximum
        end = await env.result(call, timeout=20.0)
        assert end == End("completed", "saved")
        rec = [e for e in call.experience() if e["type"] == "recorded"]
        assert rec and rec[0]["duration"] >= 1


async def test_a_recording_with_nothing_said_is_noinput(tmp_path: Path) -> None:
    flow = tmp_path / "rec_silence.flow"
    flow.write_text(FLOW.replace("MAX", "2"))
    async with serving([flow]) as env:
        call = await env.call("400")
        assert await env.result(call, timeout=20.0) == End("completed", "nothing heard")


def _line_hiss(seconds: float) -> bytes:
    """A quiet phone line: low-level noise (mean |sample| ~25, far under Asterisk's
    silence threshold of 256), never digital zero."""
    rng = np.random.default_rng(7)
    return rng.integers(-50, 51, int(8000 * seconds)).astype("<i2").tobytes()


async def test_speech_then_a_quiet_line_ends_the_recording_after_max_silence(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "rec_silence.flow"
    flow.write_text(FLOW.replace("MAX", "60"))
    speech = await espeak_pcm16_async("I would like to leave a message for the support team")
    speech_s = len(speech) / 16000
    hiss_s = 8.0
    async with serving([flow]) as env:
        call = await env.call("400")
        await env.wait_line(call, "recording ")
        talking = asyncio.create_task(
            call.say_audio(speech + _line_hiss(hiss_s), label="a message, then a quiet line")
        )
        try:
            end = await env.result(call, timeout=30.0)
        finally:
            with contextlib.suppress(CallEndedError):
                await asyncio.wait_for(talking, 30.0)
        assert end == End("completed", "saved")  # the flow went on with 'done'
        said = next(e for e in call.experience() if e["type"] == "said")
        rec = next(e for e in call.experience() if e["type"] == "recorded")
        # ended by 1 s of (quiet, not digital) silence after the speech, not by the line going
        # quiet for good or the caller hanging up; the trailing silence is not in the file
        assert rec["t"] - said["start"] < speech_s + 3.0 < speech_s + hiss_s
        assert speech_s - 1.5 <= rec["duration"] <= speech_s + 1.0

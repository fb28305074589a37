"""record on the sandbox: Asterisk's maxSilenceSeconds ends the recording (done), and a recording
in which nothing was heard is noinput."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

from _e2e_kit import serving

from voxflow.runtime.events import End

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

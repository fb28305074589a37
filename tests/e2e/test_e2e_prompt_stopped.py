"""A prompt the flow stops (not interrupted by the key: it takes no DTMF barge-in) while it
plays, and a new ``say`` started in the same step, over real ARI and RTP on the sandbox."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _e2e_kit import serving, until

from voxflow.media.callmedia import create_call_voice
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.events import End

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

LONG = (
    "Please leave your message after the tone, and press pound when you are done with it."
    " You can also press zero at any time to speak to an operator instead."
)
RECORD = f"""\
flow stopped "an anytime key stops a record's prompt that takes no barge-in":
    answers "100"
    voice "en-us"
    bargein speech

scope commands:
    anytime 0 -> operator

    state start:
        answer
        record "vm-{{{{ call.id }}}}" into message max 30s silence 4s:
            prompt "{LONG}"
            on done, noinput, exhausted, error -> done

state operator:
    say "Operator."
    hangup "operator"

state done:
    hangup "none"
"""


async def test_a_command_key_stops_a_record_prompt_and_the_next_say_plays(tmp_path: Path) -> None:
    """A record's prompt takes no DTMF barge-in (the flow's ``bargein speech``): the anytime
    key is not an interruption, the flow stops the prompt's op and the command's state starts
    its ``say`` in the same step. It used to fail: 'another prompt is already playing'."""
    (tmp_path / "stopped.flow").write_text(RECORD)
    app = {"tts": EspeakTTS(sample_rate=8000), "voice_factory": create_call_voice}
    async with serving([tmp_path / "stopped.flow"], app=app) as env:
        cache = env.app.prompt_cache
        assert cache is not None
        await until(lambda: cache.stats.entries >= 2, "the prompts warmed")
        call = await env.call("100")
        await until(lambda: len(call.heard_audio()) > 8000, "the prompt heard")
        pressed_at = len(call.heard_audio())
        await call.press("0")
        assert await env.result(call) == End("completed", "operator")
        after_key = (len(call.heard_audio()) - pressed_at) / 16000
    # the record's prompt (~9 s) ended at the key; "Operator." (~1 s) was heard right after it
    assert after_key < 3.0
    assert env.said(call) == [LONG, "Operator."]
    assert env.states(call) == ["start", "operator"]

"""A flow's speech menu on the sandbox with a DTX phone (no RTP while the caller is silent, as
from phones with silence suppression, trunks or Local channels; capture rtp-silence.json): the
answer is recognised soon after the caller stops talking, not after the 15 s utterance cap."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _e2e_kit import say_after_prompt, serving
from shared_stt import shared_stt

from voxflow.runtime.events import End

FLOW = """flow speech_dtx "Speech with DTX":
    answers "500"
    timeout 5s

state main:
    answer
    menu "Say sales or support.":
        "sales" -> sales
        "support" -> support
        on noinput, nomatch, exhausted -> nothing

state sales:
    hangup "sales"

state support:
    hangup "support"

state nothing:
    hangup "nothing"
"""


async def test_a_spoken_menu_answer_from_a_dtx_phone_is_recognised_promptly(
    tmp_path: Path,
) -> None:
    media = pytest.importorskip("voxflow.media.callmedia")
    espeak = pytest.importorskip("voxflow.media.tts_espeak")
    pytest.importorskip("voxflow.media.stt_pocketsphinx")
    flow = tmp_path / "speech_dtx.flow"
    flow.write_text(FLOW)
    app = {
        "tts": espeak.EspeakTTS(sample_rate=8000),
        "stt": shared_stt(),
        "voice_factory": media.create_call_voice,
    }
    sandbox = {"caller_dtx": True, "stasis_delay": (0.0003, 0.03)}
    loop = asyncio.get_running_loop()
    async with serving([flow], app=app, sandbox=sandbox) as env:
        call = await env.call("500")
        await say_after_prompt(call, "sales")
        said = loop.time()
        end = await env.result(call, timeout=30)
        took = loop.time() - said
    assert end == End("completed", "sales")
    assert took < 3.0  # end-silence (800 ms) + recognition, not the 15 s cap

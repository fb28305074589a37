"""The example IVR's main menu on the sandbox, spoken (issue 18): RTP in G.711 -> VAD ->
pocketsphinx with the menu's grammar, its confidence and the noise-floor check -> the flow's
choice. A menu word reaches its state; a sentence outside the grammar is the flow's ``nomatch``,
never a department."""

from __future__ import annotations

from pathlib import Path

import pytest
from _e2e_kit import Env, say_after_prompt, serving
from shared_stt import shared_stt

from voxflow.runtime.config import Settings
from voxflow.runtime.events import End

FLOW = """flow speech_check "main_ivr's main menu, spoken":
    answers "502"
    timeout 20s  # prompt lengths and caller timing on a loaded machine
    confidence 0.6

state main:
    answer
    menu "Say sales, support or billing.":
        "sales" -> sales
        "support" -> support
        "billing", "pay my bill" -> billing
        "operator", "agent" -> operator
        on nomatch -> not_understood
        on noinput, exhausted -> nothing

state sales:
    hangup "sales"

state support:
    hangup "support"

state billing:
    hangup "billing"

state operator:
    hangup "operator"

state not_understood:
    hangup "nomatch"

state nothing:
    hangup "nothing"
"""


async def _answer(env: Env, words: str) -> End:
    """One call: wait for the whole prompt, say ``words``, return how the flow ended."""
    call = await env.call("502")
    await say_after_prompt(call, words)
    return await env.result(call, timeout=30)


async def test_a_menu_word_is_routed_and_a_sentence_outside_the_menu_is_a_nomatch(
    tmp_path: Path,
) -> None:
    media = pytest.importorskip("voxflow.media.callmedia")
    espeak = pytest.importorskip("voxflow.media.tts_espeak")
    sphinx = pytest.importorskip("voxflow.media.stt_pocketsphinx")
    flow = tmp_path / "speech_check.flow"
    flow.write_text(FLOW)
    stt = shared_stt()
    await stt.warm_up(sphinx.DECODERS_PER_DECISION)
    app = {
        "tts": espeak.EspeakTTS(sample_rate=8000),
        "stt": stt,
        "voice_factory": media.create_call_voice,
    }
    async with serving([flow], app=app, settings=Settings(grace_period=5)) as env:
        assert await _answer(env, "operator") == End("completed", "operator")
        assert await _answer(env, "I want to leave a message") == End("completed", "nomatch")

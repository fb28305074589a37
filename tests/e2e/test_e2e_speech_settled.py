"""A spoken menu answer on the sandbox is decided as soon as the recogniser has heard a whole
final phrase and the caller stop (``settled``), not after the VAD's final-phrase window; the
trace's ``input`` record says what ended the utterance (``endpoint``) and the silence it waited
for (``silence_ms``), and with settling turned off (``listen_settled_silence_ms`` -1) the VAD's
window ends it, as before. Under load the decoder thread can fall behind the caller; the record's
``behind_ms`` then says whether it was too far behind to have settled in time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _e2e_kit import say_after_prompt, serving
from shared_stt import shared_stt

from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.runtime.config import Settings
from voxflow.runtime.events import End

FLOW = """flow speech_settled "A spoken menu decided early":
    answers "503"
    timeout 20s  # prompt lengths and caller timing on a loaded machine
    confidence 0.6

state main:
    answer
    menu "Say sales, support or operator.":
        "sales" -> sales
        "support" -> support
        "operator", "agent" -> operator
        on nomatch -> not_understood
        on noinput, exhausted -> nothing

state sales:
    hangup "sales"

state support:
    hangup "support"

state operator:
    hangup "operator"

state not_understood:
    hangup "nomatch"

state nothing:
    hangup "nothing"
"""


async def _spoken_input(
    tmp_path: Path, stt: PocketSphinxSTT, options: dict[str, int]
) -> tuple[End, dict[str, Any]]:
    """One call saying "operator" with these media options: how the flow ended, and the
    trace's spoken ``input`` record."""
    media = pytest.importorskip("voxflow.media.callmedia")
    espeak = pytest.importorskip("voxflow.media.tts_espeak")
    flow = tmp_path / "speech_settled.flow"
    flow.write_text(FLOW)
    traces = tmp_path / f"traces{len(options)}"  # one directory per call
    app = {
        "tts": espeak.EspeakTTS(sample_rate=8000),
        "stt": stt,
        "voice_factory": media.create_call_voice,
        "media_options": options,
    }
    settings = Settings(grace_period=5, trace_dir=str(traces))
    async with serving([flow], app=app, settings=settings) as env:
        call = await env.call("503")
        await say_after_prompt(call, "operator")
        end = await env.result(call, timeout=30)
    [path] = list(traces.glob("*.jsonl"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    [heard] = [r for r in records if r["type"] == "input" and r.get("kind") == "speech"]
    return end, heard


# Settling needs the recogniser to have decoded ~100-350 ms of the caller's silence (its last word
# and phone 100 ms behind, the searches' own lag); the endpointer counts the VAD's silence as the
# packets arrive. A recogniser this far behind the caller when a 800 ms window ended the utterance
# could not have settled it yet: only then may the window, not the settled end, decide.
_SETTLE_IN_MS = 800 - 400


async def test_a_final_phrase_is_decided_when_the_recogniser_settles_and_traced_so(
    tmp_path: Path,
) -> None:
    stt = shared_stt()
    await stt.warm_up(DECODERS_PER_DECISION)
    # the VAD's windows as long as the menu's 800 ms: the recogniser settles well before one
    # ends the utterance, unless the decoder thread is far behind the caller (load 15-20 here):
    # then the window decides, as it must, and the trace says how far behind it was. The
    # silence waited for (``silence_ms``) is counted in frames, whatever the load; the time to
    # the decision (``latency_ms``) is not (tests/media/test_media_listen_latency.py pins the
    # settled end in virtual time).
    slow = {"listen_complete_silence_ms": 800, "listen_final_silence_ms": 800}
    end, heard = await _spoken_input(tmp_path, stt, slow)
    assert end == End("completed", "operator")
    assert heard["text"] == "operator"
    if heard["endpoint"] == "settled":
        assert heard["silence_ms"] < 800
    else:  # a window ended it: only a recogniser too far behind to have settled may let it
        assert heard["endpoint"] in ("final", "silence") and heard["silence_ms"] >= 800
        assert heard["behind_ms"] >= _SETTLE_IN_MS, heard
    end, heard = await _spoken_input(tmp_path, stt, {**slow, "listen_settled_silence_ms": -1})
    assert end == End("completed", "operator")
    assert heard["silence_ms"] >= 800  # the VAD's window, however soon the recogniser settled
    if heard["endpoint"] != "final":  # the window after a final phrase; or behind, any window
        assert heard["endpoint"] == "silence" and heard["behind_ms"] >= _SETTLE_IN_MS, heard

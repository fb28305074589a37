"""A flow's ``confidence`` on the sandbox: the step's threshold reaches the recogniser per
recognition (the app's PocketSphinxSTT keeps its own default of 0), a spoken answer under it is a
``nomatch`` (never a choice), the trace's ``input`` record carries the recognition's confidence,
alternatives, threshold and latency, and ``voxflow replay`` reproduces the call from that
trace."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _e2e_kit import say_after_prompt, serving
from shared_stt import shared_stt

from voxflow.runtime.config import Settings
from voxflow.runtime.events import End
from voxflow.testing.replay import replay_trace
from voxflow.voice.providers import SttStream

FLOW = """flow speech_conf "Speech with a confidence":
    answers "501"
    timeout 20s  # replay's prompt lengths and caller timing are estimates on a loaded machine
    confidence 0.2

state main:
    answer
    menu "Say sales or support.":
        confidence 1.0
        "sales" -> sales
        "support" -> support
        on nomatch -> not_understood
        on noinput, exhausted -> nothing

state sales:
    hangup "sales"

state support:
    hangup "support"

state not_understood:
    hangup "nomatch"

state nothing:
    hangup "nothing"
"""


class _Recording:
    """The app's real recogniser, noting the threshold each recognition asks for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sample_rate: int = inner.sample_rate
        self.asked: list[float | None] = []

    async def open_stream(
        self,
        *,
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        min_confidence: float | None = None,
    ) -> SttStream:
        self.asked.append(min_confidence)
        stream: SttStream = await self.inner.open_stream(
            phrases=phrases, language=language, min_confidence=min_confidence
        )
        return stream


async def test_a_step_confidence_rejects_per_recognition_and_is_traced(tmp_path: Path) -> None:
    media = pytest.importorskip("voxflow.media.callmedia")
    espeak = pytest.importorskip("voxflow.media.tts_espeak")
    pytest.importorskip("voxflow.media.stt_pocketsphinx")
    flow = tmp_path / "speech_conf.flow"
    flow.write_text(FLOW)
    stt = _Recording(shared_stt())
    assert stt.inner.min_confidence == 0.0  # the app's own default would accept the answer
    # As `voxflow run` does, the decoders are built before the call: built at the first listen
    # they hold the GIL (~1.5 s of CPU, ten times that on a loaded machine) after the caller
    # began to speak, and the recognition then ends long after the speech, later than the
    # trace (and so the replay) can account for.
    await stt.inner.warm_up()
    app = {
        "tts": espeak.EspeakTTS(sample_rate=8000),
        "stt": stt,
        "voice_factory": media.create_call_voice,
    }
    traces = tmp_path / "traces"
    settings = Settings(grace_period=5, trace_dir=str(traces))
    async with serving([flow], app=app, settings=settings) as env:
        call = await env.call("501")
        await say_after_prompt(call, "sales")
        end = await env.result(call, timeout=30)
    assert end == End("completed", "nomatch")
    [path] = list(traces.glob("*.jsonl"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    [heard] = [r for r in records if r["type"] == "input" and r.get("kind") == "speech"]
    assert heard["text"] == ""  # rejected: the flow's nomatch
    assert heard["min_confidence"] == 1.0  # the step's, not the flow's 0.2 nor the STT's 0
    assert stt.asked == [1.0]  # and the recogniser was asked for it, for this recognition
    # a confidence when the decoder had a hypothesis (on a loaded machine it may have none)
    assert 0.0 <= heard.get("confidence", 0.0) < 1.0
    # the endpointer's silence (at least listen_settled_silence_ms, 60 ms, after a final phrase
    # the recogniser settled), then the decoding
    assert heard["latency_ms"] >= 60
    assert all(alt in ("sales", "support") for alt in heard.get("alternatives", []))
    report = replay_trace(path, str(flow))
    assert report.same, report.render()
    assert report.result is not None and "not_understood" in report.result.states

"""The noise-floor check of a pocketsphinx grammar decision (issue 18), on real espeak-ng audio
over a G.711 leg: a phrase the grammar alone misroutes on clean audio becomes a nomatch, the
check's veto, the check running at finish when no decoder is spare, and every choice of the
example IVR's menus: recognised or a nomatch, never another choice."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from call_audio import call_audio
from media_rig import until_stopped
from shared_stt import shared_stt

from voxflow.compiler import compile_flow
from voxflow.ir import models as ir
from voxflow.media import codecs, stt_check, stt_pocketsphinx
from voxflow.media.interpolate import stt_resampler
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.runtime.matching import _matches
from voxflow.voice.providers import Transcript

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

FLOW = Path(__file__).resolve().parents[2] / "flows" / "main_ivr.flow"
DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
MAIN = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
STT = shared_stt()


async def _recognise(
    audio: bytes, phrases: list[str], stt: PocketSphinxSTT = STT
) -> tuple[Transcript, str | None]:
    """The transcript (threshold 0.6, fed in 20 ms pieces) and what the check search heard."""
    stream = await stt.open_stream(phrases=phrases, min_confidence=0.6)
    try:
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
        return await stream.finish(), stream.check
    finally:
        await stream.aclose()


def _menus() -> list[list[tuple[str, tuple[str, ...]]]]:
    """Each spoken menu of main_ivr: (choice, its phrases), the state's anytime commands too."""
    flow = compile_flow(FLOW.read_text(), str(FLOW)).flow
    assert flow is not None
    menus = []
    for state in flow.states.values():
        for step in state.steps:
            if isinstance(step, ir.GatherStep) and any(c.phrases for c in step.choices):
                menu = [(c.value, c.phrases) for c in step.choices if c.phrases]
                menus.append(menu + [(c.name, c.phrases) for c in state.commands if c.phrases])
    return menus


async def test_a_phrase_the_grammar_alone_misroutes_on_clean_audio_is_a_nomatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Clean en-gb "sales": its /s/ is near silence below 4 kHz, and with the dictionary's own
    # pronunciations only (no stt_lexicon variant "sales(2)" without the /s/) the grammar's best
    # path is "pay my bill" with a high confidence; the search over the noise floor hears "sales".
    monkeypatch.setattr(stt_pocketsphinx, "add_variants", lambda decoder, words: [])
    plain = PocketSphinxSTT(max_decoders=1)  # decoders of its own, with no variant added
    result, check = await _recognise(await call_audio("sales", "en-gb", 140), MAIN, plain)
    assert result.alternatives[0] == "pay my bill" and (result.confidence or 0) >= 0.6
    assert check == "sales"
    assert result.text == ""  # the caller is asked again, not sent to billing


async def test_the_check_vetoes_a_confident_result_it_does_not_hear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audio = await call_audio("operator")
    heard, check = await _recognise(audio, MAIN)
    assert heard.text == "operator" == check
    monkeypatch.setattr(stt_check, "CHECK_SIGMA", 20000.0)  # the check hears only noise
    drowned, check = await _recognise(audio, MAIN)
    assert check != "operator" and drowned.text == ""
    # the confidence itself is the grammar's: the same but for the third decimal, which moved by
    # 0.001 in some test orders once stt_lexicon added variants (which decoder of the pool ran
    # which search before matters that much; not found why)
    assert drowned.confidence == pytest.approx(heard.confidence, abs=0.005)


async def test_with_no_spare_decoder_the_check_runs_at_finish_to_the_same_result() -> None:
    audio = until_stopped(await call_audio("sales", "en-gb", 140))
    alone = PocketSphinxSTT(max_decoders=1)  # one decoder: the check runs at finish on it
    late = await _recognise(audio, MAIN, alone)
    assert alone.stats().built == 1
    await STT.warm_up()
    assert STT.spare() == DECODERS_PER_DECISION
    assert await _recognise(audio, MAIN, STT) == late  # every search streamed
    # the check heard "sales" too; accepted or not is the confidence's (0.62 against 0.6 here)
    assert late[1] == "sales" and late[0].text in ("", "sales")


async def test_the_check_hears_the_phrase_its_n_best_puts_first() -> None:
    # What bench/speech.py fed the recogniser for clean en-us+f3 "agent" (tests/data/speech): the
    # check's best path is another phrase ("pay"), its n-best's first phrase "agent", which
    # counts as the check hearing it. The same with the check run at finish on the one decoder.
    pcm = codecs.ulaw_decode((DATA / "agent-en-us+f3-140.ulaw").read_bytes())
    alone = PocketSphinxSTT(max_decoders=1)  # one decoder: the check runs at finish on it
    for stt in (STT, alone):  # every search streamed (the shared pool: a decision's three)
        resampler = stt_resampler(8000, 16000)
        stream = await stt.open_stream(phrases=MAIN, min_confidence=0.01)  # the check runs
        try:
            for i in range(0, len(pcm), 320):  # 20 ms frames, as CallMedia hands them over
                await stream.feed(resampler.process(pcm[i : i + 320]))
            await stream.feed(resampler.process(b"", last=True))
            result = await stream.finish()
        finally:
            await stream.aclose()
        assert stream.check != "agent" and stream.check_nbest == "agent"
        assert result.text == "agent"


async def test_every_choice_of_the_example_ivr_is_recognised_or_a_nomatch_never_another() -> None:
    menus = _menus()
    assert len(menus) == 2  # the main menu and the billing menu
    recognised = spoken = 0
    for menu in menus:
        phrases = [p for _, ps in menu for p in ps]
        for value, said in [(v, p) for v, ps in menu for p in ps]:
            result, _ = await _recognise(await call_audio(said), phrases)
            routed = [
                v for v, ps in menu if result.text and _matches(result.text, "speech", (), ps, ())
            ]
            assert routed in ([], [value]), f"{said!r} was heard as {result.text!r}"
            recognised += routed == [value]
            spoken += 1
        oog, _ = await _recognise(await call_audio("I want to leave a message"), phrases)
        assert oog.text == ""  # outside the grammar: a nomatch
    assert recognised >= spoken * 2 // 3, f"only {recognised} of {spoken} phrases recognised"


class _Recorder:
    """The one decoder method ``CheckFeed`` calls: what it was handed, call by call."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def process_raw(self, data: bytes, no_search: bool, full_utt: bool) -> None:
        assert not no_search and not full_utt
        self.calls.append(data)


def test_the_check_hears_the_same_noise_floor_however_late_it_catches_up() -> None:
    rng = np.random.default_rng(7)
    pieces = [rng.integers(-3000, 3000, n).astype("<i2").tobytes() for n in (480, *[160] * 40)]
    streamed, late = _Recorder(), _Recorder()
    now, later = stt_check.CheckFeed(), stt_check.CheckFeed()
    for piece in pieces:
        now.add(piece)
        now.catch_up(streamed)  # decoded as it comes
        later.add(piece)
    later.catch_up(late)  # decoded in one go when its result is needed
    assert late.calls == streamed.calls  # the same pieces, the same noise
    assert [len(c) for c in late.calls] == [len(p) for p in pieces]
    assert streamed.calls[5] != pieces[5]  # the floor was added


async def test_a_phrase_rejected_anyway_is_not_searched_by_the_check() -> None:
    # The check can only veto: out-of-grammar speech whose confidence is under the threshold is
    # decided without it (its audio is never decoded: issue 18, session 11); the same decision.
    audio = await call_audio("I want to leave a message")
    rejected, check = await _recognise(audio, MAIN)
    assert rejected.text == "" and (rejected.confidence or 0) < 0.6 and rejected.alternatives
    assert check is None
    heard, check = await _recognise(await call_audio("operator"), MAIN)
    assert heard.text == "operator" == check  # accepted: the check was searched and agreed


async def test_every_decision_is_logged_at_debug_with_what_decided_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=stt_pocketsphinx.log.name)
    heard, _ = await _recognise(await call_audio("operator"), MAIN)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decision")]
    assert len(lines) == 1 and heard.text == "operator"
    assert lines[0].startswith("decision 'operator': grammar 'operator' n-best ['operator'")
    assert "check 'operator' / None" in lines[0] and "decoders streamed" in lines[0]

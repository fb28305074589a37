"""The streaming endpointer's "likely phrase" gate (``stt_likely``), on recorded recogniser input
(tests/data/speech: what bench/speech.py's path handed pocketsphinx, 8 kHz mu-law): a right answer
whose partial n-best margin is noise settles at once, a lead-in the searches hear as a phrase for
a moment or that the caller went on after does not end the utterance in the pause."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shared_stt import shared_stt

from voxflow.media import codecs, stt_pocketsphinx
from voxflow.media.interpolate import stt_resampler
from voxflow.media.stt_confidence import MARGIN_CAP, Features
from voxflow.media.stt_likely import LIKELY_CONFIDENCE, LIKELY_STABLE, Evidence, Stability, likely
from voxflow.media.stt_pocketsphinx import (
    PocketSphinxStream,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
MAIN = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
BILLING = ["pay", "balance", "back", "main menu", "operator", "agent"]
STT = shared_stt()  # a decision's three decoders, the default pool (tests/shared_stt.py)
LOUD = 328  # -40 dBFS


async def _settled_at(name: str, phrases: list[str] = MAIN) -> tuple[float | None, float, str]:
    """Feed the recording in 20 ms frames (as CallMedia hands them over) with a decision asked
    for: (seconds into it where the stream first said ``settled`` or None, seconds where the
    caller's last loud sample is, the decision)."""
    pcm = codecs.ulaw_decode((DATA / name).read_bytes())
    loud = np.nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > LOUD)[0]
    stopped = (int(loud[-1]) + 1) / 8000
    await STT.warm_up()
    resampler = stt_resampler(8000, 16000)
    stream = await STT.open_stream(phrases=phrases, min_confidence=0.6)
    settled: float | None = None
    try:
        for i in range(0, len(pcm), 320):
            await stream.feed(resampler.process(pcm[i : i + 320]))
            if stream.settled and settled is None:
                settled = (i + 320) / 16000
        await stream.feed(resampler.process(b"", last=True))
        result = await stream.finish()
    finally:
        await stream.aclose()
    return settled, stopped, result.text


async def test_a_right_answer_with_a_negative_partial_margin_settles() -> None:
    # Clean en-us "agent" at 140 words per minute: where both searches hear the caller stop, the
    # partial n-best puts another phrase above the best path (margin -11 per frame, noise of a
    # partial lattice), which took the confidence over the partial paths to 0.43 and the
    # utterance waited for the quiet end (600 ms of VAD silence); the margin taken as 0 it is
    # likely, and settles ~100-200 ms after the caller stopped
    settled, stopped, text = await _settled_at("agent-en-us-140.ulaw")
    assert text == "agent"
    assert settled is not None and 0 < settled - stopped < 0.3, (settled, stopped)


async def test_a_lead_in_named_as_a_phrase_only_at_its_end_does_not_settle() -> None:
    # "can I ... (500 ms) ... talk to an operator": "can I" is heard as "operator" with a
    # confidence of 0.88 and the check agreeing, but the partial result became "operator" only
    # 80 ms before both searches heard the caller stop (``LIKELY_STABLE``); when the caller goes
    # on, the searches, still behind, name it again, now stable (``went_on``)
    settled, stopped, _ = await _settled_at("can-i-talk-to-an-operator-en-us-140.ulaw")
    assert settled is None or settled > stopped, f"settled at {settled} s, stopped {stopped} s"


async def test_a_phrase_the_caller_went_on_after_does_not_settle_when_he_does() -> None:
    # "my ... (500 ms) ... balance" (en-us, 175 words per minute, the billing menu): in the pause
    # "my" is "back" at 0.46 (not likely: held), and when the caller goes on the searches, still
    # behind, say "back" again at 0.72-0.81 over the longer silence: that settled the utterance
    # before "balance" was said
    settled, stopped, _ = await _settled_at("my-balance-en-us-175.ulaw", BILLING)
    assert settled is None or settled > stopped, f"settled at {settled} s, stopped {stopped} s"


_SURE = Features(ratio=10.0, margin=5.0, outside=0.0, frames_per_phone=14.0, pace=0.5)
_HEARD = Evidence("operator", "path", _SURE, 40, ("operator",))


def test_likely_asks_the_check_stability_no_going_on_and_the_confidence() -> None:
    assert likely(_HEARD, 0.6) and likely(None, 0.6)
    assert not likely(replace(_HEARD, check=""), 0.6)
    assert likely(replace(_HEARD, check="nbest"), 0.6)
    assert likely(replace(_HEARD, check="none", features=None), 0.6)
    assert not likely(replace(_HEARD, stable=LIKELY_STABLE - 1), 0.6)
    assert not likely(replace(_HEARD, went_on=True), 0.6)
    doubtful = replace(_HEARD, features=replace(_SURE, ratio=-20.0, outside=0.4))
    assert doubtful.confidence is not None and doubtful.confidence < 0.6
    assert not likely(doubtful, 0.6)
    assert not likely(_HEARD, 0.999)  # the flow's threshold, when higher
    assert LIKELY_CONFIDENCE >= 0.6  # a flow asking less (0.4) still needs this of a partial
    assert not likely(replace(_HEARD, features=replace(_SURE, ratio=-20.0, outside=0.3)), 0.4)


def test_a_negative_partial_margin_counts_as_none() -> None:
    noisy = replace(_HEARD, features=replace(_SURE, margin=-20.0))
    at_zero = replace(_HEARD, features=replace(_SURE, margin=0.0))
    assert noisy.confidence == at_zero.confidence
    assert (at_zero.confidence or 0) < (_HEARD.confidence or 0)  # a positive margin still counts


def test_stability_counts_frames_since_the_partial_result_changed() -> None:
    s = Stability()
    assert s.see("", 4) == 0 and s.see("back", 8) == 0 and s.see("back", 12) == 4
    assert s.see("back", 40) == 32 and s.frames == 32
    assert s.see("balance", 44) == 0 and s.see("balance", 48) == 4


def test_the_margin_at_its_cap_bounds_the_confidence() -> None:
    # the streaming gate reads the partial n-best only once the features reach the threshold
    # with the margin at its cap: valid while the confidence rises with the margin
    for ratio in (-30.0, -5.0, 0.0, 5.0, 20.0):
        for outside in (0.0, 0.3, 0.9):
            f = replace(_SURE, ratio=ratio, outside=outside)
            capped = replace(_HEARD, features=replace(f, margin=MARGIN_CAP)).confidence or 0
            for m in (-40.0, -3.0, 0.0, 1.0, 4.9, MARGIN_CAP):
                assert (replace(_HEARD, features=replace(f, margin=m)).confidence or 0) <= capped


@pytest.mark.parametrize(
    ("name", "phrases"),
    [
        ("agent-en-us-140.ulaw", MAIN),
        ("can-i-talk-to-an-operator-en-us-140.ulaw", MAIN),
        ("my-balance-en-us-175.ulaw", BILLING),
        ("agent-en-us+f3-140.ulaw", MAIN),
    ],
)
async def test_the_gate_skipping_the_n_best_decides_as_with_it(
    monkeypatch: pytest.MonkeyPatch, name: str, phrases: list[str]
) -> None:
    # every time the stream asks whether the phrase so far is likely, the answer is the one
    # every part of the evidence gives (``full_evidence``, n-best read), whether or not the
    # gate read the n-best
    asked: list[tuple[bool, bool]] = []
    read = [0]
    gate, nbest = PocketSphinxStream._likely, stt_pocketsphinx._partial_nbest

    def counted(*args: Any) -> Any:
        read[0] += 1
        return nbest(*args)

    def compared(stream: PocketSphinxStream, decoder: Any) -> bool:
        answer = gate(stream, decoder)
        asked.append((answer, likely(stream.full_evidence(decoder), stream.min_confidence)))
        return answer

    monkeypatch.setattr(PocketSphinxStream, "_likely", compared)
    monkeypatch.setattr(stt_pocketsphinx, "_partial_nbest", counted)
    await _settled_at(name, phrases)
    assert asked and all(gate_said == full for gate_said, full in asked), asked
    assert read[0] <= len(asked)

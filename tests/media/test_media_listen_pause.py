"""A caller who pauses mid-sentence ("I'd like to ... pay my bill") is heard whole: real espeak-ng
speech over the sandbox's RTP, CallMedia's VAD endpointing and pocketsphinx, in virtual time
(the clock stands still while a decoder thread works, so the figures are audio time).

In the pause the grammar's partial result is often some whole phrase ("um" is "operator"), and
both searches hear the caller stop: before, that ended the utterance (``settled``) and the caller
was cut. The stream now reports a whole phrase only when it would be accepted (the check search
names it too, its confidence over the partial paths reaches the threshold); anything else ends
after ``listen_quiet_silence_ms`` (600) of VAD silence once the phone loop heard nothing for
400 ms (``quiet``), or after the ``listen`` window."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import numpy as np
import pytest
from sandbox_rig import open_app_rig
from shared_stt import shared_stt

from voxflow.media.callmedia import CallMedia
from voxflow.media.endpointing import follow
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector
from voxflow.telephony.session import CallSession
from voxflow.testing.violoop import run_virtual

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
LOUD = 328  # -40 dBFS: speech is the samples louder than this


async def _spoken(text: str) -> bytes:
    """espeak-ng's 8 kHz speech of ``text``, from its first to its last loud sample."""
    pcm = b"".join([c async for c in EspeakTTS(sample_rate=8000).synthesize(text)])
    loud = np.nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > LOUD)[0]
    return pcm[int(loud[0]) * 2 : (int(loud[-1]) + 1) * 2]


def _heard(
    before: str, pause_ms: int = 0, after: str = "", options: dict[str, int] | None = None
) -> tuple[float, str | None]:
    """On a sandbox call in virtual time the caller says ``before``, is silent ``pause_ms``,
    says ``after`` (if any) and stays quiet: (seconds from the caller's last loud sample to the
    decision, what ended the utterance)."""

    async def main() -> tuple[float, str | None]:
        stt = shared_stt()
        await stt.warm_up(DECODERS_PER_DECISION)  # every search streams
        pcm = await _spoken(before)
        if after:
            pcm += bytes(pause_ms * 16) + await _spoken(after)
        rig_cm = open_app_rig(
            PortRange(), tts=EspeakTTS(sample_rate=8000), stt=stt, media_options=options or {}
        )
        async with rig_cm as rig:
            loop = asyncio.get_running_loop()

            async def body(call: CallSession) -> Any:
                await call.listen(20, phrases=MENU, min_confidence=0.6)
                voice = await call.call_voice()
                assert isinstance(voice, CallMedia) and voice.last_transcript is not None
                return loop.time(), voice.last_transcript.endpoint

            sim = await rig.call(body)
            await sim.silence(0.3)
            await sim.say_audio(pcm, label=f"{before} ... {after}")
            stopped = loop.time()
            at, ended_by = await rig.result()
            return at - stopped, ended_by

    return run_virtual(main())


@espeak
@pytest.mark.parametrize("before", ["I'd like to", "um"])
def test_a_caller_pausing_500_ms_mid_sentence_is_heard_whole(before: str) -> None:
    # "um" is heard as a whole phrase in the pause, and both searches hear the caller stop:
    # with the likely-phrase gate off (the endpointing before it) the caller is cut there
    after_s, ended_by = _heard(before, 500, "pay my bill")
    assert after_s > 0, f"decided {-after_s * 1000:.0f} ms before the caller stopped ({ended_by})"
    assert ended_by in ("settled", "final", "complete", "quiet", "silence")


@espeak
def test_part_of_a_phrase_ends_once_quiet_sooner_than_the_listen_window() -> None:
    # "pay my" is no whole phrase of the menu: the listen window is 800 ms of VAD silence; the
    # phone loop hears the caller stop, so 600 ms end it, and the trace says so; with the quiet
    # end off the listen window ends it
    after_s, ended_by = _heard("pay my")
    assert ended_by == "quiet"
    assert after_s < 0.85, f"decided {after_s * 1000:.0f} ms after the caller stopped"
    after_s, ended_by = _heard("pay my", options={"listen_quiet_silence_ms": -1})
    assert ended_by == "silence" and after_s > 0.85


def _speaking(**windows: int) -> SpeechDetector:
    det = SpeechDetector(frame_ms=20, min_speech_ms=40, end_silence_ms=800, **windows)
    assert [det.feed(True) for _ in range(3)][1] is not None  # onset
    return det


def test_quiet_ends_anything_else_after_its_own_window_and_says_so() -> None:
    det = _speaking(complete_silence_ms=300, quiet_silence_ms=600)
    det.quiet = True
    assert all(det.feed(False) is None for _ in range(29))
    assert det.feed(False) is not None and det.ended_by == "quiet" and det.silence_ms == 600
    det = _speaking(complete_silence_ms=300, quiet_silence_ms=600)  # not quiet: the long window
    assert all(det.feed(False) is None for _ in range(39))
    assert det.feed(False) is not None and det.ended_by == "silence"
    det = _speaking(complete_silence_ms=300, quiet_silence_ms=600)  # a whole phrase: its window
    det.quiet = det.complete = True
    assert all(det.feed(False) is None for _ in range(14))
    assert det.feed(False) is not None and det.ended_by == "complete"
    det = _speaking()  # no quiet window given: quiet changes nothing
    det.quiet = True
    assert all(det.feed(False) is None for _ in range(39))
    assert det.feed(False) is not None and det.ended_by == "silence"


class _Quiet:
    quiet = True


def test_follow_passes_quiet_on() -> None:
    det = _speaking(quiet_silence_ms=600)
    follow(det, _Quiet())
    assert det.quiet and not det.settled

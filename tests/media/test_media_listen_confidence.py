"""Through the sandbox: a caller who speaks but is not recognised with confidence gets "" from
listen (the flow's nomatch), not None (noinput); the transcript keeps what it sounded like."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
from media_rig import speak
from sandbox_rig import open_app_rig

from voxflow.media.callmedia import CallMedia
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.telephony.session import CallSession

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

CHOICES = ["sales", "support", "operator"]


async def test_speech_without_confidence_is_a_nomatch_not_a_noinput() -> None:
    stt = PocketSphinxSTT(min_confidence=1.0)  # nothing is ever confident enough
    rig_cm = open_app_rig(PortRange(41450, 41499), tts=EspeakTTS(sample_rate=8000), stt=stt)
    async with rig_cm as rig:

        async def body(call: CallSession) -> Any:
            voice = await call.call_voice()
            assert isinstance(voice, CallMedia)
            silent = await call.listen(0.5, phrases=CHOICES)
            heard = await call.listen(10, phrases=CHOICES)
            return silent, heard, voice.last_transcript

        sim = await rig.call(body)
        await asyncio.sleep(0.8)  # the first listen times out on silence
        await speak(sim, "I would like to leave a message")
        silent, heard, transcript = await rig.result()
        assert silent is None  # nothing said: no input
        assert heard == ""  # said, but not recognised: no match
        assert transcript is not None and transcript.text == ""
        # what it sounded like is kept, when the decoder had a hypothesis at all
        assert all(alt in CHOICES for alt in transcript.alternatives)

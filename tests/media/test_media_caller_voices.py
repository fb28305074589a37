"""Scripted callers that sound like more than one person: espeak-ng voices and rates, background
noise at a chosen SNR, G.711 on the wire; bad voices are refused before anything is sent."""

from __future__ import annotations

import base64
import contextlib
import shutil
from typing import Any

import aiohttp
import numpy as np
import pytest
from media_rig import audible, recognise
from sandbox_rig import open_app_rig
from shared_stt import shared_stt

from voxflow.errors import CallEndedError
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.sandbox.audio import add_noise, check_caller_voice, espeak_pcm16
from voxflow.telephony.session import CallSession

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def test_noise_is_added_at_the_asked_snr_and_is_repeatable() -> None:
    speech = espeak_pcm16("operator please")
    noisy = add_noise(speech, 10.0, seed=3)
    a = np.frombuffer(speech, "<i2").astype(np.float64)
    n = np.frombuffer(noisy, "<i2").astype(np.float64) - a
    loud = a[np.abs(a) > 200]
    snr = 10 * np.log10(np.mean(loud**2) / np.mean(n**2))
    assert 9.0 < snr < 11.0
    assert add_noise(speech, 10.0, seed=3) == noisy


def test_caller_voices_are_checked() -> None:
    check_caller_voice("en-gb+f3", 175)
    for voice in ("--stdout", "en us", "EN-US", ""):
        with pytest.raises(ValueError, match="voice"):
            check_caller_voice(voice, 160)
    with pytest.raises(ValueError, match="speed"):
        check_caller_voice("en-us", 20)


async def test_a_female_british_caller_with_line_noise_is_heard_by_the_app() -> None:
    rig_cm = open_app_rig(PortRange(), tts=EspeakTTS(sample_rate=8000), stt=shared_stt())
    async with rig_cm as rig:

        async def body(call: CallSession) -> Any:
            return await call.listen(15, phrases=["operator", "sales", "support"])

        sim = await rig.call(body)
        with contextlib.suppress(CallEndedError):  # decided within espeak's trailing silence
            await sim.say("operator", voice="en-gb+f3", speed=150, noise_snr_db=20)
        assert await rig.result() == "operator"
        base = rig.sb.base_url
        token = base64.b64encode(f"{rig.sb.user}:{rig.sb.password}".encode()).decode()
        async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http:
            bad = {"text": "hi", "voice": "--stdout"}
            async with http.post(f"{base}/sandbox/calls/{sim.id}/say", json=bad) as r:
                assert r.status == 400 and "voice" in (await r.json())["message"]


async def test_two_voices_sound_different() -> None:
    us = espeak_pcm16("support", voice="en-us", speed=160)
    gb = espeak_pcm16("support", voice="en-gb+f3", speed=140)
    assert us != gb and abs(len(gb) - len(us)) > 800  # another voice and rate: other audio
    assert "support" in await recognise(audible(gb), ["support", "sales", "operator"])

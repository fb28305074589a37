"""A call's media path (externalMedia channel + ``vf-mb-*`` bridge) is set up only when a step
needs the caller's audio or sends audio: a keys-only flow on an app with no speech (what
``voxflow run --no-audio`` builds: no TTS, STT, VAD or voice factory) plays its sounds and takes
its keys with neither (DTMF is an ARI event, ``sound:`` an ARI playback); with speech configured,
the same flow's default barge-in (``any``) sets the media path up before the playback and a
spoken word stops it. Counted in the sandbox's REST log, over real ARI and RTP."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from _e2e_kit import Env, serving

from voxflow.media.callmedia import create_call_voice
from voxflow.media.vad import WebRtcVad
from voxflow.runtime.events import End

FLOW = """\
flow keys "a keys-only menu: a sound, then a key":
    answers "100"

state start:
    answer
    play "long-prompt"
    menu "Press 1 or 2.":
        timeout 5s
        1 -> one
        2 -> two
        on noinput, nomatch -> retry
        on exhausted -> one

state one:
    hangup "one"

state two:
    hangup "two"
"""

TONE = np.tile(np.int16([0, 6000, 0, -6000]), 8000 * 8).tobytes()  # 8 s


def _media_requests(env: Env) -> list[tuple[str, str]]:
    """The worker's requests that set up a media path (externalMedia channel, bridge)."""
    return [
        (m, p)
        for m, p in env.sb.rest_api.http_log
        if m == "POST" and (p == "/channels/externalMedia" or p.startswith("/bridges"))
    ]


async def test_a_keys_only_flow_without_speech_sets_up_no_media(tmp_path: Path) -> None:
    path = tmp_path / "keys.flow"
    path.write_text(FLOW)
    async with serving([path]) as env:  # no TTS, STT, VAD, voice factory: --no-audio
        env.sb.add_sound("long-prompt", TONE)
        call = await env.call("100")
        await call.wait_for("playback", 20)
        await asyncio.sleep(0.3)
        await call.press("2")
        assert await env.result(call) == End("completed", "two")
        playback = [e for e in call.experience() if e["type"] == "playback"]
        assert playback[0]["state"] == "playing" and playback[-1]["state"] != "playing"
        assert playback[-1]["t"] - playback[0]["t"] < 4  # stopped by the key, not its 8 s end
        assert _media_requests(env) == []
        assert not any(c.startswith("vf-em-") for c in env.sb.pbx.channels)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_with_speech_the_same_flow_sets_up_media_and_a_word_stops_the_sound(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.flow"
    path.write_text(FLOW)
    app = {"vad": WebRtcVad(), "voice_factory": create_call_voice}
    async with serving([path], app=app) as env:
        env.sb.add_sound("long-prompt", TONE)
        call = await env.call("100")
        await call.wait_for("playback", 20)
        await asyncio.sleep(0.4)
        await call.say("operator")
        await asyncio.sleep(1.0)
        await call.press("1")
        assert await env.result(call) == End("completed", "one")
        playback = [e for e in call.experience() if e["type"] == "playback"]
        pressed = next(e for e in call.experience() if e["type"] == "pressed")
        assert playback[0]["state"] == "playing" and playback[-1]["state"] != "playing"
        assert playback[-1]["t"] < pressed["t"]  # stopped by the word, before the key
        posts = [p for _, p in _media_requests(env)]
        assert posts.count("/channels/externalMedia") == 1 and posts.count("/bridges") == 1

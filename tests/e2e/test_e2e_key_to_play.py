"""A key followed by a ``play`` (ARI playback): the playback is requested in the key's own
dispatch (the ARI event's callback), not a loop pass later, and a ``play`` the key stopped
stops on Asterisk too, over real ARI and RTP on the sandbox (docs/media-performance.md,
"Key -> next prompt ... session 12")."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _e2e_kit import key_dispatch, serving, until

from voxflow.ari.rest import AriRestClient
from voxflow.media.callmedia import create_call_voice
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.config import Settings
from voxflow.runtime.events import End

Requests = list[tuple[str, bool]]  # ("POST play" / "DELETE playback", sent in a key's dispatch)


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Requests]:
    """The worker's playback requests, each with whether it was made while a caller's key was
    being dispatched (aiohttp writes a request on a pooled connection in the caller's step)."""
    in_key = key_dispatch(monkeypatch)
    seen: Requests = []
    request = AriRestClient.request

    async def recorded(self: AriRestClient, method: str, path: str, **kw: Any) -> Any:
        if method == "POST" and path.endswith("/play"):
            seen.append(("POST play", in_key[0]))
        elif method == "DELETE" and path.startswith("/playbacks/"):
            seen.append(("DELETE playback", in_key[0]))
        return await request(self, method, path, **kw)

    monkeypatch.setattr(AriRestClient, "request", recorded)
    yield seen


def tone(hz: float, seconds: float) -> bytes:
    """``seconds`` of a sine at ``hz``, 8 kHz pcm16 (a sandbox sound)."""
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


def played(call: Any, uri: str) -> list[str]:
    """The states the caller's channel reported for playbacks of ``uri``, in order."""
    return [e["state"] for e in call.experience() if e["type"] == "playback" and e["uri"] == uri]


MENU = "For billing, press 3. For sales, press 4. For anything else, stay on the line."
MENU_THEN_PLAY = f"""\
flow keyplay "a key barges in on the menu; the next state plays a sound":
    answers "100"
    voice "en-us"

state start:
    answer
    menu "{MENU}":
        3 -> billing
        on noinput, nomatch, exhausted -> done

state billing:
    play "billing-jingle"
    hangup "billing"

state done:
    hangup "none"
"""


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_a_play_after_a_key_is_requested_in_the_key_s_dispatch(
    tmp_path: Path, requests: Requests
) -> None:
    (tmp_path / "keyplay.flow").write_text(MENU_THEN_PLAY)
    app = {"tts": EspeakTTS(sample_rate=8000), "voice_factory": create_call_voice}
    async with serving([tmp_path / "keyplay.flow"], app=app) as env:
        env.sb.add_sound("billing-jingle", tone(660, 0.6))
        cache = env.app.prompt_cache
        assert cache is not None
        await until(lambda: cache.stats.entries >= 1, "the menu warmed")
        call = await env.call("100")
        await until(lambda: len(call.heard_audio()) > 8000, "the menu heard")
        await call.press("3")
        assert await env.result(call) == End("completed", "billing")
    assert requests == [("POST play", True)]  # it was a loop pass later: [(.., False)]
    assert env.said(call) == [MENU, "[plays billing-jingle]"]
    assert played(call, "sound:billing-jingle") == ["playing", "done"]  # heard to its end
    assert env.states(call) == ["start", "billing"]


PLAY_THEN_PLAY = """\
flow playplay "a key barges in on a play; the next play takes no barge-in":
    answers "100"

state start:
    answer
    play "long-tone" bargein dtmf
    play "short-tone" bargein none
    hangup "done"
"""


async def test_a_play_the_key_stopped_stops_and_the_next_one_follows_at_once(
    tmp_path: Path, requests: Requests
) -> None:
    """The key barges in on the first play: the flow stops its op and starts the next play
    in the same step. The stopped playback used to play on to its end (10 s, the next one
    queued behind it on the channel, as Asterisk queues a channel's playbacks)."""
    (tmp_path / "playplay.flow").write_text(PLAY_THEN_PLAY)
    async with serving([tmp_path / "playplay.flow"], settings=Settings(grace_period=5)) as env:
        env.sb.add_sound("long-tone", tone(440, 10.0))
        env.sb.add_sound("short-tone", tone(1000, 0.5))
        call = await env.call("100")
        await until(lambda: len(call.heard_audio()) > 8000, "the long tone heard")
        await call.press("3")
        assert await env.result(call) == End("completed", "done")
    assert played(call, "sound:long-tone") == ["playing", "done"]
    assert played(call, "sound:short-tone") == ["playing", "done"]
    heard = [(e["start"], e["end"]) for e in call.experience() if e["type"] == "audio"]
    pressed = next(e["t"] for e in call.experience() if e["type"] == "pressed")
    assert heard[0][1] - pressed < 5.0  # the long tone stopped (it would have run ~9.5 s on)
    # the first play, then (in the key's dispatch) the next one, and the stop of the first
    assert requests[:2] == [("POST play", False), ("POST play", True)]
    assert [r for r, _ in requests[2:]] == ["DELETE playback"]
    assert env.said(call) == ["[plays long-tone]", "[plays short-tone]"]


async def test_a_play_stopped_while_its_request_is_in_flight_stops_on_asterisk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key stops the first play while its POST is still on the wire (held here 0.3 s before
    the sandbox reads it). The stop must follow Asterisk's answer: sent at once, it found no
    playback (404), and the 10 s tone then played when its turn came."""
    (tmp_path / "playplay.flow").write_text(PLAY_THEN_PLAY)
    held = asyncio.Event()
    request = AriRestClient.request

    async def slow_first_play(self: AriRestClient, method: str, path: str, **kw: Any) -> Any:
        if method == "POST" and path.endswith("/play") and not held.is_set():
            held.set()

            async def on_the_wire() -> Any:
                await asyncio.sleep(0.3)
                return await request(self, method, path, **kw)

            # the request goes on whatever becomes of its caller, as bytes already sent do
            return await asyncio.shield(asyncio.ensure_future(on_the_wire()))
        return await request(self, method, path, **kw)

    monkeypatch.setattr(AriRestClient, "request", slow_first_play)
    async with serving([tmp_path / "playplay.flow"], settings=Settings(grace_period=5)) as env:
        env.sb.add_sound("long-tone", tone(440, 10.0))
        env.sb.add_sound("short-tone", tone(1000, 0.5))
        call = await env.call("100")
        await asyncio.wait_for(held.wait(), 10)
        await call.press("3")
        assert await env.result(call) == End("completed", "done")
    # The first POST reached the sandbox after the next play's: its tone is queued behind the
    # short one and must be gone before its turn (it played after it, cut only by the hang-up).
    assert "playing" not in played(call, "sound:long-tone")
    assert played(call, "sound:short-tone") == ["playing", "done"]

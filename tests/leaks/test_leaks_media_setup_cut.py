"""A prompt cut while the call's media path is still being set up leaves nothing on Asterisk.

A ``play`` with speech barge-in on an app that hears speech (a VAD here) sets the media path up
(externalMedia channel, ``vf-mb-*`` mixing bridge) alongside the playback; a key that ends the
prompt first cancels that set-up.
Its teardown DELETEd what it had asked for at once, while a creating POST could still be on its
way: Asterisk serves requests of different connections in any order, so the DELETE found
nothing (404, "gone") and the POST then made a bridge (or channel) nobody removes. The cluster
load test saw one such empty ``vf-mb-*`` bridge after a take-over's 40 resumed prompts were cut.
The sandbox holds the POST (``Faults.late_requests``) to make the order certain."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _leaks_kit import Served, leftovers, serving_text, until

from voxflow.media.vad import WebRtcVad

FLOW = """\
flow cut "a key cuts the prompt":
    answers "100"

state start:
    answer
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""

NOTHING = {"sessions": [], "channels": [], "bridges": []}
NO_SOUNDS = {"preload_sounds": False}


def _speech() -> dict[str, object]:
    """An app that hears speech: without one, a ``play`` sets up no media path."""
    return {"vad": WebRtcVad()}


async def _cut_while_held(s: Served, path: str, created: str) -> None:
    """A call whose prompt plays while ``path``'s POST is held and ``created`` (a prefix of
    what set-up already made) exists; its key ends the prompt and the flow hangs up."""
    sb = s.sb
    sb.faults.late_requests(1.0, method="POST", path=path)
    call = await sb.place_call(from_="+15550100", to="100")
    await call.wait_for("playback", 15, uri="sound:vm-login", state="playing")
    await until(lambda: sb.faults.held == 1, 15, f"POST {path} held")
    made = [*sb.pbx.channels, *sb.pbx.bridges]
    assert any(i.startswith(created) for i in made), made
    await call.press("1")
    await call.wait_hangup(15)
    await until(lambda: sb.faults.held == 0, 15, "the held POST served")
    for _ in range(250):  # its teardown's DELETEs (5 s at most)
        if leftovers(s) == NOTHING:
            break
        await asyncio.sleep(0.02)
    assert leftovers(s) == NOTHING


async def test_a_key_while_the_media_bridge_is_being_made_leaves_no_bridge(
    tmp_path: Path,
) -> None:
    # The externalMedia channel is answered, the bridge's POST held: the key cancels set-up
    # while it waits for that POST. Before: the bridge's DELETE (404) went ahead of its POST.
    async with serving_text(tmp_path, FLOW, sandbox=NO_SOUNDS, app=_speech()) as s:
        await _cut_while_held(s, "^/bridges$", "vf-em-")


async def test_a_key_while_the_media_channel_is_being_made_leaves_no_channel(
    tmp_path: Path,
) -> None:
    # The bridge is made, the externalMedia POST held: the key cancels that request in flight.
    async with serving_text(tmp_path, FLOW, sandbox=NO_SOUNDS, app=_speech()) as s:
        await _cut_while_held(s, "^/channels/externalMedia$", "vf-mb-")

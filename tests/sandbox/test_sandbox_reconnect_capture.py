"""Events around an events-socket reconnect compared with real Asterisk 22's
(captures/events-reconnect-sample.json): while no socket is connected the channel stays in
Stasis and its events are lost; after reconnecting, the PlaybackFinished of a playback started
while offline arrives (no new StasisStart), then a playback cut by a DELETE ends ``failed``
before StasisEnd."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "events-reconnect-sample.json"


def _shape(ev: dict[str, Any]) -> tuple[str, ...]:
    return (ev["type"], ev.get("playback", {}).get("state", ""))


async def test_a_reconnect_delivers_what_follows_as_captured(sandbox: Sandbox, ari: RawAri) -> None:
    want = [_shape(e) for e in json.loads(CAPTURE.read_text())]
    t = np.arange(8000) / 8000.0  # a 1 s tone: still playing when the socket is back
    sandbox.add_sound("beep1s", (np.sin(2 * np.pi * 1000 * t) * 8000).astype("<i2").tobytes())
    call = await sandbox.place_call(to="100")
    got = [await ari.next("StasisStart")]
    assert sandbox.faults.drop_events_socket("voxflow")
    await asyncio.wait_for(ari._reader, 10)  # type: ignore[arg-type]  # the socket ended
    while sandbox.pbx.app_active("voxflow"):  # noqa: ASYNC110 - the server notices the drop
        await asyncio.sleep(0.01)
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204  # lost
    assert (await ari.req("POST", f"/channels/{call.id}/play", media="sound:beep1s"))[0] == 201
    await ari.connect()
    await sandbox.wait_app("voxflow")
    got.append(await ari.next(timeout=5))  # the offline playback's end
    await ari.req("POST", f"/channels/{call.id}/play", media="sound:beep1s")
    got.append(await ari.next())
    await ari.req("DELETE", f"/channels/{call.id}")
    got += await ari.collect(quiet=0.3)
    assert [_shape(e) for e in got] == want

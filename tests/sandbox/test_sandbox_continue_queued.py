"""A continue sent while a channel playback or live recording runs is queued behind it, as on
Asterisk 22 (captures continue-outcomes.json and record-leaving-stasis.json): 204 at once, the
channel stays in Stasis, and it leaves when the media ends (finished, stopped) but never after a
hang-up. The live recording cases are compared with the capture in
test_sandbox_record_leaving.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "continue-outcomes.json"
RECORD_CAPTURE = CAPTURE.with_name("record-leaving-stasis.json")


def _tone(seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def _answered_call(sandbox: Sandbox, ari: RawAri) -> str:
    call = await sandbox.place_call(to="300")
    await ari.next("StasisStart")
    status, _ = await ari.req("POST", f"/channels/{call.id}/answer")
    assert status == 204
    await ari.next("ChannelStateChange")
    return call.id


async def _in_stasis(ari: RawAri, cid: str) -> bool:
    status, body = await ari.req("GET", f"/channels/{cid}")
    return status == 200 and body["dialplan"]["app_name"] == "Stasis"


async def test_continue_waits_for_a_stopped_playback(sandbox: Sandbox, ari: RawAri) -> None:
    sandbox.add_sound("long16", _tone(16.0))
    cid = await _answered_call(sandbox, ari)
    status, _ = await ari.req("POST", f"/channels/{cid}/play/pb1", media="sound:long16")
    assert status == 201
    await ari.next("PlaybackStarted")
    status, _ = await ari.req(
        "POST", f"/channels/{cid}/continue", context="elsewhere", extension="x", priority=1
    )
    assert status == 204
    assert await _in_stasis(ari, cid)
    status, body = await ari.req("GET", "/playbacks/pb1")
    assert status == 200 and body["state"] == "playing"
    assert sandbox.calls[cid].experience()[-1]["type"] != "continue"
    status, _ = await ari.req("DELETE", "/playbacks/pb1")
    assert status == 204
    finished = await ari.next()
    assert finished["type"] == "PlaybackFinished"
    assert finished["playback"]["state"] == "done"  # "done" although it was stopped
    assert (await ari.next())["type"] == "StasisEnd"
    got = await sandbox.calls[cid].wait_for("continue", 5)
    assert (got["context"], got["exten"]) == ("elsewhere", "x")


async def test_continue_runs_when_the_playback_ends_by_itself(
    sandbox: Sandbox, ari: RawAri
) -> None:
    sandbox.add_sound("short", _tone(0.3))
    cid = await _answered_call(sandbox, ari)
    await ari.req("POST", f"/channels/{cid}/play/pb2", media="sound:short")
    await ari.req("POST", f"/channels/{cid}/continue", context="elsewhere", extension="x")
    kinds = []
    while "StasisEnd" not in kinds:
        kinds.append((await ari.next())["type"])
    assert kinds[-2:] == ["PlaybackFinished", "StasisEnd"]


async def test_a_queued_continue_never_runs_after_a_hangup(sandbox: Sandbox, ari: RawAri) -> None:
    cid = await _answered_call(sandbox, ari)
    await ari.req("POST", f"/channels/{cid}/record", name="rec-hup", format="wav")
    await ari.next("RecordingStarted")
    await ari.req("POST", f"/channels/{cid}/continue", context="elsewhere", extension="x")
    sim = sandbox.calls[cid]
    await sim.hangup()
    kinds = [e["type"] for e in await ari.collect(quiet=0.2)]
    # as for a DELETE in capture record-leaving-stasis.json
    steps = json.loads(RECORD_CAPTURE.read_text())["steps"]
    [step] = [s for s in steps if s["step"] == "continue-to-dialplan-wait3-then-stasis"]
    deleted = next(e["t_sent"] for e in step["log"] if e.get("method") == "DELETE")
    want = [e["event"]["type"] for e in step["log"] if "event" in e and e["t"] > deleted]
    assert kinds[:3] == want == ["ChannelHangupRequest", "RecordingFinished", "StasisEnd"]
    assert not [e for e in sim.experience() if e["type"] == "continue"]


async def test_a_hangup_runs_the_queued_playbacks_out_as_failed(
    sandbox: Sandbox, ari: RawAri
) -> None:
    steps = json.loads(CAPTURE.read_text())["steps"]
    [step] = [s for s in steps if s["step"] == "i-continue-with-second-playback-queued"]
    deleted = next(e["t"] for e in step["log"] if e.get("method") == "DELETE")
    want = [
        (e["event"]["type"], e["event"].get("playback", {}).get("id", "")[-3:],
         e["event"].get("playback", {}).get("state", ""))
        for e in step["log"] if "event" in e and e["t"] > deleted
    ]  # fmt: skip
    sandbox.add_sound("long16", _tone(16.0))
    cid = await _answered_call(sandbox, ari)
    await ari.req("POST", f"/channels/{cid}/play/x-pb1", media="sound:long16")
    await ari.next("PlaybackStarted")
    await ari.req("POST", f"/channels/{cid}/play/x-pb2", media="sound:hello-world")
    await ari.req("POST", f"/channels/{cid}/continue", context="elsewhere", extension="x")
    status, body = await ari.req("GET", "/playbacks/x-pb1")
    assert (status, body["state"]) == (200, "playing")
    assert (await ari.req("DELETE", f"/channels/{cid}"))[0] == 204
    got = [
        (e["type"], e.get("playback", {}).get("id", "")[-3:],
         e.get("playback", {}).get("state", ""))
        for e in await ari.collect(quiet=0.2)
    ]  # fmt: skip
    assert got == want
    assert want == [
        ("ChannelHangupRequest", "", ""),
        ("PlaybackFinished", "pb1", "failed"),
        ("PlaybackStarted", "pb2", "playing"),
        ("PlaybackFinished", "pb2", "failed"),
        ("StasisEnd", "", ""),
    ]


def _step(name: str) -> list[dict[str, Any]]:
    [step] = [s for s in json.loads(CAPTURE.read_text())["steps"] if s["step"] == name]
    return list(step["log"])


def _pb_shape(ev: dict[str, Any]) -> tuple[Any, ...]:
    if ev["type"].startswith("Playback"):
        return (ev["type"], ev["playback"]["state"])
    if ev["type"].startswith("Stasis"):
        return (ev["type"], ev["channel"]["dialplan"]["priority"])
    return (ev["type"],)


@pytest.mark.parametrize(
    "step",
    [
        "h-continue-during-playback",
        "j-continue-during-short-playback",
        "k-continue-then-stop-playback",
    ],
)
async def test_a_continue_behind_a_playback_is_the_captured_one(
    sandbox: Sandbox, ari: RawAri, step: str
) -> None:
    """Capture cases h (hang-up while the playback runs), j (it ends by itself) and k (it is
    stopped), event by event from the request that ends the wait; ``voxflow-in,200`` (NoOp,
    Stasis) stands in for ``cap-cont,target``."""
    log = _step(step)
    play = next(e for e in log if e.get("path", "").endswith("/play"))
    cont = next(e for e in log if e.get("path", "").endswith("/continue"))
    sandbox.add_sound("tt-monkeys", _tone(16.0))
    cid = await _answered_call(sandbox, ari)
    status, _ = await ari.req("POST", f"/channels/{cid}/play/pb", media=play["params"]["media"])
    assert status == play["status"]
    await ari.next("PlaybackStarted")
    target = {"context": "voxflow-in", "extension": "200", "priority": 1}
    assert (await ari.req("POST", f"/channels/{cid}/continue", **target))[0] == cont["status"]
    ender = next((e for e in log if e.get("method") == "DELETE" and e["t"] > cont["t"]), None)
    if ender is not None and "j-" not in step:
        path = f"/channels/{cid}" if ender["path"].startswith("/channels") else "/playbacks/pb"
        assert await ari.collect(quiet=0.2) == []  # waiting behind the playback
        assert (await ari.req("DELETE", path))[0] == ender["status"]
        start = ender["t_sent"]
    else:
        start = cont["t_sent"]
    until = next((e["t_sent"] for e in log if e.get("method") and e["t_sent"] > start), 1e9)
    want = [_pb_shape(e["event"]) for e in log if "event" in e and start < e["t"] < until]
    got = [_pb_shape(e) for e in await ari.collect(quiet=2.0 if start == cont["t_sent"] else 0.5)]
    assert got == want

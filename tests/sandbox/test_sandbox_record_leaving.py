"""A live channel recording when the channel is sent back to the dialplan, compared with real
Asterisk 22's (captures/record-leaving-stasis.json): the ``continue`` answers 204 and waits for
the recording; it runs when the recording stops (by ``stop`` or at ``maxDurationSeconds``) and
never after a hang-up. The sandbox's ``voxflow-in,100`` (NoOp, Stasis, Hangup) stands in for the
capture's ``cap-cont,target`` and ``cap-cont,wait3`` (the target never runs in a hang-up case).
Each case is compared event by event from the request that ends it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "record-leaving-stasis.json"
STEPS = {s["step"]: s for s in json.loads(CAPTURE.read_text())["steps"]}
TARGET = {"context": "voxflow-in", "extension": "200", "priority": 1}  # the call is at 100


def _shape(ev: dict[str, Any]) -> tuple[Any, ...]:
    t = ev["type"]
    if t == "ChannelVarset":
        return (t, ev["variable"], ev["value"])
    if t in ("ChannelHangupRequest", "ChannelDestroyed"):
        return (t, ev["cause"], ev.get("soft", False))
    if t.startswith("Recording"):
        return (t, ev["recording"]["state"])
    if t in ("ChannelDialplan", "StasisStart"):
        return (t, ev["channel"]["dialplan"]["priority"])
    return (t,)


def _log(step: str) -> list[dict[str, Any]]:
    return list(STEPS[step]["log"])


def _request(step: str, method: str, path_end: str) -> dict[str, Any]:
    return next(e for e in _log(step) if e.get("method") == method and e["path"].endswith(path_end))


def _events_after(step: str, entry: dict[str, Any], until: float = 1e9) -> list[tuple[Any, ...]]:
    """The events of ``step`` from the request ``entry`` was sent until ``until`` (ms)."""
    return [
        _shape(e["event"]) for e in _log(step) if "event" in e and entry["t_sent"] <= e["t"] < until
    ]


async def _recording(sandbox: Sandbox, ari: RawAri, step: str, **record: Any) -> str:
    """An answered call (subscribed as in ``step``) with a live recording, continue sent."""
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    cid = call.id
    assert (await ari.req("POST", f"/channels/{cid}/answer"))[0] == 204
    if STEPS[step]["explicit_subscription"]:
        await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    want = _request(step, "POST", "/record")
    status, body = await ari.req(
        "POST", f"/channels/{cid}/record", name="rec-leave", format="wav", **record
    )
    assert (status, body["state"]) == (want["status"], want["response"]["state"])
    await ari.next("RecordingStarted")
    await ari.collect(quiet=0.1)
    params = TARGET if STEPS[step]["continue_params"] else {}
    want = _request(step, "POST", "/continue")
    assert (await ari.req("POST", f"/channels/{cid}/continue", **params))[0] == want["status"]
    assert await ari.collect(quiet=0.2) == []  # the continue waits: no StasisEnd
    status, body = await ari.req("GET", "/recordings/live/rec-leave")
    assert (status, body["state"]) == (200, "recording")
    return cid


HANGUP_STEPS = [s for s in STEPS if "stop" not in s and "maxDuration" not in s]


@pytest.mark.parametrize("step", HANGUP_STEPS)
async def test_a_hangup_ends_the_recording_and_the_continue_never_runs(
    sandbox: Sandbox, ari: RawAri, step: str
) -> None:
    cid = await _recording(sandbox, ari, step, maxDurationSeconds=30)
    delete = _request(step, "DELETE", f"/channels/{_channel(step)}")
    assert (await ari.req("DELETE", f"/channels/{cid}"))[0] == delete["status"]
    events = await ari.collect(quiet=0.3)
    assert [_shape(e) for e in events] == _events_after(step, delete)
    # the queued continue moved the channel's dialplan location although it never ran
    captured = [
        e["event"] for e in _log(step) if e.get("event", {}).get("type") == "ChannelDestroyed"
    ]
    got = [e for e in events if e["type"] == "ChannelDestroyed"]
    if captured and STEPS[step]["continue_params"]:
        where = captured[0]["channel"]["dialplan"]
        assert (where["context"], where["exten"]) == (
            STEPS[step]["continue_params"]["context"],
            STEPS[step]["continue_params"]["extension"],
        )
        dp = got[0]["channel"]["dialplan"]
        assert (dp["context"], dp["exten"], dp["priority"], dp["app_name"]) == (
            TARGET["context"],
            TARGET["extension"],
            where["priority"],
            where["app_name"],
        )
    assert not [e for e in sandbox.calls[cid].experience() if e["type"] == "continue"]


def _channel(step: str) -> str:
    return str(_request(step, "POST", "/record")["path"].split("/")[2])


@pytest.mark.parametrize(
    "step", ["continue-then-stop-recording", "maxDuration5-continue-back-into-stasis"]
)
async def test_the_continue_runs_when_the_recording_ends(
    sandbox: Sandbox, ari: RawAri, step: str
) -> None:
    by_stop = "stop" in step
    cid = await _recording(sandbox, ari, step, maxDurationSeconds=30 if by_stop else 1)
    if by_stop:
        stop = _request(step, "POST", "/stop")
        assert (await ari.req("POST", "/recordings/live/rec-leave/stop"))[0] == stop["status"]
        start = stop
    else:  # the recording reaches maxDurationSeconds by itself
        start = _request(step, "POST", "/continue")
    got = [_shape(e) for e in await ari.collect(quiet=1.5)]
    back = next(e["t"] for e in _log(step) if e.get("method") == "GET" and e["t"] > start["t"])
    assert got == _events_after(step, start, until=back)
    for path in ("/recordings/live/rec-leave", "/recordings/stored/rec-leave"):
        want = _request(step, "GET", path.replace("rec-leave", STEPS[step]["recording_name"]))
        status, body = await ari.req("GET", path)
        if status == 200:
            body["name"] = want["response"]["name"]
        assert (status, body) == (want["status"], want["response"]), path
    assert (await sandbox.calls[cid].wait_for("continue", 5))["context"] == "voxflow-in"

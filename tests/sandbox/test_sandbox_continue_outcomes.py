"""``POST /channels/{id}/continue`` outcomes compared with real Asterisk 22's
(captures/continue-outcomes.json): the sandbox's ``voxflow-in`` context (``100``/``_X.``:
NoOp, Stasis(voxflow), Hangup) stands in for the capture's ``cap-cont,target`` and ``cap-in,s``.
Each case is compared event by event (type, variable, dialplan app, causes) for an app with an
explicit channel subscription, and without it (StasisEnd, and StasisStart when it comes back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "continue-outcomes.json"

# capture step -> the sandbox's continue parameters for the same situation
CASES: dict[str, dict[str, Any]] = {
    "a-existing-context-exten": {"context": "voxflow-in", "extension": "100", "priority": 1},
    "b-missing-exten-no-i": {"context": "voxflow-in", "extension": "nosuch", "priority": 1},
    "d-missing-context": {"context": "cap-does-not-exist", "extension": "s", "priority": 1},
    "e-no-params-next-priority": {},
    "g-existing-exten-missing-priority": {
        "context": "voxflow-in", "extension": "100", "priority": 9
    },
}  # fmt: skip


def _shape(ev: dict[str, Any]) -> tuple[Any, ...]:
    t = ev["type"]
    if t == "ChannelVarset":
        return (t, ev["variable"], ev["value"])
    if t == "ChannelDialplan":
        return (t, ev["dialplan_app"], ev["channel"]["dialplan"]["priority"])
    if t == "ChannelHangupRequest":
        return (t, ev["cause"], ev.get("soft", False))
    if t == "ChannelDestroyed":
        return (t, ev["cause"], ev["cause_txt"])
    if t == "StasisStart":
        return (t, ev["channel"]["dialplan"]["priority"])
    return (t,)


def _captured(step: str) -> list[tuple[Any, ...]]:
    """The events the app got between the continue and the end of the case (before the
    capture's own clean-up 2.5 s later)."""
    [s] = [s for s in json.loads(CAPTURE.read_text())["steps"] if s["step"] == step]
    log = s["log"]
    start = next(e["t"] for e in log if e.get("note") == "sending continue")
    return [_shape(e["event"]) for e in log if "event" in e and start < e["t"] < start + 2000]


async def _run(sandbox: Sandbox, ari: RawAri, params: dict[str, Any], subscribe: bool) -> list[Any]:
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    cid = call.id
    assert (await ari.req("POST", f"/channels/{cid}/answer"))[0] == 204
    if subscribe:
        await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    await ari.collect(quiet=0.1)
    assert (await ari.req("POST", f"/channels/{cid}/continue", **params))[0] == 204
    events = await ari.collect(quiet=0.3)
    assert {e["channel"]["id"] for e in events} <= {cid}
    got = [_shape(e) for e in events]
    if ("StasisStart", 2) in got:
        await ari.req("DELETE", f"/channels/{cid}")
        await ari.collect(quiet=0.1)
    return got


@pytest.mark.parametrize("step", sorted(CASES))
async def test_continue_outcome_is_the_captured_one(
    sandbox: Sandbox, ari: RawAri, step: str
) -> None:
    assert await _run(sandbox, ari, CASES[step], True) == _captured(step + "-subscribed")
    assert await _run(sandbox, ari, CASES[step], False) == _captured(step)


async def test_an_unknown_label_is_404_and_the_channel_stays(sandbox: Sandbox, ari: RawAri) -> None:
    [s] = [s for s in json.loads(CAPTURE.read_text())["steps"] if s["step"] == "f-unknown-label"]
    [want] = [e for e in s["log"] if e.get("path", "").endswith("/continue")]
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    status, body = await ari.req(
        "POST", f"/channels/{call.id}/continue", context="voxflow-in", extension="100",
        label="nosuchlabel",
    )  # fmt: skip
    assert (status, body) == (want["status"], want["response"])
    assert await ari.collect(quiet=0.2) == []
    status, body = await ari.req("GET", f"/channels/{call.id}")
    assert (status, body["dialplan"]["app_name"]) == (200, "Stasis")


async def test_unsubscribing_a_channel_that_is_gone_is_422(sandbox: Sandbox, ari: RawAri) -> None:
    [s] = [s for s in json.loads(CAPTURE.read_text())["steps"]
           if s["step"] == "e-no-params-next-priority-subscribed"]  # fmt: skip
    [want] = [e for e in s["log"] if e.get("method") == "DELETE" and "subscription" in e["path"]]
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    source = f"channel:{call.id}"
    path = "/applications/voxflow/subscription"
    assert (await ari.req("POST", path, eventSource=source))[0] == 200
    assert (await ari.req("POST", f"/channels/{call.id}/continue"))[0] == 204  # -> Hangup()
    await ari.collect(quiet=0.2)
    got = await ari.req("DELETE", path, eventSource=source)
    assert (
        got
        == (want["status"], want["response"])
        == (422, {"message": "Event source was not subscribed to"})
    )

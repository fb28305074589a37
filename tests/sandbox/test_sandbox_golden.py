"""Golden fidelity: replay the captured REST steps against the sandbox and compare event
types, order and field sets with what the real Asterisk 22.10.1 sent (ids/timestamps aside)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def _captured(step_prefix: str) -> list[dict[str, Any]]:
    data = json.loads((CAPTURES / "events-annotated.json").read_text())
    return [e["event"] for e in data if e["step"].startswith(step_prefix)]


def _shape(ev: dict[str, Any]) -> tuple[str, frozenset[str], str]:
    """Type, top-level field set, and the channel/playback state."""
    state = ev.get("channel", {}).get("state") or ev.get("playback", {}).get("state", "")
    return ev["type"], frozenset(ev), state


async def test_scenario_a_inbound_play_dtmf_hangup(sandbox: Sandbox, ari: RawAri) -> None:
    # Same REST calls as capture step A: originate a Local channel whose ;2 half enters
    # Stasis(voxflow); the ;1 half runs the 'caller' dialplan (plays, then sends 123#).
    status, one = await ari.req(
        "POST",
        "/channels",
        endpoint="Local/100@voxflow-in",
        context="caller",
        extension="s",
        priority="1",
        callerId='"Alice" <5551234>',
        timeout="30",
    )
    assert status == 200 and one["name"].endswith(";1")
    status, body = await ari.req("POST", f"/channels/{one['id']}/answer")
    assert (status, body) == (409, {"message": "Channel not in Stasis application"})
    start = await ari.next("StasisStart")
    two = start["channel"]["id"]
    got = [start]
    await ari.req("POST", f"/channels/{two}/answer")
    got.append(await ari.next())
    await ari.req("POST", f"/channels/{two}/play", media="sound:hello-world", playbackId="pb-A-1")
    got += [await ari.next(), await ari.next()]
    for _ in range(4):
        got.append(await ari.next("ChannelDtmfReceived", timeout=20))
    await ari.req("POST", f"/channels/{two}/play", media="sound:this-does-not-exist")
    got += [await ari.next(), await ari.next()]
    await ari.req("POST", f"/channels/{two}/play", media="bogus:xyz")
    got.append(await ari.next())
    await ari.req("POST", f"/channels/{two}/variable", variable="VOXFLOW_TEST", value="42")
    got.append(await ari.next())
    await ari.req("DELETE", f"/channels/{two}", reason_code="16")
    got += await ari.collect()
    expected = [e for e in _captured("A-") if e["type"] != "ChannelUserevent"]
    assert [_shape(e) for e in got] == [_shape(e) for e in expected]
    assert start["channel"]["caller"] == {"name": "Alice", "number": "5551234"}
    assert [e["digit"] for e in got if e["type"] == "ChannelDtmfReceived"] == list("123#")


async def test_scenario_b_originate_into_app(sandbox: Sandbox, ari: RawAri) -> None:
    status, one = await ari.req(
        "POST",
        "/channels",
        endpoint="Local/100@voxflow-in",
        app="voxflow",
        appArgs="outbound,leg1",
        callerId="Bob <5550000>",
        channelId="vf-b-leg1",
        otherChannelId="vf-b-leg2",
    )
    assert status == 200 and one["id"] == "vf-b-leg1"
    got = await ari.collect()
    await ari.req("POST", "/channels/vf-b-leg2/ring")
    await ari.req("POST", "/channels/vf-b-leg2/answer")
    got += await ari.collect()
    expected = _captured("B-originate-app")
    assert [e["type"] for e in got] == [e["type"] for e in expected]
    assert [_shape(e) for e in got] == [_shape(e) for e in expected]
    assert got[-1]["args"] == ["outbound", "leg1"]


async def test_scenario_d_create_then_dial(sandbox: Sandbox, ari: RawAri) -> None:
    status, created = await ari.req(
        "POST", "/channels/create", endpoint="Local/wait@caller", app="voxflow", channelId="vf-d-1"
    )
    assert status == 200 and created["state"] == "Down"
    got = await ari.collect()
    assert (await ari.req("POST", "/channels/vf-d-1/dial", timeout="10"))[0] == 204
    got += await ari.collect()
    await ari.req("DELETE", "/channels/vf-d-1")
    got += await ari.collect()
    expected = _captured("D-create-dial")
    assert [_shape(e) for e in got] == [_shape(e) for e in expected]

"""A snoop channel's life as Asterisk 22 showed it (captures/external-media-ordering.json, step
snoop-lifecycle): DELETE gives ChannelHangupRequest (32, soft) then StasisEnd, never
ChannelDestroyed; when the spied channel hangs up the snoop follows it with StasisEnd alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "external-media-ordering.json"


def _captured(snoop: str) -> list[tuple[str, ...]]:
    """The captured events of snoop channel ``snoop``, as (type, cause, soft)."""
    [step] = [s for s in json.loads(CAPTURE.read_text())["steps"] if s["step"] == "snoop-lifecycle"]
    return [
        _shape(e["event"])
        for e in step["log"]
        if "event" in e and e["event"].get("channel", {}).get("id") == snoop
    ]


def _shape(ev: dict[str, Any]) -> tuple[str, ...]:
    if ev["type"] == "ChannelHangupRequest":
        return (ev["type"], str(ev["cause"]), str(ev.get("soft")))
    return (ev["type"],)


async def _spied(sandbox: Sandbox, ari: RawAri) -> str:
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204
    await ari.collect(quiet=0.1)
    return call.id


async def _snoop(ari: RawAri, spied: str, sid: str, spy: str) -> None:
    status, body = await ari.req(
        "POST", f"/channels/{spied}/snoop", spy=spy, app="voxflow", snoopId=sid
    )
    assert (status, body["state"]) == (200, "Up")
    assert (await ari.next("StasisStart"))["channel"]["id"] == sid


async def test_deleting_a_snoop_never_destroys_it(sandbox: Sandbox, ari: RawAri) -> None:
    spied = await _spied(sandbox, ari)
    await _snoop(ari, spied, "sl-snoop", "in")
    assert (await ari.req("DELETE", "/channels/sl-snoop"))[0] == 204
    got = [_shape(e) for e in await ari.collect(quiet=0.2) if e["channel"]["id"] == "sl-snoop"]
    want = [e for e in _captured("sl-snoop") if e[0] != "StasisStart"]
    assert got == want == [("ChannelHangupRequest", "32", "True"), ("StasisEnd",)]


async def test_a_snoop_follows_its_spied_channel_with_stasis_end_only(
    sandbox: Sandbox, ari: RawAri
) -> None:
    spied = await _spied(sandbox, ari)
    await _snoop(ari, spied, "sl-snoop2", "both")
    assert (await ari.req("DELETE", f"/channels/{spied}"))[0] == 204
    events = await ari.collect(quiet=0.2)
    got = [_shape(e) for e in events if e["channel"]["id"] == "sl-snoop2"]
    want = [e for e in _captured("sl-snoop2") if e[0] != "StasisStart"]
    assert got == want == [("StasisEnd",)]
    spied_end = next(i for i, e in enumerate(events) if e["type"] == "StasisEnd")
    snoop_end = next(i for i, e in enumerate(events) if e["channel"]["id"] == "sl-snoop2")
    assert spied_end < snoop_end  # the spied channel leaves first, as captured
    assert await ari.req("GET", "/channels/sl-snoop2") == (404, {"message": "Channel not found"})
    assert sandbox.pbx.channels.get("sl-snoop2") is None

"""StasisBroadcast() and POST /events/claim as the sandbox emulates them
(captures/stasis-broadcast.json): raw ARI clients for capb1, capb2 (matching ^capb) and cap
(not matching)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from conftest import RawAri, connected

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "stasis-broadcast.json"


@contextlib.asynccontextmanager
async def three_apps(sb: Sandbox) -> AsyncIterator[tuple[RawAri, RawAri, RawAri]]:
    async with (
        connected(sb, "capb1") as b1,
        connected(sb, "capb2") as b2,
        connected(sb, "cap") as c,
    ):
        yield b1, b2, c


def captured(step: str) -> list[dict[str, Any]]:
    steps = json.loads(CAPTURE.read_text())["steps"]
    log: list[dict[str, Any]] = next(s for s in steps if s["step"] == step)["log"]
    return log


async def test_a_claim_race_has_one_winner_as_captured(sandbox: Sandbox) -> None:
    async with three_apps(sandbox) as (b1, b2, cap):
        call = await sandbox.place_broadcast_call(
            "5550002",
            "s",
            name="Bob",
            timeout=3.0,
            app_filter="^capb",
            args=["sales", "prio"],
            notify_claimed=True,
        )
        offers = [await b1.next("CallBroadcast"), await b2.next("CallBroadcast")]
        want = next(e["event"] for e in captured("claim-race-winner-and-loser") if "ws" in e)
        for offer in offers:
            assert set(offer) == set(want)
            assert (offer["caller"], offer["called"]) == ("5550002", "s")
            assert offer["channel"]["state"] == "Ring"
            assert offer["channel"]["dialplan"]["app_name"] == "StasisBroadcast"
        statuses = {}
        for app in ("capb1", "capb2"):
            status, body = await b1.req("POST", "/events/claim", channelId=call.id, application=app)
            statuses[app] = (status, body)
        assert statuses["capb1"] == (204, "")
        assert statuses["capb2"] == (
            409,
            {"message": "Channel has already been claimed by another application"},
        )
        for client in (b1, b2):
            assert (await client.next("CallClaimed"))["winner_app"] == "capb1"
        start = await b1.next("StasisStart")
        assert start["args"] == ["sales", "prio"]
        assert await cap.collect(quiet=0.1) == []  # not matching the filter: nothing
        assert (await b1.req("POST", f"/channels/{call.id}/continue"))[0] == 204
        await b1.next("StasisEnd")
        late = await b2.req("POST", "/events/claim", channelId=call.id, application="capb2")
        assert late == (404, {"message": "Channel not found or not in broadcast state"})
    assert [s for _, _, s in sandbox.broadcasts.claims] == [204, 409, 404]


async def test_an_unclaimed_call_times_out_with_stasisstatus_timeout(sandbox: Sandbox) -> None:
    async with three_apps(sandbox) as (b1, _b2, _cap):
        call = await sandbox.place_broadcast_call(timeout=0.2, app_filter="^capb")
        await b1.next("CallBroadcast")
        await call.wait_hangup(5.0)
        assert [e["type"] for e in call.experience()] == ["dialplan", "hangup"]
        assert call.experience()[0]["STASISSTATUS"] == "TIMEOUT"
        late = await b1.req("POST", "/events/claim", channelId=call.id, application="capb1")
        assert late[0] == 404


async def test_claim_errors_and_a_claim_for_an_app_with_no_socket(sandbox: Sandbox) -> None:
    async with three_apps(sandbox) as (b1, _b2, _cap):
        assert await b1.req("POST", "/events/claim", channelId="x", application="capb1") == (
            404,
            {"message": "Channel not found or not in broadcast state"},
        )
        assert await b1.req("POST", "/events/claim", channelId="x") == (
            400,
            {"message": "application parameter is required"},
        )
        assert await b1.req("POST", "/events/claim", application="capb1") == (
            400,
            {"message": "channelId parameter is required"},
        )
        call = await sandbox.place_broadcast_call(timeout=3.0, app_filter="^capb")
        await b1.next("CallBroadcast")
        status, _ = await b1.req(
            "POST", "/events/claim", channelId=call.id, application="capb-not-connected"
        )
        assert status == 204  # the claim does not check the app...
        await call.wait_hangup(5.0)
        assert call.experience()[0] == {**call.experience()[0], "STASISSTATUS": "FAILED"}


async def test_the_control_api_places_broadcast_calls_and_configures_outbound_sockets(
    sandbox: Sandbox,
) -> None:
    async with three_apps(sandbox) as (b1, _b2, _cap):
        async with aiohttp.ClientSession(headers=b1.headers) as http:
            url = f"{sandbox.base_url}/sandbox/broadcast-calls"
            body = {"to": "200", "timeout": 2, "app_filter": "^capb", "args": ["x"]}
            async with http.post(url, json=body) as resp:
                assert resp.status == 201
                cid = (await resp.json())["id"]
            offer = await b1.next("CallBroadcast")
            assert offer["channel"]["id"] == cid and offer["called"] == "200"
            url = f"{sandbox.base_url}/sandbox/outbound-websockets"
            async with http.post(url, json={"app": "ows", "uri": "ws://127.0.0.1:9/x"}) as resp:
                assert resp.status == 204
            async with http.post(url, json={"uri": "http://nope"}) as resp:
                assert resp.status == 400  # not a ws:// URI
    assert sandbox.outbound.per_call("ows") is not None

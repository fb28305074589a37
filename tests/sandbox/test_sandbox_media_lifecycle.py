"""An externalMedia channel's life in a bridge compared with real Asterisk 22's, event by event
(captures/external-media-ordering.json, step ``externalMedia-0``): set-up after the REST answer,
joining a bridge with an answered call (BRIDGEPEER both ways), and a DELETE while bridged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "external-media-ordering.json"


def _log(name: str) -> list[dict[str, Any]]:
    [step] = [s for s in json.loads(CAPTURE.read_text())["steps"] if s["step"] == name]
    return list(step["log"])


def _shape(ev: dict[str, Any], ids: dict[str, str]) -> tuple[Any, ...]:
    who = ids.get(ev.get("channel", {}).get("id", ""), "")
    t = ev["type"]
    if t == "ChannelVarset":
        value = "<name>" if ev["variable"] == "BRIDGEPEER" and ev["value"] else ev["value"]
        return (t, who, ev["variable"], value)
    if t in ("ChannelHangupRequest", "ChannelDestroyed"):
        return (t, who, ev["cause"], ev.get("soft", False))
    if t == "Dial":
        return (t, ids.get(ev["peer"]["id"], ""), ev["dialstatus"], "caller" in ev)
    return (t, who)


async def test_external_media_in_a_bridge_lives_as_captured(sandbox: Sandbox, ari: RawAri) -> None:
    log = _log("externalMedia-0")
    ids = {"cap-em-0": "em", "cap-anchor": "anchor"}
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.req("POST", "/bridges/br", type="mixing")
    await ari.req("POST", "/bridges/br/addChannel", channel=call.id)
    await ari.collect(quiet=0.1)
    mine = {"em1": "em", call.id: "anchor"}
    status, _ = await ari.req(
        "POST", "/channels/externalMedia", app="voxflow", channelId="em1",
        external_host="127.0.0.1:40000", format="ulaw",
    )  # fmt: skip
    assert status == 200
    got = await ari.collect(quiet=0.1)
    await ari.req("POST", "/bridges/br/addChannel", channel="em1")
    got += await ari.collect(quiet=0.1)
    delete = next(e for e in log if e.get("method") == "DELETE")
    assert (await ari.req("DELETE", "/channels/em1"))[0] == delete["status"]
    got += await ari.collect(quiet=0.2)
    want = [_shape(e["event"], ids) for e in log if "event" in e]
    assert [_shape(e, mine) for e in got] == want

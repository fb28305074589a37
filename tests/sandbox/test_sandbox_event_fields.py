"""Every event the sandbox sends has, in each nested object, a field set real Asterisk 22 sent
in an event of the same type (all captures in tests/data/captures): a session that answers,
plays, takes DTMF, sets a variable, bridges, plays to and records a bridge and a channel, adds
an externalMedia channel, continues into the dialplan and hangs up. (The golden tests compare
the top-level fields of whole scenarios; this looks inside: channel, bridge, playback,
recording objects.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def _objects(x: dict[str, Any], at: str = "") -> dict[str, frozenset[str]]:
    """Field sets of an event and of each object inside it, by path (``.bridge``)."""
    out = {at or ".": frozenset(x)}
    for k, v in x.items():
        if isinstance(v, dict):
            out.update(_objects(v, f"{at}.{k}"))
    return out


def _events(o: Any) -> list[dict[str, Any]]:
    if isinstance(o, list):
        return [e for v in o for e in _events(v)]
    if not isinstance(o, dict):
        return []
    found = [e for v in o.values() for e in _events(v)]
    kind = o.get("type")
    if isinstance(kind, str) and "timestamp" in o and not kind.startswith("REST"):
        found.append(o)
    return found


def _captured() -> dict[tuple[str, str], set[frozenset[str]]]:
    seen: dict[tuple[str, str], set[frozenset[str]]] = {}
    for path in sorted(CAPTURES.glob("*.json")):
        for ev in _events(json.loads(path.read_text())):
            for at, fields in _objects(ev).items():
                seen.setdefault((ev["type"], at), set()).add(fields)
    return seen


async def _session(sandbox: Sandbox, ari: RawAri) -> list[dict[str, Any]]:
    call = await sandbox.place_call(to="100")
    got = [await ari.next("StasisStart")]
    cid = call.id
    await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    await ari.req("POST", f"/channels/{cid}/answer")
    await ari.req("POST", f"/channels/{cid}/play", media="sound:beep")
    await call.press("1")
    await ari.req("POST", f"/channels/{cid}/variable", variable="X", value="1")
    await ari.req("POST", "/bridges/b", type="mixing")
    await ari.req("POST", "/bridges/b/addChannel", channel=cid)
    await ari.req("POST", "/bridges/b/play", media="sound:beep")
    await ari.req("POST", "/bridges/b/record", name="rb", format="wav", maxDurationSeconds=1)
    got += await ari.collect(quiet=1.5)
    await ari.req("POST", "/bridges/b/removeChannel", channel=cid)
    await ari.req("POST", f"/channels/{cid}/record", name="rc", format="wav", maxDurationSeconds=1)
    got += await ari.collect(quiet=1.5)
    await ari.req(
        "POST", "/channels/externalMedia", app="voxflow", channelId="em",
        external_host="127.0.0.1:40000", format="ulaw",
    )  # fmt: skip
    got += await ari.collect(quiet=0.2)
    await ari.req("DELETE", "/channels/em")
    await ari.req("POST", "/applications/voxflow/subscription", eventSource="bridge:b")
    await ari.req("DELETE", "/bridges/b")
    await ari.req(
        "POST", f"/channels/{cid}/continue", context="voxflow-in", extension="200", priority=1
    )
    got += await ari.collect(quiet=0.3)
    await ari.req("DELETE", f"/channels/{cid}")
    return got + await ari.collect(quiet=0.3)


async def test_every_object_in_every_event_has_a_captured_field_set(
    sandbox: Sandbox, ari: RawAri
) -> None:
    captured = _captured()
    got = await _session(sandbox, ari)
    compared = set()
    wrong = []
    for ev in got:
        for at, fields in _objects(ev).items():
            key = (ev["type"], at)
            if key in captured:  # a type/object never captured has nothing to compare with
                compared.add(key)
                if fields not in captured[key]:
                    best = min(captured[key], key=lambda c: len(c ^ fields))
                    wrong.append((key, sorted(best - fields), sorted(fields - best)))
    assert wrong == []
    assert len(compared) >= 25, sorted(compared)  # the session really produced them

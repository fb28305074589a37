"""REST answers compared with real Asterisk 22's (captures/rest-sample.json): the captured
requests are sent again, with the captured ids mapped to the sandbox's, and each answer's status,
content type and body (errors: exactly; successes: the same fields, recursively) compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import RawAri

from voxflow.sandbox import Sandbox

CAPTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "captures" / "rest-sample.json").read_text()
)


def _fields(x: Any) -> Any:
    """The shape of a JSON body: keys (recursively), the first element of a list."""
    if isinstance(x, dict):
        return {k: _fields(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_fields(x[0])] if x else []
    return type(x).__name__


async def _send(sb: Sandbox, method: str, path: str, params: dict[str, Any], auth: bool) -> Any:
    headers = RawAri(sb, None).headers if auth else {}  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as s:
        async with s.request(
            method, sb.ari_url + path, params=params or None, headers=headers
        ) as r:
            text = await r.text()
            ctype = r.content_type if text else None
            body = json.loads(text) if ctype == "application/json" else (text or None)
            return r.status, ctype, body


def _compare(entry: dict[str, Any], got: tuple[int, str | None, Any]) -> None:
    status, ctype, body = got
    want = entry["response"]
    what = f"{entry['method']} {entry['path']} {entry['params']}"
    assert (status, ctype) == (entry["status"], entry["content_type"] or None), what
    if status >= 300:
        assert body == want, what
    else:
        assert _fields(body) == _fields(want), what


STATELESS = [e for e in CAPTURE if e["step"] in ("info", "D-misc-errors", "D-device-state")]


@pytest.mark.parametrize("i", range(len(STATELESS)))
async def test_a_request_that_needs_no_call_is_answered_as_captured(
    sandbox: Sandbox, ari: RawAri, i: int
) -> None:
    entry = STATELESS[i]
    params = {k: str(v) for k, v in (entry["params"] or {}).items()}
    if entry["path"].startswith("/deviceStates") and entry["method"] != "PUT":
        await _send(sandbox, "PUT", entry["path"], {"deviceState": "BUSY"}, True)
    auth = entry["status"] != 401
    _compare(entry, await _send(sandbox, entry["method"], entry["path"], params, auth))


# captured id -> what stands for it here: the Stasis call, the bridge, the recordings
_IDS = {"vf-b-leg1": "{cid}", "vf-b-leg2": "{cid}", "vf-bridge-1": "br1"}
WITH_CALL = [
    e for e in CAPTURE
    if (e["step"], e["method"]) in {("B-dtmf-via-ari", "POST"), ("B-record-errors", "POST"),
                                     ("B-record-channel", "POST"), ("B-record-channel", "DELETE"),
                                     ("B-record-channel", "GET"), ("B-bridge-teardown", "POST"),
                                     ("A-misc", "POST")}
    and "/moh" not in e["path"] and "/hold" not in e["path"]
]  # fmt: skip


async def test_requests_on_a_call_are_answered_as_captured(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.req("POST", "/bridges/br1", type="mixing")
    await ari.req("POST", "/bridges/br1/addChannel", channel=call.id)
    ids = {k: v.format(cid=call.id) for k, v in _IDS.items()} | {"1795502929.1": call.id}
    for entry in WITH_CALL:
        path = entry["path"]
        params = {k: str(v) for k, v in (entry["params"] or {}).items()}
        for old, new in ids.items():
            path = path.replace(old, new)
            params = {k: v.replace(old, new) for k, v in params.items()}
        if "/record" in path and path.startswith("/channels") and entry["status"] == 201:
            await ari.req("POST", "/bridges/br1/removeChannel", channel=call.id)  # not bridged
        if path.endswith("/removeChannel") and entry["status"] == 204:
            await ari.req("POST", "/recordings/live/vf-x/stop")  # still recording here
            await ari.req("POST", "/bridges/br1/addChannel", channel=call.id)
        if path.endswith("/copy"):  # the capture copied it after it ended
            await ari.req("POST", "/recordings/live/vf-chan-rec/stop")
        got = await _send(sandbox, entry["method"], path, params, True)
        if got[0] >= 300 or entry["status"] >= 300 or entry["method"] != "GET":
            _compare(entry, got)
        else:  # a live recording's GET: the fields, the state aside
            assert _fields(got[2]) == _fields(entry["response"]), path

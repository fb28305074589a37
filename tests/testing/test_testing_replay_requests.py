"""voxflow replay compares what HTTP requests sent (body, headers), traced without secrets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from http_kit import local_http

from voxflow.runtime.agent_actions import ActionRequest
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.routes import action_fields, metadata_secrets, request_fields
from voxflow.runtime.server import FlowServer
from voxflow.runtime.trace import read_trace
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.testing.replay import replay_trace

TOKEN = "crm-tok-5f1e9a7c"  # the call's metadata crm_token: a credential
PIN = "4826"  # pressed into a sensitive variable
CRM = """\
flow crm:
    direction outbound

var pin: string sensitive
var account: string = "778899"
var res: map

state start:
    gather "Enter your PIN." into pin:
        capture digits
        min_digits 4
        max_digits 4
        on noinput, nomatch -> retry
        on exhausted -> bye
    http post "URL/crm/{{ call.metadata.crm_token }}" into res:
        headers {"Authorization": "Bearer {{ call.metadata.crm_token }}",
                 "X-Pin": "{{ pin }}", "X-Source": "ivr"}
        body {"customer": "{{ account }}", "pin": pin,
              "note": "via {{ call.metadata.crm_token }}"}
        on ok, error, timeout -> bye

state bye:
    say "Bye."
    hangup
"""


async def _traced_call(tmp_path: Path) -> tuple[Path, Path, list[dict[str, Any]]]:
    """A real outbound call on the sandbox posting to a local CRM; the trace, the flow, and
    what the CRM received."""
    got: list[dict[str, Any]] = []

    async def crm(request: web.Request) -> web.Response:
        got.append({"headers": dict(request.headers), "body": await request.json()})
        return web.json_response({"ok": True})

    traces = tmp_path / "traces"
    async with local_http("/crm/{token}", crm) as url, Sandbox(port=0) as sb:
        flow = tmp_path / "crm.flow"
        flow.write_text(CRM.replace("URL", url))
        reg = FlowRegistry()
        reg.load([flow])
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow")
        server = FlowServer(app, reg, Settings(grace_period=5, trace_dir=str(traces)))
        stop = asyncio.Event()
        serve = asyncio.ensure_future(server.serve(stop))
        try:
            await sb.wait_app("voxflow", 20)
            meta = {"crm_token": TOKEN}
            placed = asyncio.ensure_future(server.call_out("crm", "PJSIP/ada", metadata=meta))
            callee = await sb.next_outbound(timeout=20)
            await callee.wait_answered(20)
            await asyncio.sleep(0.4)
            await callee.press(PIN)
            end = await asyncio.wait_for(placed, 60)
        finally:
            stop.set()
            await serve
    assert end.outcome == "completed", end
    (trace,) = sorted(traces.glob("*.jsonl"))
    return trace, flow, got


async def test_a_request_s_body_and_headers_are_traced_redacted_and_compared(
    tmp_path: Path,
) -> None:
    """The POST's body and headers are in its route record with the token (metadata) and the
    PIN (sensitive) in no record; the replay on the same flow is the same, on a flow whose body
    template sends the caller instead of the account it is a difference (exit 1 in the CLI)."""
    trace, flow, got = await _traced_call(tmp_path)
    assert got and got[0]["body"]["pin"] == PIN and got[0]["headers"]["X-Pin"] == PIN
    assert got[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"  # the CRM got them
    text = trace.read_text()
    assert TOKEN not in text and PIN not in text, text
    [route] = [r for r in read_trace(trace) if r["type"] == "route"]
    assert route["target"].endswith("/crm/<redacted>")
    assert route["headers"] == [
        ["Authorization", "<redacted>"], ["X-Pin", "<redacted>"], ["X-Source", "ivr"],
    ]  # fmt: skip
    assert route["body"] == {"customer": "778899", "pin": "<redacted>", "note": "via <redacted>"}
    assert read_trace(trace)[0]["requests"] is True

    same = replay_trace(trace, str(flow))
    assert same.same, same.render()
    assert "routing and the end match the trace" in same.render()
    assert "not compared" not in same.render()

    source = flow.read_text()
    flow.write_text(source.replace('"{{ account }}"', '"{{ call.caller }}"'))
    edited = replay_trace(trace, str(flow))
    assert edited.differences == [  # the call had no caller id: the replay neither
        'http body.customer "778899" -> "" at state start, routing step 1'
    ], edited.render()
    _other_edits(trace, flow, source)


def _other_edits(trace: Path, flow: Path, source: str) -> None:
    """A changed or removed header is a difference, even a redacted one; a trace written
    before requests were traced replays the same, saying what it did not compare."""
    flow.write_text(source.replace('"X-Source": "ivr"', '"X-Source": "web"'))
    assert replay_trace(trace, str(flow)).differences == [
        'http header X-Source "ivr" -> "web" at state start, routing step 1'
    ]
    flow.write_text(source.replace('"Authorization": "Bearer {{ call.metadata.crm_token }}",', ""))
    assert replay_trace(trace, str(flow)).differences == [
        'http header Authorization "<redacted>" -> (none) at state start, routing step 1'
    ]
    flow.write_text(source.replace('"pin": pin,', ""))
    assert replay_trace(trace, str(flow)).differences == [
        'http body.pin "<redacted>" -> (none) at state start, routing step 1'
    ]
    old = read_trace(trace)
    for rec in old:
        for key in ("requests", "headers", "body"):
            rec.pop(key, None)
    before = trace.with_name("before.jsonl")
    before.write_text("".join(json.dumps(r) + "\n" for r in old))
    report = replay_trace(before, str(flow))  # the flow without the pin in its body
    assert report.same, report.render()
    out = report.render()
    assert "this trace records no request bodies, headers or agent actions" in out
    assert "(request bodies, headers and agent actions not compared)" in out


def test_what_a_route_record_shows_of_a_request() -> None:
    """Credential-named headers and body keys are redacted whole, the call's metadata secrets
    and provider keys wherever they are, the call id is ``<call id>``; the rest is kept."""
    fields = request_fields(
        [("X-Api-Key", "plain"), ("X-Call", "c-77/tok-123456"), ("Accept", "json")],
        {"password": "hunter2", "items": [1, "sk-abcdefghijklmnop", 98765], "who": "ann"},
        "c-77",
        metadata_secrets({"crm_token": "tok-123456", "auth_pin": 98765, "name": "ann"}),
    )
    assert fields == {
        "headers": [
            ["X-Api-Key", "<redacted>"], ["X-Call", "<call id>/<redacted>"], ["Accept", "json"],
        ],
        "body": {"password": "<redacted>", "items": [1, "sk-<redacted>", "<redacted>"],
                 "who": "ann"},
    }  # fmt: skip


def test_what_an_action_route_shows() -> None:
    """An agent action's request: its name, the model's arguments (a credential-named one
    redacted), the call id in its URL as ``<call id>``; ``(not prepared)`` when nothing was
    sent."""
    req = ActionRequest("POST", "https://crm.example/c-77/t?api_key=k1", (("Cookie", "s=1"),), {})
    assert action_fields("note", {"text": "hi", "password": "pw"}, req, "c-77") == {
        "op": "action", "target": "POST https://crm.example/<call id>/t?api_key=<redacted>",
        "action": "note", "args": {"text": "hi", "password": "<redacted>"},
        "headers": [["Cookie", "<redacted>"]], "body": {},
    }  # fmt: skip
    assert action_fields("note", {}, None, "c-77")["target"] == "(not prepared)"

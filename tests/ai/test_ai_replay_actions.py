"""``voxflow replay`` of a real agent call whose model called a flow action: the action's
request (its name, the model's arguments, the rendered URL, headers and body) is traced
without secrets, and a replay on a flow whose action now sends something else says so.

The call is ``voxflow run --virtual-time`` on the embedded sandbox with the LLM and the STT of
a local OpenAI-compatible server and the action's CRM a local aiohttp server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import forked
import pytest
from ai_fakes import FakeOpenAI, heard, sse, tool_chunks
from aiohttp import web
from http_kit import local_http

from voxflow.runtime.trace import read_trace
from voxflow.testing.replay import replay_trace

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

KEY = "sk-test-7f3a9c1e5b"
PIN = "4826-991"  # a sensitive variable's value, sent in the action's header and body
FLOW = """\
flow tickets:
    answers "100"

var account: string = "778899"
var pin: string = "PIN" sensitive
var ref: string = "none"

state start:
    answer
    agent "You open support tickets.":
        greeting "How can I help?"
        action open_ticket(summary: string "what is wrong") "Open a ticket":
            http post "CRM/tickets"
            headers {"X-Pin": "{{ pin }}", "X-Source": "ivr"}
            body {"summary": summary, "customer": "{{ account }}", "pin": pin}
        tool done(ticket: string as ref "the ticket number") "The ticket is open" -> bye
        on max_turns, timeout, noinput, exhausted, error -> bye

state bye:
    say "Your ticket is {{ ref }}. Bye."
    hangup
"""
CALLER = """\
wait for "How can I help" 60s
say "my phone is broken"
wait for "Bye" 60s
wait 5s
hangup
"""


async def _traced_call(fake: FakeOpenAI, tmp_path: Path) -> tuple[Path, Path, list[Any]]:
    """The call, traced; the trace, the flow and what the CRM received."""
    got: list[Any] = []

    async def crm(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.json()))
        return web.json_response({"ticket": "T-17"})

    fake.transcribe.append(heard("my phone is broken"))
    fake.chat.append(sse(tool_chunks([("open_ticket", '{"summary": "broken phone"}')])))
    fake.chat.append(sse(tool_chunks([("done", '{"ticket": "T-17"}')])))
    (tmp_path / "caller.txt").write_text(CALLER)
    env = {
        **os.environ,
        "VOXFLOW_LLM_BASE_URL": fake.url,
        "VOXFLOW_LLM_MODEL": "test-model",
        "VOXFLOW_LLM_API_KEY": KEY,
        "VOXFLOW_STT_PROVIDER": "openai",
        "VOXFLOW_STT_BASE_URL": fake.url,
        "VOXFLOW_STT_API_KEY": KEY,
    }
    async with local_http("/tickets", crm) as url:
        flow = tmp_path / "tickets.flow"
        flow.write_text(FLOW.replace("CRM", url).replace("PIN", PIN))
        proc = await forked.spawn(
            "run", str(flow), "--caller", str(tmp_path / "caller.txt"),
            "--trace", str(tmp_path / "traces"), "--virtual-time",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            prog=str(Path(sys.executable).with_name("voxflow")),
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 100)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, (out + err).decode()[-3000:]
    (trace,) = list((tmp_path / "traces").glob("*.jsonl"))
    return trace, flow, got


async def test_an_agent_action_s_request_is_traced_and_compared(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    trace, flow, got = await _traced_call(fake_openai, tmp_path)
    assert [body for _, body in got] == [
        {"summary": "broken phone", "customer": "778899", "pin": PIN}
    ]  # the CRM got the PIN: the trace never has it
    text = trace.read_text()
    assert PIN not in text and KEY not in text
    records = read_trace(trace)
    [route] = [r for r in records if r["type"] == "route"]
    assert route["op"] == "action" and route["action"] == "open_ticket"
    assert route["target"].startswith("POST http://127.0.0.1:") and route["state"] == "start"
    assert route["args"] == {"summary": "broken phone"}
    assert route["t"] >= 1.0  # virtual seconds: the greeting and the caller's words came first
    assert route["headers"] == [["X-Pin", "<redacted>"], ["X-Source", "ivr"]]
    assert route["body"] == {"summary": "broken phone", "customer": "778899", "pin": "<redacted>"}
    [answer] = [r for r in records if r["type"] == "http"]
    assert (answer["action"], answer["outcome"], answer["status"]) == ("open_ticket", "ok", 200)

    same = replay_trace(trace, str(flow))
    assert same.same, same.render()
    assert "not compared" not in same.render()
    assert same.result is not None and same.result.variables["ref"] == "T-17"  # the exit's args

    source = flow.read_text()
    flow.write_text(source.replace('"{{ account }}"', '"{{ call.caller }}"'))
    edited = replay_trace(trace, str(flow))
    assert edited.differences == [
        'action open_ticket body.customer "778899" -> "+15550100" at state start, routing step 1'
    ], edited.render()
    _other_edits(trace, flow, source)


def _other_edits(trace: Path, flow: Path, source: str) -> None:
    """A header sent otherwise, an action or an exit tool the step no longer offers."""
    flow.write_text(source.replace('"X-Source": "ivr"', '"X-Source": "web"'))
    assert replay_trace(trace, str(flow)).differences == [
        'action open_ticket header X-Source "ivr" -> "web" at state start, routing step 1'
    ]
    flow.write_text(source.replace("action open_ticket(", "action open_case("))
    report = replay_trace(trace, str(flow))
    assert len(report.differences) == 2, report.render()
    assert report.differences[0].startswith("action open_ticket (POST http://127.0.0.1:")
    assert report.differences[0].endswith("routing step 1: the flow now does not do it")
    assert report.differences[1] == (
        "agent step: the trace's model calls action 'open_ticket' but the step offers: open_case"
    )
    flow.write_text(source.replace("tool done(", "tool finish("))
    assert "agent step: the trace's model calls tool 'done' but the step offers: finish" in (
        replay_trace(trace, str(flow)).differences
    )
    # a trace written before action requests were: the edited body is not seen, and it says so
    flow.write_text(source.replace('"{{ account }}"', '"{{ call.caller }}"'))
    old = [r for r in read_trace(trace) if "action" not in r]
    old[0].pop("requests")
    before = trace.with_name("before.jsonl")
    before.write_text("".join(json.dumps(r) + "\n" for r in old))
    report = replay_trace(before, str(flow))
    assert report.same, report.render()
    assert "(request bodies, headers and agent actions not compared)" in report.render()

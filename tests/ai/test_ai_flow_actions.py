"""Flow-declared agent actions at run time: the step function hands the IR actions and the
flow's names to FlowAgentRunner, the model (a local OpenAI-compatible server) calls the action,
a local aiohttp API answers, and the model's next request carries the answer as a ``tool``
message. Failing endpoints (500, timeout, oversized, unreachable) come back as error results and
the conversation goes on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pytest
from ai_fakes import FakeOpenAI, FakeVoice, ScriptedCall, sse, tool_chunks
from aiohttp import web

from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.agent_actions import RequestError, render_request
from voxflow.runtime.agent_step import FlowAgentRunner
from voxflow.runtime.step import RunState, initial_state, step

FLOW = """\
flow shop:
    answers "100"
    http_timeout 2s

var region: string = "eu"
var order: string = ""

state start:
    answer
    agent "You help with orders.":
        action lookup_order(order_id: string "the order number") "Look up an order":
            http get "{base}/orders/{{{{ order_id }}}}?region={{{{ region }}}}"
            headers {{"Authorization": "Bearer {{{{ call.metadata.shop_token }}}}"}}
        action slow(x: string) "A slow endpoint":
            http get "{base}/slow/{{{{ x }}}}" timeout 300ms
        action broken() "A failing endpoint":
            http post "{base}/broken"
        action big() "A huge answer":
            http get "{base}/big"
        action note(text: string, priority: number) "Leave a note":
            http post "{base}/notes"
            body {{"text": upper(text), "priority": priority, "caller": call.caller}}
        tool done(order_id: string as order) "Finished" -> bye
        on max_turns, timeout, noinput, exhausted, error -> bye

state bye:
    say "Bye {{{{ order }}}}"
    hangup
"""


@dataclass
class Api:
    """A local JSON API recording what it received."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "auth": request.headers.get("Authorization"),
                "body": json.loads(body) if body else None,
            }
        )
        if request.path.startswith("/orders/"):
            return web.json_response({"id": request.match_info["tail"][7:], "status": "shipped"})
        if request.path.startswith("/slow/"):
            await asyncio.sleep(5)
            return web.json_response({})
        if request.path == "/broken":
            return web.Response(status=500, text="database on fire")
        if request.path == "/big":
            return web.Response(text="x" * 100_000, content_type="text/plain")
        return web.json_response({"saved": True})


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    api = Api()
    runner = web.AppRunner(api.app(), shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    api.base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield api
    finally:
        await runner.cleanup()


def _flow(base: str) -> ir.Flow:
    result = compile_flow(FLOW.format(base=base), "shop.flow")
    assert result.flow is not None, [(d.code, d.message) for d in result.diagnostics]
    return result.flow


def _to_agent(flow: ir.Flow, metadata: dict[str, Any]) -> tuple[RunState, ev.Agent]:
    info = ev.CallInfo("c1", "+15551234567", "100")
    first = replace(initial_state(flow, info), metadata=MappingProxyType(dict(metadata)))
    state, cmds = step(flow, first, ev.Start(0))
    for _ in range(5):
        agent = next((c for c in cmds if isinstance(c, ev.Agent)), None)
        if agent is not None:
            return state, agent
        op = next(c for c in cmds if isinstance(c, ev.Op))
        state, cmds = step(flow, state, ev.OpDone(op.cid, None, now=0))
    raise AssertionError("no agent command")


def _tool_messages(fake: FakeOpenAI, request: int) -> list[dict[str, Any]]:
    return [m for m in fake.requests[request].body["messages"] if m["role"] == "tool"]


async def _run(
    fake: FakeOpenAI, cmd: ev.Agent, calls: list[tuple[str, dict[str, Any]]], **kw: Any
) -> dict[str, Any]:
    """The model calls ``calls`` one per round, then the exit ``done``."""
    for name, args in calls:
        fake.chat.append(sse(tool_chunks([(name, json.dumps(args))])))
    fake.chat.append(sse(tool_chunks([("done", '{"order_id": "A1"}')], text="All done.")))
    llm = OpenAIChatModel(model="m", base_url=fake.url, timeout=10)
    call = ScriptedCall(FakeVoice(["where is my order A1"]), llm)
    try:
        return await asyncio.wait_for(FlowAgentRunner(**kw)(call, cmd), 60)
    finally:
        await llm.aclose()


async def test_the_model_calls_an_action_and_gets_the_json_back_as_a_tool_message(
    fake_openai: FakeOpenAI, api: Api
) -> None:
    flow = _flow(api.base)
    state, cmd = _to_agent(flow, {"shop_token": "tok-XYZ"})
    assert [a.name for a in cmd.actions] == ["lookup_order", "slow", "broken", "big", "note"]
    assert cmd.action_vars is not None and cmd.action_vars["region"] == "eu"
    result = await _run(fake_openai, cmd, [("lookup_order", {"order_id": "A1"})])
    assert result["outcome"] == "tool:done"
    assert api.seen == [
        {
            "method": "GET",
            "path": "/orders/A1",
            "query": {"region": "eu"},
            "auth": "Bearer tok-XYZ",
            "body": None,
        }
    ]
    offered = {t["function"]["name"] for t in fake_openai.requests[0].body["tools"]}
    assert offered == {"lookup_order", "slow", "broken", "big", "note", "done"}
    spec = next(
        t["function"] for t in fake_openai.requests[0].body["tools"]
        if t["function"]["name"] == "lookup_order"
    )  # fmt: skip
    assert spec["parameters"]["required"] == ["order_id"]
    assert spec["parameters"]["properties"]["order_id"]["description"] == "the order number"
    call_id = fake_openai.requests[1].body["messages"][-2]["tool_calls"][0]["id"]
    (tool_msg,) = _tool_messages(fake_openai, 1)
    assert tool_msg["tool_call_id"] == call_id
    assert json.loads(tool_msg["content"]) == {"id": "A1", "status": "shipped"}
    # the exit still binds its argument in the flow
    state, _ = step(flow, state, ev.OpDone(cmd.cid, result, now=1))
    assert state.state_name == "bye" and state.variables()["order"] == "A1"


async def test_body_expression_sees_arguments_flow_names_and_call(
    fake_openai: FakeOpenAI, api: Api
) -> None:
    _, cmd = _to_agent(_flow(api.base), {"shop_token": "t"})
    result = await _run(fake_openai, cmd, [("note", {"text": "call me", "priority": 2})])
    assert result["outcome"] == "tool:done"
    assert api.seen[0]["method"] == "POST" and api.seen[0]["path"] == "/notes"
    assert api.seen[0]["body"] == {"text": "CALL ME", "priority": 2, "caller": "+15551234567"}
    (tool_msg,) = _tool_messages(fake_openai, 1)
    assert json.loads(tool_msg["content"]) == {"saved": True}


async def test_failing_endpoints_return_errors_to_the_model_and_the_call_goes_on(
    fake_openai: FakeOpenAI, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    _, cmd = _to_agent(_flow(api.base), {"shop_token": "tok-SECRET"})
    caplog.set_level(logging.DEBUG, logger="voxflow")
    calls = [
        ("broken", {}),
        ("slow", {"x": "1"}),
        ("big", {}),
        ("lookup_order", {"order_id": 7}),  # wrong type: refused before any request
    ]
    result = await _run(fake_openai, cmd, calls)
    assert result["outcome"] == "tool:done" and result["error"] is None
    answers = [json.loads(_tool_messages(fake_openai, i)[-1]["content"]) for i in (1, 2, 3)]
    assert answers[0] == {"error": "HTTP 500", "status": 500, "body": "database on fire"}
    assert answers[1] == {"error": "timed out after 0.3 s"}
    assert answers[2] == {"error": "response larger than 65536 bytes", "status": 200}
    invalid = _tool_messages(fake_openai, 4)[-1]["content"]
    assert "invalid arguments" in invalid
    assert [s["path"] for s in api.seen] == ["/broken", "/slow/1", "/big"]
    assert "/broken -> HTTP 500" in caplog.text
    assert "tok-SECRET" not in caplog.text and "region=" not in caplog.text


async def test_unreachable_host_and_bad_templates_are_errors_too(
    fake_openai: FakeOpenAI, api: Api
) -> None:
    flow = _flow("http://127.0.0.1:9")  # discard port: nothing listens
    _, cmd = _to_agent(flow, {})  # no shop_token: the header template fails
    result = await _run(fake_openai, cmd, [("lookup_order", {"order_id": "A1"}), ("broken", {})])
    assert result["outcome"] == "tool:done"
    first = json.loads(_tool_messages(fake_openai, 1)[-1]["content"])
    assert first["error"].startswith("the action could not be prepared: undefined name")
    second = json.loads(_tool_messages(fake_openai, 2)[-1]["content"])
    assert second["error"].startswith("cannot reach 127.0.0.1")


async def test_a_small_response_limit_and_name_clashes_with_runner_actions(
    fake_openai: FakeOpenAI, api: Api
) -> None:
    _, cmd = _to_agent(_flow(api.base), {"shop_token": "t"})
    await _run(fake_openai, cmd, [("lookup_order", {"order_id": "A1"})], max_action_bytes=10)
    answer = json.loads(_tool_messages(fake_openai, 1)[-1]["content"])
    assert answer == {"error": "response larger than 10 bytes", "status": 200}
    from voxflow.agent.agent import AgentAction

    async def nothing(args: Any, metadata: Any) -> Any:
        return None

    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    try:
        with pytest.raises(ValueError, match="share names"):
            runner = FlowAgentRunner(actions=[AgentAction("note", "x", nothing)])
            await runner(ScriptedCall(FakeVoice([]), llm), cmd)
    finally:
        await llm.aclose()
    with pytest.raises(ValueError):
        FlowAgentRunner(max_action_bytes=0)


def _action(flow: ir.Flow, name: str) -> ir.AgentAction:
    agent = next(s for s in flow.states["start"].steps if isinstance(s, ir.AgentStep))
    return next(a for a in agent.actions if a.name == name)


def test_render_request_arguments_shadow_flow_names_and_post_defaults_to_the_arguments() -> None:
    flow = _flow("https://api.test")
    look = _action(flow, "lookup_order")
    names = {"region": "us", "order_id": "shadowed", "call": {"metadata": {"shop_token": "k"}}}
    req = render_request(look, names, {"order_id": "B 2"})
    assert req.url == "https://api.test/orders/B 2?region=us"
    assert req.headers == (("Authorization", "Bearer k"),) and req.body is None
    assert req.where() == "GET https://api.test/orders/B 2"
    broken = render_request(_action(flow, "broken"), {}, {"a": 1})
    assert (broken.method, broken.body) == ("POST", {"a": 1})
    with pytest.raises(RequestError, match="undefined name"):
        render_request(look, {}, {"order_id": "1"})
    with pytest.raises(RequestError, match="http"):
        render_request(_action(_flow("file://"), "big"), {}, {})
    note = _action(flow, "note")
    with pytest.raises(RequestError, match="variable 'priority' is not set"):
        render_request(note, {"call": {"caller": "1"}}, {"text": "a"})  # priority missing
    crlf = {"region": "x", "call": {"metadata": {"shop_token": "a\r\nX-Evil: 1"}}}
    with pytest.raises(RequestError, match="line break"):
        render_request(look, crlf, {"order_id": "1"})


TICKET_FLOW = """\
flow desk:
    answers "100"

var team: string = "billing"

state start:
    agent "Help.":
        action ticket(summary: string, n: number) "Open a ticket":
            http post "https://crm.test/tickets"
            body {"title": "{{ summary }} ({{ team }})", "tags": ["{{ call.caller }}", team],
                  "n": n, "x": "{{ 'x' * n }}"}
        on max_turns, timeout, noinput, exhausted, error -> bye

state bye:
    hangup
"""


def test_an_action_body_renders_its_template_strings_as_an_http_body_does() -> None:
    result = compile_flow(TICKET_FLOW, "desk.flow")
    assert result.flow is not None and not result.diagnostics, result.diagnostics
    ticket = _action(result.flow, "ticket")
    names = {"team": "billing", "call": {"caller": "+1555"}}
    req = render_request(ticket, names, {"summary": "Card refused", "n": 2})
    assert req.body == {
        "title": "Card refused (billing)",
        "tags": ["+1555", "billing"],
        "n": 2,
        "x": "xx",
    }
    with pytest.raises(RequestError, match="undefined name"):
        render_request(ticket, {"call": {"caller": "1"}}, {"summary": "x", "n": 1})
    with pytest.raises(RequestError, match="too expensive"):  # the same sandbox and limits
        render_request(ticket, names, {"summary": "s", "n": 10**9})


async def test_an_answer_sent_in_pieces_is_read_whole() -> None:
    """The answer was one ``read(max_bytes + 1)``, which returns what has arrived so far: JSON
    sent in two writes (chunked, a slow or large answer) came back to the model as 'the response
    is not valid JSON'. The limit still holds for a long answer sent in pieces."""
    from voxflow.runtime.agent_actions import ActionHttp, ActionRequest

    async def pieces(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        parts = [b'{"slots": ["9am", ', b'"10am"]}'] if request.path == "/two" else [b"x" * 40] * 3
        for part in parts:
            await resp.write(part)
            await asyncio.sleep(0.05)  # each piece its own TCP segment, whatever the load
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/{tail:.*}", pieces)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    http = ActionHttp(max_bytes=100)
    try:
        whole = await http.send(ActionRequest("GET", f"http://127.0.0.1:{port}/two"), 10)
        long = await http.send(ActionRequest("GET", f"http://127.0.0.1:{port}/long"), 10)
    finally:
        await http.aclose()
        await runner.cleanup()
    assert whole == {"slots": ["9am", "10am"]}
    assert long == {"error": "response larger than 100 bytes", "status": 200}

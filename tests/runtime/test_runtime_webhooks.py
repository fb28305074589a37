"""Webhooks: signed with HMAC-SHA256, verified by a local server; failures never raise."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestServer

from voxflow.runtime.webhooks import (
    SIGNATURE_HEADER,
    RetryPolicy,
    WebhookSender,
    sign,
    verify,
)


async def test_signed_events_verified_by_receiver() -> None:
    received: list[tuple[bytes, str | None, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(
            (body, request.headers.get(SIGNATURE_HEADER), request.headers.get("X-Voxflow-Event"))
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    sender = WebhookSender(str(srv.make_url("/hook")), "topsecret")
    try:
        meta = {"account": "A1", "pin": "9999", "tier": "gold"}
        sender.emit(
            "call.started",
            call_id="c1",
            flow="main",
            metadata=meta,
            webhook_keys=["account", "tier"],
        )
        sender.emit(
            "state.entered",
            call_id="c1",
            flow="main",
            metadata=meta,
            webhook_keys=["account"],
            data={"state": "menu"},
        )
        await sender.flush(10)
    finally:
        await sender.aclose()
        await srv.close()
    assert sender.sent == 2 and sender.failed == 0
    assert len(received) == 2
    for body, sig, _event in received:
        assert verify("topsecret", body, sig)
        assert not verify("wrong", body, sig)
    by_event = {ev: json.loads(body) for body, _, ev in received}
    started = by_event["call.started"]
    assert started["call_id"] == "c1" and started["flow"] == "main"
    assert started["metadata"] == {"account": "A1", "tier": "gold"}  # pin not marked: not sent
    assert by_event["state.entered"]["data"] == {"state": "menu"}


async def test_failures_are_counted_not_raised() -> None:
    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/hook", hook)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    once = RetryPolicy(attempts=1)  # retries: tests/runtime/test_runtime_webhook_retry.py
    sender = WebhookSender(str(srv.make_url("/hook")), "s", retry=once)
    refused = WebhookSender("http://127.0.0.1:9/hook", "s", timeout=5, retry=once)
    try:
        sender.emit("call.ended", call_id="c", flow="f", metadata={})
        refused.emit("call.ended", call_id="c", flow="f", metadata={})
        await sender.flush(10)
        await refused.flush(10)
    finally:
        await sender.aclose()
        await refused.aclose()
        await srv.close()
    assert sender.failed == 1 and sender.sent == 0
    assert refused.failed == 1


async def test_disabled_sender_sends_nothing_and_sign_is_stable() -> None:
    s = WebhookSender(None)
    s.emit("call.started", call_id="c", flow="f", metadata={})
    assert not s.enabled
    await s.aclose()
    assert sign("k", b"body", 1700000000) == sign(b"k", b"body", 1700000000)
    header = sign("k", b"x", 1700000000)
    assert header.startswith("t=1700000000,v1=") and len(header) == len("t=1700000000,v1=") + 64
    await asyncio.sleep(0)

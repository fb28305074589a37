"""Issue 14 item 10 (webhooks): the signature header carries a timestamp covered by the HMAC so
receivers can reject replays; without a secret a warning says the webhooks go out unsigned."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voxflow.runtime.webhooks import SIGNATURE_HEADER, WebhookSender, sign, verify


async def test_signed_header_has_a_timestamp_and_replays_are_rejected() -> None:
    got: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((await request.read(), request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    sender = WebhookSender(str(srv.make_url("/hook")), "topsecret")
    try:
        sender.emit("call.ended", call_id="c1", flow="f", metadata={})
        await sender.flush(10)
    finally:
        await sender.aclose()
        await srv.close()
    body, header = got[0]
    ts = int(header.split(",")[0].removeprefix("t="))
    assert verify("topsecret", body, header, now=ts + 10)
    assert not verify("topsecret", body, header, now=ts + 3600)  # replayed an hour later
    assert not verify("topsecret", body + b" ", header, now=ts)  # body changed
    forged = header.replace(f"t={ts}", f"t={ts + 3600}")  # a fresh timestamp on an old MAC
    assert not verify("topsecret", body, forged, now=ts + 3600)
    assert not verify("wrong", body, header, now=ts)


def test_signature_covers_the_timestamp() -> None:
    assert sign("k", b"{}", 1) != sign("k", b"{}", 2)
    assert verify("k", b"{}", sign("k", b"{}", 100), now=100)
    assert not verify("k", b"{}", "sha256=deadbeef", now=100)  # the old, untimed format


def test_unsigned_webhooks_warn_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "voxflow.runtime.webhooks"):
        WebhookSender("https://hooks.example.com/in?token=abc123")
        WebhookSender("https://hooks.example.com/in", "s3cret")
        WebhookSender(None)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "unsigned" in warnings[0]
    assert "https://hooks.example.com" in warnings[0] and "abc123" not in warnings[0]


def test_run_help_says_the_password_option_is_visible_and_names_the_safe_ways() -> None:
    from click.testing import CliRunner

    from voxflow.cli.main import cli

    out = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    line = " ".join(out.split())
    assert "process list" in line and "VOXFLOW_ARI_PASSWORD" in line and "voxflow.toml" in line

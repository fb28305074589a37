"""AriRestClient against a local aiohttp server answering with Asterisk's captured bodies."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voxflow.ari.rest import AriRestClient, normalize_base_url
from voxflow.errors import (
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriHTTPError,
    AriNotFound,
    AriServerError,
    AriTimeoutError,
    AriUnauthorized,
    AriUnprocessable,
    ConfigError,
)

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "rest-sample.json"
SECRET = "s3cr3t-pw"


def _captured() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(CAPTURES.read_text())
    return data


class Replay:
    """Answers each (method, path) with the first captured answer not yet used."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = list(entries)
        self.seen: list[tuple[str, str, dict[str, str], Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"voxflow:{SECRET}".encode()).decode()
        path = request.path.removeprefix("/ari")
        body = await request.json() if request.can_read_body else None
        self.seen.append((request.method, path, dict(request.query), body))
        if path == "/slow":
            await asyncio.sleep(5)
        if auth != expected:
            return web.json_response({"message": "Authentication required"}, status=401)
        query = dict(request.query)
        candidates = [
            (i, e)
            for i, e in enumerate(self.entries)
            if e["method"] == request.method and e["path"] == path and e["status"] != 401
        ]
        exact = [
            (i, e) for i, e in candidates if all(query.get(k) == v for k, v in e["params"].items())
        ]
        exact.sort(key=lambda item: -len(item[1]["params"]))
        for i, entry in exact or candidates:
            self.entries.pop(i)
            status = entry["status"]
            if status == 204:
                return web.Response(status=204)
            resp = entry["response"]
            if entry["content_type"] == "audio/wav":
                return web.Response(body=b"RIFF" + b"\0" * 40, content_type="audio/wav")
            return web.json_response(resp, status=status)
        return web.json_response({"message": "Resource not found"}, status=404)


@pytest.fixture
async def replay() -> AsyncIterator[tuple[Replay, str]]:
    rep = Replay(_captured())
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rep.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield rep, f"http://127.0.0.1:{server.port}/ari"
    finally:
        await server.close()


async def test_typed_calls_send_what_asterisk_expects(replay: tuple[Replay, str]) -> None:
    rep, url = replay
    async with AriRestClient(url, "voxflow", SECRET) as rest:
        info = await rest.get_info()
        assert info["system"]["version"] == "22.10.1"
        await rest.answer("1795502929.1")
        pb = await rest.play("1795502929.1", "sound:hello-world", playback_id="pb-A-1")
        assert (pb.id, pb.state) == ("pb-A-1", "queued")
        await rest.send_dtmf("vf-b-leg1", "45*", duration=120, between=80)
        rec = await rest.record("vf-b-leg1", "vf-chan-rec", max_duration=2, if_exists="overwrite")
        assert rec.state == "queued"
        bridge = await rest.create_bridge(bridge_id="vf-bridge-1", name="voxbridge")
        assert bridge.bridge_type == "mixing"
        data = await rest.get_stored_recording_file("vf-bridge-rec")
        assert data.startswith(b"RIFF")
        chan = await rest.originate(
            "Local/100@voxflow-in",
            app="voxflow",
            app_args=["outbound", "leg1"],
            caller_id="Bob <5550000>",
            channel_id="vf-b-leg1",
            other_channel_id="vf-b-leg2",
            variables={"A": "1"},
        )
        assert chan.id == "vf-b-leg1"
    sent = {(m, p): (q, b) for m, p, q, b in rep.seen}
    assert sent[("POST", "/channels/vf-b-leg1/dtmf")][0] == {
        "dtmf": "45*",
        "duration": "120",
        "between": "80",
    }
    assert sent[("POST", "/channels/vf-b-leg1/record")][0]["beep"] == "false"
    assert sent[("POST", "/channels")][1] == {"variables": {"A": "1"}}
    assert sent[("POST", "/channels")][0]["appArgs"] == "outbound,leg1"
    assert "timeout" not in sent[("POST", "/channels")][0]


@pytest.mark.parametrize(
    ("method", "path", "exc", "message"),
    [
        ("POST", "/channels/1795502929.0/answer", AriConflict, "Channel not in Stasis application"),
        ("GET", "/channels/does-not-exist", AriNotFound, "Channel not found"),
        ("PATCH", "/channels", AriHTTPError, "Invalid method"),
    ],
)
async def test_status_codes_map_to_error_tree(
    replay: tuple[Replay, str],
    method: str,
    path: str,
    exc: type[Exception],
    message: str,
) -> None:
    _, url = replay
    async with AriRestClient(url, "voxflow", SECRET) as rest:
        with pytest.raises(exc) as info:
            await rest.request(method, path)
        assert isinstance(info.value, AriHTTPError)
        assert info.value.message == message
        assert path in str(info.value)


async def test_second_answers_and_500_error_key(replay: tuple[Replay, str]) -> None:
    _, url = replay
    async with AriRestClient(url, "voxflow", SECRET) as rest:
        await rest.hangup("1795502929.1", reason_code=16)
        with pytest.raises(AriNotFound, match="Channel not found"):
            await rest.hangup("1795502929.1")
        await rest.send_dtmf("vf-b-leg1", "45*", duration=120, between=80)
        with pytest.raises(AriBadRequest, match="DTMF is required"):
            await rest.request("POST", "/channels/vf-b-leg1/dtmf")
        with pytest.raises(AriBadRequest, match="Application or extension must be specified"):
            await rest.request("POST", "/channels", params={"endpoint": "Local/100@voxflow-in"})
        with pytest.raises(AriServerError) as info:
            await rest.originate("Bogus/123", app="voxflow")
        assert info.value.status == 500 and info.value.message == "Allocation failed"
        await rest.record("vf-b-leg2", "vf-x")
        with pytest.raises(AriUnprocessable, match="format is unknown"):
            await rest.record("vf-b-leg1", "vf-x", format="nosuchfmt")


async def test_credentials_never_leak(
    replay: tuple[Replay, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = replay
    caplog.set_level(logging.DEBUG)
    rest = AriRestClient(url.replace("http://", f"http://voxflow:{SECRET}@"), "voxflow", "wrong")
    assert SECRET not in repr(rest) and "wrong" not in repr(rest)
    assert SECRET not in rest.base_url
    try:
        with pytest.raises(AriUnauthorized) as info:
            await rest.get_info()
        assert info.value.message == "Authentication required"
        for text in (str(info.value), repr(info.value)):
            assert "wrong" not in text and SECRET not in text
    finally:
        await rest.close()
    assert "wrong" not in caplog.text and SECRET not in caplog.text


async def test_timeout_and_connection_errors(replay: tuple[Replay, str]) -> None:
    _, url = replay
    async with AriRestClient(url, "voxflow", SECRET, timeout=0.2) as rest:
        with pytest.raises(AriTimeoutError) as info:
            await rest.request("GET", "/slow")
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, AriError)
    # a port nobody listens on
    sock_url = "http://127.0.0.1:9/ari"
    async with AriRestClient(sock_url, "voxflow", SECRET, timeout=5) as rest:
        with pytest.raises(AriConnectionError) as cinfo:
            await rest.ping()
        assert isinstance(cinfo.value, ConnectionError)
        assert SECRET not in str(cinfo.value)
    closed = AriRestClient(url, "voxflow", SECRET)
    await closed.close()
    with pytest.raises(AriConnectionError, match="closed"):
        await closed.ping()


def test_base_url_validation() -> None:
    assert normalize_base_url("http://h:8088/ari/") == "http://h:8088/ari"
    assert normalize_base_url("https://h") == "https://h/ari"
    assert normalize_base_url("http://u:p@h:1/ari") == "http://h:1/ari"
    with pytest.raises(ConfigError) as info:
        normalize_base_url("ftp://u:topsecret@h/ari")
    assert "topsecret" not in str(info.value)
    with pytest.raises(ConfigError):
        normalize_base_url("localhost:8088")

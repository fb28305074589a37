"""REST over the ARI websocket, client side: the frames AriRestClient sends through WsRestTransport
and how answers, errors, timeouts, a lost socket and the 406 HTTP fallback come back. The socket
is a list the test reads and answers from (the sandbox tests cover the real one)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from voxflow.ari.rest import AriRestClient
from voxflow.ari.wsrest import WsRestTransport, encode_request, is_rest_response
from voxflow.errors import AriConnectionError, AriNotFound, AriTimeoutError, ConfigError
from voxflow.runtime.config import listen_host, load_settings


class Socket:
    """What the transport writes; ``answer`` plays Asterisk."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.transport = WsRestTransport(self.write)

    def write(self, raw: bytes) -> None:
        self.sent.append(json.loads(raw))

    def answer(self, status: int, body: Any = None, reason: str = "OK") -> None:
        frame: dict[str, Any] = {
            "type": "RESTResponse",
            "transaction_id": self.sent[-1]["transaction_id"],
            "request_id": self.sent[-1]["request_id"],
            "status_code": status,
            "reason_phrase": reason,
            "uri": self.sent[-1]["uri"],
        }
        if body is not None:
            frame["content_type"] = "application/json"
            frame["message_body"] = json.dumps(body)
        raw = json.dumps(frame).encode()
        assert is_rest_response(raw)
        self.transport.on_response(raw)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def client(
    sock: Socket, url: str = "http://127.0.0.1:1/ari", fallback: bool = False
) -> AriRestClient:
    return AriRestClient(url, "u", "p", transport=sock.transport, http_fallback=fallback, timeout=2)


async def test_requests_are_relative_uris_with_query_strings_and_json_bodies() -> None:
    sock = Socket()
    rest = client(sock)
    task = asyncio.ensure_future(rest.play("chan;1", "sound:beep", playback_id="pb"))
    await settle()
    frame = sock.sent[0]
    assert frame["type"] == "RESTRequest" and frame["method"] == "POST"
    assert frame["uri"] == "channels/chan%3B1/play"  # no leading slash (405 otherwise)
    assert {"name": "media", "value": "sound:beep"} in frame["query_strings"]
    assert frame["request_id"] == frame["transaction_id"]
    sock.answer(201, {"id": "pb", "state": "queued"}, "Created")
    assert (await task).id == "pb"
    body = json.loads(encode_request("r", "POST", "/channels", {}, {"variables": {"A": "1"}}))
    assert body["content_type"] == "application/json"
    assert json.loads(body["message_body"]) == {"variables": {"A": "1"}}


async def test_errors_204_and_out_of_order_answers() -> None:
    sock = Socket()
    rest = client(sock)
    first = asyncio.ensure_future(rest.get_channel("gone"))
    second = asyncio.ensure_future(rest.answer("c"))
    await settle()
    sock.transport.on_response(
        json.dumps(
            {"type": "RESTResponse", "request_id": sock.sent[1]["request_id"], "status_code": 204}
        ).encode()
    )
    assert await second is None
    sock.sent.pop()
    sock.answer(404, {"message": "Channel not found"}, "Not Found")
    with pytest.raises(AriNotFound, match="Channel not found"):
        await first
    sock.transport.on_response(b'{"type":"RESTResponse","request_id":"nobody","status_code":200}')
    sock.transport.on_response(b"not json")  # ignored, logged


async def test_a_lost_socket_fails_waiting_requests_and_refuses_new_ones() -> None:
    sock = Socket()
    rest = client(sock)
    task = asyncio.ensure_future(rest.ping())
    await settle()
    sock.transport.close()
    with pytest.raises(AriConnectionError):
        await task
    with pytest.raises(AriConnectionError):
        await rest.ping()
    assert sock.transport.pending == 0


async def test_no_answer_is_a_timeout() -> None:
    sock = Socket()
    rest = AriRestClient("http://127.0.0.1:1/ari", "u", "p", transport=sock.transport)
    with pytest.raises(AriTimeoutError, match="over the websocket"):
        await rest.request("GET", "/asterisk/ping", timeout=0.05)


async def test_a_406_binary_resource_falls_back_to_http() -> None:
    async def file(request: web.Request) -> web.Response:
        return web.Response(body=b"RIFF....", content_type="audio/wav")

    webapp = web.Application()
    webapp.router.add_get("/ari/recordings/stored/{name}/file", file)
    runner = web.AppRunner(webapp)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # a TCP site
    sock = Socket()
    rest = client(sock, f"http://127.0.0.1:{port}/ari", fallback=True)
    try:
        task = asyncio.ensure_future(
            rest.request("GET", "/recordings/stored/vm/file", expect_json=False)
        )
        await settle()
        sock.answer(406, None, "Not Acceptable.  Use HTTP GET")
        assert await task == b"RIFF...."
    finally:
        await rest.close()
        await runner.cleanup()


def test_run_settings_choose_the_mode_and_where_asterisk_connects() -> None:
    s = load_settings({"ari_mode": "per_call", "listen": "127.0.0.1:9000"}, env={})
    assert (s.ari_mode, listen_host(s.listen)) == ("per_call", ("127.0.0.1", 9000))
    assert load_settings({}, env={}).ari_mode == "classic"  # the default stays classic
    assert listen_host(load_settings({}, env={}).listen) == ("127.0.0.1", 8765)
    with pytest.raises(ConfigError, match="ARI mode must be one of"):
        load_settings({}, env={"VOXFLOW_ARI_MODE": "outbound"})
    with pytest.raises(ConfigError, match="HOST:PORT"):
        load_settings({"ari_mode": "persistent", "listen": "8765"}, env={})

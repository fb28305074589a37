"""Asterisk 22's outbound ARI websockets and REST over the websocket, as the sandbox emulates them.

The worker here is the websockets library's own server (not voxflow): it records the upgrade
request and every frame, and sends the RESTRequest frames of captures/outbound-websocket.json.
The answers are compared with what Asterisk 22.10.1 sent."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.server import ServerConnection, serve

from voxflow.sandbox import Sandbox
from voxflow.sandbox.outbound import OutboundWebsocket

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "outbound-websocket.json"
WAIT = 10.0


class Worker:
    """A websocket server standing in for an ARI app Asterisk connects to."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.conns: list[ServerConnection] = []
        self.closed: list[int | None] = []
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.requests.append((ws.request.path, dict(ws.request.headers.raw_items())))
        self.conns.append(ws)
        async for raw in ws:
            self.frames.append(json.loads(raw))
            self.arrived.set()
        self.closed.append(ws.close_code)

    async def next(self, kind: str) -> dict[str, Any]:
        """The first frame of ``kind`` not taken yet (other frames stay)."""
        async with asyncio.timeout(WAIT):
            while True:
                for i, frame in enumerate(self.frames):
                    if frame["type"] == kind:
                        return self.frames.pop(i)
                self.arrived.clear()
                await self.arrived.wait()

    async def ask(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.conns[-1].send(json.dumps(frame))
        return await self.next("RESTResponse")


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = Worker()
    async with serve(w.handler, "127.0.0.1", 0, subprotocols=["ari"]) as server:  # type: ignore[list-item]  # str is a Subprotocol
        w.port = server.sockets[0].getsockname()[1]
        yield w


def config(port: int, **kw: Any) -> OutboundWebsocket:
    kw.setdefault("reconnect_interval", 0.05)
    return OutboundWebsocket("capows", f"ws://127.0.0.1:{port}/capows", "capuser", "cappass", **kw)


def captured_answers() -> dict[str, dict[str, Any]]:
    runs = json.loads(CAPTURE.read_text())["runs"]
    log = next(r for r in runs if r["run"] == "server-listening")["server_log"]
    return {
        e["frame"]["request_id"]: e["frame"]
        for e in log
        if e["kind"] == "received" and e["frame"]["type"] == "RESTResponse"
    }


def captured_requests() -> list[dict[str, Any]]:
    runs = json.loads(CAPTURE.read_text())["runs"]
    log = next(r for r in runs if r["run"] == "server-listening")["server_log"]
    return [e["frame"] for e in log if e["kind"] == "sent"]


async def test_a_per_call_connection_is_what_asterisk_sends(
    sandbox: Sandbox, worker: Worker
) -> None:
    sandbox.add_outbound_websocket(config(worker.port, close_after_end=0.2))
    call = await sandbox.place_call(to="s", app="capows", args=["hello", "world"])
    registered = await worker.next("ApplicationRegistered")
    start = await worker.next("StasisStart")
    path, headers = worker.requests[0]
    assert path == "/capows"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"capuser:cappass").decode()
    assert headers["Sec-WebSocket-Protocol"] == "ari"
    app = f"capows:{call.channel.name if call.channel else ''}"
    assert registered["application"] == app and start["application"] == app
    assert start["args"] == ["hello", "world"]
    answer = await worker.ask(
        {
            "type": "RESTRequest",
            "transaction_id": "tx-5",
            "request_id": "r-14",
            "method": "POST",
            "uri": f"channels/{call.id}/continue",
        }
    )
    assert (answer["status_code"], answer["reason_phrase"]) == (204, "No Content")
    assert "message_body" not in answer and "content_type" not in answer
    await worker.next("StasisEnd")
    async with asyncio.timeout(WAIT):
        while not worker.closed:  # noqa: ASYNC110 - the handler appends after its loop
            await asyncio.sleep(0.02)
    assert worker.closed == [1000]  # Asterisk closes it after StasisEnd
    assert sandbox.outbound.configs["capows"].close_after_end == 0.2
    assert config(1).close_after_end == 3.0  # 3 s after StasisEnd, as captured


async def test_another_channel_leaving_the_per_call_app_does_not_close_its_socket(
    sandbox: Sandbox, worker: Worker
) -> None:
    # The per-call connection ends when the call's own Stasis() returns (docs.asterisk.org, "ARI
    # Outbound Websockets"): an externalMedia channel of that app leaving Stasis does not end it.
    sandbox.add_outbound_websocket(config(worker.port, close_after_end=0.1))
    call = await sandbox.place_call(to="s", app="capows")
    start = await worker.next("StasisStart")
    app = start["application"]
    created = await worker.ask(
        {
            "type": "RESTRequest", "transaction_id": "t1", "request_id": "r1", "method": "POST",
            "uri": f"channels/externalMedia?channelId=em-1&app={app}"
            "&external_host=127.0.0.1:9&format=ulaw",
        }
    )  # fmt: skip
    assert created["status_code"] == 200
    await worker.next("StasisStart")  # the media channel's
    gone = await worker.ask(
        {"type": "RESTRequest", "transaction_id": "t2", "request_id": "r2", "method": "DELETE",
         "uri": "channels/em-1"}
    )  # fmt: skip
    assert gone["status_code"] == 204
    assert (await worker.next("StasisEnd"))["channel"]["id"] == "em-1"
    await asyncio.sleep(0.3)  # past close_after_end
    assert worker.closed == []
    got = await worker.ask(
        {"type": "RESTRequest", "transaction_id": "t3", "request_id": "r3", "method": "GET",
         "uri": f"channels/{call.id}"}
    )  # fmt: skip
    assert got["status_code"] == 200


async def test_rest_over_the_websocket_answers_like_asterisk(
    sandbox: Sandbox, worker: Worker
) -> None:
    sandbox.add_outbound_websocket(config(worker.port))
    call = await sandbox.place_call(to="s", app="capows", channel_id="ows-ok")
    await worker.next("StasisStart")
    expected = captured_answers()
    for request in captured_requests():
        rid = request["request_id"]
        if rid in ("r-12", "r-14"):  # the app list differs; continue is the test above
            continue
        if rid == "r-9":  # a stored recording: the file exists or not, 406 before looking
            request = {**request, "uri": "recordings/stored/none/file"}
        got = await worker.ask(request)
        want = expected[rid]
        assert got["request_id"] == rid and got["transaction_id"] == want["transaction_id"]
        assert (got["status_code"], got["reason_phrase"]) == (
            want["status_code"],
            want["reason_phrase"],
        ), rid
        assert ("message_body" in got) == ("message_body" in want), rid
        assert got["application"] == f"capows:{call.channel.name if call.channel else ''}"
        if want["status_code"] >= 400 and "message_body" in want:
            assert json.loads(got["message_body"]) == json.loads(want["message_body"]), rid
        if rid == "r-9":
            continue
        assert got["uri"] == want["uri"], rid
    var = await worker.ask(
        {
            "type": "RESTRequest",
            "request_id": "v",
            "method": "GET",
            "uri": "channels/ows-ok/variable?variable=CAPVAR",
        }
    )
    assert json.loads(var["message_body"]) == {"value": "fromuri"}
    assert var["transaction_id"] == ""  # a missing transaction_id is echoed as ""


async def test_nobody_listening_sends_the_call_back_with_stasisstatus_failed(
    sandbox: Sandbox,
) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    sandbox.add_outbound_websocket(config(port, reconnect_attempts=4))
    call = await sandbox.place_call(to="s", app="capows")
    await call.wait_hangup(WAIT)
    kinds = [(e["type"], e.get("STASISSTATUS")) for e in call.experience()]
    assert kinds == [("dialplan", "FAILED"), ("hangup", None)]
    assert sandbox.outbound.failures == 1 and sandbox.outbound.connects == 0


async def test_a_persistent_connection_registers_the_plain_app_and_comes_back(
    sandbox: Sandbox, worker: Worker
) -> None:
    sandbox.add_outbound_websocket(config(worker.port, connection_type="persistent"))
    registered = await worker.next("ApplicationRegistered")
    assert registered["application"] == "capows"
    await sandbox.wait_app("capows")
    await worker.conns[-1].close()
    again = await worker.next("ApplicationRegistered")  # reconnected after reconnect_interval
    assert again["application"] == "capows" and len(worker.requests) == 2


async def test_wrong_credentials_are_a_failed_connection(sandbox: Sandbox) -> None:
    async def refuse(conn: ServerConnection, request: Any) -> Any:
        return conn.respond(401, "Authentication required\n")

    async with serve(lambda ws: asyncio.sleep(0), "127.0.0.1", 0, process_request=refuse) as srv:
        port = srv.sockets[0].getsockname()[1]
        sandbox.add_outbound_websocket(config(port, reconnect_attempts=2))
        call = await sandbox.place_call(to="s", app="capows")
        await call.wait_hangup(WAIT)
    assert ("dialplan", "FAILED") in [(e["type"], e.get("STASISSTATUS")) for e in call.experience()]


async def test_rest_requests_on_the_inbound_events_socket(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sandbox.events_url("cap"))
        await sandbox.wait_app("cap")
        for rid, uri in (("r1", "asterisk/ping"), ("r2", "applications/cap")):
            await ws.send_str(
                json.dumps({"type": "RESTRequest", "request_id": rid, "method": "GET", "uri": uri})
            )
        first = json.loads((await ws.receive()).data)
        second = json.loads((await ws.receive()).data)
        assert [first["request_id"], second["request_id"]] == ["r1", "r2"]
        assert json.loads(second["message_body"])["name"] == "cap"
        assert first["application"] == "cap" and first["status_code"] == 200
        await ws.close()

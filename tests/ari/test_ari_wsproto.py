"""WsProtocol without sockets: handshakes, frames, pings, closes and keepalive ticks, both sides.

Bytes are handed between a client and a server protocol in memory (and crafted by hand for what a
correct peer never sends), as websockets' own protocol tests do."""

from __future__ import annotations

import base64
import hashlib

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from voxflow.ari.wsproto import Refusal, WsProtocol, WsState
from voxflow.errors import AriConnectionError, AriUnauthorized

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
AUTH = "Basic " + base64.b64encode(b"asterisk:secret").decode()


def client(ping_interval: float = 15.0) -> WsProtocol:
    uri = parse_uri("ws://127.0.0.1:8765/voxflow")
    return WsProtocol.client(
        ClientProtocol(uri, subprotocols=[Subprotocol("ari")]),
        {"Authorization": AUTH},
        ping_interval=ping_interval,
    )


def check(request: Request) -> Refusal | None:
    if request.headers.get("Authorization") != AUTH:
        return Refusal(401, "Authentication required", {"WWW-Authenticate": 'Basic realm="x"'})
    return None


def server(ping_interval: float = 15.0) -> WsProtocol:
    return WsProtocol.server(check_request=check, ping_interval=ping_interval)


def pipe(src: WsProtocol, dst: WsProtocol) -> list[bytes]:
    """Move what ``src`` wants to send into ``dst``; the messages ``dst`` completes."""
    return dst.receive_data(b"".join(src.data_to_send()))


def connected() -> tuple[WsProtocol, WsProtocol]:
    c, s = client(), server()
    pipe(c, s)
    pipe(s, c)
    assert c.state == s.state == WsState.OPEN
    return c, s


def accept_key(request: bytes) -> bytes:
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def test_the_client_handshake_keeps_frames_glued_to_the_101() -> None:
    c = client()
    request = b"".join(c.data_to_send())
    assert request.startswith(b"GET /voxflow HTTP/1.1\r\n")
    assert f"Authorization: {AUTH}".encode() in request
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(request) + b"\r\n\r\n"
    )
    first = Frame(Opcode.TEXT, b"first").serialize(mask=False)
    second = Frame(Opcode.TEXT, b"second").serialize(mask=False)
    assert c.receive_data(answer[:20]) == []  # the header block is incomplete
    assert c.receive_data(answer[20:] + first + second[:4]) == []
    assert c.state == WsState.OPEN
    assert c.receive_data(c.leftover) == [b"first"]  # the owner feeds them when ready
    assert c.receive_data(second[4:]) == [b"second"]


def test_a_refusal_whose_body_arrives_later_is_the_ari_error() -> None:
    c = client()
    c.data_to_send()
    body = b'{"message": "Authentication required"}'
    head = (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    c.receive_data(head)
    assert c.handshake_error is None  # the body is still to come
    c.receive_data(body)
    assert isinstance(c.handshake_error, AriUnauthorized)
    assert c.handshake_error.message == "Authentication required"
    assert c.close_transport and c.state == WsState.CLOSED


def test_the_server_accepts_ari_with_basic_auth_and_both_sides_exchange_messages() -> None:
    c, s = connected()
    assert s.subprotocol == "ari" and c.subprotocol == "ari"
    assert s.request is not None and s.request.path == "/voxflow"
    c.send_text(b'{"type":"RESTRequest"}')
    wire = b"".join(c.data_to_send())
    assert wire[1] & 0x80  # clients mask
    assert s.receive_data(wire[:3]) == []
    assert s.receive_data(wire[3:]) == [b'{"type":"RESTRequest"}']
    s.send_text(b'{"type":"StasisStart"}')
    wire = b"".join(s.data_to_send())
    assert not wire[1] & 0x80  # servers do not
    assert c.receive_data(wire) == [b'{"type":"StasisStart"}']


def test_the_server_refuses_wrong_credentials_with_401_and_the_ari_body() -> None:
    c = client()
    s = server()
    request = b"".join(c.data_to_send()).replace(AUTH.encode(), b"Basic bm9wZQ==")
    s.receive_data(request)
    answer = b"".join(s.data_to_send())
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b'WWW-Authenticate: Basic realm="x"' in answer
    assert answer.endswith(b'{"message": "Authentication required"}')
    assert s.close_transport and isinstance(s.handshake_error, AriConnectionError)


def test_a_plain_http_request_is_refused_with_426_credentials_or_not() -> None:
    for auth in (b"Authorization: " + AUTH.encode() + b"\r\n", b""):  # a health check has none
        s = server()
        s.receive_data(b"GET /health HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
        assert b"".join(s.data_to_send()).startswith(b"HTTP/1.1 426")
        assert s.state == WsState.CLOSED


def test_pings_are_answered_with_the_same_payload() -> None:
    c, s = connected()
    c.receive_data(Frame(Opcode.PING, b"alive?").serialize(mask=False))
    pong = b"".join(c.data_to_send())
    assert pong[0] == 0x8A and pong[1] == 0x80 | 6  # a masked pong with the 6 bytes
    assert s.receive_data(pong) == []
    s.receive_data(Frame(Opcode.PING, b"you?").serialize(mask=True))
    assert b"".join(s.data_to_send()) == Frame(Opcode.PONG, b"you?").serialize(mask=False)


def test_a_close_from_the_peer_is_echoed_and_the_transport_closed() -> None:
    c, s = connected()
    s.close(1001)
    assert s.state == WsState.CLOSING and not s.close_transport
    pipe(s, c)
    assert (c.close_code, c.state, c.close_transport) == (1001, WsState.CLOSING, True)
    pipe(c, s)  # our echo completes the server's closing handshake
    assert s.close_code == 1001 and s.close_transport


def test_a_masked_frame_from_a_server_and_an_unmasked_one_from_a_client_give_1002() -> None:
    c, s = connected()
    assert c.receive_data(Frame(Opcode.TEXT, b"bad").serialize(mask=True)) == []
    close = b"".join(c.data_to_send())
    assert close[0] == 0x88 and c.close_transport
    assert s.receive_data(Frame(Opcode.TEXT, b"bad").serialize(mask=False)) == []
    assert b"".join(s.data_to_send()) == Frame(Opcode.CLOSE, (1002).to_bytes(2, "big")).serialize(
        mask=False
    )


def test_keepalive_pings_after_a_quiet_interval_and_gives_up_half_an_interval_later() -> None:
    c, s = connected()
    c.data_to_send()
    c.receive_data(Frame(Opcode.TEXT, b"x").serialize(mask=False))
    assert c.tick() is False and c.data_to_send() == []  # something arrived: no ping
    assert c.tick() is False and c.data_to_send() == []  # quiet for half an interval
    assert c.tick() is False  # a whole interval: ask
    ping = b"".join(c.data_to_send())
    assert ping[0] == 0x89
    s.receive_data(ping)
    c.receive_data(b"".join(s.data_to_send()))  # the pong counts as activity
    assert c.tick() is False and c.data_to_send() == []
    for _ in range(2):
        assert c.tick() is False
    assert c.tick() is True  # no answer to the ping: drop


def test_nothing_is_sent_once_closed() -> None:
    c, _ = connected()
    c.close()
    c.data_to_send()
    c.connection_lost()
    assert c.tick() is False
    try:
        c.send_text(b"late")
    except AriConnectionError:
        pass
    else:
        raise AssertionError("send_text on a closed connection must fail")

"""EventsSocket against real websocket peers: the websockets library's server (messages,
fragments, pings, closes) and a raw TCP server for what a library server never does (frames
glued to the 101 answer, refusals with an ARI body, a wrong accept key, silence, masked frames)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from voxflow.ari.wsconn import EventsSocket, open_events_socket
from voxflow.errors import AriConnectionError, AriUnauthorized

WAIT = 10.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not check():  # noqa: ASYNC110 - polling what data_received appends
            await asyncio.sleep(0.01)


# ------------------------------------------------------------------ the websockets server


class LibServer:
    """websockets' own server running ``behave`` for each connection."""

    def __init__(self, behave: Callable[[ServerConnection], Awaitable[None]]) -> None:
        self.behave = behave
        self.paths: list[str] = []
        self.headers: list[str] = []
        self.done = asyncio.Event()
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.headers.append(ws.request.headers.get("Authorization", ""))
        try:
            await self.behave(ws)
        finally:
            self.done.set()


@pytest.fixture
async def lib_server() -> AsyncIterator[Callable[..., Awaitable[LibServer]]]:
    servers = []

    async def start(behave: Callable[[ServerConnection], Awaitable[None]]) -> LibServer:
        state = LibServer(behave)
        server = await serve(state.handler, "127.0.0.1", 0)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def open_socket(port: int, got: list[bytes], **kw: float) -> EventsSocket:
    return await open_events_socket(
        f"ws://127.0.0.1:{port}/ari/events?app=voxflow",
        {"Authorization": "Basic eDp5"},
        on_message=got.append,
        timeout=WAIT,
        **kw,
    )


async def test_messages_arrive_in_order_only_after_start(
    lib_server: Callable[..., Awaitable[LibServer]],
) -> None:
    big = "x" * 200_000

    async def behave(ws: ServerConnection) -> None:
        await ws.send('{"n": 1}')
        await ws.send(b'{"n": 2}')
        await ws.send(["frag", "mented"])  # one message in several frames
        await ws.send(big)
        await ws.wait_closed()

    server = await lib_server(behave)
    got: list[bytes] = []
    sock = await open_socket(server.port, got)
    await asyncio.sleep(0.2)
    assert got == []  # paused until start(): the owner resyncs first
    sock.start()
    await until(lambda: len(got) == 4)
    assert got == [b'{"n": 1}', b'{"n": 2}', b"fragmented", big.encode()]
    assert server.paths == ["/ari/events?app=voxflow"]
    assert server.headers == ["Basic eDp5"]
    await sock.close()
    assert not sock.is_open


async def test_server_pings_are_answered(lib_server: Callable[..., Awaitable[LibServer]]) -> None:
    answered = asyncio.Event()

    async def behave(ws: ServerConnection) -> None:
        pong = await ws.ping(b"still there?")
        await asyncio.wait_for(pong, WAIT)
        answered.set()
        await ws.wait_closed()

    server = await lib_server(behave)
    sock = await open_socket(server.port, [])
    sock.start()
    await asyncio.wait_for(answered.wait(), WAIT)
    await sock.close()


async def test_a_close_from_the_server_is_echoed_and_ends_the_socket(
    lib_server: Callable[..., Awaitable[LibServer]],
) -> None:
    codes: list[int | None] = []

    async def behave(ws: ServerConnection) -> None:
        await ws.send("last")
        await ws.close(1001, "restarting")
        codes.append(ws.close_code)

    server = await lib_server(behave)
    got: list[bytes] = []
    sock = await open_socket(server.port, got)
    sock.start()
    await asyncio.wait_for(sock.wait_closed(), WAIT)
    assert got == [b"last"]
    assert (sock.close_code, sock.close_reason) == (1001, "restarting")
    await asyncio.wait_for(server.done.wait(), WAIT)
    assert codes == [1001]  # the server got our echo: a clean closing handshake


async def test_our_close_sends_1000(lib_server: Callable[..., Awaitable[LibServer]]) -> None:
    seen: list[int | None] = []

    async def behave(ws: ServerConnection) -> None:
        await ws.wait_closed()
        seen.append(ws.close_code)

    server = await lib_server(behave)
    sock = await open_socket(server.port, [])
    sock.start()
    await asyncio.wait_for(sock.close(), WAIT)
    await asyncio.wait_for(server.done.wait(), WAIT)
    assert seen == [1000]


# ------------------------------------------------------------------ a raw TCP peer


class RawPeer:
    """Reads the upgrade request and answers with whatever ``answer(key)`` returns."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.received = b""
        self.port = 0
        self.server: asyncio.Server | None = None
        self.closed = asyncio.Event()
        self.connected = False

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected = True
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(self.answer(key))
        try:
            while chunk := await reader.read(65536):
                self.received += chunk
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            writer.close()

    async def __aenter__(self) -> RawPeer:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        if self.connected:  # the client side is closed by now: the handler ends
            await asyncio.wait_for(self.closed.wait(), WAIT)
        await self.server.wait_closed()


def accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def switching(key: bytes, *, accept_key: bytes | None = None) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + (accept_key or accept(key)) + b"\r\n\r\n"
    )


def text(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


async def test_frames_glued_to_the_101_answer_are_kept() -> None:
    def answer(key: bytes) -> bytes:
        return switching(key) + text(b"first") + text(b"second")[:5]

    async with RawPeer(answer) as peer:
        got: list[bytes] = []
        sock = await open_socket(peer.port, got)
        sock.start()
        await until(lambda: got == [b"first"])  # the half frame waits for its rest
        sock.abort()


async def test_a_refused_handshake_raises_the_ari_error_with_its_message() -> None:
    body = b'{"message": "Authentication required"}'

    def answer(key: bytes) -> bytes:
        return (
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )

    async with RawPeer(answer) as peer:
        with pytest.raises(AriUnauthorized, match="Authentication required") as caught:
            await open_socket(peer.port, [])
        assert "eDp5" not in str(caught.value)  # credentials never in errors


async def test_a_wrong_accept_key_is_refused() -> None:
    async with RawPeer(lambda key: switching(key, accept_key=b"bm90IHRoZSBrZXk=")) as peer:
        with pytest.raises(AriConnectionError, match="handshake"):
            await open_socket(peer.port, [])


async def test_a_silent_peer_is_pinged_then_dropped() -> None:
    async with RawPeer(switching) as peer:
        sock = await open_socket(peer.port, [], ping_interval=0.2)
        sock.start()
        await asyncio.wait_for(sock.wait_closed(), WAIT)  # no pong: dropped as dead
        await asyncio.wait_for(peer.closed.wait(), WAIT)
        assert peer.received[0] == 0x89 and peer.received[1] & 0x80  # a masked ping was sent


async def test_a_masked_frame_from_the_server_closes_with_1002() -> None:
    def answer(key: bytes) -> bytes:
        return switching(key) + Frame(Opcode.TEXT, b"bad").serialize(mask=True)

    async with RawPeer(answer) as peer:
        got: list[bytes] = []
        sock = await open_socket(peer.port, got)
        sock.start()
        await asyncio.wait_for(sock.wait_closed(), WAIT)
        await asyncio.wait_for(peer.closed.wait(), WAIT)
        assert got == []
        close = peer.received
        assert close[0] == 0x88  # a close frame, masked, carrying 1002
        mask, body = close[2:6], close[6:8]
        assert int.from_bytes(bytes(b ^ mask[i] for i, b in enumerate(body)), "big") == 1002


async def test_nothing_listening_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(AriConnectionError, match="cannot connect"):
        await open_socket(port, [])


async def test_a_connect_cancelled_during_the_handshake_closes_its_connection() -> None:
    asked = asyncio.Event()

    def answer(key: bytes) -> bytes:  # the upgrade is read, never answered
        asked.set()
        return b""

    async with RawPeer(answer) as peer:
        opening = asyncio.create_task(open_socket(peer.port, []))
        await asyncio.wait_for(asked.wait(), WAIT)
        opening.cancel()  # the app stops while its events socket reconnects
        with pytest.raises(asyncio.CancelledError):
            await opening
        await asyncio.wait_for(peer.closed.wait(), WAIT)  # nothing left open

"""One Lua script over one pipelined Redis connection: the writer's per-tick command, cheaply.

redis-py's asyncio client spends ~60 us of worker CPU around each command besides the socket
write and read (pool checkout and release with its event dispatch, the retry wrapper, argument
filtering, the RESP3 parser's coroutines), ~0.1 ms in all on this 2-core box; a call's start
and end claim are one command each. :class:`ScriptLink` sends ``EVALSHA`` (``EVAL`` once
after a ``NOSCRIPT``: a restarted Redis) on a connection of its own, as RESP2 bytes
(:func:`pack`), and reads the replies in order (:class:`Reader`, sans-I/O): ~20 us.
Plain ``redis://`` URLs only (:func:`supported`: password, user and database included); other
URLs (``rediss://``, ``unix://``) keep redis-py's script.

Errors are redis-py's: :class:`~redis.exceptions.ConnectionError` (refused, closed),
:class:`~redis.exceptions.TimeoutError` (no reply within ``timeout``: the connection is closed,
its later replies would be out of step), :class:`~redis.exceptions.ResponseError` (an error
reply). The next command re-connects.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["INCOMPLETE", "Reader", "ScriptLink", "pack", "supported"]

Arg = bytes | str | int
INCOMPLETE: Any = object()
"""What :meth:`Reader.get` returns while the next reply has not fully arrived."""


def pack(*args: Arg) -> bytes:
    """One command as a RESP2 array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


class Reader:
    """RESP2 replies from a byte stream: :meth:`feed` bytes, :meth:`get` replies in order
    (an error reply is returned as a :class:`~redis.exceptions.ResponseError`, not raised)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Bytes received."""
        self._buf += data

    def get(self) -> Any:
        """The next whole reply, or :data:`INCOMPLETE`."""
        try:
            reply, pos = self._parse(0)
        except IndexError:  # the reply goes on in bytes not received yet
            return INCOMPLETE
        del self._buf[:pos]
        return reply

    def _line(self, pos: int) -> tuple[bytes, int]:
        end = self._buf.find(b"\r\n", pos)
        if end < 0:
            raise IndexError
        return bytes(self._buf[pos:end]), end + 2

    def _parse(self, pos: int) -> tuple[Any, int]:
        line, pos = self._line(pos)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest, pos
        if kind == b"-":
            return ResponseError(rest.decode(errors="replace")), pos
        if kind == b":":
            return int(rest), pos
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None, pos
            if len(self._buf) < pos + n + 2:
                raise IndexError
            return bytes(self._buf[pos : pos + n]), pos + n + 2
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None, pos
            items = []
            for _ in range(n):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        raise RedisConnectionError(f"not a RESP2 reply: {line[:40]!r}")


def supported(url: str) -> bool:
    """True for the URLs :class:`ScriptLink` connects to (plain TCP)."""
    try:
        kw = parse_url(url)
    except ValueError:
        return False
    return "connection_class" not in kw and "host" in kw


class _Protocol(asyncio.Protocol):
    """The socket's side: replies handed to the waiters in order."""

    def __init__(self) -> None:
        self.reader = Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.waiting:
            try:
                reply = self.reader.get()
            except RedisConnectionError as exc:
                self.fail(exc)
                return
            if reply is INCOMPLETE:
                return
            fut = self.waiting.popleft()
            if not fut.done():  # else its waiter gave up (cancelled)
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fail(RedisConnectionError(f"Redis closed the connection ({exc or 'EOF'})"))

    def fail(self, exc: Exception) -> None:
        """Close the connection; every waiter gets ``exc``."""
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)


class ScriptLink:
    """``await link(keys, args)`` runs the Lua ``script`` on Redis at ``url`` (``await
    link(keys, args, other)``: another script, over the same connection)."""

    def __init__(
        self,
        url: str,
        script: str,
        *,
        timeout: float = 0.5,
        connect_timeout: float = 0.25,
        client_name: str | None = None,
    ) -> None:
        """``client_name``: set on every connection opened (``CLIENT SETNAME``)."""
        self._kw = parse_url(url)
        self.client_name = client_name
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        self._shas = {script: self.sha}  # every script run here (its SHA1, for EVALSHA)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def __call__(
        self, keys: Sequence[Arg], args: Sequence[Arg], script: str | None = None
    ) -> Any:
        """Run ``script`` (default: the link's own) with ``keys`` and ``args``."""
        script = self.script if script is None else script
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest()
        reply = await self._command(pack(b"EVALSHA", sha, len(keys), *keys, *args))
        if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._command(pack(b"EVAL", script, len(keys), *keys, *args))
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def aclose(self) -> None:
        """Close the connection (a later call re-opens it)."""
        if self._proto is not None:
            self._proto.fail(RedisConnectionError("closed"))
            self._proto = None

    async def _command(self, data: bytes) -> Any:
        proto = await self._connected()
        assert proto.transport is not None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        proto.waiting.append(fut)
        proto.transport.write(data)
        timer = loop.call_later(self.timeout, self._timed_out, proto, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def _timed_out(self, proto: _Protocol, fut: asyncio.Future[Any]) -> None:
        if not fut.done():
            proto.fail(RedisTimeoutError(f"no reply from Redis within {self.timeout} s"))

    async def _connected(self) -> _Protocol:
        proto = self._proto
        if proto is not None and proto.transport is not None:
            return proto
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._proto is None or self._proto.transport is None:
                self._proto = await self._open()
            return self._proto

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        host, port = self._kw["host"], int(self._kw.get("port", 6379))
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(_Protocol, host, port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"connecting to Redis at {host}:{port}: {exc!r}") from exc
        hello: list[bytes] = []
        if self._kw.get("password") is not None:
            user = self._kw.get("username")
            creds = [user, self._kw["password"]] if user else [self._kw["password"]]
            hello.append(pack(b"AUTH", *creds))
        if int(self._kw.get("db", 0)):
            hello.append(pack(b"SELECT", int(self._kw["db"])))
        if self.client_name:
            hello.append(pack(b"CLIENT", b"SETNAME", self.client_name))
        futs = [loop.create_future() for _ in hello]
        proto.waiting.extend(futs)
        if hello and proto.transport is not None:
            proto.transport.write(b"".join(hello))
            late = RedisTimeoutError(f"no reply to the connection's set-up within {self.timeout} s")
            timer = loop.call_later(self.timeout, proto.fail, late)
            try:
                for fut in futs:
                    if isinstance(reply := await fut, ResponseError):
                        proto.fail(RedisConnectionError(f"Redis refused: {reply}"))
                        raise RedisConnectionError(f"Redis refused the connection: {reply}")
            finally:
                timer.cancel()
        return proto

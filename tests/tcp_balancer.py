"""A round-robin TCP balancer for tests: what HAProxy in tcp mode or DNS round robin does in
front of workers that Asterisk's outbound websockets connect to."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

__all__ = ["Balancer"]


class Balancer:
    """Round-robin TCP balancer: each connection goes to the next worker that accepts it."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._next = itertools.cycle(range(len(ports)))
        self.server: asyncio.Server | None = None
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        for _ in range(len(self.ports)):
            port = self.ports[next(self._next)]
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue  # that worker is down: the next one
            self._writers.append(up_writer)
            for task in (
                asyncio.ensure_future(self._pipe(reader, up_writer)),
                asyncio.ensure_future(self._pipe(up_reader, writer)),
            ):
                self._pipes.add(task)
                task.add_done_callback(self._pipes.discard)
            return
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def __aenter__(self) -> Balancer:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        for writer in self._writers:
            writer.close()  # idempotent; a cancelled pipe's wait_closed() is not awaited again
        await self.server.wait_closed()
        await asyncio.sleep(0)  # the transports' connection_lost

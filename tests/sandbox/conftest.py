"""Fixtures for the sandbox tests: a started Sandbox and a raw ARI client over aiohttp."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from voxflow.sandbox import Sandbox


class RawAri:
    """A deliberately plain ARI client (not voxflow.ari): REST + one events websocket."""

    def __init__(self, sb: Sandbox, session: aiohttp.ClientSession) -> None:
        self.sb = sb
        self.session = session
        token = base64.b64encode(f"{sb.user}:{sb.password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, app: str = "voxflow", **extra: str) -> None:
        url = self.sb.events_url(app) + "".join(f"&{k}={v}" for k, v in extra.items())
        self.ws = await self.session.ws_connect(url)
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.events.put_nowait(json.loads(msg.data))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass

    async def req(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        async with self.session.request(
            method, self.sb.ari_url + path, params=params or None, headers=self.headers
        ) as r:
            text = await r.text()
            body = json.loads(text) if text and r.content_type == "application/json" else text
            return r.status, body

    async def next(self, etype: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            ev = await asyncio.wait_for(self.events.get(), timeout)
            if etype is None or ev["type"] == etype:
                return ev

    async def collect(self, quiet: float = 0.3, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Events until none arrives for ``quiet`` seconds."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                out.append(await asyncio.wait_for(self.events.get(), quiet))
            except TimeoutError:
                break
        return out


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(port=0) as sb:
        yield sb


@contextlib.asynccontextmanager
async def connected(sb: Sandbox, app: str = "voxflow") -> AsyncIterator[RawAri]:
    """A RawAri whose events socket for ``app`` is registered with ``sb``."""
    async with aiohttp.ClientSession() as session:
        client = RawAri(sb, session)
        await client.connect(app)
        await sb.wait_app(app)
        try:
            yield client
        finally:
            await client.close()


@pytest.fixture
async def ari(sandbox: Sandbox) -> AsyncIterator[RawAri]:
    async with connected(sandbox) as client:
        yield client

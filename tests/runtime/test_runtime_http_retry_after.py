"""The http step honours ``Retry-After`` on 429 and 503 (seconds or an HTTP date) between its
retries, up to BACKOFF_CAP; one asking for longer ends the step at once with a clear error,
against a real local aiohttp server."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voxflow.runtime.http_step import BACKOFF_CAP, HttpClient, HttpRequest


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, dict[str, list[float]]]]:
    hits: dict[str, list[float]] = {}

    def busy(status: int, after: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            seen = hits.setdefault(request.path, [])
            seen.append(time.monotonic())
            if len(seen) == 1:
                value = after.replace("DATE", email.utils.formatdate(time.time() + 2, usegmt=True))
                return web.json_response({}, status=status, headers={"Retry-After": value})
            return web.json_response({"ok": True})

        return handler

    app = web.Application()
    app.router.add_get("/429", busy(429, "1"))
    app.router.add_get("/503", busy(503, "1"))
    app.router.add_get("/date", busy(429, "DATE"))
    app.router.add_get("/long", busy(429, "120"))
    app.router.add_get("/500", busy(500, "120"))
    srv = TestServer(app)
    await srv.start_server()
    yield srv, hits
    await srv.close()


def _gap(hits: dict[str, list[float]], path: str) -> float:
    first, second = hits[path][:2]
    return second - first


@pytest.mark.parametrize("path", ["/429", "/503"])
async def test_retry_after_seconds_is_waited(
    server: tuple[TestServer, dict[str, list[float]]], path: str
) -> None:
    srv, hits = server
    async with HttpClient() as client:
        r = await client.perform(HttpRequest("GET", str(srv.make_url(path)), backoff=0.05))
    assert (r.outcome, r.attempts) == ("ok", 2)
    assert _gap(hits, path) >= 0.95  # the backoff alone waits at most 0.05 s


async def test_retry_after_http_date_is_waited(
    server: tuple[TestServer, dict[str, list[float]]],
) -> None:
    srv, hits = server
    async with HttpClient() as client:
        r = await client.perform(HttpRequest("GET", str(srv.make_url("/date")), backoff=0.05))
    assert (r.outcome, r.attempts) == ("ok", 2)
    assert _gap(hits, "/date") >= 0.5  # a date 1-2 s ahead (whole seconds)


async def test_retry_after_past_the_cap_ends_the_step_at_once(
    server: tuple[TestServer, dict[str, list[float]]],
) -> None:
    srv, hits = server
    async with asyncio.timeout(BACKOFF_CAP):
        async with HttpClient() as client:
            r = await client.perform(HttpRequest("GET", str(srv.make_url("/long")), retries=3))
    assert (r.outcome, r.status, r.attempts) == ("error", 429, 1)
    assert len(hits["/long"]) == 1
    assert r.error == (
        f"HTTP 429, Retry-After 120 s: longer than the {BACKOFF_CAP:g} s an http step waits "
        "between tries, not retried"
    )


async def test_retry_after_on_a_500_is_not_read(
    server: tuple[TestServer, dict[str, list[float]]],
) -> None:
    srv, hits = server
    async with HttpClient() as client:
        r = await client.perform(HttpRequest("GET", str(srv.make_url("/500")), backoff=0.05))
    assert (r.outcome, r.attempts) == ("ok", 2)
    assert _gap(hits, "/500") < BACKOFF_CAP

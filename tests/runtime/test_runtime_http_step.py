"""The HTTP step against a real local aiohttp server on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voxflow.runtime.http_step import HttpClient, HttpRequest


class Backend:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}

    def count(self, request: web.Request) -> None:
        key = f"{request.method} {request.path}"
        self.hits[key] = self.hits.get(key, 0) + 1


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Backend]]:
    b = Backend()

    async def ok(request: web.Request) -> web.Response:
        b.count(request)
        body = await request.json() if request.can_read_body else None
        return web.json_response({"balance": 42.5, "echo": body, "q": request.query.get("q")})

    async def boom(request: web.Request) -> web.Response:
        b.count(request)
        return web.json_response({"error": "down"}, status=503)

    async def flaky(request: web.Request) -> web.Response:
        b.count(request)
        if b.hits[f"{request.method} {request.path}"] < 3:
            return web.Response(status=502)
        return web.json_response({"ok": True})

    async def slow(request: web.Request) -> web.Response:
        b.count(request)
        await asyncio.sleep(5)
        return web.json_response({})

    async def big(request: web.Request) -> web.StreamResponse:
        b.count(request)
        resp = web.StreamResponse()  # chunked: no Content-Length to reject up front
        await resp.prepare(request)
        for _ in range(64):
            await resp.write(b"x" * 1024)
        await resp.write_eof()
        return resp

    async def html(request: web.Request) -> web.Response:
        b.count(request)
        return web.Response(text="<html>hi</html>", content_type="text/html")

    async def notfound(request: web.Request) -> web.Response:
        b.count(request)
        return web.Response(status=404, text="nope")

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    app.router.add_route("*", "/boom", boom)
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/html", html)
    app.router.add_get("/missing", notfound)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        yield srv, b
    finally:
        await srv.close()


async def test_ok_json_into_variables(server: tuple[TestServer, Backend]) -> None:
    srv, _ = server
    async with HttpClient() as http:
        res = await http.perform(
            HttpRequest("POST", str(srv.make_url("/ok?q=7")), json_body={"acct": "123"})
        )
    assert res.outcome == "ok" and res.status == 200 and res.attempts == 1
    assert res.data == {"balance": 42.5, "echo": {"acct": "123"}, "q": "7"}
    assert res.as_variables()["data"]["balance"] == 42.5


async def test_5xx_is_error_and_get_is_retried(server: tuple[TestServer, Backend]) -> None:
    srv, b = server
    async with HttpClient() as http:
        res = await http.perform(
            HttpRequest("GET", str(srv.make_url("/boom")), retries=2, backoff=0.01)
        )
    assert res.outcome == "error" and res.status == 503 and res.attempts == 3
    assert res.data == {"error": "down"}
    assert b.hits["GET /boom"] == 3


async def test_post_is_never_retried(server: tuple[TestServer, Backend]) -> None:
    srv, b = server
    async with HttpClient() as http:
        res = await http.perform(
            HttpRequest("POST", str(srv.make_url("/boom")), retries=5, backoff=0.01)
        )
    assert res.outcome == "error" and res.attempts == 1
    assert b.hits["POST /boom"] == 1


async def test_retry_recovers(server: tuple[TestServer, Backend]) -> None:
    srv, b = server
    async with HttpClient() as http:
        res = await http.perform(
            HttpRequest("GET", str(srv.make_url("/flaky")), retries=3, backoff=0.01)
        )
    assert res.outcome == "ok" and res.data == {"ok": True} and res.attempts == 3
    assert b.hits["GET /flaky"] == 3


async def test_4xx_is_not_retried(server: tuple[TestServer, Backend]) -> None:
    srv, b = server
    async with HttpClient() as http:
        res = await http.perform(HttpRequest("GET", str(srv.make_url("/missing")), retries=3))
    assert res.outcome == "error" and res.status == 404 and res.attempts == 1
    assert res.data == "nope"
    assert b.hits["GET /missing"] == 1


async def test_timeout_outcome(server: tuple[TestServer, Backend]) -> None:
    srv, b = server
    async with HttpClient() as http:
        res = await http.perform(
            # 1 s: each attempt must reach the handler (counted) before it times out; 0.2 s
            # did not always on a loaded machine (the handler never answers within 5 s)
            HttpRequest("GET", str(srv.make_url("/slow")), timeout=1.0, retries=1, backoff=0.01)
        )
    assert res.outcome == "timeout" and res.attempts == 2
    assert b.hits["GET /slow"] == 2


async def test_oversize_response_is_error(server: tuple[TestServer, Backend]) -> None:
    srv, _ = server
    async with HttpClient() as http:
        res = await http.perform(HttpRequest("GET", str(srv.make_url("/big")), max_bytes=10_000))
        small_ok = await http.perform(
            HttpRequest("GET", str(srv.make_url("/big")), max_bytes=100_000, expect_json=False)
        )
    assert res.outcome == "error" and res.error is not None and "larger" in res.error
    assert res.attempts == 1
    assert small_ok.outcome == "ok" and len(small_ok.data) == 65536


async def test_non_json_body(server: tuple[TestServer, Backend]) -> None:
    srv, _ = server
    async with HttpClient() as http:
        res = await http.perform(HttpRequest("GET", str(srv.make_url("/html"))))
        text = await http.perform(HttpRequest("GET", str(srv.make_url("/html")), expect_json=False))
    assert res.outcome == "error" and res.error == "response is not JSON"
    assert text.outcome == "ok" and text.data == "<html>hi</html>"


async def test_connection_refused_and_bad_urls() -> None:
    async with HttpClient() as http:
        # port 9 (discard) on loopback is closed in the test environment
        refused = await http.perform(
            HttpRequest("GET", "http://127.0.0.1:9/x", retries=0, timeout=5)
        )
        bad_scheme = await http.perform(HttpRequest("GET", "file:///etc/passwd"))
        bad_method = await http.perform(HttpRequest("BREW", "http://127.0.0.1:9/"))
    assert refused.outcome == "error" and refused.status is None
    assert bad_scheme.outcome == "error" and "http://" in (bad_scheme.error or "")
    assert bad_method.outcome == "error" and "method" in (bad_method.error or "")


async def test_an_unknown_charset_or_a_too_deep_json_body_is_an_outcome_not_an_exception() -> None:
    """``perform`` never raises for what a server sends: a body declared in a charset Python
    does not know was a LookupError, JSON nested deeper than the parser's recursion limit a
    RecursionError (the step failed with 'http failed: LookupError' and no status)."""

    async def klingon(request: web.Request) -> web.Response:
        ctype = "application/json; charset=klingon"
        return web.Response(body=b'{"a": 1}', headers={"Content-Type": ctype})

    async def deep(request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")

    app = web.Application()
    app.router.add_get("/klingon", klingon)
    app.router.add_get("/deep", deep)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        async with HttpClient() as http:
            odd = await http.perform(HttpRequest("GET", str(srv.make_url("/klingon"))))
            nested = await http.perform(HttpRequest("GET", str(srv.make_url("/deep"))))
    finally:
        await srv.close()
    assert odd.outcome == "ok" and odd.status == 200 and odd.data == {"a": 1}  # read as UTF-8
    assert nested.outcome == "error" and nested.status == 200
    assert nested.error == "response is not JSON (nested too deeply)"

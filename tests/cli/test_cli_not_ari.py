"""``--ari-url`` pointing at something that is not Asterisk's ARI (a web page, a proxy's error
page, a JSON API of another kind) is a one-line error with exit 3; ``/asterisk/info`` answered
with HTML or a JSON list was an AttributeError traceback ('NoneType' object has no attribute
'get')."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Thread

import forked
import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving(body: bytes, ctype: str) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 answering every GET with ``body`` (200), on its own thread."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=ctype)

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ready.append(int(runner.addresses[0][1]))
        return runner

    runner = loop.run_until_complete(start())
    thread = Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"<html><body>It works!</body></html>", "text/html"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"system": 5}', "application/json"),
    ],
)
def test_an_ari_url_that_is_not_ari_is_a_one_line_error(body: bytes, ctype: str) -> None:
    with serving(body, ctype) as port:
        url = f"http://127.0.0.1:{port}/ari"
        done = forked.run(
            "run", str(ROOT / "flows" / "main_ivr.flow"),
            "--ari-url", url, "--ari-user", "u", "--ari-password", "pw-not-shown",
            "--no-audio",
            timeout=60,
        )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 3, out
    assert "Traceback" not in out and "pw-not-shown" not in out
    assert f"{url} does not answer as Asterisk's ARI" in out, out

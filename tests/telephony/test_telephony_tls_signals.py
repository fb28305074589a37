"""Edges of VoxtraApp against the sandbox: https/wss (self-signed certificate, TLS in front of the
sandbox), ``app.run()`` stopping on SIGINT/SIGTERM (subprocess), ``HttpUploadSink`` against a
local server, and sessions released when another client replaces the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from vf_sandbox_util import SHORT, WAIT, make_app, sandbox_fixture, tone, until

from voxflow.errors import AriConnectionError, RecordingError
from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.recording import HttpUploadSink, RecordingMetadata
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallState


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


# ------------------------------------------------------------------ https / wss


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsFront:
    """TLS termination in front of the sandbox: bytes are piped to its plain TCP port."""

    def __init__(self, upstream_port: int, ctx: ssl.SSLContext) -> None:
        self.upstream_port = upstream_port
        self.ctx = ctx
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TlsFront:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._tasks.difference_update(pipes)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()


async def test_https_and_wss_with_a_self_signed_certificate(sb: Sandbox, tmp_path: Path) -> None:
    cert, key = await asyncio.to_thread(make_cert, tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    async with TlsFront(sb.port, server_ctx) as front:
        url = f"https://127.0.0.1:{front.port}/ari"
        # The system CAs do not know this certificate: a clear connection error, no traceback.
        untrusting = VoxtraApp(url, sb.user, sb.password)
        with pytest.raises(AriConnectionError, match=r"TLS certificate .* is not trusted"):
            await untrusting.start()
        app = VoxtraApp(url, sb.user, sb.password, ssl=trust, event_wait=2.0)
        done: list[CallState] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            await call.play_file(SHORT)
            await call.hangup()
            done.append(call.state)

        async with app:
            assert app.events.url.startswith("wss://127.0.0.1:")
            sim = await sb.place_call()
            assert await sim.wait_hangup(WAIT) == 16
            await until(lambda: bool(done) and not app.sessions)
        assert done == [CallState.COMPLETED]
        assert [e["state"] for e in sim.experience() if e["type"] == "playback"][-1] == "done"
        assert front.connections >= 2  # REST and the events websocket both went through TLS


async def test_an_untrusted_certificate_or_no_tls_says_what_is_wrong(
    sb: Sandbox, tmp_path: Path
) -> None:
    """The error named only aiohttp's exception class ("cannot reach https://...
    (ClientConnectorCertificateError)"): it says the certificate is not trusted, why, and how
    to trust it; an https:// URL to a plain-HTTP port says the handshake failed."""
    cert, key = await asyncio.to_thread(make_cert, tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with TlsFront(sb.port, server_ctx) as front:
        untrusting = VoxtraApp(f"https://127.0.0.1:{front.port}/ari", sb.user, sb.password)
        with pytest.raises(AriConnectionError) as err:
            await untrusting.start()
    msg = str(err.value)
    assert f"the TLS certificate of https://127.0.0.1:{front.port} is not trusted" in msg, msg
    assert "self-signed certificate" in msg and "SSL_CERT_FILE=" in msg, msg
    plain = VoxtraApp(f"https://127.0.0.1:{sb.port}/ari", sb.user, sb.password)
    with pytest.raises(AriConnectionError) as err:
        await plain.start()
    msg = str(err.value)
    assert f"TLS handshake with https://127.0.0.1:{sb.port} failed" in msg, msg
    assert "http://" in msg, msg


# ------------------------------------------------------------------ app.run() and signals

CHILD = textwrap.dedent(
    """
    import logging, sys
    from voxflow.telephony.app import VoxtraApp

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    app = VoxtraApp(sys.argv[1], sys.argv[2], sys.argv[3], handler_grace=5.0)

    @app.default()
    async def handler(call):
        await call.answer()
        await call.wait_ended()
        logging.getLogger("child").info("handler saw the end of %s", call.id)

    app.run()
    logging.getLogger("child").info("run() returned")
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_run_stops_cleanly_on_signal(sb: Sandbox, tmp_path: Path, sig: int) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        sb.ari_url,
        sb.user,
        sb.password,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await sb.wait_app("voxflow", 60)
        sim = await sb.place_call()
        await sim.wait_answered(WAIT)
        proc.send_signal(sig)
        assert proc.stderr is not None
        err = (await asyncio.wait_for(proc.stderr.read(), 60)).decode()
        assert await asyncio.wait_for(proc.wait(), 30) == 0, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert await sim.wait_hangup(WAIT) == 16 and sim.hangup_by == "pbx"  # the app hung it up
    assert "handler saw the end of" in err and "run() returned" in err
    assert "Traceback" not in err and sb.user + ":" + sb.password not in err
    assert not sb.pbx.app_active("voxflow")  # the websocket was closed


# ------------------------------------------------------------------ HttpUploadSink


class UploadServer:
    def __init__(self) -> None:
        self.got: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.got.append((request.method, request.path, body, dict(request.headers)))
        if request.path.startswith("/fail/"):
            return web.json_response({"error": "disk full"}, status=500)
        return web.Response(status=201, headers={"Location": f"s3://bucket{request.path}"})


async def test_http_upload_sink_uploads_the_recording_once(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uploads = UploadServer()
    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", uploads.handle)
    server = TestServer(web_app, host="127.0.0.1", port=0)
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    ok_sink = HttpUploadSink(f"{base}/rec/{{call_id}}/{{name}}", headers={"X-Api-Key": "t0p"})
    app = make_app(sb, recording_sink=HttpUploadSink(f"{base}/fail/{{name}}", method="POST"))
    out: dict[str, Any] = {}
    try:

        async def handler(call: CallSession) -> None:
            await call.answer()
            await call.record_start("upload-me", sink=ok_sink)
            await asyncio.sleep(0.5)
            out["meta"] = await call.record_stop()
            await call.record_start("fails")
            try:
                await call.record_stop()
            except RecordingError as exc:
                out["error"] = str(exc)
            await call.hangup()

        @app.default()
        async def _h(call: CallSession) -> None:
            await handler(call)

        async with app:
            sim = await sb.place_call()
            await sim.wait_answered(WAIT)
            with contextlib.suppress(Exception):
                await sim.say_audio(tone(0.4, 600.0), label="tone")
            await until(lambda: "error" in out and not app.sessions)
    finally:
        await server.close()
    meta: RecordingMetadata = out["meta"]
    method, path, body, headers = uploads.got[0]
    assert (method, path) == ("PUT", f"/rec/{sim.id}/upload-me")
    assert sb.recordings_dir is not None
    assert body == (sb.recordings_dir / "upload-me.wav").read_bytes() and len(body) > 44
    assert headers["X-Api-Key"] == "t0p" and headers["X-Call-Id"] == sim.id
    assert headers["Content-Type"] == "audio/wav" and headers["X-Recording-Name"] == "upload-me"
    assert (meta.location, meta.size) == (f"s3://bucket/rec/{sim.id}/upload-me", len(body))
    assert [(m, p) for m, p, _, _ in uploads.got] == [
        ("PUT", f"/rec/{sim.id}/upload-me"),
        ("POST", "/fail/fails"),
    ]
    assert "HTTP 500" in out["error"] and "t0p" not in caplog.text


# ------------------------------------------------------------------ ApplicationReplaced


async def test_sessions_are_released_when_the_app_is_replaced(sb: Sandbox) -> None:
    app = make_app(sb)
    fired: list[str] = []
    ended: list[str] = []
    calls: list[CallSession] = []

    @app.default()
    async def handler(call: CallSession) -> None:
        calls.append(call)
        call.on_hangup(lambda: fired.append(call.id))
        await call.answer()
        await call.wait_ended()
        ended.append(call.id)

    other = make_app(sb)
    adopted: list[str] = []

    @other.default()
    async def taker(call: CallSession) -> None:  # the new client adopts what it finds (issue 14)
        adopted.append(call.id)
        await call.wait_ended()

    serving = asyncio.ensure_future(app.serve())
    try:
        await until(lambda: app.connected)
        sims = [await sb.place_call(to="1"), await sb.place_call(to="2")]
        await until(
            lambda: len(calls) == 2 and all(c.state is CallState.IN_PROGRESS for c in calls)
        )
        await other.start()
        # released at once, not at close(): callbacks once, registry empty, handlers finished
        await until(lambda: sorted(fired) == sorted(s.id for s in sims) and not app.sessions)
        await until(lambda: len(ended) == 2)
        assert app.removed == 2
        # ... and not hung up: the calls now belong to the client that took the name over
        await until(lambda: sorted(adopted) == sorted(s.id for s in sims))
        assert all(not s.ended and s.id in sb.pbx.channels for s in sims)
        assert all(c.state is CallState.COMPLETED for c in calls)
    finally:
        await other.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, WAIT)
    assert fired.count(sims[0].id) == 1 and fired.count(sims[1].id) == 1

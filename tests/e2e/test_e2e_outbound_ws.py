"""The example flows served through Asterisk 22's outbound ARI websockets (persistent and per call)
with every REST request over the socket: the sandbox connects out to the worker, and its request
log shows what came over HTTP (only the recording file, which the socket refuses with 406)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import Env, fast_flows, serving
from test_e2e_examples import _leave_message, _press

from voxflow.runtime.events import End
from voxflow.sandbox import QueueAgent

MODES = ["per_call", "persistent"]


def over_the_socket(env: Env) -> set[str]:
    """The REST operations the worker sent over its websockets (method + first path words)."""
    return {f"{m} {'/'.join(p.split('/')[:2])}" for m, p in env.sb.rest_api.ws_log}


@pytest.mark.parametrize("mode", MODES)
async def test_dial_bridge_and_hangup_over_the_socket(tmp_path: Path, mode: str) -> None:
    async with serving([fast_flows(tmp_path) / "main_ivr.flow"], mode=mode, http=False) as env:
        call = await env.call("+18005550100")
        await _press(call, "1")
        agent = await env.sb.next_outbound(timeout=20)
        assert agent.to == "sales"
        await call.wait_for("bridge", 20)
        await agent.hangup()
        assert await env.result(call) == End("completed", "normal")
        assert env.states(call) == ["main_menu", "sales", "goodbye"]
        assert await call.wait_hangup(20) == 16
    assert not env.sb.rest_api.http_log  # the worker has no HTTP address at all
    ops = over_the_socket(env)
    for op in ("POST /channels", "POST /bridges", "DELETE /channels"):
        assert op in ops, (op, ops)
    if mode == "per_call":  # the agent leg was dialled on the caller's own socket
        apps = {a for a in env.sb.pbx.apps if a.startswith("voxflow:")}
        assert len(apps) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_queue_and_transfer_leave_stasis_over_the_socket(tmp_path: Path, mode: str) -> None:
    async with serving([fast_flows(tmp_path) / "main_ivr.flow"], mode=mode, http=False) as env:
        # an agent answers and hangs up: Queue() hands the call back (CONTINUE) over the
        # persistent socket, or per call over a new socket (Stasis() connects out again)
        env.sb.add_queue("support", [QueueAgent("ann", answer_after=0.2, talk=0.2)])
        queued = await env.call("100", from_="+15550001")
        paying = await env.call("100", from_="+15550002")
        await asyncio.gather(_press(queued, "2"), _press(paying, "3", "1"))
        assert await env.result(queued) == End("completed", "normal")
        assert env.states(queued)[-2:] == ["support", "goodbye"]
        assert await env.result(paying) == End("transferred", "PJSIP/payments")
    assert not env.sb.rest_api.http_log
    assert "POST /channels" in over_the_socket(env)  # answer, play...
    continues = [p for m, p in env.sb.rest_api.ws_log if p.endswith("/continue")]
    redirects = [p for m, p in env.sb.rest_api.ws_log if p.endswith("/redirect")]
    assert len(continues) == 1 and len(redirects) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_voicemail_record_over_the_socket_file_over_http(tmp_path: Path, mode: str) -> None:
    flows = fast_flows(tmp_path)  # the shipped voicemail subflow keeps its 4 s silence
    async with serving([flows / "voicemail.flow"], mode=mode) as env:
        call = await env.call("300")
        await _leave_message(env, call)
        await _press(call, "1")  # keep
        assert await env.result(call) == End("completed", "voicemail saved")
    recorded = [p for m, p in env.sb.rest_api.ws_log if p.endswith("/record")]
    assert len(recorded) == 1
    assert all(p.endswith("/file") for _, p in env.sb.rest_api.http_log)


@pytest.mark.parametrize("mode", MODES)
async def test_spoken_prompts_through_external_media_over_the_socket(
    tmp_path: Path, mode: str
) -> None:
    media = pytest.importorskip("voxflow.media.callmedia")
    espeak = pytest.importorskip("voxflow.media.tts_espeak")
    app = {"tts": espeak.EspeakTTS(), "voice_factory": media.create_call_voice}
    flows = fast_flows(tmp_path)
    # per call: the socket closes 3 s after the StasisEnd, as on Asterisk (the kit's 0.1 s was
    # missed by the media DELETEs, sent 2-20 ms after it at load ~1.5, in a CI run at load ~20)
    async with serving(
        [flows / "main_ivr.flow"], app=app, mode=mode, http=False, close_after_end=3.0
    ) as env:
        call = await env.call("100")
        await call.wait_for("audio", 30)  # "Thank you for calling Acme." is heard
        await call.hangup()
        assert await env.result(call) == End("caller_hangup", "caller")
        assert len(call.heard_audio()) > 0
        async with asyncio.timeout(10):
            while env.sb.pbx.channels:  # noqa: ASYNC110 - the media channels go after the call
                await asyncio.sleep(0.05)
    assert not env.sb.rest_api.http_log
    assert "POST /channels" in over_the_socket(env)
    assert any(p == "/channels/externalMedia" for _, p in env.sb.rest_api.ws_log)

"""A per-call outbound websocket closes once its call left Stasis (Asterisk: 3 s after the
StasisEnd; issue 20): the call's media channel (externalMedia) and bridge are in that call's own
application, so nothing can remove them after the close. The flow's hang-up removes them first,
while the socket is open. The sandbox here closes the socket at once after the StasisEnd (the
worst ordering a loaded worker meets with 3 s, forced): before the fix their DELETEs came after
the close and both stayed on the node (the ``test_cluster_outbound_handover`` flake)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import Env, serving
from aiohttp import web
from http_kit import local_http

from voxflow.media.callmedia import create_call_voice
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.events import End

FLOW = """\
flow bye "speaks, then hangs up":
    answers "100"

state start:
    answer
    say "Goodbye."
    hangup "done"
"""


async def test_a_per_call_hang_up_removes_its_media_before_the_socket_closes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bye.flow"
    path.write_text(FLOW)
    app = {"tts": EspeakTTS(sample_rate=8000), "voice_factory": create_call_voice}
    async with serving([path], app=app, mode="per_call", http=False, close_after_end=0) as env:
        call = await env.call("100")
        assert await env.result(call) == End("completed", "done")
        assert await call.wait_hangup(20) == 16
        deleted = {p.split("/")[2][:6] for m, p in env.sb.rest_api.ws_log if m == "DELETE"}
        assert deleted >= {"vf-em-", "vf-mb-"}, env.sb.rest_api.ws_log  # over the socket
        assert not env.sb.pbx.channels and not env.sb.pbx.bridges, (
            env.sb.pbx.channels,
            env.sb.pbx.bridges,
        )


SLOW_HANGUP = """\
flow slow_bye "speaks; its hang-up handler waits on a slow CRM":
    answers "100"

var _crm: map

on hangup:
    http post "{base}/ended" into _crm

state start:
    answer
    say "Hello."
    pause 30s
    hangup "done"
"""


async def test_a_caller_hang_up_removes_the_media_before_a_slow_on_hangup(tmp_path: Path) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5.0)  # longer than the 3 s Asterisk keeps the socket open
        return web.json_response({"ok": True})

    app = {"tts": EspeakTTS(sample_rate=8000), "voice_factory": create_call_voice}
    async with local_http("/{name}", slow) as base:
        path = tmp_path / "slow_bye.flow"
        path.write_text(SLOW_HANGUP.format(base=base))
        async with serving(
            [path], app=app, mode="per_call", http=False, close_after_end=3.0
        ) as env:
            call = await env.call("100")
            await call.wait_for("audio", 30)
            assert len(_ours(env)) == 2
            await call.hangup()
            async with asyncio.timeout(20):
                while env.sb.outbound.sockets:  # noqa: ASYNC110 - until the socket closed
                    await asyncio.sleep(0.05)
            assert not _ours(env), _ours(env)
            assert (await env.result(call)).outcome == "caller_hangup"


def _ours(env: Env) -> set[str]:
    """voxflow's media channels and bridges still on the sandbox."""
    chans = {c for c in env.sb.pbx.channels if c.startswith("vf-em-")}
    return chans | {b for b in env.sb.pbx.bridges if b.startswith("vf-mb-")}

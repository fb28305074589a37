"""A per-call outbound websocket closes once its call left Stasis (Asterisk: 3 s after the
StasisEnd; issue 20): the call's media channel (externalMedia) and bridge are in that call's own
application, so nothing can remove them after the close. The flow's hang-up removes them first,
while the socket is open. The sandbox here closes the socket at once after the StasisEnd (the
worst ordering a loaded worker meets with 3 s, forced): before the fix their DELETEs came after
the close and both stayed on the node (the ``test_cluster_outbound_handover`` flake)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import serving

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

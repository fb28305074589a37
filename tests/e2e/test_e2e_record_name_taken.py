"""A call that was not resumed keeps the plain rule for a recording name Asterisk refuses (409,
the name stored already, ``ifExists=fail``): the ``record`` step ends ``error``, nothing is
renamed or overwritten (a resumed call renames: tests/cluster/test_cluster_resume_recording.py)."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

from _e2e_kit import serving

from voxflow.runtime.events import End

FLOW = """flow rec_twice "Record one name twice":
    answers "401"
    timeout 5s

var message: string

state main:
    answer
    record "twice-{{ call.id }}" into message max 60s silence 1s:
        on done -> again
        on noinput:
            hangup "nothing heard"
        on error:
            hangup "first failed"

state again:
    record "twice-{{ call.id }}" into message max 2s:
        on done:
            hangup "recorded twice"
        on noinput:
            hangup "nothing heard twice"
        on error:
            hangup "name taken"
"""


async def test_a_taken_name_fails_the_record_step_of_a_call_not_resumed(tmp_path: Path) -> None:
    flow = tmp_path / "rec_twice.flow"
    flow.write_text(FLOW)
    tone = array(
        "h", (int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(20000))
    ).tobytes()
    async with serving([flow]) as env:
        call = await env.call("401")
        await env.wait_line(call, "recording ")
        await call.say_audio(tone, label="a message")
        assert await env.result(call, timeout=20.0) == End("completed", "name taken")
        recorded = [e for e in call.experience() if e["type"] == "recorded"]
        assert len(recorded) == 1

"""Diagnostics met while porting PBX flows (business hours, queues, webhooks, agents)."""

from __future__ import annotations

from voxflow.compiler import compile_flow

VOICEMAIL = """include "voxflow:voicemail.flow"

flow t:
    timeout 5s

state closed:
    answer
    call voicemail(box = "frontdesk", review = false) returns (message, saved):
        on returned:
            say "{{ message }}"
            hangup
        on error:
            hangup
"""


def _diags(text: str, code: str) -> list[tuple[int, int, str, str | None]]:
    result = compile_flow(text, "t.flow")
    return [
        (d.span.line, d.span.col, d.message, d.hint) for d in result.diagnostics if d.code == code
    ]


def test_an_unused_call_return_points_at_it_and_says_to_leave_it_out() -> None:
    got = _diags(VOICEMAIL, "VF302")
    assert len(got) == 1
    line, col, message, hint = got[0]
    assert (line, message) == (8, "variable 'saved' is never used")
    assert col == VOICEMAIL.splitlines()[7].index("saved") + 1
    assert hint is not None and "leave it out of 'returns (...)'" in hint
    assert "leading '_'" not in hint  # 'returns (_saved)' is VF106: no such return value

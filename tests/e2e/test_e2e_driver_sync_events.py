"""The driver feeds DTMF and hang-ups to step() from the session's event dispatch (no
per-call listener task), over real ARI on the sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _e2e_kit import serving

MENU = """flow sync_menu "Sync menu":
    answers "300"
    timeout 20s

state main:
    answer
    menu "Press 1 or 2.":
        1 -> one
        2 -> two
        on noinput, nomatch -> retry
        on exhausted:
            hangup "no input"

state one:
    hangup "one"

state two:
    say "Two."
    hangup "two"
"""


async def test_dtmf_and_hangup_reach_the_flow_without_a_listener_task(tmp_path: Path) -> None:
    flow = tmp_path / "sync_menu.flow"
    flow.write_text(MENU)
    async with serving([flow]) as env:
        a = await env.call("300")
        b = await env.call("300")
        for c in (a, b):
            await env.wait_line(c, "-> main")
        await asyncio.sleep(0.2)
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert not [n for n in names if n.startswith("dtmf-")]  # no per-call DTMF task
        await a.press("2")
        await b.hangup()
        end_a, end_b = await env.result(a), await env.result(b)
    assert (end_a.outcome, end_a.reason) == ("completed", "two")
    assert env.states(a) == ["main", "two"]
    assert "[pressed 2]" in env.said(a, "caller")
    assert env.said(a) == ["Press 1 or 2.", "Two."]
    assert (end_b.outcome, end_b.reason) == ("caller_hangup", "caller")

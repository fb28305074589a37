"""Issue 14 item 4: every wait is bounded. A listen that never answers (the caller's side loops
audio no choice matches, an STT that never finishes) is ended by the speech guard timer as the
flow's no-input handling says, for speech-only and for DTMF+speech menus."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from _runtime_flowkit import Run
from test_runtime_step import menu_flow

from voxflow.runtime import events as ev
from voxflow.runtime.machine import SPEECH_GUARD_MS


@pytest.mark.parametrize("mode", ["speech", "both"])
def test_a_listen_that_never_answers_ends_noinput_then_exhausted(mode: str) -> None:
    r = Run(menu_flow(input=mode), speech=True)
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    guards = 0
    while r.ended() is None and guards < 10:
        ops = [c for c in r.last if isinstance(c, ev.Say | ev.Answer)]
        if ops:  # a prompt (or the answer) started: it completes
            r.send(ev.OpDone(ops[-1].cid, None, now=r.now))
            continue
        listen = r.pending(ev.Listen)
        guard = r.pending(ev.StartTimer)
        assert guard.cid != listen.cid and guard.ms == 5000 + SPEECH_GUARD_MS
        stops = r.fire()  # the listen never returned: the guard ends the wait
        assert ev.StopOp(listen.cid) in stops
        guards += 1
    assert guards == 3  # three attempts, each ended by its guard
    assert r.said()[-1] == "Goodbye."
    assert r.ended() is not None


def test_speech_that_arrives_in_time_still_wins_and_the_guard_is_stopped() -> None:
    r = Run(menu_flow(input="speech"), speech=True)
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    guard = r.pending(ev.StartTimer)
    out = r.done(ev.Listen, "support please")
    assert ev.StopOp(guard.cid) in out
    assert r.states()[-1] == "support"

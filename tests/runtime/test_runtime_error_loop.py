"""An ``on error`` that leads back to a failing step ends the call instead of looping for as
long as the caller stays on the line (the step budget only bounds steps between two waits)."""

from __future__ import annotations

from _runtime_flowkit import (
    Run,
    answer,
    binop,
    flow,
    gather,
    goto,
    handler,
    hangup,
    lit,
    say,
    setv,
    sp,
    state,
)

from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.runstate import ERROR_STREAK_LIMIT

_FAIL = setv("x", binop("/", lit(1), lit(0)))
_VARS = (ir.VarDecl(name="x", type="number", span=sp()),)


def _drive(r: Run, turns: int, on_gather: str = "") -> None:
    """Finish each op the flow starts (a gather's first-digit timer: press ``on_gather``), up
    to ``turns`` times or the call's end."""
    r.start()
    for _ in range(turns):
        if r.ended() is not None:
            return
        ops = [c for c in r.last if isinstance(c, ev.Op | ev.StartTimer)]
        if not ops:
            return
        cmd = ops[-1]
        if isinstance(cmd, ev.StartTimer):
            assert on_gather, r.last
            r.press(on_gather)
        else:
            r.send(ev.OpDone(cmd.cid, None, now=r.now))


def test_an_error_handler_going_back_to_the_failing_state_ends_the_call() -> None:
    f = flow(
        state("main", answer(), _FAIL, hangup(), on_error=(handler(goto("main")),)),
        variables=_VARS,
    )
    r = Run(f)
    _drive(r, 10 * ERROR_STREAK_LIMIT)
    end = r.ended()
    assert end is not None and end.outcome == "error"
    assert "error handling loops" in end.reason and "division" in end.reason.lower()
    logged = [e.message for e in r.errors()]
    assert logged.count("division by zero") == ERROR_STREAK_LIMIT + 1  # the 21st ends it
    assert len(logged) == ERROR_STREAK_LIMIT + 2 and "loops" in logged[-1]
    assert r.states().count("main") == ERROR_STREAK_LIMIT + 1


def test_the_loop_through_other_states_and_prompts_ends_too() -> None:
    f = flow(
        state("main", answer(), _FAIL, hangup(), on_error=(handler(goto("sorry")),)),
        state("sorry", say("Sorry, something went wrong."), goto("main")),
        variables=_VARS,
    )
    r = Run(f)
    _drive(r, 10 * ERROR_STREAK_LIMIT)
    end = r.ended()
    assert end is not None and end.outcome == "error"
    assert r.said().count("Sorry, something went wrong.") == ERROR_STREAK_LIMIT


def test_errors_with_the_caller_asked_between_them_do_not_end_the_call() -> None:
    menu = gather(
        prompt="Press 1 to try again.",
        choices=(ir.Choice(value="again", keys=("1",), span=sp()),),
        on={"choice:again": (handler(goto("main")),)},
    )
    f = flow(
        state("main", answer(), _FAIL, hangup(), on_error=(handler(goto("ask")),)),
        state("ask", menu),
        variables=_VARS,
    )
    r = Run(f)
    _drive(r, 6 * ERROR_STREAK_LIMIT, on_gather="1")
    assert r.ended() is None  # a caller pressing 1 each time may try as often as they like
    assert len(r.errors()) > ERROR_STREAK_LIMIT

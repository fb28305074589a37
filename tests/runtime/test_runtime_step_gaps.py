"""Step gaps: a failing input step runs its own ``on error`` before the state's (pure step)."""

from __future__ import annotations

from _runtime_flowkit import Run, T, flow, handler, hangup, say, sp, state

from voxflow.ir import models as ir
from voxflow.runtime import events as ev


def http_step(on: dict[str, tuple[ir.Handler, ...]]) -> ir.HttpStep:
    return ir.HttpStep(
        method="GET", url=T("http://127.0.0.1:9/x"), timeout_ms=1000, on=on, span=sp()
    )


def _flow(on: dict[str, tuple[ir.Handler, ...]], state_error: bool) -> ir.Flow:
    errs = (handler(say("state error"), hangup("state")),) if state_error else ()
    step_on = dict(on)
    if "error" not in step_on:  # what lowering does: the state's on error, else implied hangup
        step_on["error"] = errs or (
            ir.Handler(
                origin="default", steps=(ir.HangupStep(reason="error", span=sp()),), span=sp()
            ),
        )
    for name in ("ok", "timeout"):
        step_on.setdefault(name, ())
    return flow(state("main", http_step(step_on), say("after"), hangup(), on_error=errs))


def test_failing_op_runs_the_steps_own_on_error_first() -> None:
    own = {"error": (handler(say("step error"), hangup("step")),)}
    r = Run(_flow(own, state_error=True))
    r.start()
    r.send(ev.OpFailed(r.pending(ev.Http).cid, "http failed: boom"))
    assert r.said() == ["step error"]
    assert any("boom" in e.message for e in r.errors())  # still logged with its source line
    r.done(ev.Say)
    end = r.ended()
    assert end is not None and end.reason == "step"


def test_without_its_own_on_error_the_states_handler_runs() -> None:
    r = Run(_flow({}, state_error=True))
    r.start()
    r.send(ev.OpFailed(r.pending(ev.Http).cid, "http failed: boom"))
    assert r.said() == ["state error"]


def test_without_any_error_handler_the_call_hangs_up_with_error() -> None:
    r = Run(_flow({}, state_error=False))
    r.start()
    r.send(ev.OpFailed(r.pending(ev.Http).cid, "http failed: boom"))
    assert r.said() == []
    end = r.ended()
    assert end is not None and end.outcome == "error"


def test_a_template_error_in_the_step_runs_its_own_on_error() -> None:
    step = ir.HttpStep(
        method="GET",
        url=T("http://x/{{ missing }}"),
        timeout_ms=1000,
        on={"error": (handler(say("bad url"), hangup("step")),), "ok": (), "timeout": ()},
        span=sp(),
    )
    r = Run(flow(state("main", step, hangup())))
    r.start()
    assert r.said() == ["bad url"]
    assert any("missing" in e.message for e in r.errors())

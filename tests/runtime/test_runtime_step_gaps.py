"""Step gaps: a failing input step runs its own ``on error`` before the state's (pure step)."""

from __future__ import annotations

from _runtime_flowkit import Run, T, flow, goto, handler, hangup, retry, say, sp, state

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


# ------------------------------------------------------------ anytime commands during waits


def _operator_cmd() -> ir.Command:
    return ir.Command(name="operator", keys=("*0",), handler=handler(goto("operator")), span=sp())


def _record(on: dict[str, tuple[ir.Handler, ...]] | None = None) -> ir.RecordStep:
    outcomes = {k: () for k in ("done", "noinput", "exhausted", "error")}
    return ir.RecordStep(
        name=T("msg"),
        var="message",
        max_duration_ms=60_000,
        silence_ms=4_000,
        bargein=ir.BargeIn(),
        on={**outcomes, **(on or {})},
        span=sp(),
    )


def _with_operator(step: ir.Step) -> ir.Flow:
    return flow(
        state("main", step, hangup("after"), commands=(_operator_cmd(),)),
        state("operator", say("Connecting you."), hangup("operator")),
    )


def test_command_keys_during_a_recording_stop_it_and_run_the_command() -> None:
    r = Run(_with_operator(_record()))
    r.start()
    r.done(ev.RecordStart, "msg")
    out = r.press("5*0")  # '5' is not a command; '*0' ends the keys pressed: the command
    stops = [c for c in out if isinstance(c, ev.RecordStop)]
    assert [c.name for c in stops] == ["msg"]  # the recording is stopped (and kept)
    assert r.states() == ["main", "operator"]
    assert r.said() == ["Connecting you."]


def test_the_terminator_still_ends_a_recording_with_done() -> None:
    r = Run(_with_operator(_record()))
    r.start()
    r.done(ev.RecordStart, "msg")
    r.press("#")
    r.done(ev.RecordStop, "msg")
    assert r.states() == ["main"]
    assert r.state.variables()["message"] == "msg"
    assert r.ended() is not None


def test_command_keys_during_an_agent_stop_it_and_run_the_command() -> None:
    outcomes = {k: () for k in ("max_turns", "timeout", "noinput", "exhausted", "error")}
    agent = ir.AgentStep(
        system=T("Help."),
        max_turns=5,
        timeout_ms=60_000,
        silence_ms=8_000,
        bargein=ir.BargeIn(),
        on=outcomes,
        span=sp(),
    )
    r = Run(_with_operator(agent))
    r.start()
    cid = r.pending(ev.Agent).cid
    out = r.press("*0")
    assert any(isinstance(c, ev.StopOp) and c.cid == cid for c in out)
    assert r.states() == ["main", "operator"]
    r.send(ev.OpDone(cid, {"outcome": "timeout"}))  # a late answer of the stopped agent
    assert r.said() == ["Connecting you."]


# ------------------------------------------------------------ queue: what the checker asks for


def test_queue_needs_timeout_and_failed_handlers() -> None:
    # Queue() returns the call to the flow with QUEUESTATUS: timeout and failed both happen
    from voxflow.compiler import compile_flow

    text = (
        'flow f:\n    timeout 5s\n\nstate a:\n    queue "support":\n'
        "        on timeout, failed -> b\n    hangup\n\nstate b:\n    hangup\n"
    )
    assert [d.code for d in compile_flow(text, "q.flow").diagnostics] == []
    broken = text.replace(":\n        on timeout, failed -> b\n", "\n")
    diags = compile_flow(broken, "q.flow").diagnostics
    assert [(d.code, d.span.line, d.message) for d in diags if d.code == "VF203"] == [
        ("VF203", 5, "queue does not handle outcomes 'timeout', 'failed'")
    ]


def test_queue_status_table_covers_the_captured_statuses() -> None:
    from voxflow.ir.models import OUTCOMES, QUEUE_STATUS, queue_outcome

    assert set(QUEUE_STATUS.values()) <= set(OUTCOMES["queue"])
    # queue-return.json: no members -> TIMEOUT; a member answered, option c -> CONTINUE
    assert queue_outcome("TIMEOUT") == "timeout" and queue_outcome("CONTINUE") == "answered"
    assert queue_outcome("FULL") == queue_outcome("") == queue_outcome("odd") == "failed"


# ------------------------------------------------------------ record: silence and noinput


def _record_flow() -> ir.Flow:
    step = _record(
        {
            "noinput": (handler(say("nothing heard"), hangup("noinput")),),
            "error": (handler(hangup("record error")),),
        }
    )
    return flow(state("main", step, hangup("done")))


def test_record_asks_asterisk_for_silence_and_waits_with_a_record_timer() -> None:
    r = Run(_record_flow())
    start = r.start()
    rs = next(c for c in start if isinstance(c, ev.RecordStart))
    assert (rs.silence_ms, rs.max_duration_ms) == (4_000, 60_000)
    out = r.done(ev.RecordStart, "msg")
    timers = [c for c in out if isinstance(c, ev.RecordTimer)]
    assert [t.ms for t in timers] == [60_000]
    stop = r.send(ev.TimerFired(timers[0].cid))  # max reached, or the recording ended itself
    assert [c.name for c in stop if isinstance(c, ev.RecordStop)] == ["msg"]


def test_a_recording_with_nothing_heard_is_noinput() -> None:
    r = Run(_record_flow())
    r.start()
    r.done(ev.RecordStart, "msg")
    r.fire()
    r.done(ev.RecordStop, {"name": "msg", "duration": 0})
    assert r.said() == ["nothing heard"]
    assert "message" not in r.state.variables()


def test_a_recording_with_speech_is_done() -> None:
    r = Run(_record_flow())
    r.start()
    r.done(ev.RecordStart, "msg")
    r.fire()
    r.done(ev.RecordStop, {"name": "msg", "duration": 3})
    assert r.state.variables()["message"] == "msg"
    end = r.ended()
    assert end is not None and end.reason == "done"


def test_a_failing_recording_is_the_error_outcome() -> None:
    r = Run(_record_flow())
    r.start()
    r.send(ev.OpFailed(r.pending(ev.RecordStart).cid, "record_start failed: 409"))
    end = r.ended()
    assert end is not None and end.reason == "record error"


def test_the_terminator_key_means_done_even_for_a_very_short_message() -> None:
    r = Run(_record_flow())
    r.start()
    r.done(ev.RecordStart, "msg")
    r.press("#")
    r.done(ev.RecordStop, {"name": "msg", "duration": 0})
    assert r.state.variables()["message"] == "msg"


# ------------------------------------------------------------ record: retries count attempts


def _record_retry_flow(max_attempts: int) -> ir.Flow:
    step = _record(
        {
            "noinput": (handler(say("say something"), retry()),),
            "exhausted": (handler(say("giving up"), hangup("exhausted")),),
        }
    ).model_copy(update={"max_attempts": max_attempts})
    return flow(state("main", step, hangup("done")))


def _record_nothing(r: Run) -> None:
    r.done(ev.RecordStart, "msg")
    r.fire()
    r.done(ev.RecordStop, {"name": "msg", "duration": 0})


def test_record_retries_count_attempts_and_end_exhausted() -> None:
    r = Run(_record_retry_flow(3))
    r.start()
    for _ in range(10):  # bounded: before the fix this retried forever
        _record_nothing(r)
        out = r.done(ev.Say)  # "say something" ends: retry, or exhausted
        if not any(isinstance(c, ev.RecordStart) for c in out):
            break
    starts = [c for c in r.log if isinstance(c, ev.RecordStart)]
    assert len(starts) == 3  # attempts 1..3; the retry at attempt 3 = max is exhausted
    assert r.said() == ["say something"] * 3 + ["giving up"]
    r.done(ev.Say)
    end = r.ended()
    assert end is not None and end.reason == "exhausted"


def test_a_retried_record_that_hears_speech_ends_done() -> None:
    r = Run(_record_retry_flow(2))
    r.start()
    _record_nothing(r)
    r.done(ev.Say)  # retry: attempt 2
    r.done(ev.RecordStart, "msg")
    r.fire()
    r.done(ev.RecordStop, {"name": "msg", "duration": 2})
    end = r.ended()
    assert end is not None and end.reason == "done"
    assert r.said() == ["say something"]

"""The pure step function: one test per step kind / outcome / handler rule (no sockets)."""

from __future__ import annotations

from _runtime_flowkit import (
    Run,
    T,
    answer,
    binop,
    choice,
    cont,
    flow,
    fn,
    gather,
    goto,
    handler,
    hangup,
    lit,
    log,
    retry,
    say,
    setv,
    sp,
    state,
    var,
)

from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.step import step


def menu_flow(**gather_kw: object) -> ir.Flow:
    g = gather(
        var="dept",
        choices=(choice("sales", ("1",), ("sales",)), choice("support", ("2",), ("support",))),
        reprompts=("Please press 1 for sales or 2 for support.",),
        on={
            "choice:sales": (handler(goto("sales")),),
            "choice:support": (handler(goto("support")),),
            "noinput": (
                handler(say("Still nothing."), retry(), count=2),
                handler(say("Sorry, I did not hear you."), retry(), count=1),
            ),
            "nomatch": (handler(say("That is not a valid choice."), retry()),),
            "exhausted": (handler(say("Goodbye."), hangup("exhausted")),),
        },
        **gather_kw,  # type: ignore[arg-type]
    )
    return flow(
        state("main", answer(), say("Welcome to Acme."), g),
        state("sales", say("Sales, {{ dept }} here."), hangup()),
        state("support", say("Support here."), hangup()),
        variables=(ir.VarDecl(name="dept", type="string", span=sp()),),
    )


def test_menu_main_path() -> None:
    r = Run(menu_flow())
    out = r.start()
    assert isinstance(out[-1], ev.Answer)
    out = r.done(ev.Answer)
    assert [type(c) for c in out if not isinstance(c, ev.Notify)] == [ev.Say]
    r.done(ev.Say)
    assert r.said()[-1] == "Press 1 for sales or 2 for support."
    r.done(ev.Say)  # prompt finished: a first-digit timer starts
    assert r.pending(ev.StartTimer).ms == 5000
    r.press("1")
    assert r.states() == ["main", "sales"]
    assert r.said()[-1] == "Sales, sales here."
    out = r.done(ev.Say)
    assert ev.Hangup("normal") in out
    assert r.ended() == ev.End("completed", "normal")
    assert r.state.variables()["dept"] == "sales"


def test_noinput_counted_handlers_escalate_and_exhaust() -> None:
    r = Run(menu_flow())
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    r.fire()  # attempt 1: noinput #1 -> count-1 handler
    assert r.said()[-1] == "Sorry, I did not hear you."
    r.done(ev.Say)
    assert r.said()[-1] == "Please press 1 for sales or 2 for support."  # reprompt
    r.done(ev.Say)
    r.fire()  # noinput #2 -> count-2 handler (highest count not above the counter)
    assert r.said()[-1] == "Still nothing."
    r.done(ev.Say)
    r.done(ev.Say)
    r.fire()  # noinput #3 -> still the count-2 handler; retry at attempt 3 = max -> exhausted
    assert r.said()[-1] == "Still nothing."
    assert r.said().count("Still nothing.") == 2
    r.done(ev.Say)
    assert r.said()[-1] == "Goodbye."
    r.done(ev.Say)
    assert r.ended() == ev.End("completed", "exhausted")


def test_nomatch_then_match() -> None:
    r = Run(menu_flow())
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    r.press("7")  # no choice starts with 7: ends at once
    assert r.said()[-1] == "That is not a valid choice."
    r.done(ev.Say)
    r.done(ev.Say)
    r.press("2")
    assert r.states()[-1] == "support"


def test_dtmf_barges_into_prompt() -> None:
    r = Run(menu_flow())
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    prompt = r.pending(ev.Say)
    out = r.press("2")
    assert ev.StopOp(prompt.cid) in out
    assert r.states()[-1] == "support"


def test_no_barge_in_ignores_keys_during_prompt() -> None:
    r = Run(menu_flow(mode="none"))
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.press("2")
    assert r.states() == ["main"]
    r.done(ev.Say)
    r.press("1")
    assert r.states()[-1] == "sales"


def test_typeahead_during_welcome_skips_menu_prompt() -> None:
    r = Run(menu_flow())
    r.start()
    r.done(ev.Answer)
    welcome = r.pending(ev.Say)
    out = r.press("1")
    assert ev.StopOp(welcome.cid) in out
    r.send(ev.OpDone(welcome.cid))
    assert r.states()[-1] == "sales"
    assert "Press 1 for sales or 2 for support." not in r.said()


def test_caller_hangup_mid_prompt_runs_hangup_handler_once() -> None:
    f = menu_flow()
    main = f.states["main"].model_copy(
        update={"on_hangup": (handler(setv("gone", lit(True)), log("bye {{ dept }}"), hangup()),)}
    )
    f = f.model_copy(update={"states": {**f.states, "main": main}})
    r = Run(f)
    r.start()
    r.done(ev.Answer)
    out = r.send(ev.HangupEvent("normal"))
    assert isinstance(out[0], ev.StopAll)
    # the handler's template reads an unset variable: logged as an error, the call still ends
    assert r.ended() is not None and r.ended().outcome == "caller_hangup"  # type: ignore[union-attr]
    assert r.send(ev.HangupEvent("normal")) == []
    assert r.send(ev.Dtmf("1")) == []
    assert not any(isinstance(c, ev.Say) and c.text == "Press" for c in r.log)


def test_hangup_handler_runs_after_flow_hangup_and_only_safe_steps() -> None:
    f = flow(
        state(
            "main",
            say("Bye."),
            hangup("done"),
            on_hangup=(
                handler(say("never spoken"), setv("x", lit(1)), log("x={{ x }}"), hangup()),
            ),
        ),
        variables=(ir.VarDecl(name="x", span=sp()),),
    )
    r = Run(f)
    r.start()
    r.done(ev.Say)
    assert r.said() == ["Bye."]
    assert ev.Log("info", "x=1", f.states["main"].on_hangup[0].steps[2].span, "main") in r.log
    assert r.ended() == ev.End("completed", "done")
    assert r.send(ev.HangupEvent()) == []


def test_error_handler_and_default_hangup() -> None:
    bad = state("main", say("Hello {{ nobody }}"), hangup())
    r = Run(flow(bad))
    r.start()
    errs = r.errors()
    assert errs and "nobody" in errs[0].message and errs[0].span == bad.steps[0].span
    assert errs[0].state == "main"
    assert ev.Hangup("error") in r.log and r.ended() is not None
    assert r.ended().outcome == "error"  # type: ignore[union-attr]

    handled = state(
        "main",
        say("Hello {{ nobody }}"),
        hangup(),
        on_error=(handler(goto("sorry")),),
    )
    r = Run(flow(handled, state("sorry", say("Something went wrong."), hangup())))
    r.start()
    assert r.said() == ["Something went wrong."]


def test_op_failure_runs_error_handler() -> None:
    f = flow(
        state("main", say("Hi"), hangup(), on_error=(handler(say("fallback"), hangup("err")),)),
    )
    r = Run(f)
    r.start()
    r.send(ev.OpFailed(r.pending(ev.Say).cid, "TTS down"))
    assert r.said() == ["Hi", "fallback"]
    assert any("TTS down" in e.message for e in r.errors())


def test_step_budget_stops_a_loop_without_waits() -> None:
    f = flow(
        state("a", setv("n", binop("+", var("n"), lit(1))), goto("b")),
        state("b", goto("a")),
        variables=(ir.VarDecl(name="n", default=lit(0), span=sp()),),
    )
    r = Run(f, max_steps=200)
    r.start()
    assert any("budget" in e.message for e in r.errors())
    assert r.ended() is not None and r.ended().outcome == "error"  # type: ignore[union-attr]
    assert 0 < r.state.variables()["n"] <= 200


def test_if_switch_set_and_expressions() -> None:
    f = flow(
        state(
            "main",
            setv("n", binop("*", lit(6), lit(7))),
            ir.IfStep(
                branches=(
                    ir.IfBranch(
                        cond=binop(">", var("n"), lit(100)), steps=(say("big"),), span=sp()
                    ),
                ),
                else_steps=(say("n is {{ n }}"),),
                span=sp(),
            ),
            ir.SwitchStep(
                subject=fn("str", var("n")),
                cases=(
                    ir.SwitchCase(values=(lit("41"),), steps=(say("41"),), span=sp()),
                    ir.SwitchCase(values=(lit("42"), lit("43")), steps=(say("answer"),), span=sp()),
                ),
                default_steps=(say("other"),),
                span=sp(),
            ),
            hangup(),
        ),
        variables=(ir.VarDecl(name="n", span=sp()),),
    )
    r = Run(f)
    r.start()
    r.done(ev.Say)
    r.done(ev.Say)
    assert r.said() == ["n is 42", "answer"]


def test_anytime_command_during_gather() -> None:
    f = menu_flow()
    cmd = ir.Command(name="operator", keys=("0",), handler=handler(goto("operator")), span=sp())
    main = f.states["main"].model_copy(update={"commands": (cmd,)})
    f = f.model_copy(
        update={
            "states": {
                **f.states,
                "main": main,
                "operator": state("operator", say("Operator."), hangup()),
            }
        }
    )
    r = Run(f)
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    r.press("0")
    assert r.states()[-1] == "operator"


def test_digits_capture_with_terminator_and_interdigit_timeout() -> None:
    g = gather(
        var="acct",
        prompt="Enter your account number then hash.",
        terminator="#",
        capture=ir.Capture(type="digits", min_length=4, max_length=8),
        on={
            "match": (handler(goto("ok")),),
            "nomatch": (handler(say("bad"), retry()),),
            "noinput": (handler(hangup()),),
            "exhausted": (handler(hangup()),),
        },
    )
    f = flow(
        state("main", g),
        state("ok", say("Account {{ acct }}."), hangup()),
        variables=(ir.VarDecl(name="acct", span=sp()),),
    )
    r = Run(f)
    r.start()
    r.done(ev.Say)
    r.press("12")
    r.press("#")  # too short
    assert r.said()[-1] == "bad"
    r.done(ev.Say)
    r.done(ev.Say)
    r.press("123456")
    assert r.pending(ev.StartTimer).ms == 2000  # interdigit
    r.fire()
    assert r.said()[-1] == "Account 123456."


def test_speech_input_matches_phrases() -> None:
    r = Run(menu_flow(input="both"), speech=True)
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    listen = r.pending(ev.Listen)
    assert "sales" in listen.phrases
    r.send(ev.OpDone(listen.cid, "Sales, please!"))
    assert r.states()[-1] == "sales"


def test_both_without_speech_behaves_like_dtmf() -> None:
    r = Run(menu_flow(input="both"), speech=False)
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    assert not any(isinstance(c, ev.Listen) for c in r.log)
    r.press("2")
    assert r.states()[-1] == "support"


def test_subflow_call_with_args_and_returns() -> None:
    sub = ir.Subflow(
        name="verify",
        params=(ir.Param(name="who", span=sp()),),
        returns=(ir.Param(name="ok", span=sp()),),
        initial="s",
        states={
            "s": state(
                "s",
                say("Verifying {{ who }}."),
                ir.ReturnStep(values=(("ok", binop("==", var("who"), lit("ana"))),), span=sp()),
            )
        },
        span=sp(),
    )
    call = ir.CallStep(
        subflow="verify",
        args=(("who", var("name")),),
        returns=(("ok", "verified"),),
        on={"returned": (handler(cont()),), "error": (handler(hangup("err")),)},
        span=sp(),
    )
    f = flow(
        state("main", call, say("verified={{ verified }}"), hangup()),
        subflows={"verify": sub},
        variables=(
            ir.VarDecl(name="name", default=lit("ana"), span=sp()),
            ir.VarDecl(name="verified", span=sp()),
        ),
    )
    r = Run(f)
    r.start()
    assert r.states() == ["main", "s"]
    r.done(ev.Say)
    assert r.said() == ["Verifying ana.", "verified=True"]


def test_http_step_outcomes_into_variables() -> None:
    http = ir.HttpStep(
        method="GET",
        url=T("https://api.example/acct/{{ acct }}"),
        timeout_ms=2000,
        result_var="res",
        status_var="code",
        on={
            "ok": (handler(goto("ok")),),
            "error": (handler(goto("down")),),
            "timeout": (handler(goto("down")),),
        },
        span=sp(),
    )
    f = flow(
        state("main", http),
        state("ok", say("Balance {{ res.balance }}"), hangup()),
        state("down", say("Service unavailable ({{ code }})."), hangup()),
        variables=(
            ir.VarDecl(name="acct", default=lit("77"), span=sp()),
            ir.VarDecl(name="res", span=sp()),
            ir.VarDecl(name="code", span=sp()),
        ),
    )
    r = Run(f)
    r.start()
    req = r.pending(ev.Http)
    assert req.url == "https://api.example/acct/77" and req.timeout_ms == 2000
    r.done(ev.Http, {"outcome": "ok", "status": 200, "data": {"balance": 12}})
    assert r.said() == ["Balance 12"]

    r = Run(f)
    r.start()
    r.done(ev.Http, {"outcome": "error", "status": 503, "data": None})
    assert r.said() == ["Service unavailable (503)."]


def test_pause_transfer_meta_and_webhook_keys() -> None:
    f = flow(
        state(
            "main",
            ir.MetaStep(key="tier", value=lit("gold"), webhook=True, span=sp()),
            ir.PauseStep(duration_ms=1500, span=sp()),
            ir.TransferStep(endpoint=T("PJSIP/agent"), span=sp()),
        )
    )
    r = Run(f)
    r.start()
    assert ev.SetMeta("tier", "gold", True) in r.log
    assert r.state.webhook_keys == {"tier"} and r.state.metadata["tier"] == "gold"
    assert r.pending(ev.StartTimer).ms == 1500
    r.fire()
    assert r.pending(ev.Transfer).endpoint == "PJSIP/agent"
    r.done(ev.Transfer)
    assert r.ended() == ev.End("transferred", "PJSIP/agent")


def test_step_is_pure_and_deterministic() -> None:
    f = menu_flow()
    r = Run(f)
    r.start()
    r.done(ev.Answer)

    def snapshot() -> object:
        st = r.state
        frames = [(dict(f.variables), f.stack, dict(f.counts), dict(f.attempts)) for f in st.frames]
        return (frames, dict(st.metadata), st.wait, st.seq, st.status, st.typeahead)

    before = snapshot()
    e = ev.OpDone(r.pending(ev.Say).cid)
    s1, c1 = step(f, r.state, e)
    s2, c2 = step(f, r.state, e)
    assert c1 == c2 and s1 == s2
    assert snapshot() == before  # the input state was not mutated


def test_stale_op_results_are_ignored() -> None:
    r = Run(menu_flow())
    r.start()
    assert r.send(ev.OpDone(999)) == []
    assert r.send(ev.TimerFired(998)) == []


def test_barged_in_prompt_needs_no_answer_from_the_driver() -> None:
    # the driver cancels a stopped op and never reports it: the flow must not wait for it
    r = Run(menu_flow())
    r.start()
    r.done(ev.Answer)
    welcome = r.pending(ev.Say)
    out = r.press("2")
    assert ev.StopOp(welcome.cid) in out
    assert r.states()[-1] == "support"
    assert r.said()[-1] == "Support here."
    r.send(ev.OpDone(welcome.cid))  # a late answer for the stopped op is ignored
    assert r.states()[-1] == "support"
    r.done(ev.Say)
    assert r.ended() == ev.End("completed", "normal")

"""One test per rule over the checker model: a flow that triggers it and one that does not."""

from __future__ import annotations

from voxflow.check.checker import rule_context
from voxflow.check.model import (
    FLOW_OUTCOMES,
    SUCCESS_OUTCOMES,
    MFlow,
    MHandler,
    MScope,
    MState,
    MStep,
    MSubflow,
    MVar,
)
from voxflow.check.rules import run_rules
from voxflow.source import Span

F = "t.flow"


def sp(line: int, col: int = 5, width: int = 4) -> Span:
    return Span(line, col, line, col + width)


def goto(target: str, line: int) -> MStep:
    return MStep("goto", sp(line), F, target=target, target_span=sp(line, 10, len(target)))


def hangup(line: int) -> MStep:
    return MStep("hangup", sp(line), F)


def h(outcome: str, steps: list[MStep], line: int, count: int = 1) -> MHandler:
    return MHandler(outcome, steps, sp(line), F, count)


def gather(line: int, handlers: list[MHandler], **kw: object) -> MStep:
    step = MStep(
        "gather",
        sp(line),
        F,
        outcomes=FLOW_OUTCOMES["gather"],
        success=SUCCESS_OUTCOMES["gather"],
        handlers=handlers,
    )
    for k, v in kw.items():
        setattr(step, k, v)
    return step


def state(name: str, line: int, steps: list[MStep], scope: str | None = None) -> MState:
    return MState(name, steps, sp(line, 7, len(name)), F, scope=scope)


def flow(states: list[MState], **kw: object) -> MFlow:
    body = MSubflow("f", sp(1), F, states=states, initial=states[0].name if states else None)
    for k, v in kw.items():
        setattr(body, k, v)
    return MFlow("f", sp(1), F, body)


def codes(fl: MFlow) -> list[tuple[str, int, int, str]]:
    return sorted(
        (d.code, d.span.line, d.span.col, d.message) for d in run_rules(fl, rule_context())
    )


def only(fl: MFlow, code: str) -> list[tuple[str, int, int, str]]:
    return [c for c in codes(fl) if c[0] == code]


def test_clean_flow_has_no_diagnostics() -> None:
    fl = flow(
        [
            state("start", 1, [MStep("answer", sp(2), F), goto("menu", 3)]),
            state(
                "menu",
                4,
                [
                    gather(
                        5,
                        [
                            h("noinput", [MStep("retry", sp(6), F)], 6),
                            h("nomatch", [MStep("retry", sp(7), F)], 7),
                            h("exhausted", [hangup(8)], 8),
                        ],
                    ),
                    hangup(9),
                ],
            ),
        ]
    )
    assert codes(fl) == []


def test_vf101_unknown_state_with_hint() -> None:
    fl = flow([state("start", 1, [goto("mneu", 2)]), state("menu", 3, [hangup(4)])])
    diags = [d for d in run_rules(fl, rule_context()) if d.code == "VF101"]
    assert [(d.span.line, d.span.col, d.message) for d in diags] == [
        (2, 10, "unknown state 'mneu'")
    ]
    assert diags[0].hint == "did you mean 'menu'?"


def test_vf102_duplicate_state() -> None:
    fl = flow([state("a", 1, [hangup(2)]), state("a", 3, [hangup(4)])])
    assert only(fl, "VF102") == [("VF102", 3, 7, "duplicate state 'a'")]


def test_vf103_duplicate_variable() -> None:
    fl = flow(
        [state("a", 3, [hangup(4)])],
        variables=[MVar("x", sp(1), F, True), MVar("x", sp(2), F, True)],
    )
    assert only(fl, "VF103") == [("VF103", 2, 5, "duplicate variable 'x'")]


def test_vf104_duplicate_handler_and_key() -> None:
    g = gather(
        2,
        [h("noinput", [hangup(3)], 3), h("noinput", [hangup(4)], 4), h("nomatch", [hangup(5)], 5)],
        choice_keys=[("1", sp(6)), ("1", sp(7))],
    )
    fl = flow([state("a", 1, [g])])
    assert [c[1] for c in only(fl, "VF104")] == [4, 7]


def test_vf105_vf106_subflows() -> None:
    sub = MSubflow(
        "pay",
        sp(10),
        F,
        params=[MVar("amount", sp(10), F)],
        returns=[MVar("ok", sp(10), F)],
        states=[state("s", 11, [hangup(12)])],
        initial="s",
    )
    call_bad = MStep("call", sp(2), F, subflow="pya", subflow_span=sp(2, 10, 3))
    call_args = MStep(
        "call",
        sp(3),
        F,
        subflow="pay",
        subflow_span=sp(3, 10, 3),
        args=[("amt", sp(3, 14, 3))],
        returns=[("nope", sp(3, 20, 4))],
    )
    fl = flow([state("a", 1, [call_bad, call_args, hangup(4)])])
    fl.subflows = [sub]
    assert only(fl, "VF105") == [("VF105", 2, 10, "unknown subflow 'pya'")]
    assert [c[3] for c in only(fl, "VF106")] == [
        "call of 'pay' is missing argument 'amount'",
        "subflow 'pay' has no parameter 'amt'",
        "subflow 'pay' returns no value 'nope'",
    ]


def test_vf109_unknown_outcome() -> None:
    http = MStep(
        "http",
        sp(2),
        F,
        outcomes=FLOW_OUTCOMES["http"],
        success=SUCCESS_OUTCOMES["http"],
        handlers=[
            h("busy", [hangup(3)], 3),
            h("error", [hangup(4)], 4),
            h("timeout", [hangup(5)], 5),
        ],
    )
    fl = flow([state("a", 1, [http, hangup(6)])])
    assert only(fl, "VF109") == [("VF109", 3, 5, "http never ends with outcome 'busy'")]


def test_vf201_unreachable_state() -> None:
    fl = flow([state("a", 1, [hangup(2)]), state("b", 3, [hangup(4)])])
    assert only(fl, "VF201") == [("VF201", 3, 7, "state 'b' is unreachable")]


def test_vf202_falls_off_end() -> None:
    cond = MStep("if", sp(2), F, blocks=[[hangup(3)]], exhaustive=False)
    fl = flow([state("a", 1, [cond])])
    assert only(fl, "VF202") == [("VF202", 2, 5, "state 'a' can end without a transition")]
    cond.blocks.append([hangup(4)])
    cond.exhaustive = True
    assert only(fl, "VF202") == []


def test_vf203_unhandled_outcome_and_scope_inheritance() -> None:
    g = gather(2, [h("noinput", [hangup(3)], 3)])
    fl = flow([state("a", 1, [g, hangup(4)], scope="main")], scopes=[MScope("main", [], sp(9), F)])
    assert only(fl, "VF203") == [("VF203", 2, 5, "gather does not handle outcome 'nomatch'")]
    fl.body.scopes[0].handlers.append(h("nomatch", [hangup(9)], 9))
    assert only(fl, "VF203") == []


def test_vf203_exhausted_required_when_retrying() -> None:
    g = gather(2, [h("default", [MStep("retry", sp(3), F)], 3)])
    fl = flow([state("a", 1, [g, hangup(4)])])
    assert only(fl, "VF203") == []
    g.handlers = [h("noinput", [MStep("retry", sp(3), F)], 3), h("nomatch", [hangup(5)], 5)]
    assert [c[3] for c in only(fl, "VF203")] == [
        "gather retries can run out but outcome 'exhausted' is not handled"
    ]


def test_vf204_unbounded_input_loop() -> None:
    g = gather(2, [h("noinput", [goto("a", 3)], 3), h("nomatch", [hangup(4)], 4)])
    fl = flow([state("a", 1, [g, hangup(5)])])
    assert [c[:3] for c in only(fl, "VF204")] == [("VF204", 3, 10)]
    g.handlers[0] = h(
        "noinput",
        [MStep("set", sp(3), F, assigns=["n"]), MStep("if", sp(3), F, blocks=[[goto("a", 3)]])],
        3,
    )
    assert only(fl, "VF204") == []


def test_vf205_unreachable_step() -> None:
    fl = flow([state("a", 1, [hangup(2), MStep("say", sp(3), F)])])
    assert [c[:3] for c in only(fl, "VF205")] == [("VF205", 3, 5)]


def test_vf301_maybe_unset_and_vf305_undefined() -> None:
    setx = MStep("set", sp(3), F, assigns=["x"])
    cond = MStep("if", sp(2), F, blocks=[[setx]], exhaustive=False)
    use = MStep("say", sp(4), F, templates=[("{{ x }} {{ y }} {{ call.caller }}", sp(4, 9, 20))])
    fl = flow([state("a", 1, [cond, use, hangup(5)])])
    assert only(fl, "VF301") == [("VF301", 4, 9, "'x' may be unset here")]
    assert only(fl, "VF305") == [("VF305", 4, 9, "undefined variable 'y'")]
    cond.blocks.append([MStep("set", sp(6), F, assigns=["x"])])
    cond.exhaustive = True
    assert only(fl, "VF301") == []


def test_vf301_gather_var_only_set_on_success() -> None:
    g = gather(
        2,
        [h("noinput", [MStep("continue", sp(3), F)], 3), h("nomatch", [hangup(4)], 4)],
        outcome_assigns={"match": ["pin"]},
    )
    use = MStep("log", sp(5), F, reads=[("pin", sp(5, 9, 3))])
    fl = flow([state("a", 1, [g, use, hangup(6)])])
    assert only(fl, "VF301") == [("VF301", 5, 9, "'pin' may be unset here")]
    g.handlers[0] = h("noinput", [hangup(3)], 3)
    assert only(fl, "VF301") == []


def test_vf302_unused_variable() -> None:
    fl = flow(
        [state("a", 3, [hangup(4)])],
        variables=[MVar("x", sp(1), F, True), MVar("_keep", sp(2), F, True)],
    )
    assert only(fl, "VF302") == [("VF302", 1, 5, "variable 'x' is never used")]


def test_vf306_unused_subflow_and_vf307_template() -> None:
    fl = flow(
        [state("a", 1, [MStep("say", sp(2), F, templates=[("{{ oops", sp(2, 9, 8))]), hangup(3)])]
    )
    fl.subflows = [MSubflow("helper", sp(10), F, states=[state("s", 11, [hangup(12)])])]
    assert only(fl, "VF306") == [("VF306", 10, 5, "subflow 'helper' is never called")]
    assert [c[:3] for c in only(fl, "VF307")] == [("VF307", 2, 9)]


def test_vf406_vf407_choice_values() -> None:
    g = gather(
        2,
        [h("default", [hangup(3)], 3)],
        choice_keys=[("9", sp(9)), ("x", sp(10))],
        patterns=[("(unclosed", sp(11)), ("ok+", sp(12))],
    )
    fl = flow([state("a", 1, [g, hangup(13)])])
    got = {c[0]: c[1] for c in codes(fl) if c[0].startswith("VF4")}
    assert got == {"VF406": 10, "VF407": 11}

"""The step kinds of the language: one row per IR step ``op``.

Every stage is checked against this table (``tests/runtime/test_step_kinds.py``): each row's
``example`` must parse and lower to an IR step with that ``op`` (grammar, AST, lowering, IR
models), the step function must have an executor for the ``op``, and every call operation the
step function emits must have a handler in the driver (``voxflow.runtime.driver.OP_HANDLERS``).
Adding a step kind starts here: the test then names every stage still missing it.

``example`` is the step as written inside a state of the test's flow, which declares ``var v:
string = "x"``, ``var r: map``, a state ``other`` and a subflow ``ask(q: string) -> (ok: bool)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STEP_KINDS", "StepKind"]


@dataclass(frozen=True, slots=True)
class StepKind:
    """One kind of step: its IR ``op``, the keywords that write it, an example."""

    op: str
    keywords: tuple[str, ...]
    example: str


STEP_KINDS: tuple[StepKind, ...] = (
    StepKind("answer", ("answer",), "answer"),
    StepKind("say", ("say",), 'say "Hello."'),
    StepKind("play", ("play",), 'play "vm-intro"'),
    StepKind("pause", ("pause",), "pause 500ms"),
    StepKind(
        "gather",
        ("gather", "menu"),
        'menu "Press 1.":\n    1 -> other\n    on noinput, nomatch -> retry\n'
        "    on exhausted -> other",
    ),
    StepKind("set", ("set",), 'set v = "x"'),
    StepKind("if", ("if", "elif", "else"), 'if v == "x":\n    goto other'),
    StepKind("switch", ("match",), 'match v:\n    case "x" -> other'),
    StepKind("record_start", ("record_start",), 'record_start "rec-{{ call.id }}"'),
    StepKind("record_stop", ("record_stop",), 'record_stop "rec-{{ call.id }}"'),
    StepKind(
        "record",
        ("record",),
        'record "m-{{ call.id }}" into v:\n    on noinput -> other\n    on exhausted -> other',
    ),
    StepKind(
        "dial",
        ("dial", "bridge"),
        'dial "PJSIP/sales":\n    on busy, noanswer, failed -> other',
    ),
    StepKind("transfer", ("transfer",), 'transfer "PJSIP/desk"'),
    StepKind("queue", ("queue",), 'queue "support":\n    on timeout, failed -> other'),
    StepKind("hold", ("hold",), "hold"),
    StepKind("unhold", ("unhold",), "unhold"),
    StepKind("send_dtmf", ("send_dtmf",), 'send_dtmf "123"'),
    StepKind(
        "http",
        ("http",),
        'http get "https://api.example.test/x" into r:\n    on error, timeout -> other',
    ),
    StepKind(
        "agent",
        ("agent",),
        'agent "You help.":\n    tool done() "Finish" -> other\n'
        "    on max_turns, timeout, noinput, exhausted, error -> other",
    ),
    StepKind("call", ("call",), 'call ask(q = "Sure?") returns (ok as done)'),
    StepKind("log", ("log",), 'log "here"'),
    StepKind("meta", ("meta",), 'meta k = "x"'),
    StepKind("goto", ("goto",), "goto other"),
    StepKind(
        "retry",
        ("retry",),
        'menu "Press 1.":\n    1 -> other\n    on noinput, nomatch:\n        retry\n'
        "    on exhausted -> other",
    ),
    StepKind(
        "continue",
        ("continue",),
        'menu "Press 1.":\n    1 -> other\n    on noinput, nomatch:\n        continue',
    ),
    StepKind("hangup", ("hangup",), 'hangup "done"'),
    StepKind("return", ("return",), "return ok = true"),
)
"""Every step kind, in the order the language reference lists them."""

"""The step kinds of the language: one row per IR step ``op``.

Every stage is checked against this table (``tests/runtime/test_step_kinds.py``): each row's
``example`` must parse and lower to an IR step with that ``op`` (grammar, AST, lowering, IR
models), the step function must have an executor for the ``op``, and every call operation the
step function emits must have a handler in the driver (``voxflow.runtime.driver.OP_HANDLERS``).
Adding a step kind starts here: the test then names every stage still missing it.

``hangup_safe`` says whether the step runs in an ``on hangup`` handler (the step function reads
``HANGUP_SAFE``; the test runs each kind in one and sees which executors ran).

``example`` is the step as written inside a state of the test's flow, which declares ``var v:
string = "x"``, ``var r: map``, a state ``other`` and a subflow ``ask(q: string) -> (ok: bool)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HANGUP_SAFE", "STEP_KINDS", "StepKind"]


@dataclass(frozen=True, slots=True)
class StepKind:
    """One kind of step: its IR ``op``, the keywords that write it, an example, and whether it
    runs inside an ``on hangup`` handler (``hangup_safe``: the call is gone, so only steps that
    need no call run there; the step function passes over the others)."""

    op: str
    keywords: tuple[str, ...]
    example: str
    hangup_safe: bool = False


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
    StepKind("set", ("set",), 'set v = "x"', hangup_safe=True),
    StepKind("if", ("if", "elif", "else"), 'if v == "x":\n    goto other', hangup_safe=True),
    StepKind("switch", ("match",), 'match v:\n    case "x" -> other', hangup_safe=True),
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
        hangup_safe=True,
    ),
    StepKind(
        "agent",
        ("agent",),
        'agent "You help.":\n    tool done() "Finish" -> other\n'
        "    on max_turns, timeout, noinput, exhausted, error -> other",
    ),
    StepKind("call", ("call",), 'call ask(q = "Sure?") returns (ok as done)'),
    StepKind("log", ("log",), 'log "here"', hangup_safe=True),
    StepKind("meta", ("meta",), 'meta k = "x"', hangup_safe=True),
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

HANGUP_SAFE: frozenset[str] = frozenset(k.op for k in STEP_KINDS if k.hangup_safe)
"""The ops an ``on hangup`` handler runs (the table's ``hangup_safe`` column)."""

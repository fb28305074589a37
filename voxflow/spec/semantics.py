"""What handlers mean: outcomes per step, handler resolution, implied transitions.

The one definition shared by lowering (:mod:`voxflow.ir.lower`) and the checker
(:mod:`voxflow.check.adapt`), so that what the checker proves is what the interpreter runs:

* :func:`step_outcomes` - every outcome an input step can end with.
* :func:`resolve_outcome` - which handlers run for an outcome: handlers for that outcome (step,
  then enclosing scopes innermost first, then subflow and flow; an inner handler shadows an
  outer one with the same count), else ``on default`` handlers found the same way, else (for
  outcomes other than success and noinput/nomatch) the state's ``on error`` handlers, else the
  implied handler.
* :func:`implied_transition` - the transition appended to a handler body that can fall off its
  end (and the body of an implied handler): ``retry`` after noinput/nomatch and anytime
  commands, ``hangup`` after error/exhausted, ``continue`` otherwise.
* :data:`REQUIRED_OUTCOMES` - outcomes the checker wants handled explicitly (VF203).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Literal, TypeVar

from voxflow.syntax import ast

__all__ = [
    "COMMAND_EVENT",
    "EXIT_WITH_KEY",
    "OP_ALIASES",
    "OUTCOMES",
    "QUEUE_EXIT_KEYS",
    "QUEUE_STATUS",
    "REQUIRED_OUTCOMES",
    "RETRYING",
    "SUCCESS",
    "TRANSFER_OUTCOMES",
    "WAITING_OPS",
    "How",
    "ast_ends_in_transition",
    "implied_transition",
    "iter_handlers",
    "outcome_op",
    "queue_outcome",
    "resolve_outcome",
    "select_handlers",
    "step_outcomes",
    "tail_ends_in_transition",
    "transfer_routable",
]

T = TypeVar("T")
How = Literal["handler", "default", "error", "implied"]
"""How an outcome was resolved: its own handlers, ``on default``, ``on error``, or implied."""

OUTCOMES: dict[str, tuple[str, ...]] = {
    "gather": ("match", "nomatch", "noinput", "exhausted", "error"),
    "dial": ("answered", "busy", "noanswer", "failed"),
    "queue": ("answered", "timeout", "failed"),
    "http": ("ok", "error", "timeout"),
    "record": ("done", "noinput", "exhausted", "error"),
    "agent": ("max_turns", "timeout", "noinput", "exhausted", "error"),
    "call": ("returned", "error"),
}
"""Fixed outcomes per input op. A gather with choices produces ``choice:<value>`` instead of
``match``; an agent also produces ``tool:<name>`` per tool."""

QUEUE_STATUS: dict[str, str] = {
    "CONTINUE": "answered",
    "TIMEOUT": "timeout",
    "FULL": "failed",
    "JOINEMPTY": "failed",
    "LEAVEEMPTY": "failed",
    "WITHDRAW": "failed",  # AMI QueueWithdrawCaller
    "UNKNOWN": "failed",  # no such queue (app_queue.c: join_queue fails)
}
"""Asterisk's ``QUEUESTATUS`` when ``Queue()`` returns the call to the app (the shipped
``[voxflow-queue]`` context runs ``Queue()`` with the ``c`` option, so ``CONTINUE`` = an agent
answered and hung up) -> the queue step's outcome. The one table the run time, ``voxflow test``
(``mocks.queue[].status``) and the checker agree on; any other status is ``failed``. These are
the values app_queue.c (Asterisk 21+) sets: ``JOINUNAVAIL``/``LEAVEUNAVAIL`` are documented
but no code path sets them, so a test may not mock them (docs/sandbox.md)."""

EXIT_WITH_KEY = "EXITWITHKEY"
"""The status the shipped ``[voxflow-queue-exit]`` context sends back when the caller left
``Queue()`` with a key (app_queue's ``valid_exit``: the queue's queues.conf ``context`` has an
extension for the digit; ``QUEUESTATUS`` is not set then). A queue step's exit keys take it."""

QUEUE_EXIT_KEYS = "0123456789"
"""The keys a queue step may list: ``[voxflow-queue-exit]`` matches ``_X`` (one digit 0-9)."""

TRANSFER_OUTCOMES: tuple[str, ...] = ("transferred", "failed")
"""How a ``transfer`` can end: the call left the flow (redirected, or the dialplan's ``Dial()``
answered), or Asterisk sent it back (unroutable target: the ``i`` extension; the ``Dial()``
failed: busy, no answer...); ``failed`` runs the state's ``on error`` handler."""


_ROUTED_NUMBER = re.compile(r"^\+?[0-9]{2,}$")


def transfer_routable(target: str) -> bool:
    """Whether the shipped ``[voxflow-transfer]`` has an extension for ``target``: a
    ``TECH/resource`` (extension ``endpoint``) or a number (``_X.``, ``_+X.``); anything else
    hits its ``i`` extension and the transfer comes back failed (``INVALID``)."""
    return "/" in target or _ROUTED_NUMBER.match(target) is not None


def queue_outcome(status: str) -> str:
    """The queue step's outcome for Asterisk's ``QUEUESTATUS`` (see :data:`QUEUE_STATUS`)."""
    return QUEUE_STATUS.get(status.strip().upper(), "failed")


SUCCESS = frozenset({"match", "answered", "ok", "done", "returned"})
RETRYING = frozenset({"noinput", "nomatch"})
COMMAND_EVENT = "command"
"""The event name of anytime commands (their bodies imply ``retry``)."""

OP_ALIASES = {"menu": "gather", "bridge": "dial"}
"""Step keywords that lower to another input op."""

WAITING_OPS = frozenset({"gather", "menu", "agent", "record"})
"""Input steps during which anytime commands listen."""

REQUIRED_OUTCOMES: dict[str, tuple[str, ...]] = {
    "gather": ("nomatch", "noinput"),
    "dial": ("busy", "noanswer", "failed"),
    "queue": ("timeout", "failed"),  # Queue() returns the call with QUEUESTATUS (QUEUE_STATUS)
    "http": ("error", "timeout"),
    "record": ("noinput",),
    "agent": ("max_turns", "timeout", "noinput"),
    "call": (),
}
"""Failure outcomes that need a handler for that outcome or ``on default`` (an ``on error``
handler does not count). ``exhausted`` joins them when a retry can run out."""

_TRANSITIONS = (ast.GotoStep, ast.RetryStep, ast.ContinueStep, ast.ReturnStep)
_TRANSITION_KINDS = frozenset({"hangup", "transfer"})


def outcome_op(kind: str) -> str:
    """The IR input op of a step keyword (``menu`` -> ``gather``), or ``kind`` itself."""
    return OP_ALIASES.get(kind, kind)


def step_outcomes(kind: str, choices: Iterable[str] = (), tools: Iterable[str] = ()) -> list[str]:
    """Every outcome of an input step: the fixed ones (``match`` replaced by one
    ``choice:<name>`` per choice), then ``tool:<name>`` per agent tool."""
    extra = [f"choice:{c}" for c in choices]
    fixed = OUTCOMES.get(outcome_op(kind), ())
    out = [o for o in fixed if not (extra and o == "match")]
    out += extra
    out += [f"tool:{t}" for t in tools]
    return out


def implied_transition(event: str) -> Literal["retry", "hangup", "continue"]:
    """The transition implied at the end of a handler body for ``event``."""
    if event in RETRYING or event == COMMAND_EVENT:
        return "retry"
    if event in ("error", "exhausted"):
        return "hangup"
    return "continue"


def select_handlers(
    levels: Iterable[Iterable[tuple[Collection[str], int, T]]], event: str
) -> list[T]:
    """Handlers for ``event`` over ``levels`` (innermost first) of ``(events, count, item)``:
    each count once, an inner handler shadowing an outer one with the same count."""
    found: list[T] = []
    counts: set[int] = set()
    for level in levels:
        for events, count, item in level:
            if event in events and count not in counts:
                counts.add(count)
                found.append(item)
    return found


def resolve_outcome(
    levels: Sequence[Sequence[tuple[Collection[str], int, T]]],
    outcome: str,
    errors: Sequence[T] = (),
) -> tuple[list[T], How]:
    """The handlers that run for ``outcome`` and how they were found (``[]`` when implied)."""
    found = select_handlers(levels, outcome)
    if found:
        return found, "handler"
    found = select_handlers(levels, "default")
    if found:
        return found, "default"
    if outcome not in SUCCESS and outcome not in RETRYING and errors:
        return list(errors), "error"
    return [], "implied"


def ast_ends_in_transition(steps: Sequence[ast.Step]) -> bool:
    """True when the last step of a block always transitions (so nothing is implied after it)."""
    if not steps:
        return False
    last = steps[-1]
    if isinstance(last, _TRANSITIONS):
        return True
    if isinstance(last, ast.SimpleStep):
        return last.kind in _TRANSITION_KINDS
    if isinstance(last, ast.IfStep):
        return (
            bool(last.else_steps)
            and all(ast_ends_in_transition(b.steps) for b in last.branches)
            and ast_ends_in_transition(last.else_steps or ())
        )
    if isinstance(last, ast.MatchStep):
        return (
            last.default is not None
            and tail_ends_in_transition(last.default)
            and all(tail_ends_in_transition(c.tail) for c in last.cases)
        )
    return False


def tail_ends_in_transition(tail: ast.Arrow | ast.Body) -> bool:
    """:func:`ast_ends_in_transition` for a handler tail (an arrow always transitions)."""
    return isinstance(tail, ast.Arrow) or ast_ends_in_transition(tail.steps)


def _tail_handlers(tail: ast.Arrow | ast.Body | None) -> Iterator[ast.Handler]:
    if isinstance(tail, ast.Body):
        yield from _step_handlers(tail.steps)


def _step_handlers(steps: Iterable[ast.Step]) -> Iterator[ast.Handler]:
    for s in steps:
        if isinstance(s, ast.SimpleStep | ast.HttpStep | ast.CallStep):
            for h in s.handlers:
                yield h
                yield from _tail_handlers(h.tail)
        if isinstance(s, ast.SimpleStep):
            for c in s.choices:
                yield from _tail_handlers(c.tail)
            for t in s.tools:
                yield from _tail_handlers(t.tail)
        elif isinstance(s, ast.IfStep):
            for b in s.branches:
                yield from _step_handlers(b.steps)
            yield from _step_handlers(s.else_steps or ())
        elif isinstance(s, ast.MatchStep):
            for case in s.cases:
                yield from _tail_handlers(case.tail)
            yield from _tail_handlers(s.default)


def _scope_handlers(
    handlers: Iterable[ast.Handler],
    anytimes: Iterable[ast.Anytime],
    states: Iterable[ast.State],
    scopes: Iterable[ast.Scope],
) -> Iterator[ast.Handler]:
    for h in handlers:
        yield h
        yield from _tail_handlers(h.tail)
    for a in anytimes:
        yield from _tail_handlers(a.tail)
    for st in states:
        yield from _step_handlers(st.steps)
    for sc in scopes:
        yield from _scope_handlers(sc.handlers, sc.anytimes, sc.states, sc.scopes)


def iter_handlers(program: ast.Program) -> Iterator[ast.Handler]:
    """Every ``on ...`` handler written anywhere in the program (each once)."""
    for m in program.modules or [program.root]:
        yield from _scope_handlers(m.handlers, m.anytimes, m.states, m.scopes)
        for sf in m.subflows:
            yield from _scope_handlers(sf.handlers, sf.anytimes, sf.states, sf.scopes)

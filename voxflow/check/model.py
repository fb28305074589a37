"""The checker's view of a flow: states, steps, handlers and scopes, with spans.

The rules in :mod:`voxflow.check.rules` run over this small model; :mod:`voxflow.check.adapt`
builds it from the parser's AST. Keeping the two apart means a grammar change touches only the
adapter. Names, outcomes and semantics follow :mod:`voxflow.ir.models`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxflow.source import Span
from voxflow.spec.semantics import OP_ALIASES, OUTCOMES, SUCCESS, step_outcomes

__all__ = [
    "FLOW_OUTCOMES",
    "INPUT_OPS",
    "SUCCESS_OUTCOMES",
    "TRANSITION_OPS",
    "MFlow",
    "MHandler",
    "MScope",
    "MState",
    "MStep",
    "MSubflow",
    "MValue",
    "MVar",
]

TRANSITION_OPS = frozenset({"goto", "retry", "continue", "hangup", "return", "transfer"})
"""Steps that end a block: nothing after them runs."""

FLOW_OUTCOMES: dict[str, tuple[str, ...]] = {
    kind: tuple(step_outcomes(kind)) for kind in (*OUTCOMES, *OP_ALIASES)
}
"""Every outcome each input step can end with (the IR's :data:`~voxflow.ir.models.OUTCOMES`,
``menu``/``bridge`` included). Gathers with choices replace ``match`` by ``choice:<n>``,
agents add ``tool:<name>``; which of them need explicit handling is
:data:`voxflow.spec.semantics.REQUIRED_OUTCOMES`."""

SUCCESS_OUTCOMES: dict[str, tuple[str, ...]] = {
    kind: tuple(o for o in outs if o in SUCCESS) for kind, outs in FLOW_OUTCOMES.items()
}
"""The success outcomes of each input step (they store the step's variable)."""

INPUT_OPS = frozenset(FLOW_OUTCOMES)


@dataclass
class MValue:
    """A literal setting value written in the source (timeouts, retries, keys...)."""

    name: str
    value: Any
    span: Span
    unit: str = ""  # "ms" for durations (already converted), "" otherwise


@dataclass
class MHandler:
    """A handler body: an outcome handler (``outcome`` may be ``default``), a counted
    noinput/nomatch handler, an error/hangup handler, or an anytime command (``command``).
    A body that can fall off its end continues with
    :func:`voxflow.spec.semantics.implied_transition` of its outcome."""

    outcome: str
    steps: list[MStep]
    span: Span
    file: str
    count: int = 1


@dataclass
class MStep:
    """One step. ``reads`` holds every name read (expressions and templates), ``assigns`` the
    names set when the step completes, ``outcome_assigns`` names set only on some outcomes."""

    op: str
    span: Span
    file: str
    target: str | None = None
    target_span: Span | None = None
    reads: list[tuple[str, Span]] = field(default_factory=list)
    exprs: list[Any] = field(default_factory=list)
    templates: list[tuple[str, Span]] = field(default_factory=list)
    assigns: list[str] = field(default_factory=list)
    outcome_assigns: dict[str, list[str]] = field(default_factory=dict)
    blocks: list[list[MStep]] = field(default_factory=list)
    exhaustive: bool = False
    outcomes: tuple[str, ...] = ()
    success: tuple[str, ...] = ()
    handlers: list[MHandler] = field(default_factory=list)
    retries: MValue | None = None
    values: list[MValue] = field(default_factory=list)
    subflow: str | None = None
    subflow_span: Span | None = None
    args: list[tuple[str, Span]] = field(default_factory=list)
    returns: list[tuple[str, Span]] = field(default_factory=list)
    bound: list[tuple[str, Span]] = field(default_factory=list)  # call returns' variables
    choice_keys: list[tuple[str, Span]] = field(default_factory=list)
    patterns: list[tuple[str, Span]] = field(default_factory=list)
    phrases: list[tuple[str, Span]] = field(default_factory=list)  # spoken choice phrases
    repeated: list[tuple[str, Span]] = field(default_factory=list)
    # templates with names of their own (an agent action's parameters), which are not reads
    scoped_templates: list[tuple[str, Span, frozenset[str]]] = field(default_factory=list)
    # agent tool and action names, and per tool/action its argument names (VF110)
    tool_names: list[tuple[str, str, Span]] = field(default_factory=list)
    tool_args: list[tuple[str, list[tuple[str, Span]]]] = field(default_factory=list)
    # ("url", text, span) and ("header:<Name>", text, span) of HTTP requests (VF409)
    http_parts: list[tuple[str, str, Span]] = field(default_factory=list)
    # options written as expressions: (option, expression, type it must have)
    typed_options: list[tuple[str, Any, str]] = field(default_factory=list)
    # options that change nothing on Asterisk (spec.options.INERT_OPTIONS; VF212)
    inert: list[tuple[str, Span]] = field(default_factory=list)
    read_cache: list[tuple[str, Span]] | None = None  # filled by rules_vars.step_reads
    memo: dict[str, Any] = field(default_factory=dict)  # per-run caches of the rules


@dataclass
class MScope:
    """A group of states sharing handlers; ``parent`` is the enclosing scope's name."""

    name: str
    handlers: list[MHandler]
    span: Span
    file: str
    parent: str | None = None


@dataclass
class MState:
    """A named state; ``scope`` is the innermost enclosing scope's name."""

    name: str
    steps: list[MStep]
    span: Span
    file: str
    handlers: list[MHandler] = field(default_factory=list)
    scope: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)  # per-run caches of the rules


@dataclass
class MVar:
    """A declared variable or parameter; ``initialized`` when it has a default."""

    name: str
    span: Span
    file: str
    initialized: bool = False
    type: str = "any"


@dataclass
class MSubflow:
    """A subflow: its own states and variables, called with arguments."""

    name: str
    span: Span
    file: str
    params: list[MVar] = field(default_factory=list)
    returns: list[MVar] = field(default_factory=list)
    variables: list[MVar] = field(default_factory=list)
    states: list[MState] = field(default_factory=list)
    scopes: list[MScope] = field(default_factory=list)
    handlers: list[MHandler] = field(default_factory=list)
    initial: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)  # per-run caches of the rules


@dataclass
class MFlow:
    """A whole flow (with included files merged): the main body is an unnamed subflow."""

    name: str
    span: Span
    file: str
    body: MSubflow
    subflows: list[MSubflow] = field(default_factory=list)
    config: list[MValue] = field(default_factory=list)
    voice: list[MValue] = field(default_factory=list)
    roots: frozenset[str] = frozenset({"call"})
    has_header: bool = True
    repeated: list[tuple[str, Span]] = field(default_factory=list)
    extra_headers: list[Span] = field(default_factory=list)

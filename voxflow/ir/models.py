"""The voxflow IR: a compiled, checked call flow as frozen pydantic models.

This is the contract between the compiler (``voxflow.ir.lower``) and the interpreter
(``voxflow.runtime``). It is plain data: JSON round-trips through ``Flow.model_dump_json()`` /
``Flow.model_validate_json()`` and carries :data:`SCHEMA_VERSION`.
The models are defined in :mod:`voxflow.ir.expressions` (``Node``, ``Span``, expressions,
templates), :mod:`voxflow.ir.steps` (steps and their parts) and here (states, flows); import them
all from this module.

Execution semantics (what the interpreter must implement)
=========================================================

Flow and states
---------------
A call starts in ``Flow.initial`` with ``call.metadata`` pre-populated from ``Flow.metadata``
(route metadata) and the flow variables set to their ``default`` (a variable with no default is
*unset*). A :class:`State` runs its ``steps`` in order. Blocks nest (``if``, ``switch``, handler
bodies); when a nested block ends without a transition, execution continues after the step that
owns the block. Every path through a state ends in a *transition step*:

* ``goto``      enter ``state`` (in the same flow or subflow); its attempt counters are reset.
* ``retry``     re-run the input step that raised the outcome being handled (only valid inside
  an outcome handler); see *retries* below.
* ``continue``  leave the handler and continue with the step after the input step.
* ``hangup``    hang up (``reason`` is logged / sent as the hangup cause), then run nothing else
  except the hangup handler.
* ``return``    leave the current subflow with ``values`` (in the main flow: end the call).
* ``transfer``  blind transfer; the call leaves our control, the flow ends.

Input steps and outcomes
------------------------
Input-like steps (``gather``, ``dial``, ``queue``, ``http``, ``agent``, ``call``, ``record``) end
with exactly one *outcome* name from a closed set (:data:`OUTCOMES`, plus ``choice:<value>`` for
each gather choice and ``tool:<name>`` for each agent tool). ``step.on`` maps **every** possible
outcome to a list of :class:`Handler` already resolved by the compiler (step-level handlers,
then the state's scope chain, then flow-level handlers, then explicit ``default``). Handler
selection follows VoiceXML: keep a counter per (step, outcome) that starts at 0 when the state is
entered and is incremented each time the outcome happens; run the first handler in the list whose
``count`` is <= the counter (lists are sorted by ``count`` descending, innermost scope first on
ties). If no handler matches, treat it as a runtime error (``on_error``). Every handler's
``steps`` ends with a transition step (the compiler appends the implied one), so the interpreter
never guesses what comes after a handler body.

Retries
-------
Each input step has ``max_attempts`` (>= 1). ``attempt`` starts at 1 when the step is first run
after entering the state. ``retry`` increments ``attempt`` and re-runs the step; the prompt used is
``reprompts[attempt - 2]`` when that exists, else the last reprompt, else ``prompt``. When
``retry`` is executed with ``attempt == max_attempts`` the step instead ends with outcome
``exhausted`` (resolved through ``step.on["exhausted"]`` like any outcome). ``State.max_attempts``
is the largest bound among its input steps (1 when it has none). A step with ``unlimited``
(``retries unlimited``) never ends ``exhausted``: ``retry`` always re-runs it; the checker
accepts that only where every retry follows the caller's input or silence.

Gather
------
Plays ``prompt`` (barge-in per ``bargein``) and collects ``input`` (dtmf, speech, or both at once).
DTMF collection ends on ``terminator``, ``max_digits`` digits, ``interdigit_ms`` silence between
keys, or ``timeout_ms`` before the first key. Outcomes: ``noinput`` (nothing), ``nomatch`` (input
not matching any choice or not a valid ``capture``), ``choice:<value>`` when a :class:`Choice`
matches (DTMF ``keys`` compare exactly; ``phrases`` compare case-insensitively after stripping
punctuation; ``patterns`` are Python regexes searched in the transcript), ``match`` when there are
no choices and the input is a valid ``capture``, ``error``. On ``match``/``choice:*`` the value is
stored into ``var`` (when set): the choice's ``value``, or the capture converted to its type
(``digits`` -> string, ``number`` -> number, ``yesno`` -> bool, ``text`` -> string).

Anytime commands: while any input step of a state waits (gather, agent, record), the state's
``commands`` also listen; a match runs the command's handler instead of the step's outcome.

Other outcomes: ``dial`` -> answered | busy | noanswer | failed; ``queue`` -> answered | timeout |
failed; ``http`` -> ok (2xx) | error (other status, bad JSON, connection error) | timeout;
``record`` -> done (terminator key or max duration) | noinput (silence before any speech) |
error; ``call`` -> returned | error; ``agent`` -> tool:<name> | max_turns | timeout | noinput
(caller silent for ``silence_ms``) | error. A handler for ``hangup`` never appears in ``on``: when
the caller hangs up, the current step is abandoned and ``State.on_hangup`` runs (first handler;
only non-media steps run: set, meta, log, http, if, switch).

Errors
------
A runtime failure of any step (template, expression, provider, ARI) runs ``State.on_error``
(counted like outcomes, per state); with none, the call is hung up with reason ``error``.

Expressions and templates
-------------------------
:data:`Expr` is a tagged tree (``kind``), never Python source. Names resolve to flow variables,
subflow parameters/locals, and the read-only root ``call`` (``id``, ``caller``, ``called``,
``direction``, ``metadata``); nothing else (no environment, no Python objects). Functions are
only those in :data:`voxflow.spec.functions.FUNCTIONS`.
:class:`Template` is jinja2 source to render in jinja2's sandbox with the same names; ``names``
lists the top-level names it references. Durations are numbers of milliseconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from voxflow.ir.expressions import (
    AttrExpr,
    BinaryExpr,
    CallExpr,
    Expr,
    IndexExpr,
    ListExpr,
    LiteralExpr,
    MapExpr,
    Node,
    SliceExpr,
    Span,
    Template,
    UnaryExpr,
    ValueType,
    VarExpr,
)
from voxflow.ir.steps import (
    ActionParam,
    AgentAction,
    AgentStep,
    AnswerStep,
    BargeIn,
    BargeInMode,
    CallStep,
    Capture,
    Choice,
    Command,
    ContinueStep,
    DialStep,
    DynamicOption,
    GatherStep,
    GotoStep,
    Handler,
    HangupStep,
    HoldStep,
    HttpStep,
    IfBranch,
    IfStep,
    LogStep,
    MetaStep,
    OutcomeMap,
    PauseStep,
    PlayStep,
    QueueStep,
    RecordStartStep,
    RecordStep,
    RecordStopStep,
    RetryStep,
    ReturnStep,
    SayStep,
    SendDtmfStep,
    SetStep,
    Step,
    SwitchCase,
    SwitchStep,
    Tool,
    ToolArg,
    TransferStep,
    UnholdStep,
)
from voxflow.spec.semantics import OUTCOMES, QUEUE_STATUS, TRANSFER_OUTCOMES, queue_outcome

__all__ = [
    "INPUT_OPS",
    "OUTCOMES",
    "QUEUE_STATUS",
    "SCHEMA_VERSION",
    "TRANSFER_OUTCOMES",
    "TRANSITION_OPS",
    "ActionParam",
    "AgentAction",
    "AgentStep",
    "AnswerStep",
    "AttrExpr",
    "BargeIn",
    "BargeInMode",
    "BinaryExpr",
    "CallExpr",
    "CallStep",
    "Capture",
    "Choice",
    "Command",
    "Config",
    "ContinueStep",
    "DialStep",
    "DynamicOption",
    "Expr",
    "Flow",
    "GatherStep",
    "GotoStep",
    "Handler",
    "HangupStep",
    "HoldStep",
    "HttpStep",
    "IfBranch",
    "IfStep",
    "IndexExpr",
    "ListExpr",
    "LiteralExpr",
    "LogStep",
    "MapExpr",
    "MetaStep",
    "Node",
    "OutcomeMap",
    "Param",
    "PauseStep",
    "PlayStep",
    "QueueStep",
    "RecordStartStep",
    "RecordStep",
    "RecordStopStep",
    "RetryStep",
    "ReturnStep",
    "SayStep",
    "SendDtmfStep",
    "SetStep",
    "SliceExpr",
    "Span",
    "State",
    "Step",
    "Subflow",
    "SwitchCase",
    "SwitchStep",
    "Template",
    "Tool",
    "ToolArg",
    "TransferStep",
    "UnaryExpr",
    "UnholdStep",
    "ValueType",
    "VarDecl",
    "VarExpr",
    "queue_outcome",
]

SCHEMA_VERSION: Literal[1] = 1
"""Bumped on every incompatible change to these models."""

INPUT_OPS = frozenset(OUTCOMES)
TRANSITION_OPS = frozenset({"goto", "retry", "continue", "hangup", "return", "transfer"})


# ---------------------------------------------------------------- states and flows


class State(Node):
    """A named state. ``scopes`` lists the enclosing scope names, innermost first.
    ``on_error``/``on_hangup``/``commands`` are already merged from the scope chain
    (innermost first); ``max_attempts`` is the largest retry bound of its input steps."""

    name: str
    steps: tuple[Step, ...]
    scopes: tuple[str, ...] = ()
    on_error: tuple[Handler, ...] = ()
    on_hangup: tuple[Handler, ...] = ()
    commands: tuple[Command, ...] = ()
    max_attempts: int = 1
    span: Span


class VarDecl(Node):
    """A declared variable; ``default`` None means it starts unset. A ``sensitive`` value
    (e.g. a card number) is redacted in traces, logs, transcripts and webhook payloads."""

    name: str
    type: ValueType = "any"
    default: Expr | None = None
    sensitive: bool = False
    span: Span


class Param(Node):
    """A subflow parameter or return value."""

    name: str
    type: ValueType = "any"
    default: Expr | None = None
    span: Span


class Subflow(Node):
    """A reusable group of states with its own variables, called by a ``call`` step."""

    name: str
    params: tuple[Param, ...] = ()
    returns: tuple[Param, ...] = ()
    variables: tuple[VarDecl, ...] = ()
    initial: str
    states: dict[str, State]
    span: Span


class Config(Node):
    """Flow defaults that steps inherit when they do not say otherwise."""

    language: str = "en-US"
    voice: str | None = None
    timeout_ms: int = 5000
    interdigit_ms: int = 3000
    max_attempts: int = 3
    bargein: BargeIn = BargeIn()
    timezone: str = "UTC"
    http_timeout_ms: int = 10000
    dial_timeout_ms: int = 30000
    min_confidence: float | None = None
    """The flow's ``confidence``: the least recognition confidence a spoken answer needs
    (None: the speech-to-text's own threshold)."""


class Flow(Node):
    """A compiled flow. ``answers`` are the numbers/extensions routed to it; ``metadata`` seeds
    ``call.metadata`` and ``webhook_keys`` are marked for webhook payloads."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    title: str | None = None
    file: str
    answers: tuple[str, ...] = ()
    direction: Literal["inbound", "outbound", "any"] = "any"
    config: Config = Config()
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook_keys: tuple[str, ...] = ()
    variables: tuple[VarDecl, ...] = ()
    initial: str
    states: dict[str, State]
    subflows: dict[str, Subflow] = Field(default_factory=dict)
    includes: tuple[str, ...] = ()
    span: Span


for _model in (
    State,
    VarDecl,
    Param,
    Subflow,
    Flow,
):
    _model.model_rebuild()

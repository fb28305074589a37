"""The voxflow IR: a compiled, checked call flow as frozen pydantic models.

This is the contract between the compiler (``voxflow.ir.lower``) and the interpreter
(``voxflow.runtime``). It is plain data: JSON round-trips through ``Flow.model_dump_json()`` /
``Flow.model_validate_json()`` and carries :data:`SCHEMA_VERSION`.

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
is the largest bound among its input steps (1 when it has none).

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
only those in :data:`voxflow.ir.functions.FUNCTIONS`.
:class:`Template` is jinja2 source to render in jinja2's sandbox with the same names; ``names``
lists the top-level names it references. Durations are numbers of milliseconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "INPUT_OPS",
    "OUTCOMES",
    "SCHEMA_VERSION",
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
]

SCHEMA_VERSION: Literal[1] = 1
"""Bumped on every incompatible change to these models."""

ValueType = Literal["string", "number", "bool", "duration", "list", "map", "any", "null"]
BargeInMode = Literal["none", "dtmf", "speech", "any"]

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

INPUT_OPS = frozenset(OUTCOMES)
TRANSITION_OPS = frozenset({"goto", "retry", "continue", "hangup", "return", "transfer"})


class Node(BaseModel):
    """Base of every IR model: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(Node):
    """Where something was written: ``file`` plus 1-based line/col, exclusive end column."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int


# ---------------------------------------------------------------- expressions


class LiteralExpr(Node):
    """A constant. Durations are ``type="duration"`` with ``value`` in milliseconds."""

    kind: Literal["literal"] = "literal"
    type: ValueType
    value: str | int | float | bool | None


class VarExpr(Node):
    """A variable (or root such as ``call``)."""

    kind: Literal["var"] = "var"
    name: str


class UnaryExpr(Node):
    """``-x`` or ``not x``."""

    kind: Literal["unary"] = "unary"
    op: Literal["-", "not"]
    operand: Expr


class BinaryExpr(Node):
    """Arithmetic, comparison, membership and short-circuit boolean operators."""

    kind: Literal["binary"] = "binary"
    op: Literal["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in"]
    left: Expr
    right: Expr


class CallExpr(Node):
    """A call of a whitelisted function (see :data:`voxflow.ir.functions.FUNCTIONS`)."""

    kind: Literal["call"] = "call"
    func: str
    args: tuple[Expr, ...] = ()


class ListExpr(Node):
    """``[a, b]``."""

    kind: Literal["list"] = "list"
    items: tuple[Expr, ...] = ()


class MapExpr(Node):
    """``{"k": v}`` (keys are strings)."""

    kind: Literal["map"] = "map"
    entries: tuple[tuple[str, Expr], ...] = ()


class IndexExpr(Node):
    """``target[index]``."""

    kind: Literal["index"] = "index"
    target: Expr
    index: Expr


class AttrExpr(Node):
    """``target.name`` (map key or call attribute)."""

    kind: Literal["attr"] = "attr"
    target: Expr
    name: str


Expr = Annotated[
    Union[  # noqa: UP007  (a Union is needed for the discriminator with forward references)
        LiteralExpr,
        VarExpr,
        UnaryExpr,
        BinaryExpr,
        CallExpr,
        ListExpr,
        MapExpr,
        IndexExpr,
        AttrExpr,
    ],
    Field(discriminator="kind"),
]


class Template(Node):
    """A jinja2 template (render in the sandbox); ``names`` are the top-level names it reads."""

    source: str
    names: tuple[str, ...] = ()


# ---------------------------------------------------------------- shared step parts


class BargeIn(Node):
    """Which caller input interrupts a prompt, with speech thresholds against false barge-ins."""

    mode: BargeInMode = "any"
    min_words: int = 1
    min_ms: int = 0


class Capture(Node):
    """A typed capture for a gather: digits of a length range, number, yes/no, or free text."""

    type: Literal["digits", "number", "yesno", "text"]
    min_length: int | None = None
    max_length: int | None = None


class Choice(Node):
    """One menu/gather choice: DTMF ``keys``, spoken ``phrases`` or ``patterns`` (regex).
    Matching yields outcome ``choice:<value>`` and stores ``value`` in the step's var."""

    value: str
    keys: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    span: Span


class Handler(Node):
    """A handler body. ``count`` is the VoiceXML count (1 when not counted). ``origin`` says
    where it was written: ``step``, ``state``, ``scope:<name>``, ``flow`` or ``default``.
    ``steps`` always ends with a transition step."""

    count: int = 1
    origin: str = "step"
    steps: tuple[Step, ...]
    span: Span


class Command(Node):
    """An anytime command: caller input that runs ``handler`` during any input step."""

    name: str
    keys: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    handler: Handler
    span: Span


OutcomeMap = dict[str, tuple[Handler, ...]]


class _StepBase(Node):
    span: Span


class _InputBase(_StepBase):
    on: OutcomeMap = Field(default_factory=dict)


# ---------------------------------------------------------------- steps


class AnswerStep(_StepBase):
    """Answer the channel (no-op when already answered)."""

    op: Literal["answer"] = "answer"


class SayStep(_StepBase):
    """Speak a rendered template through TTS."""

    op: Literal["say"] = "say"
    text: Template
    voice: str | None = None
    bargein: BargeIn


class PlayStep(_StepBase):
    """Play an Asterisk sound name, a local file or a URL (``source`` rendered first)."""

    op: Literal["play"] = "play"
    kind: Literal["sound", "file", "url"]
    source: Template
    bargein: BargeIn


class PauseStep(_StepBase):
    """Silence for ``duration_ms``."""

    op: Literal["pause"] = "pause"
    duration_ms: int


class GatherStep(_InputBase):
    """Prompt and collect DTMF and/or speech (``menu`` compiles to this with ``choices``)."""

    op: Literal["gather"] = "gather"
    var: str | None = None
    input: Literal["dtmf", "speech", "both"] = "both"
    prompt: Template | None = None
    reprompts: tuple[Template, ...] = ()
    capture: Capture | None = None
    choices: tuple[Choice, ...] = ()
    max_digits: int | None = None
    terminator: str | None = None
    interdigit_ms: int
    timeout_ms: int
    bargein: BargeIn
    voice: str | None = None
    max_attempts: int = 3


class SetStep(_StepBase):
    """Assign an expression to a variable."""

    op: Literal["set"] = "set"
    var: str
    value: Expr


class IfBranch(Node):
    """One ``if``/``elif`` arm."""

    cond: Expr
    steps: tuple[Step, ...]
    span: Span


class IfStep(_StepBase):
    """Run the first branch whose ``cond`` is true, else ``else_steps``."""

    op: Literal["if"] = "if"
    branches: tuple[IfBranch, ...]
    else_steps: tuple[Step, ...] = ()


class SwitchCase(Node):
    """A ``case`` arm: runs when the subject equals any of ``values``."""

    values: tuple[Expr, ...]
    steps: tuple[Step, ...]
    span: Span


class SwitchStep(_StepBase):
    """Compare ``subject`` to each case in order; ``default_steps`` when none is equal."""

    op: Literal["switch"] = "switch"
    subject: Expr
    cases: tuple[SwitchCase, ...]
    default_steps: tuple[Step, ...] = ()


class RecordStartStep(_StepBase):
    """Start a background recording of the call (``name`` rendered)."""

    op: Literal["record_start"] = "record_start"
    name: Template
    format: str = "wav"
    max_duration_ms: int | None = None
    beep: bool = False


class RecordStopStep(_StepBase):
    """Stop a background recording (``name`` None: the most recent)."""

    op: Literal["record_stop"] = "record_stop"
    name: Template | None = None


class RecordStep(_InputBase):
    """Record the caller until ``terminator``, ``max_duration_ms`` or ``silence_ms`` of silence
    after speech; the recording name is stored into ``var``."""

    op: Literal["record"] = "record"
    name: Template
    var: str | None = None
    prompt: Template | None = None
    format: str = "wav"
    max_duration_ms: int
    silence_ms: int
    beep: bool = True
    terminator: str | None = "#"
    bargein: BargeIn
    max_attempts: int = 1


class DialStep(_InputBase):
    """Call ``endpoint`` and bridge it with the caller (``bridge`` and ``dial`` in the source)."""

    op: Literal["dial"] = "dial"
    endpoint: Template
    caller_id: Template | None = None
    timeout_ms: int
    music: str | None = None


class TransferStep(_StepBase):
    """Blind transfer to ``endpoint``; the call leaves the flow (a transition)."""

    op: Literal["transfer"] = "transfer"
    endpoint: Template


class QueueStep(_InputBase):
    """Place the caller in queue ``name`` until an agent answers or ``timeout_ms`` passes."""

    op: Literal["queue"] = "queue"
    name: Template
    timeout_ms: int
    music: str | None = None
    announce: Template | None = None


class HoldStep(_StepBase):
    """Put the caller on hold (music class ``music`` or the default)."""

    op: Literal["hold"] = "hold"
    music: str | None = None


class UnholdStep(_StepBase):
    """Take the caller off hold."""

    op: Literal["unhold"] = "unhold"


class SendDtmfStep(_StepBase):
    """Send DTMF ``digits`` (rendered) on the caller's channel."""

    op: Literal["send_dtmf"] = "send_dtmf"
    digits: Template


class HttpStep(_InputBase):
    """An HTTP request. The parsed JSON body (or text) goes to ``result_var``, the status to
    ``status_var``. ``body`` is sent as JSON."""

    op: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url: Template
    body: Expr | None = None
    headers: tuple[tuple[str, Template], ...] = ()
    timeout_ms: int
    result_var: str | None = None
    status_var: str | None = None


class ToolArg(Node):
    """A typed tool argument; the value the model passes is stored into ``var``."""

    name: str
    type: ValueType
    var: str
    description: str = ""
    required: bool = True


class Tool(Node):
    """An agent exit: when the model calls it, the agent ends with outcome ``tool:<name>``."""

    name: str
    description: str
    args: tuple[ToolArg, ...] = ()
    span: Span


class ActionParam(Node):
    """A typed argument of an agent action (the model's value is used by the request's
    templates; it is not stored in a flow variable)."""

    name: str
    type: ValueType
    description: str = ""
    required: bool = True


class AgentAction(Node):
    """A tool the model calls mid-conversation: an HTTP request whose JSON result (or an
    ``{"error": ...}`` object) returns to the model; the step goes on. ``url`` and ``headers``
    are templates and ``body`` an expression over the flow's names plus the ``args`` (which
    shadow flow variables of the same name). A body is sent as JSON; without one, POST, PUT and
    PATCH send the arguments object. The response is limited in size; non-2xx answers, timeouts
    (``timeout_ms``) and connection errors become error results."""

    name: str
    description: str
    args: tuple[ActionParam, ...] = ()
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url: Template
    body: Expr | None = None
    headers: tuple[tuple[str, Template], ...] = ()
    timeout_ms: int
    span: Span


class AgentStep(_InputBase):
    """An LLM conversation. Ends when the model calls a tool (``tool:<name>``), after
    ``max_turns`` caller turns, ``timeout_ms`` overall, or ``silence_ms`` of caller silence.
    ``filler`` is spoken when the model has not answered ``filler_after_ms`` after the caller
    stopped; after ``give_up_ms`` without an answer the outcome is ``timeout``. ``context``:
    ``append`` keeps the conversation across agent steps of the call, ``reset`` starts fresh."""

    op: Literal["agent"] = "agent"
    system: Template
    greeting: Template | None = None
    tools: tuple[Tool, ...] = ()
    actions: tuple[AgentAction, ...] = ()
    max_turns: int
    timeout_ms: int
    silence_ms: int
    filler: Template | None = None
    filler_after_ms: int | None = None
    give_up_ms: int | None = None
    context: Literal["append", "reset"] = "append"
    transcript_var: str | None = None
    voice: str | None = None
    bargein: BargeIn
    max_attempts: int = 1


class CallStep(_InputBase):
    """Run subflow ``subflow`` with ``args``; on return copy its values into variables
    (``returns`` maps return name -> variable)."""

    op: Literal["call"] = "call"
    subflow: str
    args: tuple[tuple[str, Expr], ...] = ()
    returns: tuple[tuple[str, str], ...] = ()


class LogStep(_StepBase):
    """Write ``message`` (rendered) to the call log."""

    op: Literal["log"] = "log"
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: Template


class MetaStep(_StepBase):
    """``call.metadata[key] = value``; ``webhook`` also adds the key to webhook payloads
    (the seed's ``metadata.update_for_webhook``)."""

    op: Literal["meta"] = "meta"
    key: str
    value: Expr
    webhook: bool = False


class GotoStep(_StepBase):
    """Transition to ``state``."""

    op: Literal["goto"] = "goto"
    state: str


class RetryStep(_StepBase):
    """Re-run the input step whose outcome is being handled (see *Retries*)."""

    op: Literal["retry"] = "retry"


class ContinueStep(_StepBase):
    """Leave the handler; continue after the input step."""

    op: Literal["continue"] = "continue"


class HangupStep(_StepBase):
    """Hang up with ``reason``."""

    op: Literal["hangup"] = "hangup"
    reason: str = "normal"


class ReturnStep(_StepBase):
    """Leave the subflow with ``values`` (return name -> expression)."""

    op: Literal["return"] = "return"
    values: tuple[tuple[str, Expr], ...] = ()


Step = Annotated[
    Union[  # noqa: UP007
        AnswerStep,
        SayStep,
        PlayStep,
        PauseStep,
        GatherStep,
        SetStep,
        IfStep,
        SwitchStep,
        RecordStartStep,
        RecordStopStep,
        RecordStep,
        DialStep,
        TransferStep,
        QueueStep,
        HoldStep,
        UnholdStep,
        SendDtmfStep,
        HttpStep,
        AgentStep,
        CallStep,
        LogStep,
        MetaStep,
        GotoStep,
        RetryStep,
        ContinueStep,
        HangupStep,
        ReturnStep,
    ],
    Field(discriminator="op"),
]


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
    """A declared variable; ``default`` None means it starts unset."""

    name: str
    type: ValueType = "any"
    default: Expr | None = None
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
    UnaryExpr,
    BinaryExpr,
    CallExpr,
    ListExpr,
    MapExpr,
    IndexExpr,
    AttrExpr,
    Handler,
    Command,
    IfBranch,
    IfStep,
    SwitchCase,
    SwitchStep,
    GatherStep,
    RecordStep,
    DialStep,
    QueueStep,
    HttpStep,
    AgentStep,
    CallStep,
    SetStep,
    MetaStep,
    ReturnStep,
    State,
    VarDecl,
    Param,
    Subflow,
    Flow,
):
    _model.model_rebuild()

"""IR steps: what a state runs, and the parts steps share (handlers, captures, choices).
Their execution semantics are in the :mod:`voxflow.ir.models` docstring, which re-exports them."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from voxflow.ir.expressions import Expr, Node, Span, Template, ValueType

__all__ = [
    "ActionParam",
    "AgentAction",
    "AgentStep",
    "AnswerStep",
    "BargeIn",
    "BargeInMode",
    "CallStep",
    "Capture",
    "Choice",
    "Command",
    "ContinueStep",
    "DialStep",
    "DynamicOption",
    "GatherStep",
    "GotoStep",
    "Handler",
    "HangupStep",
    "HoldStep",
    "HttpStep",
    "IfBranch",
    "IfStep",
    "LogStep",
    "MetaStep",
    "OutcomeMap",
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
    "Step",
    "SwitchCase",
    "SwitchStep",
    "Tool",
    "ToolArg",
    "TransferStep",
    "UnholdStep",
]

BargeInMode = Literal["none", "dtmf", "speech", "any"]


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


class DynamicOption(Node):
    """A step option written as an expression (``max_digits len(pin)``, ``timeout wait``):
    when the step starts, its ``field`` takes the value of ``expr``, a whole number
    (``kind`` int) or a duration in milliseconds (``kind`` duration), which must be above 0."""

    field: str
    expr: Expr
    kind: Literal["int", "duration"]


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
    unlimited: bool = False
    dynamic: tuple[DynamicOption, ...] = ()
    min_confidence: float | None = None
    """Spoken answers recognised with less confidence are a ``nomatch`` (None: the flow's
    ``confidence``, else the speech-to-text's own threshold)."""
    choices_from: Expr | None = None
    """A list expression: its items become the choices when the step starts (key ``n`` or the
    item's text for the n-th item); a match is outcome ``match`` storing the item."""


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
    unlimited: bool = False
    transcript_var: str | None = None
    """Where the recording's transcript goes (``transcribe VAR``): the configured STT's text of
    the finished recording, "" when nothing was recognised."""
    dynamic: tuple[DynamicOption, ...] = ()


class DialStep(_InputBase):
    """Call ``endpoint`` and bridge it with the caller (``bridge`` and ``dial`` in the source)."""

    op: Literal["dial"] = "dial"
    endpoint: Template
    caller_id: Template | None = None
    timeout_ms: int
    music: str | None = None
    others: tuple[Template, ...] = ()
    """More endpoints: a ring group with ``endpoint``. ``ring`` ``all`` rings them at once (the
    first to answer is bridged, the others are hung up; ``timeout_ms`` for the whole group);
    ``hunt`` rings one after another in order, ``timeout_ms`` each."""
    ring: Literal["all", "hunt"] = "all"
    far_dtmf: str | None = None
    """Keys sent to the answered far leg before the legs are joined (``,`` pauses)."""
    whisper: Template | None = None
    """Said to the answered far leg (after ``far_dtmf``); the caller does not hear it."""
    accept: str | None = None
    """The key the far party must press within ``accept_timeout_ms`` (after the whisper) to
    take the call; any other key or none hangs the leg up and the outcome is ``noanswer``."""
    accept_timeout_ms: int = 5000
    dynamic: tuple[DynamicOption, ...] = ()


class TransferStep(_StepBase):
    """Blind transfer to ``endpoint``; the call leaves the flow (a transition)."""

    op: Literal["transfer"] = "transfer"
    endpoint: Template
    carry: Expr | None = None
    """As :attr:`QueueStep.carry`: call data for the flow or person that takes the call."""


class QueueStep(_InputBase):
    """Place the caller in queue ``name`` until an agent answers or ``timeout_ms`` passes."""

    op: Literal["queue"] = "queue"
    name: Template
    timeout_ms: int
    music: str | None = None
    announce: Template | None = None
    dynamic: tuple[DynamicOption, ...] = ()
    priority: int | None = None
    """The caller's place ahead of lower priorities (Queue()'s ``QUEUE_PRIO``)."""
    announce_position: bool = False
    """Tell the caller their position while they wait (the queue's position announcements)."""
    carry: Expr | None = None
    """A map of call data set as ``VOXFLOW_META_<KEY>`` channel variables before the call
    leaves (for the agent's screen and the flow that takes the call next)."""
    choices: tuple[Choice, ...] = ()
    """Exit keys (one digit each): a key that leaves ``Queue()`` through the queue's
    ``context`` (``[voxflow-queue-exit]``) ends the step with ``choice:<key>``."""
    var: str | None = None
    """``into``: a map of how ``Queue()`` returned (status, position, wait, key)."""


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
    retries: int = 2
    """More attempts of an idempotent method (GET, PUT, DELETE) after a timeout, a connection
    error, 429 or 5xx; a POST or PATCH is sent once."""
    backoff_ms: int = 200
    """The wait before the first retry, doubled per retry (capped, with jitter: see
    ``voxflow.runtime.http_step.backoff_delay``)."""


class ToolArg(Node):
    """A typed tool argument; the value the model passes is stored into ``var``."""

    name: str
    type: ValueType
    var: str
    description: str = ""
    required: bool = True
    constraints: str = ""
    """Extra JSON-Schema keywords of the argument (``{"minimum": 1}``), as JSON text."""


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
    constraints: str = ""
    """Extra JSON-Schema keywords of the argument, as JSON text."""


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
    context: Literal["append", "reset", "summary"] = "append"
    transcript_var: str | None = None
    voice: str | None = None
    bargein: BargeIn
    max_attempts: int = 1
    unlimited: bool = False
    model: str | None = None
    """The model for this step (else the provider's configured one)."""
    temperature: float | None = None


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
    Union[  # noqa: UP007  (a runtime alias: `|` makes a UnionType)
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


for _model in (
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
):
    _model.model_rebuild()

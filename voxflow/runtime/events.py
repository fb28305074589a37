"""Events into and commands out of the pure step function (:mod:`voxflow.runtime.step`).

Every event carries ``now`` (Unix seconds, from the driver's clock or a virtual clock), so the
step function never reads a clock. Commands that take time (:class:`Op` subclasses) carry a
``cid``; the driver answers each with :class:`OpDone` or :class:`OpFailed` for that ``cid``
(timers answer with :class:`TimerFired`). Other commands are performed at once, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from voxflow.ir.models import Span

__all__ = [
    "LEFT_OUTCOMES",
    "UNKNOWN_WHY",
    "Agent",
    "Answer",
    "CallInfo",
    "Command",
    "Dial",
    "Dtmf",
    "End",
    "Event",
    "Hangup",
    "HangupEvent",
    "Hold",
    "Http",
    "Listen",
    "Log",
    "Notify",
    "Op",
    "OpDone",
    "OpFailed",
    "Play",
    "Queue",
    "RecordStart",
    "RecordStop",
    "RecordTimer",
    "Say",
    "SendDtmf",
    "SetMeta",
    "Start",
    "StartTimer",
    "StopAll",
    "StopOp",
    "TimerFired",
    "Transfer",
    "Unhold",
]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Identity of the call, visible to flows as ``call``."""

    id: str
    caller: str = ""
    called: str = ""
    direction: Literal["inbound", "outbound"] = "inbound"


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    """The call entered the flow."""

    now: float = 0.0


@dataclass(frozen=True, slots=True)
class OpDone:
    """Op ``cid`` finished; ``result`` depends on the op (see each Op's docstring)."""

    cid: int
    result: Any = None
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class OpFailed:
    """Op ``cid`` raised; ``error`` is a one-line description."""

    cid: int
    error: str
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class TimerFired:
    """Timer ``cid`` expired."""

    cid: int
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class Dtmf:
    """The caller pressed ``digit``."""

    digit: str
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class HangupEvent:
    """The caller (or the network) hung up; ``by="app"``: the application ended the call (e.g.
    the server's grace period was over): outcome ``error``, not ``caller_hangup``."""

    cause: str = "normal"
    now: float = 0.0
    by: Literal["caller", "app"] = "caller"


Event = Start | OpDone | OpFailed | TimerFired | Dtmf | HangupEvent


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Op:
    """A command that takes time; answered by OpDone/OpFailed(cid)."""

    cid: int


@dataclass(frozen=True, slots=True)
class Answer(Op):
    """Answer the channel. Result: None."""


@dataclass(frozen=True, slots=True)
class Say(Op):
    """Speak ``text`` (TTS). ``bargein``: none/dtmf/speech/any. Result: None."""

    text: str = ""
    voice: str | None = None
    bargein: str = "any"


@dataclass(frozen=True, slots=True)
class Play(Op):
    """Play a sound name, file or URL. Result: None."""

    kind: str = "sound"
    source: str = ""
    bargein: str = "any"


@dataclass(frozen=True, slots=True)
class Listen(Op):
    """Transcribe the next utterance. Result: the text ("" when the caller spoke but nothing
    was recognised with ``min_confidence``), or None when nothing was said."""

    timeout_ms: int = 5000
    phrases: tuple[str, ...] = ()
    min_confidence: float | None = None


@dataclass(frozen=True, slots=True)
class StartTimer(Op):
    """Answer with TimerFired(cid) after ``ms`` milliseconds."""

    ms: int = 0


@dataclass(frozen=True, slots=True)
class RecordTimer(StartTimer):
    """A ``record`` step's timer: TimerFired(cid) after ``ms`` milliseconds, or as soon as the
    recording ends by itself (Asterisk's ``maxSilenceSeconds``, max duration). A simulator may
    treat it as a plain timer."""


@dataclass(frozen=True, slots=True)
class Http(Op):
    """HTTP request. Result: dict with outcome ('ok'/'error'/'timeout'), status, data, error."""

    method: str = "GET"
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None
    timeout_ms: int = 10000
    key: str = ""
    """Its ``Idempotency-Key`` (:func:`~voxflow.runtime.runstate.effect_key`)."""
    retries: int = 2
    backoff_ms: int = 200


@dataclass(frozen=True, slots=True)
class Dial(Op):
    """Call ``endpoint`` and bridge it. Result: 'answered'/'busy'/'noanswer'/'failed'."""

    endpoint: str = ""
    caller_id: str | None = None
    timeout_ms: int = 30000
    music: str | None = None
    others: tuple[str, ...] = ()
    """More endpoints of a ring group (see :class:`voxflow.ir.DialStep`)."""
    ring: str = "all"
    far_dtmf: str | None = None
    whisper: str | None = None
    accept: str | None = None
    accept_timeout_ms: int = 5000
    voice: str | None = None


@dataclass(frozen=True, slots=True)
class Queue(Op):
    """Put the caller in a queue. Result: a map with ``outcome`` ('answered', 'timeout',
    'failed', 'choice:<key>' or 'transferred'), ``status``, ``position``, ``wait``, ``key``."""

    name: str = ""
    timeout_ms: int = 60000
    music: str | None = None
    announce: str | None = None
    priority: int | None = None
    announce_position: bool = False
    carry: tuple[tuple[str, str], ...] = ()
    """Call data (key, text) set as ``VOXFLOW_META_<KEY>`` channel variables before leaving."""
    keys: tuple[str, ...] = ()
    """The step's exit keys (digits): a key that leaves ``Queue()`` ends the step with it."""
    position: int | None = None
    """Join at this place (``Queue()``'s position argument), not at the back: a caller a
    worker that took the call over queues again after a key the step does not list."""


@dataclass(frozen=True, slots=True)
class Transfer(Op):
    """Blind transfer. Result: None."""

    endpoint: str = ""
    carry: tuple[tuple[str, str], ...] = ()
    """As :attr:`Queue.carry`."""


@dataclass(frozen=True, slots=True)
class Hold(Op):
    """Music on hold. Result: None."""

    music: str | None = None


@dataclass(frozen=True, slots=True)
class Unhold(Op):
    """End hold. Result: None."""


@dataclass(frozen=True, slots=True)
class SendDtmf(Op):
    """Send digits to the caller's channel. Result: None."""

    digits: str = ""


@dataclass(frozen=True, slots=True)
class RecordStart(Op):
    """Start recording ``name``. Result: the recording name."""

    name: str = ""
    format: str = "wav"
    max_duration_ms: int | None = None
    beep: bool = False
    silence_ms: int | None = None  # end after this much silence (ARI maxSilenceSeconds)


@dataclass(frozen=True, slots=True)
class RecordStop(Op):
    """Stop recording ``name`` (None: the latest). Result: the recording name, or a dict with
    ``name`` and ``duration`` (seconds as Asterisk reports them; 0: nothing was heard)."""

    name: str | None = None
    transcribe: bool = False
    """Also transcribe the recording (result key ``transcript``)."""


@dataclass(frozen=True, slots=True)
class Agent(Op):
    """Run an LLM conversation. Result: dict with outcome ('tool:<name>', 'max_turns',
    'timeout', 'noinput', 'error'), ``args`` (tool arguments) and ``transcript``."""

    system: str = ""
    greeting: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    max_turns: int = 10
    timeout_ms: int = 300000
    silence_ms: int = 8000
    filler: str | None = None
    filler_after_ms: int | None = None
    give_up_ms: int | None = None
    context: str = "append"
    voice: str | None = None
    bargein: str = "any"
    # agent actions (IR ``AgentAction``s) and what their templates see: the flow's variables
    # and ``call`` when the step started, and the flow's timezone (voxflow.runtime.agent_actions)
    actions: tuple[Any, ...] = ()
    action_vars: dict[str, Any] | None = None
    timezone: str = "UTC"
    model: str | None = None
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class StopOp:
    """Stop op ``cid`` if it still runs (barge-in, cancelled listen, cancelled timer)."""

    cid: int


@dataclass(frozen=True, slots=True)
class StopAll:
    """Stop every op and timer of the call (the caller hung up)."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """Hang up the call with ``reason``."""

    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class SetMeta:
    """``call.metadata[key] = value``; ``webhook`` marks the key for webhook payloads."""

    key: str
    value: Any
    webhook: bool = False


@dataclass(frozen=True, slots=True)
class Log:
    """A log line from the flow (``log`` step) or the interpreter (runtime errors)."""

    level: str
    message: str
    span: Span | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """Something to trace (and maybe send as a webhook): state.entered, prompt, input, ..."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """The idempotency key of a webhook it sends (``state.entered``)."""


LEFT_OUTCOMES = frozenset({"transferred", "unknown"})
"""Ends of a call that left for the dialplan and did not come back: ``transferred`` (Asterisk
said it left: redirected, its ``Dial()`` answered), ``unknown`` (per-call websockets: not back
in time, and Asterisk said nothing more)."""
UNKNOWN_WHY = "no word from Asterisk (per-call websocket): answered, or the caller hung up"
"""The reason's tail of an ``unknown`` end."""


@dataclass(frozen=True, slots=True)
class End:
    """The flow is finished with this call. ``outcome``: completed, caller_hangup,
    transferred, unknown (:data:`LEFT_OUTCOMES`), error. ``on_hangup_cut`` (set by the
    driver, never by the step function): the seconds after which the call's ``on hangup`` body
    was cut (``hangup_timeout``), its later steps not run; None when it ran to its end."""

    outcome: str
    reason: str = ""
    on_hangup_cut: float | None = None


Command = (
    Answer
    | Say
    | Play
    | Listen
    | StartTimer
    | RecordTimer
    | Http
    | Dial
    | Queue
    | Transfer
    | Hold
    | Unhold
    | SendDtmf
    | RecordStart
    | RecordStop
    | Agent
    | StopOp
    | StopAll
    | Hangup
    | SetMeta
    | Log
    | Notify
    | End
)

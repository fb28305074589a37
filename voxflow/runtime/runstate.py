"""The interpreter's immutable run-state types (pure data, no I/O).

``RunState`` is the whole state of one call between ``step()`` calls; ``Cursor``, ``Frame`` and
``Wait`` are its parts. The ``_``-prefixed helpers are shared by :mod:`voxflow.runtime.machine`
and :mod:`voxflow.runtime.step`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.expressions import UNSET

__all__ = [
    "ERROR_STREAK_LIMIT",
    "Cursor",
    "CursorKind",
    "Frame",
    "RunState",
    "StepObserver",
    "Wait",
    "effect_key",
]

ERROR_STREAK_LIMIT = 20
"""Runtime errors in a row, with nothing asked of or heard from the caller between them, after
which the call ends in ``error``: an ``on error`` that leads back to the failing step (directly
or through other states) would otherwise loop for as long as the caller stays on the line."""


def _empty() -> MappingProxyType[Any, Any]:
    return MappingProxyType({})


CursorKind = Literal["block", "handler", "error", "hangup", "command"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a block of steps. Handler cursors remember the input ``step`` they handle
    (the cursor below them points at it), which ``retry``/``continue`` return to."""

    block: tuple[ir.Step, ...]
    index: int = 0
    kind: CursorKind = "block"
    step: Any = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One activation: the main flow (``subflow=None``) or a subflow call."""

    subflow: str | None
    state: str
    variables: MappingProxyType[str, Any]
    stack: tuple[Cursor, ...] = ()
    counts: MappingProxyType[tuple[str, str], int] = field(default_factory=_empty)
    attempts: MappingProxyType[str, int] = field(default_factory=_empty)
    entry: int = 0
    """The call's state-entry sequence number of ``state`` (see :func:`effect_key`)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """What the call waits for. ``cids`` are the live ops/timers; ``kind`` says which logic
    handles the answers (op, gather, record); the other fields are gather/record progress."""

    kind: Literal["op", "gather", "record"]
    step: Any
    cids: frozenset[int]
    phase: str = ""
    digits: str = ""
    main_cid: int | None = None
    timer_cid: int | None = None
    listen_cid: int | None = None
    until: float | None = None
    """A ``queue`` step's end (``now`` of its start plus its timeout): a worker that takes the
    call over queues it again for the time left."""


@dataclass(frozen=True, slots=True)
class RunState:
    """The whole interpreter state of one call (immutable)."""

    call: ev.CallInfo
    frames: tuple[Frame, ...] = ()
    metadata: MappingProxyType[str, Any] = field(default_factory=_empty)
    webhook_keys: frozenset[str] = frozenset()
    wait: Wait | None = None
    seq: int = 0
    status: Literal["new", "running", "hangup_handler", "ended"] = "new"
    hangup_ran: bool = False
    typeahead: str = ""
    max_steps: int = 1000
    speech: bool = False
    end: tuple[str, str] | None = None
    entries: int = 0
    """State entries so far in this call (the latest entered state's sequence number)."""
    effects: int = 0
    """Keyed side effects (HTTP steps) since the latest state entry."""
    error_streak: int = 0
    """Runtime errors since the caller was last asked or heard (a key, or a gather, record,
    agent, dial or queue step that ended): past :data:`ERROR_STREAK_LIMIT` the call ends."""

    @property
    def state_name(self) -> str | None:
        """The current state name (innermost frame), or None before start."""
        return self.frames[-1].state if self.frames else None

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    @property
    def awaits_caller(self) -> bool:
        """True while the flow waits for the caller to act: a gather collecting (its prompt
        over), a recording running, an agent conversation, a queue or a dial in progress."""
        w = self.wait
        if w is None or self.status != "running":
            return False
        if w.kind == "gather":
            return w.phase == "collect"
        if w.kind == "record":
            return w.phase == "recording"
        return getattr(w.step, "op", "") in ("agent", "queue", "dial")

    def variables(self) -> dict[str, Any]:
        """Flow variables (main frame) that are set."""
        if not self.frames:
            return {}
        return {k: v for k, v in self.frames[0].variables.items() if v is not UNSET}


class StepObserver(Protocol):
    """Optional hook told what the interpreter does inside one ``step()`` (coverage, tracing).

    ``where`` is the current state, ``subflow.state`` inside a subflow. Called synchronously;
    must not raise or change anything it is given. Nothing is called when no observer is set.
    """

    def entered(self, where: str) -> None:
        """A state was entered."""

    def outcome(self, where: str, step: Any, outcome: str, handler: ir.Handler | None) -> None:
        """``step`` ended with ``outcome``; ``handler`` is the one chosen (None: no handler)."""

    def error(self, where: str, handler: ir.Handler) -> None:
        """A runtime error in ``where`` runs this ``on error`` handler."""

    def command(self, where: str, command: ir.Command) -> None:
        """An anytime command matched the caller's input."""

    def hangup_handler(self, where: str) -> None:
        """The state's ``on hangup`` handler starts."""

    def transition(self, where: str, step: Any, handler_steps: tuple[ir.Step, ...] | None) -> None:
        """A transition step (goto, hangup, retry, ...) runs, inside the innermost handler whose
        block is ``handler_steps`` (None: in the state's own steps)."""


def effect_key(call_id: str, entry: int, what: int | str) -> str:
    """The idempotency key of a side effect: the ``what``-th HTTP step (or the webhook event
    named ``what``) after the call's ``entry``-th state entry. A resumed call re-enters its
    checkpointed state with the same entry number, so what it repeats carries the same key."""
    return f"{call_id}:{entry}:{what}"


def _rewait(w: Wait, **changes: Any) -> Wait:
    """``dataclasses.replace`` for :class:`Wait` without its per-call introspection (hot path)."""
    d = {
        "kind": w.kind,
        "step": w.step,
        "cids": w.cids,
        "phase": w.phase,
        "digits": w.digits,
        "main_cid": w.main_cid,
        "timer_cid": w.timer_cid,
        "listen_cid": w.listen_cid,
        "until": w.until,
    }
    d.update(changes)
    return Wait(**d)


class _Abort(Exception):
    """Internal: a runtime error while executing a step."""

    def __init__(self, message: str, span: ir.Span | None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


@dataclass
class _MFrame:
    subflow: str | None
    state: str
    variables: dict[str, Any]
    stack: list[Cursor]
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    entry: int = 0


def _skey(step: Any) -> str:
    s: ir.Span = step.span
    return f"{s.file}:{s.line}:{s.col}"

"""A call's checkpoint: what another worker needs to re-enter the call's current state.

The checkpoint is the main flow's frame (state name, variables, retry counters), the call's
metadata and webhook keys, and the hash of the flow version the call is pinned to. Inside
subflows it also holds each subflow frame and its caller's cursor stack
(:mod:`voxflow.runtime.callstack`): resuming re-enters the innermost subflow state, and its
``return`` goes back into the caller. When a caller's stack cannot be written down, the
checkpoint keeps the main-flow state that called the subflow (which then starts again).
:func:`resume_state` turns a checkpoint back into a :class:`~voxflow.runtime.runstate.RunState`
whose ``Start`` event re-enters the state (its prompt plays again; nothing before it repeats).

:class:`CallStore` is where a :class:`~voxflow.runtime.server.FlowServer` keeps its calls'
checkpoints (``voxflow.cluster`` implements it over Redis); without one nothing is stored but
the checkpoints of calls that ended ``unknown`` (:class:`AwayCalls`, kept in memory).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

import msgspec

from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.callstack import decode, decode_stack, encode, resolve
from voxflow.runtime.expressions import UNSET
from voxflow.runtime.runstate import Frame, RunState, Wait
from voxflow.runtime.trips import TRIP_TAGS, trip_event, trip_of
from voxflow.runtime.webhooks import WebhookSender

__all__ = [
    "AwayCalls",
    "CallStore",
    "Checkpoint",
    "Ending",
    "checkpoint_of",
    "ended_state",
    "ending_checkpoint",
    "flow_hash",
    "resume_state",
    "resume_trip",
]


_ENCODE = msgspec.json.Encoder().encode


def flow_hash(flow: Flow) -> str:
    """The sha256 (hex) of the compiled flow's JSON: the flow version's content address."""
    return hashlib.sha256(flow.model_dump_json().encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The resumable part of one call's state (JSON-serialisable values only)."""

    flow_hash: str
    state: str
    variables: dict[str, Any]
    counts: tuple[tuple[str, str, int], ...] = ()
    attempts: tuple[tuple[str, int], ...] = ()
    metadata: dict[str, Any] | None = None
    webhook_keys: tuple[str, ...] = ()
    agent: tuple[tuple[str, str], ...] = ()
    """The call's agent conversation so far (``(role, text)``, bounded:
    :mod:`voxflow.runtime.agent_memory`)."""
    calls: tuple[dict[str, Any], ...] = ()
    """The subflow frames, outermost first (:func:`voxflow.runtime.callstack.encode`)."""
    entry: int = 0
    """The state-entry sequence number of ``state``: the resumed call re-enters it with the
    same number, so its ``state.entered`` webhook and HTTP steps repeat their idempotency keys."""
    call: tuple[str, ...] = ()
    """The call's (caller, called number, direction), () when unknown: what ``call.*`` shows
    to an ``on hangup`` body run after the call's channel ended while no worker served it
    (:func:`ended_state`)."""
    trip: dict[str, Any] | None = None
    """The ``queue`` or ``transfer`` step the call is out in the dialplan for
    (:mod:`voxflow.runtime.trips`), None when it is not out: :func:`resume_trip`."""
    queue_prio: str | None = None
    """The ``QUEUE_PRIO`` the call had before a queue step's ``priority`` first set it ("":
    unset); None: voxflow has not set it (``CallSession.queue_prio_before``)."""

    def to_json(self) -> str:
        """The checkpoint as JSON (msgspec: ~10x faster than ``json.dumps`` here); raises
        ``TypeError`` for a value JSON lacks (a NaN or an infinity, which only an HTTP step's
        JSON can give, is written as null)."""
        return _ENCODE(
            {  # tuples are JSON arrays as they are
                "flow_hash": self.flow_hash,
                "state": self.state,
                "variables": self.variables,
                "counts": self.counts,
                "attempts": self.attempts,
                "metadata": self.metadata or {},
                "webhook_keys": self.webhook_keys,
                "entry": self.entry,
                "agent": self.agent,
                "calls": self.calls,
                "call": self.call,
                "trip": self.trip,
                "queue_prio": self.queue_prio,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Parse :meth:`to_json`'s output; raises ``ValueError`` when it is not one."""
        try:
            d = json.loads(text)
            return cls(
                flow_hash=str(d["flow_hash"]),
                state=str(d["state"]),
                variables=dict(d["variables"]),
                counts=tuple((str(a), str(b), int(n)) for a, b, n in d["counts"]),
                attempts=tuple((str(k), int(n)) for k, n in d["attempts"]),
                metadata=dict(d["metadata"]),
                webhook_keys=tuple(str(k) for k in d["webhook_keys"]),
                entry=int(d.get("entry", 0)),
                agent=tuple((str(r), str(t)) for r, t in d.get("agent", ())),
                calls=tuple(dict(c) for c in d.get("calls", ())),
                call=_call_info(d.get("call")),
                trip=dict(d["trip"]) if d.get("trip") else None,
                queue_prio=None if d.get("queue_prio") is None else str(d["queue_prio"]),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None


@dataclass(frozen=True, slots=True)
class Ending:
    """What the worker holding a call's end claim recorded of that end (cluster mode), for a
    worker taking the claim over after it died: ``end`` (outcome, reason) as that worker
    decided it (None: not recorded), and ``done``: the results of the ``on hangup`` body's
    HTTP steps it completed, by ``Idempotency-Key`` (the body run again takes them instead
    of sending the requests again)."""

    end: tuple[str, str] | None = None
    done: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    at: Checkpoint | None = None
    """Where the call was when its end started (:func:`ending_checkpoint`): the state whose
    ``on hangup`` body runs, its variables and entry number (the body's keys)."""


def checkpoint_of(
    state: RunState,
    fhash: str,
    agent: tuple[tuple[str, str], ...] = (),
    flow: Flow | None = None,
    queue_prio: str | None = None,
) -> Checkpoint | None:
    """The checkpoint of a running call (None before its start, after its end, or while its
    hang-up handler runs: there is nothing left to resume then); ``agent``: its agent's
    conversation; ``flow`` (the call's version): to keep its subflow frames; ``queue_prio``:
    :attr:`Checkpoint.queue_prio`."""
    if state.status != "running" or not state.frames:
        return None
    main = state.frames[0]
    return Checkpoint(
        flow_hash=fhash,
        state=main.state,
        variables={k: v for k, v in main.variables.items() if v is not UNSET},
        counts=tuple((a, b, n) for (a, b), n in main.counts.items()),
        attempts=tuple(main.attempts.items()),
        metadata=dict(state.metadata),
        webhook_keys=tuple(sorted(state.webhook_keys)),
        entry=main.entry,
        agent=agent,
        calls=(encode(flow, state.frames) or ())
        if flow is not None and len(state.frames) > 1
        else (),
        call=(state.call.caller, state.call.called, state.call.direction),
        trip=trip_of(flow, state),
        queue_prio=queue_prio,
    )


def ending_checkpoint(state: RunState, fhash: str) -> Checkpoint | None:
    """The checkpoint of a call whose end has started (its ``on hangup`` body runs, or it
    ended): its main flow's state, variables and entry number as they were then (the last
    running checkpoint may be a state behind: one whose step ended the call in the same
    step); None before its start."""
    if state.status == "new":
        return None
    return checkpoint_of(replace(state, status="running"), fhash)


def _call_info(raw: Any) -> tuple[str, ...]:
    """A checkpoint's ``call`` field: (caller, called, direction), () when absent (a checkpoint
    of an older version); raises ``TypeError``/``ValueError`` when malformed."""
    if not raw:
        return ()
    caller, called, direction = raw
    return (str(caller), str(called), str(direction))


def resume_state(flow: Flow, state: RunState, cp: Checkpoint) -> RunState:
    """``state`` (a call before its start) set to resume at ``cp``: its ``Start`` event
    re-enters ``cp.state`` with the checkpoint's variables and retry counters. Raises
    ``ValueError`` when the flow has no such state."""
    if cp.state not in flow.states:
        raise ValueError(f"flow '{flow.name}' has no state '{cp.state}' to resume")
    variables: dict[str, Any] = {d.name: UNSET for d in flow.variables}
    variables.update(cp.variables)
    frame = Frame(
        None,
        cp.state,
        MappingProxyType(variables),
        (),
        MappingProxyType({(a, b): n for a, b, n in cp.counts}),
        MappingProxyType(dict(cp.attempts)),
        cp.entry,
    )
    frames: tuple[Frame, ...] = (frame,)
    if cp.calls:
        try:
            frames = decode(flow, frame, cp.calls)
        except (LookupError, TypeError, ValueError):  # not this version's: the main-flow state
            frames = (frame,)
    return replace(
        state,
        frames=frames,
        metadata=MappingProxyType({**state.metadata, **(cp.metadata or {})}),
        webhook_keys=frozenset(cp.webhook_keys) | state.webhook_keys,
        entries=max(0, frames[-1].entry - 1),  # re-entering the state gives its number again
    )


def resume_trip(
    flow: Flow, state: RunState, cp: Checkpoint, args: Sequence[str], now: float
) -> tuple[RunState, ev.Event | ev.Queue] | None:
    """``state`` (a call before its start) put back at the ``queue``/``transfer`` step whose
    trip ``cp`` records, waiting on it, and the event that step gets for the Stasis arguments
    ``args`` the dialplan sent the call back with, or the ``Queue`` op that queues the caller
    again (:func:`voxflow.runtime.trips.trip_event`);
    a trip inside a subflow goes on in its frame (the checkpoint's ``calls``). None when ``cp``
    records no trip for that tag, or the flow lacks its step or frames."""
    trip = cp.trip
    if not trip or not args or TRIP_TAGS.get(str(trip.get("op"))) != args[0]:
        return None
    try:
        resumed = resume_state(flow, state, cp)
        stack = decode_stack(flow, list(trip["stack"]))
        step = resolve(flow, list(trip["step"]))
    except (LookupError, TypeError, ValueError):
        return None
    if getattr(step, "op", None) != trip["op"] or len(resumed.frames) != trip.get("depth", 1):
        return None  # e.g. its subflow frames are not this version's
    top = replace(resumed.frames[-1], stack=stack)
    frames = (*resumed.frames[:-1], top)
    info = state.call  # its dialled number is the dialplan's now: the checkpoint's is the call's
    if len(cp.call) == 3:
        info = replace(info, caller=cp.call[0], called=cp.call[1])
    cid = state.seq + 1
    end = trip.get("until")  # kept: a worker taking the call over again queues for what is left
    until = float(end) if isinstance(end, int | float) else None
    wait = Wait("op", step, frozenset({cid}), digits=str(trip.get("endpoint", "")), until=until)
    back = replace(
        resumed,
        call=info,
        frames=frames,
        wait=wait,
        seq=cid,
        status="running",
        entries=top.entry,
    )
    return back, trip_event(trip, cid, args, now, step)


def ended_state(
    flow: Flow, state: RunState, cp: Checkpoint, end: tuple[str, str] | None = None
) -> RunState:
    """``state`` (a call before its start) put where ``cp`` left the call, running, without
    re-entering that state: a hang-up event then runs the state's ``on hangup`` body, with the
    entry number it had (its HTTP steps get the keys its worker would have given them). For a
    call whose channel ended while no worker served it. ``end``: the (outcome, reason) its
    worker had decided (:class:`Ending`): the call ends with it, not ``caller_hangup``. Raises
    ``ValueError`` like :func:`resume_state`."""
    resumed = resume_state(flow, state, cp)
    info = state.call
    if len(cp.call) == 3:
        caller, called, direction = cp.call
        out = direction == "outbound"
        info = replace(
            info, caller=caller, called=called, direction="outbound" if out else "inbound"
        )
    entries = resumed.frames[-1].entry
    return replace(resumed, status="running", entries=entries, call=info, end=end)


class AwayCalls(Protocol):
    """The calls that ended ``unknown`` (sent to the dialplan's queue or transfer, and no word
    from Asterisk since: per-call websockets), each kept with the checkpoint of the trip it
    left on, for a bounded time (``[run] away_ttl``), in case the caller comes back (a queue's
    ``CONTINUE`` once the agent hung up): the flow then goes on at that step. In Redis for a
    cluster (``voxflow.cluster.away``), else in the process's memory
    (:class:`voxflow.runtime.away.LocalAwayCalls`)."""

    async def keep_away(self, call_id: str, at: Checkpoint, flow: Flow) -> None:
        """The call ended ``unknown`` while out on the trip ``at`` records (``at.trip``) on
        flow version ``flow``: keep them for :meth:`come_back`. Never raises."""
        ...

    async def come_back(self, call_id: str) -> tuple[Checkpoint, Flow] | None:
        """The call came back from the dialplan: its kept checkpoint and flow version, taken
        (a second return finds nothing); None when none is kept (never kept, expired, or
        unreadable). A store that claims ends releases the call's end claim: the resumed
        call ends again. Never raises."""
        ...


class CallStore(Protocol):
    """Where a FlowServer keeps its calls' registry entries and checkpoints."""

    async def begin(
        self, call_id: str, flow: Flow, fhash: str
    ) -> tuple[Checkpoint | None, str | None]:
        """A call of ``flow`` (hash ``fhash``) starts on this worker: the flow version is
        published for the other workers and the call registered. Returns the call's checkpoint
        when it was already running elsewhere (it resumes), else None; and the hash of the
        cluster's current version of the flow (None: none released)."""
        ...

    async def checkpoint(self, call_id: str) -> Checkpoint | None:
        """The call's stored checkpoint (None: none, or the store did not answer)."""
        ...

    async def moved(self, call_id: str) -> bool:
        """True when the store names another worker for the call (it adopted it)."""
        ...

    async def moved_among(self, call_ids: Sequence[str]) -> set[str]:
        """The calls of ``call_ids`` the store names another worker for, in one read."""
        ...

    @property
    def away(self) -> AwayCalls:
        """The calls that ended ``unknown``, kept for their return (cluster-wide)."""
        ...

    def let_go(self, call_id: str, *, pending: bool = True) -> None:
        """This worker no longer drives the call; its entry and checkpoint stay in the store
        (``pending``: its queued checkpoint is still written)."""
        ...

    async def flow(self, fhash: str) -> Flow | None:
        """The flow version with hash ``fhash`` (a resumed call's pinned version), or None."""
        ...

    async def prefetch(self, call_ids: Sequence[str]) -> None:
        """Calls about to be adopted (a dead worker's): read their checkpoints and end claims
        at once, so that their :meth:`begin` and :meth:`end_claimed_elsewhere` need not wait
        for the store. Never raises."""
        ...

    async def released(self) -> Mapping[str, tuple[str, Flow]]:
        """The cluster's released flows (name -> (hash, flow)): new calls are routed by them."""
        ...

    def save(self, call_id: str, cp: Checkpoint) -> None:
        """Store ``cp`` (in the background, latest wins; never raises)."""

    async def flush(self) -> None:
        """Write the checkpoints saved so far now (a worker handing its calls over)."""
        ...

    async def claim_end(
        self,
        call_id: str,
        webhook: tuple[str, bytes] | None = None,
        end: tuple[str, str] | None = None,
        at: Checkpoint | None = None,
    ) -> bool:
        """Claim the call's end (``on hangup`` body, end-of-call webhook, outcome) for this
        worker: False when another worker already ended it (the call ends once, cluster-wide).
        ``webhook`` (Idempotency-Key, body): the call's ``call.ended``, kept pending with the
        claim until delivered (a worker dying before sending it does not lose it); ``end``:
        the call's (outcome, reason) and ``at`` (:func:`ending_checkpoint`), recorded with the
        claim (:class:`Ending`)."""
        ...

    async def record_effect(self, call_id: str, key: str, result: Mapping[str, Any]) -> None:
        """The ``on hangup`` body's HTTP step ``key`` completed with ``result`` (this worker
        holds the call's end claim): recorded with the claim before the body goes on. Never
        raises."""

    async def ending(self, call_id: str) -> Ending:
        """What the end claim's holder recorded (:meth:`claim_end`, :meth:`record_effect`);
        an empty :class:`Ending` when nothing (or Redis does not answer)."""
        ...

    async def end_claimed_elsewhere(self, call_id: str) -> bool:
        """True when another worker has claimed the call's end (a call adopted from a worker
        that died between claiming its end and hanging it up: it is not resumed)."""
        ...

    async def take_dead_claim(self, call_id: str) -> bool:
        """Take the call's end claim over from a dead worker (one worker wins): True when this
        worker holds it now (the dead worker's end is run again here)."""
        ...

    def attach_webhooks(self, sender: WebhookSender) -> None:
        """Send pending end-of-call webhooks of dead workers with ``sender``; ``sender`` keeps
        this worker's pending in the store until delivered."""

    async def end(self, call_id: str, outcome: str) -> bool:
        """The call ended: drop its checkpoint and registry entry. True for the one worker
        that removed them (the call's end is counted once across the cluster)."""
        ...

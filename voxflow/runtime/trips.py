"""A call out in the shipped dialplan (a ``queue`` or ``transfer`` step's trip), in its
checkpoint: the step and its frame's cursor stack as paths into the pinned flow version.

A worker that dies while its call waits in ``Queue()`` or in a transfer's ``Dial()`` leaves the
call outside Stasis; the dialplan later sends it back (``Stasis(app,queue-return,STATUS,...)``,
``Stasis(app,transfer-return,STATUS)``) to whichever worker serves the application then. That
worker puts the call back at the step (:func:`voxflow.runtime.checkpoint.resume_trip`) and
feeds it the event the dead worker's op would have: the queue's outcome for ``QUEUESTATUS``,
the transfer's failure with its ``DIALSTATUS``; a digit the queue step does not list puts the
caller back in the queue at its place for the time left, as the dead worker would have
(:func:`queue_step_result` decides for both). A trip inside a subflow is written with the
innermost frame's stack (the frames themselves are the checkpoint's ``calls``): the call goes on
in the subflow, then returns to its caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voxflow.ir.models import Flow, QueueStep
from voxflow.runtime import events as ev
from voxflow.runtime.callstack import encode_stack, path_of
from voxflow.runtime.runstate import RunState
from voxflow.spec.semantics import EXIT_WITH_KEY, queue_outcome
from voxflow.telephony.dialplan import QueueReturn

__all__ = ["TRIP_TAGS", "queue_result", "queue_step_result", "trip_event", "trip_of"]

TRIP_TAGS = {"queue": "queue-return", "transfer": "transfer-return"}
"""The step's op -> the first Stasis argument the shipped dialplan sends it back with."""


def trip_of(flow: Flow | None, state: RunState) -> dict[str, Any] | None:
    """The trip ``state`` waits on (a ``queue`` or ``transfer`` step's op), as JSON values:
    ``op``, ``step`` (its path), ``stack`` (the innermost frame's cursors), ``endpoint`` (a
    transfer's rendered target, a queue's rendered name), ``depth`` (its frames, the main one
    included), ``until`` (a queue step's end, clock seconds), ``priority`` (a queue step's);
    None when it waits on none, or it cannot be written. ``step`` is the IR's step, also for
    a step whose options (``timeout``, ``priority``) were computed when it started."""
    w = state.wait
    if flow is None or w is None or w.kind != "op" or not state.frames:
        return None
    op = getattr(w.step, "op", None)
    if op not in TRIP_TAGS:
        return None
    frame = state.frames[-1]
    step = path_of(flow, w.step)
    if step is None and frame.stack:  # a copy with options computed when it started
        cur = frame.stack[-1]  # the step it waits on, as the IR has it
        if cur.index < len(cur.block) and getattr(cur.block[cur.index], "op", None) == op:
            step = path_of(flow, cur.block[cur.index])
    stack = encode_stack(flow, frame.stack)
    if step is None or stack is None:
        return None
    trip: dict[str, Any] = {
        "op": op,
        "step": step,
        "stack": stack,
        "endpoint": w.digits,
        "depth": len(state.frames),
    }
    if w.until is not None:
        trip["until"] = w.until
    if isinstance(w.step, QueueStep) and w.step.priority is not None:
        trip["priority"] = w.step.priority  # its value then (it may be computed)
    return trip


def queue_result(back: QueueReturn, keys: Sequence[str]) -> dict[str, Any]:
    """A queue step's result (:class:`voxflow.runtime.events.Queue`) for how ``Queue()`` let
    the call go: ``choice:<key>`` for one of the step's exit ``keys``, else the outcome of its
    QUEUESTATUS (``failed`` for a key the step does not list)."""
    exit_key = back.status == EXIT_WITH_KEY and back.key in keys
    return {
        "outcome": f"choice:{back.key}" if exit_key else queue_outcome(back.status),
        "status": back.status,
        "position": back.position,
        "wait": back.wait,
        "key": back.key or None,
    }


def queue_step_result(back: QueueReturn, keys: Sequence[str], left: float) -> dict[str, Any] | None:
    """How a queue step ends once ``Queue()`` let the call go as ``back``, with ``left`` seconds
    of its timeout to go: its result (:func:`queue_result`), or None when the caller goes back
    in the queue at its place (a digit the queue's context let out that is not one of the
    step's ``keys``; ``timeout`` when less than a second is left: voxflow passes a timeout of
    0 as none, and Asterisk's is whole seconds). The worker that queued the call and one that
    took it over both decide here."""
    if back.status != EXIT_WITH_KEY or back.key in keys:
        return queue_result(back, keys)
    if left < 1:
        return {"outcome": "timeout", "status": "", "key": back.key}
    return None


def trip_event(
    trip: Mapping[str, Any], cid: int, args: Sequence[str], now: float, step: object = None
) -> ev.Event | ev.Queue:
    """What the trip's op gives the flow for the Stasis arguments ``args`` it came back with
    (the tag first) at ``now``: the queue's result (``step``: the queue step), or the
    ``Queue`` op that queues the caller again at its place for the time left (a digit the step
    does not list; ``until`` not written: the step's whole timeout; the queue's name not
    written, by an older version: ``failed``), or the transfer's failure."""
    status = args[1] if len(args) > 1 else ""
    if trip["op"] == "queue":
        back = QueueReturn.from_args(args[1:])
        if not isinstance(step, QueueStep):
            return ev.OpDone(cid, queue_result(back, ()), now=now)
        keys = tuple(k for c in step.choices for k in c.keys)
        until = trip.get("until")
        left = float(until) - now if isinstance(until, int | float) else step.timeout_ms / 1000
        name = str(trip.get("endpoint", ""))  # "": a checkpoint without it (older versions)
        result = queue_step_result(back, keys, left) if name else queue_result(back, keys)
        if result is not None:
            return ev.OpDone(cid, result, now=now)
        prio = trip.get("priority", step.priority)
        return ev.Queue(
            cid, name, int(left * 1000), step.music, None,
            prio if isinstance(prio, int) else None, step.announce_position, (), keys,
            position=back.position,
        )  # fmt: skip
    target = str(trip.get("endpoint", ""))
    why = f"transfer to {target!r} failed: {status or 'not routed'}"
    return ev.OpFailed(cid, f"transfer failed: TransferFailedError: {why}", now=now)

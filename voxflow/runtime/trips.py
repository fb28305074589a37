"""A call out in the shipped dialplan (a ``queue`` or ``transfer`` step's trip), in its
checkpoint: the step and its frame's cursor stack as paths into the pinned flow version.

A worker that dies while its call waits in ``Queue()`` or in a transfer's ``Dial()`` leaves the
call outside Stasis; the dialplan later sends it back (``Stasis(app,queue-return,STATUS,...)``,
``Stasis(app,transfer-return,STATUS)``) to whichever worker serves the application then. That
worker puts the call back at the step (:func:`voxflow.runtime.checkpoint.resume_trip`) and
feeds it the event the dead worker's op would have: the queue's outcome for ``QUEUESTATUS``,
the transfer's failure with its ``DIALSTATUS``. A trip inside a subflow is written with the
innermost frame's stack (the frames themselves are the checkpoint's ``calls``): the call goes on
in the subflow, then returns to its caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.callstack import encode_stack, path_of
from voxflow.runtime.runstate import RunState
from voxflow.spec.semantics import EXIT_WITH_KEY, queue_outcome
from voxflow.telephony.dialplan import QueueReturn

__all__ = ["TRIP_TAGS", "queue_result", "trip_event", "trip_of"]

TRIP_TAGS = {"queue": "queue-return", "transfer": "transfer-return"}
"""The step's op -> the first Stasis argument the shipped dialplan sends it back with."""


def trip_of(flow: Flow | None, state: RunState) -> dict[str, Any] | None:
    """The trip ``state`` waits on (a ``queue`` or ``transfer`` step's op), as JSON values:
    ``op``, ``step`` (its path), ``stack`` (the innermost frame's cursors), ``endpoint`` (a
    transfer's rendered target), ``depth`` (its frames, the main one included); None when it
    waits on none, or it cannot be written."""
    w = state.wait
    if flow is None or w is None or w.kind != "op" or not state.frames:
        return None
    op = getattr(w.step, "op", None)
    if op not in TRIP_TAGS:
        return None
    step = path_of(flow, w.step)
    stack = encode_stack(flow, state.frames[-1].stack)
    if step is None or stack is None:
        return None
    return {
        "op": op,
        "step": step,
        "stack": stack,
        "endpoint": w.digits,
        "depth": len(state.frames),
    }


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


def trip_event(
    trip: Mapping[str, Any], cid: int, args: Sequence[str], now: float, keys: Sequence[str] = ()
) -> ev.Event:
    """What the trip's op gives the flow for the Stasis arguments ``args`` it came back with
    (the tag first): the queue's result (``keys``: the step's exit keys; a worker that takes
    over cannot queue the caller again for another digit: ``failed``), or the transfer's
    failure."""
    status = args[1] if len(args) > 1 else ""
    if trip["op"] == "queue":
        return ev.OpDone(cid, queue_result(QueueReturn.from_args(args[1:]), keys), now=now)
    target = str(trip.get("endpoint", ""))
    why = f"transfer to {target!r} failed: {status or 'not routed'}"
    return ev.OpFailed(cid, f"transfer failed: TransferFailedError: {why}", now=now)

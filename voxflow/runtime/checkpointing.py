"""A served call's checkpoints: built after its steps (cluster mode: saved in the store, so
that another worker resumes it), and the one of the trip it is out on, which a call that ends
``unknown`` leaves behind for its return (:class:`~voxflow.runtime.checkpoint.AwayCalls`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from voxflow.errors import AiNotConfiguredError
from voxflow.ir.models import Flow
from voxflow.runtime.agent_memory import conversation, restore
from voxflow.runtime.checkpoint import CallStore, Checkpoint, checkpoint_of
from voxflow.runtime.driver import CallDriver, TranscriptLine
from voxflow.runtime.runstate import RunState
from voxflow.runtime.trips import TRIP_TAGS
from voxflow.telephony.session import CallSession

__all__ = ["agent_checkpoints", "checkpointer", "kept_for_return", "on_trip", "restore_agent"]

log = logging.getLogger("voxflow.runtime.server")  # its messages, as operators know them


def checkpointer(
    store: CallStore | None,
    sid: str,
    fhash: str,
    session: CallSession,
    running: list[CallDriver[CallSession]],
    trip: list[Checkpoint | None],
) -> Callable[[RunState], None]:
    """The driver's ``after_step`` for call ``sid`` on flow version ``fhash``: a new
    checkpoint whenever it changed (with the agent's conversation once an agent step ran),
    saved in ``store`` (cluster mode); ``trip[0]`` is the latest while the call is out on a
    trip (kept if it ends ``unknown``), None once it is back. Without a store only a trip's is
    built. A step that left the (immutable) run state as it was builds nothing, unless the
    call's QUEUE_PRIO of before was read meanwhile (the session calls it then: a queue step's
    trip is checkpointed before the step reads it)."""
    last: list[Checkpoint | None] = [None]
    seen: list[RunState | None] = [None]

    def save(state: RunState) -> None:
        if store is None and not on_trip(state):
            if state.status == "running":
                trip[0] = None  # back from its trip (or never out)
            return
        agent: tuple[tuple[str, str], ...] = ()
        prio = session.queue_prio_before
        if running and running[0].agent_used:
            with contextlib.suppress(AiNotConfiguredError):
                agent = conversation(session.agent)
        elif state is seen[0] and (last[0] is None or last[0].queue_prio == prio):
            return
        seen[0] = state
        flow = running[0].flow if running else None  # the call's pinned version
        cp = checkpoint_of(state, fhash, agent, flow, prio)
        if cp is not None:
            trip[0] = cp if cp.trip is not None else None
        if cp is not None and cp != last[0]:
            last[0] = cp
            if store is not None:
                store.save(sid, cp)

    session.on_queue_prio = lambda: save(running[0].state) if running else None
    return save


def on_trip(state: RunState) -> bool:
    """The call waits on a ``queue`` or ``transfer`` step's op (out in the dialplan)."""
    w = state.wait
    return w is not None and w.kind == "op" and getattr(w.step, "op", None) in TRIP_TAGS


def kept_for_return(
    driver: CallDriver[CallSession], at: Checkpoint | None
) -> tuple[Checkpoint, Flow] | None:
    """What a call ending now keeps for its return: its trip's checkpoint ``at`` and its flow
    version (None when it has none, or another worker ended it)."""
    return None if at is None or driver.ended_elsewhere else (at, driver.flow)


def agent_checkpoints(
    sink: Callable[[TranscriptLine], None] | None,
    save: Callable[[RunState], None],
    running: list[CallDriver[CallSession]],
) -> Callable[[TranscriptLine], None]:
    """A transcript sink that also checkpoints after each line of an agent conversation (it
    grows without a step; the save runs on the next loop turn, once the agent has added the
    line to its history)."""
    loop = asyncio.get_running_loop()

    def on_line(line: TranscriptLine) -> None:
        if sink is not None:
            sink(line)
        if running and running[0].agent_used and line[1] != "system":
            loop.call_soon(lambda: save(running[0].state) if running else None)  # not ended

    return on_line


def restore_agent(session: CallSession, cp: Checkpoint) -> None:
    """Give a resumed call's agent the conversation of its checkpoint."""
    if not cp.agent:
        return
    try:
        restore(session.agent, cp.agent)
    except AiNotConfiguredError:
        log.warning("call %s: no LLM here: its agent conversation is not resumed", session.id)

"""A worker's pacer and garbage collection, as ``[media] pacer`` and ``[media] gc`` select them.

``pacer``: ``thread`` (:class:`~voxflow.media.pacer_thread.ThreadPacer`, the 20 ms ticks on a
thread of their own: a long event-loop iteration no longer delays a tick) or ``loop`` (the asyncio
:class:`~voxflow.media.pacer.Pacer`, a task on the event loop). ``gc``: ``slack``
(:class:`~voxflow.media.gc_slack.SlackCollector`: collections after a tick's sends, in the time
left before the next one), ``freeze`` (:class:`~voxflow.media.gc_freeze.FreezingCollector`: the
same for generation 0, freezing what survived where it would traverse an older generation),
``sized`` (:class:`~voxflow.media.gc_sized.SizedCollector`: the slack collector with young
collections predicted from the objects they will traverse), ``sized-freeze``
(:class:`~voxflow.media.gc_freeze.SizedFreezingCollector`: ``freeze`` with ``sized``'s
predictions) or ``python`` (Python's own collector, whenever it decides).
:func:`worker_pacing` installs them on the running loop for a worker's life (after
``gc.freeze()``: what was loaded before serving lives as long as the process) and stops them with
it: the pacer's thread is joined, Python's collector is handed its timing back.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voxflow.errors import MediaError
from voxflow.media.gc_freeze import FreezingCollector, SizedFreezingCollector
from voxflow.media.gc_sized import SizedCollector
from voxflow.media.gc_slack import SlackCollector
from voxflow.media.pacer import Pacer, install_pacer
from voxflow.media.pacer_thread import ThreadPacer

__all__ = ["GC_MODES", "PACERS", "make_pacer", "worker_pacing"]

PACERS = ("thread", "loop")
"""``[media] pacer`` values; the first is the default."""
GC_MODES = ("slack", "python", "freeze", "sized", "sized-freeze")
"""``[media] gc`` values; the first is the default."""


def make_pacer(pacer: str = PACERS[0], gc_mode: str = GC_MODES[0]) -> Pacer:
    """A pacer of kind ``pacer`` with garbage collection ``gc_mode`` (``MediaError`` for a value
    not in :data:`PACERS` / :data:`GC_MODES`)."""
    if pacer not in PACERS:
        raise MediaError(f"pacer must be one of {', '.join(PACERS)}, got {pacer!r}")
    if gc_mode not in GC_MODES:
        raise MediaError(f"gc must be one of {', '.join(GC_MODES)}, got {gc_mode!r}")
    made = ThreadPacer() if pacer == "thread" else Pacer()
    if gc_mode == "slack":
        made.collector = SlackCollector()
    elif gc_mode == "freeze":
        made.collector = FreezingCollector()
    elif gc_mode == "sized":
        made.collector = SizedCollector()
    elif gc_mode == "sized-freeze":
        made.collector = SizedFreezingCollector()
    return made


@asynccontextmanager
async def worker_pacing(pacer: str = PACERS[0], gc_mode: str = GC_MODES[0]) -> AsyncIterator[Pacer]:
    """``gc.freeze()``, then the running loop's shared pacer is ``make_pacer(pacer, gc_mode)``
    until the block ends; then every stream is forgotten, the pacer's thread (if any) joined,
    automatic garbage collection is as it was and the frozen objects are thawed."""
    made = make_pacer(pacer, gc_mode)
    gc.freeze()
    was_enabled = gc.isenabled()
    install_pacer(made)
    try:
        yield made
    finally:
        await made.aclose()
        if made.collector is not None:
            made.collector.active(False)
        if was_enabled:
            gc.enable()
        gc.unfreeze()
        install_pacer(Pacer())

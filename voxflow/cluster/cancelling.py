"""A cancellation that redis-py swallowed, raised after the command.

redis-py's asyncio client sends each command under ``asyncio.wait_for`` (its socket timeout).
On Python 3.11, ``wait_for`` returns its inner task's result when a cancellation reaches it
once that task is done but before ``wait_for`` has resumed (a window of two loop passes; fixed
in 3.12): the cancellation is lost, and a loop around Redis commands (a standby waiting for its
application name, polling every 50 ms) goes on for ever. It happened to ~1 in 75 standbys
cancelled at a random moment. The task still counts the cancellation
(:meth:`asyncio.Task.cancelling`): :func:`honour_cancel` raises it when the command returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["honour_cancel"]

T = TypeVar("T")


async def honour_cancel(aw: Awaitable[T]) -> T:
    """``await aw``; :class:`asyncio.CancelledError` instead of its result (or its error) when
    this task was cancelled meanwhile and ``aw`` swallowed the cancellation."""
    task = asyncio.current_task()
    asked = 0 if task is None else task.cancelling()
    try:
        result = await aw
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        _raise_if_swallowed(task, asked, exc)
        raise
    _raise_if_swallowed(task, asked)
    return result


def _raise_if_swallowed(
    task: asyncio.Task[object] | None, asked: int, exc: BaseException | None = None
) -> None:
    if task is not None and task.cancelling() > asked:
        raise asyncio.CancelledError("cancelled during a Redis command") from exc

"""A task whose first step runs at once, in the caller's own callback (Python 3.11).

``loop.create_task(coro)`` runs nothing of ``coro`` until the loop's next pass: at 500 calls that
is every other call's ready work later. :func:`start_eagerly` runs the first step (up to the
coroutine's first real suspension) synchronously, as Python 3.12's eager task factory does for
every task, and returns a task that goes on from there. As there: the step runs in the task's
own copy of the context, ``asyncio.current_task()`` is the new task meanwhile, and an exception
or result of the first step is the task's (it never reaches the caller). A coroutine that
finishes in its first step still leaves a task that is done one pass later (3.12's would be
done at once); a task cancelled before its own first step passes the cancellation to the
coroutine where it waits, as a cancelled waiting task does.
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine, Generator
from types import CodeType, FrameType, TracebackType
from typing import Generic, NoReturn, TypeVar

__all__ = ["start_eagerly"]

T = TypeVar("T")


def start_eagerly(
    coro: Coroutine[object, None, T],
    register: Callable[[asyncio.Task[T]], None] | None = None,
) -> asyncio.Task[T]:
    """A task running ``coro``, its first step already run; ``register(task)`` is called
    before that step (so a coroutine that looks its task up, or ends in that step, finds it)."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    resumed = _Resumed(coro)
    task: asyncio.Task[T] = loop.create_task(resumed, context=context)
    try:
        if register is not None:
            register(task)
        context.run(resumed.first_step, loop, task)
        return task
    finally:
        # an exception of the first step keeps this frame (its frames' ``f_back``): without
        # the task in it, the task that keeps the exception is no reference cycle
        del task, resumed, context


class _Resumed(Coroutine[object, None, T], Generic[T]):
    """``coro`` with its first step run by :meth:`first_step`: the task's own first step takes
    what that one yielded (or its outcome), then every send and throw go to ``coro``."""

    __slots__ = ("_coro", "_error", "_finished", "_pending", "_taken", "_value")

    def __init__(self, coro: Coroutine[object, None, T]) -> None:
        self._coro = coro
        self._taken = False  # the task took the first step's outcome
        self._finished = False
        self._pending: object = None
        self._value: T | None = None
        self._error: BaseException | None = None

    def first_step(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[T]) -> None:
        """Run ``coro`` up to its first suspension with ``task`` as the current task."""
        current = asyncio.current_task(loop)
        if current is not None:
            _leave_task(loop, current)
        _enter_task(loop, task)
        try:
            self._pending = self._coro.send(None)
        except StopIteration as stop:
            self._finished, self._value = True, stop.value
        except (KeyboardInterrupt, SystemExit) as exc:  # as a task step: kept, and raised
            self._finished, self._error = True, exc
            raise
        except BaseException as exc:  # the task's outcome (CancelledError included)
            self._finished, self._error = True, exc
        finally:
            _leave_task(loop, task)
            if current is not None:
                _enter_task(loop, current)
            del task, current  # this frame is in the first step's exception (no cycle)

    def _outcome(self) -> NoReturn:
        error, self._error = self._error, None  # the task keeps it; no cycle through us
        value, self._value = self._value, None
        try:
            if error is not None:
                raise error
            raise StopIteration(value)
        finally:
            del error, value  # this frame is in the exception's traceback (no cycle)

    def send(self, value: None) -> object:
        if not self._taken:
            self._taken = True
            if self._finished:
                self._outcome()
            pending, self._pending = self._pending, None  # the task's now (kept: a cycle)
            return pending  # the future the first step waits on: the task waits on it
        return self._coro.send(value)

    def throw(
        self,
        typ: type[BaseException] | BaseException,
        val: object = None,
        tb: TracebackType | None = None,
        /,
    ) -> object:
        try:
            if not self._taken:
                self._taken = True
                if self._finished:
                    self._outcome()
                pending, self._pending = self._pending, None
                cancelled = isinstance(typ, asyncio.CancelledError) or (
                    isinstance(typ, type) and issubclass(typ, asyncio.CancelledError)
                )
                if cancelled and asyncio.isfuture(pending):
                    pending.cancel()  # as Task.cancel() does to the future a task waits on
                del pending
            if val is None and tb is None:
                return self._coro.throw(typ)
            return self._coro.throw(typ, val, tb)  # type: ignore[arg-type]  # forwarded as given
        finally:
            # this frame is in the traceback of what the coroutine raises: holding the
            # exception thrown in would make a reference cycle of every cancelled op
            del typ, val, tb

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[object, None, T]:
        raise TypeError("start_eagerly's coroutine is run by its task only")

    @property
    def cr_code(self) -> CodeType | None:
        """The wrapped coroutine's code (task reprs and stack dumps name it)."""
        return getattr(self._coro, "cr_code", None)

    @property
    def cr_frame(self) -> FrameType | None:
        """The wrapped coroutine's frame (``Task.get_stack``)."""
        return getattr(self._coro, "cr_frame", None)

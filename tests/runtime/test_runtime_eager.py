"""start_eagerly: a task whose first step runs in the caller's callback (Python 3.12's eager
tasks, by hand on 3.11): what runs when, the current task, the context, outcomes, cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import gc

import pytest

from voxflow.eager import start_eagerly

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="caller's")


async def test_the_first_step_runs_at_once_and_the_rest_in_the_task() -> None:
    seen: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def op() -> int:
        seen.append("first step")
        got = await gate
        seen.append("after the wait")
        return got * 2

    task = start_eagerly(op())
    assert seen == ["first step"]  # before the loop ran anything
    gate.set_result(21)
    assert await task == 42
    assert seen == ["first step", "after the wait"]


async def test_the_first_step_runs_as_the_task_in_its_own_context() -> None:
    outer = asyncio.current_task()
    registered: list[asyncio.Task[str]] = []

    async def op() -> str:
        assert registered and asyncio.current_task() is registered[0]
        VAR.set("the task's")
        await asyncio.sleep(0)
        assert asyncio.current_task() is registered[0]
        return VAR.get()

    task = start_eagerly(op(), registered.append)
    assert asyncio.current_task() is outer  # given back after the first step
    assert VAR.get() == "caller's"  # the step set the task's copy only
    assert await task == "the task's"


async def test_a_first_step_that_ends_or_raises_is_the_tasks_outcome_not_the_callers() -> None:
    async def done() -> str:
        return "done"

    async def fails() -> None:
        raise ValueError("at once")

    ok, bad = start_eagerly(done()), start_eagerly(fails())  # nothing raised here
    assert await ok == "done"
    with pytest.raises(ValueError, match="at once"):
        await bad


async def test_cancelled_before_its_own_first_step_the_coroutine_is_cancelled_where_it_waits() -> (
    None
):
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def op() -> None:
        try:
            await gate
        finally:
            cleaned.append("finally ran")

    task = start_eagerly(op())
    task.cancel()  # in the same callback: the task itself has not run yet
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally ran"]
    assert gate.cancelled()  # as Task.cancel() cancels the future a task waits on


async def test_cancelled_and_failed_eager_tasks_are_freed_by_reference_counting() -> None:
    """A cancelled op, or one failing in its first step, keeps its exception: no frame of
    start_eagerly in its traceback may hold the task (a cycle per call's op at 500 calls)."""
    loop = asyncio.get_running_loop()

    async def waits(gate: asyncio.Future[None]) -> None:
        await gate

    async def fails_at_once() -> None:
        raise ValueError("at once")

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            task = start_eagerly(waits(loop.create_future()))
            await asyncio.sleep(0)  # the task waits on its gate
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            failed = start_eagerly(fails_at_once())
            with pytest.raises(ValueError, match="at once"):
                await failed
            del task, failed
        gc.collect()
        ours = [
            type(o).__qualname__
            for o in gc.garbage
            if type(o).__module__.startswith(("voxflow.", "asyncio", "_asyncio"))
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert ours == []

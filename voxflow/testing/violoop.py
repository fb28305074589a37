"""An asyncio loop with real I/O on a virtual clock, for end-to-end tests of whole calls.

:class:`VirtualIoLoop` is a selector event loop (real sockets: the sandbox's HTTP, websocket
and RTP, a provider's HTTP server, all in this process on 127.0.0.1) whose ``time()`` is
virtual. When no socket is ready and no outside work is running, ``select`` moves the clock to
the next timer instead of waiting: a 20 ms RTP tick, a 900 ms "quiet" wait or a provider's
2.5 s delay take no wall time, and still happen in the same order and at the same virtual
instants as on a real clock. Work outside the loop (``run_in_executor``, e.g. an STT decoder's
thread, subprocesses, and pipes read from one, e.g. espeak-ng's output) freezes the clock until
it finishes: a timeout can never fire because a thread or a process was slow.

Datagrams and stream bytes sent on the loopback interface are readable at once, so "nothing
ready" means the whole in-process system is waiting for time to pass. Code under test must read
time from the loop (``loop.time()``), not from ``time.monotonic()``.

:func:`run_virtual` runs a coroutine on a fresh loop, with the process-wide RTP pacer on the
loop's clock (``voxflow.media.pacer.install_pacer``).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

__all__ = ["VirtualIoLoop", "run_virtual"]

T = TypeVar("T")

_OUTSIDE_POLL = 0.005
"""While outside work runs, wait for it in real slices this long (the clock stays put)."""


class _Selector(selectors.DefaultSelector):
    """The real selector, except that waiting with nothing ready moves the virtual clock."""

    loop: VirtualIoLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        loop = self.loop
        if ready or timeout == 0 or loop is None:
            return ready
        if loop.outside:  # a thread or a subprocess is working: real time, frozen clock
            return super().select(_OUTSIDE_POLL if timeout is None else min(timeout, _OUTSIDE_POLL))
        if timeout is None:  # nothing scheduled: only another thread can wake us
            return super().select(None)
        loop.now += timeout
        loop.jumps += 1
        return []


class VirtualIoLoop(asyncio.SelectorEventLoop):
    """A selector loop whose clock jumps to the next timer when everything waits.

    ``now`` starts at the real monotonic clock (so code that mixes the two starts close);
    ``jumps`` counts the clock's jumps; ``outside`` the executor jobs and subprocesses running."""

    def __init__(self) -> None:
        selector = _Selector()
        super().__init__(selector)
        self.now = time.monotonic()
        self.jumps = 0
        self.outside = 0
        selector.loop = self

    def time(self) -> float:
        """Virtual monotonic seconds."""
        return self.now

    def _outside_done(self, _: object = None) -> None:
        self.outside -= 1

    def run_in_executor(  # type: ignore[override]  # same signature, typed loosely upstream
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """As the base loop; the clock stays put until the job is done."""
        fut = super().run_in_executor(executor, func, *args)
        self.outside += 1
        fut.add_done_callback(self._outside_done)
        return fut

    async def subprocess_exec(  # type: ignore[override]  # same signature, typed loosely upstream
        self, protocol_factory: Callable[[], asyncio.SubprocessProtocol], *args: Any, **kwargs: Any
    ) -> tuple[asyncio.SubprocessTransport, asyncio.SubprocessProtocol]:
        """As the base loop; the clock stays put until the process has exited."""
        self.outside += 1
        exited = False

        def factory() -> asyncio.SubprocessProtocol:
            protocol = protocol_factory()
            original = protocol.process_exited

            def process_exited() -> None:
                nonlocal exited
                if not exited:
                    exited = True
                    self._outside_done()
                original()

            protocol.process_exited = process_exited  # type: ignore[method-assign]  # count the exit
            return protocol

        try:
            return await super().subprocess_exec(factory, *args, **kwargs)
        except BaseException:
            if not exited:
                exited = True
                self._outside_done()
            raise

    async def connect_read_pipe(  # type: ignore[override]  # same signature, typed loosely upstream
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], pipe: Any
    ) -> tuple[asyncio.ReadTransport, asyncio.BaseProtocol]:
        """As the base loop; the clock stays put until the pipe ends (its writer, a process
        spawned with ``subprocess.Popen``, closed it or the reader closed the transport)."""
        self.outside += 1
        ended = False

        def factory() -> asyncio.BaseProtocol:
            protocol = protocol_factory()
            original = protocol.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                nonlocal ended
                if not ended:
                    ended = True
                    self._outside_done()
                original(exc)

            protocol.connection_lost = connection_lost  # type: ignore[method-assign]  # count the end
            return protocol

        try:
            return await super().connect_read_pipe(factory, pipe)
        except BaseException:
            if not ended:
                ended = True
                self._outside_done()
            raise


def run_virtual(main: Coroutine[Any, Any, T], *, debug: bool = False) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualIoLoop`, then close the loop."""
    from voxflow.media.pacer import Pacer, install_pacer

    loop = VirtualIoLoop()
    loop.set_debug(debug)

    async def with_pacer() -> T:
        install_pacer(Pacer(clock=loop.time, early=0.0))
        return await main

    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(with_pacer())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

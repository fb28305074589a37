"""An asyncio event loop on virtual time, for running real call code in flow tests.

:class:`VirtualTimeLoop` is a selector-less :class:`asyncio.BaseEventLoop` whose clock jumps
to the next scheduled callback instead of sleeping, so ``asyncio.sleep(30)``, ``wait_for`` and
``call_later`` cost nothing and always happen in the same order. It does no I/O. When nothing is
ready and nothing is scheduled (the code waits for something that can never happen), it calls
``on_idle``, which must schedule something (e.g. cancel the waiting task).

:meth:`VirtualTimeLoop.call_when_settled` runs a callback once everything due at the current
instant has run (a scripted caller reacts to the call as it is after that instant).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["VirtualTimeLoop"]


class _NoSelector:
    """Stands in for the selector: 'waiting' ``timeout`` seconds moves the clock forward."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[object]:
        self._loop.turns += 1
        if self._loop.turns == self._loop.max_turns:
            self._loop.on_runaway()
        settled = self._loop.settled
        if settled and (timeout is None or timeout > 0):  # nothing else due at this instant
            self._loop.settled = []
            for callback, args in settled:
                self._loop.call_soon(callback, *args)
            return []
        if timeout is None:
            self._loop.on_idle()
        elif timeout > 0:
            self._loop.now += timeout
        return []

    def close(self) -> None:
        """Nothing to close."""


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An event loop whose ``time()`` is virtual (starts at 0.0, never sleeps).

    ``turns`` counts the loop's turns: at ``max_turns`` (code that never lets time pass, or
    runs away) ``on_runaway`` is called once, and must end what runs."""

    def __init__(
        self,
        on_idle: Callable[[], None],
        *,
        max_turns: int = 100_000,
        on_runaway: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.now = 0.0
        self.turns = 0
        self.max_turns = max_turns
        self.on_idle = on_idle
        self.on_runaway = on_runaway
        self.settled: list[tuple[Callable[..., object], tuple[object, ...]]] = []
        self._selector = _NoSelector(self)

    def call_when_settled(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` once nothing else is ready or due at the current time."""
        self.settled.append((callback, args))

    def time(self) -> float:
        """Virtual seconds since the loop was created."""
        return self.now

    def _process_events(self, event_list: list[object]) -> None:
        """No I/O: nothing to process."""

    def _write_to_self(self) -> None:
        """No other thread wakes this loop."""

"""DtmfInbox: the DTMF digits a call received, for waiters, listeners and ``listen_dtmf``.

Pure asyncio bookkeeping owned by :class:`~voxflow.telephony.session.CallSession`: digits are
queued (type-ahead), one-shot waiters are woken with the digit (or ``ENDED`` when the call
ends), and synchronous listeners are called in the event dispatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from voxflow.errors import CallEndedError

__all__ = ["ENDED", "DtmfInbox"]

log = logging.getLogger(__name__)

ENDED = ""  # result given to DTMF waiters and listeners when the call ends


class DtmfInbox:
    """Queue, waiters and listeners of one call's DTMF digits."""

    def __init__(self, call_id: str, is_ended: Callable[[], bool]) -> None:
        self._call_id = call_id
        self._is_ended = is_ended
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiters: set[asyncio.Future[str]] = set()
        self._listeners: list[Callable[[str], None]] = []

    def received(self, digit: str) -> None:
        """Queue ``digit`` and wake waiters and listeners with it."""
        self._queue.put_nowait(digit)
        self.wake(digit)

    async def listen(self, timeout: float) -> str | None:
        """The next digit (type-ahead included), or None after ``timeout`` seconds. Raises
        ``CallEndedError`` when the call has ended and no digit is left."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._queue.empty():
                return self._queue.get_nowait()
            if self._is_ended():
                raise CallEndedError(f"call {self._call_id} has ended")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            waiter = self.waiter()
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(waiter)

    def waiter(self) -> asyncio.Future[str]:
        """A future resolved with the next digit (``ENDED`` at once if the call has ended)."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self._is_ended():
            fut.set_result(ENDED)
        else:
            self._waiters.add(fut)
        return fut

    def discard(self, fut: asyncio.Future[Any]) -> None:
        """Forget a waiter that is no longer wanted."""
        self._waiters.discard(fut)

    def add_listener(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(digit)`` for every digit and ``callback("")`` once at the end.
        Returns a function that removes the listener."""
        if self._is_ended():
            callback(ENDED)
            return lambda: None
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def wake(self, value: str) -> None:
        """Resolve all waiters with ``value`` and call the listeners (dropped after ``ENDED``)."""
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(value)
        listeners = self._listeners
        if value == ENDED:
            self._listeners = []
        for callback in tuple(listeners):
            try:
                callback(value)
            except Exception:
                log.exception("DTMF listener of call %s raised", self._call_id)

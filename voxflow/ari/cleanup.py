"""Deleting ARI resources until Asterisk confirms they are gone.

A teardown request that fails with a 5xx, a timeout or a lost connection has undone nothing: the
channel or bridge is still there. :func:`delete_until_gone` retries such failures with capped
exponential backoff and reports success only when Asterisk accepted the DELETE or said the
resource does not exist (404). Other 4xx answers are not retried (a retry cannot change them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from voxflow.errors import (
    AriConnectionError,
    AriError,
    AriNotFound,
    AriServerError,
    AriTimeoutError,
    LinkClosedError,
)

__all__ = [
    "DEADLINE_MAX",
    "Backoff",
    "RestLike",
    "again_if_late",
    "delete_until_gone",
    "is_transient",
    "retry_until_done",
    "retry_with_deadlines",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class RestLike(Protocol):
    """The one method of :class:`~voxflow.ari.rest.AriRestClient` teardown needs."""

    async def request(
        self, method: str, path: str, *, expect_json: bool = ..., timeout: float | None = ...
    ) -> object: ...


@dataclass(frozen=True)
class Backoff:
    """Retry schedule: ``initial`` seconds, doubled each attempt up to ``cap``; ``attempts``
    bounds the tries (``None``: until it works or the task is cancelled)."""

    initial: float = 0.1
    cap: float = 5.0
    attempts: int | None = 12


DEADLINE_MAX = 120.0
"""Seconds: the longest deadline :func:`retry_with_deadlines` gives a request."""


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: 5xx, timeouts, connection errors (not a per-call
    websocket closed after its call: :class:`~voxflow.errors.LinkClosedError`)."""
    return isinstance(exc, AriServerError | AriConnectionError) and not isinstance(
        exc, LinkClosedError
    )


async def retry_until_done(
    op: Callable[[], Awaitable[object]],
    what: str,
    *,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    left: list[str] | None = None,
) -> bool:
    """Run ``op`` until it succeeds or answers 404 (True: nothing left to undo); transient
    failures are retried with capped backoff; False when a non-transient error answered or the
    attempts ran out (logged as a warning, naming ``what``). A per-call websocket closed after
    its call (:class:`~voxflow.errors.LinkClosedError`) is not retried: ``what`` is added to
    ``left`` when given (the caller warns once for all), else warned about."""
    delay, tries = backoff.initial, 0
    while True:
        tries += 1
        try:
            await op()
            return True
        except AriNotFound:
            return True
        except LinkClosedError as exc:
            if left is None:
                log.warning("%s", exc)
            else:
                left.append(what)
            return False
        except AriError as exc:
            if not is_transient(exc):
                log.warning("%s refused: %s", what, exc)
                return False
            if backoff.attempts is not None and tries >= backoff.attempts:
                log.warning("%s still failing after %d tries: %s", what, tries, exc)
                return False
            log.info("%s failed (%s); retrying in %.2fs", what, exc, delay)
        await sleep(delay)
        delay = min(backoff.cap, delay * 2)


async def again_if_late(op: Callable[[float | None], Awaitable[T]], what: str, *, base: float) -> T:
    """Run ``op``, a request a repeat cannot make act twice, given its deadline: None (the
    client's own, ``base`` seconds) at first; one that timed out goes again at once with twice
    the deadline, up to :data:`DEADLINE_MAX` (a timeout at that deadline is raised). Other
    errors are raised."""
    deadline: float | None = None
    while True:
        try:
            return await op(deadline)
        except AriTimeoutError as exc:
            if deadline is not None and deadline >= DEADLINE_MAX:
                raise
            deadline = min(DEADLINE_MAX, (deadline or base) * 2)
            log.warning("%s: %s; sending it again (%gs deadline)", what, exc, deadline)


async def retry_with_deadlines(
    op: Callable[[float | None], Awaitable[object]],
    what: str,
    *,
    base: float,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> bool:
    """:func:`retry_until_done` for requests a repeat cannot make act twice (GETs): ``op`` is
    given its deadline, None (the client's own, ``base`` seconds) at first, then twice the last
    after each timeout, up to :data:`DEADLINE_MAX`, so an overloaded Asterisk that answers later
    than the client's deadline is heard."""
    deadline: float | None = None

    async def attempt() -> object:
        nonlocal deadline
        try:
            return await op(deadline)
        except AriTimeoutError:
            deadline = min(DEADLINE_MAX, (deadline or base) * 2)
            raise

    return await retry_until_done(attempt, what, backoff=backoff, sleep=sleep)


async def delete_until_gone(
    rest: RestLike,
    path: str,
    *,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    left: list[str] | None = None,
    base: float | None = None,
) -> bool:
    """``DELETE path`` until Asterisk accepts it or answers 404 (see :func:`retry_until_done`;
    ``left`` gets ``path`` when a per-call websocket closed before it could be sent). With
    ``base`` (the client's deadline), one that timed out goes again with twice the deadline, up
    to :data:`DEADLINE_MAX`: an overloaded Asterisk serves it and answers late, and the repeat's
    404 is then heard (with the same deadline it never was, and a deleted object was reported
    still failing)."""
    deadline: float | None = None

    async def op() -> object:
        nonlocal deadline
        try:
            return await rest.request("DELETE", path, expect_json=False, timeout=deadline)
        except AriTimeoutError:
            if base is not None:
                deadline = min(DEADLINE_MAX, (deadline or base) * 2)
            raise

    closed: list[str] = []
    done = await retry_until_done(op, f"DELETE {path}", backoff=backoff, sleep=sleep, left=closed)
    if closed:
        if left is None:
            log.warning("%s not sent: the call's per-call websocket is closed", path)
        else:
            left.append(path)
    return done

"""Redis unreachable: polling loops back off, and it is logged when it goes down and comes back.

:class:`DownGate` is what :meth:`ClusterState._op <voxflow.cluster.state.ClusterState._op>`
tells of each Redis operation's result. Once one failed (after its brief retries), Redis is
*down*: the operations still go, each tried once (a call never waits for retries), and the
loops that poll Redis (a standby waiting for its application name, the liveness link) wait
:meth:`DownGate.retry_in` before their next try: ``first`` s after the failure, the wait
doubling up to ``cap`` s. The first success ends it and resets the wait. One warning when it
goes down (the URL without its password), one when it is back: not one per try.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from voxflow.redact import url_for_log

__all__ = ["DownGate"]

log = logging.getLogger("voxflow.cluster.state")  # its messages, as operators know them


class DownGate:
    """Whether Redis is down, and when to try it next (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        first: float = 0.2,
        cap: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url_for_log(url)
        self.first = first
        self.cap = max(first, cap)
        self.clock = clock
        self.down_since: float | None = None
        """When Redis went down (``clock()``); None while it answers."""
        self.failures = 0
        """Operations that failed since it went down."""
        self._next = 0.0
        self._wait = first

    @property
    def down(self) -> bool:
        """True between a failed operation and the next success."""
        return self.down_since is not None

    def retry_in(self) -> float:
        """Seconds until the next try is due (0 while Redis answers): a polling loop's wait."""
        if self.down_since is None:
            return 0.0
        return max(0.0, self._next - self.clock())

    def failed(self, what: str, exc: BaseException) -> None:
        """An operation failed (after its retries): Redis is down, if it was not already; a
        failed try that was due pushes the next one back (the wait doubled)."""
        now = self.clock()
        if self.down_since is not None:
            self.failures += 1
            if now >= self._next:
                self._next = now + self._wait
                self._wait = min(2 * self._wait, self.cap)
            return
        self.down_since, self.failures = now, 1
        self._next = now + self.first
        self._wait = min(2 * self.first, self.cap)
        log.warning(
            "redis at %s unreachable (%s failed: %s): trying again every %.1f-%.1f s; "
            "operations that fail meanwhile are skipped (calls go on)",
            self.url, what, exc, self.first, self.cap,
        )  # fmt: skip

    def ok(self) -> None:
        """An operation succeeded: Redis is back, if it was down."""
        if self.down_since is None:
            return
        log.warning(
            "redis at %s is back after %.1f s (%d operations skipped meanwhile)",
            self.url, self.clock() - self.down_since, self.failures,
        )  # fmt: skip
        self.down_since = None
        self._wait = self.first

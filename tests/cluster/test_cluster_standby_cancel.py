"""A cancelled standby ends, wherever in its poll the cancellation lands (a worker stopped while
it stands by must not keep polling). redis-py sends a command under ``asyncio.wait_for`` (its
socket timeout); on Python 3.11 a cancellation that lands once the send is done but before
``wait_for`` resumed is swallowed (it returns the send's result): the standby polled on, and
test_cluster_death_at_once's ``standby.cancel()`` hung. Real redis-server; the cancellation is
made from inside redis-py's connection, at the moment named."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from _cluster_kit import running_redis
from redis.asyncio.connection import AbstractConnection

from voxflow.cluster import ClusterState

_SEND = AbstractConnection._send_packed_command
_READ = AbstractConnection._read_response_from_parser


class _CancelAt:
    """Cancels ``task`` once, from inside the standby's next poll (its ``CLIENT LIST``)."""

    def __init__(self) -> None:
        self.task: asyncio.Future[Any] | None = None
        self.fired = False
        self._polling = False

    def __call__(self) -> None:
        if self.task is not None and not self.fired:
            self.fired = True
            self.task.cancel()

    def hooked_send(self, *, cancel: bool = True) -> Callable[..., Awaitable[None]]:
        """redis-py's send, noting a poll; the send done, the cancellation (``cancel``):
        ``wait_for``'s inner task is done, it has not resumed yet."""

        async def send(conn: AbstractConnection, command: Iterable[bytes]) -> None:
            command = list(command)
            self._polling = any(b"LIST" in part for part in command)
            await _SEND(conn, command)
            if self._polling and cancel:
                self()

        return send

    def hooked_read(self) -> Callable[..., Awaitable[Any]]:
        """redis-py's read, the cancellation first (a poll's): it waits for Redis's reply."""

        async def read(conn: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
            if self._polling and asyncio.current_task() is self.task:
                self()
            return await _READ(conn, *args, **kwargs)

        return read


@pytest.mark.parametrize("moment", ["sent", "awaiting_reply"])
async def test_a_standby_cancelled_mid_poll_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    cancel = _CancelAt()
    async with (
        running_redis(tmp_path) as rs,
        ClusterState(rs.url, worker_id="a") as a,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        await a.hold_app("voxflow")
        sent = cancel.hooked_send(cancel=moment == "sent")
        monkeypatch.setattr(AbstractConnection, "_send_packed_command", sent)
        if moment == "awaiting_reply":
            monkeypatch.setattr(
                AbstractConnection, "_read_response_from_parser", cancel.hooked_read()
            )
        standby = cancel.task = asyncio.ensure_future(b.hold_app("voxflow"))
        done, _ = await asyncio.wait([standby], timeout=5)  # a poll every 50 ms
        monkeypatch.undo()
        if not done:
            standby.cancel()  # a second cancellation ends it: not left running after the test
            await asyncio.wait([standby], timeout=5)
        assert cancel.fired
        assert done, f"the standby cancelled at '{moment}' polled on"
        assert standby.cancelled()
        assert await b.redis.get("voxflow:app:voxflow") == b"a"

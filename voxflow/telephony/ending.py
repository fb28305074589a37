"""How a call's handler ends: the hang-up after it, and the grace given to one that outlives
its call. Both waits are bounded (issue 14: every wait is bounded).

A hang-up is retried until Asterisk confirms the channel is gone (the session stays registered
meanwhile), which takes as long as Asterisk keeps refusing or is unreachable. The handler's own
task waits for it at most ``handler_grace``: a handler cancelled at shutdown (``asyncio.run``
cancels every task once; a wait that starts in the ``finally`` afterwards is never cancelled)
would otherwise hold the program for ever. The hang-up goes on in an app-owned task, which
``VoxtraApp.close`` bounds too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from voxflow.errors import AriError

if TYPE_CHECKING:
    from voxflow.telephony.app import VoxtraApp
    from voxflow.telephony.session import CallSession

__all__ = ["cancel_after", "hang_up_after_handler"]

log = logging.getLogger(__name__)


async def hang_up_after_handler(app: VoxtraApp, session: CallSession) -> None:
    """The handler ended with its call up: hang it up, waiting at most ``app.handler_grace``
    (then it goes on retrying in the background); a refused hang-up releases the session."""
    task = app._spawn(_hang_up_or_release(session), f"hangup-{session.id}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), app.handler_grace)
    if not task.done():
        log.warning(
            "hang-up of call %s not confirmed after %.1fs; still retrying in the background",
            session.id,
            app.handler_grace,
        )


async def _hang_up_or_release(session: CallSession) -> None:
    try:
        await session.hangup()
    except AriError as exc:
        log.warning("hanging up call %s failed: %s", session.id, exc)
        session._gone()


async def cancel_after(task: asyncio.Task[None], delay: float) -> None:
    """Give the handler ``task`` of an ended call ``delay`` seconds, then cancel it."""
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), delay)
    if not task.done():
        log.warning(
            "handler of ended call %s still running after %.1fs; cancelling",
            task.get_name(),
            delay,
        )
        task.cancel()

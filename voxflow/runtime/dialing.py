"""Ring groups for the ``dial`` step: several endpoints at once, or one after another.

:func:`ring_group` originates through the call's :class:`~voxflow.runtime.port.CallPort`.
``all``: every endpoint is called at once; the first that answers wins and the others are
hung up (their ``originate`` is cancelled, which hangs up a leg that has not answered; a leg
that answered in the same instant is hung up explicitly). ``hunt``: endpoints are called in
order, each for ``timeout`` seconds, until one answers. When nobody answers the outcome follows
Asterisk's ``DIALSTATUS`` for several destinations: ``noanswer`` if any rang out, else ``busy``
if any was busy, else ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from voxflow.errors import AiNotConfiguredError, AriError, CallEndedError, CallError
from voxflow.runtime.events import Dial
from voxflow.runtime.port import CallPort, P

__all__ = ["DIAL_OUTCOMES", "far_leg_takes_call", "group_outcome", "ring_group"]

DIAL_OUTCOMES = {"busy": "busy", "no answer": "noanswer"}
"""A dialled leg's ``failure_reason`` -> the dial step's outcome (anything else: failed)."""


def leg_outcome(reason: str | None) -> str:
    """The dial outcome of one leg that did not answer."""
    return DIAL_OUTCOMES.get((reason or "").lower(), "failed")


def group_outcome(outcomes: Sequence[str]) -> str:
    """The dial step's outcome when no leg of a group answered."""
    for wanted in ("noanswer", "busy"):
        if wanted in outcomes:
            return wanted
    return "failed"


def _answered(leg: P) -> bool:
    return not leg.ended and not leg.failure_reason


async def ring_group(
    port: CallPort[P],
    endpoints: Sequence[str],
    *,
    caller_id: str | None,
    timeout: int,
    hunt: bool,
) -> tuple[P | None, str, str]:
    """Ring ``endpoints``; returns (the answered leg or None, outcome, endpoint)."""
    if hunt:
        failures: list[str] = []
        for endpoint in endpoints:
            leg = await port.originate(endpoint, caller_id=caller_id, timeout=timeout)
            if _answered(leg):
                return leg, "answered", endpoint
            failures.append(leg_outcome(leg.failure_reason))
        return None, group_outcome(failures), ", ".join(endpoints)
    tasks = {
        asyncio.ensure_future(port.originate(e, caller_id=caller_id, timeout=timeout)): e
        for e in endpoints
    }
    winner: tuple[P, str] | None = None
    failures = []
    pending = set(tasks)
    order = list(tasks)
    try:
        while pending and winner is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=order.index):
                try:
                    leg = task.result()
                except (CallError, AriError, ValueError) as exc:
                    if isinstance(exc, CallEndedError):
                        raise
                    failures.append("failed")  # one bad member does not end the group
                    continue
                if winner is None and _answered(leg):
                    winner = (leg, tasks[task])
                elif _answered(leg):
                    await leg.hangup("answered_elsewhere")
                else:
                    failures.append(leg_outcome(leg.failure_reason))
    finally:
        for task in pending:
            task.cancel()  # a leg still ringing is hung up by its originate
        if pending:
            late = await asyncio.gather(*pending, return_exceptions=True)
            for result in late:
                if not isinstance(result, BaseException) and _answered(result):
                    await result.hangup("answered_elsewhere")  # answered as it was cancelled
    if winner is not None:
        return winner[0], "answered", winner[1]
    return None, group_outcome(failures), ", ".join(endpoints)


async def far_leg_takes_call(leg: P, cmd: Dial) -> bool:
    """Run the dial's actions on the answered far leg before it is joined with the caller:
    send ``far_dtmf``, say ``whisper``, then wait for the ``accept`` key. False when the far
    party did not press it (the caller is not joined; the dial's outcome is ``noanswer``)."""
    if cmd.far_dtmf:
        await leg.send_dtmf(cmd.far_dtmf)
    if cmd.whisper:
        with contextlib.suppress(AiNotConfiguredError):  # no TTS: the whisper is only traced
            await leg.say(cmd.whisper, voice=cmd.voice)
    if not cmd.accept:
        return True
    pressed = ""
    deadline = asyncio.get_running_loop().time() + cmd.accept_timeout_ms / 1000.0
    while len(pressed) < len(cmd.accept):
        left = deadline - asyncio.get_running_loop().time()
        key = await leg.listen_dtmf(max(left, 0.0)) if left > 0 else None
        if key is None:
            return False
        pressed += key
        if not cmd.accept.startswith(pressed):
            return False
    return True

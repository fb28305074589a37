"""Playing a sound on a call (``CallSession.play_file``), with DTMF and speech barge-in.

The playback gets an id voxflow chose (its events are routed to the call before the POST), and
ends with its ``PlaybackFinished``; while it plays, it is polled every ``playback_poll`` seconds
(an unknown media scheme never finishes, observed item 17: gone at two polls in a row with no
``PlaybackFinished``, it failed). A POST that timed out is not sent again (Asterisk would play
it twice): the playback is followed by its events and polls all the same. A key or the caller's
speech stops it when ``barge_in`` allows; a hang-up during it raises ``CallEndedError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from voxflow import observe
from voxflow.eager import start_eagerly
from voxflow.errors import (
    AriError,
    AriNotFound,
    AriTimeoutError,
    CallEndedError,
    PlaybackFailedError,
)
from voxflow.telephony.dtmf import ENDED as _ENDED
from voxflow.voice.call import BargeIn, PromptResult

if TYPE_CHECKING:
    from voxflow.telephony.session import CallSession

__all__ = ["play"]

log = logging.getLogger("voxflow.telephony.session")


async def play(
    session: CallSession, name: str, *, barge_in: BargeIn | None, lang: str | None
) -> PromptResult:
    """``session.play_file``: play ``name`` and wait until it finishes or is barged in on. A
    play cancelled once requested (the flow stopped its op) stops the playback on Asterisk."""
    await session.wait_answered()
    media = name if ":" in name else f"sound:{name}"
    pid = f"vf-pb-{uuid.uuid4().hex}"
    finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    session._playbacks[pid] = finished
    extra: list[asyncio.Future[Any]] = []
    requested = False
    try:
        dtmf_wait, speech_wait = await _barge_in_waits(session, barge_in)
        extra += [f for f in (speech_wait, dtmf_wait) if f is not None]
        session._app.dispatcher.own_playback(pid, session.id)
        requested = True  # from here on Asterisk may play it
        try:
            await _request(session, pid, media, lang)
            observe.moment("prompt", session.id)
        except AriNotFound:
            session._gone()
            raise CallEndedError(f"call {session.id} has ended") from None
        except AriTimeoutError as exc:  # served late or not at all: sent again it plays twice
            log.warning("play %s on %s: %s; following it by its events", pid, session.id, exc)
        return await _until_done(session, pid, media, finished, dtmf_wait, speech_wait)
    except asyncio.CancelledError:
        if requested:  # stopped by the flow (a key it takes, a command): its audio stops too
            await _stop_stopped(session, pid)
        raise
    finally:
        session._playbacks.pop(pid, None)
        for fut in extra:
            fut.cancel()
            session._dtmf.discard(fut)


async def _request(session: CallSession, pid: str, media: str, lang: str | None) -> None:
    """POST playback ``pid``. Cancelled while the request is in flight, it waits for Asterisk's
    answer before the cancellation goes on: the playback exists once Asterisk has read the
    request, and a stop sent before then would find nothing (404) and let it play to its end."""
    post = start_eagerly(session.rest.play(session.id, media, playback_id=pid, lang=lang))
    try:
        await asyncio.shield(post)
    except asyncio.CancelledError:
        if not post.done():  # bounded by the REST client's own request timeout
            await asyncio.wait({post})
        if not post.cancelled():
            post.exception()  # retrieved: a failed request has nothing to stop
        raise


async def _until_done(
    session: CallSession,
    pid: str,
    media: str,
    finished: asyncio.Future[str],
    dtmf_wait: asyncio.Future[str] | None,
    speech_wait: asyncio.Future[Any] | None,
) -> PromptResult:
    """Wait for playback ``pid``'s end, a barge-in (the playback stopped) or its vanishing."""
    extra = [f for f in (speech_wait, dtmf_wait) if f is not None]
    waiting: set[asyncio.Future[Any]] = {finished, *extra}
    gone = 0  # polls in a row that found the playback gone with no PlaybackFinished yet
    while True:
        done, _ = await asyncio.wait(
            waiting, timeout=session._app.playback_poll, return_when=asyncio.FIRST_COMPLETED
        )
        if finished in done:
            break
        if dtmf_wait is not None and dtmf_wait in done:
            digit = dtmf_wait.result()
            if digit == _ENDED:
                raise CallEndedError(f"call {session.id} ended during playback")
            await _stop(session, pid)
            return PromptResult(interrupted=True, by="dtmf", digit=digit)
        if speech_wait is not None and speech_wait in done:
            waiting.discard(speech_wait)
            if speech_wait.exception() is None:
                await _stop(session, pid)
                return PromptResult(interrupted=True, by="speech")
            log.warning("speech barge-in failed on %s: %s", session.id, speech_wait.exception())
        if not done and not finished.done():
            gone = gone + 1 if await _gone(session, pid) else 0
            if gone >= 2 and not finished.done():
                finished.set_result("failed")  # never finished (an unknown media scheme)
    return _finished(session, media, finished.result())


async def _barge_in_waits(
    session: CallSession, barge_in: BargeIn | None
) -> tuple[asyncio.Future[str] | None, asyncio.Future[Any] | None]:
    """What may end the playback early, as ``barge_in`` allows: the caller's next key, and the
    start of their speech."""
    dtmf_wait: asyncio.Future[str] | None = None
    speech_wait: asyncio.Future[Any] | None = None
    if barge_in is not None and barge_in.speech and session._hears_speech():
        # The media path comes up before the playback so speech is heard from its start.
        voice = await session.call_voice()
        speech_wait = asyncio.ensure_future(voice.wait_for_speech(barge_in.min_speech_ms))
    if barge_in is not None and barge_in.dtmf:
        dtmf_wait = session._dtmf.waiter()
    return dtmf_wait, speech_wait


def _finished(session: CallSession, media: str, state: str) -> PromptResult:
    """The result of a playback that finished in ``state`` (or raises why it did not play)."""
    if state == _ENDED or (state == "failed" and (session.ended or session._hangup_requested)):
        # A playback cut by the hang-up finishes "failed" before StasisEnd (observed 17).
        raise CallEndedError(f"call {session.id} ended during playback")
    if state == "failed":
        raise PlaybackFailedError(f"playback of {media} failed on call {session.id}")
    return PromptResult()


async def _gone(session: CallSession, pid: str) -> bool:
    """True when Asterisk no longer knows playback ``pid``. An unknown media scheme never
    sends its PlaybackFinished (observed item 17: 404 right after); a playback that finished
    has its PlaybackFinished on the events socket, which on a loaded host can be behind this
    REST answer: the caller fails the playback only when it is gone at two polls in a row."""
    try:
        await session.rest.get_playback(pid)
    except AriNotFound:
        return True
    except AriError as exc:
        log.debug("playback poll for %s failed: %s", pid, exc)
    return False


async def _stop(session: CallSession, pid: str) -> None:
    with contextlib.suppress(AriNotFound):
        await session.rest.stop_playback(pid)


async def _stop_stopped(session: CallSession, pid: str) -> None:
    """Stop playback ``pid`` of a play the flow stopped (its op cancelled), unless the call is
    over (its playbacks went with it); a failure is only logged: the cancellation goes on."""
    if session.ended or session._hangup_requested:
        return
    try:
        await _stop(session, pid)
    except AriError as exc:
        log.warning("could not stop playback %s of %s: %s", pid, session.id, exc)

"""How a :class:`~voxflow.telephony.session.CallSession` reacts to each ARI event of its call.

One plain function per event class, in :data:`HANDLERS` (one dict lookup per event:
``isinstance`` on pydantic classes costs ~100 ns each); a table of plain functions shared by every
session, as bound methods kept on each session would make every session a reference cycle. The
functions keep the session's bookkeeping (channel, answer, bridges, recordings, playbacks, the
dialplan trip, the end of the call) and hand DTMF digits to its media path and its listeners.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voxflow.ari.models import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    Dial,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)
from voxflow.telephony.dialplan import TripResult

if TYPE_CHECKING:  # annotations only (the session imports this table)
    from voxflow.telephony.active_recording import ActiveRecording
    from voxflow.telephony.session import CallSession

__all__ = ["HANDLERS"]

log = logging.getLogger("voxflow.telephony.session")  # the session's own log, as before


def on_dtmf(s: CallSession, event: ChannelDtmfReceived) -> None:
    """A key: the playing prompt is interrupted first (when it takes DTMF barge-in), then the
    digit goes to the waiters and listeners, so an interpreter's listener can start the next
    prompt at once, in this dispatch (the line is free: no loop pass between the two)."""
    if event.channel.id != s.id:
        return
    if s._voice is not None:
        try:
            s._voice.on_dtmf(event.digit)
        except Exception:
            log.exception("voice.on_dtmf failed on %s", s.id)
    s._dtmf.received(event.digit)


def on_playback_finished(s: CallSession, event: PlaybackFinished) -> None:
    fut = s._playbacks.get(event.playback.id)
    if fut is not None and not fut.done():
        fut.set_result(event.playback.state)


def on_channel_update(s: CallSession, event: ChannelStateChange | StasisStart) -> None:
    s.channel = event.channel
    if isinstance(event, StasisStart):
        s._in_stasis = True
        s._stasis_started.set()
    if event.channel.state == "Up":
        s._set_answered()


def on_recording_ended(s: CallSession, event: RecordingFinished | RecordingFailed) -> None:
    rec = _recording_named(s, event.recording.name)
    if rec is not None:
        duration = event.recording.duration
        rec.finished(
            float(duration) if duration is not None else None,
            (event.recording.cause or "failed") if isinstance(event, RecordingFailed) else None,
        )


def on_entered_bridge(s: CallSession, event: ChannelEnteredBridge) -> None:
    if event.channel.id == s.id:
        s._bridge_id = event.bridge.id


def on_hangup_request(s: CallSession, event: ChannelHangupRequest) -> None:
    s._hangup_requested = True
    if not event.soft and event.cause:
        s.hangup_cause = event.cause


def on_dial(s: CallSession, event: Dial) -> None:
    if event.peer.id == s.id and event.dialstatus:
        s._dialstatus = event.dialstatus
    if s._trip is not None:
        caller = event.caller.id if event.caller is not None else None
        s._trip.dial(caller, s.id, event.dialstatus)


def on_stasis_start(s: CallSession, event: StasisStart) -> None:
    on_channel_update(s, event)
    if s._trip is not None:
        s._trip.stasis_start(list(event.args))


def on_stasis_end(s: CallSession, event: StasisEnd) -> None:
    if s._trip is not None:  # our own continue: the dialplan runs, the call goes on
        s._trip.stasis_end()
        return
    s._mark_ended()


def on_destroyed(s: CallSession, event: ChannelDestroyed) -> None:
    if event.cause:
        s.hangup_cause = event.cause
    elif s._trip is not None:  # cause 0 "Unknown": no such context/extension/priority
        s._trip.resolve(TripResult("dropped"))
    s._mark_ended()


def _recording_named(s: CallSession, name: str) -> ActiveRecording | None:
    if s._recording is not None and s._recording.name == name:
        return s._recording
    return s._finishing.get(name)


def on_left_bridge(s: CallSession, event: ChannelLeftBridge) -> None:
    bridge = event.bridge.id
    if event.channel.id == s.id and s._bridge_id == bridge:
        s._bridge_id = None
    if s._shared_bridge == bridge:
        s._unshare_bridge()


HANDLERS: dict[type[AriEvent], Callable[[CallSession, Any], None]] = {
    ChannelDtmfReceived: on_dtmf,
    PlaybackFinished: on_playback_finished,
    ChannelStateChange: on_channel_update,
    StasisStart: on_stasis_start,
    RecordingFinished: on_recording_ended,
    RecordingFailed: on_recording_ended,
    ChannelEnteredBridge: on_entered_bridge,
    ChannelLeftBridge: on_left_bridge,
    ChannelHangupRequest: on_hangup_request,
    Dial: on_dial,
    StasisEnd: on_stasis_end,
    ChannelDestroyed: on_destroyed,
}

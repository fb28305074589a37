"""Pure per-channel routing of ARI events (no sockets, no asyncio).

:class:`Dispatcher` answers "which channels does this event concern?". It follows bridge membership
(``ChannelEnteredBridge``/``ChannelLeftBridge``) so a bridge playback reaches every channel in the
bridge, and it knows the owners of playbacks and recordings the client registered before starting
them (events may arrive before the REST answer, so registration happens first). A channel's own
bridges are indexed, so its ``StasisEnd`` and ``forget_channel`` touch those bridges only (with
one bridge per call, scanning every bridge made each call's end cost O(calls)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from voxflow.ari.models import (
    AriEvent,
    BridgeDestroyed,
    ChannelEnteredBridge,
    ChannelEvent,
    ChannelLeftBridge,
    ChannelUserevent,
    ChannelVarset,
    Dial,
    PlaybackEvent,
    PlaybackFinished,
    RecordingEvent,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
)

__all__ = ["Dispatcher", "split_target_uri"]


def split_target_uri(uri: str) -> tuple[str, str]:
    """``"channel:123.4"`` -> ``("channel", "123.4")``; unknown shapes give ``("", uri)``."""
    kind, sep, ident = uri.partition(":")
    return (kind, ident) if sep else ("", uri)


class Dispatcher:
    """Tracks bridges, playbacks and recordings; routes events to the channel ids they concern."""

    def __init__(self) -> None:
        self._bridges: dict[str, set[str]] = {}
        self._member_of: dict[str, set[str]] = {}  # channel id -> the bridges it is in
        self._playbacks: dict[str, str] = {}
        self._recordings: dict[str, str] = {}

    # -- registrations made by the client before it starts something

    def own_playback(self, playback_id: str, channel_id: str) -> None:
        """Route events of ``playback_id`` to ``channel_id`` (whatever its target)."""
        self._playbacks[playback_id] = channel_id

    def own_recording(self, name: str, channel_id: str) -> None:
        """Route events of recording ``name`` to ``channel_id``."""
        self._recordings[name] = channel_id

    def forget_channel(self, channel_id: str) -> None:
        """Drop every registration of a channel that has ended."""
        self._leave_all(channel_id)
        if channel_id in self._playbacks.values():
            self._playbacks = {p: c for p, c in self._playbacks.items() if c != channel_id}
        if channel_id in self._recordings.values():
            self._recordings = {r: c for r, c in self._recordings.items() if c != channel_id}

    def _leave_all(self, channel_id: str) -> None:
        """``channel_id`` is in no bridge any more (a bridge left empty is forgotten)."""
        for bridge_id in self._member_of.pop(channel_id, ()):
            members = self._bridges.get(bridge_id)
            if members is not None:
                members.discard(channel_id)
                if not members:
                    del self._bridges[bridge_id]

    def bridge_members(self, bridge_id: str) -> frozenset[str]:
        """Channels currently known to be in ``bridge_id``."""
        return frozenset(self._bridges.get(bridge_id, ()))

    @property
    def tracked(self) -> tuple[int, int, int]:
        """(bridges, playbacks, recordings) currently tracked: for leak checks."""
        return len(self._bridges), len(self._playbacks), len(self._recordings)

    # -- routing

    def route(self, event: AriEvent) -> tuple[str, ...]:
        """Return the channel ids ``event`` concerns, updating the tracked state."""
        kind = type(event)
        handler = _ROUTES.get(kind)
        if handler is None:
            handler = _ROUTES[kind] = _route_for(kind)
        return handler(self, event)

    # one small function per event family, picked by the event's class (no isinstance chain)

    def _channel(self, event: AriEvent) -> tuple[str, ...]:
        return (cast(ChannelEvent, event).channel.id,)  # routed here for ChannelEvents only

    def _entered(self, event: AriEvent) -> tuple[str, ...]:
        event = cast(ChannelEnteredBridge, event)
        cid = event.channel.id
        self._bridges.setdefault(event.bridge.id, set()).add(cid)
        self._member_of.setdefault(cid, set()).add(event.bridge.id)
        return (cid,)

    def _left(self, event: AriEvent) -> tuple[str, ...]:
        event = cast(ChannelLeftBridge, event)
        cid = event.channel.id
        members = self._bridges.get(event.bridge.id)
        if members is not None:
            members.discard(cid)
            if not members:
                del self._bridges[event.bridge.id]
        self._not_in(cid, event.bridge.id)
        return (cid, *sorted(self.bridge_members(event.bridge.id)))

    def _not_in(self, cid: str, bridge_id: str) -> None:
        bridges = self._member_of.get(cid)
        if bridges is not None:
            bridges.discard(bridge_id)
            if not bridges:
                del self._member_of[cid]

    def _stasis_end(self, event: AriEvent) -> tuple[str, ...]:
        cid = cast(StasisEnd, event).channel.id
        self._leave_all(cid)
        return (cid,)

    def _playback(self, event: AriEvent) -> tuple[str, ...]:
        event = cast(PlaybackEvent, event)
        pid = event.playback.id
        if type(event) is PlaybackFinished:  # (isinstance on pydantic classes is slow)
            owner = self._playbacks.pop(pid, None)
        else:
            owner = self._playbacks.get(pid)
        if owner is not None:
            return (owner,)
        return self._by_target(event.playback.target_uri)

    def _recording(self, event: AriEvent) -> tuple[str, ...]:
        event = cast(RecordingEvent, event)
        name = event.recording.name
        final = type(event) in (RecordingFinished, RecordingFailed)
        owner = self._recordings.pop(name, None) if final else self._recordings.get(name)
        if owner is not None:
            return (owner,)
        return self._by_target(event.recording.target_uri)

    def _dial(self, event: AriEvent) -> tuple[str, ...]:
        event = cast(Dial, event)
        if event.caller is not None:
            return (event.peer.id, event.caller.id)
        return (event.peer.id,)

    def _optional_channel(self, event: AriEvent) -> tuple[str, ...]:
        channel = getattr(event, "channel", None)
        return (channel.id,) if channel is not None else ()

    def _bridge_destroyed(self, event: AriEvent) -> tuple[str, ...]:
        event = cast(BridgeDestroyed, event)
        members = self._bridges.pop(event.bridge.id, set())
        for cid in members:
            self._not_in(cid, event.bridge.id)
        return tuple(sorted(members | set(event.bridge.channels)))

    def _nobody(self, event: AriEvent) -> tuple[str, ...]:
        return ()

    def _by_target(self, uri: str) -> tuple[str, ...]:
        kind, ident = split_target_uri(uri)
        if kind == "channel":
            return (ident,)
        if kind == "bridge":
            return tuple(sorted(self.bridge_members(ident)))
        return ()


_Route = Callable[[Dispatcher, AriEvent], tuple[str, ...]]


def _route_for(kind: type[AriEvent]) -> _Route:
    """The routing function for an event class (computed once per class)."""
    if issubclass(kind, ChannelEnteredBridge):
        return Dispatcher._entered
    if issubclass(kind, ChannelLeftBridge):
        return Dispatcher._left
    if issubclass(kind, StasisEnd):
        return Dispatcher._stasis_end
    if issubclass(kind, ChannelEvent):
        return Dispatcher._channel
    if issubclass(kind, PlaybackEvent):
        return Dispatcher._playback
    if issubclass(kind, RecordingEvent):
        return Dispatcher._recording
    if issubclass(kind, Dial):
        return Dispatcher._dial
    if issubclass(kind, ChannelVarset | ChannelUserevent):
        return Dispatcher._optional_channel
    if issubclass(kind, BridgeDestroyed):
        return Dispatcher._bridge_destroyed
    return Dispatcher._nobody


_ROUTES: dict[type[AriEvent], _Route] = {}

"""Pure per-channel routing of ARI events (no sockets, no asyncio).

:class:`Dispatcher` answers "which channels does this event concern?". It follows bridge membership
(``ChannelEnteredBridge``/``ChannelLeftBridge``) so a bridge playback reaches every channel in the
bridge, and it knows the owners of playbacks and recordings the client registered before starting
them (events may arrive before the REST answer, so registration happens first).
"""

from __future__ import annotations

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
        for members in self._bridges.values():
            members.discard(channel_id)
        self._bridges = {b: m for b, m in self._bridges.items() if m}
        self._playbacks = {p: c for p, c in self._playbacks.items() if c != channel_id}
        self._recordings = {r: c for r, c in self._recordings.items() if c != channel_id}

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
        if isinstance(event, ChannelEvent):
            cid = event.channel.id
            if isinstance(event, ChannelEnteredBridge):
                self._bridges.setdefault(event.bridge.id, set()).add(cid)
            elif isinstance(event, ChannelLeftBridge):
                members = self._bridges.get(event.bridge.id)
                if members is not None:
                    members.discard(cid)
                    if not members:
                        del self._bridges[event.bridge.id]
                return (cid, *sorted(self.bridge_members(event.bridge.id)))
            elif isinstance(event, StasisEnd):
                for members in self._bridges.values():
                    members.discard(cid)
            return (cid,)
        if isinstance(event, PlaybackEvent):
            pid = event.playback.id
            owner = (
                self._playbacks.pop(pid, None)
                if isinstance(event, PlaybackFinished)
                else self._playbacks.get(pid)
            )
            if owner is not None:
                return (owner,)
            return self._by_target(event.playback.target_uri)
        if isinstance(event, RecordingEvent):
            name = event.recording.name
            final = isinstance(event, RecordingFinished | RecordingFailed)
            rec_owner = self._recordings.pop(name, None) if final else self._recordings.get(name)
            if rec_owner is not None:
                return (rec_owner,)
            return self._by_target(event.recording.target_uri)
        if isinstance(event, Dial):
            ids = [event.peer.id]
            if event.caller is not None:
                ids.append(event.caller.id)
            return tuple(ids)
        if isinstance(event, ChannelVarset | ChannelUserevent):
            return (event.channel.id,) if event.channel is not None else ()
        if isinstance(event, BridgeDestroyed):
            members = self._bridges.pop(event.bridge.id, set())
            return tuple(sorted(members | set(event.bridge.channels)))
        return ()

    def _by_target(self, uri: str) -> tuple[str, ...]:
        kind, ident = split_target_uri(uri)
        if kind == "channel":
            return (ident,)
        if kind == "bridge":
            return tuple(sorted(self.bridge_members(ident)))
        return ()

"""ARI JSON objects and events, shaped like Asterisk 22's (field sets and order as captured)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CAUSE_TEXT",
    "bridge_json",
    "cause_text",
    "channel_json",
    "make_event",
    "playback_json",
    "recording_json",
]

# Q.850 causes as Asterisk names them (main/causes.c).
CAUSE_TEXT: dict[int, str] = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    28: "Invalid number format (incomplete number)",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    58: "Bearer capability not available",
    127: "Interworking, unspecified",
}


def cause_text(cause: int) -> str:
    """Asterisk's text for a Q.850 cause code."""
    return CAUSE_TEXT.get(cause, "Unknown")


def channel_json(
    *,
    id: str,
    name: str,
    state: str,
    caller: tuple[str, str],
    connected: tuple[str, str],
    dialplan: tuple[str, str, int, str, str],
    creationtime: str,
    language: str = "en",
    channelvars: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Channel object. ``caller``/``connected`` are (name, number); ``dialplan`` is
    (context, exten, priority, app_name, app_data)."""
    out: dict[str, Any] = {
        "id": id,
        "name": name,
        "state": state,
        "protocol_id": "",
        "caller": {"name": caller[0], "number": caller[1]},
        "connected": {"name": connected[0], "number": connected[1]},
        "accountcode": "",
        "dialplan": {
            "context": dialplan[0],
            "exten": dialplan[1],
            "priority": dialplan[2],
            "app_name": dialplan[3],
            "app_data": dialplan[4],
        },
        "creationtime": creationtime,
        "language": language,
    }
    if channelvars is not None:
        out["channelvars"] = channelvars
    return out


def bridge_json(
    *,
    id: str,
    bridge_type: str,
    name: str,
    channels: list[str],
    creationtime: str,
    technology: str = "simple_bridge",
) -> dict[str, Any]:
    """A Bridge object, in REST answers and events alike (every captured one carries
    ``video_mode: "talker"``)."""
    out: dict[str, Any] = {
        "id": id,
        "technology": technology,
        "bridge_type": bridge_type,
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": name,
        "channels": list(channels),
        "creationtime": creationtime,
        "video_mode": "talker",
    }
    return out


def playback_json(
    *, id: str, media_uri: str, target_uri: str, state: str, language: str = "en"
) -> dict[str, Any]:
    """A Playback object."""
    return {
        "id": id,
        "media_uri": media_uri,
        "target_uri": target_uri,
        "language": language,
        "state": state,
    }


def recording_json(
    *,
    name: str,
    format: str,
    state: str,
    target_uri: str,
    duration: int | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """A LiveRecording object."""
    out: dict[str, Any] = {"name": name, "format": format, "state": state, "target_uri": target_uri}
    if duration is not None:
        out["duration"] = duration
    if cause is not None:
        out["cause"] = cause
    return out


def make_event(etype: str, timestamp: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An event without ``application`` (added per subscribed app on delivery)."""
    event: dict[str, Any] = {"type": etype, "timestamp": timestamp}
    event.update(fields)
    return event

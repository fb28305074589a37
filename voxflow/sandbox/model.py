"""Plain data for the PBX core: channels, bridges, playbacks, recordings, apps, far ends."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from voxflow.errors import VoxflowError

from .audio import Frame
from .clock import Timer
from .events import bridge_json, channel_json, playback_json, recording_json

__all__ = [
    "HANGUP_REASONS",
    "App",
    "Bridge",
    "Channel",
    "FarEnd",
    "LiveRecording",
    "Playback",
    "RestError",
]

# ARI hangup ``reason`` names -> Q.850 causes (res/ari/resource_channels.c).
HANGUP_REASONS: dict[str, int] = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 18,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}


class RestError(VoxflowError):
    """An ARI error answer: HTTP ``status`` with body ``{key: message}``."""

    def __init__(self, status: int, message: str, *, key: str = "message") -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.key = key


class FarEnd(Protocol):
    """Whatever is on the other side of a channel (a scripted caller, an RTP peer, the
    other half of a Local channel). The core calls these; none of them may block."""

    def far_event(self, kind: str, data: dict[str, Any]) -> None:
        """Something happened that the far end perceives (answer, dtmf, playback, hangup...)."""
        ...

    def next_spoken(self) -> Frame | None:
        """This tick's audio from the far end into the PBX (``None`` = silence)."""
        ...

    def hear(self, frame: Frame | None, tick: int) -> None:
        """This tick's audio from the PBX to the far end."""
        ...

    @property
    def wants_tick(self) -> bool:
        """True while the far end needs ticking even when nothing plays (speaking, RTP)."""
        ...


@dataclass(eq=False)
class Playback:
    """A playback on a channel or bridge."""

    id: str
    media: list[str]
    target_uri: str
    language: str = "en"
    state: str = "queued"
    index: int = 0
    frames: Iterator[Frame] | None = None
    paused: bool = False
    owner: Channel | Bridge | None = None
    skip_frames: int = 150
    on_done: Callable[[], None] | None = None

    @property
    def media_uri(self) -> str:
        return self.media[min(self.index, len(self.media) - 1)]

    def json(self) -> dict[str, Any]:
        out = playback_json(
            id=self.id,
            media_uri=self.media_uri,
            target_uri=self.target_uri,
            state=self.state,
            language=self.language,
        )
        if self.index + 1 < len(self.media) and self.state in ("playing", "continuing"):
            out["next_media_uri"] = self.media[self.index + 1]
        return out


@dataclass(eq=False)
class LiveRecording:
    """A recording in progress."""

    name: str
    format: str
    target_uri: str
    owner: Channel | Bridge
    max_duration: float = 0.0
    max_silence: float = 0.0
    terminate_on: str = "none"
    state: str = "queued"
    frames: list[Frame | None] = field(default_factory=list)
    heard_audio: bool = False
    trailing_silence: int = 0
    muted: bool = False
    cause: str | None = None

    def json(self, *, duration: int | None = None) -> dict[str, Any]:
        return recording_json(
            name=self.name,
            format=self.format,
            state=self.state,
            target_uri=self.target_uri,
            duration=duration,
            cause=self.cause,
        )


@dataclass(eq=False)
class Channel:
    """A channel as the PBX sees it."""

    id: str
    name: str
    state: str
    creationtime: str
    caller: tuple[str, str] = ("", "")
    connected: tuple[str, str] = ("", "")
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    language: str = "en"
    tech: str = "PJSIP"
    ari_created: bool = False
    app: str | None = None
    app_args: list[str] = field(default_factory=list)
    subs: set[str] = field(default_factory=set)
    explicit_subs: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)
    bridge: Bridge | None = None
    far: FarEnd | None = None
    playbacks: deque[Playback] = field(default_factory=deque)
    recordings: list[LiveRecording] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    moh: str | None = None
    on_hold: bool = False
    silenced: bool = False
    hungup: bool = False
    spoken: Frame | None = None
    heard: Frame | None = None
    dial_pending: bool = False
    channelvars: dict[str, str] | None = None
    peer: Channel | None = None  # the other half of a Local channel
    snoop_of: Channel | None = None
    snoop_spy: str = "none"
    bridge_role: str = ""  # addChannel options, reset when the channel leaves its bridge
    absorb_dtmf: bool = False
    bridge_muted: bool = False
    # A continue sent while a playback or recording runs (context, exten, priority, label):
    # Asterisk queues it behind them (capture continue-outcomes.json, record-leaving-stasis.json).
    pending_continue: tuple[str, str, int, str] | None = None
    stasis_failed: Callable[[str], None] | None = None  # the dialplan after a Stasis() failing
    shown_vars: tuple[str, ...] = ()  # ari.conf channelvars: shown in every channel JSON

    def json(self, *, with_vars: bool = False) -> dict[str, Any]:
        shown = self.channelvars if with_vars else None
        if self.shown_vars:
            shown = {**(shown or {}), **{n: self.variables.get(n, "") for n in self.shown_vars}}
        return channel_json(
            id=self.id,
            name=self.name,
            state=self.state,
            caller=self.caller,
            connected=self.connected,
            dialplan=(self.context, self.exten, self.priority, self.app_name, self.app_data),
            creationtime=self.creationtime,
            language=self.language,
            channelvars=shown,
        )

    @property
    def in_stasis(self) -> bool:
        return self.app is not None and not self.hungup


@dataclass(eq=False)
class Bridge:
    """A mixing or holding bridge."""

    id: str
    bridge_type: str
    name: str
    creationtime: str
    members: list[Channel] = field(default_factory=list)
    pseudo: list[str] = field(default_factory=list)  # Announcer/Recorder channel names
    playbacks: deque[Playback] = field(default_factory=deque)
    recordings: list[LiveRecording] = field(default_factory=list)
    explicit_subs: set[str] = field(default_factory=set)
    moh: str | None = None
    announcer: str | None = None
    destroyed: bool = False

    @property
    def softmix(self) -> bool:
        """A mixing bridge with 3+ channels (Announcer/Recorder included) mixes in softmix, which
        sends every member 20 ms frames, silence included; with 2 it is a ``simple_bridge``
        that only forwards what a member sends (capture rtp-silence.json)."""
        return self.bridge_type != "holding" and len(self.members) + len(self.pseudo) >= 3

    def json(self) -> dict[str, Any]:
        return bridge_json(
            id=self.id,
            bridge_type=self.bridge_type,
            name=self.name,
            channels=[c.id for c in self.members],
            creationtime=self.creationtime,
            technology="softmix" if self.softmix else "simple_bridge",
        )


@dataclass(eq=False)
class App:
    """A Stasis application (exists once a websocket has registered it)."""

    name: str
    connected: bool = False
    subscribe_all: bool = False
    device_names: set[str] = field(default_factory=set)
    endpoint_ids: set[str] = field(default_factory=set)
    bridge_ids: set[str] = field(default_factory=set)
    channel_ids: set[str] = field(default_factory=set)

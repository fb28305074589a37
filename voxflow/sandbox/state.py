"""The PBX core: channel life, Stasis, subscriptions and event routing, as Asterisk 22 does it.

No sockets and no awaiting here: transitions mutate plain data (``model.py``), emit event
dicts through ``sink(app_name, event)`` and schedule follow-ups on the clock. Media
(playbacks, bridges, recordings, the 20 ms tick) lives in :mod:`.media`, which extends
this class.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .clock import Clock, ari_timestamp
from .events import cause_text, make_event
from .model import App, Bridge, Channel, Playback, RestError

__all__ = ["ASTERISK_ID", "PbxCore", "Sink"]

log = logging.getLogger(__name__)

ASTERISK_ID = "02:fc:00:00:00:01"
Sink = Callable[[str, dict[str, Any]], None]


class PbxCore:
    """Channels, apps and events. ``sink(app, event)`` receives every event for an app."""

    _dtmf_hops = 0  # depth of DTMF passing through bridges (see dtmf_received)

    def __init__(self, clock: Clock, sink: Sink, *, asterisk_id: str = ASTERISK_ID) -> None:
        self.clock = clock
        self.sink = sink
        self.asterisk_id = asterisk_id
        self.apps: dict[str, App] = {}
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.playback_dups: dict[str, list[Playback]] = {}
        """Later playbacks given an id already in use (Asterisk links them too), in order."""
        self.global_vars: dict[str, str] = {}
        self.device_states: dict[str, str] = {}
        self._epoch = int(time.time())
        self.system_name = ""
        """asterisk.conf ``systemname``: prefixes channel ids (``<name>-<epoch>.<n>``)."""
        self._uniq = itertools.count(1)
        self._chan_seq = itertools.count(0)
        self._local_seq = itertools.count(0)
        self._pseudo_seq = itertools.count(0)
        self._snoop_seq = itertools.count(0)
        self.on_channel_added: Callable[[], None] | None = None
        # Stasis(app) for an app served by per-call outbound websockets: the server connects
        # out and enters Stasis itself (True), or the app is unknown there (False).
        self.stasis_elsewhere: Callable[[Channel, str, list[str]], bool] | None = None

    # --- ids and time ----------------------------------------------------------------------

    def now_ts(self) -> str:
        return ari_timestamp(self.clock.wall())

    def new_channel_id(self) -> str:
        prefix = f"{self.system_name}-" if self.system_name else ""
        return f"{prefix}{self._epoch}.{next(self._uniq)}"

    def next_chan_seq(self) -> int:
        return next(self._chan_seq)

    def next_local_seq(self) -> int:
        return next(self._local_seq)

    def pseudo_name(self, kind: str) -> str:
        return f"{kind}/ARI-{next(self._pseudo_seq) + 2:08x};2"

    def new_uuid(self) -> str:
        return str(uuid.uuid4())

    def check_new_id(self, cid: str) -> None:
        if cid in self.channels:
            raise RestError(409, "Channel with given unique ID already exists")

    # --- apps and routing ------------------------------------------------------------------

    def app(self, name: str) -> App:
        if name not in self.apps:
            self.apps[name] = App(name)
        return self.apps[name]

    def _observers(self) -> list[str]:
        """The connected apps with ``subscribeAll=true``."""
        return [a.name for a in self.apps.values() if a.subscribe_all and a.connected]

    def app_active(self, name: str) -> bool:
        a = self.apps.get(name)
        return a is not None and a.connected

    def _apps_for(self, channels: Iterable[Channel], bridges: Iterable[Bridge]) -> list[str]:
        names: dict[str, None] = {}
        for ch in channels:
            for a in ch.subs:
                names[a] = None
        for br in bridges:
            for a in br.explicit_subs:
                names[a] = None
            for m in br.members:
                if m.app is not None:
                    names[m.app] = None
        for app in self.apps.values():
            if app.subscribe_all:
                names[app.name] = None
        return list(names)

    def emit(
        self,
        etype: str,
        fields: dict[str, Any],
        *,
        channels: Iterable[Channel] = (),
        bridges: Iterable[Bridge] = (),
        apps: Iterable[str] | None = None,
    ) -> None:
        """Build one event and deliver it to every app subscribed to its sources."""
        chans, brs = list(channels), list(bridges)
        targets = list(apps) if apps is not None else self._apps_for(chans, brs)
        if not targets:
            return
        event = make_event(etype, self.now_ts(), fields)
        event["asterisk_id"] = self.asterisk_id
        for name in targets:
            ev = dict(event)
            ev["application"] = name
            self.sink(name, ev)

    def emit_channel(self, etype: str, ch: Channel, **fields: Any) -> None:
        fields["channel"] = ch.json()
        self.emit(etype, fields, channels=[ch])

    def subscribed_channel_ids(self, app: str) -> list[str]:
        return [c.id for c in self.channels.values() if app in c.subs]

    def subscribed_bridge_ids(self, app: str) -> list[str]:
        out = []
        for b in self.bridges.values():
            if app in b.explicit_subs or any(m.app == app for m in b.members):
                out.append(b.id)
        return out

    def app_json(self, name: str) -> dict[str, Any]:
        a = self.apps[name]
        all_topics = a.subscribe_all
        return {
            "name": name,
            "channel_ids": ["__AST_CHANNEL_ALL_TOPIC"]
            if all_topics
            else self.subscribed_channel_ids(name),
            "bridge_ids": ["__AST_BRIDGE_ALL_TOPIC"]
            if all_topics
            else self.subscribed_bridge_ids(name),
            "endpoint_ids": ["__AST_ENDPOINT_ALL_TOPIC"] if all_topics else sorted(a.endpoint_ids),
            "device_names": ["__AST_DEVICE_STATE_ALL_TOPIC"]
            if all_topics
            else sorted(a.device_names),
            "events_allowed": [],
            "events_disallowed": [],
        }

    # --- lookups ---------------------------------------------------------------------------

    def get_channel(self, cid: str) -> Channel:
        ch = self.channels.get(cid)
        if ch is None or ch.hungup:
            raise RestError(404, "Channel not found")
        return ch

    def stasis_channel(self, cid: str) -> Channel:
        ch = self.get_channel(cid)
        if not ch.in_stasis:
            raise RestError(409, "Channel not in Stasis application")
        return ch

    def get_bridge(self, bid: str) -> Bridge:
        br = self.bridges.get(bid)
        if br is None or br.destroyed:
            raise RestError(404, "Bridge not found")
        return br

    # --- channel life ----------------------------------------------------------------------

    def add_channel(self, ch: Channel) -> Channel:
        self.channels[ch.id] = ch
        observers = self._observers()
        if observers:  # subscribeAll apps see every channel created (and destroyed)
            self.emit("ChannelCreated", {"channel": ch.json()}, apps=observers)
        if self.on_channel_added is not None:
            self.on_channel_added()
        return ch

    def set_var(self, ch: Channel, name: str, value: str, *, event: bool = True) -> None:
        ch.variables[name] = value
        if event:
            self.emit_channel("ChannelVarset", ch, variable=name, value=value)

    def set_state(self, ch: Channel, state: str) -> None:
        if ch.state != state:
            ch.state = state
            self.emit_channel("ChannelStateChange", ch)

    def enter_stasis(self, ch: Channel, app: str, args: list[str]) -> bool:
        """Run Stasis(app) on ``ch``; False (and the channel is not touched) if the app
        has no websocket, as Asterisk's "Stasis app doesn't exist"."""
        if not self.app_active(app):
            hook = self.stasis_elsewhere
            if hook is not None and hook(ch, app, list(args)):
                return True  # an outbound per-call websocket is being connected for it
            log.info("Stasis app '%s' doesn't exist", app)
            return False
        ch.app = app
        ch.app_args = list(args)
        ch.stasis_failed = None
        ch.subs.add(app)
        ch.app_name = "Stasis"
        ch.app_data = ",".join([app, *args])
        self.emit("StasisStart", {"args": list(args), "channel": ch.json()}, channels=[ch])
        return True

    def leave_stasis(self, ch: Channel) -> None:
        if ch.app is None:
            return
        app = ch.app
        self.emit_channel("StasisEnd", ch)
        ch.app = None
        if not ch.ari_created and app not in ch.explicit_subs:
            ch.subs.discard(app)
        if ch.subs:
            self.set_var(ch, "STASISSTATUS", "SUCCESS")

    def dial_event(self, ch: Channel, status: str, dialstring: str) -> None:
        self.emit(
            "Dial",
            {"dialstatus": status, "forward": "", "dialstring": dialstring, "peer": ch.json()},
            channels=[ch],
        )

    def far_event(self, ch: Channel, kind: str, **data: Any) -> None:
        if ch.far is not None:
            ch.far.far_event(kind, data)

    def hangup(
        self,
        ch: Channel,
        cause: int = 16,
        *,
        soft: bool = False,
        from_far: bool = False,
        request: dict[str, Any] | None = None,
    ) -> None:
        """Hang ``ch`` up with Asterisk's event sequence. ``soft`` = requested over ARI;
        ``request``: the ChannelHangupRequest fields when they differ from ``cause``."""
        if ch.hungup:
            return
        fields: dict[str, Any] = {"cause": 32, "soft": True} if soft else {"cause": cause}
        fields = dict(request) if request is not None else fields
        fields["channel"] = ch.json()
        self.emit("ChannelHangupRequest", fields, channels=[ch])
        ch.hungup = True
        for t in ch.timers:
            t.cancel()
        ch.timers.clear()
        self.on_hangup_media(ch)
        self.leave_stasis(ch)
        if soft and not ch.ari_created and ch.subs:
            # Still subscribed after StasisEnd (explicit subscription): the dialplan resumes
            # and hangs up with the real cause, still flagged soft (capture E).
            again = {"cause": cause, "soft": True, "channel": ch.json()}
            self.emit("ChannelHangupRequest", again, channels=[ch])
        self._end_snoops(ch)
        pending = ch.pending_continue
        if pending is not None and (pending[0] or pending[1]):
            # the queued continue's goto still runs as Stasis lets go of the channel: it is
            # destroyed at the target, priority - 1 (capture record-leaving-stasis.json)
            ch.context, ch.exten = pending[0] or ch.context, pending[1] or ch.exten
            ch.priority, ch.app_name, ch.app_data = max(pending[2], 1) - 1, "", ""
        if ch.ari_created or ch.subs or self._observers():
            self.emit(
                "ChannelDestroyed",
                {"cause": cause, "cause_txt": cause_text(cause), "channel": ch.json()},
                channels=[ch],
            )
        ch.subs.clear()
        self.channels.pop(ch.id, None)
        if ch.far is not None and not from_far:
            ch.far.far_event("hangup", {"cause": cause, "by": "pbx"})
        if ch.peer is not None and not ch.peer.hungup:
            peer = ch.peer
            self.clock.call_later(0.0, lambda: self.hangup(peer, cause, from_far=True))

    def _end_snoops(self, spied: Channel) -> None:
        """The snoop channels of ``spied`` follow it: StasisEnd only, no ChannelHangupRequest
        or ChannelDestroyed (capture external-media-ordering.json, snoop-lifecycle)."""
        for snoop in [c for c in self.channels.values() if c.snoop_of is spied]:
            if snoop.hungup:
                continue
            snoop.hungup = True
            for t in snoop.timers:
                t.cancel()
            snoop.timers.clear()
            self.on_hangup_media(snoop)  # its playbacks, recordings and bridge
            self.leave_stasis(snoop)
            snoop.subs.clear()
            self.channels.pop(snoop.id, None)

    def on_hangup_media(self, ch: Channel) -> None:
        """Stop playbacks/recordings and leave the bridge (overridden by the media layer)."""

    def schedule(self, ch: Channel | None, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` unless ``ch`` has hung up by then."""

        def run() -> None:
            if ch is None or not ch.hungup:
                fn()

        timer = self.clock.call_later(delay, run)
        if ch is not None:
            ch.timers.append(timer)
            if len(ch.timers) > 64:
                ch.timers[:] = ch.timers[-32:]

    # --- DTMF ------------------------------------------------------------------------------

    def dtmf_received(self, ch: Channel, digit: str, duration_ms: int) -> None:
        """A digit arrived from the channel's far end (emitted at the digit's end)."""
        if ch.hungup:
            return
        self.emit_channel("ChannelDtmfReceived", ch, digit=digit, duration_ms=duration_ms)
        self.on_dtmf_media(ch, digit)
        br = ch.bridge
        # The digit passes through a bridge to the other members' far ends, unless the
        # channel was added with absorbDTMF (two hops at most: Local pairs forward digits).
        if br is not None and not ch.absorb_dtmf and br.bridge_type != "holding":
            if self._dtmf_hops < 2:
                self._dtmf_hops += 1
                try:
                    for m in list(br.members):
                        if m is not ch and m.far is not None and not m.hungup:
                            m.far.far_event("dtmf", {"digit": digit, "duration_ms": duration_ms})
                finally:
                    self._dtmf_hops -= 1

    def on_dtmf_media(self, ch: Channel, digit: str) -> None:
        """Hook for recordings with ``terminateOn`` (media layer)."""

    def send_dtmf(
        self, ch: Channel, digits: str, *, before: int, between: int, duration: int, after: int
    ) -> None:
        """Send DTMF towards the channel's far end, digit by digit on the clock."""
        t = before / 1000.0
        for d in digits:
            if d == ",":
                t += 0.5
                continue
            end = t + duration / 1000.0

            def one(d: str = d) -> None:
                if ch.far is not None:
                    ch.far.far_event("dtmf", {"digit": d, "duration_ms": duration})

            self.schedule(ch, end, one)
            t = end + between / 1000.0
        del after

    def normalise_dtmf(self, digits: str) -> str:
        bad = [d for d in digits if d.upper() not in "0123456789ABCD*#,"]
        if bad:
            raise RestError(400, f"Invalid DTMF digit '{bad[0]}'")
        return digits.upper()

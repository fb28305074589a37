"""``Sandbox``: the embedded PBX server (ARI REST + events websocket + RTP + control API)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from voxflow.errors import CallEndedError, ConfigError, VoxflowError

from .audio import SoundBank
from .caller import SimCall
from .clock import Clock, RealClock, VirtualClock
from .control import add_control_routes
from .dialplan import QueueAgent, SandboxQueue, shipped_inbound
from .model import Channel
from .outbound import Broadcasts, OutboundWebsocket, OutboundWebsockets
from .pbx import BEHAVIOURS, Pbx
from .rest import AriRest
from .rtp import SLOT_GAP, LatenessProbe, RtpPlane
from .ws import EventSocket, Faults, events_handler

__all__ = ["Sandbox"]

log = logging.getLogger(__name__)
TICK = 0.02
_EARLY = 0.0015  # how early the period timer fires (see _schedule_tick)
# Seconds a request still being handled (a caller's long silence, a call waiting for its app)
# may take once the sandbox stops; then it is cancelled (aiohttp's default waits 60 s).
_SHUTDOWN_GRACE = 1.0
_RESYNC = 2 * TICK  # this far behind schedule, missed periods are skipped, not caught up


def _stasis_range(
    answer_delay: float, stasis_delay: float | tuple[float, float]
) -> tuple[float, float]:
    """Check the delays; ``stasis_delay`` as a ``(min, max)`` pair of seconds."""
    if answer_delay < 0:
        raise ConfigError("answer_delay must be >= 0")
    lo, hi = stasis_delay if isinstance(stasis_delay, tuple) else (stasis_delay, stasis_delay)
    if not 0 <= lo <= hi:
        raise ConfigError("stasis_delay must be seconds >= 0, or a (min, max) pair")
    return float(lo), float(hi)


class Sandbox:
    """An in-process PBX that behaves like Asterisk 22 through ARI.

    ``async with Sandbox(port=0) as sb:`` then point any ARI client at ``sb.ari_url``
    with ``sb.user``/``sb.password``, and place calls with :meth:`place_call`.
    ``stasis_delay`` (seconds, or a ``(min, max)`` range drawn at random) is how long after
    the REST answer an externalMedia or snoop channel enters Stasis (Asterisk: 0.3-30 ms).
    ``caller_dtx=True`` makes scripted callers send no RTP while silent (default for
    :meth:`place_call` and outbound far ends).
    ``precise_rtp=True`` makes externalMedia packets leave at their exact 20 ms times by
    sleeping briefly in the event loop (the standalone server and benchmarks use it).
    ``system_name`` is asterisk.conf's ``systemname``: channel ids become
    ``<name>-<epoch>.<n>``, unique across the nodes of a cluster.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str = "voxflow",
        password: str = "voxflow",
        clock: Clock | None = None,
        answer_delay: float = 0.0,
        stasis_delay: float | tuple[float, float] = 0.0,
        caller_dtx: bool = False,
        sounds_dir: str | Path | None = None,
        recordings_dir: str | Path | None = None,
        preload_sounds: bool = True,
        record_heard: bool = True,
        measure_rtp: bool = False,
        precise_rtp: bool = False,
        system_name: str = "",
    ) -> None:
        stasis_range = _stasis_range(answer_delay, stasis_delay)
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.clock: Clock = clock or RealClock()
        self.record_heard = record_heard
        self.caller_dtx = caller_dtx
        self.preload_sounds = preload_sounds
        self.host_for_rtp = "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else host
        self._own_recdir = recordings_dir is None
        self._recdir = Path(recordings_dir) if recordings_dir else None
        self._init_parts(answer_delay, stasis_range, system_name, sounds_dir)
        self._init_calls_and_rtp(measure_rtp, precise_rtp)

    def _init_parts(
        self,
        answer_delay: float,
        stasis_range: tuple[float, float],
        system_name: str,
        sounds_dir: str | Path | None,
    ) -> None:
        """Build the PBX core, sounds, faults, REST API, outbound websockets and broadcasts."""
        dirs = [Path(sounds_dir)] if sounds_dir else []
        dirs.append(Path("/usr/share/asterisk/sounds/en"))
        self.pbx = Pbx(self.clock, self._deliver)
        self.pbx.init_calls(answer_delay, stasis_range)
        self.pbx.system_name = system_name
        self.pbx.make_far = self._make_outbound_far
        self._sounds = SoundBank(dirs)
        self.faults = Faults(self)
        self.rest_api = AriRest(self)
        self.outbound = OutboundWebsockets(self)
        self.broadcasts = Broadcasts(self)
        self.pbx.stasis_elsewhere = self._per_call_stasis

    def _init_calls_and_rtp(self, measure_rtp: bool, precise_rtp: bool) -> None:
        """Empty registries of sockets and calls, the RTP plane and the media tick's state."""
        self.app_sockets: dict[str, EventSocket] = {}
        self.open_sockets: set[EventSocket] = set()
        self.calls: dict[str, SimCall] = {}
        self.outbound_calls: list[SimCall] = []
        self._outbound_q: asyncio.Queue[SimCall] | None = None
        self.rtp_lateness: LatenessProbe | None = LatenessProbe() if measure_rtp else None
        self.tick_lateness: list[float] = []
        self.rtp = RtpPlane(self.faults.rtp, self.rtp_lateness, self.clock.call_later)
        self._period = 0.0
        # Sleep (blocking the loop, < 2 ms a period) so packets leave at their exact times:
        # for the standalone server and benchmarks, not for clients sharing the loop.
        self._precise = precise_rtp and isinstance(self.clock, RealClock)
        self._runner: web.AppRunner | None = None
        self._tick_timer: Any = None
        self._next_tick = 0.0
        self._app_waiters: dict[str, asyncio.Event] = {}
        self.started_ts = ""
        self._started = False

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host_for_rtp}:{self.port}"

    @property
    def ari_url(self) -> str:
        return f"{self.base_url}/ari"

    def events_url(self, app: str = "voxflow", *, subscribe_all: bool = False) -> str:
        """The events websocket URL for ``app`` (api_key auth included)."""
        sa = "&subscribeAll=true" if subscribe_all else ""
        return (
            f"ws://{self.host_for_rtp}:{self.port}/ari/events?app={app}"
            f"&api_key={self.user}:{self.password}{sa}"
        )

    async def start(self) -> None:
        """Bind and serve (port 0 picks a free port, see :attr:`port`)."""
        if self._started:
            return
        self.clock.start()
        if self._recdir is None:
            self._recdir = Path(tempfile.mkdtemp(prefix="voxflow-sandbox-rec-"))
        self.pbx.init_media(self._sounds, self._recdir)
        self.pbx.on_channel_added = self._ensure_tick
        if self.preload_sounds:
            await self._sounds.warm()
        self.started_ts = self.pbx.now_ts()
        app = web.Application(client_max_size=8 * 1024 * 1024)
        rest = self.rest_api

        async def events(request: web.Request) -> web.StreamResponse:
            return await events_handler(self, request)

        app.router.add_route("GET", "/ari/events", events)
        app.router.add_route("*", "/ari/{tail:.*}", rest.handle)
        add_control_routes(app, self)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=_SHUTDOWN_GRACE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            await self.clock.stop()
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        socks = getattr(site._server, "sockets", None)
        if socks:
            self.port = socks[0].getsockname()[1]
        self._started = True
        log.info("sandbox listening on %s", self.ari_url)

    async def stop(self) -> None:
        """Hang up everything, close sockets and stop serving."""
        if not self._started:
            return
        self._started = False
        for ev in self._app_waiters.values():
            ev.set()  # ends every wait_app(): it raises, the sandbox stopped
        self._app_waiters = {}
        for ch in list(self.pbx.channels.values()):
            if ch.far is not None and hasattr(ch.far, "close"):
                ch.far.close()
        await self.outbound.close()
        self.outbound = OutboundWebsockets(self)
        self.rtp.close()
        self.rtp = RtpPlane(self.faults.rtp, self.rtp_lateness, self.clock.call_later)
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        for sock in list(self.open_sockets):
            with contextlib.suppress(Exception):
                await sock.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.clock.stop()
        if self._own_recdir and self._recdir is not None:
            shutil.rmtree(self._recdir, ignore_errors=True)

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- the shared media tick -------------------------------------------------------------

    def _ensure_tick(self) -> None:
        if self._tick_timer is None and self._started:
            self._next_tick = self.clock.now() + TICK
            self._schedule_tick()

    def _idle(self) -> bool:
        """Nothing to play, mix, record or send: pause the tick."""
        return self.pbx.media_idle and not self.rtp.pending

    def _at(self, when: float, callback: Any) -> Any:
        call_at = getattr(self.clock, "call_at", None)
        if call_at is not None:
            return call_at(when, callback)
        return self.clock.call_later(when - self.clock.now(), callback)

    def _schedule_tick(self) -> None:
        # With the real clock, wake a little early: the event loop's epoll timeouts have a
        # 1 ms granularity, and the sends below wait for their exact times themselves.
        early = _EARLY if self._precise else 0.0
        self._tick_timer = self._at(self._next_tick - early, self._on_tick)

    def _on_tick(self) -> None:
        """A 20 ms period starts: send the packets prepared last period, slot by slot, each
        at its own absolute time, then do the period's work."""
        self._period = self._next_tick
        precise = self._precise and self.rtp.pending
        for slot in range(self.rtp.slot_count):
            when = self._period + slot * SLOT_GAP
            if precise:
                wait = when - time.monotonic()  # the loop's clock (RealClock)
                if wait > 0:
                    time.sleep(wait)  # < 2 ms: finer than the loop's timers can wake
            self.rtp.send_slot(slot, when)
        self._work()

    def _work(self) -> None:
        """After the sends: read RTP, advance every channel and bridge, prepare packets."""
        now = self.clock.now()
        late = now - self._period
        if self.rtp_lateness is not None and len(self.tick_lateness) < 1_000_000:
            self.tick_lateness.append(late)
        try:
            self.rtp.drain()
            self.pbx.tick()
            self.rtp.prepare()
        except Exception:  # a media bug must not stop every call's audio
            log.exception("sandbox media tick failed")
        if not self.pbx.channels or not self._started or self._idle():
            self._tick_timer = None  # wake_media() / a new channel starts it again
            return
        self._next_tick = self._period + TICK
        behind = self.clock.now() - self._next_tick
        if behind > _RESYNC:
            # The process stalled (or was descheduled) for periods: like a media server's
            # timer, skip them instead of bursting stale packets; RTP timestamps jump ahead.
            skipped = int(behind // TICK) + 1
            self._next_tick += skipped * TICK
            self.rtp.skip_periods(skipped)
        self._schedule_tick()

    # --- event delivery --------------------------------------------------------------------

    def _deliver(self, app: str, event: dict[str, Any]) -> None:
        if self.faults.drop_next > 0:
            self.faults.drop_next -= 1
            return
        sock = self.app_sockets.get(app)
        if sock is None:
            return
        sock.push(json.dumps(event))
        if event["type"] == "StasisEnd":
            self.outbound.stasis_ended(app, str(event["channel"].get("name", "")))
            self.broadcasts.left_stasis(event["channel"]["id"])

    def register_socket(self, sock: EventSocket, subscribe_all: bool) -> None:
        for name in sock.apps:
            old = self.app_sockets.get(name)
            if old is not None and old is not sock:
                msg = {
                    "type": "ApplicationReplaced",
                    "timestamp": self.pbx.now_ts(),
                    "application": name,
                    "asterisk_id": self.pbx.asterisk_id,
                }
                old.push(json.dumps(msg))
            self.app_sockets[name] = sock
            a = self.pbx.app(name)
            a.connected = True
            a.subscribe_all = subscribe_all
            ev = self._app_waiters.get(name)
            if ev is not None:
                ev.set()

    def unregister_socket(self, sock: EventSocket) -> None:
        for name in sock.apps:
            if self.app_sockets.get(name) is sock:
                del self.app_sockets[name]
                self.pbx.app(name).connected = False
                ev = self._app_waiters.get(name)
                if ev is not None:
                    ev.clear()

    async def wait_app(self, app: str = "voxflow", timeout: float = 10.0) -> None:
        """Wait (real seconds) until ``app`` has an events websocket; VoxflowError when the
        timeout passes or the sandbox stops first."""
        if self.pbx.app_active(app):
            return
        ev = self._app_waiters.setdefault(app, asyncio.Event())
        if self.pbx.app_active(app):
            ev.set()
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            raise VoxflowError(f"no ARI client connected for app {app!r}") from None
        if not self._started:  # stop() set every waiter
            raise VoxflowError("the sandbox stopped")

    # --- scripted calls --------------------------------------------------------------------

    async def place_call(
        self,
        from_: str = "+15551230000",
        to: str = "100",
        app: str = "voxflow",
        *,
        name: str = "",
        args: list[str] | None = None,
        wait_app: float = 5.0,
        channel_id: str | None = None,
        dtx: bool | None = None,
        variables: dict[str, str] | None = None,
    ) -> SimCall:
        """Place an inbound call from a scripted caller into Stasis(``app``).

        Waits up to ``wait_app`` real seconds for the app's websocket; if it never comes the
        call fails like on Asterisk (the caller is hung up) and the SimCall shows it. ``dtx``:
        the caller sends no RTP while silent (default: the sandbox's ``caller_dtx``).
        ``variables`` are channel variables the dialplan set before ``Stasis()``; those named
        in ``sandbox.pbx.ari_channelvars`` (ari.conf ``channelvars``) show in the channel JSON."""
        if not self._started:
            raise VoxflowError("the sandbox is not started")
        if wait_app > 0 and self.outbound.per_call(app) is None:
            with contextlib.suppress(VoxflowError):
                await self.wait_app(app, wait_app)
            if not self._started:
                raise CallEndedError("the sandbox stopped before the call was placed")
        call = SimCall(
            self.pbx,
            direction="inbound",
            from_=from_,
            to=to,
            app=app,
            record_heard=self.record_heard,
            dtx=self.caller_dtx if dtx is None else dtx,
        )
        cid = channel_id or self.pbx.new_channel_id()
        per_call = self.outbound.per_call(app)
        ch = self.pbx.inbound(
            call,
            caller=(name, from_),
            to=to,
            app=app,
            args=list(args or []),
            channel_id=cid,
            enter=per_call is None,
            variables=variables,
        )
        if ch is not None and per_call is not None and shipped_inbound(to):
            self.pbx.contexts.stasis_in(ch, app, list(args or []), 2)  # retried while it fails
        elif ch is not None and per_call is not None:  # Asterisk connects out for this call
            self.outbound.enter_per_call(per_call, ch, list(args or []))
        call.id = cid  # a failed call keeps its channel's id too: never "" (issue 18)
        self.calls[cid] = call
        if ch is None:
            call._ended_by(16, "pbx")
            call._exp[-1]["reason"] = f"Stasis app '{app}' doesn't exist"
            return call
        call.channel = ch
        return call

    async def place_broadcast_call(
        self,
        from_: str = "+15551230000",
        to: str = "100",
        *,
        timeout: float = 3.0,
        app_filter: str = "",
        args: list[str] | None = None,
        notify_claimed: bool = False,
        name: str = "",
    ) -> SimCall:
        """A call running ``StasisBroadcast(timeout, app_filter, args, notify_claimed)``: offered
        to every connected app the regex matches; the first to claim it gets StasisStart."""
        if not self._started:
            raise VoxflowError("the sandbox is not started")
        call = SimCall(
            self.pbx,
            direction="inbound",
            from_=from_,
            to=to,
            app=app_filter,
            record_heard=self.record_heard,
        )
        ch = self.pbx.inbound(call, caller=(name, from_), to=to, app="", args=[], enter=False)
        assert ch is not None
        call.id = ch.id
        call.channel = ch
        self.calls[ch.id] = call
        self.broadcasts.offer(ch, timeout, app_filter, list(args or []), notify_claimed)
        return call

    def add_outbound_websocket(self, cfg: OutboundWebsocket) -> None:
        """Configure an outbound ARI websocket (persistent ones connect now)."""
        if not self._started:
            raise VoxflowError("the sandbox is not started")
        self.outbound.add(cfg)

    def _per_call_stasis(self, ch: Channel, app: str, args: list[str]) -> bool:
        """Stasis(app) anywhere in the dialplan, for an app with per-call websockets."""
        cfg = self.outbound.per_call(app)
        if cfg is None:
            return False
        self.outbound.enter_per_call(cfg, ch, args)
        return True

    def back_to_dialplan(self, ch: Channel, status: str) -> None:
        """Stasis() returned with ``STASISSTATUS=status``: the dialplan goes on at the next
        priority (a shipped return's retry, ``Channel.stasis_failed``), else it hangs up."""
        call = self.calls.get(ch.id)
        if call is not None:
            call._note("dialplan", STASISSTATUS=status)
        then, ch.stasis_failed = ch.stasis_failed, None
        if then is not None:
            then(status)
            return
        self.pbx.set_var(ch, "STASISSTATUS", status)
        self.pbx.hangup(ch, 16)

    def _make_outbound_far(self, ch: Channel, resource: str) -> SimCall:
        call = SimCall(
            self.pbx,
            direction="outbound",
            from_=ch.caller[1],
            to=resource,
            app=ch.variables.get("__dial_app", ""),
            record_heard=self.record_heard,
            dtx=self.caller_dtx,
        )
        call.id = ch.id
        call.channel = ch
        self.calls[ch.id] = call
        self.outbound_calls.append(call)
        if self._outbound_q is None:
            self._outbound_q = asyncio.Queue()
        self._outbound_q.put_nowait(call)
        return call

    async def next_outbound(self, timeout: float = 10.0) -> SimCall:
        """The far end of the next call the app originates to PJSIP/SIP (real seconds)."""
        if self._outbound_q is None:
            self._outbound_q = asyncio.Queue()
        return await asyncio.wait_for(self._outbound_q.get(), timeout)

    def set_outbound_behaviour(self, endpoint: str, behaviour: str) -> None:
        """How calls to ``endpoint`` (``PJSIP/alice`` or ``alice``) are met: answer, busy,
        noanswer, congestion, or ring (rings until the script answers/rejects or timeout)."""
        if behaviour not in BEHAVIOURS:
            raise ConfigError(f"behaviour must be one of {', '.join(BEHAVIOURS)}")
        name = endpoint.split("/", 1)[1] if "/" in endpoint else endpoint
        self.pbx.outbound_behaviour[name] = behaviour

    def add_queue(
        self,
        name: str,
        agents: Iterable[QueueAgent] = (),
        *,
        maxlen: int = 0,
        joinempty: bool = True,
        leavewhenempty: bool = False,
        context: str = "",
    ) -> None:
        """Define (or replace) queue ``name`` of the shipped ``[voxflow-queue]`` context, with
        scripted agents (``QueueAgent(name, answer_after, talk)``) and queues.conf ``context``
        (``voxflow-queue-exit``: a digit 0-9 leaves the queue); ``support`` (with that context)
        and ``sales`` exist from the start with no members, as in docs/asterisk/queues.conf."""
        self.pbx.contexts.queues[name] = SandboxQueue(
            name,
            list(agents),
            maxlen=maxlen,
            joinempty=joinempty,
            leavewhenempty=leavewhenempty,
            context=context,
        )

    def add_sound(self, name: str, pcm16: bytes) -> None:
        """Make ``sound:NAME`` play this 8 kHz pcm16."""
        self._sounds.add(name, pcm16)

    @property
    def recordings_dir(self) -> Path | None:
        return self._recdir

    @property
    def virtual(self) -> bool:
        return isinstance(self.clock, VirtualClock)

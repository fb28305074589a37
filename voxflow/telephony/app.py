"""VoxtraApp: the Stasis application that turns ARI channels into CallSessions.

It owns one :class:`~voxflow.ari.rest.AriRestClient`, one
:class:`~voxflow.ari.events.AriEventStream` and the session registry (``_sessions``, as the seed
names it; ``sessions`` is a read-only view). Each inbound call's handler runs in its own task; a
raising handler is logged with the call id and the call hung up; a handler that returns without
hanging up gets the call hung up (:mod:`voxflow.telephony.inbound`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl as ssllib
import types
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from voxflow import observe
from voxflow.ari.cleanup import Backoff, retry_with_deadlines
from voxflow.ari.dispatch import Dispatcher
from voxflow.ari.events import AriEventStream
from voxflow.ari.models import (
    ApplicationReplaced,
    AriEvent,
    CallBroadcast,
    Channel,
    StasisStart,
)
from voxflow.ari.rest import AriRestClient
from voxflow.errors import AriError, ConfigError
from voxflow.telephony.agents import AgentFactory, registered_agent_factory
from voxflow.telephony.ending import cancel_after
from voxflow.telephony.inbound import INTERNAL_TECHS, adopt, on_broadcast, on_stasis_start
from voxflow.telephony.legs import LegBook
from voxflow.telephony.links import MODES, AriLink, AriLinks
from voxflow.telephony.originate import OUTBOUND_ARG, originate_leg
from voxflow.telephony.orphans import (
    OrphanPolicy,
    SweepReport,
    adopt_link_orphan,
    remove_stale_bridges,
    sweep,
)
from voxflow.telephony.recording import RecordingSink
from voxflow.telephony.resync import release_lost_link, resync_after_reconnect, resync_link_app
from voxflow.telephony.session import CallSession
from voxflow.voice.call import VoiceFactory
from voxflow.voice.prompt_cache import DEFAULT_MAX_BYTES as DEFAULT_PROMPT_CACHE_BYTES
from voxflow.voice.prompt_cache import PromptCache
from voxflow.voice.providers import LanguageModel, SpeechToText, TextToSpeech, VoiceActivityDetector

if TYPE_CHECKING:  # annotations only (the agent layer sits above telephony)
    from voxflow.agent.call_agent import CallAgent

__all__ = ["Handler", "VoxtraApp"]

log = logging.getLogger(__name__)

Handler = Callable[[CallSession], Awaitable[Any]]

_SWEEP_RETRY = Backoff(initial=0.1, cap=2.0, attempts=6)  # ~6 s at most, then the next reconnect


def _check_app_options(app_name: str, mode: str, orphans: str) -> None:
    """ConfigError for a bad ARI application name, mode or orphan policy."""
    if not app_name or "," in app_name or ":" in app_name:
        raise ConfigError(f"invalid ARI application name {app_name!r}")
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if orphans not in ("restart", "hangup"):
        raise ConfigError(f"orphans must be 'restart' or 'hangup', not {orphans!r}")


class VoxtraApp:
    """A voxflow Stasis application. Use ``async with app:`` or blocking ``app.run()``.

    ``retry_initial``/``retry_max``: backoff (seconds) between retries of a hang-up or a
    teardown Asterisk answered with a 5xx or did not answer. ``orphans``: what to do with a
    call found in the application with no session, at start-up or after a reconnect:
    ``restart`` its flow, or ``hangup`` after playing ``orphan_apology`` ("" for none).
    ``mode``: ``classic`` (voxflow connects to ``ari_url``'s events websocket), or Asterisk
    22's outbound ARI websockets: ``persistent`` / ``per_call`` (Asterisk connects to
    ``listen``, authenticating with ``listen_auth``, default ``(username, password)``; REST
    goes over those sockets, and over HTTP to ``ari_url`` only for what they refuse, binary
    recording files; ``ari_url`` may then be ""). ``claim_broadcasts``: claim the calls
    StasisBroadcast() offers (``CallBroadcast``). ``request_timeout``: seconds for each ARI
    request, and for the events websocket's connect and handshake.
    """

    _internal_techs = INTERNAL_TECHS  # channel technologies that are not calls

    def __init__(
        self,
        ari_url: str,
        username: str,
        password: str,
        app_name: str = "voxflow",
        *,
        stt: SpeechToText | None = None,
        llm: LanguageModel | None = None,
        tts: TextToSpeech | None = None,
        vad: VoiceActivityDetector | None = None,
        recording_sink: RecordingSink | None = None,
        voice_factory: VoiceFactory | None = None,
        agent_factory: AgentFactory | None = None,
        transfer_context: str = "voxflow-transfer",
        queue_context: str = "voxflow-queue",
        media_options: Mapping[str, Any] | None = None,
        request_timeout: float = 10.0,
        ping_interval: float = 15.0,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        handler_grace: float = 5.0,
        event_wait: float = 5.0,
        playback_poll: float = 5.0,
        recording_wait: float = 2.0,
        ssl: ssllib.SSLContext | bool = True,
        orphans: OrphanPolicy = "restart",
        orphan_apology: str = "sound:an-error-has-occurred",
        prompt_cache_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        mode: str = "classic",
        listen: tuple[str, int] = ("127.0.0.1", 8765),
        listen_auth: tuple[str, str] | None = None,
        link_grace: float = 10.0,
        claim_broadcasts: bool = True,
    ) -> None:
        _check_app_options(app_name, mode, orphans)
        self.mode = mode
        self._init_adoption(orphans, orphan_apology)
        self.claim_broadcasts = claim_broadcasts
        self.app_name = app_name
        self._init_voice(
            stt, llm, tts, vad, recording_sink, voice_factory, agent_factory, prompt_cache_bytes
        )
        self.transfer_context = transfer_context
        self.queue_context = queue_context
        self.media_options: Mapping[str, Any] = dict(media_options or {})
        self.handler_grace = handler_grace
        self.ended_handler_grace: float | None = None
        """Seconds the handler of an ended call may go on before it is cancelled (None:
        ``handler_grace``); a FlowServer sets its flows' ``hangup_timeout`` + ``handler_grace``."""
        self.event_wait = event_wait
        self.playback_poll = playback_poll
        self.recording_wait = recording_wait
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._rest_args = (username, password, request_timeout, ssl)
        self._init_ari(ari_url, listen, listen_auth, link_grace, ping_interval)
        self._events_args = (ping_interval, reconnect_initial, reconnect_max)
        self._events = self._event_stream()
        self._init_registries()

    def _init_voice(
        self,
        stt: SpeechToText | None,
        llm: LanguageModel | None,
        tts: TextToSpeech | None,
        vad: VoiceActivityDetector | None,
        recording_sink: RecordingSink | None,
        voice_factory: VoiceFactory | None,
        agent_factory: AgentFactory | None,
        prompt_cache_bytes: int,
    ) -> None:
        """The providers, recording sink, voice and agent factories, and the prompt cache."""
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self.vad = vad
        self.recording_sink = recording_sink
        self.voice_factory = voice_factory
        self.agent_factory = agent_factory
        # Synthesized prompts shared by all calls (0 turns it off): see voxflow.voice.prompt_cache.
        self.prompt_cache = PromptCache(prompt_cache_bytes) if prompt_cache_bytes > 0 else None

    def _init_adoption(self, orphans: OrphanPolicy, orphan_apology: str) -> None:
        """The orphan policy, and the adoption hooks cluster mode sets after construction."""
        self.orphans: OrphanPolicy = orphans
        self.orphan_apology = orphan_apology
        self.adopt_link_orphans = False  # outbound modes: see orphans.adopt_link_orphan
        # cluster mode: a link's calls not re-connected here within link_grace (see on_link_lost)
        self.links_lost: Callable[[list[CallSession]], None] | None = None
        # cluster mode: a link's calls whose link just closed (see on_link_down)
        self.links_down: Callable[[list[CallSession]], None] | None = None
        # cluster mode: a call back from a dead worker's trip gets a session (CallSession.returned)
        self.adopt_returns = False
        self.takes_return: Callable[[str], bool] | None = None
        """Without cluster mode: whether a call back from the dialplan with no session here
        gets one (``CallSession.returned``): the FlowServer kept it after it ended ``unknown``."""
        self.prefetch: Callable[[list[str]], Awaitable[None]] | None = None
        """Called by the orphan sweep with the calls it is about to adopt (cluster mode: their
        checkpoints are read at once, while the bridges holding them are removed)."""

    def _init_ari(
        self,
        ari_url: str,
        listen: tuple[str, int],
        listen_auth: tuple[str, str] | None,
        link_grace: float,
        ping_interval: float,
    ) -> None:
        """The REST client, the dispatcher and (outbound websocket modes) the links."""
        username, password, request_timeout, ssl = self._rest_args
        http_url = ari_url
        if self.mode != "classic" and not ari_url:
            ari_url = "http://127.0.0.1:8088/ari"  # never used: HTTP fallback is off
        self.ari_url = ari_url
        self.rest = AriRestClient(ari_url, username, password, timeout=request_timeout, ssl=ssl)
        self._links: AriLinks | None = None
        if self.mode != "classic":
            self._links = AriLinks(
                self,
                mode=self.mode,
                listen_auth=listen_auth or (username, password),
                http=(http_url, username, password),
                listen=listen,
                ping_interval=ping_interval,
                request_timeout=request_timeout,
                link_grace=link_grace,
            )
        self.dispatcher = Dispatcher()
        self._init_registries()

    def _init_registries(self) -> None:
        """Empty registries of sessions, routes and tasks, and the counters tests read."""
        self._sessions: dict[str, CallSession] = {}
        self._stasis_waiters: dict[str, asyncio.Future[None]] = {}
        self._routes: list[tuple[frozenset[str], dict[str, Any], Handler]] = []
        self._default: Handler | None = None
        self._handler_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closing = False
        self._legs = LegBook(self._end_leg)
        self.removed = 0  # sessions removed from the registry (for leak checks)
        self.claims_won = 0  # StasisBroadcast claims answered 204
        self.claims_lost = 0  # ... answered 409/404 (another worker won, or too late)
        self.sweeps = 0  # orphan sweeps completed (start-up, reconnects)
        self._seen: set[str] | None = None  # ids with a session during a sweep (not orphans)

    def _event_stream(self) -> AriEventStream:
        ping_interval, reconnect_initial, reconnect_max = self._events_args
        return AriEventStream(
            self.rest.base_url,
            self.rest.auth_headers(),
            self.app_name,
            on_event=self._on_event,
            on_connect=self._on_connect,
            ping_interval=ping_interval,
            backoff_initial=reconnect_initial,
            backoff_max=reconnect_max,
            connect_timeout=self._rest_args[2],  # the handshake is an ARI request too
            ssl=self._rest_args[3],
        )

    async def use_node(self, ari_url: str) -> None:
        """Serve the Asterisk node at ``ari_url`` instead (same credentials): a standby for
        several nodes learns which one it serves only once it holds that node's application
        name. Classic mode, before :meth:`start` only."""
        if self._started or self._links is not None:
            raise ConfigError("use_node: only a classic-mode app that has not started")
        if ari_url == self.ari_url:
            return
        user, password, timeout, ssl = self._rest_args
        await self.rest.close()
        self.ari_url = ari_url
        self.rest = AriRestClient(ari_url, user, password, timeout=timeout, ssl=ssl)
        self._events = self._event_stream()

    def __repr__(self) -> str:
        return (
            f"VoxtraApp({self.rest.base_url!r}, app={self.app_name!r}, calls={len(self._sessions)})"
        )

    # ------------------------------------------------------------------ registration

    def default(self) -> Callable[[Handler], Handler]:
        """Decorator: the handler for calls no route matches."""

        def register(handler: Handler) -> Handler:
            self._default = handler
            return handler

        return register

    def route(
        self, number: str | Iterable[str], *, metadata: Mapping[str, Any] | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator: handle calls to ``number`` (the dialled extension/DID, or several);
        ``metadata`` pre-populates ``call.metadata``."""
        numbers = frozenset([number] if isinstance(number, str) else number)
        if not numbers:
            raise ConfigError("route() needs at least one number")

        def register(handler: Handler) -> Handler:
            self._routes.append((numbers, dict(metadata or {}), handler))
            return handler

        return register

    @property
    def sessions(self) -> Mapping[str, CallSession]:
        """Read-only view of the active sessions by call id."""
        return types.MappingProxyType(self._sessions)

    @property
    def connected(self) -> bool:
        """True while the events websocket is up (outbound modes: any link from Asterisk)."""
        if self._links is not None:
            return self._links.connected
        return self._events.connected

    @property
    def links(self) -> AriLinks | None:
        """Asterisk's outbound websockets to this worker (None in classic mode)."""
        return self._links

    @property
    def events(self) -> AriEventStream:
        """The events websocket (counters, ``drop()`` for tests)."""
        return self._events

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check the credentials, connect the events websocket (raises on failure)."""
        if self._started:
            return
        self._closing = False
        if self._links is not None:
            await self._links.start()
            self._started = True
            return
        try:
            info: object = await self.rest.get_info()
            system = info.get("system") if isinstance(info, dict) else None
            if not isinstance(system, dict):  # a web page, a proxy's, another kind of API
                raise AriError(
                    f"{self.rest.base_url} does not answer as Asterisk's ARI (GET /asterisk/info "
                    "gave no 'system' object): is the URL http://HOST:8088/ari?"
                )
            version = system.get("version", "?")
            log.info(
                "connected to Asterisk %s at %s as app %s",
                version,
                self.rest.base_url,
                self.app_name,
            )
            await self._events.start()
        except BaseException:
            await self.rest.close()
            raise
        self._started = True

    async def close(self) -> None:
        """Hang up live calls, let handlers finish (up to ``handler_grace``), disconnect."""
        if self._closing:
            return
        self._closing = True
        live = [s for s in self._sessions.values() if not s.ended]
        if live:
            hangups = {asyncio.ensure_future(s.hangup()): s for s in live}
            _, pending = await asyncio.wait(hangups, timeout=self.handler_grace)
            for task in pending:
                task.cancel()
            for task, session in hangups.items():
                if task in pending or task.exception() is not None:
                    why = "unconfirmed" if task in pending else task.exception()
                    log.error("hangup of %s at shutdown failed (%s); releasing it", session.id, why)
                    session._gone()
        handlers = list(self._handler_tasks.values())
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=self.handler_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._drain_tasks()
        await self._events.close()
        if self._links is not None:
            await self._links.close()
        if self.prompt_cache is not None:
            await self.prompt_cache.aclose()
        await self.rest.close()
        self._started = False

    async def _drain_tasks(self) -> None:
        """Let background tasks (teardowns, leg hang-ups retrying a failing Asterisk) finish for
        up to ``handler_grace`` seconds, then cancel them: closing never hangs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.handler_grace
        while self._tasks:
            left = deadline - loop.time()
            if left <= 0:
                stuck = list(self._tasks)
                log.warning("cancelling %d background tasks still running at close", len(stuck))
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)
                return
            await asyncio.wait(list(self._tasks), timeout=left)

    async def __aenter__(self) -> VoxtraApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or the app name is taken over: ApplicationReplacedError)."""
        stop = stop or asyncio.Event()
        async with self:
            if self._links is not None:  # outbound modes: no app name to lose
                await stop.wait()
                return
            stopper = asyncio.ensure_future(stop.wait())
            replaced = asyncio.ensure_future(self._events.wait_closed())
            try:
                await asyncio.wait({stopper, replaced}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                replaced.cancel()
            if replaced.done() and not replaced.cancelled():
                replaced.result()

    def run(self) -> None:
        """Blocking: serve until SIGINT/SIGTERM, then stop cleanly."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            try:
                await self.serve(stop)
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)
            log.info("voxflow app %s stopped", self.app_name)

        asyncio.run(main())

    # ------------------------------------------------------------------ outbound

    async def originate(
        self,
        endpoint: str,
        *,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout: int = 30,
        metadata: Mapping[str, Any] | None = None,
        owner: CallSession | None = None,
    ) -> CallSession:
        """Dial ``endpoint`` (e.g. ``PJSIP/alice``) and wait until it answers or fails. Returns an
        OUTBOUND session: IN_PROGRESS, or FAILED with ``failure_reason`` (busy, no answer...).

        The leg belongs to ``owner`` (default: the call whose handler is running, if any): it is
        hung up when the owner ends, and when this coroutine is cancelled before it answered."""
        return await originate_leg(
            self,
            endpoint,
            caller_id=caller_id,
            variables=variables,
            timeout=timeout,
            metadata=metadata,
            owner=owner,
        )

    def _end_leg(self, leg: CallSession) -> None:
        """Hang ``leg`` up in the background (retried until Asterisk confirms it is gone)."""
        if not leg.ended:
            self._spawn(self._hangup_quietly(leg, "normal"), f"end-leg-{leg.id}")

    async def _hangup_quietly(self, session: CallSession, reason: str) -> None:
        try:
            await session.hangup(reason=reason)
        except AriError as exc:
            log.warning("hanging up %s failed: %s", session.id, exc)

    # ------------------------------------------------------------------ events

    def on_link_event(self, link: AriLink, event: AriEvent) -> None:
        """An event from one of Asterisk's outbound websockets."""
        kind = type(event)
        if kind is StasisStart or kind is CallBroadcast:
            assert self._links is not None
            name = link.app_name or event.application
            rest = self._links.rest_for(name)
            if kind is StasisStart:
                on_stasis_start(self, event, rest, name)  # type: ignore[arg-type]  # tested above
            else:
                on_broadcast(self, event, rest, name)  # type: ignore[arg-type]  # tested above
            return
        if kind is ApplicationReplaced:  # only that link's app name (per call: one call's)
            self._on_replaced(link.app_name or str(getattr(event, "application", "")))
            return
        self._on_event(event)

    def app_in_use(self, app_name: str) -> bool:
        """A live call is driven through the ARI app ``app_name`` (outbound websockets)."""
        return any(s.ari_app == app_name and not s.ended for s in self._sessions.values())

    def awaits_link(self, app_name: str) -> bool:
        """A live call not away in the dialplan is driven through ``app_name``: its requests
        wait while that link is down (``AriLinks.link_back``)."""
        return any(
            s.ari_app == app_name and not s.ended and s._trip is None
            for s in self._sessions.values()
        )

    def resync_app(self, app_name: str, channel_ids: set[str]) -> list[str]:
        """See :func:`voxflow.telephony.resync.resync_link_app`."""
        return resync_link_app(self, app_name, channel_ids)

    def on_link_lost(self, app_name: str) -> None:
        """See :func:`voxflow.telephony.resync.release_lost_link`."""
        release_lost_link(self, app_name)

    def on_link_down(self, app_name: str) -> None:
        """``app_name``'s link closed: in cluster mode (``links_down``) its live calls that are
        not away in the dialplan are watched (another worker may adopt them meanwhile)."""
        live = [
            s
            for s in self._sessions.values()
            if s.ari_app == app_name and not s.ended and s._trip is None
        ]
        if live and self.links_down is not None:
            self.links_down(live)

    def link_up(self, app_name: str) -> bool:
        """An outbound link serves ``app_name`` now (classic mode: False)."""
        return self.links is not None and self.links.up(app_name)

    def _on_event(self, event: AriEvent) -> None:
        kind = type(event)  # (``is`` tests: isinstance on pydantic classes costs ~100 ns)
        if kind is StasisStart:
            on_stasis_start(self, cast(StasisStart, event))  # `is` does not narrow for mypy
            return
        if kind is ApplicationReplaced:
            self._on_replaced()
            return
        if kind is CallBroadcast:
            on_broadcast(self, event, self.rest, self.app_name)  # type: ignore[arg-type]  # tested
            return
        for cid in self.dispatcher.route(event):
            session = self._sessions.get(cid)
            if session is not None:
                session._on_event(event)

    def _on_replaced(self, ari_app: str | None = None) -> None:
        """Another client took the application name (``ari_app``: one outbound websocket's, whose
        calls away in the dialplan come back over the newer one): its calls are no longer ours
        to drive. Each session is finalised now (callbacks, sinks, registry), not hung up."""
        live = [
            s
            for s in self._sessions.values()
            if not s.ended and (ari_app is None or (s.ari_app == ari_app and s._trip is None))
        ]
        name = ari_app or self.app_name
        log.error("application %s replaced by another connection; releasing %d calls to it",
                  name, len(live))  # fmt: skip
        for session in live:
            session._left_stasis = True  # the handler's finally must not hang it up
            session._gone()

    def expect_stasis_start(self, channel_id: str) -> asyncio.Future[None]:
        """A future resolved by ``channel_id``'s StasisStart. Register it before creating the
        channel (an externalMedia or snoop channel enters Stasis only after the REST answer
        that created it); cancel it to give up (the registration goes with it)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stasis_waiters[channel_id] = fut

        def forget(done: asyncio.Future[None]) -> None:
            if self._stasis_waiters.get(channel_id) is done:
                del self._stasis_waiters[channel_id]

        fut.add_done_callback(forget)
        return fut

    def _adopt(
        self, channel: Channel, rest: AriRestClient | None = None, ari_app: str | None = None
    ) -> None:
        """See :func:`voxflow.telephony.inbound.adopt`."""
        adopt(self, channel, rest, ari_app)

    def adopt_link_orphan(self, channel: Channel, app_name: str) -> bool:
        """See :func:`voxflow.telephony.orphans.adopt_link_orphan`."""
        return adopt_link_orphan(self, channel, app_name)

    async def remove_stale_bridges(
        self, rest: AriRestClient, app_name: str, bridge_ids: set[str]
    ) -> list[str]:
        """See :func:`voxflow.telephony.orphans.remove_stale_bridges`."""
        return await remove_stale_bridges(self, rest, app_name, bridge_ids)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        for cid, t in list(self._handler_tasks.items()):
            if t is task:
                del self._handler_tasks[cid]

    async def _on_connect(self, reconnected: bool) -> None:
        """At start-up (in the background: start() does not wait) and after every reconnect
        (before events flow again): reconcile known sessions, then adopt or end the application's
        channels that have none and remove orphaned media and bridges."""
        observe.moment("connected")
        if not reconnected:
            self._spawn(self._sweep_logged(), "orphan-sweep")
            return
        # 5xx and connection errors are retried (bounded): a sweep given up leaves a call whose
        # StasisStart was lost in Stasis, unserved, until the next reconnect. A listing that
        # timed out goes again with twice the deadline: an overloaded Asterisk answers late.
        await retry_with_deadlines(
            self.resync, "ARI resync after reconnect", base=self.rest.timeout, backoff=_SWEEP_RETRY
        )
        await self._sweep_logged()

    async def _sweep_logged(self) -> None:
        await retry_with_deadlines(
            self.sweep_orphans,
            "sweeping orphaned calls, media and bridges",
            base=self.rest.timeout,
            backoff=_SWEEP_RETRY,
        )

    async def sweep_orphans(self, deadline: float | None = None) -> SweepReport:
        """See :func:`voxflow.telephony.orphans.sweep` (also run at start-up and reconnect;
        ``deadline``: its listings' own, else the client's)."""
        self._seen = set()
        try:
            report = await sweep(self, outbound_arg=OUTBOUND_ARG, deadline=deadline)
        finally:
            self._seen = None
        self.sweeps += 1
        return report

    async def resync(self, deadline: float | None = None) -> None:
        """See :func:`voxflow.telephony.resync.resync_after_reconnect`."""
        await resync_after_reconnect(self, deadline)

    # ------------------------------------------------------------------ internals for sessions

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def _session_ended(self, session: CallSession) -> None:
        """``session`` ended: its dialled legs must not outlive it; requests waiting for its
        link stop waiting."""
        self._legs.owner_ended(session)
        if self.links is not None:
            self.links.wake(session.ari_app)

    def _session_closed(self, session: CallSession) -> None:
        self._legs.forget(session)
        if self._seen is not None:
            self._seen.add(session.id)
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
            self.removed += 1
        self.dispatcher.forget_channel(session.id)
        task = self._handler_tasks.get(session.id)
        if task is not None and not task.done():
            grace = self.ended_handler_grace
            grace = self.handler_grace if grace is None else grace
            self._spawn(cancel_after(task, grace), f"grace-{session.id}")

    def _voice_factory(self) -> VoiceFactory | None:
        if self.voice_factory is not None:
            return self.voice_factory
        from voxflow.media.callmedia import create_call_voice  # numpy/soxr load on first call

        return create_call_voice

    def _make_agent(self, session: CallSession) -> CallAgent:
        factory = self.agent_factory or registered_agent_factory()
        if factory is None:
            raise ConfigError(
                "call.agent: no agent layer loaded (import voxflow.agent, or pass "
                "VoxtraApp(agent_factory=...))"
            )
        return factory(session)

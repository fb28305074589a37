"""Serving flows on an ARI application: route each call, run it with a CallDriver.

:class:`FlowServer` wires a :class:`~voxflow.runtime.registry.FlowRegistry` to a ``VoxtraApp``:
each inbound call is routed by its dialed number to the current version of a flow (pinned for
the whole call), and run by a :class:`~voxflow.runtime.driver.CallDriver`. ``serve()`` stops
taking calls when ``stop`` is set, lets calls in progress finish for ``grace_period`` seconds,
then hangs them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxflow import observe
from voxflow.errors import CallError, ConfigError
from voxflow.ir.models import Flow
from voxflow.ir.prompts import StaticPrompt, static_prompts
from voxflow.redact import is_secret_name, live_values
from voxflow.runtime.away import LocalAwayCalls
from voxflow.runtime.checkpoint import (
    AwayCalls,
    CallStore,
    Checkpoint,
    Ending,
    ended_state,
    ending_checkpoint,
    flow_hash,
    resume_state,
    resume_trip,
)
from voxflow.runtime.checkpointing import (
    agent_checkpoints,
    checkpointer,
    kept_for_return,
    restore_agent,
)
from voxflow.runtime.config import Settings
from voxflow.runtime.driver import AgentRunner, CallDriver, EndClaim, TranscriptLine
from voxflow.runtime.events import LEFT_OUTCOMES, End
from voxflow.runtime.http_step import HttpClient
from voxflow.runtime.port import PeerCall
from voxflow.runtime.redaction import RedactingTrace, Redactor
from voxflow.runtime.registry import FlowRegistry, FlowVersion, ReleasedFlows, Router
from voxflow.runtime.results import DEFAULT_RESULTS_KEPT, RecentResults
from voxflow.runtime.runstate import RunState
from voxflow.runtime.trace import CallTrace, NullTrace, TraceWriter
from voxflow.runtime.unserved import EndedCall
from voxflow.runtime.webhooks import WebhookSender
from voxflow.telephony.handover import close_links, release
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallDirection

if TYPE_CHECKING:
    from voxflow.telephony.app import VoxtraApp
    from voxflow.voice.prompt_cache import PromptCache
    from voxflow.voice.providers import TextToSpeech

__all__ = ["FlowServer"]

log = logging.getLogger(__name__)

BALANCER_CHECKS = 3  # failed /readyz checks a draining worker waits for (HAProxy's ``fall``)
BALANCER_WAIT = 5.0  # ... for at most this long (s)
MOVED_POLL = 0.2  # s between two reads of the registry entries of calls whose link is down


class FlowServer:
    """Runs every call of ``app`` through the flows of ``registry``."""

    def __init__(
        self,
        app: VoxtraApp,
        registry: FlowRegistry,
        settings: Settings,
        *,
        on_transcript: Callable[[str, TranscriptLine], None] | None = None,
        watch_interval: float | None = None,
        on_reload: Callable[[FlowRegistry], None] | None = None,
        agent_runner: AgentRunner | None = None,
        clock: Callable[[], float] = time.time,
        results_kept: int = DEFAULT_RESULTS_KEPT,
        store: CallStore | None = None,
    ) -> None:
        """``results_kept``: how many recent calls' outcomes ``results`` keeps (the oldest are
        dropped; every call's outcome also goes to its trace and ``call.ended`` webhook).
        ``store`` (cluster mode): the calls' registry and checkpoints; a call that has a
        checkpoint there resumes at its checkpointed state on the flow version it started on."""
        self.store = store
        self.away: AwayCalls = LocalAwayCalls(settings.away_ttl) if store is None else store.away
        """The calls that ended ``unknown``, kept for their return: in this process's memory,
        or (cluster mode) in Redis."""
        if isinstance(self.away, LocalAwayCalls):  # a call back that it keeps gets a session
            app.takes_return = self.away.__contains__
        if store is not None:  # calls Asterisk re-connects from a dead worker resume here
            app.adopt_link_orphans = True
            app.adopt_returns = True  # a dead worker's call back from the dialplan goes on here
            app.links_lost = self._links_lost
            app.links_down = self._links_down
            app.prefetch = store.prefetch  # a dead worker's calls: checkpoints in one read
        self.resumed = 0  # calls resumed from a checkpoint (metrics)
        self.handed_over = 0  # calls handed over to another worker while draining (metrics)
        self._lost_links: set[asyncio.Task[None]] = set()  # see _links_lost
        self._after_unknown: dict[str, Checkpoint] = {}  # back after they ended 'unknown'
        self._down: dict[str, CallSession] = {}  # calls whose link is down (see _links_down)
        self._watcher: asyncio.Task[None] | None = None  # reads their registry entries
        self.ended_for_dead = 0  # ends run for a dead worker's call whose channel was gone
        self.readiness_checks = 0  # /readyz answers (see readiness_checked)
        self.not_ready_checks = 0  # of which 503 (draining): the balancer takes us out
        self._checked = asyncio.Event()
        self._hashes: dict[int, tuple[Flow, str]] = {}
        self.app = app
        self.clock = clock  # the calls' wall clock (``voxflow run --time`` shifts it)
        self.registry = registry
        self.settings = settings
        self.router = Router(registry, settings.default_flow)
        self._released_router: tuple[tuple[tuple[str, str], ...], Router] | None = None
        self.http = HttpClient()
        self.webhooks = WebhookSender(
            settings.webhook_url, settings.webhook_secret, retry=settings.webhook_retry()
        )
        if store is not None:  # end-of-call webhooks pending in the store until delivered
            store.attach_webhooks(self.webhooks)
        self.on_transcript = on_transcript
        self.watch_interval = watch_interval
        self.on_reload = on_reload
        self.agent_runner = agent_runner  # None: the default runner when the app has an LLM
        self.drivers: dict[str, CallDriver[CallSession]] = {}
        self.results = RecentResults(results_kept)
        self.accepting = True
        self._idle = asyncio.Event()
        self._idle.set()
        self._call_left = asyncio.Event()  # set whenever a call's driver is gone
        self._warming: set[asyncio.Task[None]] = set()
        self._warm_lock = asyncio.Lock()  # one warm-up at a time: the calls' CPU comes first
        self._registry_warmed = False
        # an ended call's handler runs its flow's ``on hangup`` body, which the driver bounds
        # (hangup_timeout): the app's grace counts after that ceiling, not instead of it
        app.ended_handler_grace = settings.hangup_timeout + app.handler_grace
        app.default()(self._handle)

    def warm_registry(self) -> None:
        """:meth:`warm` the registry's flows, once (``serve`` calls it; a standby worker calls
        it before it waits for the app name, so that it takes calls over with warm prompts)."""
        if not self._registry_warmed:
            self._registry_warmed = True
            self.warm(fv.flow for fv in self.registry.versions())

    def warm(self, flows: Iterable[Flow]) -> None:
        """Pre-synthesize the static prompts of ``flows`` into the app's prompt cache in a
        background task (never awaited by a call: a call asking for a prompt being synthesized
        joins that synthesis). Off with ``warm_prompts = false`` or without TTS or cache."""
        app = self.app
        if not self.settings.warm_prompts or app.tts is None or app.prompt_cache is None:
            return
        prompts = [p for flow in flows for p in static_prompts(flow)]
        if prompts:
            task = asyncio.ensure_future(self._warm(app.tts, app.prompt_cache, prompts))
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def _warm(
        self, tts: TextToSpeech, cache: PromptCache, prompts: list[StaticPrompt]
    ) -> None:
        from voxflow.media.prompt_warm import warm_prompts  # numpy/soxr: loaded with audio only

        async with self._warm_lock:
            n = await warm_prompts(cache, tts, prompts, self.app.media_options)
        log.info("prompt cache warmed: %d of %d static prompt(s)", n, len(prompts))

    async def _route(self, number: str) -> FlowVersion | None:
        """The flow version a new call to ``number`` takes: in cluster mode routed over the
        cluster's released flows (with this worker's own for flows nobody released)."""
        if self.store is None:
            return self.router.route(number)
        released = await self.store.released()
        key = tuple(sorted((name, h) for name, (h, _) in released.items()))
        if self._released_router is None or self._released_router[0] != key:
            try:
                router = Router(ReleasedFlows(self.registry, released), self.settings.default_flow)
            except ConfigError as exc:  # the default flow is in neither set: route locally
                log.warning("routing by this worker's flows: %s", exc)
                router = self.router
            self._released_router = (key, router)
            self.warm(flow for _, flow in released.values())  # a version another worker released
        return self._released_router[1].route(number)

    async def _handle(self, session: CallSession) -> None:
        if session.returned:  # a dead worker's call back from the dialplan (cluster mode)
            fv = await self._returned(session)
        else:
            fv = await self._route(session.called_number)
        if fv is None or not self.accepting:
            self._after_unknown.pop(str(session.id), None)
            log.warning("call %s to %r: no flow takes it", session.id, session.called_number)
            await session.hangup("normal")
            return
        await self._run_call(fv, session)

    async def _returned(self, session: CallSession) -> FlowVersion | None:
        """The flow version a call back from the dialplan goes on with: the one its checkpoint
        of the trip is pinned to (its dialled number is the dialplan's now), that of its dead
        worker (cluster mode) or the one kept when it ended ``unknown`` (:attr:`away`); None
        when it has no checkpoint of that trip or the version is unreadable."""
        sid, store = str(session.id), self.store
        cp = None if store is None else await store.checkpoint(sid)
        if store is not None and cp is not None and cp.trip is not None:
            flow = await store.flow(cp.flow_hash)  # its worker died while it was out
        else:
            back = await self.away.come_back(sid)
            if back is None:
                log.warning("call %s came back: nothing of it is kept to go on with", sid)
                return None
            log.warning("call %s came back after it ended 'unknown': its flow goes on", sid)
            cp, flow = back
            self._after_unknown[sid] = cp  # its second call.ended takes a key of its own
        if flow is None:
            log.warning("call %s came back: its flow version %s is unreadable", sid, cp.flow_hash)
            return None
        local = self.registry.get(flow.name)
        if local is not None and (store is not None or local.flow is flow):
            return local  # (cluster mode: the call's begin gives its pinned version)
        return FlowVersion(flow, Path(f"<version {cp.flow_hash[:12]}>"), 0, 0)

    async def call_out(
        self,
        flow_name: str,
        endpoint: str,
        *,
        caller_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timeout: int = 30,
    ) -> End:
        """Place an outbound call to ``endpoint`` (``PJSIP/alice``) and run ``flow_name`` on it
        once answered; ``metadata`` pre-populates ``call.metadata``. Returns the call's End:
        ``failed`` with the reason (busy, no answer...) when it was not answered."""
        fv = self.registry.get(flow_name)
        if fv is None:
            names = ", ".join(sorted(v.flow.name for v in self.registry.versions()))
            raise ConfigError(f"no flow '{flow_name}' is loaded (loaded: {names})")
        if not self.accepting:
            raise CallError("the server is stopping: no new calls")
        session = await self.app.originate(
            endpoint, caller_id=caller_id, metadata=metadata, timeout=timeout
        )
        if session.ended:
            reason = session.failure_reason or "failed"
            end = End("failed", reason)
            self.results[str(session.id)] = end
            return end
        return await self._run_call(fv, session)

    def _hash(self, flow: Flow) -> str:
        got = self._hashes.get(id(flow))
        if got is None or got[0] is not flow:
            got = self._hashes[id(flow)] = (flow, flow_hash(flow))
        return got[1]

    async def _begin(self, flow: Flow, sid: str) -> tuple[Flow, str, Checkpoint | None]:
        """Cluster mode: register the call; a checkpointed call gets its pinned version, a new
        call the cluster's current version of the flow."""
        assert self.store is not None
        fhash = self._hash(flow)
        cp, current = await self.store.begin(sid, flow, fhash)
        if cp is None and current is not None and current != fhash:
            released = await self.store.flow(current)
            if released is not None:
                return released, current, None
        if cp is None or cp.flow_hash == fhash:
            return flow, fhash, cp
        pinned = await self.store.flow(cp.flow_hash)
        if pinned is None:
            log.warning("call %s: its flow version %s is gone; starting over", sid, cp.flow_hash)
            return flow, fhash, None
        return pinned, self._hash(pinned), cp

    async def _run_call(self, fv: FlowVersion, session: CallSession) -> End:
        sid = str(session.id)
        flow, back = fv.flow, self._after_unknown.pop(sid, None)
        fhash, cp = self._hash(flow), back  # without a store: the checkpoint kept for its return
        running: list[CallDriver[CallSession]] = []  # the redactor reads its state
        trip: list[Checkpoint | None] = [None]  # kept for its return if it ends 'unknown'
        if self.store is not None:
            flow, fhash, cp = await self._begin(flow, sid)
            if cp is not None:
                observe.moment("checkpoint", sid)
                if await self.store.end_claimed_elsewhere(sid):
                    return await self._ended_before(session, fhash, cp)
        after_step = checkpointer(self.store, sid, fhash, session, running, trip)
        redactor = Redactor(flow, lambda: running[0].state if running else None)
        sink = self._transcript_sink(sid, redactor)
        if self.store is not None:
            sink = agent_checkpoints(sink, after_step, running)
        driver = CallDriver(
            flow,
            session,
            http=self.http,
            webhooks=self.webhooks,
            trace=self._call_trace(fv, session, redactor, cp, back is not None),
            max_steps=self.settings.max_steps,
            on_transcript=sink,
            agent_runner=self.agent_runner,
            clock=self.clock,
            after_step=after_step,
            end_claim=None if self.store is None else _claimer(self.store, sid, fhash),
            journal=None if self.store is None else _journal(self.store, sid),
            hangup_timeout=self.settings.hangup_timeout,
        )
        if back is not None:
            driver.ended_key = f"{sid}:call.ended:returned"
        if cp is not None:
            self._resume(driver, session, cp)
        running.append(driver)
        self.drivers[str(session.id)] = driver
        self._idle.clear()
        self.webhooks.redactors[str(session.id)] = redactor.payload
        try:
            with live_values(redactor.values):
                end = await driver.run()
            if driver.handed_over:  # its checkpoint and registry entry stay for the next worker
                if self.store is not None:
                    self.store.let_go(sid)
                return end
            if not driver.ended_elsewhere:  # else another worker ended (and counted) it
                self.results[str(session.id)] = end
            elif self.store is not None and await self.store.moved(sid):
                self.store.let_go(sid, pending=False)  # its entry is that worker's: it stays
                return end
            await self._ended(sid, end, kept_for_return(driver, trip[0]))
            return end
        except asyncio.CancelledError:
            # The app cancels a handler still running after its call ended (its grace, past
            # hangup_timeout); when the flow had already ended, its outcome stands.
            if driver.outcome is not None and not driver.handed_over:
                if not driver.ended_elsewhere:
                    self.results[str(session.id)] = driver.outcome
                await self._ended(sid, driver.outcome, kept_for_return(driver, trip[0]))
            raise
        finally:
            running.clear()  # the checkpointer (driver.after_step) holds it: a cycle
            session.on_queue_prio = None  # -> the checkpointer -> the session: a cycle
            self.webhooks.redactors.pop(str(session.id), None)
            self.drivers.pop(str(session.id), None)
            self._call_left.set()
            if not self.drivers:
                self._idle.set()

    def _call_trace(
        self,
        fv: FlowVersion,
        session: CallSession,
        redactor: Redactor,
        cp: Checkpoint | None = None,
        after_unknown: bool = False,
    ) -> CallTrace:
        """The call's trace (redacted), opened with its ``call.started`` record; a null trace
        without ``trace_dir``. A call back from the dialplan (``session.returned``) to go on
        at checkpoint ``cp`` records the Stasis arguments it came back with (``returned``), the
        number it called first (the dialplan's extension is its number now) and whether it had
        ended ``unknown`` (``after_unknown``: its trace has that first end)."""
        if not self.settings.trace_dir:
            return NullTrace()
        trace = RedactingTrace(
            TraceWriter(Path(self.settings.trace_dir), str(session.id), clock=_loop_clock()),
            redactor,
        )
        outbound = session.direction is CallDirection.OUTBOUND
        back: dict[str, Any] = {}
        if session.returned and cp is not None:
            back = {"returned": ",".join(session.returned), "after_unknown": after_unknown}
        called = cp.call[1] if back and cp is not None and len(cp.call) == 3 else None
        trace.write(
            "call.started",
            flow=fv.flow.name,
            version=fv.version,
            caller=session.caller_id,
            called=called or session.called_number,
            direction="outbound" if outbound else "inbound",
            speech=session.providers.stt is not None,
            metadata=_traced_metadata(session.metadata),
            started=round(self.clock(), 3),
            hangup_timeout=self.settings.hangup_timeout,  # the on hangup body's ceiling
            max_steps=self.settings.max_steps,  # the step budget between two waits
            routes=True,  # this trace has route records (voxflow.runtime.routes)
            requests=True,  # ... with what requests sent, and agents' action requests
            **back,
        )
        return trace

    def _transcript_sink(
        self, sid: str, redactor: Redactor
    ) -> Callable[[TranscriptLine], None] | None:
        """``on_transcript`` for call ``sid``, its lines redacted (None without a callback)."""
        cb = self.on_transcript
        if cb is None:
            return None

        def shown(line: TranscriptLine) -> None:
            cb(sid, (line[0], line[1], redactor.transcript(line[2], line[1])))

        return shown

    def _resume(
        self, driver: CallDriver[CallSession], session: CallSession, cp: Checkpoint
    ) -> None:
        """Put ``driver`` where checkpoint ``cp`` left the call (and its agent's history); a
        checkpoint this flow version cannot resume is logged and the call starts over."""
        sid, flow = str(session.id), driver.flow
        back = resume_trip(flow, driver.state, cp, session.returned, self.clock())
        if back is not None:  # out in the dialplan when its worker died: the step's outcome
            driver.state, driver.first_event = back
            self.resumed += 1
            driver.resumed = True
            op = cp.trip["op"] if cp.trip else ""
            log.info("call %s goes on at its %s step in state %s", sid, op, cp.state)
            session.queue_prio_before = cp.queue_prio
            restore_agent(session, cp)
            return
        try:
            driver.state = resume_state(flow, driver.state, cp)
        except ValueError as exc:
            log.warning("call %s: %s; starting over", sid, exc)
            return
        self.resumed += 1
        driver.resumed = True
        observe.moment("entered", sid)
        log.info("call %s resumes in state %s of flow %s", sid, cp.state, flow.name)
        session.queue_prio_before = cp.queue_prio
        restore_agent(session, cp)

    async def end_unserved(
        self, sid: str, fhash: str, cp: Checkpoint | None, webhook: bool = True
    ) -> End | None:
        """Cluster mode: run the end of call ``sid`` whose worker died and whose channel is
        gone (the reaper calls it): from checkpoint ``cp`` (None: the call had none yet) on flow
        version ``fhash``, as if the caller hung up in the checkpointed state
        (:mod:`voxflow.runtime.unserved`); claimed like any end, so it happens once across the
        cluster. Its registry entry and checkpoint go. None (nothing done, left to a later
        round or another worker) when the flow version cannot be read, or this worker drains.
        ``webhook=False``: no ``call.ended`` (the dead worker claimed the end and left it in
        the outbox), and the outcome is not counted here; the dead worker's end record
        (:class:`~voxflow.runtime.checkpoint.Ending`) gives the outcome and the ``on hangup``
        HTTP steps it completed (not sent again)."""
        assert self.store is not None
        if not self.accepting:
            return None
        flow = await self.store.flow(fhash)
        if flow is None:
            log.warning("call %s ended unserved: its flow version %s is unreadable", sid, fhash)
            return None
        ending = Ending() if webhook else await self.store.ending(sid)
        cp = ending.at or cp  # where its end started, when its worker recorded it
        driver: CallDriver[PeerCall] = CallDriver(
            flow,
            EndedCall(sid, cp),
            http=self.http,
            webhooks=self.webhooks if webhook else None,
            max_steps=self.settings.max_steps,
            clock=self.clock,
            end_claim=_claimer(self.store, sid, fhash, here=False),
            journal=_journal(self.store, sid),
            replayed=ending.done,
            hangup_timeout=self.settings.hangup_timeout,
        )
        driver.state = replace(driver.state, end=ending.end)
        if cp is not None:
            try:
                driver.state = ended_state(flow, driver.state, cp, ending.end)
            except ValueError as exc:  # a state this version lacks: the end without its body
                log.warning("call %s ended unserved: %s", sid, exc)
        redactor = Redactor(flow, lambda: driver.state)
        if self.settings.trace_dir:
            writer = TraceWriter(Path(self.settings.trace_dir), sid, clock=_loop_clock())
            driver.trace = RedactingTrace(writer, redactor)
        self.webhooks.redactors[sid] = redactor.payload
        try:
            with live_values(redactor.values):
                end = await driver.run()
        finally:
            self.webhooks.redactors.pop(sid, None)
        if not driver.ended_elsewhere:
            if webhook:
                self.results[sid] = end
            self.ended_for_dead += 1
            log.warning(
                "call %s ended while no worker served it: its end ran here (%s)", sid, end.outcome
            )
        await self._ended(sid, end)
        return end

    async def _ended_before(self, session: CallSession, fhash: str, cp: Checkpoint) -> End:
        """A call adopted from a worker that had claimed its end already (it died between the
        claim and the hang-up): hung up, not resumed; its ``call.ended`` is that worker's (in
        the outbox), not repeated here. When that worker is dead its claim is taken over and
        the ``on hangup`` body of the checkpointed state runs again (same keys)."""
        assert self.store is not None
        sid = str(session.id)
        log.warning("call %s: its end was claimed by another worker: hanging it up", sid)
        end = End("ended_elsewhere", "the call ended on another worker")
        try:
            await session.hangup("normal")
        except Exception as exc:  # as the driver's hang-up: logged, never raised to the app
            log.warning("call %s: hangup failed: %s", sid, exc)
        if await self.store.take_dead_claim(sid):
            log.warning("call %s: its worker died during its end: finishing it here", sid)
            if await self.end_unserved(sid, fhash, cp, False) is not None:
                return end
        await self._ended(sid, end)
        return end

    async def _ended(self, sid: str, end: End, kept: tuple[Checkpoint, Flow] | None = None) -> None:
        """The checkpoint of a call that ended ``unknown`` (away, no word from Asterisk) and
        its flow version, ``kept``, are kept for its return (:attr:`away`): where the return
        reaches (this process; any worker in cluster mode) the flow goes on. Cluster mode: the
        call's checkpoint and registry entry go (once, across workers)."""
        if kept is not None and end.outcome == "unknown":
            await asyncio.shield(self.away.keep_away(sid, *kept))
        if self.store is not None:
            await asyncio.shield(self.store.end(sid, end.outcome))

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then drain (grace period) and close."""
        self.warm_registry()
        async with self.app:
            watcher = None
            if self.watch_interval:
                watcher = asyncio.ensure_future(self._watch(stop))
            replaced = asyncio.ensure_future(self.app.events.wait_closed())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({replaced, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if replaced.done() and not replaced.cancelled():
                    replaced.result()
            finally:
                stopper.cancel()
                replaced.cancel()
                if watcher is not None:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                await self.drain()
                for task in list(self._warming):
                    task.cancel()
                await asyncio.gather(*self._warming, return_exceptions=True)

    async def drain(self) -> None:
        """Stop taking calls; hand the calls in progress over (``drain = "handover"``, cluster
        mode), or wait up to the grace period for them, then hang up."""
        self.accepting = False
        self.app.claim_broadcasts = False  # a StasisBroadcast() call is another worker's now
        handover = self.settings.drain == "handover" and self.store is not None
        links = self.app.links
        if handover and links is not None:  # outbound modes: no new socket reaches us
            links.refuse()
            if self.drivers:
                await self._balancer_gone()
        if self.drivers and handover:
            await self._hand_over()
        if self.drivers:
            n = len(self.drivers)
            log.info("waiting up to %.0f s for %d call(s)", self.settings.grace_period, n)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.settings.grace_period)
            left = list(self.drivers.values())
            if left:
                log.warning("grace period over: hanging up %d call(s)", len(left))
            for d in left:
                d.hang_up("grace period over")  # traced as the app's hang-up, not the caller's
            await self._hang_up_all(left)
            await self._hangup_bodies()
        for task in list(self._lost_links):  # link watchers of calls that are gone now
            task.cancel()
        await asyncio.gather(*self._lost_links, return_exceptions=True)
        await self.webhooks.aclose()
        await self.http.aclose()

    async def _hangup_bodies(self) -> None:
        """Let the calls' ``on hangup`` bodies run to their end, each within its ceiling
        (``hangup_timeout``: the driver cuts one at it, and its end says so), then their ends
        (hang-up, trace, webhook) for at most 5 s."""
        bodies = [asyncio.ensure_future(d.flow_done()) for d in self.drivers.values()]
        if bodies:
            wait = self.settings.hangup_timeout + self.app.handler_grace
            log.info("waiting up to %.0f s for the on hangup work of the calls", wait)
            _, pending = await asyncio.wait(bodies, timeout=wait)
            for task in pending:
                task.cancel()  # the wait only (shielded)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), 5.0)

    async def _hand_over(self) -> None:
        """Stop every call that is in its flow's states without ending it, leave its channel
        in Stasis and its checkpoint in the store (the worker taking the application name
        over resumes it); calls starting or ending are left to finish."""
        moved = [sid for sid, d in list(self.drivers.items()) if d.hand_over()]
        sessions = [self.app.sessions[sid] for sid in moved if sid in self.app.sessions]
        for sid in moved:  # before the handlers return: their end must not hang the call up
            release(self.app, sid)
        self.handed_over += len(moved)
        if moved:
            log.warning("handed %d call(s) over to the next worker", len(moved))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0  # each driver returns within a loop turn or two
        while any(sid in self.drivers for sid in moved) and loop.time() < deadline:
            self._call_left.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._call_left.wait(), deadline - loop.time())
        if self.store is not None:
            await self.store.flush()
        await close_links(self.app, sessions)  # outbound modes: Asterisk re-connects them

    def _links_lost(self, sessions: list[CallSession]) -> None:
        """Cluster mode: Asterisk did not re-connect these calls' outbound link here within
        its grace (``VoxtraApp.links_lost``); each is let go or ended, in the background."""
        for session in sessions:
            task = asyncio.ensure_future(self._link_lost(session))
            self._lost_links.add(task)  # referenced until done (one Redis read)
            task.add_done_callback(self._lost_links.discard)

    def _links_down(self, sessions: list[CallSession]) -> None:
        """Cluster mode: these calls' outbound link just closed (``VoxtraApp.links_down``):
        each is watched until its link is back, it ends, or another worker adopts it."""
        for session in sessions:
            self._down[str(session.id)] = session
        if self._watcher is None or self._watcher.done():
            task = asyncio.ensure_future(self._watch_moved())
            self._watcher = task
            self._lost_links.add(task)
            task.add_done_callback(self._lost_links.discard)

    async def _watch_moved(self) -> None:
        """While calls' links are down, read their registry entries every ``MOVED_POLL`` s, all
        of them in one request (a persistent link carries many calls; a network blip drops
        many per-call links at once): once a call's entry names another worker (Asterisk
        re-connected the call there and it adopted it), let it go at once, not when the link
        grace is over: the flow here would go on acting on a call another worker drives
        (timeouts, webhooks, an end)."""
        store = self.store
        while store is not None:
            for sid, session in list(self._down.items()):
                if sid not in self.drivers or session.ended or self.app.link_up(session.ari_app):
                    del self._down[sid]
            if not self._down:
                return
            for sid in await store.moved_among(list(self._down)):
                if self._down.pop(sid, None) is not None:
                    self._let_go_moved(sid)
            await asyncio.sleep(MOVED_POLL)

    def _let_go_moved(self, sid: str) -> bool:
        """Let call ``sid`` go without ending it (another worker adopted it); False if its
        flow is not in its states (starting, ending) or it is gone here already."""
        driver, store = self.drivers.get(sid), self.store
        if driver is None or store is None or not driver.hand_over():
            return False
        release(self.app, sid)
        store.let_go(sid, pending=False)
        log.warning("call %s moved to another worker with its websocket: let go", sid)
        return True

    async def _link_lost(self, session: CallSession) -> None:
        """A call whose link Asterisk re-connected to another worker (the registry names it:
        it adopted the call) is let go here without ending it (no ``on hangup``, no end claim,
        no ``call.ended``: that worker ends it); any other ends as the caller's hang-up."""
        sid, store = str(session.id), self.store
        if store is not None and await store.moved(sid) and self._let_go_moved(sid):
            return
        if not session.ended:
            session._left_stasis = True  # the handler's finally must not hang it up
            session._gone()

    def readiness_checked(self, ready: bool) -> None:
        """The metrics server answered a /readyz check (a load balancer's), ``ready`` or 503."""
        self.readiness_checks += 1
        if not ready:
            self.not_ready_checks += 1
        self._checked.set()

    async def _balancer_gone(self) -> None:
        """Outbound modes: let the load balancer's health checks see /readyz fail
        ``BALANCER_CHECKS`` times (at most ``BALANCER_WAIT`` s; no wait when nothing polls it)
        before the calls' sockets close, so that their re-connections go to another worker.
        The calls go on meanwhile."""
        if not self.readiness_checks:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BALANCER_WAIT
        seen = self.not_ready_checks
        while self.not_ready_checks - seen < BALANCER_CHECKS and loop.time() < deadline:
            self._checked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._checked.wait(), deadline - loop.time())
        log.info("draining: /readyz refused %d check(s)", self.not_ready_checks - seen)

    async def _hang_up_all(self, drivers: list[CallDriver[CallSession]]) -> None:
        """Hang the drivers' calls up together, waiting at most ``app.handler_grace``: a hang-up
        Asterisk keeps refusing goes on retrying in the background until the app closes (its
        close() bounds that too), instead of holding the drain for ever."""
        if not drivers:
            return
        hangups = [asyncio.ensure_future(d.session.hangup("normal")) for d in drivers]
        done, pending = await asyncio.wait(hangups, timeout=self.app.handler_grace)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("hang-up at drain failed: %s", task.exception())
        if pending:
            log.warning(
                "hang-up of %d call(s) not confirmed after %.1fs; still retrying in the background",
                len(pending),
                self.app.handler_grace,
            )
        for task in pending:
            task.cancel()  # the wait only: the session's own hang-up task goes on (shielded)

    async def _watch(self, stop: asyncio.Event) -> None:
        assert self.watch_interval is not None
        while not stop.is_set():
            await asyncio.sleep(self.watch_interval)
            before = dict(self.registry.problems)
            loaded = self.registry.reload_changed()
            self.warm(fv.flow for fv in loaded)
            if (loaded or self.registry.problems != before) and self.on_reload is not None:
                self.on_reload(self.registry)


def _claimer(store: CallStore, sid: str, fhash: str, *, here: bool = True) -> EndClaim:
    """The driver's ``end_claim`` for call ``sid`` on flow version ``fhash``. A call this
    worker drives (``here``; not a dead worker's end run by the reaper, whose entry names that
    worker) that left for the dialplan without coming back here (``transferred``,
    ``unknown``) is not claimed when the registry names another worker: it came back there
    (per-call websockets through a balancer), and that worker drives it and ends it."""

    async def claim(
        webhook: tuple[str, bytes] | None, end: tuple[str, str] | None, state: RunState
    ) -> bool:
        moving = here and end is not None and end[0] in LEFT_OUTCOMES
        if moving and await store.moved(sid):
            log.warning("call %s came back to another worker: its end is that worker's", sid)
            return False
        return await store.claim_end(sid, webhook, end, ending_checkpoint(state, fhash))

    return claim


def _journal(store: CallStore, sid: str) -> Callable[[str, Mapping[str, Any]], Awaitable[None]]:
    """The driver's ``journal`` for call ``sid``."""
    return lambda key, result: store.record_effect(sid, key, result)


def _loop_clock() -> Callable[[], float]:
    """The clock of a trace's ``t``: the event loop's, as the driver's own timings
    (``waited_ms``, prompt ends), so a ``--virtual-time`` call's trace is in its virtual
    seconds (time.monotonic on any other loop)."""
    return asyncio.get_running_loop().time


def _traced_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The call's metadata as a trace records it: secret-looking keys are redacted."""
    return {str(k): "<redacted>" if is_secret_name(str(k)) else v for k, v in meta.items()}

"""The thin async driver: runs one call's flow by performing step() commands on a CallPort.

The driver is the only code that turns the step function's commands into call operations: a
real call (:class:`~voxflow.telephony.session.CallSession`) and the flow-test simulator's
virtual call (:mod:`voxflow.testing.sim`) both sit behind the typed
:class:`~voxflow.runtime.port.CallPort`, so ``voxflow test`` runs exactly this code.

The driver owns every task and timer of its call, on the running loop's clock (virtual time in
the simulator). Events are fed to :func:`step` where they arise, synchronously (DTMF from the
port's ``add_dtmf_listener``, op results at the end of their task, timers in their loop
callback; an event arising while commands are performed waits its turn), so a key press
reaches the next command with no queue or task hop; the step function decides everything else.
A ``say`` or ``play`` op's first step runs in the dispatch that starts it (:func:`start_eagerly`):
after a key, a cached prompt is queued to the pacer, a playback requested, within the key's own
event callback.
Guarantees:

* the caller hanging up cancels every running op and timer of the call at once (the call's
  end reaches the DTMF listener synchronously, then :meth:`CallDriver.cancel_all`), and the
  flow's hang-up handler runs exactly once (the step function tracks it);
* any exception inside the call is logged with call id, flow, state and source line, runs the
  state's error handler (an op failure is an event) or hangs up; other calls never see it;
* prompts need a TTS: when the call has none the text is only recorded in the transcript and
  the prompt counts as played (no task, no ``say`` call).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Generic, Protocol, assert_never

from voxflow import observe
from voxflow.eager import start_eagerly
from voxflow.errors import (
    CallDroppedError,
    CallEndedError,
)
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.agent_actions import ActionReporter
from voxflow.runtime.agent_step import FlowAgentRunner
from voxflow.runtime.events import LEFT_OUTCOMES
from voxflow.runtime.hangup_reason import ARI_HANGUP_REASONS, ari_hangup_reason
from voxflow.runtime.hangup_work import (
    DEFAULT_HANGUP_TIMEOUT,
    CutBy,
    cut_fields,
    cut_message,
)
from voxflow.runtime.http_step import HttpRequest, HttpResult
from voxflow.runtime.operations import OP_HANDLERS
from voxflow.runtime.port import AgentHost, CallPort, P
from voxflow.runtime.routes import metadata_secrets, route_fields, shown_url
from voxflow.runtime.step import RunState, StepObserver, initial_state, step
from voxflow.runtime.trace import CallTrace, NullTrace, with_recognition
from voxflow.runtime.webhooks import WebhookSender
from voxflow.telephony.state import CallDirection

__all__ = [
    "ARI_HANGUP_REASONS",
    "OP_HANDLERS",
    "AgentRunner",
    "CallDriver",
    "EndClaim",
    "HttpPerformer",
    "TranscriptLine",
    "ari_hangup_reason",
]

log = logging.getLogger(__name__)

TranscriptLine = tuple[float, str, str]
"""(seconds since start, who: 'flow'|'caller'|'system', text)."""
EndClaim = Callable[[tuple[str, bytes] | None, tuple[str, str], RunState], Awaitable[bool]]
"""Claims a call's end: (its ``call.ended`` (key, body) or None, its (outcome, reason), its
state then) -> True when this worker ends it."""


class AgentRunner(Protocol):
    """Runs an ``agent`` step on a call; ``on_line(who, text)`` gets each line as it is spoken
    (``agent``) or heard (``caller``), ``on_action`` each request the step's flow actions send.
    A result with ``reported: True`` was already reported."""

    def __call__(
        self,
        call: AgentHost,
        cmd: ev.Agent,
        /,
        *,
        on_line: Callable[[str, str], None] | None = None,
        on_action: ActionReporter | None = None,
    ) -> Awaitable[Mapping[str, Any]]: ...


class HttpPerformer(Protocol):
    """What performs a flow's ``http`` steps (:class:`HttpClient`, or a test's mocks)."""

    async def perform(self, req: HttpRequest) -> HttpResult:
        """Run the request; never raises except for cancellation."""
        ...


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS |= {"warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
_TYPED_AHEAD = 0.05  # a key taken this long after it was pressed waited in the type-ahead


def _is_key(cmd: ev.Notify) -> bool:
    return cmd.kind == "input" and cmd.data.get("kind") == "dtmf"


def _call_state(flow: Flow, call: CallPort[P], *, max_steps: int, speech: bool) -> RunState:
    """The interpreter state of ``call`` before it starts: its identity and metadata."""
    outbound = call.direction is CallDirection.OUTBOUND
    info = ev.CallInfo(
        call.id, call.caller_id, call.called_number, "outbound" if outbound else "inbound"
    )
    state = initial_state(flow, info, max_steps=max_steps, speech=speech)
    if call.metadata:
        merged = {**state.metadata, **call.metadata}
        state = replace(state, metadata=MappingProxyType(merged))
    return state


class CallDriver(Generic[P]):
    """Runs ``flow`` on one call, ``session`` (a :class:`~voxflow.runtime.port.CallPort`).

    ``observer`` is told what the step function does (coverage); ``after_step(state)`` is
    called after each event has been fed and its commands performed (the flow-test simulator
    decides there when its scripted caller acts); ``logger`` gets the call's log lines.
    ``end_claim(webhook)`` (cluster mode) is awaited once the call starts ending, with the
    ``call.ended`` webhook as it stands then (``(Idempotency-Key, body)``, None when none is
    sent; the store keeps it pending with the claim), its (outcome, reason) and state: False
    means another worker ended this call, so its ``on hangup`` HTTP steps and ``call.ended``
    webhook are not repeated here (``ended_elsewhere``). ``journal(key, result)`` (cluster
    mode) is awaited after each HTTP step of the ``on hangup`` body, before the body goes on;
    ``replayed`` (key -> result): those steps a dead worker completed, taken instead of sent
    again (:class:`~voxflow.runtime.checkpoint.Ending`). ``hangup_timeout``: the ceiling of
    the ``on hangup`` body (:mod:`voxflow.runtime.hangup_work`), None for none."""

    def __init__(
        self,
        flow: Flow,
        session: CallPort[P],
        *,
        http: HttpPerformer | None = None,
        webhooks: WebhookSender | None = None,
        trace: CallTrace | None = None,
        max_steps: int = 1000,
        speech: bool | None = None,
        agent_runner: AgentRunner | None = None,
        clock: Callable[[], float] = time.time,
        on_transcript: Callable[[TranscriptLine], None] | None = None,
        observer: StepObserver | None = None,
        after_step: Callable[[RunState], None] | None = None,
        logger: logging.Logger = log,
        end_claim: EndClaim | None = None,
        journal: Callable[[str, Mapping[str, Any]], Awaitable[None]] | None = None,
        replayed: Mapping[str, Mapping[str, Any]] | None = None,
        hangup_timeout: float | None = DEFAULT_HANGUP_TIMEOUT,
    ) -> None:
        self.flow = flow
        self.hangup_timeout = hangup_timeout
        self.session = session
        self.http = http
        self.webhooks = webhooks
        self.webhooks_on = webhooks is not None and webhooks.enabled
        self.trace: CallTrace = trace or NullTrace()
        self.clock = clock
        self.on_transcript = on_transcript
        self.observer = observer
        self.after_step = after_step
        self.log = logger
        providers = session.providers
        if agent_runner is None and providers.llm is not None:
            agent_runner = FlowAgentRunner()
        self.agent_runner = agent_runner
        if speech is None:
            speech = providers.stt is not None
        self.state: RunState = _call_state(flow, session, max_steps=max_steps, speech=speech)
        # no TTS on the call: prompts only go to the transcript, without a task or a failed say
        self._no_tts = providers.tts is None
        self._init_results()
        self._init_loop()
        self._init_cluster(end_claim, journal, replayed)

    def _init_results(self) -> None:
        """What the call has produced so far: transcript, outcome, failure and flags."""
        self.transcript: list[TranscriptLine] = []
        self.outcome: ev.End | None = None
        self.failure: Exception | None = None
        """A bug of the interpreter that ended this call (logged; outcome ``error``)."""
        self.resumed = False
        """Cluster mode: the call was resumed from a dead worker's checkpoint (its recordings
        take another name when theirs is taken: :func:`voxflow.runtime.operations`)."""
        self.ended_key = f"{self.state.call.id}:call.ended"
        """The Idempotency-Key of this call's ``call.ended`` (a call resumed after it ended
        ``unknown`` sends a second one, under a key of its own)."""
        self.first_event: ev.Event | ev.Queue | None = None
        """What starts the run instead of ``Start`` (a call back from its dead worker's trip:
        the step's outcome, or the op that queues the caller again, performed for the step
        that waits on it: :func:`voxflow.runtime.checkpoint.resume_trip`)."""
        self.agent_used = False
        """An agent step ran on this call (its conversation belongs in the checkpoint)."""

    def _init_loop(self) -> None:
        """The driver loop's own state: pending events, keys typed ahead, operations, timers."""
        self._pending: deque[ev.Event] = deque()
        self._pressed: deque[float] = deque()  # clock() when each key typed ahead was pressed
        self._this_key = False
        self._feeding = False
        self._done: asyncio.Future[None] | None = None
        self._tracing = not isinstance(self.trace, NullTrace)
        self._ops: dict[int, asyncio.Task[None]] = {}
        self._eager: int | None = None  # the op whose first step runs now, in a dispatch
        self._op_started: dict[int, float] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._side: set[asyncio.Task[Any]] = set()
        self._t0 = 0.0
        self._last_prompt_end = 0.0
        self._heard: dict[str, Any] | None = None  # the last recognition, for its input record
        self._hung_up = False
        self._leaving = False
        self._ceiling: asyncio.TimerHandle | None = None  # cuts the ``on hangup`` body
        self._body_started = 0.0  # loop.time() when it started
        self._cut: dict[str, Any] | None = None  # the ``on_hangup`` field of a cut body

    def _init_cluster(
        self,
        end_claim: EndClaim | None,
        journal: Callable[[str, Mapping[str, Any]], Awaitable[None]] | None,
        replayed: Mapping[str, Mapping[str, Any]] | None,
    ) -> None:
        """Cluster mode: the end claim, the ``on hangup`` journal and its replayed steps."""
        self.end_claim = end_claim
        self.journal = journal
        self.replayed = replayed or {}
        self._claim: asyncio.Future[bool] | None = None
        self._claimed_webhook: tuple[RunState, tuple[str, str], tuple[str, bytes]] | None = None
        """The state and (outcome, reason) the end claim's ``call.ended`` was built from, and
        its (key, body): sent as is when the call ends in that state with that outcome."""
        self.ended_elsewhere = False
        """Another worker of the cluster ended this call (its end was not repeated here)."""
        self.handed_over = False
        """The call was handed over to another worker (:meth:`hand_over`): not ended here."""

    # ------------------------------------------------------------ public

    async def run(self) -> ev.End:
        """Run the call to its end; returns the End command (outcome, reason).

        Events are fed to :func:`step` synchronously where they arise (DTMF in the port's
        listener, op results at the end of their task, timers in their loop callback), so a key
        press reaches the next command without queue or task hops."""
        loop = asyncio.get_running_loop()
        self._t0 = self._last_prompt_end = loop.time()
        self._done = loop.create_future()
        remove = self.session.add_dtmf_listener(self._on_dtmf)
        self.session.on_hangup(self._on_session_hangup)
        try:
            first = self.first_event or ev.Start(now=self.clock())
            if isinstance(first, ev.Queue):
                self._perform(first)
            else:
                self._dispatch(first)
            if self.outcome is None:
                await self._done
        except asyncio.CancelledError:
            if self.outcome is None and self.state.status == "hangup_handler":
                # cancelled by the app in its ``on hangup`` body: a cut, said as one
                took = asyncio.get_running_loop().time() - self._body_started
                self._cut_hangup_body(took, "cancelled")
                self._report_end()
            self.cancel_all()
            raise
        finally:
            remove()
            self.cancel_all()
            if self._ceiling is not None:
                self._ceiling.cancel()
        assert self.outcome is not None
        await self._finish()
        return self.outcome

    def hang_up(self, reason: str) -> None:
        """The application ends the call (the server's grace period is over): the flow's
        hang-up handler runs, and the trace shows the app's hang-up (``hangup`` with
        ``by: app``, outcome ``error``), not the caller's. Hang the channel up afterwards."""
        if self._hung_up or self.outcome is not None:
            return
        self._hung_up = True
        self.cancel_all()
        self._dispatch(ev.HangupEvent(reason, now=self.clock(), by="app"))

    async def flow_done(self) -> None:
        """Wait until the flow is finished with the call, its ``on hangup`` body included (the
        end's own work, a hang-up and the trace, may go on)."""
        if self._done is not None and self.outcome is None:
            await asyncio.shield(self._done)

    def hand_over(self) -> bool:
        """Stop running this call here without ending it (a draining worker hands it over to
        the one taking its application name over, which resumes it from its checkpoint): its
        ops and timers are cancelled; no hang-up, ``on hangup`` body or ``call.ended``
        follows. False when the call is not in its flow's states (starting, or ending)."""
        if self.outcome is not None or self.state.status != "running":
            return False
        self.handed_over = True
        self.cancel_all()
        self.outcome = ev.End("handed_over", "the worker is draining")
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        return True

    def cancel_all(self) -> None:
        """Cancel every op and timer of the call (synchronously, within this loop turn)."""
        for task in self._ops.values():
            task.cancel()
        self._ops.clear()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # ------------------------------------------------------------ events in

    def _on_session_hangup(self, event: ev.HangupEvent | None = None) -> None:
        """The call ended: the caller hung up, or ``event`` (an op found it ended)."""
        if self._leaving or self._hung_up:  # transfer/queue: the op itself reports how it went
            return
        self._hung_up = True
        if self.state.status == "hangup_handler":
            # the flow hung up itself and its ``on hangup`` handler runs: its http requests go
            # on; an operation on the call fails with "call ended" and the handler moves on
            return
        self.cancel_all()
        self._dispatch(event or ev.HangupEvent("caller", now=self.clock()))

    def _on_dtmf(self, digit: str) -> None:
        """The port's DTMF listener: a digit, or "" once when the call ended."""
        if not digit:
            self._on_session_hangup()
            return
        self._say_line("caller", f"[pressed {digit}]")
        self._dispatch(ev.Dtmf(digit, now=self.clock()))

    def _dispatch(self, event: ev.Event) -> None:
        """Feed ``event`` now; an event arising while commands are performed waits its turn."""
        if self.outcome is not None:
            return
        if self._feeding:
            self._pending.append(event)
            return
        self._feeding = True
        try:
            self._feed(event)
            while self._pending and self.outcome is None:
                self._feed(self._pending.popleft())
        except Exception as exc:  # a driver bug must end this call only
            self.log.exception(
                "call %s flow %s state %s: interpreter failure",
                self.state.call.id,
                self.flow.name,
                self.state.state_name,
            )
            self.failure = exc
            self.outcome = ev.End("error", f"interpreter failure: {exc}")
        finally:
            self._feeding = False
            self._pending.clear()
        if self.outcome is not None and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _feed(self, event: ev.Event) -> None:
        self.state, commands = step(self.flow, self.state, event, self.observer)
        if self.state.status in ("hangup_handler", "ended"):
            self._claim_end()
            if self._ceiling is None and self.state.status == "hangup_handler":
                self._arm_ceiling()
        if isinstance(event, ev.Dtmf):
            self._pressed.append(event.now)
        keys = sum(1 for c in commands if isinstance(c, ev.Notify) and _is_key(c))
        # one key taken while a key is pressed is that key; others come from the type-ahead
        self._this_key = isinstance(event, ev.Dtmf) and keys == 1
        for cmd in commands:
            self._perform(cmd)
        while len(self._pressed) > len(self.state.typeahead):  # the keys still typed ahead
            self._pressed.popleft()
        if self.after_step is not None:
            self.after_step(self.state)

    # ------------------------------------------------------------ commands out

    def _perform(self, cmd: ev.Command) -> None:
        """Perform one command: at once, or (an op) in a task of its own (its handler in
        :data:`OP_HANDLERS`, checked against every ``ev.Op`` by ``test_step_kinds``)."""
        if isinstance(cmd, ev.Op):
            if isinstance(cmd, ev.RecordTimer):
                self._spawn_op(cmd.cid, self._record_timer(cmd))
            elif isinstance(cmd, ev.StartTimer):
                loop = asyncio.get_running_loop()
                self._timers[cmd.cid] = loop.call_later(cmd.ms / 1000.0, self._timer_fired, cmd.cid)
            else:
                self._start_op(cmd)
        elif isinstance(cmd, ev.Notify):
            self._notify(cmd)
        elif isinstance(cmd, ev.StopOp):
            self._stop_op(cmd.cid)
        elif isinstance(cmd, ev.End):
            self.outcome = cmd
        elif isinstance(cmd, ev.Log):
            self._log(cmd)
        elif isinstance(cmd, ev.StopAll):
            self.cancel_all()
        elif isinstance(cmd, ev.Hangup):
            self._say_line("system", f"flow hangs up ({cmd.reason})")
            self._spawn_side(self._hangup(cmd.reason))
        elif isinstance(cmd, ev.SetMeta):
            self._set_meta(cmd)
        else:  # mypy fails here when a command type of ev.Command is not handled above
            assert_never(cmd)

    async def _record_timer(self, cmd: ev.RecordTimer) -> None:
        """Fire at ``cmd.ms`` or as soon as the call's recording ended by itself."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.session.wait_recording(), cmd.ms / 1000.0)
        task = self._ops.pop(cmd.cid, None)
        if task is not None:
            self._side.discard(task)
            self._dispatch(ev.TimerFired(cmd.cid, now=self.clock()))

    def _start_op(self, cmd: ev.Op) -> None:
        if self._hung_up and type(cmd) is not ev.Http:
            self._dispatch(ev.OpFailed(cmd.cid, "call ended", now=self.clock()))
            return
        if self._no_tts and type(cmd) is ev.Say:
            self._say_line("flow", cmd.text)  # nothing to speak with: counts as played
            self._last_prompt_end = asyncio.get_running_loop().time()
            self._dispatch(ev.OpDone(cmd.cid, None, now=self.clock()))
            return
        if self._tracing:
            self._trace_route(cmd)
        if self._tracing or observe.installed() is not None:
            self._op_started[cmd.cid] = time.monotonic()
        if type(cmd) is ev.Say or type(cmd) is ev.Play:
            # its first step now, in this callback (a key's dispatch): a cached prompt is queued
            # to the pacer, a playback's POST written, before the loop runs anything else
            self._eager = cmd.cid
            try:
                start_eagerly(self._run_op(cmd), functools.partial(self._own_op, cmd.cid))
            finally:
                self._eager = None
        else:
            self._spawn_op(cmd.cid, self._run_op(cmd))

    def _trace_route(self, cmd: ev.Op) -> None:
        """A ``route`` record for an op that sends the caller (or a request) somewhere."""
        fields = route_fields(cmd, self.state.call.id, metadata_secrets(self.state.metadata))
        if fields is not None:
            self.write_route(fields)

    def write_route(self, fields: dict[str, Any]) -> None:
        """A ``route`` record of ``fields`` in the current state (and subflow)."""
        frames = self.state.frames
        if frames and frames[-1].subflow:
            fields["subflow"] = frames[-1].subflow
        self.trace.write("route", state=self.state.state_name, **fields)

    def _spawn_op(self, cid: int, coro: Coroutine[Any, Any, None]) -> None:
        self._own_op(cid, asyncio.get_running_loop().create_task(coro))

    def _own_op(self, cid: int, task: asyncio.Task[None]) -> None:
        self._ops[cid] = task
        self._side.add(task)  # discarded when it ends by itself (no done-callback hop per op)

    def _stop_op(self, cid: int) -> None:
        handle = self._timers.pop(cid, None)
        if handle is not None:
            handle.cancel()
        op_task = self._ops.pop(cid, None)
        if op_task is not None:
            op_task.cancel()  # stays in _side: its clean-up is awaited at the call's end

    def _set_meta(self, cmd: ev.SetMeta) -> None:
        meta = self.session.metadata
        if cmd.webhook:
            meta.update_for_webhook({cmd.key: cmd.value})
        else:
            meta[cmd.key] = cmd.value

    def _timer_fired(self, cid: int) -> None:
        if self._timers.pop(cid, None) is not None:
            self._dispatch(ev.TimerFired(cid, now=self.clock()))

    def _arm_ceiling(self) -> None:
        """The ``on hangup`` body started: cut it ``hangup_timeout`` s from now."""
        loop = asyncio.get_running_loop()
        self._body_started = loop.time()
        if self.hangup_timeout is not None:
            cut = self._cut_hangup_body
            self._ceiling = loop.call_later(self.hangup_timeout, cut, self.hangup_timeout)

    def _cut_hangup_body(self, after: float, by: CutBy = "hangup_timeout") -> None:
        """The ``on hangup`` body ran ``after`` s (its ceiling, or until ``by`` cancelled it):
        stop it, and say so (log, transcript, trace; the End, the ``call.ended`` record and
        webhook carry it)."""
        if self.outcome is not None:
            return
        after = round(after, 3)
        pending = sum(1 for t in self._ops.values() if not t.done())
        text = cut_message(after, pending, by)
        self.log.warning("call %s flow %s: %s", self.state.call.id, self.flow.name, text)
        self._say_line("system", text)
        self._cut = cut_fields(after, pending, by)
        self.trace.write("on_hangup.cut", state=self.state.state_name, **self._cut)
        self.cancel_all()
        outcome, reason = self._end_now()
        self.outcome = ev.End(outcome, reason, on_hangup_cut=after)
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _ended_data(self, outcome: str, reason: str) -> dict[str, Any]:
        """The data of the call's ``call.ended`` (trace record and webhook)."""
        data: dict[str, Any] = {"outcome": outcome, "reason": reason}
        if self._cut is not None:
            data["on_hangup"] = self._cut
        return data

    def _claim_end(self) -> None:
        """Start claiming the call's end (cluster mode), once."""
        if self.end_claim is not None and self._claim is None:
            self._claim = asyncio.ensure_future(self._claim_with_webhook(self.end_claim))

    async def _claim_with_webhook(self, claim: EndClaim) -> bool:
        """Claim the end with the outcome and ``call.ended`` webhook as they stand (built on
        the task's first run: after the commands of the step that started the end)."""
        webhook, end = self._ended_webhook(), self._end_now()
        if webhook is not None:
            self._claimed_webhook = (self.state, end, webhook)
        return await claim(webhook, end, self.state)

    def _end_now(self) -> tuple[str, str]:
        """The call's (outcome, reason) as decided so far."""
        if self.outcome is not None:
            return self.outcome.outcome, self.outcome.reason
        return self.state.end or ("completed", "")

    def _ended_webhook(self) -> tuple[str, bytes] | None:
        """(Idempotency-Key, body) of this call's ``call.ended`` now; None when not sent."""
        if self.webhooks is None or not self.webhooks.sends("call.ended"):
            return None
        outcome, reason = self._end_now()
        body = self.webhooks.payload(
            "call.ended",
            call_id=self.state.call.id,
            flow=self.flow.name,
            metadata=self.state.metadata,
            webhook_keys=self.state.webhook_keys,
            data=self._ended_data(outcome, reason),
        )
        return None if body is None else (self.ended_key, body)

    async def _end_is_ours(self) -> bool:
        """False when another worker ended this call (its end must not be repeated)."""
        if self._claim is None:
            return True
        try:
            return await asyncio.shield(self._claim)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store that failed: the end is not lost
            self.log.warning("call %s: end claim failed: %s", self.state.call.id, exc)
            return True

    def _end_elsewhere(self) -> None:
        """Another worker ended this call: stop here without repeating its end."""
        if not self.ended_elsewhere:
            self.ended_elsewhere = True
            self.log.warning("call %s: ended on another worker", self.state.call.id)
        self.cancel_all()
        if self.outcome is None:
            self.outcome = ev.End("ended_elsewhere", "the call ended on another worker")
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def _run_op(self, cmd: ev.Op) -> None:
        event: ev.Event
        if type(cmd) is ev.Http and self._claim is not None and not await self._end_is_ours():
            task = self._ops.pop(cmd.cid, None)
            if task is not None:
                self._side.discard(task)
            self._end_elsewhere()  # an ``on hangup`` request another worker already sent
            return
        try:
            if type(cmd) is ev.Http:
                result = await self._http(cmd)
            else:
                result = await OP_HANDLERS[type(cmd)](self, cmd)
        except asyncio.CancelledError:
            self._op_started.pop(cmd.cid, None)
            raise
        except CallEndedError as exc:
            if self._hung_up:  # already known (an ``on hangup`` handler runs): the op failed
                event = ev.OpFailed(cmd.cid, "call ended", now=self.clock())
            elif isinstance(exc, CallDroppedError):  # not the caller: outcome error
                event = ev.HangupEvent(str(exc), now=self.clock(), by="app")
            else:
                event = ev.HangupEvent("caller", now=self.clock())
        except Exception as exc:
            msg = f"{type(cmd).__name__.lower()} failed: {type(exc).__name__}: {exc}"
            event = ev.OpFailed(cmd.cid, msg, now=self.clock())
        else:
            event = ev.OpDone(cmd.cid, result, now=self.clock())
        if self._eager == cmd.cid:
            await self._a_pass_later(cmd.cid)
        # the op is over: not cancellable, not awaited at the end (no done-callback hop)
        task = self._ops.pop(cmd.cid, None)
        if task is not None:
            self._side.discard(task)
        started = self._op_started.pop(cmd.cid, None)
        if started is not None:
            took = time.monotonic() - started
            kind = type(cmd).__name__.lower()
            self.trace.write("op", op=kind, cid=cmd.cid, latency_ms=round(took * 1000.0, 1))
            observe.step(kind, took)
        if isinstance(event, ev.HangupEvent):
            self._on_session_hangup(event)
        else:
            self._dispatch(event)

    async def _a_pass_later(self, cid: int) -> None:
        """An op that ended in its first step, run in a dispatch (:func:`start_eagerly`): its
        outcome is fed a loop pass later, as a task's would be, not within that dispatch (a flow
        whose prompts fail at once, over and over, would otherwise loop in one callback)."""
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self._op_started.pop(cid, None)
            raise

    async def _http(self, cmd: ev.Http) -> Any:
        """An HTTP step: the result a dead worker recorded for its key (``replayed``), else
        sent; in the ``on hangup`` body its result is journalled before the body goes on."""
        done = self.replayed.get(cmd.key) if cmd.key else None
        if done is not None:
            url = shown_url(cmd.url, metadata_secrets(self.state.metadata))
            self.trace.write("http", method=cmd.method, url=url, replayed=True)
            return dict(done)
        result = await OP_HANDLERS[ev.Http](self, cmd)
        journal = self.journal
        if journal is not None and cmd.key and self.state.status == "hangup_handler":
            if isinstance(result, Mapping):
                await journal(cmd.key, result)
        return result

    async def _hangup(self, reason: str) -> None:
        ari_reason = ari_hangup_reason(reason)
        if ari_reason != reason:
            self.log.debug(
                "call %s: flow hang-up %r sent as ARI %r", self.state.call.id, reason, ari_reason
            )
        self.trace.write("hangup", reason=reason, ari_reason=ari_reason)
        try:
            await self.session.hangup(ari_reason)
        except Exception as exc:
            self.log.warning("call %s: hangup failed: %s", self.state.call.id, exc)

    def _spawn_side(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def _await_side(self) -> None:
        """Wait for every side task (ops cancelled on the way included), then forget those done:
        a cancelled op's task keeps its CancelledError, whose traceback holds this driver."""
        if self._side:
            await asyncio.gather(*list(self._side), return_exceptions=True)
        for task in [t for t in self._side if t.done()]:
            self._side.discard(task)

    async def _finish(self) -> None:
        assert self.outcome is not None
        if self.handed_over:
            await self._await_side()
            self._say_line("system", "handed over to another worker")
            self.trace.write("handover", state=self.state.state_name)
            self.trace.close()
            return
        self._claim_end()
        if not await self._end_is_ours():
            self._end_elsewhere()
        await self._await_side()
        if self.outcome.outcome not in LEFT_OUTCOMES and not self.session.ended:
            await self._hangup("normal")
        self._report_end()

    def _report_end(self) -> None:
        """The call's end in the transcript, the trace (closed) and its ``call.ended`` webhook."""
        assert self.outcome is not None
        self._say_line("system", f"call ended: {self.outcome.outcome}")
        data = self._ended_data(self.outcome.outcome, self.outcome.reason)
        self.trace.write(
            "call.ended", **data, state=self.state.state_name, variables=self.state.variables()
        )
        self.trace.close()
        if self.webhooks is not None and not self.ended_elsewhere:
            end = (self.outcome.outcome, self.outcome.reason)
            claimed = None if self._cut is not None else self._claimed_webhook
            if claimed is not None and claimed[0] is self.state and claimed[1] == end:
                self.webhooks.emit_built("call.ended", self.state.call.id, *claimed[2])
                return  # nothing changed since the claim built it: not built again
            self.webhooks.emit(
                "call.ended",
                call_id=self.state.call.id,
                flow=self.flow.name,
                metadata=self.state.metadata,
                webhook_keys=self.state.webhook_keys,
                data=data,
                key=self.ended_key,
            )

    # ------------------------------------------------------------ observability

    def _log(self, cmd: ev.Log) -> None:
        where = f"{cmd.span.file}:{cmd.span.line}" if cmd.span else "?"
        level = _LEVELS.get(cmd.level, logging.INFO)
        self.log.log(
            level,
            "call %s flow %s state %s at %s: %s",
            self.state.call.id,
            self.flow.name,
            cmd.state,
            where,
            cmd.message,
        )
        self.trace.write("log", level=cmd.level, message=cmd.message, at=where, state=cmd.state)
        if cmd.level == "error":
            self._say_line("system", f"error at {where}: {cmd.message}")

    def _notify(self, cmd: ev.Notify) -> None:
        if cmd.kind == "state.entered":
            sub = cmd.data.get("subflow")
            name = f"{sub}.{cmd.data.get('state')}" if sub else cmd.data.get("state")
            self._say_line("system", f"-> {name}")
        elif cmd.kind == "input.ignored":
            self._say_line("system", f"keys {cmd.data['digits']} ignored ({cmd.data['why']})")
        elif cmd.kind == "input.unmatched":
            keys, why = cmd.data["digits"], cmd.data["why"]
            self._say_line("system", f"keys {keys} match no choice: {why}")
        if not self._tracing and not self.webhooks_on:
            return
        data = dict(cmd.data)
        if cmd.kind == "input":
            now = asyncio.get_running_loop().time()
            data["waited_ms"] = round((now - self._last_prompt_end) * 1000.0)
            if data.get("kind") == "dtmf" and self._pressed:
                pressed = self._pressed.pop() if self._this_key else self._pressed.popleft()
                if (ahead := self.clock() - pressed) >= _TYPED_AHEAD:  # taken from type-ahead
                    data["typed_ms"] = round(ahead * 1000.0)
            data, self._heard = with_recognition(data, self._heard), None
        self.trace.write(cmd.kind, **data)
        if self.webhooks is not None and cmd.kind in ("call.started", "state.entered"):
            self.webhooks.emit(
                cmd.kind,
                call_id=self.state.call.id,
                flow=self.flow.name,
                metadata=self.state.metadata,
                webhook_keys=self.state.webhook_keys,
                data=data,
                key=cmd.key or f"{self.state.call.id}:{cmd.kind}",
            )

    def _say_line(self, who: str, text: str) -> None:
        line = (round(asyncio.get_running_loop().time() - self._t0, 2), who, text)
        self.transcript.append(line)
        if self.on_transcript is not None:
            try:
                self.on_transcript(line)
            except Exception as exc:  # a display callback must not break the call
                self.log.debug("transcript callback failed: %s", exc)

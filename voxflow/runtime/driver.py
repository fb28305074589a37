"""The thin async driver: runs one call's flow by performing step() commands on a CallSession.

The driver owns every task and timer of its call. Events are fed to :func:`step` where they
arise, synchronously (DTMF from the session's ``add_dtmf_listener`` in the ARI event dispatch,
op results at the end of their task, timers in their loop callback; an event arising while
commands are performed waits its turn), so a key press reaches the next command with no queue
or task hop; the step function decides everything else. Guarantees:

* the caller hanging up cancels every running op and timer of the call at once (the session's
  end reaches the DTMF listener synchronously, then :meth:`CallDriver.cancel_all`), and the
  flow's hang-up handler runs exactly once (the step function tracks it);
* any exception inside the call is logged with call id, flow, state and source line, runs the
  state's error handler (an op failure is an event) or hangs up; other calls never see it;
* prompts need a TTS: when the app has none the text is only recorded in the transcript and the
  prompt counts as played (no task, no ``say`` call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from voxflow.errors import AriError, CallEndedError
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.agent_step import FlowAgentRunner
from voxflow.runtime.http_step import HttpClient, HttpRequest
from voxflow.runtime.step import RunState, initial_state, step
from voxflow.runtime.trace import NullTrace, TraceWriter
from voxflow.runtime.webhooks import WebhookSender
from voxflow.voice.call import BargeIn

__all__ = ["ARI_HANGUP_REASONS", "AgentRunner", "CallDriver", "TranscriptLine", "ari_hangup_reason"]

log = logging.getLogger(__name__)

AgentRunner = Callable[[Any, ev.Agent], Awaitable[dict[str, Any]]]
TranscriptLine = tuple[float, str, str]
"""(seconds since start, who: 'flow'|'caller'|'system', text)."""

_NOT_CONFIGURED = "AI pipeline not configured"

ARI_HANGUP_REASONS = frozenset(
    {
        "normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
        "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure",
        "answered_elsewhere",
    }
)  # fmt: skip
"""The ``reason`` values ``DELETE /channels/{id}`` accepts (anything else is a 400)."""

_REASON_ALIASES = {"noanswer": "no_answer", "error": "failure", "failed": "failure"}


_KIND: dict[type, str] = {
    ev.StartTimer: "timer",
    ev.RecordTimer: "record_timer",
    ev.StopOp: "stop",
    ev.StopAll: "stop_all",
    ev.Hangup: "hangup",
    ev.SetMeta: "meta",
    ev.Log: "log",
    ev.Notify: "notify",
    ev.End: "end",
}
"""Command type -> how the driver performs it (every other command is an op with a task)."""


def ari_hangup_reason(reason: str) -> str:
    """The ARI hang-up reason for a flow's free-text ``hangup "reason"``: ARI's own names (any
    case, ``-`` or space for ``_``) pass through, ``error``/``failed`` map to ``failure``,
    ``noanswer`` to ``no_answer``, and every other reason (``closed``, ``exhausted``, ...) to
    ``normal``. The flow's reason itself stays in the call's outcome, trace and log."""
    key = "_".join(reason.strip().lower().replace("-", " ").split())
    key = _REASON_ALIASES.get(key, key)
    return key if key in ARI_HANGUP_REASONS else "normal"


class CallDriver:
    """Runs ``flow`` on one ``session`` (a CallSession or anything with the same methods)."""

    def __init__(
        self,
        flow: Flow,
        session: Any,
        *,
        http: HttpClient | None = None,
        webhooks: WebhookSender | None = None,
        trace: TraceWriter | NullTrace | None = None,
        max_steps: int = 1000,
        speech: bool | None = None,
        agent_runner: AgentRunner | None = None,
        clock: Callable[[], float] = time.time,
        on_transcript: Callable[[TranscriptLine], None] | None = None,
    ) -> None:
        self.flow = flow
        self.session = session
        self.http = http
        self.webhooks = webhooks
        self.webhooks_on = webhooks is not None and bool(getattr(webhooks, "enabled", True))
        self.trace = trace or NullTrace()
        self.agent_runner = agent_runner
        self.clock = clock
        self.on_transcript = on_transcript
        app = getattr(session, "_app", None)
        if speech is None:
            speech = getattr(app, "stt", None) is not None
        caller = str(getattr(session, "caller_id", "") or "")
        called = str(getattr(session, "called_number", "") or "")
        direction = getattr(getattr(session, "direction", None), "value", "inbound")
        info = ev.CallInfo(
            str(session.id), caller, called, "outbound" if direction == "outbound" else "inbound"
        )
        self.state: RunState = initial_state(flow, info, max_steps=max_steps, speech=speech)
        meta = getattr(session, "metadata", None)
        if isinstance(meta, Mapping) and meta:
            merged = {**self.state.metadata, **meta}
            self.state = replace(self.state, metadata=MappingProxyType(merged))
        self.transcript: list[TranscriptLine] = []
        self.outcome: ev.End | None = None
        self._pending: deque[ev.Event] = deque()
        self._feeding = False
        self._done: asyncio.Future[None] | None = None
        self._tracing = not isinstance(self.trace, NullTrace)
        # no TTS on the app: prompts only go to the transcript, without a task or a failed say
        self._no_tts = app is not None and getattr(app, "tts", True) is None
        self._ops: dict[int, asyncio.Task[None]] = {}
        self._op_started: dict[int, float] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._side: set[asyncio.Task[Any]] = set()
        self._t0 = time.monotonic()
        self._last_prompt_end = self._t0
        self._hung_up = False
        self._leaving = False

    # ------------------------------------------------------------ public

    async def run(self) -> ev.End:
        """Run the call to its end; returns the End command (outcome, reason).

        Events are fed to :func:`step` synchronously where they arise (DTMF in the session's
        event dispatch, op results at the end of their task, timers in their loop callback),
        so a key press reaches the next command without queue or task hops."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        pump: asyncio.Task[None] | None = None
        remove: Callable[[], None] | None = None
        add = getattr(self.session, "add_dtmf_listener", None)
        if callable(add):
            remove = add(self._on_dtmf)
        else:  # a session without the listener hook: one task waiting on listen_dtmf
            pump = loop.create_task(self._dtmf_pump(), name=f"dtmf-{self.state.call.id}")
        with contextlib.suppress(AttributeError):
            self.session.on_hangup(self._on_session_hangup)
        try:
            self._dispatch(ev.Start(now=self.clock()))
            if self.outcome is None:
                await self._done
        except asyncio.CancelledError:
            self.cancel_all()
            raise
        finally:
            if remove is not None:
                remove()
            self.cancel_all()
            if pump is not None:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
        assert self.outcome is not None
        await self._finish()
        return self.outcome

    def cancel_all(self) -> None:
        """Cancel every op and timer of the call (synchronously, within this loop turn)."""
        for task in self._ops.values():
            task.cancel()
        self._ops.clear()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # ------------------------------------------------------------ events in

    def _on_session_hangup(self) -> None:
        if self._leaving or self._hung_up:  # transfer/queue: the op itself reports how it went
            return
        self._hung_up = True
        self.cancel_all()
        self._dispatch(ev.HangupEvent("caller", now=self.clock()))

    def _on_dtmf(self, digit: str) -> None:
        """The session's DTMF listener: a digit, or "" once when the call ended."""
        if not digit:
            self._on_session_hangup()
            return
        self._say_line("caller", f"[pressed {digit}]")
        self._dispatch(ev.Dtmf(digit, now=self.clock()))

    async def _dtmf_pump(self) -> None:
        try:
            while True:
                digit = await self.session.listen_dtmf(timeout=3600.0)
                if digit:
                    self._on_dtmf(digit)
        except CallEndedError:
            if not self._hung_up:
                self._on_session_hangup()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("call %s: DTMF listener failed: %s", self.state.call.id, exc)

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
            log.exception(
                "call %s flow %s state %s: interpreter failure",
                self.state.call.id,
                self.flow.name,
                self.state.state_name,
            )
            self.outcome = ev.End("error", f"interpreter failure: {exc}")
        finally:
            self._feeding = False
            self._pending.clear()
        if self.outcome is not None and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _feed(self, event: ev.Event) -> None:
        self.state, commands = step(self.flow, self.state, event)
        for cmd in commands:
            self._perform(cmd)

    # ------------------------------------------------------------ commands out

    def _perform(self, cmd: ev.Command) -> None:
        kind = _KIND.get(type(cmd), "op")
        if kind == "op":
            self._start_op(cmd)  # type: ignore[arg-type]
        elif kind == "notify":
            self._notify(cmd)  # type: ignore[arg-type]
        elif kind == "stop":
            self._stop_op(cmd.cid)  # type: ignore[union-attr]
        elif kind == "timer":
            loop = asyncio.get_running_loop()
            cid, ms = cmd.cid, cmd.ms  # type: ignore[union-attr]
            self._timers[cid] = loop.call_later(ms / 1000.0, self._timer_fired, cid)
        elif kind == "end":
            self.outcome = cmd  # type: ignore[assignment]
        elif kind == "log":
            self._log(cmd)  # type: ignore[arg-type]
        elif kind == "stop_all":
            self.cancel_all()
        elif kind == "hangup":
            reason = cmd.reason  # type: ignore[union-attr]
            self._say_line("system", f"flow hangs up ({reason})")
            self._spawn_side(self._hangup(reason))
        elif kind == "meta":
            self._set_meta(cmd)  # type: ignore[arg-type]
        elif kind == "record_timer":
            task = asyncio.get_running_loop().create_task(self._record_timer(cmd))  # type: ignore[arg-type]
            self._ops[cmd.cid] = task  # type: ignore[union-attr]
            self._side.add(task)
            task.add_done_callback(self._side.discard)

    async def _record_timer(self, cmd: ev.RecordTimer) -> None:
        """Fire at ``cmd.ms`` or as soon as the session's recording ended by itself."""
        wait = getattr(self.session, "wait_recording", None)
        with contextlib.suppress(TimeoutError):
            if wait is None:
                await asyncio.sleep(cmd.ms / 1000.0)
            else:
                await asyncio.wait_for(wait(), cmd.ms / 1000.0)
        if self._ops.pop(cmd.cid, None) is not None:
            self._dispatch(ev.TimerFired(cmd.cid, now=self.clock()))

    def _start_op(self, cmd: ev.Op) -> None:
        if self._hung_up and type(cmd) is not ev.Http:
            self._dispatch(ev.OpFailed(cmd.cid, "call ended", now=self.clock()))
            return
        if self._no_tts and type(cmd) is ev.Say:
            self._say_line("flow", cmd.text)  # nothing to speak with: counts as played
            self._last_prompt_end = time.monotonic()
            self._dispatch(ev.OpDone(cmd.cid, None, now=self.clock()))
            return
        task = asyncio.get_running_loop().create_task(self._run_op(cmd))
        self._ops[cmd.cid] = task
        self._side.add(task)
        task.add_done_callback(self._side.discard)
        if self._tracing:
            self._op_started[cmd.cid] = time.monotonic()

    def _stop_op(self, cid: int) -> None:
        handle = self._timers.pop(cid, None)
        if handle is not None:
            handle.cancel()
        op_task = self._ops.pop(cid, None)
        if op_task is not None:
            op_task.cancel()

    def _set_meta(self, cmd: ev.SetMeta) -> None:
        meta = getattr(self.session, "metadata", None)
        if meta is not None:
            meta[cmd.key] = cmd.value
            if cmd.webhook and hasattr(meta, "update_for_webhook"):
                with contextlib.suppress(Exception):
                    meta.update_for_webhook({cmd.key: cmd.value})

    def _timer_fired(self, cid: int) -> None:
        if self._timers.pop(cid, None) is not None:
            self._dispatch(ev.TimerFired(cid, now=self.clock()))

    async def _run_op(self, cmd: ev.Op) -> None:
        event: ev.Event
        try:
            result = await self._do(cmd)
        except asyncio.CancelledError:
            self._ops.pop(cmd.cid, None)
            self._op_started.pop(cmd.cid, None)
            raise
        except CallEndedError:
            event = ev.HangupEvent("caller", now=self.clock())
        except Exception as exc:
            msg = f"{type(cmd).__name__.lower()} failed: {type(exc).__name__}: {exc}"
            event = ev.OpFailed(cmd.cid, msg, now=self.clock())
        else:
            event = ev.OpDone(cmd.cid, result, now=self.clock())
        self._ops.pop(cmd.cid, None)  # before dispatching: this task is no longer cancellable
        started = self._op_started.pop(cmd.cid, None)
        if started is not None:
            ms = round((time.monotonic() - started) * 1000.0, 1)
            self.trace.write("op", op=type(cmd).__name__.lower(), cid=cmd.cid, latency_ms=ms)
        if isinstance(event, ev.HangupEvent):
            self._on_session_hangup()
        else:
            self._dispatch(event)

    async def _do(self, cmd: ev.Op) -> Any:
        s = self.session
        if isinstance(cmd, ev.Answer):
            await s.answer()
            return None
        if isinstance(cmd, ev.Say):
            self._say_line("flow", cmd.text)
            try:
                await s.say(cmd.text, voice=cmd.voice, barge_in=BargeIn(mode=cmd.bargein))  # type: ignore[arg-type]
            except RuntimeError as exc:
                if _NOT_CONFIGURED not in str(exc):
                    raise
            self._last_prompt_end = time.monotonic()
            return None
        if isinstance(cmd, ev.Play):
            self._say_line("flow", f"[plays {cmd.source}]")
            await s.play_file(cmd.source, barge_in=BargeIn(mode=cmd.bargein))  # type: ignore[arg-type]
            self._last_prompt_end = time.monotonic()
            return None
        if isinstance(cmd, ev.Listen):
            text = await s.listen(timeout=cmd.timeout_ms / 1000.0, phrases=list(cmd.phrases))
            if text:
                self._say_line("caller", str(text))
            return text
        if isinstance(cmd, ev.Http):
            if self.http is None:
                self.http = HttpClient()
            res = await self.http.perform(
                HttpRequest(
                    cmd.method,
                    cmd.url,
                    headers=dict(cmd.headers),
                    json_body=cmd.body,
                    timeout=cmd.timeout_ms / 1000.0,
                )
            )
            self.trace.write(
                "http", method=cmd.method, url=cmd.url, outcome=res.outcome, status=res.status,
                attempts=res.attempts, latency_ms=round(res.elapsed_ms, 1),
            )  # fmt: skip
            return res.as_variables()
        if isinstance(cmd, ev.Transfer):
            self._say_line("system", f"transfer to {cmd.endpoint}")
            self._leaving = True  # the call leaving Stasis now is not the caller hanging up
            try:
                await s.transfer_to(cmd.endpoint)
            finally:
                self._leaving = False
            return None
        if isinstance(cmd, ev.Queue):
            return await self._queue_call(cmd)
        if isinstance(cmd, ev.Dial):
            return await self._dial(cmd)
        if isinstance(cmd, ev.Hold):
            await s.hold(cmd.music)
            return None
        if isinstance(cmd, ev.Unhold):
            await s.unhold()
            return None
        if isinstance(cmd, ev.SendDtmf):
            await s.send_dtmf(cmd.digits)
            return None
        if isinstance(cmd, ev.RecordStart):
            self._say_line("system", f"recording {cmd.name or '(auto)'}")
            name = await s.record_start(
                cmd.name or None,
                format=cmd.format,
                max_duration=(cmd.max_duration_ms // 1000) if cmd.max_duration_ms else None,
                beep=cmd.beep,
                **({"max_silence": max(1, -(-cmd.silence_ms // 1000))} if cmd.silence_ms else {}),
            )
            return name
        if isinstance(cmd, ev.RecordStop):
            meta = await s.record_stop()
            name = getattr(meta, "name", cmd.name)
            self._say_line("system", f"recorded {name}")
            if self.webhooks is not None:
                self.webhooks.emit(
                    "recording.ready",
                    call_id=self.state.call.id,
                    flow=self.flow.name,
                    metadata=self.state.metadata,
                    webhook_keys=self.state.webhook_keys,
                    data={"name": name, "format": getattr(meta, "format", None)},
                )
            return {"name": name, "duration": getattr(meta, "duration", None)}
        if isinstance(cmd, ev.Agent):
            if self.agent_runner is None:
                if getattr(getattr(s, "_app", None), "llm", None) is not None:
                    self.agent_runner = FlowAgentRunner()
            if self.agent_runner is None:
                why = "no LLM configured for the agent step (set VOXFLOW_LLM_MODEL)"
                log.error("call %s: %s", self.state.call.id, why)
                result: Any = {"outcome": "error", "error": why}
            elif getattr(self.agent_runner, "live_transcript", False):
                runner: Any = self.agent_runner  # lines reach the live transcript as spoken
                result = await runner(s, cmd, on_line=self._agent_line)
            else:
                result = await self.agent_runner(s, cmd)
            self._agent_report(result)
            return result
        raise RuntimeError(f"unsupported op {type(cmd).__name__}")

    def _agent_report(self, result: Any) -> None:
        """An agent step's conversation into the transcript, its per-turn metrics into the trace."""
        if not isinstance(result, Mapping):
            return
        for role, text in () if result.get("reported") else result.get("messages") or ():
            self._say_line("caller" if role == "user" else "flow", str(text))
        for turn, metrics in enumerate(result.get("metrics") or (), 1):
            if isinstance(metrics, Mapping):
                self.trace.write("agent.turn", turn=turn, **metrics)
        self.trace.write(
            "agent",
            outcome=result.get("outcome"),
            args=result.get("args") or {},
            turns=result.get("turns"),
            error=result.get("error"),
        )

    def _agent_line(self, who: str, text: str) -> None:
        """A line of an agent step as it is spoken (``agent``) or heard (``caller``)."""
        self._say_line("caller" if who == "caller" else "flow", text)

    async def _queue_call(self, cmd: ev.Queue) -> str:
        """Hand the call to the dialplan's queue (``Queue()`` runs outside Stasis, so the flow
        cannot see an agent answer): ``transferred`` once it left, ``failed`` if it could not."""
        self._say_line("system", f"queue {cmd.name}")
        self._leaving = True
        try:
            await self.session.transfer_to_queue(cmd.name)
        except (ValueError, AriError) as exc:
            log.warning("call %s: queue %r failed: %s", self.state.call.id, cmd.name, exc)
            return "failed"
        finally:
            self._leaving = False
        return "transferred"

    async def _dial(self, cmd: ev.Dial) -> str:
        app = self.session._app
        self._say_line("system", f"dial {cmd.endpoint}")
        other = await app.originate(
            cmd.endpoint, caller_id=cmd.caller_id, timeout=max(1, cmd.timeout_ms // 1000)
        )
        reason = str(getattr(other, "failure_reason", "") or "").lower()
        if getattr(other, "ended", False) or reason:
            if "busy" in reason:
                return "busy"
            if "answer" in reason or "timeout" in reason:
                return "noanswer"
            return "failed"
        try:
            await self.session.bridge_with(other)
            await other.wait_ended()
        finally:
            with contextlib.suppress(Exception):
                await other.hangup()
        return "answered"

    async def _hangup(self, reason: str) -> None:
        ari_reason = ari_hangup_reason(reason)
        if ari_reason != reason:
            log.debug(
                "call %s: flow hang-up %r sent as ARI %r", self.state.call.id, reason, ari_reason
            )
        self.trace.write("hangup", reason=reason, ari_reason=ari_reason)
        try:
            await self.session.hangup(ari_reason)
        except Exception as exc:
            log.warning("call %s: hangup failed: %s", self.state.call.id, exc)

    def _spawn_side(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def _finish(self) -> None:
        assert self.outcome is not None
        if self._side:
            await asyncio.gather(*list(self._side), return_exceptions=True)
        if self.outcome.outcome != "transferred" and not getattr(self.session, "ended", True):
            await self._hangup("normal")
        self._say_line("system", f"call ended: {self.outcome.outcome}")
        self.trace.write(
            "call.ended",
            outcome=self.outcome.outcome,
            reason=self.outcome.reason,
            state=self.state.state_name,
            variables=self.state.variables(),
        )
        self.trace.close()
        if self.webhooks is not None:
            self.webhooks.emit(
                "call.ended",
                call_id=self.state.call.id,
                flow=self.flow.name,
                metadata=self.state.metadata,
                webhook_keys=self.state.webhook_keys,
                data={"outcome": self.outcome.outcome, "reason": self.outcome.reason},
            )

    # ------------------------------------------------------------ observability

    def _log(self, cmd: ev.Log) -> None:
        where = f"{cmd.span.file}:{cmd.span.line}" if cmd.span else "?"
        level = logging.getLevelName(cmd.level.upper())
        if not isinstance(level, int):
            level = logging.INFO
        log.log(
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
            self._say_line("system", f"-> {cmd.data.get('state')}")
        if not self._tracing and not self.webhooks_on:
            return
        data = dict(cmd.data)
        if cmd.kind == "input":
            data["waited_ms"] = round((time.monotonic() - self._last_prompt_end) * 1000.0)
        self.trace.write(cmd.kind, **data)
        if self.webhooks is not None and cmd.kind in ("call.started", "state.entered"):
            self.webhooks.emit(
                cmd.kind,
                call_id=self.state.call.id,
                flow=self.flow.name,
                metadata=self.state.metadata,
                webhook_keys=self.state.webhook_keys,
                data=data,
            )

    def _say_line(self, who: str, text: str) -> None:
        line = (round(time.monotonic() - self._t0, 2), who, text)
        self.transcript.append(line)
        if self.on_transcript is not None:
            try:
                self.on_transcript(line)
            except Exception as exc:  # a display callback must not break the call
                log.debug("transcript callback failed: %s", exc)

"""The call operations :class:`~voxflow.runtime.driver.CallDriver` performs for the step
function's ``Op`` commands (answer, prompts, listen, HTTP, transfer, queue, dial, hold, DTMF,
recordings, the agent step): one function per op, each over the driver and its call port, in
:data:`OP_HANDLERS`. An op's result is the step function's ``OpDone``; what it raises becomes
``OpFailed`` (or the caller's hang-up) in the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from voxflow.errors import (
    AiNotConfiguredError,
    AriError,
    CallEndedError,
    ProviderError,
    RecordingError,
    RecordingNameTakenError,
)
from voxflow.redact import url_for_log
from voxflow.runtime import events as ev
from voxflow.runtime.agent_actions import ActionRequest
from voxflow.runtime.dialing import DIAL_OUTCOMES, far_leg_takes_call, ring_group
from voxflow.runtime.http_step import HttpClient, HttpRequest
from voxflow.runtime.port import P
from voxflow.runtime.routes import action_fields, metadata_secrets, shown_url
from voxflow.runtime.trace import recognition_fields
from voxflow.runtime.trips import queue_step_result
from voxflow.runtime.webhooks import IDEMPOTENCY_HEADER
from voxflow.spec.semantics import EXIT_WITH_KEY
from voxflow.telephony.dialplan import QueueReturn
from voxflow.voice.call import BargeIn, BargeInMode

if TYPE_CHECKING:
    from voxflow.runtime.driver import CallDriver

__all__ = ["OP_HANDLERS"]


def _barge_in(mode: str) -> BargeIn:
    modes: dict[str, BargeInMode] = {"none": "none", "dtmf": "dtmf", "speech": "speech"}
    return BargeIn(mode=modes.get(mode, "any"))


async def _answer(d: CallDriver[Any], cmd: ev.Answer) -> None:
    await d.session.answer()


async def _say(d: CallDriver[Any], cmd: ev.Say) -> None:
    d._say_line("flow", cmd.text)
    with contextlib.suppress(AiNotConfiguredError):  # no TTS: the text is in the transcript
        await d.session.say(cmd.text, voice=cmd.voice, barge_in=_barge_in(cmd.bargein))
    d._last_prompt_end = asyncio.get_running_loop().time()


async def _play(d: CallDriver[Any], cmd: ev.Play) -> None:
    d._say_line("flow", f"[plays {cmd.source}]")
    await d.session.play_file(cmd.source, barge_in=_barge_in(cmd.bargein))
    d._last_prompt_end = asyncio.get_running_loop().time()


async def _listen(d: CallDriver[Any], cmd: ev.Listen) -> str | None:
    wait, least = cmd.timeout_ms / 1000.0, cmd.min_confidence
    heard = await d.session.recognize(wait, phrases=cmd.phrases, min_confidence=least)
    d._heard = None if heard is None else recognition_fields(heard, least)
    if heard is not None and (said := heard.text or " | ".join(heard.alternatives)):
        d._say_line("caller", said if heard.text else f"[not understood: {said}?]")
    return None if heard is None else heard.text


async def _http(d: CallDriver[Any], cmd: ev.Http) -> dict[str, Any]:
    if d.http is None:
        d.http = HttpClient()
    headers = dict(cmd.headers)
    if cmd.key and not any(k.lower() == "idempotency-key" for k in headers):
        headers[IDEMPOTENCY_HEADER] = cmd.key  # the same when a resumed call repeats it
    req = HttpRequest(
        cmd.method,
        cmd.url,
        headers=headers,
        json_body=cmd.body,
        timeout=cmd.timeout_ms / 1000.0,
        retries=cmd.retries,
        backoff=cmd.backoff_ms / 1000.0,
    )
    res = await d.http.perform(req)
    d.trace.write(
        "http", method=cmd.method, url=shown_url(cmd.url, metadata_secrets(d.state.metadata)),
        outcome=res.outcome, status=res.status, attempts=res.attempts,
        latency_ms=round(res.elapsed_ms, 1),
    )  # fmt: skip
    return res.as_variables()


async def _transfer(d: CallDriver[Any], cmd: ev.Transfer) -> str:
    """``transferred`` once the call left, ``unknown`` when it left and nothing says how
    (per-call websockets: answered, or the caller hung up while it rang)."""
    d._say_line("system", f"transfer to {cmd.endpoint}")
    if cmd.carry:
        await d.session.set_call_data(cmd.carry)
    d._leaving = True  # the call leaving Stasis now is not the caller hanging up
    try:
        left = await d.session.transfer_to(cmd.endpoint)
    finally:
        d._leaving = False
    if not left:
        d._say_line("system", f"transfer to {cmd.endpoint}: no word from Asterisk (unknown)")
    return "transferred" if left else "unknown"


async def _queue(d: CallDriver[Any], cmd: ev.Queue) -> dict[str, Any]:
    """Queue the caller: ``announce`` first, then the dialplan's ``Queue()`` until it hands
    the call back; its QUEUESTATUS is the outcome (``queue_outcome``), ``choice:<key>`` when
    the caller left with one of the step's exit keys, ``failed`` if the call could not be sent
    there, ``unknown`` if it left and nothing says what became of it (per-call websockets: an
    agent may have it, or the caller hung up). A digit the queue's context let out that is not
    one of the step's keys puts the caller back in the queue for the time left, at the place
    it had (its QUEUEPOSITION: ``Queue()``'s position argument), not at the back
    (:func:`~voxflow.runtime.trips.queue_step_result`); ``cmd.position``: the first time too
    (a worker that took the call over queues it again so)."""
    again = f" again at position {cmd.position}" if cmd.position else ""
    d._say_line("system", f"queue {cmd.name}{again}")
    if cmd.announce:
        await _say(d, ev.Say(cmd.cid, cmd.announce))
    if cmd.carry:
        await d.session.set_call_data(cmd.carry)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cmd.timeout_ms / 1000.0
    timeout, position = cmd.timeout_ms / 1000.0, cmd.position
    while True:
        back = await _queue_once(d, cmd, timeout, position)
        if back is None:  # it left, and Asterisk told nothing more: the flow ends
            d._say_line("system", f"queue {cmd.name}: no word from Asterisk (unknown)")
            return {"outcome": "unknown"}
        timeout = deadline - loop.time()
        result = queue_step_result(back, cmd.keys, timeout)
        if result is not None:
            return _queue_result(d, cmd, back, result)
        position = back.position
        place = f" (back at position {position})" if position else ""
        d._say_line("system", f"queue {cmd.name}: key {back.key or '?'} is no exit key here{place}")


async def _queue_once(
    d: CallDriver[Any], cmd: ev.Queue, timeout: float, position: int | None
) -> QueueReturn | None:
    d._leaving = True  # a call leaving for good is not the caller hanging up
    try:
        return await d.session.transfer_to_queue(
            cmd.name, timeout=timeout, music=cmd.music, priority=cmd.priority,
            exit_keys="".join(cmd.keys), position=position,
        )  # fmt: skip
    except (ValueError, AriError) as exc:
        d.log.warning("call %s: queue %r failed: %s", d.state.call.id, cmd.name, exc)
        return QueueReturn("")  # the outcome 'failed' (no QUEUESTATUS)
    finally:
        d._leaving = False


def _queue_result(
    d: CallDriver[Any], cmd: ev.Queue, back: QueueReturn, result: dict[str, Any]
) -> dict[str, Any]:
    """The step's ``result``, logged with how ``Queue()`` let the call go (``back``)."""
    if back.status == EXIT_WITH_KEY:
        d._say_line("system", f"queue {cmd.name}: the caller left with key {back.key}")
    else:
        d._say_line("system", f"queue {cmd.name}: QUEUESTATUS {back.status or '(unset)'}")
    d._say_line("system", f"queue {cmd.name}: {result['outcome']}")
    return result


async def _dial(d: CallDriver[Any], cmd: ev.Dial) -> str:
    timeout = max(1, cmd.timeout_ms // 1000)
    if cmd.others:
        endpoints = (cmd.endpoint, *cmd.others)
        d._say_line("system", f"dial {', '.join(endpoints)} (ring {cmd.ring})")
        leg, outcome, who = await ring_group(
            d.session, endpoints, caller_id=cmd.caller_id, timeout=timeout,
            hunt=cmd.ring == "hunt",
        )  # fmt: skip
        if leg is None:
            d._say_line("system", f"dial {who}: {outcome}")
            return outcome
        return await _bridge(d, who, leg, cmd)
    d._say_line("system", f"dial {cmd.endpoint}")
    other = await d.session.originate(cmd.endpoint, caller_id=cmd.caller_id, timeout=timeout)
    reason = (other.failure_reason or "").lower()
    if other.ended or reason:
        outcome = DIAL_OUTCOMES.get(reason, "failed")
        d._say_line("system", f"dial {cmd.endpoint}: {outcome} ({reason or 'ended'})")
        return outcome
    return await _bridge(d, cmd.endpoint, other, cmd)


async def _bridge(d: CallDriver[P], endpoint: str, other: P, cmd: ev.Dial) -> str:
    """Run the far-leg actions, then bridge the answered leg with the caller until it
    hangs up: ``answered`` (``noanswer`` when the far party did not accept)."""
    if cmd.far_dtmf or cmd.whisper or cmd.accept:
        if cmd.whisper:
            d._say_line("system", f"whisper to {endpoint}: {cmd.whisper}")
        try:
            taken = await far_leg_takes_call(other, cmd)
        except CallEndedError:
            if d.session.ended:
                raise
            taken = False  # the far party hung up during the whisper
        if not taken:
            with contextlib.suppress(Exception):
                await other.hangup()
            d._say_line("system", f"dial {endpoint}: not accepted by the called party")
            return "noanswer"
    try:
        await d.session.bridge_with(other)
        d._say_line("system", f"dial {endpoint}: answered, bridged")
        await other.wait_ended()
    finally:
        with contextlib.suppress(Exception):
            await other.hangup()
    d._say_line("system", f"dial {endpoint}: the other side hung up")
    return "answered"


async def _hold(d: CallDriver[Any], cmd: ev.Hold) -> None:
    await d.session.hold(cmd.music)


async def _unhold(d: CallDriver[Any], cmd: ev.Unhold) -> None:
    await d.session.unhold()


async def _send_dtmf(d: CallDriver[Any], cmd: ev.SendDtmf) -> None:
    await d.session.send_dtmf(cmd.digits)


RESUMED_NAMES = 9
"""How many other names (``<name>-r1`` .. ``-r9``) a resumed call's recording tries."""


async def _record_start(d: CallDriver[Any], cmd: ev.RecordStart) -> str:
    """Start the recording. A resumed call (cluster failover) whose recording's name is taken
    (the dead worker's recording of the re-entered state: still live, or stored with
    ``ifExists=fail``) keeps that one and records under ``<name>-r<k>``, the first free ``k``
    (1-9), so each has its own ``recording.ready`` key (``<call id>:recording:<name>``)."""
    d._say_line("system", f"recording {cmd.name or '(auto)'}")
    name = cmd.name or None
    for k in range(1, RESUMED_NAMES + 2):
        try:
            return await d.session.record_start(
                name,
                format=cmd.format,
                max_duration=(cmd.max_duration_ms // 1000) if cmd.max_duration_ms else None,
                beep=cmd.beep,
                max_silence=max(1, -(-cmd.silence_ms // 1000)) if cmd.silence_ms else None,
            )
        except RecordingNameTakenError:
            if not (d.resumed and cmd.name) or k > RESUMED_NAMES:
                raise
            name = f"{cmd.name}-r{k}"
            d.log.info("call %s (resumed): recording %r taken, recording %s",
                       d.state.call.id, cmd.name, name)  # fmt: skip
    raise AssertionError("unreachable")


async def _record_stop(d: CallDriver[Any], cmd: ev.RecordStop) -> dict[str, Any]:
    meta = await d.session.record_stop()
    took = f"{meta.duration:g}s" if meta.duration is not None else "length unknown"
    where = url_for_log(meta.location) if meta.location else "nowhere (no location reported)"
    d._say_line("system", f"recorded {meta.name} ({took}) -> {where}")
    if d.webhooks is not None:
        d.webhooks.emit(
            "recording.ready",
            call_id=d.state.call.id,
            flow=d.flow.name,
            metadata=d.state.metadata,
            webhook_keys=d.state.webhook_keys,
            data={"name": meta.name, "format": meta.format},
            key=f"{d.state.call.id}:recording:{meta.name}",
        )
    result: dict[str, Any] = {"name": meta.name, "duration": meta.duration}
    if cmd.transcribe:
        try:
            result["transcript"] = await d.session.transcribe(meta)
        except (AiNotConfiguredError, RecordingError, ProviderError) as exc:
            d.log.warning("call %s: cannot transcribe %s: %s", d.state.call.id,
                             meta.name, exc or type(exc).__name__)  # fmt: skip
            result["transcript"] = ""
        d._say_line("system", f"transcript of {meta.name}: {result['transcript']!r}")
    return result


async def _agent(d: CallDriver[Any], cmd: ev.Agent) -> Mapping[str, Any]:
    result: Mapping[str, Any]
    if d.agent_runner is None:
        why = "no LLM configured for the agent step (set VOXFLOW_LLM_MODEL)"
        d.log.error("call %s: %s", d.state.call.id, why)
        result = {"outcome": "error", "error": why}
    else:
        d.agent_used = True
        line = functools.partial(_agent_line, d)
        result = await d.agent_runner(d.session, cmd, on_line=line, on_action=_ActionTrace(d))
    _agent_report(d, result)
    return result


class _ActionTrace:
    """An agent step's action requests into the call's trace: a ``route`` record as each is
    sent, an ``http`` record (with ``action``) when it is answered."""

    def __init__(self, d: CallDriver[Any]) -> None:
        self.d = d

    def sent(self, action: str, args: Mapping[str, Any], req: ActionRequest | None) -> None:
        """The model called ``action``: its request (None: not prepared) as a route."""
        d = self.d
        secrets = metadata_secrets(d.state.metadata)
        d.write_route(action_fields(action, args, req, d.state.call.id, secrets))

    def answered(
        self, action: str, req: ActionRequest, outcome: str, status: int | None, ms: float
    ) -> None:
        """Its answer, as an http step's is traced (a replay answers it so)."""
        url = shown_url(req.url, metadata_secrets(self.d.state.metadata))
        self.d.trace.write("http", method=req.method, url=url, outcome=outcome, status=status,
                           latency_ms=round(ms, 1), action=action)  # fmt: skip


def _agent_report(d: CallDriver[Any], result: Mapping[str, Any]) -> None:
    """An agent step's conversation into the transcript, its per-turn metrics into the trace."""
    for role, text in () if result.get("reported") else result.get("messages") or ():
        d._say_line("caller" if role == "user" else "flow", str(text))
    for turn, metrics in enumerate(result.get("metrics") or (), 1):
        if isinstance(metrics, Mapping):
            d.trace.write("agent.turn", turn=turn, **metrics)
    d.trace.write(
        "agent",
        outcome=result.get("outcome"),
        args=result.get("args") or {},
        turns=result.get("turns"),
        error=result.get("error"),
    )


def _agent_line(d: CallDriver[Any], who: str, text: str) -> None:
    """A line of an agent step as it is spoken (``agent``) or heard (``caller``)."""
    d._say_line("caller" if who == "caller" else "flow", text)


_OpHandler = Callable[["CallDriver[Any]", Any], Awaitable[object]]

OP_HANDLERS: dict[type[ev.Op], _OpHandler] = {
    ev.Answer: _answer,
    ev.Say: _say,
    ev.Play: _play,
    ev.Listen: _listen,
    ev.Http: _http,
    ev.Transfer: _transfer,
    ev.Queue: _queue,
    ev.Dial: _dial,
    ev.Hold: _hold,
    ev.Unhold: _unhold,
    ev.SendDtmf: _send_dtmf,
    ev.RecordStart: _record_start,
    ev.RecordStop: _record_stop,
    ev.Agent: _agent,
}
"""Op command type -> the function performing it on the driver's call (timers are the loop's)."""

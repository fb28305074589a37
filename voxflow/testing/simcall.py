"""The flow-test call: a :class:`~voxflow.runtime.port.CallPort` in virtual time.

:class:`SimCall` is what :class:`~voxflow.runtime.driver.CallDriver` drives in ``voxflow test``:
each operation takes the simulated time it would take on a call (``asyncio.sleep`` on the
:class:`~voxflow.testing.vloop.VirtualTimeLoop`), answers from the scenario's mocks, and records
what happened in a :class:`SimResult`. It interprets no step: the driver and the step function
decide everything, as on a real call. The scripted caller (:mod:`voxflow.testing.sim`) acts on
it through :meth:`SimCall.press`, :meth:`SimCall.speak` and :meth:`SimCall.caller_hangs_up`.

Simulated durations: a spoken prompt lasts 0.4 s per word (at least 0.5 s), a played file 2 s
(``mocks.media`` overrides per file name or prompt text), a caller sentence 0.3 s per word.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from voxflow.errors import (
    AiNotConfiguredError,
    CallEndedError,
    CallError,
    RecordingError,
    TransferFailedError,
)
from voxflow.runtime.http_step import (
    RETRY_STATUSES,
    HttpOutcome,
    HttpRequest,
    HttpResult,
    with_retries,
)
from voxflow.runtime.webhook_retry import retry_after
from voxflow.spec.semantics import EXIT_WITH_KEY, QUEUE_EXIT_KEYS, QUEUE_STATUS, transfer_routable
from voxflow.telephony.dialplan import QueueReturn
from voxflow.telephony.recording import RecordingMetadata
from voxflow.telephony.state import CallDirection, CallMetadata
from voxflow.testing.scenario import Mocks
from voxflow.voice.call import AiProviders, BargeIn, PromptResult
from voxflow.voice.providers import Transcript, below_confidence

if TYPE_CHECKING:  # annotations only: a simulated call has no agent
    from voxflow.agent.call_agent import CallAgent

__all__ = [
    "Hit",
    "MockedFailure",
    "SentRequest",
    "SimCall",
    "SimHttp",
    "SimLeg",
    "SimResult",
    "TraceLine",
]

_WORD_SAY = 0.4
_WORD_CALLER = 0.3
_PLAY = 2.0
_TRANSFER = 0.5
_STATUS = {outcome: status for status, outcome in reversed(QUEUE_STATUS.items())}
_JOINED = frozenset({"CONTINUE", "TIMEOUT", "LEAVEEMPTY", "WITHDRAW"})
"""The statuses of a Queue() that took the caller in; the others (FULL, JOINEMPTY, UNKNOWN)
return at once (app_queue.c queue_exec: join_queue failed)."""
"""Statuses of a caller Queue() took in (it sets QUEUEPOSITION and QUEUEWAIT on leaving)."""
"""A queue mock's ``result`` as the QUEUESTATUS Queue() would set (failed: FULL)."""

M = TypeVar("M")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One line of the readable call trace: virtual seconds, who, what."""

    t: float
    who: str
    text: str

    def render(self) -> str:
        return f"{self.t:8.2f}s  {self.who:<7} {self.text}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A coverage observation: ``kind`` is state, transition, branch; ``key`` as in
    :mod:`voxflow.ir.flowmap`."""

    kind: str
    key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """An HTTP request the flow made (an ``http`` step or an agent action), as sent."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None


@dataclass
class SimResult:
    """Everything observable about one simulated call."""

    trace: list[TraceLine] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    transfers: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    dialed: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    http: list[str] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    """The driver's ``route`` records (:mod:`voxflow.runtime.routes`), in order."""
    requests: list[SentRequest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hits: set[Hit] = field(default_factory=set)
    ended: tuple[str, str] | None = None
    on_hangup_cut: float | None = None  # s after which the ``on hangup`` body was cut
    ended_at: float | None = None
    end_state: str | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)
    """Scenario problems found while running: (step index or -1, message)."""
    steps_done: int = 0
    secrets: list[str] = field(default_factory=list)
    """Values of sensitive variables (held in the call or expected), never printed."""
    masked: dict[int, str] = field(default_factory=dict)
    """Caller step index -> its keys or sentence as printed (``*`` per key into a sensitive
    variable or typed ahead in a flow with one; ``<redacted>`` for a sentence into one)."""


class MockedFailure(CallError):
    """An operation a scenario's ``mocks.fail`` makes fail."""


class _SilentTts:
    """The simulated call's TTS: prompts take simulated time in :meth:`SimCall.say`."""

    sample_rate = 8000

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """No audio: nobody listens to a simulated call."""
        nothing: tuple[bytes, ...] = ()
        for chunk in nothing:
            yield chunk


class _Mocks:
    """The scenario's mocks, each used at most ``times`` times (unlimited when unset)."""

    def __init__(self, mocks: Mocks) -> None:
        self.all = mocks
        self.used: dict[int, int] = {}

    def take(self, mocks: Sequence[M], pred: Callable[[M], bool]) -> M | None:
        for m in mocks:
            times: int | None = getattr(m, "times", None)
            left = times - self.used.get(id(m), 0) if times is not None else 1
            if left > 0 and pred(m):
                self.used[id(m)] = self.used.get(id(m), 0) + 1
                return m
        return None

    def failure(self, op: str, subject: str) -> None:
        """Raise MockedFailure when a ``fail`` mock matches ``op`` on ``subject``."""
        m = self.take(
            self.all.fail, lambda f: f.op == op and re.search(f.match, subject) is not None
        )
        if m is not None:
            raise MockedFailure(m.error)


@dataclass
class _Recording:
    """A recording in progress: how much caller speech it heard, since when it is quiet."""

    name: str
    format: str
    silence: float | None
    quiet_from: float
    started: float
    done: asyncio.Event
    heard: float = 0.0
    gen: int = 0  # bumped when the caller speaks: older silence checks are void
    words: list[str] = field(default_factory=list)  # what the caller said into it


class SimLeg:
    """The other leg of a simulated ``dial``: answered (it hangs up ``talk`` seconds later) or
    failed with ``failure_reason``. Before it is joined it hears whispers and DTMF (traced
    through ``log``) and presses the mock's ``presses`` keys, 0.5 s apart, once a whisper or
    key wait starts."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        reason: str | None,
        talk: float,
        *,
        log: Callable[[str, str], None] | None = None,
        presses: str = "",
        name: str = "",
    ) -> None:
        self._ended = asyncio.Event()
        self.failure_reason = reason
        self._loop = loop
        self._log = log or (lambda who, text: None)
        self._keys = list(presses)
        self._name = name
        self._talk = talk
        if reason is not None:
            self._ended.set()

    def _start_talk(self) -> None:
        if not self._ended.is_set() and self._talk >= 0:
            self._loop.call_later(self._talk, self._ended.set)
            self._talk = -1.0  # started

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        self._log("far", f'{self._name} hears "{text}"')
        await asyncio.sleep(max(0.5, _WORD_SAY * len(text.split())))
        return PromptResult()

    async def send_dtmf(self, digits: str) -> None:
        self._log("far", f"{self._name} gets keys {digits}")
        await asyncio.sleep(0.25 * len(digits))

    async def listen_dtmf(self, timeout: float = 5.0) -> str | None:
        if not self._keys:
            await asyncio.sleep(timeout)
            return None
        await asyncio.sleep(min(0.5, timeout))
        key = self._keys.pop(0)
        self._log("far", f"{self._name} presses {key}")
        return key

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self, timeout: float | None = None) -> None:
        self._start_talk()  # the conversation starts when the legs are joined
        await asyncio.wait_for(self._ended.wait(), timeout)

    async def hangup(self, reason: str = "normal") -> None:
        self._ended.set()


class SimCall:
    """One simulated call (implements ``CallPort[SimLeg]``); see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        result: SimResult,
        mocks: Mocks,
        *,
        call_id: str,
        caller: str,
        called: str,
        direction: str,
        metadata: dict[str, Any],
        speech: bool,
    ) -> None:
        self.loop = loop
        self.res = result
        self.mocks = _Mocks(mocks)
        self._prio_before: str | None = None  # CallSession.queue_prio_before: "" (no dialplan)
        self.id = call_id
        self.caller_id = caller
        self.called_number = called
        self.direction = CallDirection(direction)
        self.metadata = CallMetadata(metadata)
        self.speech = speech
        self.providers = AiProviders(llm=None, stt=None, tts=_SilentTts())
        self.prompt_started: float | None = None
        self.on_prompt: Callable[[], None] = lambda: None
        self._ended = False
        self._dtmf: list[Callable[[str], None]] = []
        self._on_end: list[Callable[[], Any]] = []
        self._prompt: tuple[asyncio.Future[PromptResult], BargeIn] | None = None
        self._listen: asyncio.Future[Transcript | None] | None = None
        self._rec: _Recording | None = None
        self._recs = 0
        self._said_into: dict[str, str] = {}  # recording name -> what the caller said into it

    # ------------------------------------------------------------------ plumbing

    def log(self, who: str, text: str) -> None:
        self.res.trace.append(TraceLine(round(self.loop.time(), 3), who, text))

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def agent(self) -> CallAgent:
        raise AiNotConfiguredError("a simulated call has no agent: the scenario's mocks answer")

    def on_hangup(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        self._on_end.append(callback)
        return callback

    def add_dtmf_listener(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._dtmf.append(callback)
        return lambda: self._dtmf.remove(callback) if callback in self._dtmf else None

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._rec is not None:
            self._rec.done.set()
        for listener in list(self._dtmf):
            listener("")
        for callback in self._on_end:
            callback()

    def _live(self) -> None:
        if self._ended:
            raise CallEndedError(f"call {self.id} has ended")

    async def _wait_or_end(self, seconds: float) -> None:
        """Wait ``seconds`` (a call in the dialplan); CallEndedError once the caller hangs up."""
        fut: asyncio.Future[Transcript | None] = self.loop.create_future()
        self._on_end.append(lambda: _resolve(fut, None))
        handle = self.loop.call_later(seconds, _resolve, fut, None)
        try:
            await fut
        finally:
            handle.cancel()
        self._live()

    # ------------------------------------------------------------------ the caller

    def press(self, digit: str) -> None:
        """The caller presses ``digit`` now."""
        if self._ended:
            return
        for listener in list(self._dtmf):
            listener(digit)

    def speak(self, text: str, confidence: float | None = None) -> float:
        """The caller starts saying ``text`` now; returns how long it takes. A prompt that
        allows speech barge-in stops at once; the sentence ends up, when said, in the listen
        running then (recognised with ``confidence``, None: with none given), else in the
        recording running, else nowhere (a trace line says so)."""
        seconds = _WORD_CALLER * len(text.split())
        if self._ended:
            return seconds
        prompt = self._prompt
        if prompt is not None and self.speech and prompt[1].mode in ("speech", "any"):
            self.log("flow", "prompt stopped (speech barge-in)")
            self._finish_prompt(PromptResult(interrupted=True, by="speech"))
        rec = self._rec
        if rec is not None:
            rec.heard += seconds
            rec.words.append(text)
            rec.quiet_from = self.loop.time() + seconds
            rec.gen += 1
            self._arm_silence(rec)
        self.loop.call_later(seconds, self._said, text, confidence)
        return seconds

    def _said(self, text: str, confidence: float | None = None) -> None:
        if self._ended:
            return
        listen = self._listen
        if listen is not None and not listen.done():
            listen.set_result(Transcript(text, confidence=confidence))
        elif self._rec is not None:
            self.log("flow", f'recording {self._rec.name} hears "{text}"')
        elif not self.speech:
            self.log("flow", f'did not hear "{text}" (no speech recognition on this call)')
        else:
            self.log("flow", f'did not hear "{text}" (not listening for speech)')

    def caller_hangs_up(self) -> None:
        self.log("caller", "hangs up")
        self._end()

    def app_hangs_up(self) -> None:
        """The application hangs the channel up (the server, after its grace period)."""
        self._end()

    # ------------------------------------------------------------------ lifecycle

    async def answer(self) -> None:
        self._live()
        self.mocks.failure("answer", "")
        self.log("flow", "answers")

    async def hangup(self, reason: str = "normal") -> None:
        self._end()

    # ------------------------------------------------------------------ prompts and input

    async def _prompt_for(self, seconds: float, barge_in: BargeIn | None) -> PromptResult:
        self._live()
        done: asyncio.Future[PromptResult] = self.loop.create_future()
        self._prompt = (done, barge_in or BargeIn())
        self.prompt_started = self.loop.time()
        handle = self.loop.call_later(seconds, self._finish_prompt, PromptResult())
        self.on_prompt()
        try:
            return await done
        except asyncio.CancelledError:
            self.log("flow", "prompt stopped (barge-in)")
            raise
        finally:
            handle.cancel()
            if self._prompt is not None and self._prompt[0] is done:
                self._prompt = None

    def _finish_prompt(self, result: PromptResult) -> None:
        if self._prompt is not None and not self._prompt[0].done():
            self._prompt[0].set_result(result)
        self._prompt = None

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        self.mocks.failure("say", text)
        self.res.said.append(text)
        words = max(0.5, _WORD_SAY * len(text.split()))
        return await self._prompt_for(self.mocks.all.media.get(text, words), barge_in)

    async def play_file(
        self, name: str, *, barge_in: BargeIn | None = None, lang: str | None = None
    ) -> PromptResult:
        self.mocks.failure("play", name)
        self.res.played.append(name)
        return await self._prompt_for(self.mocks.all.media.get(name, _PLAY), barge_in)

    async def recognize(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] = (),
        min_confidence: float | None = None,
    ) -> Transcript | None:
        """What the caller says next, as the scenario says it: a ``say`` with a ``confidence``
        under ``min_confidence`` is rejected (text "", a ``nomatch``) as a recogniser would;
        without a ``min_confidence`` (the offline recogniser's default) it is accepted; one with
        confidence 0 never is (the recogniser made nothing of it)."""
        self._live()
        fut: asyncio.Future[Transcript | None] = self.loop.create_future()
        self._listen = fut
        handle = self.loop.call_later(timeout, _resolve, fut, None)
        try:
            heard = await fut
            if heard is not None and heard.confidence is not None:
                self.log("flow", f'hears "{heard.text}" with confidence {heard.confidence:g}')
            if heard is None:
                return None
            if heard.confidence == 0:  # nothing made of it, whatever the threshold
                return Transcript("", confidence=0.0, alternatives=(heard.text,))
            return below_confidence(heard, min_confidence)
        finally:
            handle.cancel()
            if self._listen is fut:
                self._listen = None

    async def send_dtmf(self, digits: str) -> None:
        self._live()
        self.mocks.failure("send_dtmf", digits)
        self.log("flow", f"sends DTMF {digits}")

    # ------------------------------------------------------------------ leaving the flow

    def _leave(self) -> None:
        """As on Asterisk, a recording running when the call leaves the app stops there."""
        rec, self._rec = self._rec, None
        if rec is not None:
            self.log("flow", f"recording {rec.name} stops: the call leaves the app")
            rec.done.set()

    async def set_call_data(self, data: Sequence[tuple[str, str]]) -> None:
        self._live()
        if data:
            self.log("flow", "carries " + ", ".join(f"{k}={v!r}" for k, v in data))

    async def transfer_to(self, number: str) -> bool:
        """The shipped [voxflow-transfer]: a ``transfer`` mock with ``result: failed`` sends the
        call back with its ``status`` (TransferFailedError, as at run time), so does a target
        the context has no extension for (``INVALID``); else it left."""
        self._live()
        self.res.transfers.append(number)
        self.mocks.failure("transfer", number)
        m = self.mocks.take(
            self.mocks.all.transfer, lambda t: re.search(t.endpoint, number) is not None
        )
        if m is not None and m.result == "failed":
            await asyncio.sleep(m.after)
            self.log("mock", f"transfer to {number}: Asterisk sends the call back ({m.status})")
            raise TransferFailedError(number, m.status)
        if m is None and not transfer_routable(number):
            self.log("flow", f"transfer to {number}: no extension routes it, back with INVALID")
            raise TransferFailedError(number, "INVALID")
        self._leave()
        await asyncio.sleep(m.after if m is not None else _TRANSFER)
        return True

    async def transfer_to_queue(
        self,
        name: str,
        *,
        timeout: float | None = None,
        music: str | None = None,
        priority: int | None = None,
        exit_keys: str = "",
        position: int | None = None,
    ) -> QueueReturn:
        """The shipped [voxflow-queue]: Queue() hands the call back with the mock's QUEUESTATUS
        after ``after`` s (no mock: nobody answers, as with the shipped queues.conf, which has
        no members: TIMEOUT once the step's timeout passed). A step with exit keys queues in a
        queue whose context is [voxflow-queue-exit]: any digit 0-9 pressed meanwhile leaves
        Queue() at once (EXITWITHKEY, no QUEUEWAIT), as ``_X`` there matches it. Queued again
        at ``position`` (the place it had), the caller keeps it: QUEUEPOSITION is that, unless
        the mock says otherwise. ``QUEUE_PRIO`` as on Asterisk: the step's ``priority``, else
        back to the value before voxflow first set it (here unset: 0), logged."""
        self._live()
        if priority is not None and self._prio_before is None:
            self._prio_before = ""  # the call came with no QUEUE_PRIO
        if priority is not None or self._prio_before is not None:
            prio = str(priority) if priority is not None else self._prio_before or "0 (unset)"
            self.log("flow", f"queue {name}: QUEUE_PRIO {prio}")
        self.res.queues.append(name)
        self.mocks.failure("queue", name)
        m = self.mocks.take(self.mocks.all.queue, lambda q: re.search(q.name, name) is not None)
        status = (m.status or _STATUS[m.result]) if m else "TIMEOUT"
        after = m.after if m else 0.0
        if status == "TIMEOUT" and timeout:  # whole seconds, as [voxflow-queue] gets them
            after = float(max(1, round(timeout)))
        if m is None:
            self.log("mock", f"queue {name}: no mock, nobody answers")
        self._leave()
        if status not in _JOINED:  # Queue() never took the caller in: back at once, nothing set
            if after:
                self.log("mock", f"queue {name}: {status} returns at once (after ignored)")
            await self._queued(0.0, False)
            return QueueReturn(status)
        position = m.position if m and m.position is not None else (position or 1)
        wait = m.wait if m is not None and m.wait is not None else after
        # keys leave while the caller waits or members ring, not once an agent has the call
        until = min(wait, after) if status == "CONTINUE" else after
        key = await self._queued(after, bool(exit_keys), until)
        if key:
            self.log("flow", f"queue {name}: key {key} leaves Queue() by [voxflow-queue-exit]")
            return QueueReturn(EXIT_WITH_KEY, position=position, key=key)
        return QueueReturn(status, position=position, wait=int(wait))

    async def _queued(self, seconds: float, exits: bool, until: float | None = None) -> str:
        """Wait ``seconds`` in Queue(): "" then, or the digit that left it first (``exits``:
        the queue's context matches any digit; only in the first ``until`` seconds, default
        all of them); CallEndedError once the caller hangs up."""
        fut: asyncio.Future[str] = self.loop.create_future()
        self._on_end.append(lambda: _resolve(fut, ""))
        handle = self.loop.call_later(seconds, _resolve, fut, "")
        closes = self.loop.time() + (seconds if until is None else until)

        def digit(d: str) -> None:
            if exits and d and d in QUEUE_EXIT_KEYS and self.loop.time() < closes:
                _resolve(fut, d)

        stop = self.add_dtmf_listener(digit)
        try:
            key = await fut
        finally:
            handle.cancel()
            stop()
        self._live()
        return key

    async def hold(self, moh_class: str | None = None) -> None:
        self._live()
        self.mocks.failure("hold", moh_class or "")
        self.log("flow", "puts the caller on hold")

    async def unhold(self) -> None:
        self._live()
        self.log("flow", "takes the caller off hold")

    async def originate(
        self, endpoint: str, *, caller_id: str | None = None, timeout: int = 30
    ) -> SimLeg:
        self.res.dialed.append(endpoint)
        self.mocks.failure("dial", endpoint)
        m = self.mocks.take(
            self.mocks.all.dial, lambda d: re.search(d.endpoint, endpoint) is not None
        )
        result, after = (m.result, m.after) if m else ("answered", 3.0)
        if m is None:
            self.log("mock", f"dial {endpoint}: no mock, answered")
        if result == "answered":
            presses = m.presses if m else ""
            return SimLeg(self.loop, None, after, log=self.log, presses=presses, name=endpoint)
        await asyncio.sleep(min(after, float(timeout)) if result == "noanswer" else after)
        reasons = {"busy": "busy", "noanswer": "no answer"}
        return SimLeg(self.loop, reasons.get(result, "failed (cause 41)"), 0.0)

    async def bridge_with(self, other: SimLeg) -> str:
        self._live()
        return f"sim-bridge-{self.id}"

    # ------------------------------------------------------------------ recording

    async def record_start(
        self,
        name: str | None = None,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        beep: bool = False,
        max_silence: int | None = None,
    ) -> str:
        self._live()
        self._recs += 1
        name = name or f"{self.id}-{self._recs}"
        self.mocks.failure("record_start", name)
        if self._rec is not None:
            raise RecordingError(f"call {self.id} is already recording {self._rec.name!r}")
        self.res.recordings.append(name)
        now = self.loop.time()
        rec = _Recording(name, format, max_silence, now, now, asyncio.Event())
        self._rec = rec
        self._arm_silence(rec)
        return name

    def _arm_silence(self, rec: _Recording) -> None:
        if rec.silence is not None:
            when = rec.quiet_from + rec.silence
            self.loop.call_at(when, self._silence_check, rec, rec.gen)

    def _silence_check(self, rec: _Recording, gen: int) -> None:
        if rec is self._rec and rec.gen == gen and not rec.done.is_set():
            self.log("flow", f"recording {rec.name} ends after {rec.silence:g}s of silence")
            rec.done.set()

    async def wait_recording(self) -> None:
        rec = self._rec
        if rec is not None:
            await rec.done.wait()

    async def record_stop(self) -> RecordingMetadata:
        rec = self._rec
        if rec is None:
            raise RecordingError(f"call {self.id} is not recording")
        self.mocks.failure("record_stop", rec.name)
        self._rec = None
        self._said_into[rec.name] = " ".join(rec.words)
        started = datetime.fromtimestamp(rec.started, UTC)
        return RecordingMetadata(
            rec.name,
            self.id,
            rec.format,
            started,
            datetime.fromtimestamp(self.loop.time(), UTC),
            duration=round(rec.heard, 3),
            target=f"channel:{self.id}",
            location=f"ari:recording:{rec.name}",  # as a real call without a sink: on the PBX
        )

    async def transcribe(self, recording: RecordingMetadata) -> str:
        """What the caller said into the recording (the simulator's speech recogniser)."""
        self.mocks.failure("transcribe", recording.name)
        await asyncio.sleep(0.5)
        text = self._said_into.get(recording.name, "")
        self.log("flow", f"transcribes {recording.name}: {text!r}")
        return text


class SimHttp:
    """A flow's HTTP requests answered from the scenario's ``mocks.http`` (an
    :class:`~voxflow.runtime.driver.HttpPerformer`); an unmocked request is a scenario problem."""

    def __init__(
        self, call: SimCall, problem: Callable[[str], None], now: Callable[[], float]
    ) -> None:
        self.call = call
        self.problem = problem
        self.now = now
        """The call's virtual wall clock (epoch seconds): an HTTP-date ``Retry-After`` is read
        against it."""

    async def perform(self, req: HttpRequest) -> HttpResult:
        """Answer ``req`` from the mocks, retried as the run time's HttpClient retries it."""
        clock = asyncio.get_running_loop().time
        rng = random.Random(f"{self.call.id} {req.method} {req.url}")  # the same on every run
        return await with_retries(req, lambda: self._attempt(req), clock=clock, rng=rng)

    async def _attempt(self, req: HttpRequest) -> HttpResult:
        call = self.call
        call.res.http.append(f"{req.method} {req.url}")
        headers = tuple(req.headers.items())
        call.res.requests.append(SentRequest(req.method, req.url, headers, req.json_body))
        call.mocks.failure("http", req.url)
        m = call.mocks.take(
            call.mocks.all.http,
            lambda h: h.method in (None, req.method) and re.search(h.url, req.url) is not None,
        )
        if m is None:
            self.problem(f"no HTTP mock for {req.method} {req.url} (add one under mocks.http)")
            return HttpResult("error", error="unmocked")
        outcome: HttpOutcome = m.outcome or ("ok" if 200 <= m.status < 300 else "error")
        delay = m.delay
        if outcome == "timeout" or delay >= req.timeout:
            outcome, delay = "timeout", req.timeout
        data = m.json_ if m.json_ is not None else m.text
        status = m.status if outcome != "timeout" and m.outcome != "error" else None
        await asyncio.sleep(delay)
        error = None if outcome == "ok" else ("mocked " + outcome)
        # as HttpClient: a timeout, a connection failure (outcome: error), 429 or 5xx
        retry = status is None or status in RETRY_STATUSES
        after = retry_after(status or 0, m.retry_after, self.now)
        return HttpResult(
            outcome, status, data, error, 1, delay * 1000.0, outcome != "ok" and retry, after
        )


def _resolve(fut: asyncio.Future[T], value: T) -> None:
    if not fut.done():
        fut.set_result(value)

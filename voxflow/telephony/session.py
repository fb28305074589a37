"""CallSession: one call, as the seed describes it.

The session is driven by ARI events (``_on_event``, fed by the app's dispatcher) and acts through
the app's REST client. High-level methods wait for the state they need (``play_file`` before
answer waits for the answer, and raises ``CallEndedError`` if the call ends first).
The end of a call is StasisEnd (or ChannelDestroyed, or a resync that no longer finds the channel);
cleanup then runs exactly once: recording sink, voice ``aclose``, bridge teardown, ``on_hangup``
callbacks, removal from the app registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voxflow.ari.cleanup import Backoff, is_transient, retry_until_done
from voxflow.ari.models import (
    AriEvent,
    Channel,
)
from voxflow.errors import (
    AiNotConfiguredError,
    AriConflict,
    AriError,
    AriHTTPError,
    AriNotFound,
    AriTimeoutError,
    CallEndedError,
    RecordingError,
    RecordingNameTakenError,
)
from voxflow.telephony.active_recording import ActiveRecording, auto_recording_name
from voxflow.telephony.bridging import bridge_calls, destroy_bridge
from voxflow.telephony.dialplan import (
    DialplanTrip,
    QueueReturn,
    TripResult,
    queue,
    queue_prio_before,
    queue_variables,
    set_call_data,
    stop_media_before_leaving,
    transfer,
)
from voxflow.telephony.dtmf import ENDED as _ENDED
from voxflow.telephony.dtmf import DtmfInbox
from voxflow.telephony.playback import play
from voxflow.telephony.recording import RecordingMetadata, RecordingSink, safe_recording_name
from voxflow.telephony.session_events import HANDLERS
from voxflow.telephony.state import CallDirection, CallMetadata, CallState, failure_reason
from voxflow.telephony.transcribe import transcribe_recording
from voxflow.voice.call import AiProviders, BargeIn, CallVoice, PromptResult, VoiceContext, weak_get
from voxflow.voice.chunk import AudioChunk
from voxflow.voice.providers import Transcript

if TYPE_CHECKING:  # annotations only (the agent layer sits above telephony)
    from voxflow.agent.call_agent import CallAgent
    from voxflow.ari.rest import AriRestClient
    from voxflow.telephony.app import VoxtraApp

__all__ = ["CallSession"]

log = logging.getLogger(__name__)

_DTMF_CHARS = re.compile(r"^[0-9A-Da-d#*,]+$")
_HANGUP_ROUNDS = 3
"""Accepted hang-ups (DELETE 204, no end event, the channel still there) before a session gives
its channel up: Asterisk keeps answering that it exists, and asking forever is a hung call."""
_HANGUP_DEADLINE_MAX = 120.0
"""Seconds: the longest deadline a hang-up's DELETE gets once earlier ones timed out (each
timeout doubles it from the client's own). With a fixed deadline an Asterisk answering later
than it was asked forever and never heard (its 404 included): a hung call."""

_ANSWER_DEADLINE_MAX = _HANGUP_DEADLINE_MAX
"""Seconds: the longest deadline an answer gets once earlier ones timed out (as for hang-ups)."""

HangupCallback = Callable[[], Any]


class CallSession:
    """One active call. Created by :class:`~voxflow.telephony.app.VoxtraApp`, never directly."""

    def __init__(
        self,
        app: VoxtraApp,
        channel: Channel,
        direction: CallDirection,
        *,
        metadata: Mapping[str, Any] | None = None,
        called_number: str | None = None,
        rest: AriRestClient | None = None,
        ari_app: str | None = None,
    ) -> None:
        self._app = app
        # The REST client and ARI app name this call is driven through: the app's own, or
        # those of the websocket Asterisk opened for this call (outbound ARI websockets).
        self.rest: AriRestClient = rest if rest is not None else app.rest
        self.ari_app: str = ari_app if ari_app is not None else app.app_name
        self.id: str = channel.id
        self.channel = channel
        self.direction = direction
        self.caller_id: str = channel.caller.number
        self.called_number: str = (
            called_number
            if called_number is not None
            else (channel.dialplan.exten if channel.dialplan else "")
        )
        self.metadata = CallMetadata(metadata or {})
        self.state = CallState.RINGING
        self.hangup_cause: int | None = None
        self.failure_reason: str | None = None
        self._dialstatus: str | None = None
        self._originate_late = False  # its originate timed out: only its events tell
        self._answered_at: float | None = None
        self._ended_at: float | None = None
        self._answered = asyncio.Event()
        self._ended = asyncio.Event()
        self._closed = asyncio.Event()
        self._stasis_started = asyncio.Event()
        self._in_stasis = direction is CallDirection.INBOUND
        self._left_stasis = False
        self._hangup_requested = False
        self._finalized = False
        self._hangup_task: asyncio.Task[None] | None = None
        self._dtmf = DtmfInbox(self.id, self._ended.is_set)  # no cycle through self
        self._playbacks: dict[str, asyncio.Future[str]] = {}
        self._recording: ActiveRecording | None = None
        self._finishing: dict[str, ActiveRecording] = {}
        self._bridge_id: str | None = None
        self._shared_bridge: str | None = None
        self._bridge_owner = False
        self._bridge_peer: CallSession | None = None
        self._voice: CallVoice | None = None
        self._voice_lock = asyncio.Lock()
        self._agent: CallAgent | None = None
        self._trip: DialplanTrip | None = None
        self.queue_prio_before: str | None = None
        """The ``QUEUE_PRIO`` the channel had before a queue step's ``priority`` first set it
        ("": unset); None: voxflow has not set it (a step without ``priority`` leaves it).
        Kept in the call's checkpoint (cluster mode): a worker taking the call over sets it
        back too."""
        self.on_queue_prio: Callable[[], None] | None = None
        """Called once :attr:`queue_prio_before` was read (the checkpointer writes it)."""
        self.returned: tuple[str, ...] = ()
        """The Stasis arguments (a return tag first) of a call the shipped dialplan sent back
        while no session waited for it: its worker died during the trip (cluster mode,
        ``VoxtraApp.adopt_returns``); () otherwise."""
        self._stopped_on_leaving: RecordingMetadata | None = None
        self._callbacks: list[HangupCallback] = []
        if channel.state == "Up":
            self._set_answered()

    def __repr__(self) -> str:
        return (
            f"<CallSession {self.id} {self.direction.value} {self.state.value} "
            f"from={self.caller_id!r} to={self.called_number!r}>"
        )

    # ------------------------------------------------------------------ identity & state

    @property
    def duration(self) -> float:
        """Seconds since the call was answered (0 before), frozen when it ends."""
        if self._answered_at is None:
            return 0.0
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        return max(0.0, end - self._answered_at)

    @property
    def ended(self) -> bool:
        """True once the call has ended (COMPLETED or FAILED)."""
        return self._ended.is_set()

    @property
    def bridge_id(self) -> str | None:
        """The bridge the channel is in, if any."""
        return self._bridge_id

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Wait until the call ends."""
        await asyncio.wait_for(self._ended.wait(), timeout)

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until the call ended and its cleanup (sinks, callbacks, registry) completed."""
        await asyncio.wait_for(self._closed.wait(), timeout)

    async def wait_answered(self, timeout: float | None = None) -> None:
        """Wait until the call is answered; raise ``CallEndedError`` if it ends first."""
        if self._answered.is_set() and not self.ended:
            return
        if self.ended:
            raise CallEndedError(f"call {self.id} has ended ({self.state.value})")
        answered = asyncio.ensure_future(self._answered.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait(
                {answered, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            answered.cancel()
            ended.cancel()
        if self.ended:
            raise CallEndedError(f"call {self.id} ended before it was answered")
        if not self._answered.is_set():
            raise TimeoutError(f"call {self.id} was not answered in time")

    def on_hangup(self, callback: HangupCallback) -> HangupCallback:
        """Decorator: run ``callback()`` (sync or async) once when the call ends."""
        if self._finalized:
            self._app._spawn(self._run_callbacks([callback]), f"on-hangup-late-{self.id}")
        else:
            self._callbacks.append(callback)
        return callback

    # ------------------------------------------------------------------ lifecycle verbs

    async def answer(self) -> None:
        """Answer the call (no-op if already answered; a gone channel counts as success).

        An answer that timed out goes again with twice the deadline (up to
        ``_ANSWER_DEADLINE_MAX``; one that times out at that deadline is raised), unless an event
        said the channel is Up meanwhile: an overloaded Asterisk answers after the client's
        deadline, and Asterisk answers an Up channel with 204 and does nothing (``ast_raw_answer``
        on ``AST_STATE_UP``), so the repeat cannot act twice."""
        deadline: float | None = None  # the client's own, until an answer times out
        while not (self._answered.is_set() or self.ended):
            try:
                await self.rest.answer(self.id, timeout=deadline)
            except AriNotFound:
                self._gone()
                return
            except AriTimeoutError as exc:
                if deadline is not None and deadline >= _ANSWER_DEADLINE_MAX:
                    raise
                deadline = min(_ANSWER_DEADLINE_MAX, (deadline or self.rest.timeout) * 2)
                log.warning(
                    "answer of %s: %s; sending it again (%gs deadline)", self.id, exc, deadline
                )
                continue
            self._set_answered()
        if self.ended:
            log.debug("answer on ended call %s ignored", self.id)

    async def hangup(self, reason: str = "normal") -> None:
        """Hang up (idempotent; concurrent calls share one request)."""
        if self.ended:
            return
        if self._hangup_task is None:
            self._hangup_task = asyncio.ensure_future(self._do_hangup(reason))
        await asyncio.shield(self._hangup_task)

    async def _do_hangup(self, reason: str) -> None:
        """DELETE the channel until Asterisk confirms it is gone (StasisEnd/ChannelDestroyed, or
        a 404); 5xx answers, timeouts and lost connections are retried with capped backoff, and
        the session stays registered meanwhile. A DELETE that timed out is sent again with twice
        the deadline (up to ``_HANGUP_DEADLINE_MAX``): an Asterisk answering later than the
        client's deadline is still heard (its 404 ends the call). Other 4xx answers are raised.
        After ``_HANGUP_ROUNDS`` accepted DELETEs with the channel still there the call ends anyway
        (one warning): the channel is Asterisk's to clear."""
        app = self._app
        delay = app.retry_initial
        accepted = 0
        if self._voice is not None and ":" in self.ari_app and app.links is not None:
            # a per-call link closes once the channel left Stasis: its media channel and bridge
            # (in the call's own app; nothing else can remove them) go first, while it is open
            try:
                await self._voice.aclose()
            except Exception:
                log.exception("closing the media path of %s failed", self.id)
        deadline: float | None = None  # the client's own, until a DELETE times out
        while not self.ended:
            try:
                await self.rest.hangup(self.id, reason=reason, timeout=deadline)
            except AriNotFound:
                self._gone()
                return
            except AriError as exc:
                if not is_transient(exc):
                    self._hangup_task = None
                    raise
                if isinstance(exc, AriTimeoutError):
                    deadline = min(_HANGUP_DEADLINE_MAX, (deadline or self.rest.timeout) * 2)
                log.warning("hangup of %s failed (%s); retrying in %.2fs", self.id, exc, delay)
                await self._wait_ended(delay)
                delay = min(app.retry_max, delay * 2)
                continue
            if await self._wait_ended(app.event_wait) or await self._confirm_gone():
                return
            accepted += 1
            if accepted >= _HANGUP_ROUNDS:
                log.warning(
                    "channel %s still exists after %d accepted hang-ups (no StasisEnd, no 404): "
                    "the call ends here; the channel is left to Asterisk",
                    self.id, accepted,
                )  # fmt: skip
                self._mark_ended()
                return

    async def _wait_ended(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the end of the call; True if it ended."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), seconds)
        return self.ended

    async def _confirm_gone(self) -> bool:
        """No end event after an accepted hang-up (events socket down?): ask Asterisk. True (and
        the session ends) only on a 404."""
        try:
            await self.rest.get_channel(self.id)
        except AriNotFound:
            log.debug("no StasisEnd for %s after hangup; the channel is gone", self.id)
            self._gone()
            return True
        except AriError as exc:
            log.debug("checking channel %s after hangup: %s", self.id, exc)
        return self.ended

    async def hold(self, moh_class: str | None = None) -> None:
        """Put the far end on hold: it hears music on hold (waits for the answer; a call that
        has already ended counts as success, like a 404)."""
        if self.ended:
            return
        await self.wait_answered()
        try:
            await self.rest.start_moh(self.id, moh_class)
        except AriNotFound:
            self._gone()
            return
        if not self.ended:
            self.state = CallState.ON_HOLD

    async def unhold(self) -> None:
        """Take the far end off hold."""
        if self.ended:
            return
        try:
            await self.rest.stop_moh(self.id)
        except AriNotFound:
            self._gone()
            return
        if self.state is CallState.ON_HOLD:
            self.state = CallState.IN_PROGRESS

    async def transfer_to(self, number: str) -> bool:
        """Blind transfer. ``TECH/resource`` of the channel's own SIP technology is redirected;
        any other ``TECH/resource`` is dialled by the app's ``transfer_context`` (extension
        ``endpoint``), a number continues there at extension ``number``. Returns once the call
        left (redirected, or the dialplan's ``Dial()`` answered); raises
        ``TransferFailedError`` when the dialplan sent it back (no route: ``INVALID``; the
        ``Dial()`` failed: its ``DIALSTATUS``), the call is then still ours. True: it left;
        False: it left and nothing says how (per-call websockets: not back in time, no event:
        answered, or the caller hung up while it rang)."""
        self._check_live()
        return await transfer(self, number)

    async def set_call_data(self, data: Sequence[tuple[str, str]]) -> None:
        """Set ``VOXFLOW_META_<KEY>`` channel variables (``key`` upper-cased): the next flow
        reads them as ``call.metadata.<key>`` (see :func:`dialplan_metadata`)."""
        self._check_live()
        await set_call_data(self, data)

    async def transfer_to_queue(
        self,
        name: str,
        *,
        timeout: float | None = None,
        music: str | None = None,
        priority: int | None = None,
        exit_keys: str = "",
        position: int | None = None,
    ) -> QueueReturn | None:
        """Put the call in queue ``name`` (``queue_context`` runs ``Queue()`` with the ``c``
        option, ``timeout`` seconds, music class ``music``, ``QUEUE_PRIO=priority``) and wait
        until ``Queue()`` returns it: its ``status`` is the ``QUEUESTATUS`` (``CONTINUE`` after
        an agent talked to the caller and hung up, ``TIMEOUT``, ``FULL``, ``JOINEMPTY``...) or
        ``EXITWITHKEY`` (the caller left with ``key``: the queue's queues.conf ``context`` is
        ``[voxflow-queue-exit]``). ``exit_keys`` is not sent: which digits leave is the queue's
        context, on Asterisk as in the sandbox. None: the call left and nothing says what became
        of it (per-call outbound websockets: not back in time; an agent may have it, or the
        caller hung up). ``position``: join at that place (``Queue()``'s position argument; the
        caller's QUEUEPOSITION when it is queued again), else at the back. Raises
        ``CallEndedError`` when the caller hangs up meanwhile. Without ``priority``, QUEUE_PRIO
        goes back to what it was before voxflow first set it (:attr:`queue_prio_before`)."""
        variables = queue_variables(
            name, timeout=timeout, music=music, priority=priority, position=position
        )
        self._check_live()
        if priority is not None and self.queue_prio_before is None:
            self.queue_prio_before = await queue_prio_before(self)  # the dialplan's, or ""
            if self.on_queue_prio is not None:
                self.on_queue_prio()
        elif priority is None and self.queue_prio_before is not None:
            variables["QUEUE_PRIO"] = self.queue_prio_before  # not an earlier step's
        return await queue(self, variables)

    async def _stop_media_before_leaving(self) -> None:
        """See :func:`voxflow.telephony.dialplan.stop_media_before_leaving`."""
        await stop_media_before_leaving(self)

    async def _left_stasis_wait(self) -> None:
        self._left_stasis = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), self._app.event_wait)
        if not self.ended:
            self._mark_ended()

    async def originate(
        self, endpoint: str, *, caller_id: str | None = None, timeout: int = 30
    ) -> CallSession:
        """A new outbound call from this call's app (a flow's ``dial``); see
        :meth:`VoxtraApp.originate <voxflow.telephony.app.VoxtraApp.originate>`. The leg belongs
        to this call (and is dialled over its websocket with Asterisk's outbound websockets)."""
        return await self._app.originate(endpoint, caller_id=caller_id, timeout=timeout, owner=self)

    async def bridge_with(self, other: CallSession) -> str:
        """Put both calls in one mixing bridge; it is torn down when either leaves. Returns the
        bridge id."""
        return await bridge_calls(self, other)

    async def _destroy_bridge(self, bridge_id: str) -> None:
        await destroy_bridge(self, bridge_id)

    # ------------------------------------------------------------------ audio & DTMF

    async def play_file(
        self, name: str, *, barge_in: BargeIn | None = None, lang: str | None = None
    ) -> PromptResult:
        """Play a sound (``hello-world`` or any media URI) and wait until it finishes. Speech
        barge-in applies only on an app that hears speech (a voice factory, STT or VAD): only
        then does the play set up the call's media path."""
        return await play(self, name, barge_in=barge_in, lang=lang)

    async def listen_dtmf(self, timeout: float = 5.0) -> str | None:
        """The next DTMF digit (type-ahead included), or None after ``timeout`` seconds. Raises
        ``CallEndedError`` when the call has ended and no digit is left."""
        return await self._dtmf.listen(timeout)

    async def send_dtmf(
        self, digits: str, *, duration_ms: int = 100, between_ms: int = 100
    ) -> None:
        """Send DTMF digits (0-9, A-D, #, *; ',' pauses) to the far end."""
        if not _DTMF_CHARS.match(digits):
            raise ValueError(f"invalid DTMF digits {digits!r}")
        await self.wait_answered()
        try:
            await self.rest.send_dtmf(self.id, digits, duration=duration_ms, between=between_ms)
        except AriNotFound:
            self._gone()
            raise CallEndedError(f"call {self.id} has ended") from None

    def add_dtmf_listener(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(digit)`` synchronously, in the event dispatch, for every DTMF digit
        the caller presses, and ``callback("")`` once when the call ends (no task, no queue hop:
        for interpreters that react to keys at once). Digits still reach ``listen_dtmf`` too.
        Returns a function that removes the listener."""
        return self._dtmf.add_listener(callback)

    # ------------------------------------------------------------------ recording

    async def record_start(
        self,
        name: str | None = None,
        sink: RecordingSink | None = None,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        beep: bool = False,
        max_silence: int | None = None,
    ) -> str:
        """Start recording (the bridge mix when bridged, so both sides are captured). Returns the
        recording name (auto-generated and safe when not given). ``max_silence`` (seconds) lets
        Asterisk end the recording after that much silence, for channel and bridge recordings."""
        name = safe_recording_name(name) if name else auto_recording_name(self.id)
        await self.wait_answered()
        if self._recording is not None:
            raise RecordingError(f"call {self.id} is already recording {self._recording.name!r}")
        bridge = self._bridge_id
        target = f"bridge:{bridge}" if bridge else f"channel:{self.id}"
        rec = ActiveRecording(name, format, sink, target)
        self._recording = rec
        self._app.dispatcher.own_recording(name, self.id)
        try:
            await rec.start(
                self.rest, max_duration=max_duration, max_silence=max_silence, beep=beep
            )
        except AriHTTPError as exc:
            self._recording = None
            if isinstance(exc, AriNotFound) and not bridge:
                self._gone()
                raise CallEndedError(f"call {self.id} has ended") from None
            why = f"could not start recording {name!r}: {exc.message}"
            if isinstance(exc, AriConflict):
                raise RecordingNameTakenError(why) from exc
            raise RecordingError(why) from exc
        return name

    async def wait_recording(self) -> None:
        """Wait until the current recording ends by itself (silence, max duration, a key, the
        call ending); returns at once when nothing is recording. ``record_stop`` then collects
        it without another ARI stop."""
        rec = self._recording
        if rec is not None:
            await rec.done.wait()

    async def transcribe(self, recording: RecordingMetadata) -> str:
        """The app's speech-to-text's text of a finished recording (fetched over ARI); raises
        AiNotConfiguredError without an STT, RecordingError for a recording it cannot read."""
        if self._app.stt is None:
            raise AiNotConfiguredError
        return await transcribe_recording(recording, self._app.stt)

    async def record_stop(self) -> RecordingMetadata:
        """Stop the recording and hand it to the sink (per-call, else the app's) exactly once."""
        rec = self._recording
        if rec is None and self._stopped_on_leaving is not None:
            meta, self._stopped_on_leaving = self._stopped_on_leaving, None
            return meta  # stopped when the call left for the dialplan, and it came back
        if rec is None:
            raise RecordingError(f"call {self.id} is not recording")
        self._recording = None
        self._finishing[rec.name] = rec
        try:
            return await self._finish_recording(rec, wait=self._app.event_wait)
        finally:
            self._finishing.pop(rec.name, None)

    async def _finish_recording(self, rec: ActiveRecording, *, wait: float) -> RecordingMetadata:
        return await rec.finish(self.rest, self.id, self._app.recording_sink, wait=wait)

    # ------------------------------------------------------------------ voice & AI

    def _hears_speech(self) -> bool:
        """True when the caller's speech can stop a prompt: the media path is up, or the app
        has a voice factory, an STT or a VAD. With none (``voxflow run --no-audio``), a
        ``play`` sets up no media path: keys and ``sound:`` playbacks need none."""
        app = self._app
        if self._voice is not None or app.voice_factory is not None:
            return True
        return app.stt is not None or app.vad is not None

    @property
    def providers(self) -> AiProviders:
        """The app's LLM, STT and TTS for this call (each None when not configured)."""
        return AiProviders(llm=self._app.llm, stt=self._app.stt, tts=self._app.tts)

    async def call_voice(self) -> CallVoice:
        """The call's media path (externalMedia + RTP), started on first use. Raises
        ``RuntimeError`` when none is configured, ``CallEndedError`` once the call ended."""
        if self._voice is not None:
            return self._voice
        async with self._voice_lock:
            if self._voice is None:
                factory = self._app._voice_factory()
                if factory is None:
                    raise AiNotConfiguredError
                if self.ended:
                    raise CallEndedError(f"call {self.id} has ended")
                ctx = VoiceContext(
                    rest=self.rest,
                    channel_id=self.id,
                    app_name=self.ari_app,
                    tts=self._app.tts,
                    stt=self._app.stt,
                    vad=self._app.vad,
                    current_bridge_id=weak_get(self, "_bridge_id"),  # no cycle through the media
                    options=dict(self._app.media_options),
                    prompt_cache=self._app.prompt_cache,
                    expect_stasis_start=self._app.expect_stasis_start,
                    request_timeout=self.rest.timeout,
                )
                self._voice = factory(ctx)
            return self._voice

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        """Speak ``text`` with the configured TTS."""
        if self._app.tts is None:
            raise AiNotConfiguredError
        await self.wait_answered()
        call_voice = await self.call_voice()
        return await call_voice.say(text, voice=voice, barge_in=barge_in)

    async def listen(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] | None = None,
        end_silence_ms: int = 800,
        max_speech_s: float = 15.0,
        min_confidence: float | None = None,
    ) -> str | None:
        """Transcribe the caller's next utterance (None when nothing was said in time; the
        options as :meth:`voxflow.voice.call.CallVoice.listen`)."""
        heard = await self.recognize(
            timeout,
            phrases=phrases,
            end_silence_ms=end_silence_ms,
            max_speech_s=max_speech_s,
            min_confidence=min_confidence,
        )
        return None if heard is None else heard.text

    async def recognize(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] | None = None,
        end_silence_ms: int = 800,
        max_speech_s: float = 15.0,
        min_confidence: float | None = None,
    ) -> Transcript | None:
        """As ``listen``, the whole transcript (``confidence``, n-best ``alternatives``;
        ``min_confidence`` sets this recognition's threshold)."""
        if self._app.stt is None:
            raise AiNotConfiguredError
        await self.wait_answered()
        call_voice = await self.call_voice()
        return await call_voice.recognize(
            timeout,
            phrases=phrases,
            end_silence_ms=end_silence_ms,
            max_speech_s=max_speech_s,
            min_confidence=min_confidence,
        )

    async def audio_stream(self) -> AsyncIterator[AudioChunk]:
        """The caller's audio as ~20 ms chunks."""
        await self.wait_answered()
        call_voice = await self.call_voice()
        async for chunk in call_voice.audio_stream():
            yield chunk

    async def send_audio(self, data: AudioChunk | bytes) -> None:
        """Send audio to the caller (paced by the media path)."""
        await self.wait_answered()
        call_voice = await self.call_voice()
        await call_voice.send_audio(data)

    @property
    def agent(self) -> CallAgent:
        """The per-call conversational agent (needs an LLM on the app): what the app's agent
        factory built, by default :class:`~voxflow.agent.call_agent.CallAgent`."""
        if self._app.llm is None:
            raise AiNotConfiguredError
        if self._agent is None:
            self._agent = self._app._make_agent(self)
        return self._agent

    # ------------------------------------------------------------------ events

    def _on_event(self, event: AriEvent) -> None:
        """One ARI event of this call (fed by the app's dispatcher): its handler in
        :data:`~voxflow.telephony.session_events.HANDLERS`."""
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _unshare_bridge(self) -> None:
        bridge, peer = self._shared_bridge, self._bridge_peer
        if bridge is None:
            return
        owner = self._bridge_owner
        self._shared_bridge, self._bridge_peer, self._bridge_owner = None, None, False
        if peer is not None and peer._shared_bridge == bridge:
            peer._shared_bridge, peer._bridge_peer, peer._bridge_owner = None, None, False
        rest = self.rest

        backoff = Backoff(self._app.retry_initial, self._app.retry_max)

        async def teardown() -> None:
            if owner:
                await retry_until_done(
                    lambda: rest.destroy_bridge(bridge), f"destroy bridge {bridge}", backoff=backoff
                )
            elif peer is not None and not peer.ended:
                await retry_until_done(
                    lambda: rest.remove_channel(bridge, peer.id),
                    f"remove {peer.id} from bridge {bridge}",
                    backoff=backoff,
                )

        self._app._spawn(teardown(), f"bridge-teardown-{bridge}")

    # ------------------------------------------------------------------ ending

    def _check_live(self) -> None:
        if self.ended:
            raise CallEndedError(f"call {self.id} has ended ({self.state.value})")

    def _set_answered(self) -> None:
        if self._answered.is_set() or self.ended:
            return
        self._answered_at = time.monotonic()
        self.state = CallState.IN_PROGRESS
        self._answered.set()

    def _gone(self) -> None:
        """The channel no longer exists (404, or absent after a resync)."""
        self._mark_ended()

    def _mark_ended(self) -> None:
        if self._trip is not None:
            self._trip.resolve(TripResult("ended"))
        if self.ended:
            return
        self._ended_at = time.monotonic()
        if self.direction is CallDirection.OUTBOUND and not self._answered.is_set():
            self.state = CallState.FAILED
            self.failure_reason = failure_reason(self._dialstatus, self.hangup_cause)
        else:
            self.state = CallState.COMPLETED
        self._ended.set()
        self._app._session_ended(self)
        for fut in self._playbacks.values():
            if not fut.done():
                fut.set_result(_ENDED)
        self._dtmf.wake(_ENDED)
        if not self._finalized:
            self._finalized = True
            self._app._spawn(self._cleanup(), f"call-cleanup-{self.id}")

    async def _cleanup(self) -> None:
        """The call's objects on Asterisk go first and at once (a per-call websocket closes 3 s
        after the StasisEnd, and in that mode nothing else reaches Asterisk): the bridge, the
        media channels and bridge, the recording's stop; then the recording's sink and the
        ``on_hangup`` callbacks, which may take their time."""
        try:
            self._unshare_bridge()
            await asyncio.gather(self._close_voice(), self._end_recording())
            callbacks, self._callbacks = self._callbacks, []
            await self._run_callbacks(callbacks)
        finally:
            self._app._session_closed(self)
            self._closed.set()

    async def _close_voice(self) -> None:
        if self._voice is not None:
            try:
                await self._voice.aclose()
            except Exception:
                log.exception("closing the media path of %s failed", self.id)

    async def _end_recording(self) -> None:
        rec, self._recording = self._recording, None
        if rec is not None:
            self._finishing[rec.name] = rec
            try:
                await self._finish_recording(rec, wait=self._app.recording_wait)
            except RecordingError as exc:
                log.error("call %s: %s", self.id, exc)

    async def _run_callbacks(self, callbacks: list[HangupCallback]) -> None:
        for callback in callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_hangup callback of call %s raised", self.id)

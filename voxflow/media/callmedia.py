"""Per-call media over ARI externalMedia: :class:`CallMedia` implements ``CallVoice``.

On first use it binds a UDP socket, creates the externalMedia channel with ``external_host`` set to
that socket (``POST /channels/externalMedia``), reads Asterisk's side from the response
``channelvars`` (``UNICASTRTP_LOCAL_ADDRESS``/``PORT``) and sends from the very same socket. The
externalMedia channel joins the caller in a new mixing bridge; when the call is already bridged (to
a human), a ``spy=in`` snoop of the caller goes into the media bridge instead and the media path
is listen-only.

Inbound (:mod:`voxflow.media.inbound`): socket -> RTP parse (malformed counted) -> jitter buffer
-> fan-out to every ``audio_stream()`` consumer, and, while someone waits for speech, VAD frame
decisions to the listeners (``listen`` endpointing, barge-in, ``wait_for_speech``). Outbound:
TTS / ``send_audio`` -> wire codec -> :class:`OutboundStream` paced by the shared :class:`Pacer`.
Barge-in flushes the outbound queue synchronously in the packet or DTMF callback, so audio stops
at the next tick.

Options (``VoiceContext.options``): ``format`` (``ulaw`` default, ``alaw``, ``slin16``),
``rtp_host`` (bind and advertise, default 127.0.0.1), ``rtp_ports`` (``"40000-40999"`` or a
:class:`PortRange`), ``jitter_depth`` (frames, default 3), ``conceal_loss`` (repeat-and-fade
lost frames rather than silence, default True, see :mod:`voxflow.media.jitter`),
``vad_aggressiveness`` (0-3, default 2), ``listen_min_speech_ms`` (default 100),
``listen_complete_silence_ms`` (default 300: the end-silence window once the STT stream reports
its partial result ``complete``, a whole expected phrase; see :mod:`voxflow.media.vad`),
``listen_final_silence_ms`` (the window once it reports ``final``, a whole phrase that no
other expected phrase extends; default 300, the complete-phrase window: 200 decides ~100 ms sooner
but rejected more right answers at 20 dB SNR in ``bench/speech.py``, see docs/speech.md),
``listen_settled_silence_ms`` (the silence the VAD must also report once the stream reports
``settled``, a final phrase after which its own searches heard the caller stop; default 60; 0:
the utterance ends at once, -1: never, only the VAD's windows; see
:mod:`voxflow.media.endpointing`), ``listen_quiet_silence_ms`` (the window for anything else,
part of a phrase or none, once the stream reports ``quiet``, its phone loop heard no speech for
400 ms; default 600, a caller's pause mid-sentence of up to ~500 ms is still heard whole; -1:
the ``listen`` call's ``end_silence_ms``),
``barge_in_vad_aggressiveness`` (0-3, default 3: barge-in and ``wait_for_speech`` decide on a
stricter VAD than ``listen``, because their minimum speech is short, see ``BargeIn``),
``stasis_wait`` (seconds, default 5: how long set-up waits for the new externalMedia/snoop
channel's StasisStart before failing with ``MediaError``), ``rtp_advertise`` (the address
Asterisk is told to send RTP to, when it is not ``rtp_host``).

Silence without packets: phones with silence suppression/DTX, trunks, Local channels and a
two-channel Asterisk bridge send no RTP while nobody talks (capture rtp-silence.json). From
100 ms after the last packet, while someone listens, the elapsed wall-clock time is fed to the
listeners as silence (``gap_frames`` counts it), so ``listen`` ends an utterance after
``end_silence_ms`` and barge-in decides as if silence had been sent.

Set-up order: Asterisk answers ``POST /channels/externalMedia`` (and ``/snoop``) before the new
channel is in Stasis and refuses ``addChannel`` with 422 until it is (capture
external-media-ordering.json), so the channel joins the bridge only after its StasisStart. A set-up
request answered after the deadline goes again (:mod:`voxflow.ari.late`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import replace
from typing import Any

from voxflow import observe
from voxflow.ari.cleanup import Backoff, delete_until_gone
from voxflow.ari.late import ForeignObject, LateRequests
from voxflow.eager import start_eagerly
from voxflow.errors import (
    AiNotConfiguredError,
    AriHTTPError,
    CallEndedError,
    ConfigError,
    MediaError,
)
from voxflow.media.codecs import Resampler, codec_spec, decode, encode
from voxflow.media.endpointing import CompletesPhrase, EndsPhrase, follow
from voxflow.media.inbound import CallInbound
from voxflow.media.interpolate import Interpolator, stt_resampler, vad_resampler
from voxflow.media.jitter import JitterBuffer
from voxflow.media.pacer import OutboundStream, Pacer, shared_pacer
from voxflow.media.prompt_warm import prompt_frames, wire_codec
from voxflow.media.rtp_report import RtpReport
from voxflow.media.transport import PortRange, RtpSocket
from voxflow.media.vad import SpeechDetector, WebRtcVad
from voxflow.media.watcher import SpeechWatcher
from voxflow.voice.call import BargeIn, CallVoice, PromptResult, VoiceContext
from voxflow.voice.chunk import AudioChunk
from voxflow.voice.providers import (
    SttStream,
    TextToSpeech,
    Transcript,
    VoiceActivityDetector,
    below_confidence,
)

__all__ = ["CallMedia", "CompletesPhrase", "EndsPhrase", "create_call_voice"]

_Watcher = SpeechWatcher  # the name bench/speech.py imports

log = logging.getLogger(__name__)

TEARDOWN_BACKOFF = Backoff(initial=0.1, cap=2.0, attempts=8)
"""Media teardown retries 5xx/timeouts for ~7 s; what is still left then is swept by name at the
next reconnect or start-up (``voxflow.telephony.orphans``)."""

_STREAM_QUEUE = 1500  # 30 s of 20 ms chunks per audio_stream() consumer
_SEND_BACKLOG = 250  # frames (5 s) queued before send_audio waits
_STASIS_WAIT_S = 5.0  # default bound on waiting for a new channel's StasisStart


def create_call_voice(ctx: VoiceContext) -> CallVoice:
    """The default voice factory used by ``VoxtraApp``: a :class:`CallMedia`."""
    return CallMedia(ctx)


def _port_range(value: Any) -> PortRange | None:
    if value is None or isinstance(value, PortRange):
        return value
    try:
        if isinstance(value, str):
            lo, hi = (int(v) for v in value.split("-", 1))
        else:
            lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"rtp_ports must look like '20000-20999', not {value!r}") from None
    return PortRange(lo, hi)


class _Prompt:
    """The prompt currently playing and how it may be interrupted."""

    def __init__(self, barge_in: BargeIn | None) -> None:
        self.barge_in = barge_in or BargeIn(mode="none")
        self.interrupted: asyncio.Future[tuple[str, str | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self.watcher: SpeechWatcher | None = None
        self.owner = asyncio.current_task()  # the task of the ``say`` that plays it
        self.play: asyncio.Future[None] | None = None

    def stopped(self) -> bool:
        """Its ``say`` was cancelled (the flow stopped the prompt's op) or ended, and has not
        yet run its clean-up: the prompt is over, its op will never answer."""
        owner = self.owner
        return owner is not None and (owner.done() or owner.cancelling() > 0)

    def end(self) -> None:
        """End it now, synchronously: no more of its audio is queued, no barge-in on it."""
        if self.play is not None:
            self.play.cancel()
        if not self.interrupted.done():
            self.interrupted.cancel()


class CallMedia(CallInbound):
    """``CallVoice`` over externalMedia + RTP for one call. See the module docstring."""

    def __init__(
        self,
        ctx: VoiceContext,
        *,
        pacer: Pacer | None = None,
        ports: PortRange | None = None,
    ) -> None:
        opts = ctx.options
        self.ctx = ctx
        self.codec = wire_codec(opts)
        self.spec = codec_spec(self.codec)
        self.host = str(opts.get("rtp_host", "127.0.0.1"))
        self.advertise = str(opts.get("rtp_advertise") or "")
        self.ports = ports or _port_range(opts.get("rtp_ports"))
        self.jitter_depth = int(opts.get("jitter_depth", 3))
        self._listen_options(opts)
        self._pacer = pacer
        self._vad: VoiceActivityDetector = self._make_vad(ctx.vad, opts)
        self._strict_vad: VoiceActivityDetector = self._vad
        if ctx.vad is None:  # a custom VAD decides alone
            self._strict_vad = WebRtcVad(
                self._vad.sample_rate,
                self._vad.frame_ms,
                int(opts.get("barge_in_vad_aggressiveness", 3)),
            )
        self._vad_frame = self._vad.sample_rate * self._vad.frame_ms // 1000 * 2
        # a slin16 call with an 8 kHz VAD: every frame at once (soxr held ~100 ms back)
        self._vad_resampler = vad_resampler(self.spec.sample_rate, self._vad.sample_rate)
        self._vad_buf = b""
        self._recent: deque[bytes] = deque(maxlen=10)  # last 200 ms, to prime the VADs
        self.socket: RtpSocket | None = None
        self.jitter = JitterBuffer(
            self.codec, depth=self.jitter_depth, conceal=bool(opts.get("conceal_loss", True))
        )
        self.rtp_report = RtpReport(self.jitter.stats)  # counters reported every second
        self.outbound = OutboundStream(self.codec)
        self.last_stt_final_ms: float | None = None  # end of speech -> final transcript
        self.last_endpoint_silence_ms: int | None = None  # the silence that ended the last one
        self.last_transcript: Transcript | None = None  # the last listen's, with confidence
        self.channel_id: str | None = None
        self.bridge_id: str | None = None
        self.snoop_id: str | None = None
        self.listen_only = False
        self.dropped_chunks = 0
        self.wrong_payload_type = 0
        self._consumers: list[asyncio.Queue[AudioChunk | None]] = []
        self._watchers: list[SpeechWatcher] = []
        self._prompt: _Prompt | None = None
        self._send_resamplers: dict[int, Resampler] = {}
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._closing = asyncio.Event()
        self._creating: list[asyncio.Task[Any]] = []  # set-up's POSTs: answered before DELETEs
        self._abandoned = False  # set-up failed or was cancelled: its POSTs go no more
        self._stall_timer: asyncio.TimerHandle | None = None
        self._last_rx = 0.0  # loop time of the last packet
        self._quiet_due = 0.0  # when the quiet timer was due
        self._lag_deferred = False  # the last quiet check was put off for a late loop
        self._gap_mark = 0.0  # silence fed to the listeners up to this loop time
        self.gap_frames = 0  # VAD frames of silence accounted for time without packets

    def _listen_options(self, opts: Any) -> None:
        """The ``listen_*`` options (the endpointer's windows; see the module docstring)."""
        self.listen_min_speech_ms = int(opts.get("listen_min_speech_ms", 100))
        self.listen_complete_silence_ms = int(opts.get("listen_complete_silence_ms", 300))
        self.listen_final_silence_ms = int(opts.get("listen_final_silence_ms", 300))
        settled = int(opts.get("listen_settled_silence_ms", 60))  # negative: VAD windows only
        self.listen_settled_silence_ms = settled if settled >= 0 else None
        quiet = int(opts.get("listen_quiet_silence_ms", 600))  # negative: the listen window
        self.listen_quiet_silence_ms = quiet if quiet >= 0 else None

    # ------------------------------------------------------------------ setup / teardown

    @staticmethod
    def _make_vad(vad: VoiceActivityDetector | None, opts: Any) -> VoiceActivityDetector:
        """This call's VAD. webrtcvad keeps state between frames (noise estimate, hangover), so
        a ``WebRtcVad`` given once for the app becomes a fresh one with its settings per call:
        shared, one caller's speech made the others' silence look voiced."""
        if isinstance(vad, WebRtcVad):
            return WebRtcVad(vad.sample_rate, vad.frame_ms, vad.aggressiveness)
        if vad is not None:
            return vad
        rate = codec_spec(str(opts.get("format", opts.get("codec", "ulaw")))).sample_rate
        return WebRtcVad(rate, 20, int(opts.get("vad_aggressiveness", 2)))

    @property
    def pacer(self) -> Pacer:
        if self._pacer is None:
            self._pacer = shared_pacer()
        return self._pacer

    async def start(self) -> None:
        """Bring the media path up (idempotent); called by every operation."""
        if self._started:
            return
        async with self._start_lock:
            if self._closed:
                raise CallEndedError(f"media of call {self.ctx.channel_id} is closed")
            if self._started:
                return
            try:
                await self._setup()
            except BaseException:
                await self._teardown()
                raise
            self._started = True
            self.rtp_report.start()
            observe.moment("media", self.ctx.channel_id)

    async def _setup(self) -> None:
        ctx = self.ctx
        self.socket = await RtpSocket.open(self.host, ports=self.ports, on_packet=self._on_packet)
        host, port = self.socket.local
        host = self.advertise or host  # behind NAT / bound to 0.0.0.0: what Asterisk can reach
        tag = uuid.uuid4().hex[:12]
        self.channel_id = f"vf-em-{tag}"
        self.bridge_id = f"vf-mb-{tag}"
        if ctx.current_bridge_id():
            self.listen_only = True
            self.snoop_id = f"vf-snoop-{tag}"
        created = [c for c in (self.channel_id, self.snoop_id) if c is not None]
        # Asterisk puts a new externalMedia/snoop channel into Stasis only after its REST answer
        # (0.3-30 ms later); a bridge refuses it until then (422), so wait for its StasisStart.
        expect = ctx.expect_stasis_start
        started = {c: expect(c) for c in created} if expect is not None else {}
        # The bridge is made while the channels are (one round trip less before the first
        # prompt); never left being made: a failed set-up's teardown waits for it, deletes it.
        self._abandoned = False
        bridge = self._create(self._create_bridge(), eager=False)  # sent after externalMedia's
        try:
            remote_host, remote_port = await self._create_channels(self.socket, host, port)
            await asyncio.shield(bridge)
            await self._wait_in_stasis(started)
            await self._add_to_bridge([self.channel_id, self.snoop_id or ctx.channel_id])
        finally:
            for fut in started.values():
                fut.cancel()
        sock = self.socket  # a ThreadPacer sends from its own thread
        send = sock.send_from_thread if self.pacer.threaded else sock.send
        self.pacer.register(self.outbound, send)
        log.debug(
            "media up for %s: %s:%s <-> %s:%s (%s)",
            ctx.channel_id, host, port, remote_host, remote_port, self.codec,
        )  # fmt: skip

    @property
    def _requests(self) -> LateRequests:
        """Set-up requests that go again when answered late (``voxflow.ari.late``)."""
        return LateRequests(
            self.ctx.rest, self.ctx.request_timeout, lambda: self._closed or self._abandoned
        )

    def _create(self, post: Coroutine[Any, Any, Any], *, eager: bool = True) -> asyncio.Task[Any]:
        """A set-up POST as a task of its own, which cancelling set-up does not cut (a request
        on its way may be served all the same): teardown waits for its answer first. ``eager``:
        sent now, else on the loop's next pass."""
        task = start_eagerly(post) if eager else asyncio.ensure_future(post)
        self._creating.append(task)
        return task

    async def _created(self) -> None:
        """Wait for set-up's POSTs still in flight (each bounded by one deadline: none goes
        again once set-up is abandoned). Asterisk serves requests of different connections in
        any order: a DELETE sent ahead of its POST found nothing (404) and the POST then made a
        bridge or channel nobody removed."""
        self._abandoned = True
        pending = [p for p in self._creating if not p.done()]
        if pending:
            await asyncio.wait(pending)
        for post in self._creating:
            if not post.cancelled():
                post.exception()  # retrieved: raised by set-up, or after its first error
        self._creating.clear()

    async def _create_bridge(self) -> None:
        """POST the mixing bridge; a bridge with its id that is not ours is left alone."""
        assert self.bridge_id is not None
        try:
            await self._requests.bridge(self.bridge_id, self.ctx.app_name)
        except ForeignObject:
            self.bridge_id = None  # not ours: the teardown must not delete it
            raise

    async def _create_channels(self, sock: RtpSocket, host: str, port: int) -> tuple[str, int]:
        """POST the externalMedia channel sending to ``host:port`` (``sock`` then sends to
        Asterisk's side, returned), and the caller's snoop when the media path is listen-only.
        A channel with one of their ids that is not ours is left alone."""
        ctx = self.ctx
        assert self.channel_id is not None
        external_host = f"{host}:{port}"
        params = {
            "app": ctx.app_name,
            "external_host": external_host,
            "format": self.codec,
            "channelId": self.channel_id,
        }
        answer = await asyncio.shield(self._create(self._create_em(params, external_host)))
        remote_host, remote_port = self._asterisk_side(answer)
        sock.set_remote(remote_host, remote_port)
        if self.snoop_id is not None:
            await asyncio.shield(self._create(self._create_snoop()))
        return remote_host, remote_port

    async def _create_em(self, params: dict[str, str], external_host: str) -> Any:
        """POST the externalMedia channel; one with its id that is not ours is left alone."""
        assert self.channel_id is not None
        try:
            return await self._requests.external_media(self.channel_id, params, external_host)
        except ForeignObject:
            self.channel_id = None
            raise

    async def _create_snoop(self) -> None:
        """POST the caller's snoop; one with its id that is not ours is left alone."""
        assert self.snoop_id is not None
        try:
            await self._requests.snoop(self.ctx.channel_id, self.snoop_id, self.ctx.app_name)
        except ForeignObject:
            self.snoop_id = None
            raise

    @staticmethod
    def _asterisk_side(answer: Any) -> tuple[str, int]:
        vars_ = (answer or {}).get("channelvars") or {}
        try:
            return str(vars_["UNICASTRTP_LOCAL_ADDRESS"]), int(vars_["UNICASTRTP_LOCAL_PORT"])
        except (KeyError, TypeError, ValueError):
            raise MediaError(
                "externalMedia answer has no UNICASTRTP_LOCAL_ADDRESS/PORT channelvars"
            ) from None

    @property
    def _stasis_wait(self) -> float:
        return float(self.ctx.options.get("stasis_wait", _STASIS_WAIT_S))

    async def _wait_in_stasis(self, started: dict[str, asyncio.Future[None]]) -> None:
        """Wait (bounded by the ``stasis_wait`` option) for each new channel's StasisStart;
        stop early when the media path is closed meanwhile."""
        if not started:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stasis_wait
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            pending: set[asyncio.Future[Any]] = set(started.values())
            while pending and not closing.done() and loop.time() < deadline:
                await asyncio.wait(
                    {*pending, closing},
                    timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                pending = {f for f in pending if not f.done()}
        finally:
            closing.cancel()
        if self._closed:
            raise CallEndedError(f"media of call {self.ctx.channel_id} closed during set-up")
        missing = [c for c, f in started.items() if not f.done()]
        if missing:
            raise MediaError(
                f"media set-up of call {self.ctx.channel_id}: {', '.join(missing)} did not enter"
                f" the Stasis app {self.ctx.app_name!r} within {self._stasis_wait:g} s"
            )

    async def _add_to_bridge(self, members: list[str]) -> None:
        """addChannel (one answered late is looked for in the bridge, then sent again); without
        StasisStart events (no ``expect_stasis_start``), a 422 "not in Stasis" is retried until
        ``stasis_wait`` has passed."""
        assert self.bridge_id is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._stasis_wait
        delay = 0.005
        while True:
            try:
                await self._requests.add_channels(self.bridge_id, members)
                return
            except AriHTTPError as exc:
                retry = self.ctx.expect_stasis_start is None and exc.status == 422
                if not retry or loop.time() + delay > give_up or self._closed:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def aclose(self) -> None:
        """Tear down channel, bridge/snoop, socket and port; wake every waiter (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        async with self._start_lock:
            await self._teardown()

    async def _teardown(self) -> None:
        self.rtp_report.close()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        self.outbound.flush()
        if self._pacer is not None:
            self._pacer.unregister(self.outbound)
        if self._prompt is not None and not self._prompt.interrupted.done():
            self._prompt.interrupted.cancel()
        for w in self._watchers:
            w.close()
        self._watchers.clear()
        for q in self._consumers:
            q.put_nowait(None)
        try:
            await self._created()
            await self._delete_remote()
        finally:  # also when a teardown still retrying is cancelled (the app closing)
            if self.socket is not None:
                self.socket.close()
        if self.socket is not None:
            await self.socket.aclose()

    async def _delete_remote(self) -> None:
        """DELETE the media channel, snoop and bridge, all at once (5xx/timeouts retried with
        backoff, a timed-out one with twice the deadline); what a closed per-call websocket kept
        from being sent is named in one warning."""
        rest = self.ctx.rest
        paths = [f"/channels/{c}" for c in (self.channel_id, self.snoop_id) if c is not None] + (
            [f"/bridges/{self.bridge_id}"] if self.bridge_id else []
        )
        left: list[str] = []

        async def delete(path: str) -> None:
            try:  # a 404 means it went with the call
                await delete_until_gone(
                    rest, path, backoff=TEARDOWN_BACKOFF, left=left, base=self.ctx.request_timeout
                )
            except Exception:
                log.warning("media teardown DELETE %s failed", path, exc_info=True)

        await asyncio.gather(*(delete(p) for p in paths))
        if left:
            log.warning(
                "media of call %s: %s left on Asterisk: the call's per-call websocket (app %r) "
                "closed before their DELETE could be sent",
                self.ctx.channel_id,
                ", ".join(p.rsplit("/", 1)[1] for p in sorted(left)),
                self.ctx.app_name,
            )
        self.channel_id = self.snoop_id = self.bridge_id = None

    async def audio_stream(self) -> AsyncIterator[AudioChunk]:
        """The caller's audio in wire-codec chunks of ~20 ms; every consumer gets every chunk.
        Ends when the media path closes."""
        await self.start()
        q: asyncio.Queue[AudioChunk | None] = asyncio.Queue(_STREAM_QUEUE)
        self._consumers.append(q)
        try:
            while True:
                chunk = await q.get()
                if chunk is None:
                    return
                yield chunk
        finally:
            with contextlib.suppress(ValueError):
                self._consumers.remove(q)

    async def wait_for_speech(self, min_speech_ms: int = 200) -> None:
        """Return when the caller has spoken for ``min_speech_ms`` (on the strict barge-in VAD)."""
        await self.start()
        det = SpeechDetector(frame_ms=self._vad.frame_ms, min_speech_ms=min_speech_ms)
        w = self._watch(SpeechWatcher(det, strict=True))
        try:
            await w.started
        finally:
            self._unwatch(w)

    async def listen(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] | None = None,
        end_silence_ms: int = 800,
        max_speech_s: float = 15.0,
        min_confidence: float | None = None,
    ) -> str | None:
        """The caller's next utterance as text (VAD endpointing + STT); None on no input, ""
        when the caller spoke but the STT recognised nothing it is confident of."""
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
        """As :meth:`listen`, with the STT's confidence and n-best alternatives: None on no
        input; ``text`` "" when rejected (under ``min_confidence``, None: the STT's own)."""
        stt = self.ctx.stt
        if stt is None:
            raise AiNotConfiguredError
        await self.start()
        det = SpeechDetector(
            frame_ms=self._vad.frame_ms,
            min_speech_ms=self.listen_min_speech_ms,
            end_silence_ms=end_silence_ms,
            complete_silence_ms=self.listen_complete_silence_ms,
            final_silence_ms=self.listen_final_silence_ms,
            settled_silence_ms=self.listen_settled_silence_ms,
            quiet_silence_ms=self.listen_quiet_silence_ms,
        )
        w = self._watch(SpeechWatcher(det, collect=True))
        try:
            try:
                await asyncio.wait_for(asyncio.shield(w.started), timeout)
            except TimeoutError:
                return None
            stream = await stt.open_stream(phrases=phrases, min_confidence=min_confidence)
            try:
                resampler = stt_resampler(self._vad.sample_rate, stt.sample_rate)
                loop = asyncio.get_running_loop()
                frame = await self._feed_utterance(w, det, stream, resampler, max_speech_s)
                if self._closed:
                    raise CallEndedError(f"call {self.ctx.channel_id} ended while listening")
                ended = loop.time()
                silence = det.silence_ms if frame is None else 0  # the endpointer's wait
                self.last_endpoint_silence_ms = silence if frame is None else None
                await stream.feed(resampler.process(b"", last=True))
                result = await stream.finish()
                self.last_stt_final_ms = (loop.time() - ended) * 1000
            finally:
                await stream.aclose()
        finally:
            self._unwatch(w)
        # The caller spoke: "" (not None) when nothing was recognised, so a flow hears nomatch.
        result = below_confidence(result, min_confidence)
        latency = self.last_stt_final_ms + silence if self.last_stt_final_ms is not None else None
        endpoint = det.ended_by if frame is None else "max_speech"
        result = replace(
            result,
            text=result.text.strip(),
            latency_ms=latency,
            endpoint=endpoint,
            silence_ms=silence if frame is None else None,
            behind_ms=w.unread_at_end * det.frame_ms if frame is None else None,
        )
        self.last_transcript = result
        return result

    @staticmethod
    async def _feed_utterance(
        w: SpeechWatcher,
        det: SpeechDetector,
        stream: SttStream,
        resampler: Interpolator | Resampler,
        max_speech_s: float,
    ) -> bytes | None:
        """Feed the utterance's frames to ``stream`` until the endpointer ends it (returns
        None), ``max_speech_s`` has passed or no frame came in time (the last frame read)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_speech_s
        frame: bytes | None = b""
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                frame = await asyncio.wait_for(w.audio.get(), remaining)
            except TimeoutError:
                break
            if frame is None:
                break
            await stream.feed(resampler.process(frame))
            follow(det, stream)
        return frame

    # ------------------------------------------------------------------ outbound

    def _check_can_send(self) -> None:
        if self.listen_only:
            raise MediaError(
                f"call {self.ctx.channel_id} is bridged: its media path is listen-only"
            )

    def _to_wire(self, data: AudioChunk | bytes) -> bytes:
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data)
        if data.codec == self.codec and data.sample_rate == self.spec.sample_rate:
            return data.payload
        pcm = decode(data.payload, data.codec)
        if data.sample_rate != self.spec.sample_rate:
            rs = self._send_resamplers.get(data.sample_rate)
            if rs is None:
                rs = self._send_resamplers[data.sample_rate] = Resampler(
                    data.sample_rate, self.spec.sample_rate
                )
            pcm = rs.process(pcm)
        return encode(pcm, self.codec)

    async def send_audio(self, data: AudioChunk | bytes) -> None:
        """Queue audio to the caller, paced at 20 ms; waits while more than 5 s is queued."""
        await self.start()
        self._check_can_send()
        if self._closed:
            raise CallEndedError(f"call {self.ctx.channel_id} has ended")
        self.pacer.enqueue(self.outbound, self._to_wire(data))
        # Polling once per 20 ms tick is cheaper than a wakeup per sent frame.
        while self.outbound.queued_frames > _SEND_BACKLOG and not self._closed:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def clear_audio(self) -> int:
        """Drop the outbound audio queued but not yet sent (barge-in on streamed replies);
        returns the number of 20 ms frames dropped."""
        return self.outbound.flush()

    def on_dtmf(self, digit: str) -> None:
        """A DTMF digit from the caller: interrupts a prompt with DTMF barge-in."""
        prompt = self._prompt
        if prompt is not None and prompt.barge_in.dtmf:
            self._interrupt(prompt, "dtmf", digit)

    def _interrupt(self, prompt: _Prompt, by: str, digit: str | None = None) -> None:
        if prompt.interrupted.done():
            return
        self.outbound.flush()  # stops the audio at the next tick
        prompt.interrupted.set_result((by, digit))

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        """Stream TTS audio to the caller as it is synthesised; stop on barge-in."""
        tts = self.ctx.tts
        if tts is None:
            raise AiNotConfiguredError
        await self.start()
        self._check_can_send()
        prompt = self._new_prompt(barge_in)
        sent_before = self.outbound.sent_ms
        play = prompt.play = asyncio.ensure_future(
            self._play(self._prompt_frames(tts, text, voice))
        )
        try:
            waiting: set[asyncio.Future[Any]] = {play, prompt.interrupted}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if prompt.interrupted.done() and not prompt.interrupted.cancelled():
                by, digit = prompt.interrupted.result()
                play.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await play
                self.outbound.flush()
                heard = round(self.outbound.sent_ms - sent_before)
                return PromptResult(
                    interrupted=True,
                    by="dtmf" if by == "dtmf" else "speech",
                    digit=digit,
                    heard_ms=heard,
                )
            if play.done():
                play.result()  # re-raise a TTS failure
            if self._closed:
                raise CallEndedError(f"call {self.ctx.channel_id} ended during a prompt")
            return PromptResult(heard_ms=round(self.outbound.sent_ms - sent_before))
        finally:
            if not play.done():  # this say was cancelled: the flow stopped the prompt
                play.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await play
                if self._prompt is prompt:  # (not replaced by the next say): its audio stops
                    self.outbound.flush()
            if prompt.watcher is not None:
                self._unwatch(prompt.watcher)
            if not prompt.interrupted.done():
                prompt.interrupted.cancel()
            if self._prompt is prompt:
                self._prompt = None
            prompt.owner = prompt.play = None  # a cancelled task keeps this frame: no cycle

    def _new_prompt(self, barge_in: BargeIn | None) -> _Prompt:
        """The call's playing prompt from now on (watched for speech if it takes speech
        barge-in). Refused while another plays un-interrupted, unless its flow stopped it."""
        playing = self._prompt
        if playing is not None and not playing.interrupted.done():
            if not playing.stopped():
                raise MediaError("another prompt is already playing on this call")
            # the flow stopped it and starts this one in the same step (its clean-up runs a
            # loop pass later): its playback ends here, before any of this prompt is queued
            playing.end()
            self.outbound.flush()
        prompt = self._prompt = _Prompt(barge_in)
        if prompt.barge_in.speech:
            det = SpeechDetector(
                frame_ms=self._vad.frame_ms, min_speech_ms=prompt.barge_in.min_speech_ms
            )
            w = SpeechWatcher(det, strict=True)
            w.on_start = lambda: self._interrupt(prompt, "speech")
            prompt.watcher = self._watch(w)
        return prompt

    def _prompt_frames(
        self, tts: TextToSpeech, text: str, voice: str | None
    ) -> AsyncIterator[bytes]:
        """``text`` as wire-encoded audio (a cached prompt is queued at once: ``prompt_frames``)."""
        return prompt_frames(self.ctx.prompt_cache, tts, text, voice, self.codec, self._queued)

    def _queued(self, chunks: list[bytes]) -> None:
        self.pacer.enqueue(self.outbound, b"".join(chunks))
        observe.moment("prompt", self.ctx.channel_id)  # sent now (an idle line) or next tick

    async def _play(self, frames: AsyncIterator[bytes]) -> None:
        try:
            first = True
            async for wire in frames:
                self.pacer.enqueue(self.outbound, wire)
                if first:  # sent now (an idle line) or with the next tick
                    first = False
                    observe.moment("prompt", self.ctx.channel_id)
            self.outbound.end_of_audio()
            await self.outbound.wait_idle()
        finally:
            aclose = getattr(frames, "aclose", None)  # generators stop at once on barge-in
            if aclose is not None:
                await aclose()

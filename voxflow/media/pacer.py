"""Outbound pacing: one shared 20 ms tick for every call, on an absolute monotonic schedule.

:class:`OutboundStream` is the pure per-stream state (constant SSRC, sequence +1 per packet,
timestamp + samples per tick, marker bit and timestamp jump after a gap). :class:`TickSchedule` is
the pure clock arithmetic: tick ``k`` is due at ``t0 + k * interval`` (never "now + interval", so
errors do not accumulate). :class:`Pacer` is the asyncio edge: one task wakes at each deadline and
sends one frame for every stream that has audio queued. The task runs only while streams are
registered.

Timing (measured with ``bench/rtp.py``; see ``docs/media-performance.md``): asyncio's epoll wait
has millisecond granularity and rounds up, so a timer fires 0-1 ms late, later when a batch of
inbound datagrams is being handled. The pacer therefore wakes ahead of each deadline by
``build_lead`` (how long stamping the last ticks' frames took) plus ``early`` (1.5 ms) or, when
recent wake-ups came later than that, the recent lag + 0.5 ms (``wake_lag``, at most a quarter
tick, forgotten over ~1 s). It stamps every stream's datagram, blocks for the remainder with
``time.sleep`` (precise to ~0.1 ms, no CPU spent) and at the deadline only sends, back to back, in
one synchronous pass; ``wait_idle`` callers are woken after the sends. A stream's place in the
tick then depends on the ``sendto`` calls before it and nothing else: at 500 streams the send
loop takes ~2.5 ms (~5 us a packet, nearly all of it the kernel's loopback path), and the
variation of that loop from tick to tick is what is left of the send-interval error. The loop
is held for the block (~1-1.5 ms a tick), only on ticks with something to send; inbound
datagrams wait in the socket buffers meanwhile. ``early=0`` turns all this off (sleep to the
deadline, stamp and send).

With ``Pacer.start_now`` (off by default: measured no better, docs/media-performance.md), a
talkspurt that starts on an idle stream (``Pacer.enqueue``: nothing queued, the previous
talkspurt's audio over) does not wait for the next tick: its first packet is sent at once, and
carries the audio up to the first tick at least one frame away (20-40 ms of audio), stamped with
the timestamp that makes it end exactly where that tick's packet begins. The stream's packets
then follow on the shared grid, so every packet's send interval still equals its timestamp
interval (RFC 3550's D stays 0; no re-phasing, no extra wake-ups). A stream's packets leave a
tick at their place in its send loop (up to ~3.5 ms after the deadline at 500 streams), so the
first packet's audio runs to that place too: the streams with audio queued ahead of it times the
last send loop's time per packet (an estimate; at the deadline, D would be that place, twice).
The marker bit is set, as for any talkspurt. A receiver takes the longer first packet as it is
(RFC 3551 4.2: 0-200 ms); a smoother cutting it into 20 ms frames (Asterisk with ``ptime``
framing) sends its first frame at once and joins the rest with the next packet. A prompt that
follows a barge-in waits for the next tick: the interrupted prompt's last packet plays until then.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable

from voxflow.errors import MediaError
from voxflow.media.codecs import codec_spec, silence
from voxflow.media.gc_slack import SlackCollector

__all__ = ["OutboundStream", "Pacer", "TickSchedule", "install_pacer", "shared_pacer"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHII")
_LAG_MARGIN = 0.0005  # wake this much before the latest recent wake-up lag...
_LAG_DECAY = 0.98  # ...which is forgotten over ~50 ticks (1 s)


class OutboundStream:
    """Audio queued to one destination, cut into 20 ms frames and stamped as RTP.

    ``enqueue`` accepts any length of wire-codec bytes; a trailing partial frame waits for more
    audio (``end_of_audio`` pads it with silence). ``flush`` drops everything queued (barge-in).
    """

    def __init__(
        self,
        codec: str = "ulaw",
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
        frame_ms: int = 20,
        rng: random.Random | None = None,
    ) -> None:
        spec = codec_spec(codec)
        r = rng or random.SystemRandom()
        self.codec = codec
        self.payload_type = spec.payload_type
        self.frame_bytes = spec.frame_bytes(frame_ms)
        self.frame_samples = spec.frame_samples(frame_ms)
        self.ssrc = r.getrandbits(32) if ssrc is None else ssrc
        self.sequence = r.getrandbits(16) if sequence is None else sequence
        self.timestamp = r.getrandbits(32) if timestamp is None else timestamp
        self.packets_sent = 0
        self.frames_dropped = 0
        self._extra_samples = 0  # samples of talkspurt-starting packets beyond one frame each
        self._queue: deque[bytes] = deque()
        self._partial = b""
        self._last_tick: int | None = None
        self._resume = 0  # no packet from the queue before this tick (``start_talkspurt``)
        self._idle_waiters: list[asyncio.Future[None]] = []

    @property
    def queued_frames(self) -> int:
        """Whole frames waiting to be sent."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued (a trailing partial frame does not count)."""
        return not self._queue

    @property
    def sent_ms(self) -> float:
        """Milliseconds of audio sent so far (a talkspurt's first packet may hold more than a
        frame: ``start_talkspurt``)."""
        samples = self.packets_sent * self.frame_samples + self._extra_samples
        return samples * 20 / self.frame_samples

    def enqueue(self, data: bytes) -> None:
        """Queue wire-codec bytes to send, in 20 ms frames."""
        buf = self._partial + data if self._partial else data
        n = self.frame_bytes
        whole = len(buf) - len(buf) % n
        for i in range(0, whole, n):
            self._queue.append(buf[i : i + n])
        self._partial = buf[whole:]

    def end_of_audio(self) -> None:
        """Send the trailing partial frame too, padded with silence."""
        if self._partial:
            pad = (self.frame_bytes - len(self._partial)) // codec_spec(self.codec).sample_width
            self._queue.append(self._partial + silence(self.codec, pad))
            self._partial = b""

    def flush(self) -> int:
        """Drop all queued audio; return the number of frames dropped."""
        dropped = len(self._queue) + (1 if self._partial else 0)
        self._queue.clear()
        self._partial = b""
        self.frames_dropped += dropped
        self._wake_idle()
        return dropped

    def packet_for_tick(self, tick: int, *, wake: bool = True) -> bytes | None:
        """The RTP datagram to send at ``tick`` (None when nothing is queued).

        Consecutive ticks advance the timestamp by one frame; after a gap the timestamp jumps by
        the ticks elapsed and the marker bit is set (start of a talkspurt). When this empties
        the queue, ``wait_idle`` callers are woken (``wake=False``: the caller does it, with
        ``wake_idle``, once the datagram is sent)."""
        if tick < self._resume:  # a talkspurt started at once: its next packet is due later
            return None
        try:  # (one check: a flush on the loop thread may empty it under a pacer thread)
            payload = self._queue.popleft()
        except IndexError:
            return None
        last = self._last_tick
        marker = 0
        if last is None:
            marker = 0x80
        elif tick != last + 1:
            marker = 0x80
            skipped = max(tick - last - 1, 0)
            self.timestamp = (self.timestamp + skipped * self.frame_samples) & 0xFFFFFFFF
        self._last_tick = tick
        header = _HEADER.pack(
            0x80, marker | self.payload_type, self.sequence, self.timestamp, self.ssrc
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.frame_samples) & 0xFFFFFFFF
        self.packets_sent += 1
        if wake and not self._queue:
            self._wake_idle()
        return header + payload

    def start_talkspurt(self, data: bytes, tick: int, samples: int) -> bytes | None:
        """The datagram that starts a talkspurt now, ``samples`` before ``tick`` is due: the
        first ``samples`` of ``data`` with the marker bit and the timestamp ``samples`` before
        the one ``tick``'s packet gets; the rest of ``data`` is queued from ``tick`` on. None
        (nothing changed) when ``data`` is shorter or ``tick`` does not follow a gap (the caller
        checks that the stream is idle and that ``tick`` is not stamped yet)."""
        width = self.frame_bytes // self.frame_samples
        n = samples * width
        last = self._last_tick
        if len(data) < n or samples <= 0 or (last is not None and tick <= last + 1):
            return None
        if last is not None:  # as ``packet_for_tick``: the RTP clock ran on through the gap
            gap = (tick - last - 1) * self.frame_samples
            self.timestamp = (self.timestamp + gap) & 0xFFFFFFFF
        stamp = (self.timestamp - samples) & 0xFFFFFFFF
        header = _HEADER.pack(0x80, 0x80 | self.payload_type, self.sequence, stamp, self.ssrc)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self._last_tick = tick - 1  # ``tick``'s packet continues it: no marker, no jump
        self._resume = tick
        self.packets_sent += 1
        self._extra_samples += samples - self.frame_samples
        self.enqueue(data[n:])
        return header + data[:n]

    async def wait_idle(self) -> None:
        """Return once every queued frame has been sent (or flushed)."""
        if not self._queue:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._idle_waiters:
                self._idle_waiters.remove(fut)

    def wake_idle(self) -> None:
        """Wake ``wait_idle`` callers if nothing is queued (see ``packet_for_tick(wake=False)``)."""
        if not self._queue:
            self._wake_idle()

    def _wake_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


class TickSchedule:
    """Absolute tick arithmetic: tick ``k`` is due at ``t0 + k * interval``.

    ``due(now)`` returns the ticks to run now. When the loop wakes more than ``max_catchup`` ticks
    late, the oldest are skipped (streams then jump their timestamps and set the marker bit)."""

    def __init__(self, t0: float, interval: float = 0.020, *, max_catchup: int = 3) -> None:
        if interval <= 0:
            raise MediaError(f"pacer interval must be positive, got {interval}")
        self.t0 = t0
        self.interval = interval
        self.max_catchup = max(1, max_catchup)
        self.next_tick = 1
        self.skipped = 0

    def deadline(self, tick: int | None = None) -> float:
        """When ``tick`` (default: the next one) is due."""
        return self.t0 + (self.next_tick if tick is None else tick) * self.interval

    def resync(self, now: float) -> None:
        """Continue after an idle period: the next tick is the first one after ``now``
        (tick numbers keep counting from ``t0``, so streams see the gap)."""
        self.next_tick = max(self.next_tick, math.floor((now - self.t0) / self.interval) + 1)

    def due(self, now: float) -> list[int]:
        """Ticks due at ``now``, oldest first; advances the schedule past them."""
        latest = math.floor((now - self.t0) / self.interval + 1e-9)
        if latest < self.next_tick:
            return []
        first = max(self.next_tick, latest - self.max_catchup + 1)
        self.skipped += first - self.next_tick
        self.next_tick = latest + 1
        return list(range(first, latest + 1))


Sender = Callable[[bytes], None]


class Pacer:
    """The shared 20 ms clock. ``register(stream, send)`` adds a stream; its queued frames go out
    through ``send`` (a non-blocking datagram send) one per tick, on the event loop's thread."""

    threaded = False  # ``send`` is called on the loop's thread (ThreadPacer: on its own)

    def __init__(
        self,
        interval: float = 0.020,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        early: float = 0.0015,
        block: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self.early = max(0.0, early)  # wake this long before a deadline, block for the rest
        self._clock = clock
        self._sleep = sleep
        self._block = block
        self._streams: dict[OutboundStream, Sender] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self.schedule: TickSchedule | None = None
        self.ticks = 0
        self.send_errors = 0
        self.build_lead = 0.0  # how long stamping one tick's frames takes (s), recent maximum
        self.wake_lag = 0.0  # how late the sleep before a tick returns (s), recent maximum
        self.collector: SlackCollector | None = None  # garbage collection after a tick's sends
        # ``enqueue``: a talkspurt on an idle stream starts at once. Off by default: at 500 calls
        # it measured no better key -> prompt and a worse send-interval p99 (its first packets
        # leave from the loop thread; docs/media-performance.md, "Key -> next prompt at 500 calls")
        self.start_now = False
        self.started_now = 0  # talkspurts whose first packet ``enqueue`` sent at once
        self.started_busy = 0  # ...and those left to the next tick: one was in flight
        self.send_span = 0.0  # how long the last tick's send loop took (s)...
        self.send_count = 0  # ...for this many packets

    @property
    def streams(self) -> int:
        """Number of registered streams."""
        return len(self._streams)

    def register(self, stream: OutboundStream, send: Sender) -> None:
        """Start pacing ``stream`` (starts the shared task if needed; a collector takes the
        collection's timing over before the stream is live, not when the task first runs)."""
        if self.collector is not None:
            self.collector.active(True)
        self._streams[stream] = send
        if self._task is None or self._task.done():
            if self.schedule is None:
                self.schedule = TickSchedule(self._clock(), self.interval)
            else:
                self.schedule.resync(self._clock())
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voxflow-pacer")

    def unregister(self, stream: OutboundStream) -> None:
        """Stop pacing ``stream``; the task ends when no stream is left."""
        self._streams.pop(stream, None)
        stream.flush()

    def enqueue(self, stream: OutboundStream, data: bytes) -> None:
        """Queue ``data`` (wire-codec bytes) on ``stream``. A talkspurt that starts on an idle
        registered stream (nothing queued, its last packet's audio over) sends its first
        packet now, through the stream's sender, with the audio up to the first tick at least
        a frame away (module docstring); otherwise the next tick sends it (``start_now``
        False: always). Never waits: while a ThreadPacer's tick is in flight (its lock taken)
        the next tick sends it too (``started_busy``)."""
        schedule, last = self.schedule, stream._last_tick
        if (
            stream._queue
            or stream._partial
            or not self.start_now
            or schedule is None
            or (last is not None and last >= schedule.next_tick - 2)  # still talking
        ):
            stream.enqueue(data)
            return
        if not self._hold():  # a tick in flight: it may be stamping this stream
            self.started_busy += 1
            stream.enqueue(data)
            return
        try:  # no tick stamps or sends meanwhile
            send = self._streams.get(stream)
            idle = send is not None and not stream._queue and not stream._partial
            datagram = self._talkspurt(stream, data) if idle else None
            if send is None or datagram is None:
                stream.enqueue(data)
                return
            try:
                send(datagram)
            except Exception:  # a broken socket must not stop the caller
                self.send_errors += 1
                log.exception("RTP send failed")
            self.started_now += 1
        finally:
            self._unhold()

    def _talkspurt(self, stream: OutboundStream, data: bytes) -> bytes | None:
        """``stream.start_talkspurt`` at the first tick not yet stamped and at least a frame
        from now, if the stream's last packet was before the last tick (its audio is over)."""
        schedule = self.schedule
        assert schedule is not None
        first = schedule.next_tick  # every earlier tick is stamped and sent
        last = stream._last_tick
        if last is not None and last >= first - 2:
            return None  # still talking (or a talkspurt just started): the next tick continues
        now = self._clock()
        tick = max(first, math.ceil((now + self.interval - schedule.t0) / self.interval - 1e-9))
        # Its packets leave a tick's send loop at its place in it, not at the deadline: the
        # first one ends where that place is (an estimate), so its next interval is honest.
        place = self.send_span * _ahead(self._streams, stream) / max(self.send_count, 1)
        samples = (schedule.deadline(tick) + place - now) * stream.frame_samples / self.interval
        return stream.start_talkspurt(data, tick, round(samples))

    def _hold(self) -> bool:
        """Keep ticks out while ``enqueue`` starts a talkspurt, if that needs no wait (the
        loop's own pacer runs on this thread: always)."""
        return True

    def _unhold(self) -> None:
        """End ``_hold``."""

    def next_stamping(self) -> float:
        """When the next tick's stamping starts (its deadline less the current lead): work
        done after a tick's sends must end by then not to delay the next tick."""
        assert self.schedule is not None
        lead = self.build_lead + max(self.early, self.wake_lag + _LAG_MARGIN) if self.early else 0
        return self.schedule.deadline() - lead

    def run_tick(self, tick: int) -> int:
        """Send one frame for every stream with audio queued; return packets sent."""
        return self._send(self._build(tick))

    def _build(self, tick: int) -> list[tuple[OutboundStream, Sender, bytes]]:
        """Stamp the datagram of every stream with audio queued for ``tick`` (nothing is sent)."""
        batch: list[tuple[OutboundStream, Sender, bytes]] = []
        append = batch.append
        for stream, send in self._streams.items():
            if stream._queue:
                data = stream.packet_for_tick(tick, wake=False)
                if data is not None:
                    append((stream, send, data))
        return batch

    def _send(self, batch: list[tuple[OutboundStream, Sender, bytes]]) -> int:
        """Hand every datagram of ``batch`` to its sender, back to back, then wake the waiters
        of streams that ran dry (after the sends, so waking them never delays a packet)."""
        started = self._clock()
        for _, send, data in batch:
            try:
                send(data)
            except Exception:  # a broken socket must not stop the other calls
                self.send_errors += 1
                log.exception("RTP send failed")
        if batch:
            self.send_span, self.send_count = self._clock() - started, len(batch)
        for stream, _, _ in batch:
            if stream._idle_waiters and not stream._queue:
                stream._wake_idle()
        self.ticks += 1
        return len(batch)

    async def _run(self) -> None:
        schedule = self.schedule
        assert schedule is not None
        clock = self._clock
        if self.collector is not None:
            self.collector.active(True)
        try:
            while self._streams:
                deadline = schedule.deadline()
                # Wake early enough to stamp every frame and still have ``early`` in hand, or
                # more when recent wake-ups came later than that (a busy loop).
                lead = 0.0
                if self.early:
                    lead = self.build_lead + max(self.early, self.wake_lag + _LAG_MARGIN)
                delay = deadline - clock() - lead
                if delay > 0:
                    await self._sleep(delay)
                remaining = deadline - clock()
                if remaining > lead + 1e-4:
                    continue  # the sleep returned early: sleep again
                if delay > 0:  # how late the sleep returned; follows rises, decays slowly
                    lag = min(lead - remaining, self.interval / 4)
                    self.wake_lag = max(lag, _LAG_DECAY * self.wake_lag)
                ticks = schedule.due(max(clock(), deadline))
                if not ticks:
                    continue
                for tick in ticks[:-1]:  # woke late: catch up at once
                    self.run_tick(tick)
                # Stamp the frames while still early, then block to the deadline and only send:
                # the send loop is all that separates the first stream's packet from the last.
                started = clock()
                batch = self._build(ticks[-1])
                now = clock()
                # The next lead follows a longer build at once and decays slowly after a shorter.
                self.build_lead = max(now - started, 0.9 * self.build_lead)
                if not batch:  # nothing to send (every call listening): do not hold the loop
                    self.ticks += 1
                else:
                    if deadline > now:
                        self._block(deadline - now)
                    self._send(batch)
                if self.collector is not None:  # the slack before the next tick's stamping
                    self.collector.run(self.next_stamping())
        finally:
            self._task = None
            if self.collector is not None and not self._streams:
                self.collector.release()

    async def aclose(self) -> None:
        """Stop the task and forget every stream."""
        for stream in list(self._streams):
            self.unregister(stream)
        task = self._task
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def _ahead(streams: dict[OutboundStream, Sender], stream: OutboundStream) -> int:
    """How many streams with audio queued come before ``stream`` in the send order."""
    ahead = 0
    for s in streams:
        if s is stream:
            break
        if s._queue:
            ahead += 1
    return ahead


_shared: dict[asyncio.AbstractEventLoop, Pacer] = {}


def shared_pacer() -> Pacer:
    """The process-wide pacer of the running event loop (one tick for all calls); a
    :class:`~voxflow.media.pacer_thread.ThreadPacer` when one was installed
    (:func:`install_pacer`)."""
    loop = asyncio.get_running_loop()
    pacer = _shared.get(loop)
    if pacer is None:
        for old in [lp for lp in _shared if lp.is_closed()]:
            del _shared[old]
        pacer = _shared[loop] = Pacer()
    return pacer


def install_pacer(pacer: Pacer) -> None:
    """Make ``pacer`` the running loop's shared pacer (e.g. one on a virtual clock, with
    ``early=0``, for a test loop whose time is not ``time.monotonic``)."""
    loop = asyncio.get_running_loop()
    old = _shared.get(loop)
    if old is not None and old.streams:
        raise MediaError("the loop's pacer already paces streams")
    _shared[loop] = pacer

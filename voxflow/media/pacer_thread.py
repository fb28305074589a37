"""Outbound pacing on a thread of its own, so that the event loop's other work never delays a tick.

The asyncio :class:`~voxflow.media.pacer.Pacer` shares the loop with everything else a worker does.
A loop iteration that runs long when a tick is due (a burst of ARI events, many calls' interpreter
steps at once, a receive burst, a slow callback) delays every call's packet of that tick by as
much, and a bench of whole calls (``bench/calls.py``) has such bursts every few seconds.
:class:`ThreadPacer` runs the same ticks, the same :class:`OutboundStream` stamping on the same
absolute grid (RTP timestamps come from the tick number, never from when a tick ran), on a thread:

* it sleeps with the GIL released until ``lead`` before the deadline (``lead`` follows the recent
  stamping time and wake-up lateness, as the asyncio pacer's does), stamps every stream's
  datagram, waits for the deadline *holding* the GIL (so the loop thread cannot run between the
  stamping and the sends) and sends the datagrams back to back through the ``send`` each stream
  was registered with, which must be callable from this thread (``RtpSocket.send_from_thread``:
  ``send(2)`` with the GIL held, so the loop thread never takes it between two packets);
* streams that ran dry in a tick have their ``wait_idle`` callers woken on the loop
  (``call_soon_threadsafe``, once per tick);
* a lock held for each tick's stamping and sending makes ``register``/``unregister`` wait for a
  tick in flight: once ``unregister`` returns, the stream's ``send`` is never called again, so a
  call may close its socket right after;
* the thread ends when no stream is left (or the loop is closed) and starts again with the next.

Automatic garbage collection is off from before the first stream is registered, and handed back
on the loop's thread once the last one is gone (``SlackCollector.release``), never on the pacer's:
Python's collector starts no collection while a stream is live, nor on this thread.

What can still delay a tick: the GIL held elsewhere when the thread wakes (a C extension that does
not release it, a garbage collection), for at most ``sys.getswitchinterval()`` when the loop
thread runs plain Python; and the operating system not running the thread on time. While the
thread runs, the switch interval is 0.5 ms instead of Python's 5 ms (``switch_interval``), so a
loop thread running Python hands the GIL over sooner (``bench/calls.py``, 500 calls: send error
p99 3.47 ms at 5 ms, 1.49 ms at 0.5 ms, in one run).

``voxflow run`` uses it by default (``[media] pacer = "thread"``, :mod:`voxflow.media.pacing`),
with garbage collection in its slack (:mod:`voxflow.media.gc_slack`); ``shared_pacer()`` alone
gives the asyncio pacer (docs/media-performance.md, "The send-interval tail of whole calls").
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
import threading
import time
from collections.abc import Callable

from voxflow.media.gc_slack import SlackCollector
from voxflow.media.pacer import _LAG_DECAY, _LAG_MARGIN, OutboundStream, Pacer, Sender, TickSchedule

__all__ = ["ThreadPacer", "hold_gil_sleep"]

log = logging.getLogger(__name__)

_usleep = ctypes.PyDLL(None).usleep  # PyDLL: the GIL stays held while it sleeps
_usleep.argtypes = [ctypes.c_uint]
_usleep.restype = ctypes.c_int


def hold_gil_sleep(seconds: float) -> None:
    """Sleep without releasing the GIL (no other Python thread runs meanwhile)."""
    if seconds > 0:
        _usleep(int(seconds * 1e6))


class ThreadPacer(Pacer):
    """The shared 20 ms clock on a thread (module docstring). ``register(stream, send)``: ``send``
    is called from the pacer's thread. ``clock``/``sleep``/``block`` (released, then held GIL)
    are for tests on a fake clock. ``switch_interval``: ``sys.setswitchinterval`` while the
    thread runs (None: left alone)."""

    threaded = True

    def __init__(
        self,
        interval: float = 0.020,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        early: float = 0.0015,
        block: Callable[[float], None] = hold_gil_sleep,
        switch_interval: float | None = 0.0005,
    ) -> None:
        super().__init__(interval, clock=clock, early=early, block=block)
        self.switch_interval = switch_interval
        self._saved_switch: float | None = None
        self._sleep_released = sleep
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def register(self, stream: OutboundStream, send: Sender) -> None:
        """Start pacing ``stream`` (starts the thread if needed)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
            if self._thread is None:
                self._starting()  # automatic collection off before the stream is live
            self._streams = {**self._streams, stream: send}
            if self._thread is None:
                if self.schedule is None:
                    self.schedule = TickSchedule(self._clock(), self.interval)
                else:
                    self.schedule.resync(self._clock())
                self._thread = threading.Thread(
                    target=self._run_thread, name="voxflow-pacer", daemon=True
                )
                self._thread.start()

    def _hold(self) -> bool:
        """``enqueue`` starts a talkspurt under the lock, if it is free at once (a tick in
        flight may be stamping the stream; the loop thread never waits for it)."""
        return self._lock.acquire(blocking=False)

    def _unhold(self) -> None:
        self._lock.release()

    def _starting(self) -> None:
        """The thread is about to start (lock held): the collector and switch interval."""
        if self.collector is not None:
            self.collector.active(True)
        self._saved_switch = sys.getswitchinterval()
        if self.switch_interval is not None and self.switch_interval < self._saved_switch:
            sys.setswitchinterval(self.switch_interval)

    def _ended(self) -> None:
        """The thread ends (lock held): the switch interval is restored; the collector is
        handed back on the loop's thread (``_hand_back``), not on this one."""
        self._thread = None
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
            self._saved_switch = None
        if self.collector is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._hand_back)
            except RuntimeError:  # the loop is closed: aclose() or the next register decides
                pass

    def _hand_back(self) -> None:
        """On the loop: Python gets the collector's timing back (what is due collected here
        first) unless a stream was registered since the thread ended."""
        with self._lock:
            if self.collector is not None and self._thread is None and not self._streams:
                self.collector.release()

    def unregister(self, stream: OutboundStream) -> None:
        """Stop pacing ``stream``; returns once no tick in flight can still send for it."""
        with self._lock:
            if stream in self._streams:
                streams = dict(self._streams)
                del streams[stream]
                self._streams = streams
        stream.flush()

    def run_tick(self, tick: int) -> int:
        """Send one frame for every stream with audio queued; return packets sent."""
        with self._lock:
            return self._send_from_thread(self._build(tick))

    def _send_from_thread(self, batch: list[tuple[OutboundStream, Sender, bytes]]) -> int:
        """Hand every datagram to its sender, back to back; then ask the loop to wake the
        ``wait_idle`` callers of the streams that ran dry (even with no waiter yet: one may be
        about to wait, and ``wake_idle`` checks the queue on the loop)."""
        started = self._clock()
        for _, send, data in batch:
            try:
                send(data)
            except Exception:  # a broken socket must not stop the other calls
                self.send_errors += 1
                log.exception("RTP send failed")
        if batch:
            self.send_span, self.send_count = self._clock() - started, len(batch)
        dry = [stream for stream, _, _ in batch if not stream._queue]
        self.ticks += 1
        self._after_tick(dry)
        return len(batch)

    def _after_tick(self, dry: list[OutboundStream]) -> None:
        """Hand the loop what follows a tick: waking ``dry`` streams' waiters and, with a
        collector, the garbage collection that fits before the next tick's stamping."""
        collector = self.collector
        collect = collector is not None and collector.wants_run()
        if (dry or collect) and self._loop is not None:
            until = self.next_stamping() if collect else None
            try:
                self._loop.call_soon_threadsafe(_after_tick, dry, collector, until)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _run_thread(self) -> None:
        try:
            while self._tick_once():
                pass
        except Exception:
            log.exception("the RTP pacer thread failed")
            with self._lock:
                self._streams = {}
                self._ended()

    def _tick_once(self) -> bool:
        """Wait for the next deadline and run its tick; False once the thread should end."""
        schedule, clock = self.schedule, self._clock
        assert schedule is not None
        with self._lock:
            loop = self._loop
            if not self._streams or loop is None or loop.is_closed():
                self._ended()
                return False
        deadline = schedule.deadline()
        lead = self.build_lead + max(self.early, self.wake_lag + _LAG_MARGIN)
        delay = deadline - clock() - lead
        if delay > 0:
            self._sleep_released(delay)
        remaining = deadline - clock()
        if remaining > lead + 1e-4:
            return True  # the sleep returned early: sleep again
        if delay > 0:  # how late the thread got going again; follows rises, decays slowly
            lag = min(lead - remaining, self.interval / 4)
            self.wake_lag = max(lag, _LAG_DECAY * self.wake_lag)
        with self._lock:
            ticks = schedule.due(max(clock(), deadline))
            if not ticks:
                return True
            for tick in ticks[:-1]:  # woke late: catch up at once
                self._send_from_thread(self._build(tick))
            started = clock()
            batch = self._build(ticks[-1])
            now = clock()
            self.build_lead = max(now - started, 0.9 * self.build_lead)
            if not batch:
                self.ticks += 1
                self._after_tick([])
                return True
            if deadline > now:
                self._block(deadline - now)
            self._send_from_thread(batch)
        return True

    async def aclose(self) -> None:
        """Forget every stream and wait (up to 1 s) for the thread to end."""
        for stream in list(self._streams):
            self.unregister(stream)
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, 1.0)
        self._hand_back()


def _after_tick(
    streams: list[OutboundStream], collector: SlackCollector | None, until: float | None
) -> None:
    """On the loop: wake the waiters of streams that ran dry, then collect in the slack."""
    for stream in streams:
        stream.wake_idle()
    if collector is not None and until is not None:
        collector.run(until)

"""What ``bench/calls.py`` times in the worker: every RTP send (``SendClock``), key or spoken
answer -> the next prompt (``PromptClock``), and the pocketsphinx decoders built during a load
(``DecoderBuilds``). Each patches the methods it times and puts them back on ``close``."""

from __future__ import annotations

import array
import itertools
import time
from collections import Counter
from typing import Any

import numpy as np

from voxflow.ari.models import ChannelDtmfReceived
from voxflow.media.callmedia import CallMedia
from voxflow.media.pacer import OutboundStream, Pacer
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import RtpSocket
from voxflow.telephony.app import VoxtraApp

__all__ = ["BILLING", "DecoderBuilds", "PromptClock", "SendClock"]

BILLING = "To pay your bill, press 1. To hear your balance, press 2. To go back, press 9."


class SendClock:
    """Records when each RtpSocket sends (the worker's outgoing RTP, from whichever thread sends
    it) and the RTP timestamp sent, per socket (``times``, ``stamps``, ``sizes``: socket id ->
    its sends in order).

    It runs inside the pacer's send loop, between two calls' datagrams, on the worker's core:
    each send appends to four flat arrays (a send's time, its socket's number, RTP timestamp and
    size), ~0.6 us; they are grouped by socket only when read. (It kept a dict of three arrays
    per socket, looked up by ``id(sock)`` three times a send: ~2 us a datagram more, a third of
    a send's CPU, on the pacer's real-time thread.)"""

    def __init__(self) -> None:
        self._t: array.array[float] = array.array("d")
        self._k: array.array[int] = array.array("I")
        self._s: array.array[int] = array.array("q")
        self._z: array.array[int] = array.array("H")
        self._keys: dict[int, int] = {}  # id(socket) -> its number, in order of first send
        self._grouped: tuple[int, dict[int, Any], dict[int, Any], dict[int, Any]] | None = None
        self._orig = (RtpSocket.send, RtpSocket.send_from_thread)
        t_add, k_add, s_add, z_add = self._t.append, self._k.append, self._s.append, self._z.append
        keys, monotonic, from_bytes = self._keys, time.monotonic, int.from_bytes

        def timed(orig: Any) -> Any:
            def send(sock: RtpSocket, data: bytes) -> None:
                t_add(monotonic())
                k = keys.get(id(sock))
                if k is None:
                    k = keys[id(sock)] = len(keys)
                k_add(k)
                s_add(from_bytes(data[4:8], "big"))
                z_add(len(data))
                orig(sock, data)

            return send

        RtpSocket.send = timed(RtpSocket.send)  # type: ignore[method-assign]  # instrumentation
        RtpSocket.send_from_thread = timed(RtpSocket.send_from_thread)  # type: ignore[method-assign]

    def close(self) -> None:
        RtpSocket.send, RtpSocket.send_from_thread = self._orig  # type: ignore[method-assign]

    def _by_socket(self) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
        """(times, stamps, sizes), each socket id -> numpy array of its sends in order."""
        n = len(self._z)  # the last array appended to: the others hold n sends at least
        if self._grouped is None or self._grouped[0] != n:
            # Copies (slices), not views: a view would stop the arrays from growing, and the
            # pacer's thread may still be sending for a call that is being torn down.
            keys = self._keys.copy()  # (one C call: the pacer thread may add to it)
            k = np.array(self._k[:n], dtype=np.uint32)
            order = np.argsort(k, kind="stable")
            bounds = np.searchsorted(k[order], np.arange(len(keys) + 1))
            cols = [np.array(a[:n], dtype=d)[order] for a, d in (
                (self._t, np.float64), (self._s, np.int64), (self._z, np.uint16))]  # fmt: skip
            ids = sorted(keys, key=keys.__getitem__)
            grouped = [{sid: col[bounds[i] : bounds[i + 1]] for i, sid in enumerate(ids)}
                       for col in cols]  # fmt: skip
            self._grouped = (n, grouped[0], grouped[1], grouped[2])
        return self._grouped[1], self._grouped[2], self._grouped[3]

    @property
    def times(self) -> dict[int, Any]:
        """Socket id -> when it sent each datagram (monotonic s), in order."""
        return self._by_socket()[0]

    @property
    def stamps(self) -> dict[int, Any]:
        """Socket id -> each datagram's RTP timestamp."""
        return self._by_socket()[1]

    @property
    def sizes(self) -> dict[int, Any]:
        """Socket id -> each datagram's size (bytes)."""
        return self._by_socket()[2]

    def error_p99_ms(self) -> float:
        """p99 |send interval - RTP timestamp interval| between consecutive packets of a stream
        (RFC 3550's D: within a prompt |interval - 20 ms|; across a pause the timestamp jumps by
        the pause, so only the send's own lateness counts). Pauses over 1 s are left out (the
        caller's own gaps, and a packet handed to the loop after a full buffer)."""
        allerr = self._errors()[0]
        return float(np.percentile(allerr, 99) * 1000) if len(allerr) else 0.0

    def _errors(self) -> tuple[Any, Any]:
        """Every interval's error (s) and when it ended (monotonic s)."""
        errs, ends = [], []
        times, stamps, _sizes = self._by_socket()  # one snapshot: the pacer may still send
        for key, t in times.items():
            sent = np.array(t)
            d = np.diff(sent)
            dts = np.mod(np.diff(np.array(stamps[key])), 2**32) / 8000
            keep = dts < 1.0
            errs.append(np.abs(d[keep] - dts[keep]))
            ends.append(sent[1:][keep])
        if not errs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(errs), np.concatenate(ends)

    def started_line(self) -> str:
        """The intervals on either side of a talkspurt's first packet sent at once (the only
        RTP packets that are not 172 bytes, 20 ms of G.711): how many, their error p50/p99/max
        (ms), and how many over 2 ms."""
        errs = []
        times, stamps, by_size = self._by_socket()  # one snapshot: the pacer may still send
        for key, t in times.items():
            sizes = np.array(by_size[key])
            d = np.diff(np.array(t))
            dts = np.mod(np.diff(np.array(stamps[key])), 2**32) / 8000
            err = np.abs(d - dts)
            for i in np.nonzero(sizes != 172)[0]:  # the interval into it and the one after it
                errs += [err[j] for j in (i - 1, i) if 0 <= j < len(err) and dts[j] < 1.0]
        if not errs:
            return "first packets sent at once: none"
        e = 1000 * np.array(errs)
        return (
            f"intervals beside a first packet sent at once: {len(e)}, error p50/p99/max "
            f"{np.percentile(e, 50):.2f}/{np.percentile(e, 99):.2f}/{e.max():.2f} ms, "
            f"{int((e > 2).sum())} over 2 ms"
        )

    def over_budget_line(self, start: float) -> str:
        """Where the intervals over 2 ms are: how many, and the seconds (since ``start``) that
        hold the most, e.g. ``1893 of 497000 intervals over 2 ms; 4.0 s: 1220, 12.0 s: 500``."""
        err, end = self._errors()
        bad = end[err > 0.002] - start
        secs = Counter(round(float(b), 1) for b in bad)  # by the tenth of a second
        top = ", ".join(f"{s:.1f} s: {k}" for s, k in sorted(secs.most_common(12)))
        return f"{len(bad)} of {len(err)} intervals over 2 ms; by second: {top}"


class PromptClock:
    """Worker-side key -> next prompt: when the app got the caller's "3" (ChannelDtmfReceived
    handed to its dispatcher) and when the first RTP packet of the billing prompt left. For a
    spoken answer, end of speech -> next prompt: the recognition's own ``latency_ms`` (end of
    the caller's speech -> its result: the end-pointer's silence and the decoding) plus the
    result -> the billing prompt's first RTP packet."""

    def __init__(self, app: VoxtraApp, sends: SendClock) -> None:
        self.sends = sends
        self.key: dict[str, float] = {}
        self.prompt: dict[str, tuple[int, float]] = {}  # channel -> (socket id, say() called)
        self.queued: dict[str, float] = {}  # channel -> the billing prompt's first frame queued
        watched: dict[int, str] = {}  # id(outbound stream) -> channel, from say(BILLING) on
        self.heard: dict[str, tuple[float, float, str]] = {}  # channel -> (result at, ms, text)
        on_event = app.events._on_event

        def timed_event(event: Any) -> None:
            if isinstance(event, ChannelDtmfReceived) and event.digit == "3":
                self.key.setdefault(event.channel.id, time.monotonic())
            on_event(event)

        app.events._on_event = timed_event
        self._say = CallMedia.say
        clock, say = self, self._say

        async def timed_say(media: CallMedia, text: str, **kw: Any) -> Any:
            if text == BILLING and media.socket is not None:
                first = (id(media.socket), time.monotonic())  # the first: not a replay
                clock.prompt.setdefault(media.ctx.channel_id, first)
                watched[id(media.outbound)] = media.ctx.channel_id
            return await say(media, text, **kw)

        CallMedia.say = timed_say  # type: ignore[method-assign,assignment]  # instrumentation
        self._enqueue = Pacer.enqueue  # (the ThreadPacer's too: it inherits it)
        enqueue = self._enqueue

        def timed_enqueue(pacer: Pacer, stream: OutboundStream, data: bytes) -> None:
            channel = watched.pop(id(stream), None)
            if channel is not None:  # handed to the pacer (which may send its first packet now)
                clock.queued.setdefault(channel, time.monotonic())
            enqueue(pacer, stream, data)

        Pacer.enqueue = timed_enqueue  # type: ignore[method-assign,assignment]  # bench
        self._recognize = CallMedia.recognize
        recognize = self._recognize

        async def timed_recognize(media: CallMedia, *args: Any, **kw: Any) -> Any:
            heard = await recognize(media, *args, **kw)
            if heard is not None:
                ms = heard.latency_ms or 0.0
                clock.heard[media.ctx.channel_id] = (time.monotonic(), ms, heard.text)
            return heard

        CallMedia.recognize = timed_recognize  # type: ignore[method-assign,assignment]  # bench

    def close(self) -> None:
        Pacer.enqueue = self._enqueue  # type: ignore[method-assign]  # restores it
        CallMedia.say = self._say  # type: ignore[method-assign]  # restores the method
        CallMedia.recognize = self._recognize  # type: ignore[method-assign]  # restores it

    def speech_latencies_ms(self) -> list[float]:
        """End of speech -> the next prompt's first packet, per spoken answer that led to it."""
        out = []
        for channel, (at, ms, _) in self.heard.items():
            sock_called = self.prompt.get(channel)
            if sock_called is None or channel in self.key:
                continue
            sock, called = sock_called
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if first is not None:
                out.append(ms + (first - at) * 1000)
        return out

    def key_say_windows(self) -> list[tuple[float, float]]:
        """(key handed to the dispatcher, ``say`` called) of every call timed."""
        return [
            (self.key[channel], called)
            for channel, (_, called) in self.prompt.items()
            if channel in self.key and called >= self.key[channel]
        ]

    def latencies_ms(self) -> list[float]:
        out = []
        for channel, (sock, called) in self.prompt.items():
            key = self.key.get(channel)
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if key is not None and first is not None:
                out.append((first - key) * 1000)
        return out

    def parts_ms(self) -> list[tuple[float, ...]]:
        """Key -> next prompt per call, in three parts (ms): the key handed to the dispatcher ->
        ``say`` called (signalling and the interpreter), -> the prompt's first frame queued (the
        prompt cache; a pass of the loop when ``say`` leaves it to its ``_play`` task), -> that
        frame's packet sent (at once on an idle line, else the pacer's next tick)."""
        out = []
        for channel, (sock, called) in self.prompt.items():
            key, queued = self.key.get(channel), self.queued.get(channel)
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if key is None or queued is None or first is None:
                continue
            times = (key, called, queued, first)
            out.append(tuple(1000 * (b - a) for a, b in itertools.pairwise(times)))
        return out

    def split_line(self) -> str:
        """The parts' p50/p99, and their mean over the slowest 1% of calls."""
        parts = np.array(self.parts_ms()).reshape(-1, 3)
        if not len(parts):
            return "key -> prompt: no call timed"
        total = parts.sum(axis=1)
        slow = parts[total >= np.percentile(total, 99)].mean(axis=0)
        names = ("key->say", "say->queued", "queued->sent")
        each = ", ".join(
            f"{n} {np.percentile(parts[:, i], 50):.1f}/{np.percentile(parts[:, i], 99):.1f}"
            for i, n in enumerate(names)
        )
        worst = " + ".join(f"{v:.1f}" for v in slow)
        return f"key -> prompt p50/p99 (ms): {each}; slowest 1%: {worst}"


class DecoderBuilds:
    """Counts the pocketsphinx decoders built while it is installed, and their CPU (a build
    holds the GIL throughout, ~0.5 s: the loop, pacer included, stands still meanwhile)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._orig = PocketSphinxSTT._new_decoder
        meter, orig = self, self._orig

        def new_decoder(stt: PocketSphinxSTT) -> Any:
            started = time.thread_time()
            try:
                return orig(stt)
            finally:
                meter.count += 1
                meter.seconds += time.thread_time() - started

        # a bench meter in place of the method (same call shape; mypy sees self's type twice)
        PocketSphinxSTT._new_decoder = new_decoder  # type: ignore[method-assign,assignment]

    def close(self) -> None:
        PocketSphinxSTT._new_decoder = self._orig  # type: ignore[method-assign]  # restored

"""For the pacer tests, whose event loop may be blocked while RTP arrives: a UDP socket on
127.0.0.1 read by a thread of its own, and a fake clock for the pacer's thread."""

from __future__ import annotations

import socket
import threading
import time

from voxflow.media.rtp import RtpPacket, parse_rtp

__all__ = ["ThreadClock", "ThreadedReceiver"]


class ThreadedReceiver:
    """Notes when each datagram was read (``time.monotonic()``) and its parsed RTP packet."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.got: list[tuple[float, RtpPacket]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            self.got.append((time.monotonic(), parse_rtp(data)))

    def close(self) -> None:
        """Stop the reading thread and close the socket."""
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class ThreadClock:
    """A fake clock for the pacer's thread: a sleep moves time on at once, by exactly the delay;
    ``blocks`` records each ``block`` (a stretch the thread was held)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.blocks: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, delay: float) -> None:
        self.now += delay
        time.sleep(0)  # lets the loop thread run

    def block(self, delay: float) -> None:
        self.blocks.append(delay)
        self.now += delay

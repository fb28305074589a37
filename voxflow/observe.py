"""Operational figures reported from deep inside voxflow, to whoever observes them (metrics).

The ARI client, the runtime, the media and the AI providers call the functions below; a metrics
exporter (``voxflow.cluster.metrics``, ``voxflow run --metrics-port``) installs an
:class:`Observer` with :func:`install`. With none installed (the default) a report costs one
global lookup. This module imports nothing of voxflow, so every layer may report here while
only the exporter knows Prometheus. An observer must not raise or block: it runs on the
caller's thread, in the middle of a call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = [
    "MomentSink",
    "Observer",
    "ari_request",
    "decoder_wait",
    "install",
    "installed",
    "moment",
    "provider_error",
    "rtp",
    "step",
    "uninstall",
    "watch_moments",
]


class Observer(Protocol):
    """What the reports go to."""

    def step(self, kind: str, seconds: float) -> None:
        """A flow step's operation (``play``, ``http``, ``gather``...) took ``seconds``."""

    def ari_request(self, method: str, seconds: float, status: int) -> None:
        """An ARI REST request took ``seconds``; ``status`` 0: no answer (timeout, refused)."""

    def provider_error(self, kind: str, provider: str) -> None:
        """A speech or language provider failed (``kind`` stt, tts or llm)."""

    def rtp(self, received: int, lost: int, late: int) -> None:
        """RTP packets of a call received, lost (filled in) and arrived too late (after their
        slot was played out) since its last report: every second while it runs, and at its
        media's end (:mod:`voxflow.media.rtp_report`)."""

    def decoder_wait(self, seconds: float) -> None:
        """A recognition got its speech decoder ``seconds`` after it started (0: one was free;
        more: the decoder pool was exhausted, :mod:`voxflow.media.stt_pool`)."""


_observer: Observer | None = None


def install(observer: Observer) -> None:
    """Send every report to ``observer`` (replaces the one installed before)."""
    global _observer
    _observer = observer


def uninstall(observer: Observer) -> None:
    """Stop reporting to ``observer`` (if it is the one installed)."""
    global _observer
    if _observer is observer:
        _observer = None


def installed() -> Observer | None:
    """The observer reports go to, if any."""
    return _observer


def step(kind: str, seconds: float) -> None:
    """See :meth:`Observer.step`."""
    if _observer is not None:
        _observer.step(kind, seconds)


def ari_request(method: str, seconds: float, status: int) -> None:
    """See :meth:`Observer.ari_request`."""
    if _observer is not None:
        _observer.ari_request(method, seconds, status)


def provider_error(kind: str, provider: str) -> None:
    """See :meth:`Observer.provider_error`."""
    if _observer is not None:
        _observer.provider_error(kind, provider)


def rtp(received: int, lost: int, late: int) -> None:
    """See :meth:`Observer.rtp`."""
    if _observer is not None:
        _observer.rtp(received, lost, late)


def decoder_wait(seconds: float) -> None:
    """See :meth:`Observer.decoder_wait`."""
    if _observer is not None:
        _observer.decoder_wait(seconds)


MomentSink = Callable[[str, str], None]
"""Receives ``(what, call_id)`` of a :func:`moment` (the time is the receiver's to read)."""

_moments: MomentSink | None = None


def watch_moments(sink: MomentSink | None) -> None:
    """Send every :func:`moment` to ``sink`` (None: stop). A worker taking calls over records
    its take-over's timeline this way (:mod:`voxflow.cluster.takeover`)."""
    global _moments
    _moments = sink


def moment(what: str, call_id: str = "") -> None:
    """A point on a take-over's timeline was reached (``connected``, ``listed``, a call's
    ``checkpoint``, ``entered``, ``prompt``...); one global lookup while nobody watches."""
    if _moments is not None:
        _moments(what, call_id)

"""What an STT stream may tell the endpointer while the caller speaks, and passing it on.

A stream that decodes as it is fed (the offline recogniser with a grammar) knows things about the
words so far that shorten the silence :class:`~voxflow.media.vad.SpeechDetector` waits for: a whole
expected phrase (``complete``), one that no other phrase extends (``final``), and such a phrase
after which its searches already heard the caller stop (``settled``), and, whatever the words,
that its unconstrained search has heard no speech for a while (``quiet``). Each is a small
Protocol, so any provider may implement some, all or none of them (``stt_pocketsphinx`` has all
four).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from voxflow.media.vad import SpeechDetector

__all__ = ["CompletesPhrase", "EndsPhrase", "HearsQuiet", "HearsSilence", "SettlesPhrase", "follow"]


@runtime_checkable
class CompletesPhrase(Protocol):
    """An STT stream that says when what it heard so far is a whole expected phrase (the
    listener then ends the utterance after a shorter silence)."""

    complete: bool


@runtime_checkable
class EndsPhrase(Protocol):
    """An STT stream that says when what it heard so far is a whole expected phrase that no
    other expected phrase extends (the listener then ends the utterance after the shortest
    silence, ``listen_final_silence_ms``)."""

    final: bool


@runtime_checkable
class SettlesPhrase(Protocol):
    """An STT stream that says when, after such a final phrase, its own searches heard the
    caller stop (the listener then ends the utterance after ``listen_settled_silence_ms``,
    0 by default: at once)."""

    settled: bool


@runtime_checkable
class HearsQuiet(Protocol):
    """An STT stream that says when its own unconstrained search has heard no speech for a
    while, whatever the words so far (the listener then ends the utterance after
    ``listen_quiet_silence_ms`` of VAD silence instead of the ``listen`` window)."""

    quiet: bool


@runtime_checkable
class HearsSilence(Protocol):
    """An STT stream told how long the listener's VAD has heard silence since the caller's last
    voiced frame (the offline recogniser sharing its decoders takes them once the caller is
    silent: ``stt_pocketsphinx``)."""

    silence_ms: int | None


def follow(detector: SpeechDetector, stream: object) -> None:
    """Pass what ``stream`` says about the words so far on to ``detector``, and the detector's
    silence so far on to ``stream`` (after each feed)."""
    if isinstance(stream, HearsSilence):
        stream.silence_ms = detector.silence_ms
    detector.complete = isinstance(stream, CompletesPhrase) and stream.complete
    detector.final = isinstance(stream, EndsPhrase) and stream.final
    detector.settled = isinstance(stream, SettlesPhrase) and stream.settled
    detector.quiet = isinstance(stream, HearsQuiet) and stream.quiet

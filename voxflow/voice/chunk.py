"""AudioChunk: one frame of call audio as it crosses the media path."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AudioChunk"]


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """About 20 ms of audio. ``codec`` is "ulaw", "alaw" or "slin16" (big-endian, as on the wire)
    or "pcm16" (signed 16-bit little-endian, what providers use)."""

    codec: str
    sample_rate: int
    payload: bytes
    sequence: int = 0
    timestamp: int = 0

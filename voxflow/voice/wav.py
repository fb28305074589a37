"""WAV containers for mono 16-bit PCM (stdlib ``wave``; no numpy, so light to import)."""

from __future__ import annotations

import io
import wave

__all__ = ["pcm16_to_wav"]


def pcm16_to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """A mono 16-bit WAV file holding ``pcm`` (signed little-endian) at ``sample_rate``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return out.getvalue()

"""The line's own sound as the offline recogniser adds it (:mod:`voxflow.media.stt_pocketsphinx`):
the background repeated after a caller's last word, and the noise-floor check's noise."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["floor_block", "tail_pad"]


def tail_pad(tail: bytes, need: int, step: int) -> bytes:
    """``need`` bytes of the line's background: the ``step``-byte (10 ms) pieces of ``tail`` (the
    last 100 ms heard) within 6 dB of the quietest, repeated (a louder piece may still hold the
    end of the last word, which repeated would sound like more speech; on a noisy line they all
    pass)."""
    pcm = np.frombuffer(tail[: len(tail) // step * step], "<i2")
    if len(pcm) == 0:
        return bytes(need)
    frames = pcm.reshape(-1, step // 2).astype(np.float64)
    energy = (frames**2).mean(axis=1)
    quiet = frames[energy <= 4.0 * energy.min() + 1.0]  # within 6 dB of the quietest
    loop: bytes = quiet.astype("<i2").tobytes()
    return (loop * (need // len(loop) + 1))[:need]


def floor_block(
    rng: np.random.Generator, block: int, sigma: float, band_hz: int, rate: int
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``block`` samples of white noise from ``rng`` with the band above ``band_hz`` zeroed,
    scaled to ``sigma`` LSB rms."""
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, block))
    spectrum[np.fft.rfftfreq(block, 1 / rate) > band_hz] = 0
    noise: np.ndarray[Any, np.dtype[np.float64]] = np.fft.irfft(spectrum, block)
    noise *= sigma / max(1e-9, float(np.sqrt(np.mean(noise**2))))
    return noise

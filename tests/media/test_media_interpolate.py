"""The recogniser's 8 -> 16 kHz upsampler hands every frame over at once (soxr's streaming
resampler gave ~104 ms bursts, so the recogniser heard the caller up to 100 ms late), keeps a
telephone band tone's level, and puts nothing audible above 4 kHz; the 16 -> 8 kHz decimator in
front of an 8 kHz VAD on a slin16 call does the same the other way."""

from __future__ import annotations

import numpy as np
import pytest

from voxflow.errors import MediaError
from voxflow.media.codecs import Resampler
from voxflow.media.interpolate import Decimator, Interpolator, stt_resampler, vad_resampler


def _tone(hz: float, seconds: float = 1.0, rate: int = 8000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def test_every_20_ms_frame_comes_out_at_once_unlike_soxr() -> None:
    audio = _tone(1000)
    frames = [audio[i : i + 320] for i in range(0, len(audio), 320)]
    ours, soxr = Interpolator(8000, 16000), Resampler(8000, 16000)
    assert [len(ours.process(f)) for f in frames] == [640] * len(frames)
    bursts = [len(soxr.process(f)) for f in frames]
    assert bursts.count(0) > len(frames) // 2  # soxr holds most frames back (why this exists)


def test_streamed_equals_one_piece_and_the_flush_gives_the_delay_back() -> None:
    audio = _tone(700, 0.5)
    whole = Interpolator(8000, 16000)
    one = whole.process(audio) + whole.process(b"", last=True)
    pieces = Interpolator(8000, 16000)
    streamed = b"".join(pieces.process(audio[i : i + 320]) for i in range(0, len(audio), 320))
    assert streamed + pieces.process(b"", last=True) == one
    assert len(one) == 2 * len(audio) + 64  # 16 input samples of delay, flushed


@pytest.mark.parametrize("hz", [300, 1000, 3000])
def test_a_telephone_band_tone_keeps_its_level_and_has_no_image(hz: int) -> None:
    y = np.frombuffer(Interpolator(8000, 16000).process(_tone(hz)), "<i2").astype(float)
    y = y[2000:14000]
    assert y.std() == pytest.approx(10000 / np.sqrt(2), rel=0.01)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    tone, image = (spectrum[np.argmin(abs(freqs - f))] for f in (hz, 8000 - hz))
    assert 20 * np.log10(image / tone) < -70


def test_the_recogniser_gets_it_only_for_an_integer_upsampling() -> None:
    assert isinstance(stt_resampler(8000, 16000), Interpolator)
    assert isinstance(stt_resampler(16000, 16000), Resampler)  # passes pcm16 through
    assert isinstance(stt_resampler(48000, 16000), Resampler)
    with pytest.raises(MediaError, match="integer upsampling"):
        Interpolator(16000, 8000)


def test_the_decimator_hands_every_20_ms_frame_over_at_once_unlike_soxr() -> None:
    audio = _tone(1000, rate=16000)
    frames = [audio[i : i + 640] for i in range(0, len(audio), 640)]
    ours, soxr = Decimator(16000, 8000), Resampler(16000, 8000)
    assert [len(ours.process(f)) for f in frames] == [320] * len(frames)
    assert [len(soxr.process(f)) for f in frames].count(0) > 0  # soxr holds frames back


def test_the_decimator_streamed_equals_one_piece_whatever_the_cut() -> None:
    audio = _tone(700, 0.5, rate=16000)
    whole = Decimator(16000, 8000)
    one = whole.process(audio) + whole.process(b"", last=True)
    pieces = Decimator(16000, 8000)  # odd numbers of samples: the phase carries over
    streamed = b"".join(pieces.process(audio[i : i + 642]) for i in range(0, len(audio), 642))
    assert streamed + pieces.process(b"", last=True) == one
    assert len(one) == len(audio) // 2 + 32  # 16 output samples of delay, flushed
    y = np.frombuffer(one, "<i2").astype(float)[16:4016]  # the delay: 16 samples, 2 ms
    ref = 10000 * np.sin(2 * np.pi * 700 * np.arange(4000) / 8000)
    assert np.abs(y[100:3900] - ref[100:3900]).max() < 0.15 * 10000


@pytest.mark.parametrize(("hz", "level_db"), [(300, 0), (1000, 0), (3000, 0), (5000, -80)])
def test_the_decimator_keeps_the_band_and_stops_what_would_alias(hz: int, level_db: int) -> None:
    y = np.frombuffer(Decimator(16000, 8000).process(_tone(hz, rate=16000)), "<i2")
    rms = y[1000:7000].astype(float).std() / (10000 / np.sqrt(2))
    if level_db == 0:
        assert rms == pytest.approx(1.0, rel=0.01)
    else:
        assert 20 * np.log10(max(rms, 1e-9)) < level_db  # 5 kHz would fold onto 3 kHz


def test_a_vad_gets_the_decimator_only_for_an_integer_downsampling() -> None:
    assert isinstance(vad_resampler(16000, 8000), Decimator)
    assert vad_resampler(8000, 8000) is None
    assert isinstance(vad_resampler(8000, 16000), Resampler)
    with pytest.raises(MediaError, match="integer downsampling"):
        Decimator(8000, 16000)

"""G.711 against ITU reference values and sox; slin16 byte order; soxr resampling."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from voxflow.errors import MediaError
from voxflow.media import codecs
from voxflow.voice.chunk import AudioChunk

ALL_PCM = np.arange(-32768, 32768, dtype="<i2")


def test_itu_reference_values() -> None:
    # mu-law: 0xFF and 0x7F are the two zeros, 0x00/0x80 the extremes (+-32124).
    dec = np.frombuffer(codecs.ulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80, 0xEF])), "<i2")
    assert dec.tolist() == [0, 0, -32124, 32124, 132]
    # A-law: 0xD5/0x55 are +-8 (the smallest level), 0xAA/0x2A the extremes (+-32256).
    dec = np.frombuffer(codecs.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])), "<i2")
    assert dec.tolist() == [8, -8, 32256, -32256]
    assert codecs.ulaw_encode(np.array([0, 32767, -32768], "<i2").tobytes()) == b"\xff\x80\x00"
    assert codecs.alaw_encode(np.array([0, 32767, -32768], "<i2").tobytes()) == b"\xd5\xaa\x2a"


def _g711c_ulaw(code: int) -> int:
    """Sun's g711.c ulaw2linear, written out per code (the reference the tables follow)."""
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def _g711c_alaw(code: int) -> int:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << max(seg - 1, 0)
    return t if a & 0x80 else -t


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_every_code_in_frames_of_any_content(law: str) -> None:
    """The translate-based decoder gives g711.c's value for every code, at any position and
    length (a whole frame of digital silence takes a shortcut: it must be zeros too)."""
    ref = _g711c_ulaw if law == "ulaw" else _g711c_alaw
    rng = np.random.default_rng(7)
    frames = [bytes(range(256)), b"\xff" * 160, b"\x7f" * 160, b"\xff" * 159, b""]
    frames += [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (1, 160, 320)]
    for frame in frames:
        got = np.frombuffer(codecs.decode(frame, law), "<i2").tolist()
        assert got == [ref(c) for c in frame]


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encode_picks_nearest_level(law: str) -> None:
    """Every 16-bit sample maps to a code whose level is within half a quantisation step."""
    enc = np.frombuffer(codecs.encode(ALL_PCM.tobytes(), law), np.uint8)
    levels = np.frombuffer(codecs.decode(bytes(range(256)), law), "<i2").astype(np.int32)
    back = levels[enc]
    ordered = np.unique(levels)
    idx = np.clip(np.searchsorted(ordered, back), 1, len(ordered) - 2)
    step = np.maximum(ordered[idx + 1] - ordered[idx], ordered[idx] - ordered[idx - 1])
    err = np.abs(back - ALL_PCM.astype(np.int32))
    inside = np.abs(ALL_PCM.astype(np.int32)) <= levels.max()
    # Decision thresholds sit half-way between levels; allow the 16->14/13 bit truncation.
    assert np.all(err[inside] <= step[inside] // 2 + 8)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_encode_is_identity_on_codes(law: str) -> None:
    codes = bytes(range(256))
    again = codecs.encode(codecs.decode(codes, law), law)
    if law == "ulaw":
        # 0x7F (negative zero) re-encodes as 0xFF (positive zero).
        assert again == codes.replace(b"\x7f", b"\xff")
    else:
        assert again == codes


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
@pytest.mark.parametrize(("law", "sox_enc"), [("ulaw", "u-law"), ("alaw", "a-law")])
def test_matches_sox(law: str, sox_enc: str, tmp_path: Path) -> None:
    codes = bytes(range(256))
    (tmp_path / "c.raw").write_bytes(codes)
    subprocess.run(
        ["sox", "-D", "-r", "8000", "-e", sox_enc, "-b", "8", "-c", "1", "-t", "raw",
         str(tmp_path / "c.raw"), "-e", "signed", "-b", "16", "-L", "-t", "raw",
         str(tmp_path / "d.raw")],
        check=True,
    )  # fmt: skip
    assert codecs.decode(codes, law) == (tmp_path / "d.raw").read_bytes()
    # A 440 Hz tone: sox rounds where the reference g711.c truncates, so codes may differ by
    # one step exactly at decision thresholds; everything else must be identical.
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * np.pi * 440 * t) * 20000).astype("<i2")
    (tmp_path / "t.raw").write_bytes(tone.tobytes())
    subprocess.run(
        ["sox", "-D", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-L", "-t", "raw",
         str(tmp_path / "t.raw"), "-e", sox_enc, "-b", "8", "-t", "raw",
         str(tmp_path / "o.raw")],
        check=True,
    )  # fmt: skip
    ref = np.frombuffer((tmp_path / "o.raw").read_bytes(), np.uint8).astype(int)
    ours = np.frombuffer(codecs.encode(tone.tobytes(), law), np.uint8).astype(int)
    assert len(ref) == len(ours) == 8000
    assert np.mean(ref == ours) > 0.95
    assert np.all(np.abs(ref - ours) <= 1)


def test_slin16_is_big_endian() -> None:
    pcm = np.array([1, -2, 0x1234], "<i2").tobytes()
    wire = codecs.encode(pcm, "slin16")
    assert wire == b"\x00\x01\xff\xfe\x12\x34"
    assert codecs.decode(wire, "slin16") == pcm


def test_silence_decodes_to_zero() -> None:
    for name in ("ulaw", "alaw", "slin16"):
        pcm = codecs.decode(codecs.silence(name, 160), name)
        assert np.abs(np.frombuffer(pcm, "<i2")).max() <= 8


def test_resample_keeps_a_tone() -> None:
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * np.pi * 1000 * t) * 10000).astype("<i2").tobytes()
    up = np.frombuffer(codecs.resample(tone, 8000, 16000), "<i2")
    assert len(up) == 16000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(int(np.argmax(spectrum)) - 1000) <= 1  # 1 Hz bins over 1 s
    down = codecs.resample(up.tobytes(), 16000, 8000)
    assert len(down) == len(tone)


def test_streaming_resampler_matches_length_and_is_continuous() -> None:
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * np.pi * 300 * t) * 10000).astype("<i2").tobytes()
    rs = codecs.Resampler(8000, 16000)
    pieces = [rs.process(tone[i : i + 320]) for i in range(0, len(tone), 320)]
    pieces.append(rs.process(b"", last=True))
    out = np.frombuffer(b"".join(pieces), "<i2").astype(np.int32)
    assert abs(len(out) - 16000) <= 2
    # No clicks at chunk edges: a 300 Hz tone at 16 kHz moves < 1300 per sample.
    assert np.abs(np.diff(out[100:-100])).max() < 1400


def test_transcode_chunk() -> None:
    pcm8 = (np.sin(np.arange(160) / 5) * 8000).astype("<i2").tobytes()
    chunk = AudioChunk("pcm16", 8000, pcm8)
    ulaw = codecs.transcode(chunk, "ulaw")
    assert len(ulaw) == 160
    slin = codecs.transcode(AudioChunk("ulaw", 8000, ulaw), "slin16")
    assert len(slin) == 640
    assert codecs.to_pcm16(AudioChunk("slin16", 16000, slin)) == codecs.decode(slin, "slin16")


def test_bad_input_is_a_media_error() -> None:
    with pytest.raises(MediaError):
        codecs.encode(b"\x00\x01\x02", "ulaw")
    with pytest.raises(MediaError):
        codecs.decode(b"", "opus")
    with pytest.raises(MediaError):
        codecs.codec_spec("g729")
    assert codecs.codec_for_payload_type(118) == codecs.CODECS["slin16"]
    assert codecs.codec_for_payload_type(3) is None
    assert codecs.CODECS["ulaw"].frame_bytes() == 160
    assert codecs.CODECS["slin16"].frame_bytes() == 640
    assert codecs.CODECS["slin16"].frame_samples() == 320

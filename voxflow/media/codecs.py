"""Wire codecs: G.711 mu-law / A-law, slin16, and 8 kHz <-> 16 kHz resampling. Vectorised.

G.711 uses 256-entry decode and 65536-entry encode numpy lookup tables built once at import from
the ITU-T G.711 segment rules (the same values as the reference ``g711.c`` that sox and Asterisk
use). ``slin16`` on the wire is big-endian; providers use ``pcm16`` (signed 16-bit little-endian).
Resampling uses ``soxr`` (maintained, streaming, high quality); the deprecated ``audioop`` is not
used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

from voxflow.errors import MediaError
from voxflow.voice.chunk import AudioChunk

__all__ = [
    "CODECS",
    "CodecSpec",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "codec_for_payload_type",
    "codec_spec",
    "decode",
    "encode",
    "pcm16_to_slin16",
    "resample",
    "silence",
    "slin16_to_pcm16",
    "to_pcm16",
    "transcode",
    "ulaw_decode",
    "ulaw_encode",
]


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """A codec as carried over RTP: static payload type, clock rate, bytes per sample."""

    name: str
    payload_type: int
    sample_rate: int
    sample_width: int

    def frame_bytes(self, ms: int = 20) -> int:
        """Payload size of ``ms`` milliseconds."""
        return self.sample_rate * ms // 1000 * self.sample_width

    def frame_samples(self, ms: int = 20) -> int:
        """Samples (RTP timestamp step) in ``ms`` milliseconds."""
        return self.sample_rate * ms // 1000


CODECS: dict[str, CodecSpec] = {
    "ulaw": CodecSpec("ulaw", 0, 8000, 1),
    "alaw": CodecSpec("alaw", 8, 8000, 1),
    "slin16": CodecSpec("slin16", 118, 16000, 2),
}
_BY_PT = {spec.payload_type: spec for spec in CODECS.values()}


def codec_spec(name: str) -> CodecSpec:
    """The :class:`CodecSpec` of a wire codec name; :class:`MediaError` when unknown."""
    try:
        return CODECS[name]
    except KeyError:
        known = ", ".join(sorted(CODECS))
        raise MediaError(f"unknown codec {name!r} (known: {known})") from None


def codec_for_payload_type(payload_type: int) -> CodecSpec | None:
    """The codec for a static RTP payload type, or None."""
    return _BY_PT.get(payload_type)


# --- G.711 tables -------------------------------------------------------------------------------

_I16 = npt.NDArray[np.int16]
_U8 = npt.NDArray[np.uint8]


def _ulaw_decode_table() -> _I16:
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t = t << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_table() -> _I16:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _ulaw_encode_table() -> _U8:
    pcm = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
    val = pcm >> 2
    mask = np.where(val < 0, 0x7F, 0xFF)
    val = np.minimum(np.abs(val), 8159) + (0x84 >> 2)
    seg_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(seg_end, val, side="left")
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((val >> (seg + 1)) & 0x0F))
    return (uval ^ mask).astype(np.uint8)


def _alaw_encode_table() -> _U8:
    pcm = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
    val = pcm >> 3
    mask = np.where(val >= 0, 0xD5, 0x55)
    val = np.where(val >= 0, val, -val - 1)
    seg_end = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(seg_end, val, side="left")
    quant = np.where(seg < 2, val >> 1, val >> np.maximum(seg, 1)) & 0x0F
    aval = np.where(seg >= 8, 0x7F, (seg << 4) | quant)
    return (aval ^ mask).astype(np.uint8)


_ULAW_DEC = _ulaw_decode_table()
_ALAW_DEC = _alaw_decode_table()
_ULAW_ENC = _ulaw_encode_table()
_ALAW_ENC = _alaw_encode_table()
_LE_I16 = np.dtype("<i2")
_BE_I16 = np.dtype(">i2")


def _pcm_index(pcm16: bytes) -> npt.NDArray[np.uint16]:
    if len(pcm16) % 2:
        raise MediaError(f"pcm16 audio has an odd length ({len(pcm16)} bytes)")
    return np.frombuffer(pcm16, dtype="<u2")


def ulaw_encode(pcm16: bytes) -> bytes:
    """pcm16 little-endian -> G.711 mu-law, one byte per sample."""
    return _ULAW_ENC[_pcm_index(pcm16)].tobytes()


def _byte_tables(table: _I16) -> tuple[bytes, bytes]:
    """``bytes.translate`` tables giving the low and the high byte of each code's sample."""
    u16 = table.astype(np.int32) & 0xFFFF
    return bytes((u16 & 0xFF).astype(np.uint8)), bytes((u16 >> 8).astype(np.uint8))


_ULAW_LO, _ULAW_HI = _byte_tables(_ULAW_DEC)
_ALAW_LO, _ALAW_HI = _byte_tables(_ALAW_DEC)
_ULAW_ZERO = b"\xff" * 160  # a 20 ms frame of digital silence (both 0xFF and 0x7F decode to 0)
_ZERO_PCM = bytes(320)


def _g711_decode(data: bytes, lo: bytes, hi: bytes) -> bytes:
    """Table decode with two ``bytes.translate`` and an interleave: ~2.5x faster than numpy
    indexing on a 160-byte frame (numpy's per-call overhead dominates at that size)."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(lo)
    out[1::2] = data.translate(hi)
    return bytes(out)


def ulaw_decode(data: bytes) -> bytes:
    """G.711 mu-law -> pcm16 little-endian."""
    if data == _ULAW_ZERO:  # what a quiet line sends most of the time
        return _ZERO_PCM
    return _g711_decode(bytes(data), _ULAW_LO, _ULAW_HI)


def alaw_encode(pcm16: bytes) -> bytes:
    """pcm16 little-endian -> G.711 A-law, one byte per sample."""
    return _ALAW_ENC[_pcm_index(pcm16)].tobytes()


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law -> pcm16 little-endian."""
    return _g711_decode(bytes(data), _ALAW_LO, _ALAW_HI)


def slin16_to_pcm16(data: bytes) -> bytes:
    """slin16 (big-endian, as on the wire) -> pcm16 little-endian."""
    if len(data) % 2:
        raise MediaError(f"slin16 audio has an odd length ({len(data)} bytes)")
    return np.frombuffer(data, dtype=_BE_I16).astype(_LE_I16).tobytes()


def pcm16_to_slin16(pcm16: bytes) -> bytes:
    """pcm16 little-endian -> slin16 big-endian."""
    if len(pcm16) % 2:
        raise MediaError(f"pcm16 audio has an odd length ({len(pcm16)} bytes)")
    return np.frombuffer(pcm16, dtype=_LE_I16).astype(_BE_I16).tobytes()


def _pcm16_identity(data: bytes) -> bytes:
    if len(data) % 2:
        raise MediaError(f"pcm16 audio has an odd length ({len(data)} bytes)")
    return data


_DECODERS = {
    "ulaw": ulaw_decode,
    "alaw": alaw_decode,
    "slin16": slin16_to_pcm16,
    "pcm16": _pcm16_identity,
}
_ENCODERS = {
    "ulaw": ulaw_encode,
    "alaw": alaw_encode,
    "slin16": pcm16_to_slin16,
    "pcm16": _pcm16_identity,
}


def decode(payload: bytes, codec: str) -> bytes:
    """Wire payload of ``codec`` (ulaw, alaw, slin16, pcm16) -> pcm16 little-endian."""
    try:
        fn = _DECODERS[codec]
    except KeyError:
        raise MediaError(f"cannot decode unknown codec {codec!r}") from None
    return fn(payload)


def encode(pcm16: bytes, codec: str) -> bytes:
    """pcm16 little-endian -> wire payload of ``codec`` (ulaw, alaw, slin16, pcm16)."""
    try:
        fn = _ENCODERS[codec]
    except KeyError:
        raise MediaError(f"cannot encode to unknown codec {codec!r}") from None
    return fn(pcm16)


def silence(codec: str, samples: int) -> bytes:
    """``samples`` samples of digital silence in ``codec``."""
    if codec == "ulaw":
        return b"\xff" * samples
    if codec == "alaw":
        return b"\xd5" * samples
    if codec in ("slin16", "pcm16"):
        return bytes(2 * samples)
    raise MediaError(f"no silence for unknown codec {codec!r}")


def resample(pcm16: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole pcm16 buffer in one go (use :class:`Resampler` for a stream)."""
    if from_rate == to_rate or not pcm16:
        return pcm16
    samples = np.frombuffer(_pcm16_identity(pcm16), dtype=_LE_I16)
    out = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype=_LE_I16).tobytes()


class Resampler:
    """Streaming pcm16 resampler (keeps filter state between chunks, no clicks at edges)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise MediaError(f"bad sample rates {from_rate} -> {to_rate}")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream: soxr.ResampleStream | None = None
        if from_rate != to_rate:
            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")

    def process(self, pcm16: bytes, *, last: bool = False) -> bytes:
        """Resample the next piece; ``last=True`` flushes the filter tail."""
        if self._stream is None:
            return _pcm16_identity(pcm16)
        samples = np.frombuffer(_pcm16_identity(pcm16), dtype=_LE_I16).astype(np.int16)
        out = self._stream.resample_chunk(samples, last=last)
        return np.asarray(out, dtype=_LE_I16).tobytes()


def to_pcm16(chunk: AudioChunk, sample_rate: int | None = None) -> bytes:
    """Decode a chunk to pcm16, resampled to ``sample_rate`` when given (one-shot)."""
    pcm = decode(chunk.payload, chunk.codec)
    if sample_rate is not None and sample_rate != chunk.sample_rate:
        pcm = resample(pcm, chunk.sample_rate, sample_rate)
    return pcm


def transcode(chunk: AudioChunk, codec: str) -> bytes:
    """Payload of ``chunk`` in wire ``codec`` at that codec's rate (one-shot resampling)."""
    if chunk.codec == codec:
        return chunk.payload
    target_rate = codec_spec(codec).sample_rate if codec != "pcm16" else chunk.sample_rate
    return encode(to_pcm16(chunk, target_rate), codec)

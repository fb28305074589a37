"""Audio for the sandbox: 20 ms frames, wire codecs (over voxflow.media.codecs), sounds, tones,
speech.

Frames are numpy int16 arrays of 160 samples (8 kHz, 20 ms); ``None`` means silence.
Sounds (``sound:hello-world``...) are rendered once with espeak-ng and cached on disk;
files from a sounds directory (``.wav``, ``.sln``, ``.ulaw``, ``.alaw``) win over the
built-in texts. Tones are computed by formula.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import os
import re
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxflow.errors import VoxflowError
from voxflow.media import codecs
from voxflow.voice.wav import pcm16_to_wav

__all__ = [
    "BUILTIN_SOUNDS",
    "DECODE_TABLES",
    "ENCODE_TABLES",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "Frame",
    "SoundBank",
    "decode_payload",
    "encode_frame",
    "espeak_pcm16",
    "frames_from_pcm16",
    "number_words",
    "pcm16_from_frames",
    "slin16_rows_to_8k",
    "tone_frames",
    "upsample_16k",
    "wav_bytes",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
Frame = npt.NDArray[np.int16]

BUILTIN_SOUNDS: dict[str, str] = {
    "hello-world": "Hello world.",
    "goodbye": "Goodbye.",
    "vm-goodbye": "Goodbye.",
    "demo-congrats": "Congratulations. You have successfully installed and executed the "
    "voxflow sandbox.",
    "vm-intro": "Please leave your message after the tone. When done, hang up, "
    "or press the pound key.",
    "vm-login": "Mailbox?",
    "vm-password": "Password.",
    "vm-incorrect": "Login incorrect.",
    "vm-youhave": "You have",
    "vm-message": "message",
    "vm-messages": "messages",
    "vm-nomore": "No more messages.",
    "pls-try-again": "Please try again.",
    "please-try-again": "Please try again.",
    "invalid": "I am sorry, that is not a valid extension. Please try again.",
    "pbx-invalid": "I am sorry, that is not a valid extension. Please try again.",
    "pbx-transfer": "Transfer.",
    "transfer": "Please hold while I try that extension.",
    "queue-thankyou": "Thank you for your patience.",
    "agent-pass": "Please enter your password followed by the pound key.",
    "enter-some-digits": "Please enter some digits.",
    "thank-you-for-calling": "Thank you for calling.",
    "welcome": "Welcome.",
    "you-entered": "You entered",
    "auth-thankyou": "Thank you.",
}

_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_DIGIT_NAMES = {
    **{str(i): _SMALL[i] for i in range(10)},
    "*": "star",
    "#": "pound",
    "-": "dash",
    "+": "plus",
}
WORD_SOUNDS: list[str] = sorted(
    {*_SMALL, *(t for t in _TENS if t != "_"), "hundred", "thousand", "million", "minus"}
    | {"star", "pound", "dash", "plus"}
)


# --- codecs: voxflow.media.codecs, seen as 8 kHz int16 frames -----------------------------
# The G.711 tables are the media package's (obtained through its public functions once), so
# the sandbox and voxflow's own media path can never disagree about a byte.

_ALL_PCM16 = np.arange(65536, dtype="<u2").tobytes()  # every int16 value, by its bit pattern
ENCODE_TABLES: dict[str, npt.NDArray[np.uint8]] = {
    "ulaw": np.frombuffer(codecs.ulaw_encode(_ALL_PCM16), dtype=np.uint8),
    "alaw": np.frombuffer(codecs.alaw_encode(_ALL_PCM16), dtype=np.uint8),
}
DECODE_TABLES: dict[str, Frame] = {
    "ulaw": np.frombuffer(codecs.ulaw_decode(bytes(range(256))), dtype="<i2").astype(np.int16),
    "alaw": np.frombuffer(codecs.alaw_decode(bytes(range(256))), dtype="<i2").astype(np.int16),
}


def upsample_16k(frames: Frame) -> Frame:
    """8 kHz -> 16 kHz along the last axis by linear interpolation (cheap, per 20 ms frame)."""
    up = np.repeat(frames, 2, axis=-1)
    up[..., 1:-1:2] = (frames[..., :-1].astype(np.int32) + frames[..., 1:]) // 2
    return up


def encode_frame(frame: Frame, codec: str) -> bytes:
    """Encode an 8 kHz frame for the wire: ``ulaw``, ``alaw`` or ``slin16`` (16 kHz, big-endian)."""
    table = ENCODE_TABLES.get(codec)
    if table is not None:
        return table[frame.view(np.uint16)].tobytes()
    if codec == "slin16":
        return codecs.pcm16_to_slin16(upsample_16k(frame).astype("<i2").tobytes())
    raise ValueError(f"unsupported codec {codec!r}")


def slin16_rows_to_8k(raw: npt.NDArray[np.uint8]) -> Frame:
    """slin16 wire bytes (big-endian 16 kHz; one row per packet, or 1-D) -> 8 kHz samples by
    pair averaging."""
    wide = raw[..., : raw.shape[-1] // 4 * 4].view(">i2").astype(np.int32)
    return ((wide[..., 0::2] + wide[..., 1::2]) // 2).astype(np.int16)


def decode_payload(payload: bytes, codec: str) -> Frame:
    """Decode a wire payload to 8 kHz samples (slin16 is downsampled by pair averaging)."""
    table = DECODE_TABLES.get(codec)
    if table is not None:
        return table[np.frombuffer(payload, dtype=np.uint8)]
    if codec == "slin16":
        return slin16_rows_to_8k(np.frombuffer(payload, dtype=np.uint8))
    raise ValueError(f"unsupported codec {codec!r}")


# --- frames <-> pcm ------------------------------------------------------------------------


def frames_from_pcm16(pcm: bytes | Frame) -> list[Frame]:
    """Split 8 kHz pcm16 into 20 ms frames (the last one zero-padded)."""
    arr = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes | bytearray) else pcm
    arr = arr.astype(np.int16)
    pad = (-len(arr)) % FRAME_SAMPLES
    if pad:
        arr = np.concatenate([arr, np.zeros(pad, dtype=np.int16)])
    return [arr[i : i + FRAME_SAMPLES] for i in range(0, len(arr), FRAME_SAMPLES)]


def pcm16_from_frames(frames: list[Frame | None]) -> bytes:
    """Join frames (``None`` = silence) into little-endian pcm16 bytes."""
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    parts = [silence if f is None else f for f in frames]
    if not parts:
        return b""
    return np.concatenate(parts).astype("<i2").tobytes()


def wav_bytes(pcm16: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit WAV file holding ``pcm16`` (8 kHz unless ``rate`` says otherwise)."""
    return pcm16_to_wav(pcm16, rate)


def _resample(pcm: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    if rate == SAMPLE_RATE:
        return pcm
    out = codecs.resample(pcm.astype("<i2").tobytes(), rate, SAMPLE_RATE)
    return np.frombuffer(out, dtype="<i2").astype(np.int16)


def _read_wav(data: bytes) -> npt.NDArray[np.int16]:
    with wave.open(io.BytesIO(data), "rb") as w:
        rate, width, chans = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError("only 16-bit WAV files are supported")
    arr = np.frombuffer(raw, dtype="<i2")
    if chans > 1:
        arr = arr.reshape(-1, chans)[:, 0]
    return _resample(arr.astype(np.int16), rate)


# --- speech --------------------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxflow" / "sandbox-sounds"


def _espeak_cmd(text: str, voice: str, speed: int) -> list[str]:
    return ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), "--", text]


def _cache_path(text: str, voice: str, speed: int) -> Path:
    key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:20]
    return _cache_dir() / f"{key}.sln"


def espeak_pcm16(text: str, *, voice: str = "en-us", speed: int = 160) -> bytes:
    """Render ``text`` with espeak-ng to 8 kHz pcm16 (blocking; cached on disk)."""
    path = _cache_path(text, voice, speed)
    if path.exists():
        return path.read_bytes()
    proc = subprocess.run(_espeak_cmd(text, voice, speed), capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()}")
    pcm = _read_wav(_fix_stream_wav(proc.stdout)).astype("<i2").tobytes()
    _store(path, pcm)
    return pcm


async def espeak_pcm16_async(text: str, *, voice: str = "en-us", speed: int = 160) -> bytes:
    """Like :func:`espeak_pcm16` without blocking the event loop (through
    :class:`voxflow.media.tts_espeak.EspeakTTS`). Raises ``RuntimeError`` when espeak-ng fails."""
    path = _cache_path(text, voice, speed)
    if path.exists():
        return path.read_bytes()
    from voxflow.media.tts_espeak import EspeakTTS

    try:
        tts = EspeakTTS(voice=voice, rate=speed, sample_rate=SAMPLE_RATE)
        pcm = b"".join([piece async for piece in tts.synthesize(text)])
    except VoxflowError as exc:
        raise RuntimeError(f"espeak-ng failed: {exc}") from exc
    if not pcm:
        raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
    _store(path, pcm)
    return pcm


_VOICE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,12})?")
CALLER_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f2")


def check_caller_voice(voice: str, speed: int) -> None:
    """``ValueError`` unless ``voice`` looks like an espeak-ng voice (``en-us``, ``en-gb+f3``)
    and ``speed`` is 80-450 words per minute."""
    if not _VOICE.fullmatch(voice):
        examples = ", ".join(CALLER_VOICES)
        raise ValueError(f"not an espeak-ng voice name: {voice!r} (e.g. {examples})")
    if not 80 <= speed <= 450:
        raise ValueError(f"speed must be 80-450 words per minute, not {speed}")


def add_noise(pcm16: bytes, snr_db: float, *, seed: int = 0) -> bytes:
    """``pcm16`` plus white noise ``snr_db`` below the speech's power (seeded, repeatable)."""
    a = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], "<i2").astype(np.float64)
    loud = a[np.abs(a) > 200]
    power = float(np.mean(loud**2)) if len(loud) else 1.0
    sigma = math.sqrt(power / 10 ** (snr_db / 10))
    noise = np.random.default_rng(seed).normal(0.0, sigma, len(a))
    return np.clip(np.rint(a + noise), -32768, 32767).astype("<i2").tobytes()


def _fix_stream_wav(data: bytes) -> bytes:
    """espeak-ng writes a streaming WAV with bogus sizes; patch them so ``wave`` reads it."""
    if data[:4] != b"RIFF":
        return data
    buf = bytearray(data)
    buf[4:8] = (len(buf) - 8).to_bytes(4, "little")
    idx = buf.find(b"data", 12)
    if idx >= 0:
        buf[idx + 4 : idx + 8] = (len(buf) - idx - 8).to_bytes(4, "little")
    return bytes(buf)


def _store(path: Path, pcm: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pcm)
        tmp.replace(path)
    except OSError as exc:  # a read-only home must not break calls
        log.debug("could not cache sound %s: %s", path, exc)


def number_words(n: int) -> list[str]:
    """English words for an integer, as separate sounds (``number:`` playback)."""
    if n < 0:
        return ["minus", *number_words(-n)]
    if n < 20:
        return [_SMALL[n]]
    if n < 100:
        return [_TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    for size, word in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = number_words(n % size) if n % size else []
            return [*number_words(n // size), word, *rest]
    return []  # pragma: no cover


# --- tones ---------------------------------------------------------------------------------

_NAMED_TONES = {
    "dial": "350+440",
    "ring": "440+480/2000,0/4000",
    "busy": "480+620/500,0/500",
    "congestion": "480+620/250,0/250",
    "callwaiting": "440/300,0/10000",
    "beep": "1000/250",
    "info": "!950/330,!1400/330,!1800/330,0",
}
_DTMF = {
    "1": (697, 1209),
    "2": (697, 1336),
    "3": (697, 1477),
    "A": (697, 1633),
    "4": (770, 1209),
    "5": (770, 1336),
    "6": (770, 1477),
    "B": (770, 1633),
    "7": (852, 1209),
    "8": (852, 1336),
    "9": (852, 1477),
    "C": (852, 1633),
    "*": (941, 1209),
    "0": (941, 1336),
    "#": (941, 1477),
    "D": (941, 1633),
}
_TONE_PART = re.compile(r"^(!?)(\d+(?:[+*]\d+)?)(?:/(\d+))?$")


def _tone_segment(freqs: list[float], ms: int, amplitude: float = 6000.0) -> Frame:
    n = SAMPLE_RATE * ms // 1000
    t = np.arange(n) / SAMPLE_RATE
    sig = np.zeros(n)
    for f in freqs:
        if f > 0:
            sig += np.sin(2 * math.pi * f * t)
    if freqs and any(f > 0 for f in freqs):
        sig *= amplitude / max(1, len([f for f in freqs if f > 0]))
    return sig.astype(np.int16)


def parse_tone(spec: str) -> list[tuple[list[float], int | None, bool]] | None:
    """Parse a tone (named, ``dtmf:5`` or Asterisk playtones syntax ``440+480/2000,0/4000``)
    into (frequencies, ms or None for continuous, once-only) parts; ``None`` if invalid."""
    spec = spec.split(";", 1)[0].strip()
    if spec.lower().startswith("dtmf:") and spec[5:].upper() in _DTMF:
        lo, hi = _DTMF[spec[5:].upper()]
        return [([float(lo), float(hi)], 100, True), ([0.0], 100, True)]
    spec = _NAMED_TONES.get(spec.lower(), spec)
    parts: list[tuple[list[float], int | None, bool]] = []
    for raw in spec.split(","):
        m = _TONE_PART.match(raw.strip())
        if not m:
            return None
        freqs = [float(x) for x in re.split(r"[+*]", m.group(2))]
        parts.append((freqs, int(m.group(3)) if m.group(3) else None, bool(m.group(1))))
    return parts or None


def tone_frames(spec: str) -> Iterator[Frame] | None:
    """Frames of a tone, repeating its cadence forever like Asterisk's indications
    (``!`` parts play once); ``None`` if the spec is invalid."""
    parts = parse_tone(spec)
    if parts is None:
        return None

    segments = [
        (frames_from_pcm16(_tone_segment(freqs, ms if ms is not None else 1000)), ms, once)
        for freqs, ms, once in parts
    ]

    def gen() -> Iterator[Frame]:
        first = True
        while True:
            for frames, ms, once in segments:
                if once and not first:
                    continue
                if ms is None:  # a continuous part never ends
                    while True:
                        yield from frames
                yield from frames
            first = False
            if all(once for _, _, once in segments):
                return

    return gen()


# --- the sound bank ------------------------------------------------------------------------


class SoundBank:
    """Named sounds as 8 kHz frames: files from ``sounds_dirs`` first, then the built-in
    espeak-ng prompts and number words; plus sounds added at run time."""

    def __init__(self, sounds_dirs: list[Path] | None = None, *, voice: str = "en-us") -> None:
        self.voice = voice
        self.dirs = [d for d in (sounds_dirs or []) if d.is_dir()]
        self._pcm: dict[str, bytes] = {}

    def add(self, name: str, pcm16: bytes) -> None:
        """Register (or replace) a sound from 8 kHz pcm16."""
        self._pcm[name] = pcm16

    def names(self) -> list[str]:
        """Every sound name this bank can play."""
        names = set(self._pcm) | set(BUILTIN_SOUNDS) | {f"digits/{w}" for w in _SMALL[:10]}
        for d in self.dirs:
            for p in d.rglob("*"):
                if p.suffix in {".wav", ".sln", ".ulaw", ".alaw"}:
                    names.add(str(p.relative_to(d).with_suffix("")))
        return sorted(names)

    def _from_dirs(self, name: str) -> bytes | None:
        for d in self.dirs:
            for ext in (".sln", ".wav", ".ulaw", ".alaw"):
                p = d / f"{name}{ext}"
                if p.is_file():
                    data = p.read_bytes()
                    if ext == ".wav":
                        return _read_wav(data).astype("<i2").tobytes()
                    if ext == ".sln":
                        return data
                    return decode_payload(data, ext[1:]).astype("<i2").tobytes()
        return None

    def _text_for(self, name: str) -> str | None:
        if name in BUILTIN_SOUNDS:
            return BUILTIN_SOUNDS[name]
        if name.startswith("digits/") and name[7:] in WORD_SOUNDS:
            return name[7:]
        if name in WORD_SOUNDS:
            return name
        return None

    def pcm(self, name: str) -> bytes | None:
        """The sound's pcm16, rendering (and caching) it if needed; ``None`` if unknown."""
        if name in self._pcm:
            return self._pcm[name]
        if "/" in name and ".." in name.split("/"):
            return None
        data = self._from_dirs(name)
        if data is None:
            if name == "beep":
                data = _tone_segment([1000.0], 250).astype("<i2").tobytes()
            elif name.startswith("silence/") and name[8:].isdigit():
                data = bytes(SAMPLE_RATE * 2 * int(name[8:]))
            else:
                text = self._text_for(name)
                if text is None:
                    return None
                data = espeak_pcm16(text, voice=self.voice)
        self._pcm[name] = data
        return data

    async def warm(self) -> None:
        """Render every built-in prompt and number word ahead of time (cached on disk)."""
        texts = [(n, t) for n, t in BUILTIN_SOUNDS.items() if n not in self._pcm]
        texts += [(w, w) for w in WORD_SOUNDS if w not in self._pcm]
        sem = asyncio.Semaphore(4)

        async def one(name: str, text: str) -> None:
            async with sem:
                try:
                    self._pcm[name] = await espeak_pcm16_async(text, voice=self.voice)
                except (OSError, RuntimeError) as exc:
                    log.warning("could not render sound %s: %s", name, exc)

        await asyncio.gather(*(one(n, t) for n, t in texts))
        for d in _SMALL[:10]:
            if d in self._pcm:
                self._pcm[f"digits/{d}"] = self._pcm[d]

    def digit_pcm(self, ch: str) -> bytes | None:
        """The spoken name of one digit or symbol (``digits:`` playback)."""
        word = _DIGIT_NAMES.get(ch)
        return self.pcm(word) if word else None

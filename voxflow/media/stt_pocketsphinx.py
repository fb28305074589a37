"""Offline speech-to-text with pocketsphinx (its PyPI wheel carries the en-US model).

Finding that shapes this module: free-form recognition (the bundled n-gram model) of espeak-ng
speech is poor, but with a JSGF grammar listing the expected ``phrases`` it is accurate; adding
filler-word loops to the grammar makes it markedly worse, so fillers are opt-in. When phrases are
given the grammar is used, otherwise the free language model. A grammar result that stopped
part-way through a phrase (pocketsphinx returns the best partial path when no final state was
reached) is completed when it is a prefix of exactly one phrase.

Second finding: pocketsphinx often fails on clean audio with stretches of exact digital silence
(espeak output, slin16 legs, zero-filled gaps), while the same audio through mu-law decodes fine;
its own ``dither`` (half a bit, time-seeded, so not repeatable) does not help. Adding Gaussian
noise of sigma 8 LSB (-72 dBFS, below any telephone line's noise) before decoding fixed all
misses on a set of 66 espeak utterances (plain, slin16, mu-law, 5 % loss). The noise is seeded,
so a given utterance always gets the same transcript.

Decoding runs at 16 kHz (8 kHz call audio is upsampled by the media path) in a worker thread, off
the event loop, over the whole utterance at ``finish`` (batch CMN; see ``feed``). Decoders take
~0.3 s to build, so they are pooled and reused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from voxflow.errors import ConfigError, ProviderError
from voxflow.voice.providers import Transcript

__all__ = ["PocketSphinxSTT", "PocketSphinxStream", "phrases_to_jsgf"]

log = logging.getLogger(__name__)

_DIGITS = "zero one two three four five six seven eight nine".split()
_MAX_BYTES = 16000 * 2 * 120  # two minutes of 16 kHz pcm16 per utterance
_DITHER_SIGMA = 8.0  # LSB of Gaussian noise added before decoding (see the module docstring)


def _words(phrase: str) -> list[str]:
    out: list[str] = []
    for token in re.findall(r"[a-z0-9']+", phrase.lower()):
        if token.isdigit():
            out.extend(_DIGITS[int(d)] for d in token)
        else:
            out.append(token)
    return out


def phrases_to_jsgf(phrases: Sequence[Sequence[str]], fillers: Sequence[str] = ()) -> str:
    """A JSGF grammar accepting exactly one of ``phrases`` (lists of dictionary words), with at
    most one optional filler word before and after when ``fillers`` are given."""
    alts = " | ".join("(" + " ".join(words) + ")" for words in phrases)
    if fillers:
        fill = " | ".join(fillers)
        body = f"public <s> = [<f>] <p> [<f>];\n<p> = {alts};\n<f> = {fill};\n"
    else:
        body = f"public <s> = {alts};\n"
    return "#JSGF V1.0;\ngrammar voxflow;\n" + body


class PocketSphinxSTT:
    """``SpeechToText`` on pocketsphinx. ``fillers`` are optional words allowed around a phrase."""

    sample_rate = 16000

    def __init__(self, *, fillers: Sequence[str] = (), pool_size: int = 4) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ConfigError("pocketsphinx is not installed (pip install pocketsphinx)") from exc
        self._ps: Any = pocketsphinx
        self.fillers = tuple(w for f in fillers for w in _words(f))
        self.pool_size = pool_size
        self._pool: list[Any] = []
        self._lock = threading.Lock()

    def _new_decoder(self) -> Any:
        return self._ps.Decoder(samprate=self.sample_rate, loglevel="FATAL", dither=False)

    def _take(self) -> Any:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return self._new_decoder()

    def _give(self, decoder: Any) -> None:
        with self._lock:
            if len(self._pool) < self.pool_size:
                self._pool.append(decoder)

    async def warm_up(self, count: int = 1) -> None:
        """Build ``count`` decoders ahead of the first call (they take ~0.3 s each)."""
        made = [await asyncio.to_thread(self._new_decoder) for _ in range(count)]
        for d in made:
            self._give(d)

    async def open_stream(
        self, *, phrases: Sequence[str] | None = None, language: str | None = None
    ) -> PocketSphinxStream:
        """Start an utterance; ``phrases`` select grammar mode. Only English is bundled."""
        if language and not language.lower().startswith("en"):
            raise ConfigError(f"pocketsphinx has only the en-US model, not {language!r}")
        decoder = await asyncio.to_thread(self._take)
        try:
            grammar = await asyncio.to_thread(self._activate, decoder, phrases or ())
        except BaseException:
            self._give(decoder)
            raise
        return PocketSphinxStream(self, decoder, grammar)

    def _activate(self, decoder: Any, phrases: Sequence[str]) -> list[list[str]] | None:
        known: list[list[str]] = []
        for phrase in phrases:
            words = _words(phrase)
            missing = [w for w in words if decoder.lookup_word(w) is None]
            if not words:
                continue
            if missing:
                log.warning("phrase %r skipped: not in the dictionary: %s", phrase, missing)
                continue
            known.append(words)
        if not known:
            if phrases:
                log.warning("no usable phrase in %r: using free recognition", list(phrases))
            decoder.activate_search()
            decoder.start_utt()
            return None
        fillers = [w for w in self.fillers if decoder.lookup_word(w) is not None]
        jsgf = phrases_to_jsgf(known, fillers)
        name = "g" + hashlib.sha1(jsgf.encode()).hexdigest()[:16]
        try:
            decoder.activate_search(name)
        except KeyError:
            try:
                decoder.add_jsgf_string(name, jsgf)
            except (ValueError, RuntimeError) as exc:
                raise ProviderError(f"pocketsphinx rejected the grammar: {exc}") from exc
            decoder.activate_search(name)
        decoder.start_utt()
        return known


class PocketSphinxStream:
    """One utterance. ``feed`` pcm16 at 16 kHz; ``finish`` returns the transcript."""

    def __init__(self, owner: PocketSphinxSTT, decoder: Any, grammar: list[list[str]] | None):
        self._owner = owner
        self._decoder: Any | None = decoder
        self._grammar = grammar
        self._buf = bytearray()
        self._lock = asyncio.Lock()

    async def feed(self, pcm: bytes) -> None:
        """Add audio. It is decoded in a worker thread at ``finish`` as one utterance: batch
        cepstral-mean normalisation over the whole utterance is what makes the first utterance
        on a fresh decoder as accurate as the later ones (live CMN needs seconds to adapt)."""
        if self._decoder is None:
            raise ProviderError("feed() after the stream was finished or closed")
        if len(self._buf) + len(pcm) > _MAX_BYTES:
            raise ProviderError(f"utterance longer than {_MAX_BYTES // 32000} s")
        self._buf += pcm

    async def finish(self) -> Transcript:
        """Decode what is left and return the final transcript ("" when nothing recognised)."""
        if self._decoder is None:
            raise ProviderError("finish() called twice or after aclose()")
        data, self._buf = bytes(self._buf), bytearray()
        async with self._lock:
            decoder = self._decoder
            if decoder is None:
                raise ProviderError("stream closed")
            text, score = await asyncio.to_thread(self._end, decoder, data)
            self._decoder = None
        self._owner._give(decoder)
        return Transcript(text=self._snap(text), is_final=True, confidence=score)

    @staticmethod
    def _end(decoder: Any, data: bytes) -> tuple[str, float | None]:
        if data:
            decoder.process_raw(_dither(data), False, True)
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is None:
            return "", None
        text = " ".join(w for w in hyp.hypstr.split() if not w.startswith("<"))
        return text, None

    def _snap(self, text: str) -> str:
        grammar = self._grammar
        words = text.split()
        if not grammar or not words or words in grammar:
            return text
        matches = [g for g in grammar if g[: len(words)] == words]
        return " ".join(matches[0]) if len(matches) == 1 else text

    async def aclose(self) -> None:
        """Abandon the utterance and return the decoder to the pool (idempotent)."""
        async with self._lock:
            decoder, self._decoder = self._decoder, None
        if decoder is not None:
            await asyncio.to_thread(_safe_end, decoder)
            self._owner._give(decoder)


def _dither(pcm16: bytes) -> bytes:
    """``pcm16`` plus seeded Gaussian noise of ``_DITHER_SIGMA`` LSB (repeatable)."""
    pcm = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], "<i2").astype(np.int32)
    noise = np.random.default_rng(0).normal(0.0, _DITHER_SIGMA, len(pcm))
    out = np.clip(pcm + np.rint(noise).astype(np.int32), -32768, 32767)
    return out.astype("<i2").tobytes()


def _safe_end(decoder: Any) -> None:
    try:
        decoder.end_utt()
    except Exception:  # the utterance may never have started
        log.debug("end_utt on an idle decoder", exc_info=True)

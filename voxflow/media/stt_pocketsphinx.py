"""Offline speech-to-text with pocketsphinx (its PyPI wheel carries the en-US model).

Finding that shapes this module: free-form recognition (the bundled n-gram model) of espeak-ng
speech is poor, but with a JSGF grammar listing the expected ``phrases`` it is accurate; adding
filler-word loops to the grammar makes it markedly worse, so fillers are opt-in. When phrases are
given the grammar is used, otherwise the free language model.

Second finding: pocketsphinx often fails on clean audio with stretches of exact digital silence
(espeak output, slin16 legs, zero-filled gaps), while the same audio through mu-law decodes fine;
its own ``dither`` (half a bit, time-seeded, so not repeatable) does not help. Adding Gaussian
noise of sigma 8 LSB (-72 dBFS, below any telephone line's noise) before decoding fixed all
misses on a set of 66 espeak utterances (plain, slin16, mu-law, 5 % loss). The noise is seeded,
so a given utterance always gets the same transcript.

Third finding (``bench/speech.py``): a grammar always returns one of its phrases, so whatever a
caller says outside it ("I want to leave a message") comes back as some choice. Each grammar
result therefore gets a confidence from two scores of the same audio: how close the grammar's
best path comes to an unconstrained phone loop (``en-us-phone.lm.bin``; per frame), and the
margin to the best different phrase in the grammar's n-best list (per frame, capped). A result
that stopped part-way through a phrase, or whose confidence is under ``min_confidence``, comes
back as ``text=""`` (the caller spoke, nothing matched: the flow's ``nomatch``) with the
confidence and the alternatives kept for the trace. The phone-loop pass doubles the decoding time,
so it runs only when ``min_confidence`` asks for a decision (> 0); the alternatives always come.

Decoding runs at 16 kHz (8 kHz call audio is upsampled by the media path) in a worker thread, off
the event loop, over the whole utterance at ``finish`` (batch CMN; see ``feed``). Decoders take
~0.3 s to build, so they are pooled and reused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
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
_PHONES = "_phones"  # the phone-loop search every decoder has, for confidence
# Confidence = logistic((0.5 * phone-loop ratio + min(n-best margin, 5) - 5) / 2), both per frame
# in the decoder's log units: weights and threshold chosen on bench/speech.py's espeak set (3
# voices x 2 rates x clean/20/10 dB SNR) for no misroute at the default 0.5.
_RATIO_WEIGHT = 0.5
_MARGIN_CAP = 5.0
_CENTRE = 5.0
_SPREAD = 2.0
_NBEST = 40
DEFAULT_MIN_CONFIDENCE = 0.0


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

    def __init__(
        self,
        *,
        fillers: Sequence[str] = (),
        pool_size: int = 4,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        self.min_confidence = min_confidence
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
        decoder = self._ps.Decoder(samprate=self.sample_rate, loglevel="FATAL", dither=False)
        phone_lm = os.path.join(self._ps.get_model_path(), "en-us", "en-us-phone.lm.bin")
        decoder.add_allphone_file(_PHONES, phone_lm)
        return decoder

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
        self,
        *,
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        min_confidence: float | None = None,
    ) -> PocketSphinxStream:
        """Start an utterance; ``phrases`` select grammar mode. Only English is bundled.
        ``min_confidence`` is this recognition's threshold (None: the instance's)."""
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        if language and not language.lower().startswith("en"):
            raise ConfigError(f"pocketsphinx has only the en-US model, not {language!r}")
        decoder = await asyncio.to_thread(self._take)
        try:
            grammar = await asyncio.to_thread(self._activate, decoder, phrases or ())
        except BaseException:
            self._give(decoder)
            raise
        threshold = self.min_confidence if min_confidence is None else min_confidence
        return PocketSphinxStream(self, decoder, grammar, threshold)

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

    def __init__(
        self,
        owner: PocketSphinxSTT,
        decoder: Any,
        grammar: list[list[str]] | None,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self._owner = owner
        self.min_confidence = min_confidence
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
        """Decode what is left and return the final transcript ("" when nothing recognised, or,
        with phrases, when the best phrase is partial or under ``min_confidence``)."""
        if self._decoder is None:
            raise ProviderError("finish() called twice or after aclose()")
        data, self._buf = bytes(self._buf), bytearray()
        async with self._lock:
            decoder = self._decoder
            if decoder is None:
                raise ProviderError("stream closed")
            result = await asyncio.to_thread(self._end, decoder, data)
            self._decoder = None
        self._owner._give(decoder)
        return result

    def _end(self, decoder: Any, data: bytes) -> Transcript:
        pcm = _dither(data) if data else b""
        if pcm:
            decoder.process_raw(pcm, False, True)
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is None:
            return Transcript("")
        text = _clean(hyp.hypstr)
        if self._grammar is None or not text:
            return Transcript(text)
        frames = max(1, decoder.n_frames())
        logmath = decoder.get_logmath()
        best = _log(logmath, hyp.score)
        alternatives, margin = _nbest(decoder, logmath, text, best, frames)
        complete = text.split() in self._grammar
        if self.min_confidence <= 0:  # no decision asked for: skip the second pass
            return Transcript(text if complete else "", alternatives=alternatives)
        ratio = (best - _phone_loop_score(decoder, logmath, pcm)) / frames
        confidence = _confidence(ratio, margin)
        accepted = complete and confidence >= self.min_confidence
        return Transcript(
            text if accepted else "",
            is_final=True,
            confidence=round(confidence, 3),
            alternatives=alternatives,
        )

    async def aclose(self) -> None:
        """Abandon the utterance and return the decoder to the pool (idempotent)."""
        async with self._lock:
            decoder, self._decoder = self._decoder, None
        if decoder is not None:
            await asyncio.to_thread(_safe_end, decoder)
            self._owner._give(decoder)


def _clean(hypstr: str) -> str:
    return " ".join(w for w in hypstr.split() if not w.startswith("<"))


def _log(logmath: Any, prob: float) -> float:
    """A hypothesis score (the bindings give it as a probability) back in log units."""
    return float(logmath.log(prob)) if prob > 0 else -1e12


def _nbest(
    decoder: Any, logmath: Any, best_text: str, best: float, frames: int
) -> tuple[tuple[str, ...], float]:
    """Up to three distinct phrases, best first, and the per-frame margin from the best to the
    next different one (``_MARGIN_CAP`` when there is none)."""
    seen = [best_text]
    margin = _MARGIN_CAP
    for i, hyp in enumerate(decoder.nbest()):
        if i >= _NBEST or len(seen) >= 3:
            break
        text = _clean(hyp.hypstr) if hyp is not None else ""
        if not text or text in seen:
            continue
        if len(seen) == 1:
            margin = min(_MARGIN_CAP, (best - _log(logmath, hyp.score)) / frames)
        seen.append(text)
    return tuple(seen), margin


def _phone_loop_score(decoder: Any, logmath: Any, pcm: bytes) -> float:
    """The unconstrained phone loop's score of the same audio (the grammar's ceiling)."""
    decoder.activate_search(_PHONES)
    decoder.start_utt()
    if pcm:
        decoder.process_raw(pcm, False, True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return _log(logmath, hyp.score) if hyp is not None else -1e12


def _confidence(ratio: float, margin: float) -> float:
    """0..1 from the phone-loop ratio and the n-best margin (module docstring)."""
    z = (_RATIO_WEIGHT * ratio + margin - _CENTRE) / _SPREAD
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


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

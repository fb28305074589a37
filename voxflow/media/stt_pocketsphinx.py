"""Offline speech-to-text with pocketsphinx (its PyPI wheel carries the en-US model).

Finding that shapes this module: free-form recognition (the bundled n-gram model) of espeak-ng
speech is poor, but with a JSGF grammar listing the expected ``phrases`` it is accurate; adding
filler-word loops to the grammar makes it markedly worse, so fillers are opt-in. When phrases are
given the grammar is used, otherwise the free language model.

Second finding: pocketsphinx often fails on clean audio with stretches of exact digital silence
(espeak output, slin16 legs, zero-filled gaps), while the same audio through mu-law decodes fine;
its own ``dither`` (half a bit, time-seeded, so not repeatable) does not help. Adding Gaussian
noise of sigma 8 LSB (-72 dBFS, below any telephone line's noise) before decoding fixed all
misses on a set of 66 espeak utterances (plain, slin16, mu-law, 5 % loss). The noise is seeded
per utterance, so a given utterance always gets the same transcript.

Third finding (``bench/speech.py``): a grammar always returns one of its phrases, so whatever a
caller says outside it ("I want to leave a message") comes back as some choice. When a recognition
asks for a decision (``min_confidence`` > 0), a second decoder runs an unconstrained phone loop
(:mod:`voxflow.media.stt_phones`) over the same audio, and ``stt_confidence`` turns the two
results into a confidence (a logistic fit; see there). A result that stopped part-way through a
phrase, whose confidence is under ``min_confidence``, or whose phrase the grammar stretched over
a longer sentence (``stt_confidence.stretched``), comes back as ``text=""`` (the caller
spoke, nothing matched: the flow's ``nomatch``) with the confidence and the alternatives kept for
the trace.

Fourth finding (``bench/speech.py``): clean audio misrouted more than audio with 20 dB of noise
(clean "sales" as "billing": telephone audio stops at 4 kHz, so its /s/ is near silence). A
grammar decision is therefore checked by a second grammar search over the same audio with a
band-limited noise floor added (:mod:`voxflow.media.stt_check`, decoded only when its result can
change the decision); when neither its best path nor its n-best's first names the grammar's
whole phrase, the result is ``nomatch`` (docs/speech.md).

Streaming: every search decodes while the caller speaks (every ``_CHUNK_BYTES``, in a worker
thread); after each chunk the stream says whether its partial result is a whole phrase
(``complete``), one no other phrase extends (``final``), such a phrase both searches' best paths
ended ``_QUIET_FRAMES`` ago (``settled``), or the phone loop heard no speech lately (``quiet``),
for the endpointer (:mod:`voxflow.media.endpointing`). With a decision asked for, a phrase counts
only when likely (:mod:`voxflow.media.stt_likely`), and the audio after a settled point, or once
``quiet``, is held back until it holds speech (``_hold``; docs/speech.md).
Cepstral mean normalisation is pocketsphinx's live one, started at every utterance from a fixed
prior (``_CMN_PRIOR``: the mean of G.711 telephone speech, so the first frames are normalised
right) rather than from the last caller's.
Decoding runs at 16 kHz (8 kHz call audio is upsampled by the media path). A decoder takes ~0.5 s
of CPU (holding the GIL) and ~92-96 MB to build, so a bounded pool (``stt_pool``) is built before
calls are served and never grows; a recognition with no decoder free keeps its audio and decodes it
when one frees or at ``finish`` (the same chunks, dither and searches: the same decision).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from voxflow import observe
from voxflow.errors import ConfigError, ProviderError
from voxflow.media.stt_alone import Mark, background, speech_again, streamed_end
from voxflow.media.stt_check import CheckFeed
from voxflow.media.stt_confidence import Features, confidence, features, stretched
from voxflow.media.stt_grammar import dictionary_words, phrases_to_jsgf, prefixes
from voxflow.media.stt_lexicon import add_variants
from voxflow.media.stt_likely import Evidence, Stability, likely
from voxflow.media.stt_line import tail_pad
from voxflow.media.stt_paths import clean as _clean
from voxflow.media.stt_paths import is_word as _is_word
from voxflow.media.stt_paths import log_score as _log
from voxflow.media.stt_paths import nbest as _nbest
from voxflow.media.stt_paths import nbest_first as _nbest_first
from voxflow.media.stt_paths import partial as _partial
from voxflow.media.stt_paths import partial_nbest as _partial_nbest
from voxflow.media.stt_paths import segments as _segments
from voxflow.media.stt_phones import PHONES as _PHONES
from voxflow.media.stt_phones import add_phone_loop, last_phone_end, result, run_over
from voxflow.media.stt_phones import since_last_phone as _since_last_phone
from voxflow.media.stt_pool import DecoderPool, PoolStats, end_utterances, in_thread_to_the_end
from voxflow.media.stt_pool import start_utterance as _start
from voxflow.media.stt_slices import FRAME_BYTES, slices
from voxflow.voice.providers import Transcript

__all__ = [
    "DECODERS_PER_DECISION",
    "DEFAULT_DECODERS",
    "PocketSphinxSTT",
    "PocketSphinxStream",
    "phrases_to_jsgf",
]

log = logging.getLogger(__name__)

_MAX_BYTES = 16000 * 2 * 120  # two minutes of 16 kHz pcm16 per utterance
_CHUNK_BYTES = 16000 * 2 // 25  # decode every 40 ms of audio while the caller speaks
_DITHER_SIGMA = 8.0  # LSB of Gaussian noise added before decoding (see the module docstring)
# Mean cepstrum of the tuning half of bench/speech.py's utterances (G.711, upsampled to 16 kHz):
# pocketsphinx's default (40,3,-1) is for wideband microphones and takes seconds to adapt.
_CMN_PRIOR = "44.2,4.6,-25.7,21.4,-17.6,-2.3,3.2,-18.4,9.9,-8.9,-0.5,4.2,-9.6"
# decoders a recognition with a decision uses: the grammar, the phone loop, the noise-floor check
DECODERS_PER_DECISION = 3
DEFAULT_DECODERS = DECODERS_PER_DECISION  # the pool's default size: one decision streams fully
_ENDED_FRAMES = 15  # 150 ms after the phrase's last word before the stream calls it complete
_QUIET_FRAMES = 10  # frames after the last word and the last phone before a final phrase settles
_HEARD_NOTHING_FRAMES = 40  # frames after the phone loop's last phone before the stream is quiet
_SETTLE_FRAMES = 30  # the final search needs this much after the last word (see ``_settle``)
_TAIL_BYTES = 16000 * 2 // 10  # the last 100 ms heard, silence at an endpoint (``_settle``)
_FRAME_BYTES = FRAME_BYTES  # one 10 ms decoder frame of 16 kHz pcm16
_SLICE_BYTES = _FRAME_BYTES  # audio per process_raw call, which holds the GIL (``stt_slices``)
_TAKE_AFTER_SILENCE_MS = 60  # beside other recognitions, decoders are taken once this silent
DEFAULT_MIN_CONFIDENCE = 0.0


def _check_threshold(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"min_confidence must be between 0 and 1, not {value}")
    return value


class PocketSphinxSTT:
    """``SpeechToText`` on pocketsphinx. ``fillers`` are optional words allowed around a phrase;
    ``min_confidence`` is the default threshold of a grammar recognition (0: no decision);
    ``max_decoders``: the pool's size (~92-96 MB each), all built by ``warm_up`` (or by the first
    recognition when nobody warmed it) and never more: a recognition that finds none free keeps
    its audio and decodes it when one is given back, or at ``finish``."""

    sample_rate = 16000

    def __init__(
        self,
        *,
        fillers: Sequence[str] = (),
        max_decoders: int = DEFAULT_DECODERS,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self.min_confidence = _check_threshold(min_confidence)
        try:
            import pocketsphinx
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ConfigError("pocketsphinx is not installed (pip install pocketsphinx)") from exc
        self._ps: Any = pocketsphinx
        self.fillers = tuple(w for f in fillers for w in dictionary_words(f))
        self.pool = DecoderPool(lambda: self._new_decoder(), max_decoders)
        self.open_streams = 0  # recognitions opened and not yet finished or closed

    @property
    def max_decoders(self) -> int:
        return self.pool.size

    def _new_decoder(self) -> Any:
        decoder = self._ps.Decoder(
            samprate=self.sample_rate,
            loglevel="FATAL",
            dither=False,
            cmn="live",
            cmninit=_CMN_PRIOR,
        )
        add_phone_loop(self._ps, decoder)  # (stt_phones)
        return decoder

    def _give(self, decoder: Any) -> None:
        self.pool.give(decoder)

    def _take_spare(self) -> Any | None:
        """A free decoder for a phone loop or check, unless a recognition waits for a grammar's
        (those run at ``finish`` on the grammar's decoder instead, to the same result)."""
        return None if self.pool.waiting() else self.pool.take()

    def spare(self) -> int:
        """How many built decoders are free."""
        return self.pool.stats().free

    def stats(self) -> PoolStats:
        """The pool: size, decoders built, free, and recognitions that waited for one."""
        return self.pool.stats()

    async def warm_up(self, count: int | None = None) -> None:
        """Build the pool (``count``: at most that many more) in a worker thread, before the
        first call (each build holds the GIL ~0.5 s)."""
        await asyncio.to_thread(self.pool.fill, count)

    async def open_stream(
        self,
        *,
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        min_confidence: float | None = None,
    ) -> PocketSphinxStream:
        """Start an utterance; ``phrases`` select grammar mode. Only English is bundled.
        ``min_confidence`` is this recognition's threshold (None: the instance's). Never waits
        for a decoder: with none free, the stream keeps the audio until one is."""
        threshold = self.min_confidence if min_confidence is None else min_confidence
        _check_threshold(threshold)
        if language and not language.lower().startswith("en"):
            raise ConfigError(f"pocketsphinx has only the en-US model, not {language!r}")
        if self.pool.stats().built == 0:  # nobody warmed it: build the pool now, once
            await self.warm_up()
        stream = PocketSphinxStream(self, phrases or (), threshold)
        self.open_streams += 1
        decoder = self.pool.take() if stream._may_take() else None
        if decoder is not None:
            stream._waited()
            try:
                await stream._attach(decoder)
            except BaseException:  # cancelled: nobody will close the stream
                stream._closed()
                stream._release(ended=False)
                raise
        return stream

    def _bind(
        self, decoder: Any, phrases: Sequence[str], threshold: float
    ) -> tuple[list[list[str]] | None, _Helpers | None]:
        """Activate the grammar on ``decoder`` and, when a decision is asked for, take spare
        decoders for the phone loop and the check search; with none spare, those run over the
        kept audio at ``finish`` on the grammar's decoder (slower, same result)."""
        phones: Any | None = None
        check: Any | None = None
        try:
            grammar = self._activate(decoder, phrases)
            if grammar is not None and threshold > 0:
                phones = self._take_spare()
                if phones is not None:
                    phones.activate_search(_PHONES)
                    _start(phones)
                check = self._take_spare() if phones is not None else None  # (stt_alone)
                if check is not None:
                    self._activate(check, [" ".join(words) for words in grammar])
        except BaseException:
            for d in (decoder, phones, check):
                if d is not None:
                    self._give(d)
            raise
        if grammar is None or threshold <= 0:
            return grammar, None
        return grammar, _Helpers(phones, check, [] if phones is None or check is None else None)

    def _activate(self, decoder: Any, phrases: Sequence[str]) -> list[list[str]] | None:
        known: list[list[str]] = []
        for phrase in phrases:
            words = dictionary_words(phrase)
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
            _start(decoder)
            return None
        fillers = [w for w in self.fillers if decoder.lookup_word(w) is not None]
        add_variants(decoder, [w for words in known for w in words])  # (stt_lexicon)
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
        _start(decoder)
        return known


@dataclass(slots=True)
class _Helpers:
    """The decoders a decision adds to the grammar's: the phone loop and the noise-floor check
    (None: none was spare; it then runs at ``finish`` over ``kept``, the dithered audio)."""

    phones: Any | None
    check: Any | None
    kept: list[bytes] | None

    def streaming(self) -> tuple[Any, ...]:
        return tuple(d for d in (self.phones, self.check) if d is not None)


class PocketSphinxStream:
    """One utterance. ``feed`` pcm16 at 16 kHz (decoded as it comes); ``finish`` returns the
    transcript. ``complete``: the partial result so far is a whole phrase of the grammar (the
    media path then ends the utterance after a shorter silence); ``final``: it is a phrase that
    no other phrase of the grammar extends (the shortest silence); ``features``: the confidence
    features of the grammar decision, ``check`` and ``check_nbest``: the check search's phrase
    (its best path's; its n-best's first, when the path's is not the grammar's), after
    ``finish``."""

    def __init__(
        self,
        owner: PocketSphinxSTT,
        phrases: Sequence[str],
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self._owner = owner
        self.min_confidence = min_confidence
        self._phrases = tuple(phrases)
        self._decoder: Any | None = None  # None until the pool gives one (``_attach``)
        self._helpers: _Helpers | None = None  # a decision is asked for (grammar, threshold > 0)
        self._grammar: list[list[str]] | None = None
        self._done = False  # finished or closed
        self._bind_lock = threading.Lock()  # ``_attach``'s thread against ``aclose``
        self._pending = bytearray()
        self._tail = b""  # the last _TAIL_BYTES of audio fed
        self._fed = 0
        self._sliced = False  # some audio was handed to the decoders (``_decode``, ``stt_slices``)
        self._marks: list[Mark] | None = None  # no phone loop streams: the grammar's (stt_alone)
        self._raw = bytearray()  # ... and the audio it decoded, as fed
        self._phone_loop: tuple[float, list[Any]] | None = None  # its result, run at finish
        self._rng = np.random.default_rng(0)  # the dither, repeatable per utterance
        self._check_feed = CheckFeed()  # the check's audio, decoded when needed (``stt_check``)
        self._lock = asyncio.Lock()
        self.features: Features | None = None
        self.check: str | None = None
        self.check_nbest: str | None = None
        self.complete = False  # the partial result so far is a whole phrase of the grammar
        self.final = False  # ... and no other phrase of the grammar starts with it
        self.settled = False  # ... and both searches have heard the caller stop (``_settled``)
        self.quiet = False  # the phone loop has heard no speech lately, whatever the words
        self._held: bytearray | None = None  # audio kept back from the searches (``_hold``)
        self._held_floor = 0.0  # the line's background energy when holding began
        self._held_quiet = 0  # frames the phone loop had heard no speech when holding began
        self._held_whole = False  # ... the phrase heard then was likely
        self._held_ended = 0  # ... frames since its last word
        self._held_text = ""  # ... the partial result then
        self._went_on = ""  # the partial result held before the caller went on (``_evidence``)
        self._extended: frozenset[tuple[str, ...]] = frozenset()
        self._stable = Stability()  # frames since the partial result changed
        self._opened = time.monotonic()  # or when the caller last spoke (``_may_take``)
        self.decoder_wait_s: float | None = None  # open -> a decoder was taken (``_waited``)
        self.silence_ms: int | None = None  # the listener's VAD silence so far (``follow``)
        self._counted = True  # in ``owner.open_streams`` until finish or aclose
        # ``finish``'s parts in ms: waiting for a decoder, decoding the rest of the audio and the
        # settling frames, the final searches (end_utt, n-best, features, check)
        self.timing: dict[str, float] = {}

    def _may_take(self) -> bool:
        """Whether to take decoders now: alone, at once; beside other recognitions only once the
        listener's VAD has heard ``_TAKE_AFTER_SILENCE_MS`` of silence (the caller stopped or
        pauses; a stream no listener tells, at ``finish``), so that decoders are not held for
        the length of a caller's words (~15x what decoding them takes) while others wait. Audio
        decoded late is decoded as if streamed: the same decision (``_process``)."""
        silent = self.silence_ms
        if self._owner.open_streams <= 1 or (silent or 0) >= _TAKE_AFTER_SILENCE_MS:
            return True
        if silent is not None:  # the caller speaks: not waiting for decoders yet
            self._opened = time.monotonic()
        return False

    def _closed(self) -> None:  # out of ``owner.open_streams``, once
        if self._counted:
            self._counted = False
            self._owner.open_streams -= 1

    def _waited(self) -> None:
        """A decoder was taken: report how long since the stream opened, or since the caller
        last spoke when it waited for that (0 when one was free)."""
        self.decoder_wait_s = time.monotonic() - self._opened
        observe.decoder_wait(self.decoder_wait_s)

    async def _attach(self, decoder: Any) -> None:
        """Bind ``decoder`` (and spare helpers) to this utterance, in a worker thread (a new
        grammar is compiled there); given straight back if the stream was closed meanwhile."""
        await in_thread_to_the_end(self._attach_sync, decoder)

    def _attach_sync(self, decoder: Any) -> None:
        grammar, helpers = self._owner._bind(decoder, self._phrases, self.min_confidence)
        with self._bind_lock:
            if not self._done:
                self._decoder, self._grammar, self._helpers = decoder, grammar, helpers
                if helpers is not None and helpers.phones is None:
                    self._marks = []
                self._extended = prefixes(grammar or [])
                return
        self._owner.pool.give_all((decoder, *(helpers.streaming() if helpers else ())), False)

    async def feed(self, pcm: bytes) -> None:
        """Add audio; every ``_CHUNK_BYTES`` it is decoded (every search) in a worker thread, so
        little is left to do at ``finish``. With no decoder yet, it is kept, and decoded as soon
        as the pool has one free."""
        if self._done:
            raise ProviderError("feed() after the stream was finished or closed")
        if self._fed + len(pcm) > _MAX_BYTES:
            raise ProviderError(f"utterance longer than {_MAX_BYTES // 32000} s")
        self._fed += len(pcm)
        self._pending += pcm
        self._tail = (self._tail + pcm)[-_TAIL_BYTES:]
        if self._decoder is None:
            if len(self._pending) < _CHUNK_BYTES or self._owner.pool.waiting():
                return  # a recognition that is finishing is served first
            if not self._may_take():
                return
            decoder = self._owner.pool.take()
            if decoder is None:
                return
            self._waited()
            async with self._lock:
                await self._attach(decoder)
        if self._grammar is None or len(self._pending) < _CHUNK_BYTES:
            return  # free recognition decodes the whole utterance at finish (see ``_end``)
        cut = len(self._pending) // _CHUNK_BYTES * _CHUNK_BYTES
        data, self._pending = bytes(self._pending[:cut]), self._pending[cut:]
        async with self._lock:
            if self._decoder is None:
                raise ProviderError("stream closed")
            await in_thread_to_the_end(self._process, data)  # cancelled: the lock held to its end

    def _process(self, data: bytes) -> None:
        """Decode ``data`` ``_CHUNK_BYTES`` at a time, each as if streamed (its partial result
        and hold after it), so that a decision does not depend on how far behind the stream was
        or on when it got its decoders (all at ``finish``: the same decision as with its own)."""
        for i in range(0, len(data), _CHUNK_BYTES):
            self._decode(data[i : i + _CHUNK_BYTES])

    def _decode(self, data: bytes) -> None:
        """Decode ``data`` in ``_SLICE_BYTES`` pieces (one frame; the utterance's first piece one
        analysis window: ``stt_slices``), whatever the ``feed`` calls: the GIL is released
        between them."""
        helpers = self._helpers
        if self._held is not None:
            if not speech_again(data, self._held_floor):
                self._held += data
                held = len(self._held) // _FRAME_BYTES  # frames of silence since the hold
                self.quiet = self._held_quiet + held >= _HEARD_NOTHING_FRAMES
                self.complete = self._held_whole and self._held_ended + held >= _ENDED_FRAMES
                return
            data, self._held = bytes(self._held) + data, None  # the caller went on
            self._went_on = self._held_text
        first, self._sliced = not self._sliced, self._sliced or bool(data)
        if self._marks is not None:
            self._raw += data
        for pcm in slices(self._dither(data), _SLICE_BYTES, first=first):  # dithered at once
            if self._decoder is not None:
                self._decoder.process_raw(pcm, False, False)
            if helpers is None:
                continue
            if helpers.kept is not None:  # for the searches that run at finish
                helpers.kept.append(pcm)
            if helpers.phones is not None:
                helpers.phones.process_raw(pcm, False, False)
            if helpers.check is not None:
                self._check_feed.add(pcm)  # decoded once its result is needed (``stt_check``)
        if self._grammar is not None and self._decoder is not None:
            complete, final = self._heard_whole_phrase(self._decoder)
            likely = (complete or final) and self._likely(self._decoder)
            self.complete, self.final = complete and likely, final and likely
            stopped = final and self._settled(self._decoder)
            self.settled = stopped and likely
            self.quiet = self._heard_nothing()
            if stopped or self.quiet:  # the caller stopped, as far as the searches tell
                self._hold(likely)
            if self._marks is not None:
                spoken = [s.end_frame for s in self._decoder.seg() if _is_word(s.word)]
                end = max(spoken) if spoken else None
                self._marks.append(Mark(len(self._raw), self._decoder.n_frames(), final, end))

    def _hold(self, likely: bool) -> None:
        """Both searches heard the caller stop after a final phrase (where the utterance used to
        end), or the phone loop heard no phone lately (``quiet``): hold what follows back from
        the searches until it holds speech again, so a caller who stopped is decided as before,
        not on the longer silence waited after an unlikely phrase (decoded, it let more
        out-of-grammar speech through: docs/speech.md), and that silence costs no CPU."""
        self._held_floor = background(self._tail)
        self._held = bytearray()
        decoder = self._decoder
        spoken = [s.end_frame for s in decoder.seg() if _is_word(s.word)] if decoder else []
        self._held_whole = likely  # a whole phrase, likely: ``complete`` once 150 ms ago
        self._held_text = _clean(decoder.hyp().hypstr) if decoder and decoder.hyp() else ""
        self._held_ended = decoder.n_frames() - spoken[-1] if decoder and spoken else 0
        phones = self._helpers.phones if self._helpers is not None else None
        self._held_quiet = (_since_last_phone(phones) if phones is not None else None) or 0

    def _likely(self, decoder: Any) -> bool:
        """Whether the decision would accept the phrase heard so far (``stt_likely.likely``),
        its parts asked cheapest first: ``likely`` is a conjunction, so the features, the n-best
        (only once the features reach the threshold with the margin at its cap, the most any
        n-best allows: ``stt_likely.likely`` rises with the margin) and the check (decoded only
        now: ``stt_check``) are read only while nothing else refused."""
        helpers, hyp = self._helpers, decoder.hyp()
        if helpers is None or hyp is None:
            return True  # likely(None)
        text, least = _clean(hyp.hypstr), self.min_confidence
        bare = Evidence(text, "none", None, self._stable.frames, (), text == self._went_on)
        if not likely(bare, least):
            return False
        found, _ = _partial(decoder, helpers.phones, hyp, text, with_nbest=False)
        if not likely(replace(bare, features=found), least):  # even with the margin at its cap
            return False
        found, alternatives = _partial_nbest(decoder, hyp, text, found)
        if not likely(replace(bare, features=found, alternatives=alternatives), least):
            return False
        return likely(replace(bare, check=self._check_names(text, helpers)), least)

    def full_evidence(self, decoder: Any) -> Evidence | None:
        """Every part of what the searches say of the phrase heard so far, whatever ``_likely``
        would have asked (None: no decision asked, nothing heard); for benches that refit the
        rule (``bench/speech_likely.py``)."""
        helpers, hyp = self._helpers, decoder.hyp()
        if helpers is None or hyp is None:
            return None
        text = _clean(hyp.hypstr)
        bare = Evidence(text, "none", None, self._stable.frames, (), text == self._went_on)
        found, alternatives = _partial(decoder, helpers.phones, hyp, text)
        return replace(
            bare, features=found, alternatives=alternatives, check=self._check_names(text, helpers)
        )

    def _check_names(self, text: str, helpers: _Helpers) -> str:
        """How the check search names ``text`` so far ("none": no check streams)."""
        return "none" if helpers.check is None else self._check_feed.names(helpers.check, text)

    def _heard_nothing(self) -> bool:
        """The streaming phone loop's last phone ended ``_HEARD_NOTHING_FRAMES`` or more before
        the newest audio (whatever the grammar heard): the caller has stopped, or pauses."""
        phones = self._helpers.phones if self._helpers is not None else None
        since = _since_last_phone(phones) if phones is not None else None
        return since is not None and since >= _HEARD_NOTHING_FRAMES

    def _settled(self, decoder: Any) -> bool:
        """The grammar's last word and the phone loop's last phone (which goes on naming phones
        while the caller goes on past the phrase: "operator please") both ended at least
        ``_QUIET_FRAMES`` before the audio decoded: the searches' own decision that the caller
        stopped (150-250 ms after espeak's last loud sample), sooner than the VAD. Without a
        streaming phone loop nothing settles."""
        phones = self._helpers.phones if self._helpers is not None else None
        if phones is None:
            return False
        ends = [s.end_frame for s in decoder.seg() if _is_word(s.word)]
        ends += [e for e in (last_phone_end(phones),) if e is not None]
        return bool(ends) and decoder.n_frames() - max(ends) >= _QUIET_FRAMES

    def _heard_whole_phrase(self, decoder: Any) -> tuple[bool, bool]:
        """(complete, final). complete: the partial result is a phrase of the grammar and its
        last word ended at least ``_ENDED_FRAMES`` ago (the best partial path names a phrase
        long before it is said). final: the partial result is a phrase that no other phrase
        extends, however recently its last word ended: the partial path names a word only once
        the word is over, and lags the audio by ~100 ms here, so the listener's VAD, not the
        decoder, tells how long the caller has been quiet since."""
        hyp = decoder.hyp()
        words = _clean(hyp.hypstr).split() if hyp is not None else []
        self._stable.see(" ".join(words), decoder.n_frames())
        if words not in (self._grammar or ()):
            return False, False
        final = tuple(words) not in self._extended
        spoken = [s.end_frame for s in decoder.seg() if not s.word.startswith(("<", "["))]
        return bool(spoken) and decoder.n_frames() - spoken[-1] >= _ENDED_FRAMES, final

    def _settle(self, decoder: Any) -> None:
        """Give the search ``_SETTLE_FRAMES`` after the phrase's last word before it ends (what the
        confidence was fitted with; 15 frames measured fewer right answers at 20 dB). An utterance
        ended soon after a final phrase (the shortest window) otherwise often ends inside the
        search's last word and has no result at all ("agent" came back as nothing 120 ms after the
        caller stopped), or a lower confidence. The frames added are the line's own background, from
        the last 100 ms heard, which the endpointer has just called silence (``tail_pad``)."""
        spoken = [s.end_frame for s in decoder.seg() if _is_word(s.word)]
        settling = self._settling(decoder.n_frames(), spoken[-1]) if spoken else b""
        if settling:
            self._decode(settling)

    def _settling(self, frames: int, word_end: int) -> bytes:
        """The line's background to add after the last word, ended at ``word_end`` of ``frames``
        searched, so that the search has ``_SETTLE_FRAMES`` after it (b"": none needed)."""
        missing = _SETTLE_FRAMES - (frames - word_end)
        if missing <= 0 or len(self._tail) < 2:
            return b""
        step = self._owner.sample_rate // 100 * 2  # one 10 ms frame
        return tail_pad(self._tail, missing * step, step)

    def _replay(self, decoder: Any, marks: list[Mark]) -> None:
        """No phone loop streamed: run it now on ``decoder`` over the kept audio, to the point
        where the streamed searches would have held the rest back (``stt_alone``), then the
        settling frames; keep its result; and start the grammar again over the same audio (the
        check runs over it at ``_decide``): the decision the three searches streaming make."""
        helpers = self._helpers
        assert helpers is not None and helpers.kept is not None  # (``_attach_sync``)
        kept, ends, done = helpers.kept, np.cumsum([len(p) for p in helpers.kept]), 0
        decoder.end_utt()
        decoder.activate_search(_PHONES)
        _start(decoder)

        def phone_end(end: int) -> int | None:
            nonlocal done
            while done < len(kept) and ends[done] <= end:
                decoder.process_raw(kept[done], False, False)
                done += 1
            return last_phone_end(decoder)

        cut = streamed_end(marks, bytes(self._raw), phone_end, _QUIET_FRAMES, _HEARD_NOTHING_FRAMES)
        mark = next(m for m in marks if m.end == cut)
        pieces = kept[: int(np.searchsorted(ends, cut, side="right"))]
        self._rng = np.random.default_rng(0)  # the dither as it stood at ``cut``
        self._rng.normal(0.0, _DITHER_SIGMA, cut // 2)
        settling = b"" if mark.word_end is None else self._settling(mark.frames, mark.word_end)
        pieces += [self._dither(p) for p in slices(settling, _SLICE_BYTES, first=False)]
        phone_end(cut)
        for pcm in pieces[len(kept[:done]) :]:
            decoder.process_raw(pcm, False, False)
        decoder.end_utt()
        self._phone_loop, helpers.kept = result(decoder, decoder.get_logmath()), pieces
        self._owner._activate(decoder, [" ".join(w) for w in self._grammar or ()])
        for pcm in pieces:
            decoder.process_raw(pcm, False, False)

    def _dither(self, pcm16: bytes) -> bytes:
        """``pcm16`` plus seeded Gaussian noise of ``_DITHER_SIGMA`` LSB (repeatable)."""
        pcm = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], "<i2").astype(np.int32)
        noise = np.rint(self._rng.normal(0.0, _DITHER_SIGMA, len(pcm))).astype(np.int32)
        out: bytes = np.clip(pcm + noise, -32768, 32767).astype("<i2").tobytes()
        return out

    async def finish(self) -> Transcript:
        """Decode what is left and return the final transcript ("" when nothing recognised, or,
        with phrases, when the best phrase is partial, under ``min_confidence``, or not what the
        check search heard). With no decoder yet, waits for one (``DecoderPool.acquire``)."""
        if self._done:
            raise ProviderError("finish() called twice or after aclose()")
        async with self._lock:
            if self._done:
                raise ProviderError("stream closed")
            t0, ended = time.perf_counter(), False  # ended: ``_end`` ended the utterances
            self._closed()
            try:
                if self._decoder is None:
                    decoder = await self._owner.pool.acquire()
                    self._waited()
                    await self._attach(decoder)
                self.timing["wait"] = (time.perf_counter() - t0) * 1000
                data, self._pending = bytes(self._pending), bytearray()
                result = await in_thread_to_the_end(self._end, data)
                ended = True
                return result
            finally:  # given back also when cancelled or failed, once no thread decodes
                self._release(ended=ended)

    def _release(self, *, ended: bool) -> None:
        """Done: the decoders back to the pool (no worker thread uses them any more), their
        utterances ended unless ``ended`` (a decoder mid-utterance cannot change its search)."""
        with self._bind_lock:
            self._done = True
            decoder, self._decoder = self._decoder, None
            helpers, self._helpers = self._helpers, None
        self._owner.pool.give_all((decoder, *(helpers.streaming() if helpers else ())), ended)

    def _end(self, data: bytes) -> Transcript:
        decoder = self._decoder
        assert decoder is not None  # finish() checked, under the lock
        if self._grammar is None:
            # Free recognition (no latency goal; recordings, free text): the whole utterance in
            # one call, so CMN is the utterance's own mean, not the telephone prior's: a wideband
            # recording was heard as nonsense with the prior ("nice goalie got to look").
            if len(data) >= 2:
                decoder.process_raw(self._dither(data), False, True)
        else:
            t0 = time.perf_counter()
            if len(data) >= 2:
                self._process(data)
            self._held = None  # what is still held back is the silence after the caller stopped
            if self._marks is not None and self._marks:
                self._replay(decoder, self._marks)  # no phone loop streamed (stt_alone)
            else:
                self._settle(decoder)
            self.timing["decode"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        try:
            return self._logged(self._decide(decoder), decoder)
        finally:
            check = self._helpers.check if self._helpers is not None else None
            if check is not None and self.check is None:  # not needed: its utterance ended
                check.end_utt()
            self.timing["search"] = (time.perf_counter() - t0) * 1000

    def _logged(self, result: Transcript, decoder: Any) -> Transcript:
        """``result``, logged at DEBUG with what decided it: the grammar's best path, the check's
        path and n-best's first, the features, which decoders ran the searches (streamed; alone:
        the phone loop and check at ``finish`` on the grammar's), the waits, the audio fed."""
        if log.isEnabledFor(logging.DEBUG):
            hyp, helpers = decoder.hyp(), self._helpers
            how = "none" if helpers is None else "alone" if helpers.phones is None else "streamed"
            log.debug(
                "decision %r: grammar %r n-best %s confidence %s check %r / %r features %s "
                "decoders %s, waited %.2f s (at finish %.0f ms), %.2f s fed",
                result.text, _clean(hyp.hypstr) if hyp is not None else "",
                list(result.alternatives), result.confidence, self.check, self.check_nbest,
                self.features, how, self.decoder_wait_s or 0.0, self.timing.get("wait", 0.0),
                self._fed / 32000,
            )  # fmt: skip
        return result

    def _decide(self, decoder: Any) -> Transcript:
        """End the searches and turn them into the transcript (``finish``'s last part)."""
        decoder.end_utt()
        if self._helpers is not None and self._helpers.phones is not None:
            self._helpers.phones.end_utt()
        hyp = decoder.hyp()
        if hyp is None:
            return Transcript("")
        text = _clean(hyp.hypstr)
        if self._grammar is None or not text:
            return Transcript(text)
        logmath = decoder.get_logmath()
        best = _log(logmath, hyp.score)
        alternatives, second = _nbest(decoder, logmath, text, best)
        complete = text.split() in self._grammar
        if self._helpers is None:  # no decision asked for: no second search
            return Transcript(text if complete else "", alternatives=alternatives)
        self.features = self._features(decoder, logmath, text, best, second, self._helpers)
        score = confidence(self.features)
        # a sentence the grammar stretched the phrase over is no phrase (``stt_confidence``)
        accepted = complete and score >= self.min_confidence and not stretched(self.features)
        if accepted:  # the check can only veto: searched only now (``stt_check``)
            self.check, self.check_nbest = self._checked(decoder, self._helpers, text)
            accepted = text in (self.check, self.check_nbest)
        return Transcript(
            text if accepted else "",
            is_final=True,
            confidence=round(score, 3),
            alternatives=alternatives,
        )

    def _features(
        self,
        decoder: Any,
        logmath: Any,
        text: str,
        best: float,
        second: float | None,
        helpers: _Helpers,
    ) -> Features:
        n_phones = sum(len((decoder.lookup_word(w) or "").split()) for w in text.split())
        frames, words = decoder.n_frames(), _segments(decoder)
        if self._phone_loop is not None:  # run by ``_replay``
            phone_best, phone_segments = self._phone_loop
        else:
            phones = helpers.phones
            if phones is None:  # none was spare: the phone loop now, over the kept audio
                phones = decoder
                run_over(decoder, helpers.kept or ())
            phone_best, phone_segments = result(phones, logmath)
        return features(
            frames=frames,
            best=best,
            second=second,
            phone_best=phone_best,
            words=words,
            phones=phone_segments,
            n_phones=n_phones,
        )

    def _checked(self, decoder: Any, helpers: _Helpers, text: str) -> tuple[str, str | None]:
        """The check search's phrase: its best path's, and, when that is not ``text``, its
        n-best's first (None when not needed: the n-best costs a few ms). Run now over the kept
        audio when no decoder was spare; its noise floor is then drawn afresh from the same seed,
        so the result is the streamed one."""
        check, feed = helpers.check, self._check_feed
        if check is None:
            check, feed = decoder, CheckFeed()  # the same noise floor, drawn afresh
            self._owner._activate(decoder, [" ".join(w) for w in self._grammar or ()])
            for pcm in helpers.kept or ():
                feed.add(pcm)
        feed.catch_up(check)
        check.end_utt()
        hyp = check.hyp()
        path = _clean(hyp.hypstr) if hyp is not None else ""
        return path, None if path == text else _nbest_first(check)

    async def aclose(self) -> None:
        """Abandon the utterance and return the decoders to the pool (idempotent)."""
        self._closed()
        async with self._lock:  # a feed's or finish's thread has ended (``in_thread_to_the_end``)
            held = (self._decoder, *(self._helpers.streaming() if self._helpers else ()))
            try:
                if any(d is not None for d in held):
                    await in_thread_to_the_end(end_utterances, *held)
            finally:
                self._release(ended=True)

"""Pronunciation variants of a grammar's words (issue 18): the open-/a/ variant of every word with
the US /ae/ and the variant without a word-initial /s/, added once to a real pocketsphinx
decoder's dictionary, and what they fix over a G.711 leg: clean British "back" and "balance" were
heard as "operator", and "sales" as "pay my bill"."""

from __future__ import annotations

import shutil

import pytest

from voxflow.media import codecs
from voxflow.media.stt_lexicon import add_variants, variants
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.media.tts_espeak import EspeakTTS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

MAIN = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
BILLING = ["pay", "balance", "back", "main menu", "operator", "agent"]
STT = PocketSphinxSTT(max_decoders=DECODERS_PER_DECISION)


def test_a_pronunciation_with_the_us_trap_vowel_gets_the_open_one() -> None:
    assert variants("B AE K") == ["B AA K"]
    assert variants("B AE L AH N S") == ["B AA L AH N S"]
    assert variants("S EY L Z") == ["EY L Z"]  # a word-initial /s/ before a vowel
    assert variants("S T AA P") == []  # /s/ before a consonant is kept: nothing to vary


async def test_variants_are_added_once_to_the_decoders_dictionary() -> None:
    await STT.warm_up(1)
    decoder = STT.pool.take()
    assert decoder is not None
    try:
        first = add_variants(decoder, ["back", "stop", "back"])
        again = add_variants(decoder, ["back", "stop"])
        assert len(first) == 1 and first[0].startswith("back(")  # nothing for "stop"
        assert decoder.lookup_word(first[0]) == "B AA K"
        assert decoder.lookup_word("back") == "B AE K"  # the dictionary's own stays first
        assert again == []  # nothing twice
    finally:
        STT.pool.give(decoder)


async def _heard(text: str, voice: str, rate: int, phrases: list[str]) -> str:
    tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
    pcm = bytes(6400) + b"".join([c async for c in tts.synthesize(text)]) + bytes(12800)
    audio = codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm)), 8000, 16000)
    stream = await STT.open_stream(phrases=phrases, min_confidence=0.6)
    try:
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
        result = await stream.finish()
    finally:
        await stream.aclose()
    return result.alternatives[0] if result.alternatives else ""


@pytest.mark.parametrize("word", ["back", "balance"])
async def test_british_open_a_is_heard_as_the_word_not_operator(word: str) -> None:
    # en-gb at 140 wpm, clean: the grammar's best phrase was "operator" with the US vowel only
    assert await _heard(word, "en-gb", 140, BILLING) == word


async def test_sales_over_a_telephone_line_is_heard_as_sales_not_pay_my_bill() -> None:
    # clean en-gb: without the variant with no /s/ the best phrase was "pay my bill"
    assert await _heard("sales", "en-gb", 140, MAIN) == "sales"

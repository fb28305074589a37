"""Pronunciation variants for the words of a pocketsphinx grammar.

pocketsphinx's bundled model is wideband and its dictionary (CMUdict) US English; callers are
8 kHz telephone audio. Two confusions of ``bench/speech.py`` (clean, in both halves of its set) come
from a word's sounds that the dictionary does not allow for:

- the British open /a/: every British voice/rate pair said "back" and "balance" and was heard as
  "operator". The model's ``AA`` is closer to it than ``AE``, so every word with an ``AE`` gets a
  variant with ``AA`` in its place (``back(2)`` = ``B AA K``);
- a telephone /s/: its energy is mostly above 4 kHz, where G.711 has none, so a word-initial /s/
  is near silence to the wideband model: "sales" was heard as "billing" or "pay my bill" in every
  voice.
  A word starting with ``S`` and a vowel gets a variant without the ``S`` (``sales(2)`` =
  ``EY L Z``).

The variants are added before a grammar is compiled (JSGF searches try every variant of a word), to
one decoder's dictionary (each decoder has its own copy), once per word.

Tried and dropped (``docs/speech.md``, "What limits the correct rate"): a narrower filter bank for
8 kHz audio (``-upperf 3800`` in the model's ``feat.params``; the model's features no longer match
its training: 2 of 36 right) and keyword spotting with per-phrase thresholds
(``bench/speech_kws.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = ["Dictionary", "add_variants", "variants"]

# (phone, the variant's phone): the US "trap" vowel and the open vowel other accents use for it
_SUBSTITUTIONS = (("AE", "AA"),)
_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
_MAX_VARIANTS = 10  # a word's pronunciations are word, word(2) ... (CMUdict has at most 4)


class Dictionary(Protocol):
    """The part of a pocketsphinx ``Decoder`` this module uses."""

    def lookup_word(self, word: str) -> str | None: ...

    def add_word(self, word: str, phones: str, update: bool = ...) -> int: ...


def variants(phones: str) -> list[str]:
    """The extra pronunciations for one pronunciation (space-separated phones)."""
    seq = phones.split()
    out: list[str] = []
    for phone, other in _SUBSTITUTIONS:
        if phone in seq:
            out.append(" ".join(other if p == phone else p for p in seq))
    if len(seq) > 2 and seq[0] == "S" and seq[1] in _VOWELS:  # a telephone /s/: near silence
        out.append(" ".join(seq[1:]))
    return out


def _pronunciations(decoder: Dictionary, word: str) -> list[str]:
    found: list[str] = []
    for i in range(1, _MAX_VARIANTS + 1):
        phones = decoder.lookup_word(word if i == 1 else f"{word}({i})")
        if phones is None:
            break
        found.append(phones)
    return found


def add_variants(decoder: Dictionary, words: Iterable[str]) -> list[str]:
    """Add the variants of ``words`` that ``decoder``'s dictionary lacks (before compiling a
    grammar of them); returns the entries added (``back(2)``), none when already there."""
    added: list[str] = []
    for word in dict.fromkeys(words):
        known = _pronunciations(decoder, word)
        for phones in [v for p in known for v in variants(p)]:
            if phones in known or len(known) >= _MAX_VARIANTS:
                continue
            name = f"{word}({len(known) + 1})"
            decoder.add_word(name, phones, False)
            known.append(phones)
            added.append(name)
    return added

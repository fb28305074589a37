"""A grammar of the expected phrases for pocketsphinx's JSGF search (``stt_pocketsphinx``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["dictionary_words", "phrases_to_jsgf", "prefixes"]

_DIGITS = "zero one two three four five six seven eight nine".split()


def dictionary_words(phrase: str) -> list[str]:
    """``phrase`` as the dictionary's words: lower case, digits spelled one by one."""
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


def prefixes(grammar: Sequence[Sequence[str]]) -> frozenset[tuple[str, ...]]:
    """The phrases of ``grammar`` that are the start of a longer one ("billing" when "billing
    question" is a phrase too)."""
    return frozenset(
        tuple(p) for p in grammar for q in grammar if len(q) > len(p) and q[: len(p)] == p
    )

"""DTMF keys and Asterisk-style key patterns of menu/gather choices and anytime commands.

A choice key is either literal keys (``1``, ``"123"``, ``"#"``) that must be pressed exactly,
or a pattern starting with ``_`` as in Asterisk's dialplan: ``X`` any digit 0-9, ``Z`` 1-9,
``N`` 2-9, ``[1-5]`` / ``[13579]`` one key of a set, ``.`` one or more keys, ``!`` zero or more
keys; any other DTMF key (``0-9 * # A-D``) stands for itself. ``_1XX`` matches ``100``-``199``,
``_NXXNXXXXXX`` a ten-digit North American number.

Matching is on the whole key sequence. :func:`can_extend` says whether more keys could still
complete a match, which is how a menu ends its inter-digit wait early (``3`` when only ``_1XX``
choices exist is decided at once).
"""

from __future__ import annotations

import functools

__all__ = [
    "DTMF_KEYS",
    "can_extend",
    "example_number",
    "is_pattern",
    "key_matches",
    "max_length",
    "number_matches",
    "number_problem",
    "pattern_problem",
    "specificity",
]

DTMF_KEYS = frozenset("0123456789*#ABCD")
_CLASSES = {"X": "0123456789", "Z": "123456789", "N": "23456789"}

# One element of a pattern: the keys it accepts, and how often: "1" (once) or "*" (any number).
_Elem = tuple[frozenset[str], str]


def is_pattern(key: str) -> bool:
    """``key`` is a pattern (starts with ``_``), not literal keys."""
    return key.startswith("_")


@functools.lru_cache(maxsize=1024)
def _parse(key: str, alphabet: frozenset[str] = DTMF_KEYS) -> tuple[_Elem, ...]:
    """The elements of pattern ``key`` over ``alphabet`` (the keys that stand for themselves);
    ValueError names the first bad part."""
    body = key[1:]
    if not body:
        raise ValueError("a pattern needs keys after '_'")
    out: list[_Elem] = []
    i = 0
    while i < len(body):
        ch = body[i].upper()
        if ch in _CLASSES:
            out.append((frozenset(_CLASSES[ch]), "1"))
        elif ch in alphabet:
            out.append((frozenset(ch), "1"))
        elif ch in ".!":
            if ch == ".":
                out.append((alphabet, "1"))
            out.append((alphabet, "*"))
        elif ch == "[":
            end = body.find("]", i)
            if end < 0:
                raise ValueError(f"'[' without ']' in '{key}'")
            out.append((_set(body[i + 1 : end], key), "1"))
            i = end
        else:
            what = "a DTMF key" if alphabet == DTMF_KEYS else "a number's character"
            raise ValueError(f"'{body[i]}' is not {what} or pattern letter (X Z N [..] . !)")
        i += 1
    return tuple(out)


def _set(spec: str, key: str) -> frozenset[str]:
    keys: set[str] = set()
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            lo, hi = spec[i], spec[i + 2]
            if not (lo.isdigit() and hi.isdigit() and lo <= hi):
                raise ValueError(f"bad range '{spec[i : i + 3]}' in '{key}'")
            keys.update(str(d) for d in range(int(lo), int(hi) + 1))
            i += 3
            continue
        if spec[i].upper() not in DTMF_KEYS:
            raise ValueError(f"'{spec[i]}' in '[{spec}]' is not a DTMF key")
        keys.add(spec[i].upper())
        i += 1
    if not keys:
        raise ValueError(f"empty set '[]' in '{key}'")
    return frozenset(keys)


def pattern_problem(key: str) -> str | None:
    """Why ``key`` is not valid literal keys or a valid pattern, or None."""
    if is_pattern(key):
        try:
            _parse(key)
        except ValueError as exc:
            return str(exc)
        return None
    if not key or any(ch.upper() not in DTMF_KEYS for ch in key):
        return f"'{key}' is not a DTMF key"
    return None


def _states(elems: tuple[_Elem, ...], keys: str) -> set[int]:
    """The pattern positions reachable after ``keys`` (an NFA: a "1" element takes one key,
    a "*" element any number; ``.`` was parsed as one "1" and one "*")."""
    states = _closure(elems, {0})
    for ch in keys.upper():
        nxt: set[int] = set()
        for i in states:
            if i < len(elems) and ch in elems[i][0]:
                nxt.add(i if elems[i][1] == "*" else i + 1)
        states = _closure(elems, nxt)
        if not states:
            break
    return states


def _closure(elems: tuple[_Elem, ...], states: set[int]) -> set[int]:
    """``states`` plus the positions reachable by skipping "*" elements (zero keys)."""
    out = set(states)
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(elems) and elems[i][1] == "*" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return out


def key_matches(key: str, pressed: str) -> bool:
    """The keys ``pressed`` match choice key ``key`` (literal keys exactly, or the pattern)."""
    if not is_pattern(key):
        return key.upper() == pressed.upper()
    elems = _parse(key)
    return len(elems) in _states(elems, pressed)


def can_extend(key: str, pressed: str) -> bool:
    """More keys after ``pressed`` could still match ``key``."""
    if not is_pattern(key):
        return key.upper().startswith(pressed.upper()) and len(key) > len(pressed)
    elems = _parse(key)
    return any(i < len(elems) for i in _states(elems, pressed))


def max_length(key: str) -> int | None:
    """The most keys ``key`` can match, or None when unbounded (``.``/``!``)."""
    if not is_pattern(key):
        return len(key)
    elems = _parse(key)
    if any(rep == "*" for _, rep in elems):
        return None
    return len(elems)


NUMBER_KEYS = DTMF_KEYS | {"+"}
"""What a dialled number (a route in ``answers``) is made of."""


def number_problem(number: str) -> str | None:
    """Why an ``answers`` entry is not a valid pattern (``_`` first), or None. Literal numbers
    and extensions are any text (Asterisk extensions can be names)."""
    if not is_pattern(number):
        return None
    try:
        _parse(number, NUMBER_KEYS)
    except ValueError as exc:
        return str(exc)
    return None


def number_matches(route: str, called: str) -> bool:
    """The dialled number ``called`` is answered by ``route`` (a literal, or a pattern)."""
    if not is_pattern(route):
        return route == called
    elems = _parse(route, NUMBER_KEYS)
    return len(elems) in _states(elems, called)


def specificity(route: str) -> tuple[int, int, int]:
    """Sort key: the most specific of several matching patterns sorts first (as Asterisk
    prefers ``_12X`` to ``_1XX`` and both to ``_1.``): no wildcard, then longer, then fewer
    keys per position."""
    elems = _parse(route, NUMBER_KEYS)
    wild = sum(1 for _, rep in elems if rep == "*")
    return (wild, -len(elems), sum(len(keys) for keys, _ in elems))


def example_number(route: str) -> str:
    """A number ``route`` answers: itself, or the smallest a pattern matches (``_1XX`` ->
    ``100``); used when a call must be placed to a flow's first ``answers``."""
    if not is_pattern(route):
        return route
    elems = _parse(route, NUMBER_KEYS)
    return "".join(
        min(sorted(keys), key=lambda k: (not k.isdigit(), k)) for keys, rep in elems if rep == "1"
    )

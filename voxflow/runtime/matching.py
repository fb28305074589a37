"""Matching caller input (keys or speech) against choices, commands and captures (pure)."""

from __future__ import annotations

import re
from typing import Any

from voxflow.ir import models as ir
from voxflow.runtime.expressions import UNSET
from voxflow.runtime.runstate import _Abort
from voxflow.spec.dtmf import key_matches

__all__: list[str] = []

_PUNCT = re.compile(r"[^\w\s]+")
_YES = frozenset({"yes", "yeah", "yep", "sure", "correct", "right", "ok", "okay", "affirmative"})
_NO = frozenset({"no", "nope", "nah", "negative", "wrong", "incorrect"})


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _matches(
    value: str,
    kind: str,
    keys: tuple[str, ...],
    phrases: tuple[str, ...],
    patterns: tuple[str, ...],
) -> bool:
    if kind == "dtmf":
        return any(key_matches(k, value) for k in keys)
    text = _norm(value)
    for p in phrases:
        np = _norm(p)
        if np and (text == np or re.search(r"\b" + re.escape(np) + r"\b", text)):
            return True
    for pat in patterns:
        try:
            if re.search(pat, value, re.IGNORECASE):
                return True
        except re.error as exc:
            raise _Abort(f"invalid pattern {pat!r}: {exc}", None) from None
    return False


_WORD_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip


def _capture(cap: ir.Capture | None, value: str, kind: str) -> Any:
    if cap is None or cap.type == "text":
        return value.strip() or UNSET
    if cap.type == "yesno":
        if kind == "dtmf":
            return {"1": True, "2": False}.get(value, UNSET)
        words = set(_norm(value).split())
        if words & _YES and not words & _NO:
            return True
        if words & _NO and not words & _YES:
            return False
        return UNSET
    raw = value
    if kind == "speech":
        raw = "".join(_WORD_DIGITS.get(w, w) for w in _norm(value).split())
    if cap.type == "digits":
        if not raw.isdigit():
            return UNSET
        if cap.min_length is not None and len(raw) < cap.min_length:
            return UNSET
        if cap.max_length is not None and len(raw) > cap.max_length:
            return UNSET
        return raw
    try:
        f = float(raw)
    except ValueError:
        return UNSET
    return int(f) if f.is_integer() else f

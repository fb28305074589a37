"""The language's option tables: which options each step and header accepts and their value
kinds, symbol values, and the names a template reads.

Below both the checker (:mod:`voxflow.check`) and lowering (:mod:`voxflow.ir.options` reads the
values), so each table is defined once.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from voxflow.spec.functions import template_function_names

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "DYNAMIC_OPTIONS",
    "HEADER_OPTIONS",
    "HTTP_METHODS",
    "INERT_OPTIONS",
    "KIND_NUM",
    "KIND_RETRIES",
    "REPEATABLE",
    "RETRYING",
    "STEP_OPTIONS",
    "SYMBOLS",
    "TEXT_REQUIRED",
    "TYPES",
    "UNLIMITED",
    "did_you_mean",
    "template_names",
]

_ARROW_WORDS = {"retry", "continue", "hangup", "return"}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
RETRYING = {"noinput", "nomatch"}
INERT_OPTIONS: dict[str, dict[str, str]] = {
    "queue": {
        "announce_position": "Asterisk's Queue() has no per-call option for position"
        " announcements: they are the queue's own 'announce-position' in queues.conf, and"
        " the sandbox and voxflow test do not announce positions either",
    },
}
"""Options a step accepts that change nothing on Asterisk (step kind -> option -> why): the
checker warns (VF212) instead of letting a flow promise what no call will do."""
_BARGEIN = ("none", "dtmf", "speech", "any")
TYPES = ("string", "number", "bool", "duration", "list", "map", "any")

# Option kinds: how a value is read. See _Opt.read.
KIND_DUR, KIND_INT, KIND_STR, KIND_TPL, KIND_VAR, KIND_BOOL, KIND_EXPR, KIND_SYM = (
    "duration",
    "int",
    "string",
    "template",
    "var",
    "bool",
    "expr",
    "symbol",
)

KIND_NUM = "num"  # a number literal (temperature, confidence)
KIND_RETRIES = "retries"  # a whole number, or `unlimited` (input steps only)
UNLIMITED = "unlimited"

_GATHER_DYNAMIC = {
    "max_digits": "max_digits",
    "timeout": "timeout_ms",
    "interdigit": "interdigit_ms",
}
DYNAMIC_OPTIONS: dict[str, dict[str, str]] = {
    "gather": _GATHER_DYNAMIC,
    "menu": _GATHER_DYNAMIC,
    "record": {"max": "max_duration_ms", "silence": "silence_ms"},
    "dial": {"timeout": "timeout_ms"},
    "bridge": {"timeout": "timeout_ms"},
    "queue": {"timeout": "timeout_ms", "priority": "priority"},
}
"""Options that may be written as an expression (evaluated when the step starts), and the IR
field each sets; the others take literals only."""

HEADER_OPTIONS: dict[str, str] = {
    "answers": "strings",
    "direction": KIND_SYM,
    "title": KIND_STR,
    "language": KIND_STR,
    "voice": KIND_STR,
    "timeout": KIND_DUR,
    "interdigit": KIND_DUR,
    "interdigit_timeout": KIND_DUR,
    "retries": KIND_INT,
    "attempts": KIND_INT,
    "max_attempts": KIND_INT,
    "bargein": KIND_SYM,
    "bargein_min_words": KIND_INT,
    "bargein_min_ms": KIND_DUR,
    "timezone": KIND_STR,
    "http_timeout": KIND_DUR,
    "dial_timeout": KIND_DUR,
    "confidence": KIND_NUM,
}
"""Settings a ``flow`` header accepts, and the kind of value each takes."""

_GATHER = {
    "into": KIND_VAR,
    "input": KIND_SYM,
    "capture": "capture",
    "max_digits": KIND_INT,
    "min_digits": KIND_INT,
    "terminator": KIND_STR,
    "interdigit": KIND_DUR,
    "timeout": KIND_DUR,
    "retries": KIND_RETRIES,
    "attempts": KIND_INT,
    "reprompt": KIND_TPL,
    "choices": KIND_EXPR,
    "bargein": KIND_SYM,
    "voice": KIND_STR,
    "confidence": KIND_NUM,  # the least speech-recognition confidence a spoken answer needs
}
_DIAL = {
    "timeout": KIND_DUR,
    "caller_id": KIND_TPL,
    "music": KIND_STR,
    "ring": KIND_SYM,
    "dtmf": KIND_STR,  # sent to the answered far leg first (navigating its menu)
    "whisper": KIND_TPL,  # then said to it (the caller does not hear it)
    "accept": KIND_STR,  # then the key it must press to take the call (call screening)
    "accept_timeout": KIND_DUR,
}
STEP_OPTIONS: dict[str, dict[str, str]] = {
    "answer": {},
    "hangup": {},
    "say": {"voice": KIND_STR, "bargein": KIND_SYM},
    "play": {"bargein": KIND_SYM, "kind": KIND_SYM},
    "gather": _GATHER,
    "menu": _GATHER,
    "record": {
        "into": KIND_VAR,
        "prompt": KIND_TPL,
        "format": KIND_STR,
        "max": KIND_DUR,
        "silence": KIND_DUR,
        "beep": KIND_BOOL,
        "terminator": KIND_STR,
        "bargein": KIND_SYM,
        "retries": KIND_RETRIES,
        "transcribe": KIND_VAR,
    },
    "record_start": {"format": KIND_STR, "max": KIND_DUR, "beep": KIND_BOOL},
    "dial": _DIAL,
    "bridge": _DIAL,
    "transfer": {"carry": KIND_EXPR},
    "queue": {
        "timeout": KIND_DUR,
        "music": KIND_STR,
        "announce": KIND_TPL,
        "priority": KIND_INT,
        "announce_position": KIND_BOOL,
        "carry": KIND_EXPR,
        "into": KIND_VAR,
    },
    "hold": {"music": KIND_STR},
    "unhold": {},
    "send_dtmf": {},
    "agent": {
        "system": KIND_TPL,
        "greeting": KIND_TPL,
        "max_turns": KIND_INT,
        "timeout": KIND_DUR,
        "silence": KIND_DUR,
        "filler": KIND_TPL,
        "filler_after": KIND_DUR,
        "give_up": KIND_DUR,
        "context": KIND_SYM,
        "into": KIND_VAR,
        "voice": KIND_STR,
        "bargein": KIND_SYM,
        "retries": KIND_RETRIES,
        "model": KIND_STR,
        "temperature": KIND_NUM,
    },
    "log": {"level": KIND_SYM},
    "http": {
        "body": KIND_EXPR,
        "headers": KIND_EXPR,
        "timeout": KIND_DUR,
        "into": KIND_VAR,
        "status": KIND_VAR,
        "retries": KIND_INT,
        "backoff": KIND_DUR,
    },
    "call": {},
    "action": {"body": KIND_EXPR, "headers": KIND_EXPR, "timeout": KIND_DUR},
}
"""Options each step accepts (inline or on lines of its block), and their value kinds."""

SYMBOLS: dict[str, tuple[str, ...]] = {
    "bargein": _BARGEIN,
    "input": ("dtmf", "speech", "both"),
    "direction": ("inbound", "outbound", "any"),
    "context": ("append", "reset", "summary"),
    "level": ("debug", "info", "warning", "error"),
    "kind": ("sound", "file", "url"),
    "ring": ("all", "hunt"),
}
REPEATABLE = {"reprompt"}
TEXT_REQUIRED = {"say", "play", "dial", "bridge", "transfer", "queue", "send_dtmf", "log"}


_EXPR_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.S)
_STRING_LIT = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_IDENT = re.compile(r"(?<![\w.|])\s*\b([A-Za-z_]\w*)\b(?!\s*=[^=])")
_DANGLING = re.compile(r"(?:[|.~+*/%(\[,-]|\b(?:and|or|not|is|in))\s*$|^\s*[|.~*/%)\],]")
_FILTER = re.compile(r"\|\s*[A-Za-z_]\w*")
_TEST = re.compile(r"\bis\s+(?:not\s+)?[A-Za-z_]\w*")
_JINJA_WORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False",
     "None", "loop"}
)  # fmt: skip


def _fast_names(source: str) -> tuple[str, ...] | None:
    """Top-level names of a ``{{ ... }}``-only template, or None when it needs the real parser
    (statements, comments, unbalanced delimiters)."""
    if "{%" in source or "{#" in source or source.count("{{") != source.count("}}"):
        return None
    names: set[str] = set()
    for block in _EXPR_BLOCK.findall(source):
        if "{{" in block or not block.strip():
            return None
        plain = _STRING_LIT.sub('""', block)
        if _DANGLING.search(plain):
            return None
        expr = _TEST.sub(" ", _FILTER.sub(" ", plain))
        for m in _IDENT.finditer(expr):
            if m.group(1) not in _JINJA_WORDS:
                names.add(m.group(1))
    return tuple(sorted(names))


@functools.lru_cache(maxsize=16384)
def template_names(source: str) -> tuple[tuple[str, ...], str | None]:
    """The top-level names a jinja2 template reads, or an error message for a bad template.
    Plain ``{{ expr }}`` templates are scanned directly; others go through jinja2's parser."""
    if "{" not in source:
        return (), None
    fast = _fast_names(source)
    if fast is not None:
        return template_function_names(source, fast)
    import jinja2.meta  # here: jinja2 is ~40 ms of start-up, and most templates need only the scan

    env = _jinja_env()
    try:
        parsed = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return (), exc.message or "bad template"
    return template_function_names(source, frozenset(jinja2.meta.find_undeclared_variables(parsed)))


@functools.cache
def _jinja_env() -> jinja2.Environment:
    import jinja2.sandbox

    return jinja2.sandbox.SandboxedEnvironment()


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None

"""Step and header options: which options each step accepts, and how their values are read.

Shared by :mod:`voxflow.ir.lower` and :mod:`voxflow.ir.lower_steps`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from voxflow.ir import models as ir
from voxflow.ir.functions import template_function_names
from voxflow.source import Span
from voxflow.syntax import ast

if TYPE_CHECKING:
    from voxflow.ir.lower import Lowerer

__all__ = [
    "BAD",
    "HEADER_OPTIONS",
    "HTTP_METHODS",
    "REPEATABLE",
    "RETRYING",
    "STEP_OPTIONS",
    "SUCCESS",
    "SYMBOLS",
    "TEXT_REQUIRED",
    "TYPES",
    "Opts",
    "did_you_mean",
    "read_capture",
    "split_patterns",
    "template_names",
]

_ARROW_WORDS = {"retry", "continue", "hangup", "return"}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SUCCESS = {"match", "answered", "ok", "done", "returned"}
RETRYING = {"noinput", "nomatch"}
_BARGEIN = ("none", "dtmf", "speech", "any")
TYPES = ("string", "number", "bool", "duration", "list", "map", "any")

# Option kinds: how a value is read. See _Opt.read.
_DUR, _INT, _STR, _TPL, _VAR, _BOOL, _EXPR, _SYM = (
    "duration",
    "int",
    "string",
    "template",
    "var",
    "bool",
    "expr",
    "symbol",
)

HEADER_OPTIONS: dict[str, str] = {
    "answers": "strings",
    "direction": _SYM,
    "title": _STR,
    "language": _STR,
    "voice": _STR,
    "timeout": _DUR,
    "interdigit": _DUR,
    "interdigit_timeout": _DUR,
    "retries": _INT,
    "attempts": _INT,
    "max_attempts": _INT,
    "bargein": _SYM,
    "bargein_min_words": _INT,
    "bargein_min_ms": _DUR,
    "timezone": _STR,
    "http_timeout": _DUR,
    "dial_timeout": _DUR,
}
"""Settings a ``flow`` header accepts, and the kind of value each takes."""

_GATHER = {
    "into": _VAR,
    "input": _SYM,
    "capture": "capture",
    "max_digits": _INT,
    "min_digits": _INT,
    "terminator": _STR,
    "interdigit": _DUR,
    "timeout": _DUR,
    "retries": _INT,
    "attempts": _INT,
    "reprompt": _TPL,
    "bargein": _SYM,
    "voice": _STR,
}
STEP_OPTIONS: dict[str, dict[str, str]] = {
    "answer": {},
    "hangup": {},
    "say": {"voice": _STR, "bargein": _SYM},
    "play": {"bargein": _SYM, "kind": _SYM},
    "gather": _GATHER,
    "menu": _GATHER,
    "record": {
        "into": _VAR,
        "prompt": _TPL,
        "format": _STR,
        "max": _DUR,
        "silence": _DUR,
        "beep": _BOOL,
        "terminator": _STR,
        "bargein": _SYM,
        "retries": _INT,
    },
    "record_start": {"format": _STR, "max": _DUR, "beep": _BOOL},
    "dial": {"timeout": _DUR, "caller_id": _TPL, "music": _STR},
    "bridge": {"timeout": _DUR, "caller_id": _TPL, "music": _STR},
    "transfer": {},
    "queue": {"timeout": _DUR, "music": _STR, "announce": _TPL},
    "hold": {"music": _STR},
    "unhold": {},
    "send_dtmf": {},
    "agent": {
        "system": _TPL,
        "greeting": _TPL,
        "max_turns": _INT,
        "timeout": _DUR,
        "silence": _DUR,
        "filler": _TPL,
        "filler_after": _DUR,
        "give_up": _DUR,
        "context": _SYM,
        "into": _VAR,
        "voice": _STR,
        "bargein": _SYM,
        "retries": _INT,
    },
    "log": {"level": _SYM},
    "http": {
        "body": _EXPR,
        "headers": _EXPR,
        "timeout": _DUR,
        "into": _VAR,
        "status": _VAR,
    },
    "call": {},
    "action": {"body": _EXPR, "headers": _EXPR, "timeout": _DUR},
}
"""Options each step accepts (inline or on lines of its block), and their value kinds."""

SYMBOLS: dict[str, tuple[str, ...]] = {
    "bargein": _BARGEIN,
    "input": ("dtmf", "speech", "both"),
    "direction": ("inbound", "outbound", "any"),
    "context": ("append", "reset"),
    "level": ("debug", "info", "warning", "error"),
    "kind": ("sound", "file", "url"),
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
    env = _jinja_env()
    try:
        parsed = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return (), exc.message or "bad template"
    return template_function_names(source, frozenset(jinja2.meta.find_undeclared_variables(parsed)))


@functools.cache
def _jinja_env() -> jinja2.Environment:
    return jinja2.sandbox.SandboxedEnvironment()


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class Bad:
    """Marker for an option value that was reported as invalid."""


BAD: Any = Bad()


class Opts:
    """Option values of one step, read and validated."""

    def __init__(self, lowerer: Lowerer, kind: str) -> None:
        self.lw = lowerer
        self.kind = kind
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}

    def get(self, name: str, default: Any) -> Any:
        return self.values.get(name, default)

    def read(self, opt: ast.Option, kind: str) -> Any:
        lw = self.lw
        self.spans[opt.name] = opt.span
        vals = opt.values
        if kind == _BOOL and not vals:
            return True
        if kind == "strings":
            out = []
            for v in vals:
                if isinstance(v, ast.Literal_) and v.type in ("string", "number"):
                    out.append(str(v.value) if v.type == "string" else (v.text or str(v.value)))
                else:
                    lw.error("VF408", v.span, f"'{opt.name}' takes quoted numbers or extensions")
            return out
        if not vals:
            lw.error("VF408", opt.span, f"option '{opt.name}' needs a value")
            return BAD
        if len(vals) > 1 and kind != _EXPR:
            lw.error("VF408", vals[1].span, f"option '{opt.name}' takes one value")
            return BAD
        v = vals[0]
        if kind == _EXPR:
            return lw.expr(v)
        if kind == _DUR:
            if isinstance(v, ast.Literal_) and v.type == "duration":
                ms = int(v.value or 0)
                if ms <= 0:
                    lw.error("VF401", v.span, f"'{opt.name}' must be longer than zero")
                return ms
            if isinstance(v, ast.Literal_) and v.type == "number":
                lw.error("VF404", v.span, f"'{opt.name}' needs a unit", f"write {v.text}s")
                return BAD
            if isinstance(v, ast.Unary) and v.op == "-" and isinstance(v.operand, ast.Literal_):
                if v.operand.type in ("duration", "number"):
                    lw.error("VF401", v.span, f"'{opt.name}' must be longer than zero")
                    return BAD
            lw.error("VF404", v.span, f"'{opt.name}' takes a duration such as 5s or 500ms")
            return BAD
        if kind == _INT:
            if isinstance(v, ast.Literal_) and v.type == "number" and isinstance(v.value, int):
                if v.value < 1:
                    code = "VF402" if opt.name == "max_digits" else "VF405"
                    lw.error(code, v.span, f"'{opt.name}' must be at least 1")
                return v.value
            lw.error("VF408", v.span, f"'{opt.name}' takes a whole number")
            return BAD
        if kind in (_STR, _TPL):
            if isinstance(v, ast.Literal_) and v.type == "string":
                if opt.name == "terminator" and (
                    len(str(v.value)) != 1 or str(v.value) not in "0123456789*#"
                ):
                    lw.error("VF403", v.span, "a terminator is one DTMF key: 0-9, * or #")
                return lw.template(v) if kind == _TPL else str(v.value)
            lw.error("VF408", v.span, f"'{opt.name}' takes a quoted string")
            return BAD
        if kind == _VAR:
            if isinstance(v, ast.Name):
                return v.name
            lw.error("VF408", v.span, f"'{opt.name}' takes a variable name")
            return BAD
        if kind == _BOOL:
            if isinstance(v, ast.Literal_) and v.type == "bool":
                return bool(v.value)
            lw.error("VF408", v.span, f"'{opt.name}' takes true or false")
            return BAD
        if kind == "capture":
            return read_capture(lw, v)
        allowed = SYMBOLS.get(opt.name, ())
        if isinstance(v, ast.Name) and v.name in allowed:
            return v.name
        lw.error(
            "VF408",
            v.span,
            f"'{opt.name}' must be one of: {', '.join(allowed)}",
            did_you_mean(v.name, allowed) if isinstance(v, ast.Name) else None,
        )
        return BAD


def read_capture(lw: Lowerer, v: ast.Expr) -> Any:
    if isinstance(v, ast.Name) and v.name in ("number", "yesno", "text", "digits"):
        return ir.Capture(type=v.name)
    lw.error(
        "VF408",
        v.span,
        "capture must be digits, number, yesno or text",
        "set lengths with min_digits / max_digits",
    )
    return BAD


def split_patterns(
    patterns: Iterable[ast.Pattern],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    keys = tuple(p.text for p in patterns if p.kind == "key")
    phrases = tuple(p.text for p in patterns if p.kind == "phrase")
    regexes = tuple(p.text for p in patterns if p.kind == "regex")
    return keys, phrases, regexes

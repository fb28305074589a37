"""Reading step and header option values during lowering (the tables of which options each step
accepts are :mod:`voxflow.spec.options`).

Shared by :mod:`voxflow.ir.lower` and :mod:`voxflow.ir.lower_steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from voxflow.ir import models as ir
from voxflow.source import Span
from voxflow.spec.options import (
    DYNAMIC_OPTIONS,
    KIND_BOOL,
    KIND_DUR,
    KIND_EXPR,
    KIND_INT,
    KIND_NUM,
    KIND_RETRIES,
    KIND_STR,
    KIND_TPL,
    KIND_VAR,
    SYMBOLS,
    UNLIMITED,
    did_you_mean,
)
from voxflow.syntax import ast

if TYPE_CHECKING:
    from voxflow.ir.lower import Lowerer

__all__ = ["BAD", "Opts", "read_capture", "split_patterns"]


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
        self.dynamic: list[ir.DynamicOption] = []

    def get(self, name: str, default: Any) -> Any:
        return self.values.get(name, default)

    def _dynamic(self, opt: ast.Option, kind: str, v: ast.Expr) -> bool:
        """Record ``v`` as an expression evaluated when the step starts, when this option of
        this step may be one and ``v`` is not a literal (the checker types it)."""
        field = DYNAMIC_OPTIONS.get(self.kind, {}).get(opt.name)
        if field is None or kind not in (KIND_INT, KIND_DUR) or _literal(v):
            return False
        self.dynamic.append(
            ir.DynamicOption(
                field=field, expr=self.lw.expr(v), kind="int" if kind == KIND_INT else "duration"
            )
        )
        return True

    def read(self, opt: ast.Option, kind: str) -> Any:
        """The value of ``opt`` read as ``kind``; BAD (reported) when it is not one."""
        self.spans[opt.name] = opt.span
        if kind == KIND_BOOL and not opt.values:
            return True
        if kind == "strings":
            return self._strings(opt)
        v = self._single(opt, kind)
        if v is None or self._dynamic(opt, kind, v):
            return BAD  # a dynamic value: the step's default stands until it starts
        if kind == KIND_EXPR:
            return self.lw.expr(v)
        if kind == "capture":
            return read_capture(self.lw, v)
        return _READERS.get(kind, Opts._symbol)(self, opt, v, kind)

    def _single(self, opt: ast.Option, kind: str) -> ast.Expr | None:
        """The option's one value (an expression may have more: the first); None, reported,
        when there is none or too many."""
        vals = opt.values
        if not vals:
            self.lw.error("VF408", opt.span, f"option '{opt.name}' needs a value")
            return None
        if len(vals) > 1 and kind != KIND_EXPR:
            self.lw.error("VF408", vals[1].span, f"option '{opt.name}' takes one value")
            return None
        return vals[0]

    def _strings(self, opt: ast.Option) -> list[str]:
        """Quoted strings or numbers (extensions), as text."""
        out = []
        for v in opt.values:
            if isinstance(v, ast.Literal_) and v.type in ("string", "number"):
                out.append(str(v.value) if v.type == "string" else (v.text or str(v.value)))
            else:
                self.lw.error("VF408", v.span, f"'{opt.name}' takes quoted numbers or extensions")
        return out

    def _duration(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """A duration literal, in milliseconds (longer than zero)."""
        lw = self.lw
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

    def _number(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """A number, as a float (``temperature`` 0-2, ``confidence`` 0-1)."""
        lw = self.lw
        if not (isinstance(v, ast.Literal_) and v.type == "number"):
            lw.error("VF408", v.span, f"'{opt.name}' takes a number")
            return BAD
        value = v.value
        if not isinstance(value, int | float):
            lw.error("VF408", v.span, f"'{opt.name}' takes a number")
            return BAD
        if opt.name == "temperature" and not 0 <= value <= 2:
            lw.error("VF408", v.span, "'temperature' must be between 0 and 2")
            return BAD
        if opt.name == "confidence" and not 0 <= value <= 1:
            lw.error(
                "VF408",
                v.span,
                f"'confidence' must be between 0 and 1, not {v.text or value}",
                "e.g. confidence 0.6: a spoken answer recognised with less is a nomatch",
            )
            return BAD
        return float(value)

    def _whole(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """A whole number of at least 1 (retries: or ``unlimited``; an http step's retries may
        be 0)."""
        if kind == KIND_RETRIES and isinstance(v, ast.Name) and v.name == UNLIMITED:
            return UNLIMITED
        if isinstance(v, ast.Literal_) and v.type == "number" and isinstance(v.value, int):
            least = 0 if (self.kind, opt.name) == ("http", "retries") else 1
            if v.value < least:
                code = "VF402" if opt.name == "max_digits" else "VF405"
                self.lw.error(code, v.span, f"'{opt.name}' must be at least 1")
            return v.value
        hint = "or 'unlimited' (the call's end bounds it)" if kind == KIND_RETRIES else None
        self.lw.error("VF408", v.span, f"'{opt.name}' takes a whole number", hint)
        return BAD

    def _string(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """A quoted string (a template for KIND_TPL); a ``terminator`` is one DTMF key."""
        lw = self.lw
        if isinstance(v, ast.Literal_) and v.type == "string":
            if opt.name == "terminator" and (
                len(str(v.value)) != 1 or str(v.value) not in "0123456789*#"
            ):
                lw.error("VF403", v.span, "a terminator is one DTMF key: 0-9, * or #")
            return lw.template(v) if kind == KIND_TPL else str(v.value)
        lw.error("VF408", v.span, f"'{opt.name}' takes a quoted string")
        return BAD

    def _variable(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """A variable's name."""
        if isinstance(v, ast.Name):
            return v.name
        self.lw.error("VF408", v.span, f"'{opt.name}' takes a variable name")
        return BAD

    def _bool(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """true or false."""
        if isinstance(v, ast.Literal_) and v.type == "bool":
            return bool(v.value)
        self.lw.error("VF408", v.span, f"'{opt.name}' takes true or false")
        return BAD

    def _symbol(self, opt: ast.Option, v: ast.Expr, kind: str) -> Any:
        """One of the option's symbols (:data:`SYMBOLS`)."""
        allowed = SYMBOLS.get(opt.name, ())
        if isinstance(v, ast.Name) and v.name in allowed:
            return v.name
        self.lw.error(
            "VF408",
            v.span,
            f"'{opt.name}' must be one of: {', '.join(allowed)}",
            did_you_mean(v.name, allowed) if isinstance(v, ast.Name) else None,
        )
        return BAD


_READERS: dict[str, Callable[[Opts, ast.Option, ast.Expr, str], Any]] = {
    KIND_DUR: Opts._duration,
    KIND_NUM: Opts._number,
    KIND_INT: Opts._whole,
    KIND_RETRIES: Opts._whole,
    KIND_STR: Opts._string,
    KIND_TPL: Opts._string,
    KIND_VAR: Opts._variable,
    KIND_BOOL: Opts._bool,
}


def _literal(v: ast.Expr) -> bool:
    if isinstance(v, ast.Unary):
        return _literal(v.operand)
    return isinstance(v, ast.Literal_)


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

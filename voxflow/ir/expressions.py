"""IR expressions and templates, plus :class:`Node` (the base of every IR model) and
:class:`Span`. Re-exported by :mod:`voxflow.ir.models`."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from voxflow.spec.functions import ValueType

__all__ = [
    "AttrExpr",
    "BinaryExpr",
    "CallExpr",
    "Expr",
    "IndexExpr",
    "ListExpr",
    "LiteralExpr",
    "MapExpr",
    "Node",
    "SliceExpr",
    "Span",
    "Template",
    "UnaryExpr",
    "ValueType",
    "VarExpr",
]


class Node(BaseModel):
    """Base of every IR model: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(Node):
    """Where something was written: ``file`` plus 1-based line/col, exclusive end column."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int


# ---------------------------------------------------------------- expressions


class LiteralExpr(Node):
    """A constant. Durations are ``type="duration"`` with ``value`` in milliseconds."""

    kind: Literal["literal"] = "literal"
    type: ValueType
    value: str | int | float | bool | None


class VarExpr(Node):
    """A variable (or root such as ``call``)."""

    kind: Literal["var"] = "var"
    name: str


class UnaryExpr(Node):
    """``-x`` or ``not x``."""

    kind: Literal["unary"] = "unary"
    op: Literal["-", "not"]
    operand: Expr


class BinaryExpr(Node):
    """Arithmetic, comparison, membership and short-circuit boolean operators."""

    kind: Literal["binary"] = "binary"
    op: Literal["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in"]
    left: Expr
    right: Expr


class CallExpr(Node):
    """A call of a whitelisted function (see :data:`voxflow.spec.functions.FUNCTIONS`)."""

    kind: Literal["call"] = "call"
    func: str
    args: tuple[Expr, ...] = ()


class ListExpr(Node):
    """``[a, b]``."""

    kind: Literal["list"] = "list"
    items: tuple[Expr, ...] = ()


class MapExpr(Node):
    """``{"k": v}`` (keys are strings)."""

    kind: Literal["map"] = "map"
    entries: tuple[tuple[str, Expr], ...] = ()


class IndexExpr(Node):
    """``target[index]``."""

    kind: Literal["index"] = "index"
    target: Expr
    index: Expr


class SliceExpr(Node):
    """``target[start:stop]`` of a string or list (Python's slice: a bound left out is the
    end, a negative one counts from the end, bounds past the end are clipped)."""

    kind: Literal["slice"] = "slice"
    target: Expr
    start: Expr | None = None
    stop: Expr | None = None


class AttrExpr(Node):
    """``target.name`` (map key or call attribute)."""

    kind: Literal["attr"] = "attr"
    target: Expr
    name: str


Expr = Annotated[
    Union[  # noqa: UP007  (a Union is needed for the discriminator with forward references)
        LiteralExpr,
        VarExpr,
        UnaryExpr,
        BinaryExpr,
        CallExpr,
        ListExpr,
        MapExpr,
        IndexExpr,
        SliceExpr,
        AttrExpr,
    ],
    Field(discriminator="kind"),
]


class Template(Node):
    """A jinja2 template (render in the sandbox); ``names`` are the top-level names it reads."""

    source: str
    names: tuple[str, ...] = ()


for _model in (
    UnaryExpr,
    BinaryExpr,
    CallExpr,
    ListExpr,
    MapExpr,
    IndexExpr,
    SliceExpr,
    AttrExpr,
):
    _model.model_rebuild()

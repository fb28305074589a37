"""The voxflow AST: what the parser produces, one dataclass per construct, every node with a span.

Spans are relative to the file the node was written in; top-level declarations (and everything
they contain) belong to the :class:`Module` that holds them, whose ``path`` names that file. A
:class:`Program` is the root module plus every module it includes, in include order.

Values written as options (``timeout 5s``, ``voice "en-us"``, ``bargein dtmf``) stay expressions
here: bare words are :class:`Name` nodes. The lowering pass (``voxflow.ir.lower``) gives them
meaning per step and reports unknown options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from voxflow.source import Span

__all__ = [
    "Action",
    "ActionHttp",
    "Anytime",
    "Arrow",
    "Attr",
    "Binary",
    "Body",
    "Branch",
    "Call",
    "CallArg",
    "CallStep",
    "Case",
    "Choice",
    "ContinueStep",
    "Expr",
    "FlowHeader",
    "GotoStep",
    "Handler",
    "HttpStep",
    "IfStep",
    "Include",
    "Index",
    "ListLit",
    "Literal_",
    "MapLit",
    "MatchStep",
    "MetaStep",
    "Module",
    "Name",
    "Option",
    "Param",
    "Pattern",
    "PauseStep",
    "Program",
    "RecordStart",
    "RecordStop",
    "RetBind",
    "RetryStep",
    "ReturnStep",
    "Scope",
    "SetStep",
    "SimpleStep",
    "Slice",
    "State",
    "Step",
    "Subflow",
    "Tail",
    "Tool",
    "ToolArg",
    "Unary",
    "VarDecl",
    "dump",
]

# ---------------------------------------------------------------- expressions


@dataclass(slots=True)
class Literal_:
    """A constant: ``type`` is string, number, bool, duration (``value`` in ms) or null.
    ``text`` is the source spelling (e.g. ``"5s"``)."""

    span: Span
    type: Literal["string", "number", "bool", "duration", "null"]
    value: str | int | float | bool | None
    text: str = ""


@dataclass(slots=True)
class Name:
    """A bare word: a variable, or a symbol such as ``dtmf`` in an option value."""

    span: Span
    name: str


@dataclass(slots=True)
class Unary:
    """``-x`` or ``not x``."""

    span: Span
    op: Literal["-", "not"]
    operand: Expr


@dataclass(slots=True)
class Binary:
    """``left op right``; ``op`` includes ``and``, ``or``, ``in`` and ``not in``."""

    span: Span
    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class Call:
    """A function call ``func(args)`` (only whitelisted functions compile)."""

    span: Span
    func: str
    args: tuple[Expr, ...]
    func_span: Span


@dataclass(slots=True)
class ListLit:
    """``[a, b]``."""

    span: Span
    items: tuple[Expr, ...]


@dataclass(slots=True)
class MapLit:
    """``{"key": value, name: value}``."""

    span: Span
    entries: tuple[tuple[str, Expr], ...]


@dataclass(slots=True)
class Index:
    """``target[index]``."""

    span: Span
    target: Expr
    index: Expr


@dataclass(slots=True)
class Slice:
    """``target[start:stop]`` (either bound may be left out)."""

    span: Span
    target: Expr
    start: Expr | None
    stop: Expr | None


@dataclass(slots=True)
class Attr:
    """``target.name``."""

    span: Span
    target: Expr
    name: str


Expr = Union[Literal_, Name, Unary, Binary, Call, ListLit, MapLit, Index, Slice, Attr]  # noqa: UP007  (a runtime alias: `|` makes a UnionType)

# ---------------------------------------------------------------- step parts


@dataclass(slots=True)
class Option:
    """``name value[, value...]``: inline after a step or on its own line in the step's block.
    ``values`` is empty for a bare flag line such as ``beep``."""

    span: Span
    name: str
    values: tuple[Expr, ...]
    name_span: Span


@dataclass(slots=True)
class Pattern:
    """A choice/anytime pattern: DTMF ``key`` (``1`` or ``key "#"``), spoken ``phrase``, or
    ``regex`` (``/tech(nical)? support/i``; ``text`` is the regex, ``i`` flag kept as ``(?i)``)."""

    span: Span
    kind: Literal["key", "phrase", "regex"]
    text: str


@dataclass(slots=True)
class Arrow:
    """``-> target``: a goto, or ``retry``/``continue``/``hangup``/``return`` when the target is
    one of those words."""

    span: Span
    target: str
    target_span: Span


@dataclass(slots=True)
class Body:
    """``:`` and an indented block of steps."""

    span: Span
    steps: tuple[Step, ...]


Tail = Union[Arrow, Body]  # noqa: UP007  (a runtime alias: `|` makes a UnionType)


@dataclass(slots=True)
class Handler:
    """``on noinput, nomatch 2 -> target`` or ``on error:`` + block. ``count`` None means 1."""

    span: Span
    events: tuple[str, ...]
    event_spans: tuple[Span, ...]
    count: int | None
    tail: Tail


@dataclass(slots=True)
class Anytime:
    """``anytime "operator", 0 -> operator``: a command valid during every input step of the
    scope it is written in."""

    span: Span
    patterns: tuple[Pattern, ...]
    tail: Tail


@dataclass(slots=True)
class Choice:
    """``1, "sales", /buy/ -> sales`` inside a gather/menu block."""

    span: Span
    patterns: tuple[Pattern, ...]
    tail: Tail


@dataclass(slots=True)
class ToolArg:
    """``name: type [as var] ["description"]``; ``var`` defaults to ``name``."""

    span: Span
    name: str
    type: str
    var: str
    description: str
    constraints: tuple[Option, ...] = ()
    """JSON-Schema constraints: ``min 1 max 8``, ``one_of ["a", "b"]``, ``pattern "..."``."""


@dataclass(slots=True)
class Tool:
    """``tool name(args) "description" -> target`` inside an agent block."""

    span: Span
    name: str
    args: tuple[ToolArg, ...]
    description: str
    tail: Tail


@dataclass(slots=True)
class ActionHttp:
    """``http method "url" options`` inside an action block."""

    span: Span
    method: str
    method_span: Span
    url: Literal_
    options: tuple[Option, ...] = ()


@dataclass(slots=True)
class Action:
    """``action name(args) "description":`` + an ``http`` line and option lines (``body``,
    ``headers``, ``timeout``) inside an agent block: a tool whose result returns to the model.
    ``requests`` holds every ``http`` line written (lowering wants exactly one)."""

    span: Span
    name: str
    name_span: Span
    args: tuple[ToolArg, ...]
    description: str
    requests: tuple[ActionHttp, ...] = ()
    options: tuple[Option, ...] = ()


# ---------------------------------------------------------------- steps


@dataclass(slots=True)
class SimpleStep:
    """``kind ["template"] options [: block]`` for answer, hangup, say, play, gather,
    menu, record, dial, bridge, transfer, queue, hold, unhold, send_dtmf, agent, log."""

    span: Span
    kind: str
    text: Literal_ | None
    options: tuple[Option, ...] = ()
    choices: tuple[Choice, ...] = ()
    handlers: tuple[Handler, ...] = ()
    tools: tuple[Tool, ...] = ()
    actions: tuple[Action, ...] = ()
    more_texts: tuple[Literal_, ...] = ()
    """Further quoted texts after the first (``dial "PJSIP/a", "PJSIP/b"``)."""


@dataclass(slots=True)
class SetStep:
    """``set var = expr``."""

    span: Span
    var: str
    var_span: Span
    value: Expr


@dataclass(slots=True)
class PauseStep:
    """``pause duration``."""

    span: Span
    duration: Expr


@dataclass(slots=True)
class Branch:
    """One ``if``/``elif`` arm."""

    span: Span
    cond: Expr
    steps: tuple[Step, ...]


@dataclass(slots=True)
class IfStep:
    """``if``/``elif``/``else``; ``else_steps`` None when there is no else."""

    span: Span
    branches: tuple[Branch, ...]
    else_steps: tuple[Step, ...] | None


@dataclass(slots=True)
class Case:
    """``case v1, v2 -> target`` or ``case v1: block``."""

    span: Span
    values: tuple[Expr, ...]
    tail: Tail


@dataclass(slots=True)
class MatchStep:
    """``match subject:`` with ``case`` arms and an optional ``default``."""

    span: Span
    subject: Expr
    cases: tuple[Case, ...]
    default: Tail | None


@dataclass(slots=True)
class RecordStart:
    """``record_start "name" options``."""

    span: Span
    name: Literal_
    options: tuple[Option, ...]


@dataclass(slots=True)
class RecordStop:
    """``record_stop ["name"]``."""

    span: Span
    name: Literal_ | None


@dataclass(slots=True)
class HttpStep:
    """``http post "url" options [: block]``."""

    span: Span
    method: str
    method_span: Span
    url: Literal_
    options: tuple[Option, ...] = ()
    handlers: tuple[Handler, ...] = ()


@dataclass(slots=True)
class CallArg:
    """``name = expr`` in a subflow call or a ``return``."""

    span: Span
    name: str
    value: Expr


@dataclass(slots=True)
class RetBind:
    """``name [as var]`` in ``returns (...)``; ``var`` defaults to ``name``."""

    span: Span
    name: str
    var: str


@dataclass(slots=True)
class CallStep:
    """``call sub(a = 1) returns (x as y) [: block]``."""

    span: Span
    subflow: str
    subflow_span: Span
    args: tuple[CallArg, ...]
    returns: tuple[RetBind, ...]
    options: tuple[Option, ...] = ()
    handlers: tuple[Handler, ...] = ()


@dataclass(slots=True)
class MetaStep:
    """``meta key = expr [webhook]`` (also used in the flow header for route metadata)."""

    span: Span
    key: str
    value: Expr
    webhook: bool


@dataclass(slots=True)
class GotoStep:
    """``goto state``."""

    span: Span
    target: str
    target_span: Span


@dataclass(slots=True)
class RetryStep:
    """``retry``."""

    span: Span


@dataclass(slots=True)
class ContinueStep:
    """``continue``."""

    span: Span


@dataclass(slots=True)
class ReturnStep:
    """``return [name = expr, ...]``."""

    span: Span
    values: tuple[CallArg, ...]


Step = Union[  # noqa: UP007  (a runtime alias: `|` makes a UnionType)
    SimpleStep,
    SetStep,
    PauseStep,
    IfStep,
    MatchStep,
    RecordStart,
    RecordStop,
    HttpStep,
    CallStep,
    MetaStep,
    GotoStep,
    RetryStep,
    ContinueStep,
    ReturnStep,
]

# ---------------------------------------------------------------- declarations


@dataclass(slots=True)
class Include:
    """``include "path"`` (relative to the including file)."""

    span: Span
    path: str


@dataclass(slots=True)
class FlowHeader:
    """``flow name ["title"]:`` with settings (options) and route ``meta`` lines."""

    span: Span
    name: str
    name_span: Span
    title: str | None
    options: tuple[Option, ...]
    metas: tuple[MetaStep, ...]


@dataclass(slots=True)
class VarDecl:
    """``var name[: type] [= expr] [sensitive]``; a sensitive value is redacted in traces,
    logs, transcripts and webhook payloads."""

    span: Span
    name: str
    type: str | None
    default: Expr | None
    sensitive: bool = False


@dataclass(slots=True)
class State:
    """``state name:`` and its steps."""

    span: Span
    name: str
    name_span: Span
    steps: tuple[Step, ...]


@dataclass(slots=True)
class Scope:
    """``scope name:``: handlers and anytime commands that apply to the states inside."""

    span: Span
    name: str
    handlers: tuple[Handler, ...] = ()
    anytimes: tuple[Anytime, ...] = ()
    states: tuple[State, ...] = ()
    scopes: tuple[Scope, ...] = ()


@dataclass(slots=True)
class Param:
    """A subflow parameter or return value ``name[: type] [= default]``."""

    span: Span
    name: str
    type: str | None
    default: Expr | None


@dataclass(slots=True)
class Subflow:
    """``subflow name(params) -> (returns):`` with its own variables, handlers and states.
    Its top level acts as a scope."""

    span: Span
    name: str
    params: tuple[Param, ...]
    returns: tuple[Param, ...]
    vars: tuple[VarDecl, ...] = ()
    handlers: tuple[Handler, ...] = ()
    anytimes: tuple[Anytime, ...] = ()
    states: tuple[State, ...] = ()
    scopes: tuple[Scope, ...] = ()


@dataclass(slots=True)
class Module:
    """One parsed ``.flow`` file. The top level acts as the outermost scope."""

    path: str
    header: FlowHeader | None = None
    includes: list[Include] = field(default_factory=list)
    vars: list[VarDecl] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)
    anytimes: list[Anytime] = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)
    subflows: list[Subflow] = field(default_factory=list)
    extra_headers: list[FlowHeader] = field(default_factory=list)


@dataclass(slots=True)
class Program:
    """The root module and every module it includes (each once, in include order)."""

    root: Module
    modules: list[Module]


def dump(node: Any) -> Any:
    """A JSON-ready, deterministic view of an AST (used for golden files and debugging)."""
    if isinstance(node, Span):
        return f"{node.line}:{node.col}-{node.end_line}:{node.end_col}"
    if isinstance(node, tuple | list):
        return [dump(x) for x in node]
    if hasattr(node, "__dataclass_fields__"):
        out: dict[str, Any] = {"_": type(node).__name__}
        for name in node.__dataclass_fields__:
            value = getattr(node, name)
            if value is None or value == () or value == []:
                continue
            out[name] = dump(value)
        return out
    return node

"""Step options computed when a step starts: ``DynamicOption`` values and a menu's choices
from a list (``choices periods``). Pure: the step is copied with the values filled in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from voxflow.errors import FlowRuntimeError
from voxflow.ir import models as ir

__all__ = ["list_choices", "resolve_options"]

_MAX_LIST_CHOICES = 99


def resolve_options(step: Any, evaluate: Callable[[ir.Expr], Any]) -> Any:
    """``step`` with each dynamic option evaluated, and a list menu's choices built.
    Raises FlowRuntimeError for a value of the wrong kind (the step's ``on error`` runs)."""
    update: dict[str, Any] = {}
    for d in getattr(step, "dynamic", ()):
        update[d.field] = _value(d, evaluate(d.expr))
    source = getattr(step, "choices_from", None)
    if source is not None:
        choices = list_choices(evaluate(source))
        update["choices"] = choices
        if "max_digits" not in update:
            update["max_digits"] = len(str(len(choices)))
        if step.prompt is None:
            text = " ".join(f"For {c.value}, press {c.keys[0]}." for c in choices)
            update["prompt"] = ir.Template(source=_literal_text(text))
    return step.model_copy(update=update) if update else step


def _value(d: ir.DynamicOption, value: Any) -> int:
    name = d.field.removesuffix("_ms")
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a duration" if d.kind == "duration" else "a whole number"
        raise FlowRuntimeError(f"{name} must be {kind}, not {value!r}")
    if d.kind == "int" and value != int(value):
        raise FlowRuntimeError(f"{name} must be a whole number, not {value!r}")
    if value <= 0:
        raise FlowRuntimeError(f"{name} must be above zero, not {value!r}")
    return int(value)


def list_choices(items: Any) -> tuple[ir.Choice, ...]:
    """Choices for the items of a list: key ``n`` or the item's text for the n-th item."""
    if not isinstance(items, list | tuple) or not items:
        raise FlowRuntimeError(f"choices need a non-empty list, not {items!r}")
    if len(items) > _MAX_LIST_CHOICES:
        raise FlowRuntimeError(f"choices take at most {_MAX_LIST_CHOICES} items")
    out: list[ir.Choice] = []
    seen: set[str] = set()
    for n, item in enumerate(items, start=1):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise FlowRuntimeError(f"choice {n} must be text or a number, not {item!r}")
        text = str(item)
        if text in seen:
            raise FlowRuntimeError(f"choice {text!r} is in the list twice")
        seen.add(text)
        span = ir.Span(file="", line=0, col=0, end_line=0, end_col=0)
        out.append(ir.Choice(value=text, keys=(str(n),), phrases=(text,), span=span))
    return tuple(out)


def _literal_text(text: str) -> str:
    """``text`` as a template that renders to itself (list items may hold '{{')."""
    if "{" not in text:
        return text
    return "{% raw %}" + text.replace("{% endraw %}", "") + "{% endraw %}"

"""A call inside subflows, in its checkpoint: each subflow frame and the cursor stack of its
caller, with every cursor's block and input step written as a path into the flow's IR.

A frame's stack holds tuples of IR steps (``Cursor.block``) and the input step a handler
answers (``Cursor.step``). The flow version is pinned by hash, so a path (field names, indexes
and mapping keys from the :class:`~voxflow.ir.models.Flow` root) names the same block on any
worker. :func:`encode` returns None when a cursor cannot be written as a path (the checkpoint
then keeps the main-flow state rule: the subflow starts again); :func:`decode` raises
``LookupError`` for a path the flow lacks.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from voxflow.ir.models import Flow
from voxflow.runtime.expressions import UNSET
from voxflow.runtime.runstate import Cursor, CursorKind, Frame

__all__ = ["decode", "decode_stack", "encode", "encode_stack", "path_of", "resolve"]

Path = tuple[str | int, ...]
_KINDS: tuple[CursorKind, ...] = ("block", "handler", "error", "hangup", "command")
_INDEXES: dict[int, tuple[Flow, dict[int, Path]]] = {}


def _index(flow: Flow) -> dict[int, Path]:
    """id() of every non-empty tuple and every model inside ``flow`` -> its path (cached)."""
    got = _INDEXES.get(id(flow))
    if got is not None and got[0] is flow:
        return got[1]
    out: dict[int, Path] = {}
    _walk(flow, (), out)
    if len(_INDEXES) > 64:  # flows are few; a long-running worker reloading them stays bounded
        _INDEXES.clear()
    _INDEXES[id(flow)] = (flow, out)
    return out


def _walk(node: object, path: Path, out: dict[int, Path]) -> None:
    if isinstance(node, BaseModel):
        out.setdefault(id(node), path)
        for name in type(node).model_fields:
            _walk(getattr(node, name), (*path, name), out)
    elif isinstance(node, tuple):
        if node:
            out.setdefault(id(node), path)
        for i, item in enumerate(node):
            _walk(item, (*path, i), out)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str):
                _walk(value, (*path, key), out)


def _resolve(flow: Flow, path: list[Any]) -> Any:
    node: Any = flow
    for part in path:
        if isinstance(part, int) and isinstance(node, tuple):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, Mapping):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, BaseModel):
            if part not in type(node).model_fields:
                raise LookupError(f"no field {part!r} in the flow")
            node = getattr(node, part)
        else:
            raise LookupError(f"bad path element {part!r}")
    return node


def _cursors(flow: Flow, stack: tuple[Cursor, ...]) -> list[dict[str, Any]] | None:
    index = _index(flow)
    out = []
    for c in stack:
        block = index.get(id(c.block))
        step = None if c.step is None else index.get(id(c.step))
        if block is None or (c.step is not None and step is None):
            return None  # e.g. a step resolved at run time (dynamic options): not in the IR
        out.append({"block": list(block), "index": c.index, "kind": c.kind, "step": step})
    return out


def _cursor(flow: Flow, c: Mapping[str, Any]) -> Cursor:
    kind = next((k for k in _KINDS if k == c["kind"]), None)
    if kind is None:
        raise LookupError(f"bad cursor kind {c['kind']!r}")
    step = None if c["step"] is None else _resolve(flow, list(c["step"]))
    return Cursor(_resolve(flow, list(c["block"])), int(c["index"]), kind, step)


def encode_stack(flow: Flow, stack: tuple[Cursor, ...]) -> list[dict[str, Any]] | None:
    """One frame's cursor stack as paths into ``flow`` (None: a cursor is not in the IR)."""
    return _cursors(flow, stack)


def decode_stack(flow: Flow, raw: list[Mapping[str, Any]]) -> tuple[Cursor, ...]:
    """:func:`encode_stack`'s output as cursors; raises ``LookupError`` (or ``KeyError``,
    ``TypeError``, ``ValueError``) for what ``flow`` lacks."""
    return tuple(_cursor(flow, c) for c in raw)


def path_of(flow: Flow, node: object) -> list[str | int] | None:
    """The path of ``node`` (a step, a block) inside ``flow``; None when it is not there."""
    got = _index(flow).get(id(node))
    return None if got is None else list(got)


def resolve(flow: Flow, path: list[Any]) -> Any:
    """The node at ``path`` (:func:`path_of`); raises ``LookupError`` (or ``IndexError``,
    ``KeyError``) when ``flow`` has none there."""
    return _resolve(flow, path)


def encode(flow: Flow, frames: tuple[Frame, ...]) -> tuple[dict[str, Any], ...] | None:
    """The subflow frames of ``frames`` (after the main one), each with its caller's cursor
    stack; None when a cursor is not a path into ``flow``."""
    out = []
    for caller, frame in itertools.pairwise(frames):
        stack = _cursors(flow, caller.stack)
        if stack is None:
            return None
        out.append(
            {
                "subflow": frame.subflow,
                "state": frame.state,
                "variables": {k: v for k, v in frame.variables.items() if v is not UNSET},
                "counts": [[a, b, n] for (a, b), n in frame.counts.items()],
                "attempts": [[k, n] for k, n in frame.attempts.items()],
                "entry": frame.entry,
                "caller": stack,
            }
        )
    return tuple(out)


def decode(flow: Flow, main: Frame, calls: tuple[Mapping[str, Any], ...]) -> tuple[Frame, ...]:
    """``main`` and the subflow frames of :func:`encode`'s output, each caller's stack rebuilt
    (the innermost frame's stack is empty: resuming re-enters its state). Raises
    ``LookupError`` (or ``KeyError``/``TypeError``/``ValueError``) for what ``flow`` lacks."""
    frames = [main]
    for call in calls:
        caller = frames[-1]
        stack = tuple(_cursor(flow, c) for c in call["caller"])
        frames[-1] = Frame(
            caller.subflow, caller.state, caller.variables, stack,
            caller.counts, caller.attempts, caller.entry,
        )  # fmt: skip
        sub = flow.subflows[str(call["subflow"])]
        if str(call["state"]) not in sub.states:
            raise LookupError(f"subflow '{sub.name}' has no state '{call['state']}'")
        names = [p.name for p in sub.params] + [r.name for r in sub.returns]
        variables: dict[str, Any] = dict.fromkeys(names + [d.name for d in sub.variables], UNSET)
        variables.update(call["variables"])
        frames.append(
            Frame(
                sub.name,
                str(call["state"]),
                MappingProxyType(variables),
                (),
                MappingProxyType({(str(a), str(b)): int(n) for a, b, n in call["counts"]}),
                MappingProxyType({str(k): int(n) for k, n in call["attempts"]}),
                int(call["entry"]),
            )
        )
    return tuple(frames)

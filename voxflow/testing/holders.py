"""What keeps an object alive: its referrers, a few levels up, named by type.

A soak that finds a per-call object still alive after every call ended says what held it, so
a leak seen once on a loaded machine can be traced from its report alone. Only type names,
dict keys, function names and frame locations are given: never values (a dict may hold
credentials).
"""

from __future__ import annotations

import gc
import types

__all__ = ["holders"]


def holders(obj: object, depth: int = 4, width: int = 6) -> list[str]:
    """The referrers of ``obj``, ``depth`` levels up (at most ``width`` followed per level),
    one line each, indented by level; this module's own frames and lists are left out."""
    lines: list[str] = []
    seen: set[int] = {id(obj)}
    level: list[object] = [obj]
    for d in range(depth):
        found: list[object] = []
        for target in level:
            for ref in gc.get_referrers(target):
                if id(ref) in seen or ref is level or ref is found or _own_frame(ref):
                    continue
                seen.add(id(ref))
                lines.append("  " * d + _describe(ref, target))
                found.append(ref)
        level = found[:width]
        if not level:
            break
    return lines


def _own_frame(ref: object) -> bool:
    return isinstance(ref, types.FrameType) and ref.f_code.co_filename == __file__


def _describe(ref: object, target: object) -> str:
    """``ref`` by type, with where ``target`` sits in it (no values)."""
    kind = type(ref).__qualname__
    if isinstance(ref, dict):
        keys = [repr(k)[:40] for k, v in ref.items() if v is target][:3]
        return f"{kind} under {', '.join(keys) or '?'} ({len(ref)} entries)"
    if isinstance(ref, types.FrameType):
        code = ref.f_code
        return f"frame of {code.co_name} ({code.co_filename}:{ref.f_lineno})"
    if isinstance(ref, types.FunctionType | types.MethodType):
        return f"{kind} {ref.__qualname__}"
    if isinstance(ref, list | tuple | set | frozenset):
        return f"{kind} of {len(ref)}"
    return kind

"""What a prompt template may build: the limits the runtime enforces and the checker predicts.

A template runs on the call's worker: ``{{ (1,)*99999999 }}`` would block every call there and
eat gigabytes. The runtime sandbox (``voxflow.runtime.templating``) intercepts ``*``, ``**``,
``+`` and ``%``, ``range`` and the padding methods of strings with :func:`check_binop` and
friends, and caps the rendered text; the checker (``voxflow.check.templates_jinja``) reports
the constant blow-ups it can see with :func:`constant_blowup`. Pure code: no jinja2 import.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "MACRO_CALL_COST",
    "MAX_BUILD",
    "MAX_CPU_SECONDS",
    "MAX_OUTPUT",
    "MAX_POW_BITS",
    "MAX_RANGE",
    "MAX_STEPS",
    "MAX_WIDTH",
    "StepBudget",
    "TemplateLimitError",
    "check_binop",
    "check_join",
    "check_range",
    "check_replace",
    "check_sum",
    "check_width",
    "format_widths_ok",
    "weight",
]

MAX_BUILD = 100_000
"""Items (or characters) one ``*``/``+`` may build."""
MAX_RANGE = 10_000
"""Items ``range()`` may produce."""
MAX_POW_BITS = 4096
"""Bits the result of ``**`` may have."""
MAX_WIDTH = 1_000
"""Padding width (``center``, ``ljust``, ``%-5000s``, ``{:>5000}``...)."""
MAX_OUTPUT = 65_536
"""Characters a rendered template may have."""
MAX_STEPS = 100_000
"""Loop iterations and calls one rendering may make (``range`` is capped, but nested loops,
``loop(...)`` in a recursive loop and a macro calling itself multiply)."""
MACRO_CALL_COST = 10
"""Steps one macro call costs (a call runs a body: tens of microseconds, not one)."""
MAX_CPU_SECONDS = 1.0
"""CPU time one rendering may use, a backstop for steps that are each expensive."""

_PRINTF_WIDTH = re.compile(r"%[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")
_FORMAT_WIDTH = re.compile(r"\{[^{}]*?:[^{}]*?(\d+)")


class TemplateLimitError(ValueError):
    """A template tried to build more than the limits allow."""


class StepBudget:
    """What one rendering may still do: :meth:`spend` counts loop iterations and calls and
    raises :class:`TemplateLimitError` past :data:`MAX_STEPS`, or once the thread has used
    ``cpu_seconds`` of CPU time (read every 256 steps, from the 256th: a CPU clock read is a
    system call of a few microseconds, so most prompts never read it)."""

    __slots__ = ("_clock", "_cpu", "_deadline", "_left", "_since")

    def __init__(
        self,
        steps: int = MAX_STEPS,
        cpu_seconds: float = MAX_CPU_SECONDS,
        clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._left = steps
        self._since = 0  # steps since the clock was last read
        self._clock = clock
        self._cpu = cpu_seconds
        self._deadline = -1.0  # set at the first clock read

    def spend(self, n: int = 1) -> None:
        """Count ``n`` steps."""
        self._left -= n
        if self._left < 0:
            raise TemplateLimitError(
                f"a template may make at most {MAX_STEPS} loop iterations and calls"
            )
        self._since += n
        if self._since >= 256:
            self._since = 0
            now = self._clock()
            if self._deadline < 0:
                self._deadline = now + self._cpu
            elif now > self._deadline:
                raise TemplateLimitError(f"a template may use at most {self._cpu:g} s of CPU time")


def weight(value: Any, limit: int = MAX_BUILD) -> int:
    """What ``value`` holds: the characters of a string; for a list, tuple or dict, its items'
    weights, each at least 1, a reference repeated counted each time (``['x' * 1000] * 1000``
    weighs a million: what printing or joining it builds). Stops counting past ``limit``."""
    total, todo = 0, [value]
    while todo and total <= limit:
        v = todo.pop()
        items: Any = v.values() if isinstance(v, dict) else v
        if isinstance(v, str | bytes):
            total += len(v)
        elif isinstance(v, list | tuple | dict):
            for item in items:
                if isinstance(item, str | bytes | list | tuple | dict) and len(item) > 0:
                    todo.append(item)
                else:
                    total += 1
                if total > limit:
                    break
        else:
            total += 1
    return total


def _size(value: Any) -> int | None:
    return weight(value) if isinstance(value, str | bytes | list | tuple) else None


def check_binop(op: str, left: Any, right: Any) -> None:
    """Raise :class:`TemplateLimitError` if ``left op right`` would be too large."""
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(n, int) and size * max(n, 0) > MAX_BUILD:
                raise TemplateLimitError(
                    f"a template may build at most {MAX_BUILD} items, not {size} x {n}"
                )
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            bits = right * math.log2(abs(left))
            if bits > MAX_POW_BITS:
                raise TemplateLimitError(f"{left} ** {right} is too large for a template")
    elif op == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_BUILD:
            raise TemplateLimitError(f"a template may build at most {MAX_BUILD} items")
    elif op == "%" and isinstance(left, str):
        stars = right if isinstance(right, tuple) else (right,)
        wide_star = "*" in left and any(isinstance(x, int) and x > MAX_WIDTH for x in stars)
        if wide_star or not format_widths_ok(left):
            raise TemplateLimitError(f"format widths above {MAX_WIDTH} are not allowed")


def check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    """Raise if ``text.replace(old, new, count)`` would be longer than :data:`MAX_BUILD`: one
    replacement string repeated at every match multiplies the text."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    n = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and 0 <= count < n:
        n = count
    if len(text) + n * (len(new) - len(old)) > MAX_BUILD:
        raise TemplateLimitError(f"a replace() may build at most {MAX_BUILD} characters")


def check_join(sep: Any, items: Any) -> None:
    """Raise if joining ``items`` with ``sep`` would build more than :data:`MAX_BUILD`
    characters (a list of many references to one long string)."""
    if not isinstance(items, list | tuple):
        return
    size = len(sep) * max(len(items) - 1, 0) if isinstance(sep, str) else 0
    for item in items:
        size += weight(item)
        if size > MAX_BUILD:
            raise TemplateLimitError(f"a join may build at most {MAX_BUILD} characters")


def check_sum(items: Any, start: Any) -> None:
    """Raise if ``sum(items, start)`` of sequences builds more than :data:`MAX_BUILD` items, or
    copies more than ``100 * MAX_BUILD`` on the way (each ``+`` copies the sum so far)."""
    size = _size(start)
    if size is None or not isinstance(items, list | tuple):
        return
    copied = 0
    for item in items:
        size += _size(item) or 0
        copied += size
        if size > MAX_BUILD or copied > 100 * MAX_BUILD:
            raise TemplateLimitError(f"a template may build at most {MAX_BUILD} items")


def check_range(*args: int) -> None:
    """Raise if ``range(*args)`` has more than :data:`MAX_RANGE` items."""
    if len(range(*args)) > MAX_RANGE:
        raise TemplateLimitError(f"range() in a template may have at most {MAX_RANGE} items")


def check_width(width: Any) -> None:
    """Raise if a padding width is above :data:`MAX_WIDTH`."""
    if isinstance(width, int) and width > MAX_WIDTH:
        raise TemplateLimitError(f"a padding width of {width} is above {MAX_WIDTH}")


def format_widths_ok(fmt: str) -> bool:
    """False when a printf (``%5000d``) or ``str.format`` (``{:>5000}``) spec is too wide."""
    for m in _PRINTF_WIDTH.finditer(fmt):
        for g in m.groups():
            if g is not None and g.isdigit() and int(g) > MAX_WIDTH:
                return False
    return all(int(m.group(1)) <= MAX_WIDTH for m in _FORMAT_WIDTH.finditer(fmt))

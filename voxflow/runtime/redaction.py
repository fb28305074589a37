"""Sensitive flow variables (``var card: string sensitive``) never leave the call in clear.

A :class:`Redactor` knows a call's sensitive variable names and reads their current values from
the call's :class:`~voxflow.runtime.runstate.RunState`. The server puts it between the driver and
everything that records the call:

* the interpreter masks the caller's input as a step *takes* it (:func:`taken`): a key that
  goes into a sensitive ``gather``, typed ahead or not, is traced as ``{"digit": "<redacted>"}``
  (the terminator stays, so ``voxflow replay`` presses as many keys and the gather ends the
  same way), a sentence as ``"<redacted>"`` with a same-shape ``stand_in`` to replay (the
  driver then redacts the recogniser's n-best ``alternatives`` too; the ``confidence`` stays);
* :class:`RedactingTrace` wraps the trace: a value is ``<redacted>`` wherever it appears, and
  so are the variables of ``call.ended``. It also keeps ``call.started`` to one record.
* :meth:`Redactor.transcript` masks live transcript lines (written when a key is pressed,
  before any step takes it: ``[pressed *]`` for a key into a sensitive gather or typed ahead,
  ``<redacted>`` for what the caller says into a sensitive gather);
* :meth:`Redactor.payload` is applied to webhook metadata and data;
* the logging filter of :mod:`voxflow.redact` asks :meth:`Redactor.values` while the call runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from voxflow.ir import models as ir
from voxflow.ir import steps as irs
from voxflow.redact import REDACTED
from voxflow.runtime.expressions import UNSET
from voxflow.runtime.matching import _WORD_DIGITS, _capture, _norm
from voxflow.runtime.runstate import RunState
from voxflow.runtime.trace import CallTrace

__all__ = [
    "RedactingTrace",
    "Redactor",
    "is_sensitive",
    "sensitive_names",
    "taken",
    "without_values",
]

_MIN_SUBSTRING = 3  # shorter values are redacted only where a whole field equals them
_PRESSED = re.compile(r"\[pressed (.)\]")


def without_values(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` (longest first) replaced by ``<redacted>``; a value
    shorter than 3 characters only where it is the whole text."""
    for value in values:
        if text == value or (len(value) >= _MIN_SUBSTRING and value in text):
            text = text.replace(value, REDACTED)
    return text


def is_sensitive(flow: ir.Flow, subflow: str | None, name: str) -> bool:
    """``name``, assigned in a frame of ``subflow`` (None: the flow), is a sensitive variable."""
    scope = flow.subflows[subflow].variables if subflow in flow.subflows else flow.variables
    for v in scope:
        if v.name == name:
            return v.sensitive
    return subflow is not None and any(v.name == name and v.sensitive for v in flow.variables)


def taken(
    data: dict[str, Any],
    flow: ir.Flow,
    subflow: str | None,
    step: ir.GatherStep,
    into: bool = True,
) -> dict[str, Any]:
    """The ``input`` notification of a key or sentence that ``step`` takes (``into``: into its
    variable). The interpreter decides masking here, when the input is *taken*, so a key typed
    ahead (pressed before the gather started, while it waited in the type-ahead buffer) is
    masked like one pressed during it: the secret never reaches the command stream. A masked
    sentence carries a ``stand_in`` when the gather captures digits or a number: the same
    digits, each ``0``, so ``voxflow replay`` takes the same path without the secret."""
    if not into or step.var is None or not is_sensitive(flow, subflow, step.var):
        return data
    if data.get("kind") == "dtmf":
        return {**data, "digit": REDACTED}
    out = {**data, "text": REDACTED}
    cap, text = step.capture, str(data.get("text", ""))
    if not step.choices and cap is not None and cap.type in ("digits", "number"):
        if _capture(cap, text, "speech") is not UNSET:
            raw = "".join(_WORD_DIGITS.get(w, w) for w in _norm(text).split())
            out["stand_in"] = re.sub(r"\d", "0", raw)
    return out


def sensitive_names(flow: ir.Flow) -> dict[str | None, frozenset[str]]:
    """Sensitive variable names per frame: ``None`` for the flow, else the subflow name."""
    out: dict[str | None, frozenset[str]] = {
        None: frozenset(v.name for v in flow.variables if v.sensitive)
    }
    for sub in flow.subflows.values():
        out[sub.name] = frozenset(v.name for v in sub.variables if v.sensitive)
    return out


class Redactor:
    """One call's redaction: ``state()`` reads the call's current interpreter state."""

    def __init__(self, flow: ir.Flow, state: Callable[[], RunState | None]) -> None:
        self.flow = flow
        self.names = sensitive_names(flow)
        self.enabled = any(self.names.values())
        self._state = state
        self._seen: set[str] = set()

    def values(self) -> list[str]:
        """Every value a sensitive variable has held in this call (longest first)."""
        st = self._state() if self.enabled else None
        if st is not None:
            for frame in st.frames:
                for name in self.names.get(frame.subflow, frozenset()):
                    value = frame.variables.get(name, UNSET)
                    if value is not UNSET and value is not None and str(value) != "":
                        self._seen.add(str(value))
        return sorted(self._seen, key=len, reverse=True)

    def collecting(self) -> bool:
        """The call is waiting in a ``gather`` into a sensitive variable."""
        st = self._state() if self.enabled else None
        if st is None or st.wait is None or st.wait.kind != "gather" or not st.frames:
            return False
        step = st.wait.step
        var = getattr(step, "var", None) if isinstance(step, irs.GatherStep) else None
        return var is not None and is_sensitive(self.flow, st.frames[-1].subflow, var)

    def shown(self, key: str) -> bool:
        """A key pressed now may be shown: a gather that is not into a sensitive variable takes
        it, or it is the terminator of one that is. A key no gather takes now waits in the
        type-ahead buffer for a later step, which may be a sensitive gather: it is masked."""
        st = self._state()
        wait = st.wait if st is not None else None
        if wait is None or wait.kind != "gather" or not isinstance(wait.step, irs.GatherStep):
            return False
        return key == wait.step.terminator if self.collecting() else True

    def text(self, text: str) -> str:
        """``text`` without any sensitive value."""
        return without_values(text, self.values())

    def payload(self, value: Any) -> Any:
        """A JSON-like value (webhook metadata, trace fields) without sensitive values."""
        if not self.enabled:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.payload(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.payload(v) for v in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return REDACTED if str(value) in self.values() else value
        return value

    def transcript(self, text: str, who: str = "") -> str:
        """A transcript line (written as it happens): a key pressed into a sensitive gather, or
        typed ahead while no gather listens, shows as ``*`` (see :meth:`shown`); what the
        caller says into a sensitive gather is ``<redacted>``."""
        if not self.enabled:
            return text
        if _PRESSED.search(text) is None:
            return REDACTED if who == "caller" and self.collecting() else self.text(text)
        text = _PRESSED.sub(lambda m: m.group(0) if self.shown(m.group(1)) else "[pressed *]", text)
        return self.text(text)


class RedactingTrace:
    """A :class:`~voxflow.runtime.trace.CallTrace` that writes through ``redactor``."""

    def __init__(self, inner: CallTrace, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor
        self._started = False

    @property
    def path(self) -> Any:
        return getattr(self.inner, "path", None)

    def write(self, type_: str, /, **fields: Any) -> None:
        """Record one event, redacted; a second ``call.started`` is dropped."""
        if type_ == "call.started":
            if self._started:
                return
            self._started = True
        r = self.redactor
        if r.enabled:
            if type_ == "call.ended" and isinstance(fields.get("variables"), dict):
                hidden = self.redactor.names.get(None, frozenset())
                fields["variables"] = {
                    k: REDACTED if k in hidden else v for k, v in fields["variables"].items()
                }
            fields = {k: r.payload(v) if k != "digit" else v for k, v in fields.items()}
        self.inner.write(type_, **fields)

    def close(self) -> None:
        """The call ended."""
        self.inner.close()

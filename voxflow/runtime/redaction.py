"""Sensitive flow variables (``var card: string sensitive``) never leave the call in clear.

A :class:`Redactor` knows a call's sensitive variable names and reads their current values from
the call's :class:`~voxflow.runtime.runstate.RunState`. The server puts it between the driver and
everything that records the call:

* :class:`RedactingTrace` wraps the trace: a value is ``<redacted>`` wherever it appears, the
  variables of ``call.ended`` are, and the keys pressed into a sensitive ``gather`` are written as
  ``{"digit": "<redacted>"}`` (the terminator stays, so ``voxflow replay`` presses as many keys,
  as digits, and the gather ends the same way); what the caller says into one is too. It also
  keeps ``call.started`` to one record.
* :meth:`Redactor.transcript` masks transcript lines (``[pressed *]``, what the caller says
  into a sensitive ``gather``);
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
from voxflow.runtime.runstate import RunState
from voxflow.runtime.trace import CallTrace

__all__ = ["RedactingTrace", "Redactor", "sensitive_names"]

_MIN_SUBSTRING = 3  # shorter values are redacted only where a whole field equals them
_PRESSED = re.compile(r"\[pressed (.)\]")


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
        self.names = sensitive_names(flow)
        self.enabled = any(self.names.values())
        self._state = state
        self._seen: set[str] = set()
        self._masking: str | None = None  # the gather's terminator while masking key presses

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
        return var is not None and var in self.names.get(st.frames[-1].subflow, frozenset())

    def terminator(self) -> str | None:
        st = self._state()
        step = st.wait.step if st is not None and st.wait is not None else None
        return step.terminator if isinstance(step, irs.GatherStep) else None

    def text(self, text: str) -> str:
        """``text`` without any sensitive value."""
        for value in self.values():
            if text == value or (len(value) >= _MIN_SUBSTRING and value in text):
                text = text.replace(value, REDACTED)
        return text

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
        """A transcript line: keys pressed into a sensitive gather show as ``*`` (the last key
        of the gather too: masking goes on until a line other than a key press), and what the
        caller says into one is ``<redacted>``."""
        if not self.enabled:
            return text
        if who == "caller" and _PRESSED.search(text) is None and self.collecting():
            return REDACTED
        if _PRESSED.search(text) is None:
            self._masking = None
        elif self.collecting():
            self._masking = self.terminator() or ""
        if self._masking is not None:
            term = self._masking
            text = _PRESSED.sub(lambda m: m.group(0) if m.group(1) == term else "[pressed *]", text)
        return self.text(text)


class RedactingTrace:
    """A :class:`~voxflow.runtime.trace.CallTrace` that writes through ``redactor``."""

    def __init__(self, inner: CallTrace, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor
        self._started = False
        self._masking: str | None = None  # the gather's terminator, until the gather's outcome

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
            if r.collecting():  # from the gather's prompt on, until its outcome
                self._masking = r.terminator() or ""
            if type_ == "input" and self._masking is not None:
                if fields.get("kind") == "dtmf" and fields.get("digit") != self._masking:
                    fields["digit"] = REDACTED
                elif fields.get("kind") == "speech":
                    fields["text"] = REDACTED
            elif type_ == "outcome":
                self._masking = None
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

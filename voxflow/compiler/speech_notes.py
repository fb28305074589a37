"""``voxflow lint``'s VF501 note: a step that expects free-form speech, with the offline speech
recogniser configured.

pocketsphinx recognises a grammar of known phrases well enough (a menu's spoken choices), but its
general language model cannot transcribe free speech usefully ("Tuesday" came back as "you
make"). A step expects free speech when it listens without choices: a ``gather``/``menu`` that
takes speech and has no choice lines nor ``choices``, an ``agent``, and a ``record`` with
``transcribe``. Which speech-to-text is configured is the caller's business (the CLI reads it
the way ``voxflow run`` does, from ``VOXFLOW_STT_*``); this module only walks the compiled flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from voxflow.diagnostics import Diagnostic, Severity
from voxflow.ir import models as ir
from voxflow.source import Span

__all__ = ["OFFLINE_STT", "free_speech_notes", "free_speech_steps"]

OFFLINE_STT = "pocketsphinx"
_HINT = (
    "for free text run a local OpenAI-compatible speech server (e.g. faster-whisper) and set "
    "VOXFLOW_STT_PROVIDER=openai VOXFLOW_STT_BASE_URL=http://127.0.0.1:8000/v1 "
    "(docs/speech.md, 'Free-form speech')"
)


def _steps(steps: Iterable[Any]) -> Iterator[Any]:
    """Every step of a block, nested ones (if/match branches, outcome handlers) included."""
    for s in steps:
        yield s
        if s.op == "if":
            for b in s.branches:
                yield from _steps(b.steps)
            yield from _steps(s.else_steps)
        elif s.op == "switch":
            for c in s.cases:
                yield from _steps(c.steps)
            yield from _steps(s.default_steps)
        for handlers in getattr(s, "on", {}).values():
            for h in handlers:
                yield from _steps(h.steps)


def _all_steps(flow: ir.Flow) -> Iterator[Any]:
    states = [*flow.states.values()]
    for sub in flow.subflows.values():
        states += sub.states.values()
    for st in states:
        yield from _steps(st.steps)
        for h in (*st.on_error, *st.on_hangup):
            yield from _steps(h.steps)
        for c in st.commands:
            yield from _steps(c.handler.steps)


def _what(s: Any) -> str | None:
    """Why step ``s`` expects free-form speech, or None."""
    if s.op == "gather" and s.input != "dtmf" and not s.choices and s.choices_from is None:
        kind = "capture " + s.capture.type if s.capture is not None else "no choices"
        return f"this gather listens for free-form speech ({kind})"
    if s.op == "agent":
        return "this agent step listens for free-form speech"
    if s.op == "record" and s.transcript_var is not None:
        return "this recording is transcribed (free-form speech)"
    return None


def free_speech_steps(flow: ir.Flow) -> list[tuple[ir.Span, str]]:
    """Where ``flow`` expects free-form speech (each step once, in source order), and why."""
    found: dict[tuple[str, int, int], tuple[ir.Span, str]] = {}
    for s in _all_steps(flow):
        why = _what(s)
        if why is not None:
            sp = s.span
            found.setdefault((sp.file, sp.line, sp.col), (sp, why))
    return [found[k] for k in sorted(found)]


def free_speech_notes(flow: ir.Flow, stt: str) -> list[Diagnostic]:
    """VF501 notes for ``flow`` when the configured speech-to-text ``stt`` (a provider name:
    ``pocketsphinx``, ``openai``, ``deepgram``) is the offline one; none otherwise."""
    if stt != OFFLINE_STT:
        return []
    out = []
    for sp, why in free_speech_steps(flow):
        span = Span.point(sp.line, sp.col)  # the step's first character: steps can be long
        message = f"{why}, but the configured speech-to-text is the offline one ({stt})"
        out.append(Diagnostic(Severity.NOTE, "VF501", span, message, _HINT, sp.file))
    return out

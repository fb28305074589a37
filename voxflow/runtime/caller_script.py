"""Caller scripts for ``voxflow run --caller SCRIPT``: what a simulated caller does, line by line.

Format (one action per line; ``#`` starts a comment, except as a key of ``press``; durations
are ``1.5s`` or ``300ms``)::

    wait 2s                 # do nothing for 2 seconds (the call's audio keeps flowing)
    wait for "main menu"    # wait until the flow starts saying something containing this text
    wait for "menu" 20s     #   ... with a custom timeout (default 30 s)
    press 1                 # send DTMF digits (0-9, *, #, A-D), e.g. "press 1234#", "press #"
    say "sales please"      # speak a sentence into the call (espeak-ng over RTP)
    silence 6s              # stay silent for 6 seconds (no-input)
    expect "Goodbye"        # fail the run unless the flow said this by now
    hangup                  # hang up (the flow's hang-up handler runs)

:func:`parse_script` returns the actions or raises :class:`ConfigError` naming the line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxflow.errors import ConfigError

__all__ = ["CallerAction", "load_script", "parse_duration", "parse_script"]

ActionKind = Literal["wait", "wait_for", "press", "say", "silence", "expect", "hangup"]
_DTMF = re.compile(r"^[0-9*#A-Da-d]+$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_PRESS = re.compile(r"(?i)^\s*press(?:\s+(.*))?$")


@dataclass(frozen=True, slots=True)
class CallerAction:
    """One scripted caller action. ``seconds`` for wait/silence/wait_for timeout."""

    kind: ActionKind
    text: str = ""
    seconds: float = 0.0
    line: int = 0

    def describe(self) -> str:
        """Human-readable form for transcripts."""
        if self.kind in ("wait", "silence"):
            return f"{self.kind} {self.seconds:g}s"
        if self.kind == "hangup":
            return "hangup"
        if self.kind == "press":
            return f"press {self.text}"
        return f'{self.kind.replace("_", " ")} "{self.text}"'


def parse_duration(text: str) -> float:
    """``"1.5s"`` -> 1.5, ``"300ms"`` -> 0.3, ``"2m"`` -> 120, ``"4"`` -> 4 (seconds)."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"invalid duration {text!r} (use e.g. 2s or 500ms)")
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value / 1000.0 if unit == "ms" else value * 60.0 if unit == "m" else value


def parse_script(text: str, *, name: str = "<script>") -> list[CallerAction]:
    """Parse a caller script; errors name ``name:line``."""
    actions: list[CallerAction] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        press = _PRESS.match(raw)
        if press:
            try:
                actions.append(_parse_press(press.group(1) or "", lineno))
            except ValueError as exc:
                raise ConfigError(f"{name}:{lineno}: {exc}") from None
            continue
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ConfigError(f"{name}:{lineno}: {exc}") from None
        if not words:
            continue
        verb, args = words[0].lower(), words[1:]
        try:
            actions.append(_parse_action(verb, args, lineno))
        except ValueError as exc:
            raise ConfigError(f"{name}:{lineno}: {exc}") from None
    return actions


def _parse_press(rest: str, line: int) -> CallerAction:
    """``press`` keys: DTMF tokens (``#`` included, quotes optional); a comment starts at a
    token that is not DTMF, or at a lone ``#`` followed by words (``press 1 # sales``)."""
    tokens = rest.split()
    keys: list[str] = []
    for i, raw_tok in enumerate(tokens):
        tok = raw_tok.strip("\"'")
        if raw_tok.startswith("#") and not _DTMF.match(tok):
            break
        if tok == "#" and i + 1 < len(tokens) and not _DTMF.match(tokens[i + 1].strip("\"'")):
            break
        if not _DTMF.match(tok):
            raise ValueError(f"expected: press DIGITS (0-9, *, #, A-D), got {raw_tok!r}")
        keys.append(tok)
    if not keys:
        raise ValueError("expected: press DIGITS (0-9, *, #, A-D)")
    return CallerAction("press", text="".join(keys).upper(), line=line)


def _parse_action(verb: str, args: list[str], line: int) -> CallerAction:
    if verb == "wait" and args and args[0].lower() == "for":
        if len(args) not in (2, 3) or not args[1].strip():  # "" would match any prompt
            raise ValueError('expected: wait for "TEXT" [TIMEOUT]')
        timeout = parse_duration(args[2]) if len(args) == 3 else 30.0
        return CallerAction("wait_for", text=args[1], seconds=timeout, line=line)
    if verb in ("wait", "silence"):
        if len(args) != 1:
            raise ValueError(f"expected: {verb} DURATION (e.g. {verb} 2s)")
        kind: ActionKind = "wait" if verb == "wait" else "silence"
        return CallerAction(kind, seconds=parse_duration(args[0]), line=line)
    if verb == "press":
        digits = "".join(args)
        if not digits or not _DTMF.match(digits):
            raise ValueError("expected: press DIGITS (0-9, *, #, A-D)")
        return CallerAction("press", text=digits.upper(), line=line)
    if verb in ("say", "expect"):
        if len(args) != 1 or not args[0].strip():
            raise ValueError(f'expected: {verb} "TEXT" (quote sentences)')
        said: ActionKind = "say" if verb == "say" else "expect"
        return CallerAction(said, text=args[0], line=line)
    if verb == "hangup":
        if args:
            raise ValueError("hangup takes no arguments")
        return CallerAction("hangup", line=line)
    raise ValueError(
        f"unknown action {verb!r} (expected wait, wait for, press, say, silence, expect, hangup)"
    )


MAX_SCRIPT_BYTES = 1_000_000
"""The largest caller script file read."""


def load_script(path: str | Path) -> list[CallerAction]:
    """Read and parse a script file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:  # a pipe (--caller <(...)) is fine; /dev/zero is not read on
            data = fh.read(MAX_SCRIPT_BYTES + 1)
        if len(data) > MAX_SCRIPT_BYTES:
            raise ConfigError(f"caller script {p} is larger than {MAX_SCRIPT_BYTES} bytes")
        text = data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read caller script {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read caller script {p}: not UTF-8 text (byte at offset {exc.start})"
        ) from None
    return parse_script(text, name=str(p))

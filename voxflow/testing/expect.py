"""Check a scenario's expectations against a simulated call; every mismatch is one message."""

from __future__ import annotations

import re
from typing import Any

from voxflow.testing.scenario import Expect
from voxflow.testing.sim import SimResult

__all__ = ["check_expectations"]


def _subsequence(patterns: tuple[str, ...], items: list[str], *, regex: bool) -> str | None:
    """None when every pattern matches an item, in order; else the first that does not."""
    i = 0
    for pat in patterns:
        while i < len(items):
            item = items[i]
            i += 1
            ok = re.search(pat, item) is not None if regex else _same_state(pat, item)
            if ok:
                break
        else:
            return pat
    return None


def _same_state(expected: str, visited: str) -> bool:
    return expected == visited or (
        "." in visited and "." not in expected and visited.split(".", 1)[1] == expected
    )


def _show(items: list[str], limit: int = 8) -> str:
    if not items:
        return "nothing"
    shown = [repr(x) for x in items[:limit]]
    more = f" ... (+{len(items) - limit})" if len(items) > limit else ""
    return ", ".join(shown) + more


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return bool(expected == actual)


def check_expectations(exp: Expect, res: SimResult) -> list[str]:
    """Every expectation of ``exp`` that ``res`` does not meet, as a sentence."""
    out: list[str] = []
    missing = _subsequence(exp.said, res.said, regex=True)
    if missing is not None:
        out.append(f"said: nothing matched /{missing}/ (in order); the flow said {_show(res.said)}")
    for pat in exp.not_said:
        hit = next((s for s in res.said if re.search(pat, s)), None)
        if hit is not None:
            out.append(f"not_said: /{pat}/ matched {hit!r}")
    missing = _subsequence(exp.played, res.played, regex=True)
    if missing is not None:
        out.append(f"played: nothing matched /{missing}/; the flow played {_show(res.played)}")
    missing = _subsequence(exp.states, res.states, regex=False)
    if missing is not None:
        out.append(
            f"states: '{missing}' was not visited in the expected order; "
            f"visited {' -> '.join(res.states) or 'no state'}"
        )
    for name in exp.not_visited:
        if any(_same_state(name, s) for s in res.states):
            out.append(f"not_visited: state '{name}' was visited")
    for name, want in exp.variables.items():
        if name not in res.variables:
            out.append(f"variables: '{name}' is unset (expected {want!r})")
        elif not _equal(want, res.variables[name]):
            out.append(f"variables: '{name}' is {res.variables[name]!r}, expected {want!r}")
    for key, want in exp.metadata.items():
        got = res.metadata.get(key)
        if key not in res.metadata or not _equal(want, got):
            out.append(f"metadata: '{key}' is {got!r}, expected {want!r}")
    targets: tuple[tuple[str, str | None, list[str]], ...] = (
        ("transfer", exp.transfer, res.transfers),
        ("queue", exp.queue, res.queues),
    )
    for label, rx, items in targets:
        if rx is not None and not any(re.search(rx, x) for x in items):
            out.append(f"{label}: nothing matched /{rx}/; got {_show(items)}")
    missing = _subsequence(exp.dialed, res.dialed, regex=True)
    if missing is not None:
        out.append(f"dialed: nothing matched /{missing}/; dialed {_show(res.dialed)}")
    missing = _subsequence(exp.http, res.http, regex=True)
    if missing is not None:
        out.append(f"http: no request matched /{missing}/; requests {_show(res.http)}")
    if exp.recording is True and not res.recordings:
        out.append("recording: no recording was made")
    elif exp.recording is False and res.recordings:
        out.append(f"recording: expected none, got {_show(res.recordings)}")
    elif isinstance(exp.recording, str) and not any(
        re.search(exp.recording, r) for r in res.recordings
    ):
        out.append(f"recording: nothing matched /{exp.recording}/; got {_show(res.recordings)}")
    if exp.ended is not None:
        out.extend(_check_end(exp, res))
    return out


def _check_end(exp: Expect, res: SimResult) -> list[str]:
    end = exp.ended
    assert end is not None
    if res.ended is None:
        return ["ended: the call did not end"]
    outcome, reason = res.ended
    at = res.ended_at or 0.0
    out = []
    if end.outcome is not None and end.outcome != outcome:
        out.append(f"ended: outcome is {outcome} ({reason}), expected {end.outcome}")
    if end.reason is not None and not re.search(end.reason, reason):
        out.append(f"ended: reason is {reason!r}, expected /{end.reason}/")
    if end.before is not None and at > end.before:
        out.append(f"ended: at {at:.2f}s, expected before {end.before:g}s")
    if end.after is not None and at < end.after:
        out.append(f"ended: at {at:.2f}s, expected after {end.after:g}s")
    if end.state is not None and not _same_state(end.state, res.end_state or ""):
        out.append(f"ended: in state {res.end_state!r}, expected {end.state!r}")
    return out

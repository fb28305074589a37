"""Check a scenario's expectations against a simulated call; every mismatch is one message."""

from __future__ import annotations

import json
import re
from typing import Any

from voxflow.testing.scenario import Expect, RequestExpect, TextMatch
from voxflow.testing.sim import SentRequest, SimResult

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


def _flags(m: TextMatch, ignore_case: bool) -> int:
    return re.IGNORECASE if (m.ignore_case or ignore_case) else 0


def _matches(
    label: str, verb: str, wanted: tuple[TextMatch, ...] | None, items: list[str], icase: bool
) -> list[str]:
    """``wanted`` against ``items``: empty means no item; entries without ``times: 0`` match in
    order (a subsequence); ``times`` counts every matching item."""
    if wanted is None:
        return []
    if not wanted:
        return [f"{label}: expected nothing, {verb} {_show(items)}"] if items else []
    out = []
    i = 0
    for m in wanted:
        rx = re.compile(m.match, _flags(m, icase))
        count = sum(1 for x in items if rx.search(x))
        if m.times is not None and count != m.times:
            out.append(f"{label}: {m.describe()} matched {count} time(s); {verb} {_show(items)}")
            continue
        if m.times == 0:
            continue
        while i < len(items) and not rx.search(items[i]):
            i += 1
        if i == len(items):
            out.append(f"{label}: nothing matched {m.describe()} (in order); {verb} {_show(items)}")
            break
        i += 1
    return out


def _contains(want: Any, got: Any) -> bool:
    """``got`` has every key of ``want`` with an equal value (recursively); other values equal."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and _contains(v, got[k]) for k, v in want.items()
        )
    return _equal(want, got)


def _request_ok(r: RequestExpect, sent: SentRequest) -> bool:
    if r.method is not None and r.method != sent.method:
        return False
    if not re.search(r.url, sent.url):
        return False
    if r.json_ is not None and not _contains(r.json_, sent.body):
        return False
    if r.body is not None:
        text = sent.body if isinstance(sent.body, str) else json.dumps(sent.body, sort_keys=True)
        if not re.search(r.body, text):
            return False
    headers = {k.lower(): v for k, v in sent.headers}
    return all(
        k.lower() in headers and re.search(rx, headers[k.lower()]) for k, rx in r.headers.items()
    )


def _requests(wanted: tuple[RequestExpect, ...] | None, sent: list[SentRequest]) -> list[str]:
    if wanted is None:
        return []
    shown = _show([f"{s.method} {s.url}" for s in sent])
    if not wanted:
        return [f"requests: expected none, the flow made {shown}"] if sent else []
    out = []
    for r in wanted:
        count = sum(1 for s in sent if _request_ok(r, s))
        if r.times is not None and count != r.times:
            out.append(f"requests: {r.describe()} made {count} time(s), expected {r.times}; "
                       f"requests {shown}")  # fmt: skip
        elif r.times is None and count == 0:
            out.append(f"requests: none matched {r.describe()}; requests {_describe_sent(sent)}")
    return out


def _describe_sent(sent: list[SentRequest]) -> str:
    if not sent:
        return "nothing"
    parts = []
    for s in sent[:4]:
        body = "" if s.body is None else f" body {json.dumps(s.body, sort_keys=True)[:120]}"
        parts.append(f"{s.method} {s.url}{body}")
    return "; ".join(parts) + (f" ... (+{len(sent) - 4})" if len(sent) > 4 else "")


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
    icase = exp.ignore_case
    out = _matches("said", "the flow said", exp.said, res.said, icase)
    for pat in exp.not_said or ():
        hit = next((s for s in res.said if re.search(pat, s, re.I if icase else 0)), None)
        if hit is not None:
            out.append(f"not_said: /{pat}/ matched {hit!r}")
    out += _matches("played", "the flow played", exp.played, res.played, icase)
    out += _check_states(exp, res)
    for name, want in exp.variables.items():
        if name not in res.variables:
            out.append(f"variables: '{name}' is unset (expected {want!r})")
        elif not _equal(want, res.variables[name]):
            out.append(f"variables: '{name}' is {res.variables[name]!r}, expected {want!r}")
    out += _check_metadata(exp, res)
    targets: tuple[tuple[str, str | None, list[str]], ...] = (
        ("transfer", exp.transfer, res.transfers),
        ("queue", exp.queue, res.queues),
    )
    for label, rx, items in targets:
        if rx is not None and not any(re.search(rx, x) for x in items):
            out.append(f"{label}: nothing matched /{rx}/; got {_show(items)}")
    out += _matches("dialed", "dialed", exp.dialed, res.dialed, False)
    out += _matches("http", "requests", exp.http, res.http, False)
    out += _requests(exp.requests, res.requests)
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


def _as_text(value: Any) -> str:
    """A metadata value as the text a regex is searched in (JSON for anything but a string)."""
    return value if isinstance(value, str) else json.dumps(value)


def _check_metadata(exp: Expect, res: SimResult) -> list[str]:
    """A string expectation is a regex searched in the value's text (as ``said``, ``queue``,
    ``headers``); a number, bool, null, list or map must equal the value."""
    out = []
    for key, want in exp.metadata.items():
        got = res.metadata.get(key)
        if key not in res.metadata:
            out.append(f"metadata: '{key}' is unset (expected {_describe(want)})")
        elif isinstance(want, str):
            if re.search(want, _as_text(got)) is None:
                out.append(f"metadata: '{key}' is {got!r}, expected a match of /{want}/")
        elif not _equal(want, got):
            out.append(f"metadata: '{key}' is {got!r}, expected {want!r}")
    return out


def _describe(want: Any) -> str:
    return f"a match of /{want}/" if isinstance(want, str) else repr(want)


def _check_states(exp: Expect, res: SimResult) -> list[str]:
    out = []
    if exp.states is not None and not exp.states and res.states:
        out.append(f"states: expected none, visited {' -> '.join(res.states)}")
    missing = _subsequence(exp.states or (), res.states, regex=False)
    if missing is not None:
        out.append(
            f"states: '{missing}' was not visited in the expected order; "
            f"visited {' -> '.join(res.states) or 'no state'}"
        )
    for name in exp.not_visited or ():
        if any(_same_state(name, s) for s in res.states):
            out.append(f"not_visited: state '{name}' was visited")
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

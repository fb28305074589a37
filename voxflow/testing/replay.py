"""Replay a call trace (``voxflow run --trace DIR``) in the simulator and show what differs.

The trace's caller inputs become caller actions (DTMF keys, sentences, hang-up, at the times
the trace recorded), its prompts' durations and its recorded outcomes of the outside world
(HTTP status, dial/queue results, agent exits with their arguments and the actions the model
called with theirs, with their durations) become mocks, in order; its
call metadata (secret-looking keys redacted by the server), direction, speech setting, caller,
called number and start time (``started``) carry over, so a time-of-day branch goes the same way.
Values of sensitive variables are ``<redacted>`` in traces: a redacted key replays as ``0``, a
redacted sentence as its ``stand_in`` (its digits, each ``0``) or else as ``<redacted>``, a
redacted part of a URL matches anything, and so does, in a prompt with a redacted value, that
value and any digits (a value derived from it, such as the last four digits). The flow as
it is now then runs on that script; states entered, prompts, routing (the ``route`` records:
dial/transfer targets, queues, HTTP requests with their headers and bodies, agent actions'
requests, recordings; :mod:`voxflow.runtime.routes`) and the end are compared with the trace
and the first difference of each is shown, as is what the trace's model asked that the flow's
agent steps now refuse. A trace without route records (written before they existed) is compared
without its routing, one without ``requests: true`` without request headers and bodies, with
a note.
HTTP response bodies are not in traces, so a flow that branches on response data may differ for
that reason (the report says so).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from voxflow.compiler.frontdoor import load_flow
from voxflow.errors import ConfigError
from voxflow.ir import models as ir
from voxflow.redact import REDACTED
from voxflow.runtime.config import Settings
from voxflow.runtime.hangup_work import MAX_HANGUP_TIMEOUT
from voxflow.runtime.routes import ROUTE_OPTIONS
from voxflow.runtime.trace import MAX_TRACE_BYTES
from voxflow.sourcefile import read_regular_bytes, walk_files
from voxflow.testing.scenario import Scenario
from voxflow.testing.sim import SimResult, run_scenario

__all__ = ["ReplayReport", "find_flow", "replay_trace", "scenario_from_trace"]


@dataclass
class ReplayReport:
    """The comparison of a trace with its replay."""

    trace: str
    flow: str
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    result: SimResult | None = None
    flow_path: str = ""
    """The flow file replayed on (and how it was found, when not given)."""
    routes_compared: bool = True
    """False for a trace without ``route`` records (written before voxflow traced them)."""
    requests_compared: bool = True
    """False for a trace whose ``call.started`` has no ``requests: true``: what its HTTP
    requests sent (bodies, headers) and its agents' action requests were not traced."""

    @property
    def same(self) -> bool:
        return not self.differences

    def render(self) -> str:
        where = f" ({self.flow_path})" if self.flow_path else ""
        out = [f"replay of {self.trace} on flow {self.flow}{where}"]
        out.extend(f"note: {n}" for n in self.notes)
        if self.same and not self.routes_compared:
            out.append("same behaviour: states, prompts and the end match the trace "
                       "(routing not compared)")  # fmt: skip
        elif self.same and not self.requests_compared:
            out.append("same behaviour: states, prompts, routing and the end match the trace "
                       "(request bodies, headers and agent actions not compared)")  # fmt: skip
        elif self.same:
            out.append("same behaviour: states, prompts, routing and the end match the trace")
        else:
            out.append("behaviour differs:")
            out.extend(f"  - {d}" for d in self.differences)
            if self.result is not None:
                out.append("replayed call:")
                out.extend("    " + t.render() for t in self.result.trace)
        return "\n".join(out)


def _after(rec: dict[str, Any]) -> float | None:
    waited = rec.get("waited_ms")
    if isinstance(waited, int | float) and 0 <= waited <= 60000:
        return round(waited / 1000.0, 3)
    return None


def _secs(rec: dict[str, Any], key: str) -> float | None:
    value = rec.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(float(value), 3)
    return None


_REDACTED_KEY = "0"  # what a redacted key press replays as
_PENDING = 86400.0  # an unfinished operation: still running when the call ended
_CALLER_WORD = 0.3  # the simulator's caller speaks 0.3 s per word (voxflow.testing.sim)


def scenario_from_trace(records: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """A scenario (as YAML-shaped data) reproducing the trace's caller and outside world.

    A trace with times (``t``) is replayed on its own clock: every caller action happens ``at``
    the second it happened in the call, prompts last as long as they played (``mocks.media`` per
    prompt text or file), dials/queues/HTTP take their measured time, so silences (no-input),
    barge-ins and hang-ups mid-prompt replay as they were. Without times, each action happens
    ``waited_ms`` after the flow next listens.
    """
    timeline = [r for r in records if r.get("type") in ("input", "caller.hangup", "prompt")
                or (r.get("type") == "hangup" and r.get("by") == "app")]  # fmt: skip
    timed = bool(timeline) and all(_secs(r, "t") is not None for r in timeline)
    reader = _TraceReader(timed)
    for rec in records:
        reader.read(rec)
    return reader.scenario(_prompt_durations(records) if timed else {})


class _TraceReader:
    """Builds a replay scenario's caller steps and mocks from trace records, in order."""

    def __init__(self, timed: bool) -> None:
        self.timed = timed
        self.steps: list[dict[str, Any]] = []
        self.mocks: dict[str, Any] = {"http": [], "dial": [], "queue": [], "agent": []}
        self.took: dict[str, float] = {}  # op name -> duration of its last completion
        self.seen_ops: set[Any] = set()
        self.digits_open = False
        self.speech = False
        self.turns: list[dict[str, Any]] = []  # the running agent step's action calls
        self.exit_args: dict[str, Any] = {}  # the args of the last agent exit

    def read(self, rec: dict[str, Any]) -> None:
        """Take one trace record into the scenario."""
        kind = rec.get("type")
        t = _secs(rec, "t")
        if kind == "op":
            self._op(rec)
            return
        if kind == "input" and rec.get("kind") == "dtmf":
            self._press(rec, t)
            return
        if kind in ("prompt", "state.entered", "outcome"):
            self.digits_open = False
        if kind == "input" and rec.get("kind") == "speech":
            self._say(rec, t)
        elif kind == "caller.hangup":
            self._hangup(None, t)
        elif kind == "hangup" and rec.get("by") == "app":  # the drain's grace period ran out
            self._hangup("app", t)
        elif kind == "http":
            self.mocks["http"].append(_http_mock(rec))
        elif kind == "route" and rec.get("op") == "action":  # the model called an action
            self.turns.append({"action": str(rec.get("action")), "args": _args(rec)})
        elif kind == "agent":
            self.exit_args = _args(rec)
        elif kind == "outcome" and rec.get("step") in ("dial", "queue", "agent"):
            self._outcome(rec)

    def _outcome(self, rec: dict[str, Any]) -> None:
        """A dial, queue or agent outcome as a mock answering so, after as long as it took."""
        key = str(rec["step"])
        entry: dict[str, Any]
        if key == "agent":
            name = str(rec.get("outcome", "error"))
            entry = {"tool": name[5:]} if name.startswith("tool:") else {"outcome": name}
            if name.startswith("tool:") and self.exit_args:
                entry["args"] = self.exit_args
            if self.turns:
                entry["turns"] = self.turns
            self.turns, self.exit_args = [], {}
        elif key == "queue" and str(rec.get("outcome", "")).startswith("choice:"):
            # the caller's key (replayed as a press) left the queue: Queue() waits till then
            entry = {"status": "TIMEOUT", "times": 1}
            self.took.pop(key, None)
        else:
            entry = {"result": rec.get("outcome"), "times": 1}
        if key in self.took:
            entry["after"] = self.took.pop(key)
        self.mocks[key].append(entry)

    def _hangup(self, by: str | None, t: float | None) -> None:
        """The caller (None) or the app hangs up, at its time when the trace has times."""
        self.steps.append({"hangup": by, "at": t or 0.0} if self.timed else {"hangup": by})

    def _op(self, rec: dict[str, Any]) -> None:
        """An operation's completion: how long dials, queues, agents... took."""
        if rec.get("cid") in self.seen_ops:  # a stopped op can be recorded twice
            return
        self.seen_ops.add(rec.get("cid"))
        op, ms = str(rec.get("op", "")), _secs(rec, "latency_ms")
        if op not in ("say", "play") and ms is not None:
            self.took[op] = round(ms / 1000.0, 3)

    def _press(self, rec: dict[str, Any], t: float | None) -> None:
        """A key press: at its time, else joined to the keys pressed just before it."""
        digit = str(rec.get("digit", ""))
        if digit == REDACTED:  # a key pressed into a sensitive variable: any digit will do
            digit = _REDACTED_KEY
        steps = self.steps
        if self.timed:  # a key typed ahead was pressed typed_ms before a step took it
            ahead = (_secs(rec, "typed_ms") or 0.0) / 1000.0
            steps.append({"press": digit, "at": max(0.0, round((t or 0.0) - ahead, 3))})
        elif self.digits_open and steps and "press" in steps[-1]:
            steps[-1]["press"] += digit
        else:
            step: dict[str, Any] = {"press": digit}
            if (after := _after(rec)) is not None:
                step["after"] = after
            steps.append(step)
            self.digits_open = True

    def _say(self, rec: dict[str, Any], t: float | None) -> None:
        """A spoken answer, starting as long before its result as the words take to say."""
        self.speech = True
        step = _heard(rec)
        if self.timed:
            # the caller's speech ended before the result (the endpointer, the decoding)
            spoke_until = (t or 0.0) - (_secs(rec, "latency_ms") or 0.0) / 1000.0
            words = len(str(step["say"]).split())
            step["at"] = max(0.0, round(spoke_until - _CALLER_WORD * words, 3))
        elif (after := _after(rec)) is not None:
            step["after"] = after
        self.steps.append(step)

    def scenario(self, media: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The scenario data and the notes on what a replay cannot reproduce."""
        mocks, notes = self.mocks, []
        if mocks["http"]:
            notes.append("HTTP response bodies are not traced: replayed responses carry no data")
        if any(REDACTED in json.dumps(m.get("args", {})) for m in mocks["agent"]):
            notes.append("agent tool arguments holding sensitive values are redacted: replayed "
                         "as '<redacted>'")  # fmt: skip
        if self.timed:
            # an operation the trace never saw finish was still running when the call ended
            mocks["dial"].append({"result": "answered", "after": _PENDING})
            mocks["queue"].append({"result": "answered", "after": _PENDING})
            unfinished: dict[str, Any] = {"outcome": "error", "after": _PENDING}
            mocks["agent"].append({**unfinished, "turns": self.turns} if self.turns else unfinished)
            mocks["http"].append({"url": "", "outcome": "timeout"})
            if media:
                mocks["media"] = media
        data: dict[str, Any] = {
            "name": "replay",
            "steps": self.steps,
            "mocks": {k: v for k, v in mocks.items() if v},
            "timeout": 3600,
        }
        if self.speech:
            data["speech"] = True
        return data, notes


def _args(rec: dict[str, Any]) -> dict[str, Any]:
    """The model's arguments of an agent exit or action call, as traced."""
    args = rec.get("args")
    return dict(args) if isinstance(args, dict) else {}


def _http_mock(rec: dict[str, Any]) -> dict[str, Any]:
    """An HTTP mock answering as the traced request was answered, once per attempt the trace
    counts (``attempts``: a failure the step retried), the measured time shared among them
    (the replay's backoff between tries comes on top)."""
    url = str(rec.get("url", ""))
    tries = rec.get("attempts")
    times = tries if isinstance(tries, int) and not isinstance(tries, bool) and tries > 0 else 1
    mock: dict[str, Any] = {"method": rec.get("method"), "url": _pattern(url), "times": times}
    if rec.get("outcome") in ("timeout", "error") and rec.get("status") is None:
        mock["outcome"] = rec["outcome"]
    else:
        mock["status"] = int(rec.get("status") or 200)
    if (ms := _secs(rec, "latency_ms")) is not None and mock.get("outcome") != "timeout":
        mock["delay"] = round(ms / 1000.0 / times, 3)
    return mock


def _heard(rec: dict[str, Any]) -> dict[str, Any]:
    """A spoken ``input`` as a ``say``, with the recogniser's confidence: a recognition that
    was rejected (text "") says its best alternative with its confidence when that was under
    the threshold (the flow as it is now decides again), else with confidence 0 (never
    recognised)."""
    text = str(rec.get("stand_in") or rec.get("text") or "")  # a redacted sentence's stand-in
    conf, least = _num(rec.get("confidence")), _num(rec.get("min_confidence"))
    if text:
        return {"say": text} if conf is None else {"say": text, "confidence": conf}
    alts = rec.get("alternatives")
    said = str(alts[0]) if isinstance(alts, list) and alts else "(not understood)"
    under = conf is not None and least is not None and conf < least
    return {"say": said, "confidence": conf if under else 0}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


_NOT_FLOW = frozenset(
    {"log", "op", "http", "provider", "hangup", "agent.turn", "call.started", "route"}
)


def _prompt_durations(records: list[dict[str, Any]]) -> dict[str, float]:
    """How long each prompt (by text or file) played in the traced call, the longest time it
    played to its end: from its ``op`` record when the driver wrote one (none at all for spoken
    prompts: the driver had no TTS and they took no time), else up to the next prompt, or to
    the caller's next input minus its ``waited_ms``. Prompts cut by the hang-up, or followed by
    a no-input timeout, are left to the simulator's estimate."""
    hangups = [r for r in records if r.get("type") == "caller.hangup" or r.get("by") == "app"]
    hung = [_secs(r, "t") for r in hangups]
    cut = (hung[0] or 0.0) - 0.05 if hung else None  # ops ending then were cut by the hang-up
    prompts: list[tuple[int, str, float]] = []  # (index, text, t) in order
    ends: dict[int, float] = {}
    queue: list[int] = []  # prompts waiting for their op record (FIFO)
    seen: set[Any] = set()
    for i, rec in enumerate(records):
        kind, t = rec.get("type"), _secs(rec, "t")
        if kind == "prompt" and t is not None:
            said = rec.get("text") if rec.get("text") is not None else rec.get("play")
            prompts.append((i, str(said), t))
            queue.append(len(prompts) - 1)
        elif kind == "op" and rec.get("op") in ("say", "play") and rec.get("cid") not in seen:
            seen.add(rec.get("cid"))
            ms = _secs(rec, "latency_ms")
            if queue:
                k = queue.pop(0)
                if ms is not None and not (cut is not None and t is not None and t >= cut):
                    ends[k] = prompts[k][2] + ms / 1000.0
    ops = {r.get("op") for r in records if r.get("type") == "op"}
    instant = bool(ops) and "say" not in ops  # a driver without TTS: spoken prompts take no time
    for k, (i, _text, t) in enumerate(prompts):
        if k in ends:
            continue
        if instant and records[i].get("text") is not None:
            ends[k] = t
            continue
        nxt = next((r for r in records[i + 1 :] if r.get("type") not in _NOT_FLOW), None)
        if nxt is None or (tn := _secs(nxt, "t")) is None:
            continue
        if nxt.get("type") == "prompt":
            ends[k] = tn
        elif nxt.get("type") == "input" and (waited := _secs(nxt, "waited_ms")) is not None:
            ends[k] = tn - waited / 1000.0
    media: dict[str, float] = {}
    for k, (_, text, t) in enumerate(prompts):
        if k in ends and ends[k] >= t:
            media[text] = max(media.get(text, 0.0), round(ends[k] - t, 3))
    return media


def _pattern(text: str) -> str:
    """A regex matching ``text`` exactly, a redacted value matching anything."""
    return "^" + ".+".join(re.escape(part) for part in text.split(REDACTED)) + "$"


def _same(want: str, got: str) -> bool:
    """A traced prompt and a replayed one agree; in a prompt with a redacted value, that value
    and any digits (a derived value such as the last four digits) match anything."""
    if want == got or REDACTED not in want:
        return want == got
    parts = [re.sub(r"\d+", lambda _: r"\d+", re.escape(p)) for p in want.split(REDACTED)]
    return re.fullmatch(".+".join(parts), got) is not None


def find_flow(name: str, root: str | os.PathLike[str] = ".") -> Path | None:
    """The ``.flow`` file under ``root`` whose header is ``flow NAME`` (only regular files are
    read: a FIFO named ``*.flow`` would block)."""
    pat = re.compile(r"^flow\s+" + re.escape(name) + r"\b", re.MULTILINE)
    for p in walk_files(Path(root), lambda f: f.suffix == ".flow", lambda _: None):
        try:
            if pat.search(read_regular_bytes(p).decode("utf-8", errors="replace")):
                return p
        except OSError:
            continue
    return None


def _first_difference(what: str, want: list[str], got: list[str]) -> str | None:
    for i, (a, b) in enumerate(zip(want, got, strict=False)):
        if not _same(a, b):
            return f"{what} #{i + 1}: the trace has {a!r}, the flow now gives {b!r}"
    if len(want) > len(got):
        return f"{what} #{len(got) + 1}: the trace has {want[len(got)]!r}, the flow now stops"
    if len(got) > len(want):
        return f"{what} #{len(want) + 1}: the flow now goes on with {got[len(want)]!r}"
    return None


def _read_records(trace: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of ``trace`` and notes on it. A last line cut mid-record (no newline after
    it: the writer was killed, the copy cut short) is left out with a note; any other line that
    is not a JSON object is a ConfigError."""
    try:
        text = read_regular_bytes(Path(trace), MAX_TRACE_BYTES).decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read trace {trace}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not UTF-8
        raise ConfigError(f"{trace} is not a JSON Lines trace: {exc}") from None
    lines = [line for line in text.split("\n") if line.strip()]
    notes: list[str] = []
    records: list[Any] = []
    for i, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            if i == len(lines) and not text.endswith("\n") and records:
                notes.append("the last line of the trace is cut short (not JSON): left out")
                break
            raise ConfigError(f"{trace} is not a JSON Lines trace: line {i}: {exc}") from None
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise ConfigError(f"{trace} is not a call trace: record {i} is not a JSON object")
    return records, notes


def _replay_scenario(
    records: list[dict[str, Any]], started: dict[str, Any]
) -> tuple[Scenario, list[str]]:
    """The scenario replaying ``records`` (``started``: its ``call.started``), with notes."""
    data, notes = scenario_from_trace(records)
    if isinstance(started.get("metadata"), dict) and started["metadata"]:
        data["metadata"] = started["metadata"]
        if "<redacted>" in started["metadata"].values():
            notes.append("secret metadata values are not traced: replayed as '<redacted>'")
    if started.get("direction") in ("inbound", "outbound"):
        data["direction"] = started["direction"]
    if isinstance(started.get("speech"), bool):
        data["speech"] = started["speech"] or data.get("speech", False)
    # the call.started's caller and called, even "" (a call without caller id), else any
    caller = _party(started, records, "caller")
    called = _party(started, records, "called")
    if caller is not None:
        data["caller"] = caller
    if called is not None:
        data["called"] = called
    if isinstance(started.get("started"), int | float):  # the call's own clock
        at = datetime.fromtimestamp(float(started["started"]), tz=UTC)
        data["time"] = at.isoformat()
    said = [r for r in records if r.get("type") == "input" and r.get("text") == REDACTED]
    if any(r.get("stand_in") for r in said):
        notes.append("sentences said into sensitive variables are redacted: the replay says "
                     "their stand-in (the same digits, each '0')")  # fmt: skip
    if any(not r.get("stand_in") for r in said):
        notes.append("sentences said into sensitive variables are redacted: the replay says "
                     "'<redacted>', which a digits or number capture does not take")  # fmt: skip
    if any(r.get("digit") == REDACTED for r in records):
        notes.append(
            f"keys pressed into sensitive variables are redacted: replayed as '{_REDACTED_KEY}'"
        )
    return Scenario.model_validate(data), notes


def _party(started: dict[str, Any], records: list[dict[str, Any]], key: str) -> str | None:
    """The call's ``caller`` or ``called`` number: its ``call.started``'s (an empty one too:
    a call without caller id replays without one), else the first record's that has it."""
    if isinstance(started.get(key), str):
        return str(started[key])
    return next((str(r[key]) for r in records if r.get(key)), None)


def replay_trace(
    trace: str | os.PathLike[str],
    flow_path: str | None = None,
    *,
    settings: Settings | None = None,
) -> ReplayReport:
    """Replay ``trace`` on ``flow_path`` (or the flow the trace names, found under ``.``), with
    the ``on hangup`` ceiling and step budget its ``call.started`` records, else ``settings``'
    (``voxflow run``'s: :data:`~voxflow.runtime.config.CALL_SETTINGS`)."""
    records, read_notes = _read_records(trace)
    started = next((r for r in records if r.get("type") == "call.started"), {})
    shown = flow_path
    if flow_path is None:
        if not started:
            raise ConfigError(
                f"{trace} has no call.started record (empty, or not a voxflow run --trace "
                "file); pass --flow FILE to replay it anyway"
            )
        name = str(started.get("flow") or "")
        found = find_flow(name) if name else None
        if found is None:
            raise ConfigError(
                f"cannot find the flow {name or '(unnamed)'} of {trace}; pass --flow FILE"
            )
        flow_path = str(found)
        shown = f"{flow_path}, found by its name under ."
    flow: ir.Flow = load_flow(flow_path)
    try:
        scenario, notes = _replay_scenario(records, started)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{trace}: a record cannot be replayed ({where}: {err['msg']})") from None
    except (ValueError, TypeError, OverflowError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{trace}: a record cannot be replayed ({why})") from None
    result = run_scenario(flow, scenario, **_call_settings(started, settings or Settings()))
    ended = next((r for r in reversed(records) if r.get("type") == "call.ended"), None)
    if ended is None:
        last = max((t for r in records if (t := _num(r.get("t"))) is not None), default=0.0)
        read_notes.append(
            "the trace has no call.ended record (its call was cut short: the worker stopped, "
            f"or the file is truncated): compared up to {last:.2f} s, its last record"
        )
    report = ReplayReport(
        str(trace), flow.name, notes=read_notes + notes, result=result,
        flow_path=shown or flow_path,
    )  # fmt: skip
    _compare(report, records, started, ended, result)
    return report


def _call_settings(started: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``run_scenario``'s ``hangup_timeout`` and ``max_steps``: the call's, as its trace
    recorded them (traces written since each is recorded), else
    those of ``settings``."""
    ceiling = _num(started.get("hangup_timeout"))
    if ceiling is None or not 0 < ceiling <= MAX_HANGUP_TIMEOUT:
        ceiling = settings.hangup_timeout
    budget = started.get("max_steps")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        budget = settings.max_steps
    return {"hangup_timeout": ceiling, "max_steps": budget}


def _compare(
    report: ReplayReport,
    records: list[dict[str, Any]],
    started: dict[str, Any],
    ended: dict[str, Any] | None,
    result: SimResult,
) -> None:
    """The differences between the trace and its replay ``result``, into ``report``."""
    want_states = [
        f"{r['subflow']}.{r['state']}" if r.get("subflow") else str(r.get("state"))
        for r in records
        if r.get("type") == "state.entered"
    ]
    want_prompts = [
        str(r.get("text") if r.get("text") is not None else r.get("play"))
        for r in records
        if r.get("type") == "prompt"
    ]
    got_prompts = [t.text for t in result.trace if t.who == "flow" and t.text.startswith(
        ("says ", "plays "))]  # fmt: skip
    got_prompts = [_prompt_text(t) for t in got_prompts]
    got_states = result.states
    if ended is None:  # what the replay does after the trace's end is not compared
        got_states, got_prompts = got_states[: len(want_states)], got_prompts[: len(want_prompts)]
    for diff in (
        _first_difference("state", want_states, got_states),
        _first_difference("prompt", want_prompts, got_prompts),
        _compare_routes(records, started, result.routes, ended is not None, report),
    ):
        if diff is not None:
            report.differences.append(diff)
    report.differences.extend(_agent_problems(result))
    if ended is not None and result.ended is not None and ended.get("outcome") != result.ended[0]:
        report.differences.append(
            f"end: the trace ended {ended.get('outcome')}, the flow now ends {result.ended[0]}"
        )
    if ended is not None and (diff := _cut_difference(ended, result)) is not None:
        report.differences.append(diff)


def _agent_problems(result: SimResult) -> list[str]:
    """What the trace's model asked of an agent step that the flow now refuses: a tool or an
    action the step no longer offers, arguments it refuses, an action it cannot prepare."""
    out: list[str] = []
    for _, msg in result.problems:
        if msg.startswith("agent mock calls "):
            out.append("agent step: the trace's model " + msg.removeprefix("agent mock "))
        elif msg.startswith("agent action "):
            out.append("agent step: " + msg.removeprefix("agent "))
    return out


def _cut_difference(ended: dict[str, Any], result: SimResult) -> str | None:
    """How the trace's ``on hangup`` body and the replay's ended differently (cut or not)."""
    was = ended.get("on_hangup")
    was_cut = isinstance(was, dict) and was.get("status") == "cut"
    if was_cut == (result.on_hangup_cut is not None):
        return None
    if was_cut:
        return "on hangup: the trace's body was cut (hangup_timeout), the replay's ran to its end"
    cut = result.on_hangup_cut
    return f"on hangup: the replay's body was cut after {cut:g} s, the trace's was not"


_NO_ROUTES = (
    "this trace records no routing (written before voxflow traced it): where the call was "
    "sent (dial/transfer targets, queues, HTTP requests, recordings) was not compared"
)


_NO_REQUESTS = (
    "this trace records no request bodies, headers or agent actions (written before voxflow "
    "traced them): what HTTP requests and agents' actions sent was not compared"
)


def _compare_routes(
    records: list[dict[str, Any]],
    started: dict[str, Any],
    got: list[dict[str, Any]],
    complete: bool,
    report: ReplayReport,
) -> str | None:
    """The first difference between the trace's ``route`` records and the replay's (None: the
    same); a trace written without them gets a note in ``report`` instead. ``complete``: the
    trace has its end, so what the replay does after its last route is compared too."""
    want = [r for r in records if r.get("type") == "route"]
    if not want and started.get("routes") is not True:
        report.notes.append(_NO_ROUTES)
        report.routes_compared = False
        report.requests_compared = False
        return None
    if started.get("requests") is not True:
        report.notes.append(_NO_REQUESTS)
        report.requests_compared = False
        got = [r for r in got if r.get("op") != "action"]
    if not complete:
        got = got[: len(want)]
    for n, (a, b) in enumerate(zip(want, got, strict=False), 1):
        if (diff := _route_difference(a, b, n)) is not None:
            return diff
    if len(want) > len(got):
        a = want[len(got)]
        return (f"{_route(a)} at {_where(a)}, routing step {len(got) + 1}: "
                "the flow now does not do it")  # fmt: skip
    if len(got) > len(want):
        b = got[len(want)]
        return f"{_route(b)} at {_where(b)}, routing step {len(want) + 1}: not in the trace"
    return None


def _route_difference(a: dict[str, Any], b: dict[str, Any], n: int) -> str | None:
    """How the replay's ``n``-th route ``b`` differs from the trace's ``a`` (None: it does not)."""
    where = f"at {_where(a)}, routing step {n}"
    op = str(a.get("op"))
    if b.get("op") != op or b.get("action") != a.get("action"):
        doing = _route(b)
        return f"routing step {n} at {_where(a)}: the trace has {_route(a)}, the flow now {doing}"
    if op == "action":  # an agent's action: named by the action
        op = f"action {a.get('action')}"
    for key in ("target", *ROUTE_OPTIONS):
        was, now = a.get(key), b.get(key)
        if was == now or (isinstance(was, str) and isinstance(now, str) and _same(was, now)):
            continue
        name = key.replace("_", " ")
        return f"{op} {name} {_shown(was)} -> {_shown(now)} {where}"
    if "headers" in a and (diff := _request_difference(a, b)) is not None:
        return f"{op} {diff} {where}"
    if _where(a) != _where(b):
        return f"{_route(a)}, routing step {n}: at {_where(a)} in the trace, now at {_where(b)}"
    return None


_NONE = object()  # a header or body key one side does not have


def _request_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """How the replay's request ``b`` sent other headers or another body than the trace's
    ``a`` (None: the same; a redacted value in the trace matches anything)."""
    was_h, now_h = _headers(a.get("headers")), _headers(b.get("headers"))
    for key in [*was_h, *(k for k in now_h if k not in was_h)]:
        name = (was_h.get(key) or now_h[key])[0]
        was, now = was_h.get(key, (name, _NONE))[1], now_h.get(key, (name, _NONE))[1]
        if _value_difference(was, now, "") is not None:
            return f"header {name} {_json(was)} -> {_json(now)}"
    found = _value_difference(a.get("body"), b.get("body"), "body")
    if found is None:
        return None
    path, was, now = found
    return f"{path} {_json(was)} -> {_json(now)}"


def _headers(value: Any) -> dict[str, tuple[str, Any]]:
    """A route's ``[name, value]`` pairs by lower-case name."""
    out: dict[str, tuple[str, Any]] = {}
    for pair in value if isinstance(value, list) else ():
        if isinstance(pair, list) and len(pair) == 2:
            out[str(pair[0]).lower()] = (str(pair[0]), pair[1])
    return out


def _value_difference(was: Any, now: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first place (``path``, ``.key``/``[i]`` appended) where a value sent in the replay
    differs from the traced one: (path, traced, replayed); None when they agree."""
    if (was is _NONE) != (now is _NONE):
        return path, was, now
    if was == now or was == REDACTED:
        return None
    if isinstance(was, str) and REDACTED in was and isinstance(now, str | int | float):
        return None if _same(was, str(now)) else (path, was, now)
    if isinstance(was, dict) and isinstance(now, dict):
        for key in [*was, *(k for k in now if k not in was)]:
            found = _value_difference(was.get(key, _NONE), now.get(key, _NONE), f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(was, list) and isinstance(now, list) and len(was) == len(now):
        for i, (x, y) in enumerate(zip(was, now, strict=True)):
            if (found := _value_difference(x, y, f"{path}[{i}]")) is not None:
                return found
        return None
    return path, was, now


def _json(value: Any, width: int = 80) -> str:
    """A sent value as a difference shows it: JSON, cut at ``width`` characters."""
    if value is _NONE:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _route(rec: dict[str, Any]) -> str:
    if rec.get("op") == "action":
        return f"action {rec.get('action')} ({rec.get('target')})"
    return f"{rec.get('op')} {rec.get('target')}"


def _where(rec: dict[str, Any]) -> str:
    sub = rec.get("subflow")
    return f"state {sub}.{rec.get('state')}" if sub else f"state {rec.get('state')}"


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _prompt_text(line: str) -> str:
    if line.startswith("says "):
        return line[5:].strip('"')
    return line.removeprefix("plays ")

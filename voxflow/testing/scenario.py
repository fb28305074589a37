"""Flow test scenarios: the schema-validated YAML format and its loader.

A scenario file (``*.test.yaml``) names one flow and lists scenarios; each scenario is a call:
what the caller does (``steps``), what the outside world answers (``mocks``) and what must have
happened (``expect``). The format is documented in ``docs/testing.md``. Loading never raises
anything but :class:`~voxflow.errors.ConfigError`, whose message names the file and line.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voxflow.errors import ConfigError
from voxflow.ir.models import OUTCOMES, QUEUE_STATUS, TRANSFER_OUTCOMES, queue_outcome
from voxflow.sourcefile import read_regular_bytes
from voxflow.testing.scenario_errors import format_error, unknown_key
from voxflow.testing.scenario_yaml import LINE, LinedDict, load_lined, strip_lines

__all__ = [
    "Action",
    "AgentMock",
    "AgentTurn",
    "DialMock",
    "Ended",
    "Expect",
    "FailMock",
    "HttpMock",
    "Mocks",
    "QueueMock",
    "RequestExpect",
    "Scenario",
    "ScenarioDefaults",
    "ScenarioFile",
    "TextMatch",
    "TransferMock",
    "load_scenario_file",
    "parse_duration",
    "parse_scenario_text",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_VERBS = ("press", "say", "silence", "wait", "hangup")
_MODIFIERS = ("at", "after", "bargein")
_SAY_ONLY = ("confidence",)
_DTMF = re.compile(r"^[0-9*#A-Da-d]+$")


def parse_duration(value: Any) -> float:
    """``"1.5s"`` -> 1.5, ``"300ms"`` -> 0.3, ``"2m"`` -> 120; plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"invalid duration {value!r} (write e.g. 5s, 500ms, 2m)")
    n = float(m.group(1))
    unit = m.group(2) or "s"
    return {"ms": n / 1000.0, "s": n, "m": n * 60.0, "h": n * 3600.0}[unit]


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _take_line(cls, data: Any) -> Any:
        if isinstance(data, dict) and LINE in data:
            data = dict(data)
            line = data.pop(LINE)
            if "line" in cls.model_fields and "line" not in data:
                data["line"] = line
        return data


class _Lined(_Model):
    """A model that remembers the YAML line it was written on (``line``)."""

    line: int = 0


# ---------------------------------------------------------------- caller actions


class Action(_Lined):
    """One caller action. ``kind`` is press/say/silence/wait/hangup; ``value`` the digits or
    sentence (``app`` for a hang-up by the application, as at the end of a drain's grace
    period); ``seconds`` the silence/wait length. Timing: ``at`` (seconds from call start),
    ``bargein`` (seconds into the next prompt), else when the flow next listens plus ``after``.
    A ``say`` may carry the ``confidence`` (0..1) the recogniser gives it."""

    kind: Literal["press", "say", "silence", "wait", "hangup"]
    value: str = ""
    seconds: float = 0.0
    at: float | None = None
    after: float | None = None
    bargein: float | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            verb = data.strip()
            if verb == "hangup":
                return {"kind": "hangup", "line": getattr(data, "line", 0)}
            raise ValueError(
                f"unknown action {verb!r}: write 'hangup' or a mapping such as "
                "{press: '1'}, {say: 'sales please'}, {silence: 6s}, {wait: 2s}"
            )
        if not isinstance(data, dict) or "kind" in data:
            return data
        line = data.get(LINE, data.get("line", 0))
        verbs = [k for k in data if k in _VERBS]
        known = (*_VERBS, *_MODIFIERS, *_SAY_ONLY)
        unknown = [k for k in data if k not in (*known, LINE, "line")]
        if unknown:
            raise ValueError(unknown_key(unknown[0], known))
        if len(verbs) != 1:
            raise ValueError(f"an action needs exactly one of: {', '.join(_VERBS)}")
        verb = verbs[0]
        raw = data[verb]
        out: dict[str, Any] = {"kind": verb, "line": line}
        for mod in _MODIFIERS:
            if data.get(mod) is not None:
                out[mod] = parse_duration(data[mod])
        if verb != "say" and data.get("confidence") is not None:
            raise ValueError("confidence goes with a say: {say: 'sales', confidence: 0.4}")
        if verb == "press":
            digits = str(raw).strip() if raw is not None else ""
            if not _DTMF.match(digits):
                raise ValueError(f"press: {raw!r} is not DTMF (digits 0-9, *, #, A-D)")
            out["value"] = digits.upper()
        elif verb == "say":
            if not isinstance(raw, str) or not raw.strip():
                raise ValueError("say: needs a sentence, e.g. {say: 'sales please'}")
            out["value"] = raw
            conf = data.get("confidence")
            if conf is not None:
                if isinstance(conf, bool) or not isinstance(conf, int | float):
                    raise ValueError("confidence: a number from 0 to 1, e.g. 0.4")
                out["confidence"] = conf
        elif verb in ("silence", "wait"):
            out["seconds"] = parse_duration(raw)
        elif raw == "app":  # the application hangs up (a drain's grace period ran out)
            out["value"] = "app"
        elif raw not in (None, True, "caller"):
            raise ValueError("hangup: write '- hangup' (the caller) or '{hangup: app}'")
        return out

    def describe(self) -> str:
        """A short human form: ``press 1``, ``say "sales"``, ``silence 6s``."""
        if self.kind == "press":
            text = f"press {self.value}"
        elif self.kind == "say":
            text = f'say "{self.value}"'
            if self.confidence is not None:
                text += f" confidence {self.confidence:g}"
        elif self.kind in ("silence", "wait"):
            text = f"{self.kind} {self.seconds:g}s"
        else:
            text = "hangup by the app" if self.value == "app" else "hangup"
        if self.at is not None:
            text += f" at {self.at:g}s"
        if self.bargein is not None:
            text += f" (barge in {self.bargein:g}s into the prompt)"
        if self.after is not None:
            text += f" after {self.after:g}s"
        return text


# ---------------------------------------------------------------- mocks


class _Timed(_Lined):
    times: int | None = Field(default=None, ge=1)


class HttpMock(_Timed):
    """An HTTP answer for requests whose method and URL (regex, searched) match. ``outcome``
    ``timeout``/``error`` simulates a timeout or a connection failure."""

    method: str | None = None
    url: str = ".*"
    status: int = 200
    json_: Any = Field(default=None, alias="json")
    text: str | None = None
    outcome: Literal["ok", "error", "timeout"] | None = None
    delay: float = 0.05
    retry_after: str | None = None
    """The answer's ``Retry-After`` header: seconds (``3``) or an HTTP date, in the call's
    virtual time; read on a 429 or 503 as at run time."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    _url = field_validator("url")(_check_regex)

    @field_validator("retry_after", mode="before")
    @classmethod
    def _retry_after(cls, v: object) -> str | None:
        return None if v is None else str(v)

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("method")
    @classmethod
    def _method(cls, v: str | None) -> str | None:
        return v.upper() if v else v


class DialMock(_Timed):
    """What a ``dial``/``bridge`` to a matching endpoint (regex) gets, after ``after`` seconds."""

    endpoint: str = ".*"
    result: Literal["answered", "busy", "noanswer", "failed"] = "answered"
    after: float = 3.0
    presses: str = ""
    """Keys the answered party presses when asked (a dial's ``accept``)."""

    _endpoint = field_validator("endpoint")(_check_regex)

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> float:
        return parse_duration(v)


class QueueMock(_Timed):
    """What a ``queue`` with a matching name (regex) gets, after ``after`` seconds: Asterisk's
    ``status`` (QUEUESTATUS: CONTINUE, TIMEOUT, FULL, JOINEMPTY, LEAVEEMPTY...), mapped to the
    outcome by ``voxflow.ir.models.QUEUE_STATUS`` as at run time, or the ``result`` itself."""

    name: str = ".*"
    status: str | None = None
    result: str = "answered"
    after: float = 10.0
    position: int | None = Field(default=None, ge=1)
    """``QUEUEPOSITION``: the caller's place when it left the queue (1 = next in line); default
    1, or the place a caller queued again after a key the step does not list had."""
    wait: float | None = None
    """``QUEUEWAIT`` (seconds queued before an agent answered or the timeout); default
    ``after``."""

    _name = field_validator("name")(_check_regex)

    @field_validator("after", "wait", mode="before")
    @classmethod
    def _after(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @model_validator(mode="before")
    @classmethod
    def _from_status(cls, v: Any) -> Any:
        if isinstance(v, dict) and v.get("status") is not None:
            status = str(v["status"]).upper()
            if status not in QUEUE_STATUS:
                raise ValueError(
                    f"status {status} is not a QUEUESTATUS Queue() sets (one of "
                    f"{', '.join(QUEUE_STATUS)})"
                )
            if "result" in v and v["result"] != queue_outcome(status):
                raise ValueError(f"status {status} means result {queue_outcome(status)}")
            return {**v, "status": status, "result": queue_outcome(status)}
        return v

    @field_validator("result")
    @classmethod
    def _result(cls, v: str) -> str:
        if v not in OUTCOMES["queue"]:
            raise ValueError(f"a queue ends with one of {', '.join(OUTCOMES['queue'])}")
        return v


class TransferMock(_Timed):
    """What a ``transfer`` to a matching endpoint (regex) gets: ``transferred``, or ``failed``
    with Asterisk's ``status`` (INVALID: no extension routes it; BUSY, NOANSWER...: its Dial()),
    which runs the state's error handler as at run time."""

    endpoint: str = ".*"
    result: str = "transferred"
    status: str = "INVALID"
    after: float = 0.5

    _endpoint = field_validator("endpoint")(_check_regex)

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("result")
    @classmethod
    def _result(cls, v: str) -> str:
        if v not in TRANSFER_OUTCOMES:
            raise ValueError(f"a transfer ends with one of {', '.join(TRANSFER_OUTCOMES)}")
        return v

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> str:
        status = str(v).upper()
        if status not in TRANSFER_RETURN_STATUS:
            raise ValueError(
                f"status {status} is not one a transfer comes back with (one of "
                f"{', '.join(TRANSFER_RETURN_STATUS)}; an answered Dial() is result: transferred)"
            )
        return status


TRANSFER_RETURN_STATUS = ("INVALID", "BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL", "CANCEL",
                          "DONTCALL", "TORTURE", "INVALIDARGS")  # fmt: skip
"""What ``[voxflow-transfer]`` sends a call back with: INVALID (its ``i`` extension) or the
``DIALSTATUS`` of a ``Dial()`` that was not answered (ANSWER keeps the call: transferred)."""


class AgentTurn(_Model):
    """One exchange in a mocked agent conversation: what the caller says, the model calling one
    of the step's ``action``s with ``args`` (its HTTP request is answered by ``mocks.http``),
    and the model's reply."""

    caller: str | None = None
    action: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    reply: str | None = None


class AgentMock(_Timed):
    """A scripted agent conversation: ``turns`` (caller line, model reply), then the exit:
    ``tool`` with ``args``, or ``outcome`` (max_turns, timeout, noinput, error)."""

    turns: tuple[AgentTurn, ...] = ()
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    outcome: Literal["max_turns", "timeout", "noinput", "error"] | None = None
    transcript: str | None = None
    after: float | None = None

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _one_exit(self) -> AgentMock:
        if (self.tool is None) == (self.outcome is None):
            raise ValueError("an agent mock needs exactly one of 'tool' or 'outcome'")
        return self


class FailMock(_Timed):
    """Make an operation fail (runs the state's error handler): ``op`` is say, play, dial,
    http, queue, transfer, record_start, ...; ``match`` a regex on its text/source/URL/endpoint."""

    op: str
    match: str = ".*"
    error: str = "mocked failure"

    _match = field_validator("match")(_check_regex)


class Mocks(_Model):
    """Everything outside the flow that a scenario scripts."""

    http: tuple[HttpMock, ...] = ()
    dial: tuple[DialMock, ...] = ()
    queue: tuple[QueueMock, ...] = ()
    transfer: tuple[TransferMock, ...] = ()
    agent: tuple[AgentMock, ...] = ()
    fail: tuple[FailMock, ...] = ()
    media: dict[str, float] = Field(default_factory=dict)

    @field_validator("media", mode="before")
    @classmethod
    def _media(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): parse_duration(d) for k, d in v.items()}
        return v

    def merged(self, base: Mocks) -> Mocks:
        """These mocks first, then ``base``'s (file defaults)."""
        return Mocks(
            http=self.http + base.http,
            dial=self.dial + base.dial,
            queue=self.queue + base.queue,
            transfer=self.transfer + base.transfer,
            agent=self.agent + base.agent,
            fail=self.fail + base.fail,
            media={**base.media, **self.media},
        )


# ---------------------------------------------------------------- expectations


class Ended(_Model):
    """How and when the call ended. ``outcome``: completed, caller_hangup, transferred, error;
    ``reason`` a regex; ``before``/``after`` bound the virtual time of the end."""

    outcome: Literal["completed", "caller_hangup", "transferred", "error"] | None = None
    reason: str | None = None
    before: float | None = None
    after: float | None = None
    state: str | None = None

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str | None) -> str | None:
        return v if v is None else _check_regex(v)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"outcome": data}
        if isinstance(data, dict):
            data = dict(data)
            for key in ("before", "after"):
                if data.get(key) is not None:
                    data[key] = parse_duration(data[key])
        return data


class TextMatch(_Lined):
    """One entry of ``said``/``played``/``dialed``/``http``: a regex (searched), how many items
    it must match (``times``; 0 = none), and ``ignore_case``. A plain string is ``{match: ...}``."""

    match: str
    times: int | None = Field(default=None, ge=0)
    ignore_case: bool = False

    _match = field_validator("match")(_check_regex)

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        return {"match": data} if isinstance(data, str) else data

    def describe(self) -> str:
        flags = "i" if self.ignore_case else ""
        times = f" {self.times} time(s)" if self.times is not None else ""
        return f"/{self.match}/{flags}{times}"


class RequestExpect(_Lined):
    """An HTTP request that must have been made ``times`` times (default: at least once; 0 =
    never): ``method``, ``url`` (regex, searched), ``json`` (the body contains these keys with
    these values), ``body`` (regex on the body as JSON text) and ``headers`` (name -> regex)."""

    method: str | None = None
    url: str = ".*"
    json_: Any = Field(default=None, alias="json")
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    times: int | None = Field(default=None, ge=0)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    _url = field_validator("url")(_check_regex)

    @field_validator("body")
    @classmethod
    def _body(cls, v: str | None) -> str | None:
        return v if v is None else _check_regex(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for rx in v.values():
            _check_regex(rx)
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str | None) -> str | None:
        return v.upper() if v else v

    def describe(self) -> str:
        parts = [self.method or "*", f"/{self.url}/"]
        if self.json_ is not None:
            parts.append(f"json {self.json_!r}")
        if self.body is not None:
            parts.append(f"body /{self.body}/")
        parts += [f"{k}: /{v}/" for k, v in self.headers.items()]
        return " ".join(parts)


class Expect(_Model):
    """What must hold after the call. Regexes are searched (use ``^...$`` to anchor);
    ordered lists match as a subsequence; a list written empty (``dialed: []``) means nothing
    of that kind happened, a list left out is not checked."""

    said: tuple[TextMatch, ...] | None = None
    not_said: tuple[str, ...] | None = None
    played: tuple[TextMatch, ...] | None = None
    states: tuple[str, ...] | None = None
    not_visited: tuple[str, ...] | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    transfer: str | None = None
    queue: str | None = None
    dialed: tuple[TextMatch, ...] | None = None
    http: tuple[TextMatch, ...] | None = None
    requests: tuple[RequestExpect, ...] | None = None
    recording: bool | str | None = None
    ignore_case: bool = False
    ended: Ended | None = None

    @field_validator("not_said")
    @classmethod
    def _regexes(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for r in v or ():
            _check_regex(r)
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_regexes(cls, v: dict[str, Any]) -> dict[str, Any]:
        for r in v.values():
            if isinstance(r, str):
                _check_regex(r)
        return v

    @field_validator("said", "not_said", "played", "states", "not_visited", "dialed", "http",
                     "requests", mode="before")  # fmt: skip
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str | dict) else v


def _check_time(v: Any) -> Any:
    """``time`` must be an ISO date-time (checked when the file loads, not when it runs)."""
    if isinstance(v, datetime):  # YAML reads an unquoted 2025-01-06T10:00:00 as a timestamp
        return v.isoformat()
    if isinstance(v, str):
        try:
            datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(
                f"invalid time {v!r} (write an ISO date-time, e.g. 2025-01-06T18:30:00)"
            ) from None
    return v


# ---------------------------------------------------------------- scenarios and files


class ScenarioDefaults(_Model):
    """Settings every scenario of a file inherits."""

    caller: str = "+15550100"
    called: str = ""
    direction: Literal["inbound", "outbound"] = "inbound"
    speech: bool = True
    time: str | None = None
    timeout: float = 300.0
    metadata: dict[str, Any] = Field(default_factory=dict)
    mocks: Mocks = Mocks()

    _time = field_validator("time", mode="before")(_check_time)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        return parse_duration(v)


class Scenario(_Lined):
    """One simulated call. Unset fields take the file's ``defaults``."""

    name: str
    caller: str | None = None
    called: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    speech: bool | None = None
    time: str | None = None
    timeout: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    mocks: Mocks = Mocks()
    steps: tuple[Action, ...] = ()
    expect: Expect = Expect()

    _time = field_validator("time", mode="before")(_check_time)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)


class ScenarioFile(_Model):
    """A parsed scenario file. ``flow`` is resolved relative to the file (``flow_path``)."""

    path: str = ""
    flow: str
    flow_path: str = ""
    flow_line: int = 1
    """The line of the ``flow:`` key (for a message about the flow file)."""
    defaults: ScenarioDefaults = ScenarioDefaults()
    scenarios: tuple[Scenario, ...]


# ---------------------------------------------------------------- loading


def parse_scenario_text(text: str, *, name: str = "<scenarios>") -> ScenarioFile:
    """Parse scenario YAML (``flow`` stays as written; see :func:`load_scenario_file`)."""
    try:
        data = load_lined(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}:{line}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name}:1: a scenario file is a mapping with 'flow' and 'scenarios'")
    clean = strip_lines(data, True)
    try:
        flow_line = data.key_lines.get("flow", 1) if isinstance(data, LinedDict) else 1
        sf = ScenarioFile.model_validate({**clean, "path": name, "flow_line": flow_line})
    except ValidationError as exc:
        raise ConfigError(format_error(name, data, exc)) from None
    if not sf.scenarios:  # a file with nothing to run is a mistake, not "no files found"
        line = data.key_lines.get("scenarios", 1) if isinstance(data, LinedDict) else 1
        raise ConfigError(
            f"{name}:{line}: scenarios: the list is empty; write at least one scenario "
            "(name, steps, expect)"
        )
    return sf


def load_scenario_file(path: str | Path) -> ScenarioFile:
    """Read and validate a scenario file; ``flow_path`` is resolved next to it."""
    p = Path(path)
    try:  # a regular file within the size cap: a FIFO or a device is refused, never read
        text = read_regular_bytes(p).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"cannot read scenario file {p}: {reason}") from None
    sf = parse_scenario_text(text, name=str(p))
    flow_path = (p.parent / sf.flow) if not Path(sf.flow).is_absolute() else Path(sf.flow)
    return sf.model_copy(update={"flow_path": str(flow_path)})

"""Flow test scenarios: the schema-validated YAML format and its loader.

A scenario file (``*.test.yaml``) names one flow and lists scenarios; each scenario is a call:
what the caller does (``steps``), what the outside world answers (``mocks``) and what must have
happened (``expect``). The format is documented in ``docs/testing.md``. Loading never raises
anything but :class:`~voxflow.errors.ConfigError`, whose message names the file and line.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voxflow.errors import ConfigError
from voxflow.ir.models import OUTCOMES, TRANSFER_OUTCOMES, queue_outcome
from voxflow.sourcefile import read_regular_bytes

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
_LINE = "__line__"


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
        if isinstance(data, dict) and _LINE in data:
            data = dict(data)
            line = data.pop(_LINE)
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
        line = data.get(_LINE, data.get("line", 0))
        verbs = [k for k in data if k in _VERBS]
        known = (*_VERBS, *_MODIFIERS, *_SAY_ONLY)
        unknown = [k for k in data if k not in (*known, _LINE, "line")]
        if unknown:
            raise ValueError(_unknown_key(unknown[0], known))
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

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    _url = field_validator("url")(_check_regex)

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

    _name = field_validator("name")(_check_regex)

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> float:
        return parse_duration(v)

    @model_validator(mode="before")
    @classmethod
    def _from_status(cls, v: Any) -> Any:
        if isinstance(v, dict) and v.get("status") is not None:
            status = str(v["status"]).upper()
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


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records each mapping's line as ``__line__``; booleans are YAML 1.2's
    (only true/false), so states named ``yes``/``no`` and answers like ``on`` stay strings."""


_BOOL = "tag:yaml.org,2002:bool"
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _LinedDict(dict[Any, Any]):
    """A YAML mapping that knows the line of each key (for error messages only: the models get
    plain dicts from :func:`_strip_lines`)."""

    key_lines: dict[str, int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = _LinedDict(loader.construct_mapping(node, deep=True))
    mapping.key_lines = {
        str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
    }
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _LinedStr(str):
    """A YAML string that knows its line (so ``- hangup`` steps report where they are)."""

    line: int = 0


def _construct_str(loader: _LineLoader, node: yaml.ScalarNode) -> str:
    text = _LinedStr(loader.construct_scalar(node))
    text.line = node.start_mark.line + 1
    return text


_LineLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def _strip_lines(value: Any, keep: bool) -> Any:
    """Drop ``__line__`` from mappings that are user data (variables, JSON bodies, args)."""
    if isinstance(value, dict):
        return {
            k: _strip_lines(v, keep and k not in _DATA_KEYS)
            for k, v in value.items()
            if keep or k != _LINE
        }
    if isinstance(value, list):
        return [_strip_lines(v, keep) for v in value]
    if isinstance(value, _LinedStr) and not keep:
        return str(value)
    return value


_DATA_KEYS = frozenset({"json", "args", "variables", "metadata", "media", "headers"})


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}"


def _lines_of(data: Any, loc: tuple[int | str, ...]) -> int:
    """The YAML line of what ``loc`` names: its key's line, else the innermost mapping's or the
    list item's (0 when unknown)."""
    line = 0
    cur = data
    for part in loc:
        if isinstance(cur, dict):
            line = int(cur.get(_LINE, line))
            if part not in cur:
                break
            if isinstance(cur, _LinedDict):
                line = cur.key_lines.get(str(part), line)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
            line = cur.line if isinstance(cur, _LinedStr) else line
        else:
            break
    if isinstance(cur, dict):
        line = int(cur.get(_LINE, line))
    return line


_WANTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}
"""pydantic's type errors, as what the key expects."""
_FIELD_WANTED = {
    "caller": 'the caller\'s number as a string (e.g. caller: "+15550100")',
    "called": 'the dialled number as a string (e.g. called: "100")',
}


def _found(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_short(value)!r}"
    return "nothing" if value is None else type(value).__name__


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong_shape(loc: tuple[int | str, ...], kind: str, value: Any) -> str:
    """``expected X, got Y`` for a value of the wrong type (with a hint for a scenario's or the
    defaults' ``caller``)."""
    call_key = str(loc[-1]) if loc[:1] in (("scenarios",), ("defaults",)) and len(loc) <= 3 else ""
    want = _WANTED[kind]
    if kind == "string_type":
        want = _FIELD_WANTED.get(call_key, want)
    msg = f"expected {want}, got {_found(value)}"
    if call_key == "caller" and isinstance(value, list | dict):
        msg += "; what the caller does goes under steps:"
    return msg


def _format_error(name: str, data: Any, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:5]:
        loc = tuple(p for p in err["loc"] if p != "function-after")
        where = ".".join(str(p) for p in loc if not str(p).startswith("function"))
        line = _lines_of(data, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_key(str(loc[-1]), ())
        elif err["type"] == "missing":
            msg = f"'{loc[-1]}' is required"
        elif err["type"] in _WANTED:
            msg = _wrong_shape(loc, err["type"], err.get("input"))
        lines.append(f"{name}:{line}: {where}: {msg}" if where else f"{name}:{line}: {msg}")
    return "\n".join(lines)


def parse_scenario_text(text: str, *, name: str = "<scenarios>") -> ScenarioFile:
    """Parse scenario YAML (``flow`` stays as written; see :func:`load_scenario_file`)."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}:{line}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name}:1: a scenario file is a mapping with 'flow' and 'scenarios'")
    clean = _strip_lines(data, True)
    try:
        flow_line = data.key_lines.get("flow", 1) if isinstance(data, _LinedDict) else 1
        return ScenarioFile.model_validate({**clean, "path": name, "flow_line": flow_line})
    except ValidationError as exc:
        raise ConfigError(_format_error(name, data, exc)) from None


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

"""Agent actions declared in a flow (``action name(args) "desc":`` + ``http ...``) as tools.

:func:`render_request` is pure: it renders an IR :class:`~voxflow.ir.models.AgentAction`'s URL
and header templates (jinja2 sandbox, strict) and its body as an http step's body is sent (a
string with ``{{ }}``/``{% %}``, alone or an item of a literal list or map, is a template;
anything else an expression) with the flow's names as they were when the agent step started plus
the model's arguments (which shadow flow variables). :func:`flow_actions` turns IR actions into
:class:`~voxflow.agent.agent.AgentAction` tools whose handler sends the request through an
:class:`ActionHttp` and returns the JSON (or text) answer to the model.

Nothing here raises into the conversation: a template or expression error, a bad URL, a
non-2xx status, a timeout, a connection failure or an answer over ``max_bytes`` becomes an
``{"error": ...}`` result the model sees. Logs name the action, method, host and path, and the
status: never header values or the query string (they may carry credentials).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from voxflow.agent.agent import AgentAction, ToolParam, tool_parameters
from voxflow.errors import ExpressionError, TemplateError
from voxflow.ir import models as ir
from voxflow.runtime.expressions import UNSET, EvalContext, evaluate
from voxflow.runtime.templating import render

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "MAX_RESPONSE_BYTES",
    "ActionHttp",
    "ActionReporter",
    "ActionRequest",
    "RequestError",
    "flow_actions",
    "render_request",
]

log = logging.getLogger("voxflow.runtime.agent_actions")

MAX_RESPONSE_BYTES = 64 * 1024
"""Default limit of an action's answer (the model's context is precious)."""

_ERROR_BODY_CHARS = 300
_BODY_METHODS = ("POST", "PUT", "PATCH")


class ActionReporter(Protocol):
    """Told of each request a flow's agent action sends (the driver traces them as ``route``
    and ``http`` records; :mod:`voxflow.runtime.routes`)."""

    def sent(self, action: str, args: Mapping[str, Any], req: ActionRequest | None) -> None:
        """The model called ``action`` with ``args``: ``req`` is about to be sent (None: it
        could not be prepared, nothing is sent)."""
        ...

    def answered(
        self, action: str, req: ActionRequest, outcome: str, status: int | None, ms: float
    ) -> None:
        """``req`` got its answer: ``outcome`` ``ok``/``error``/``timeout``, the HTTP
        ``status`` (None: no response), after ``ms`` milliseconds."""
        ...


class RequestError(Exception):
    """An action's request cannot be built (template, expression or URL problem)."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A rendered action request. ``body`` is JSON-ready, or None for no body."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None

    def where(self) -> str:
        """``METHOD scheme://host/path`` without the query (safe to log)."""
        parts = urlsplit(self.url)
        return f"{self.method} {parts.scheme}://{parts.hostname or ''}{parts.path}"


def render_request(
    action: ir.AgentAction,
    variables: Mapping[str, Any] | None,
    args: Mapping[str, Any],
    *,
    timezone: str = "UTC",
    now: float | None = None,
) -> ActionRequest:
    """The request ``action`` sends for the model's ``args``; raises :class:`RequestError`."""
    scope: dict[str, Any] = dict(variables or {})
    scope.update(args)
    try:
        url = render(action.url.source, scope).strip()
        headers = tuple((k, render(v.source, scope)) for k, v in action.headers)
        if action.body is not None:
            ctx = EvalContext(
                lambda name: scope.get(name, UNSET),
                now=time.time() if now is None else now,
                timezone=timezone,
            )
            body: Any = _sent(action.body, scope, ctx)
        elif action.method in _BODY_METHODS:
            body = dict(args)
        else:
            body = None
    except (TemplateError, ExpressionError) as exc:
        raise RequestError(str(exc)) from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestError(f"the URL must be http(s)://host/..., got {url[:80]!r}")
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise RequestError(f"header {name!r} contains a line break")
    if body is not None:
        try:
            json.dumps(body)
        except (TypeError, ValueError) as exc:
            raise RequestError(f"the body is not JSON: {exc}") from None
    return ActionRequest(action.method, url, headers, body)


def _sent(e: ir.Expr, scope: Mapping[str, Any], ctx: EvalContext) -> Any:
    """A body value as the http step sends one: template strings rendered, the rest evaluated."""
    if isinstance(e, ir.LiteralExpr) and isinstance(e.value, str):
        if "{{" in e.value or "{%" in e.value:
            return render(e.value, scope)
    if isinstance(e, ir.MapExpr):
        return {k: _sent(v, scope, ctx) for k, v in e.entries}
    if isinstance(e, ir.ListExpr):
        return [_sent(v, scope, ctx) for v in e.items]
    return evaluate(e, ctx)


async def _read_up_to(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes: ``read(n)`` alone returns what has arrived so
    far, a part of an answer sent in pieces."""
    data = bytearray()
    while len(data) < limit:
        chunk = await content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


class ActionHttp:
    """Sends action requests; one lazily created aiohttp session, closed by :meth:`aclose`."""

    def __init__(self, *, max_bytes: int = MAX_RESPONSE_BYTES, user_agent: str = "voxflow") -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_bytes = max_bytes
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": self._user_agent})
        return self._session

    async def aclose(self) -> None:
        """Close the session (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, req: ActionRequest, timeout_s: float) -> Any:
        """The parsed JSON answer (or its text), or an ``{"error": ...}`` dict; never raises
        except on cancellation."""
        return (await self.exchange(req, timeout_s))[0]

    async def exchange(self, req: ActionRequest, timeout_s: float) -> tuple[Any, str, int | None]:
        """:meth:`send`'s answer, with the outcome (``ok``, ``error``, ``timeout``) and the
        HTTP status (None: no response)."""
        import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

        kwargs: dict[str, Any] = {"headers": dict(req.headers)}
        if req.body is not None:
            kwargs["json"] = req.body
        try:
            async with asyncio.timeout(timeout_s):
                async with self._get_session().request(req.method, req.url, **kwargs) as resp:
                    data = await _read_up_to(resp.content, self.max_bytes + 1)
                    status = resp.status
                    ctype = resp.headers.get("Content-Type", "")
        except TimeoutError:
            return {"error": f"timed out after {timeout_s:g} s"}, "timeout", None
        except aiohttp.ClientConnectionError as exc:
            reason = type(exc).__name__
            return {"error": f"cannot reach {urlsplit(req.url).hostname} ({reason})"}, "error", None
        except aiohttp.ClientError as exc:
            return {"error": f"request failed ({type(exc).__name__})"}, "error", None
        return self._answer(data, status, ctype), "ok" if 200 <= status < 300 else "error", status

    def _answer(self, data: bytes, status: int, ctype: str) -> Any:
        """What the model gets of a response."""
        text = data[: self.max_bytes].decode("utf-8", "replace")
        if not 200 <= status < 300:
            return {"error": f"HTTP {status}", "status": status, "body": text[:_ERROR_BODY_CHARS]}
        if len(data) > self.max_bytes:
            return {"error": f"response larger than {self.max_bytes} bytes", "status": status}
        if not text.strip():
            return {"status": status}
        if "json" in ctype or text.lstrip()[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                if "json" in ctype:
                    return {"error": "the response is not valid JSON", "status": status}
        return text


def _params(action: ir.AgentAction) -> dict[str, Any]:
    return tool_parameters(
        [ToolParam(p.name, p.type, p.description, p.required, p.constraints) for p in action.args]
    )


def flow_actions(
    actions: Sequence[ir.AgentAction],
    variables: Mapping[str, Any] | None,
    http: ActionHttp,
    *,
    timezone: str = "UTC",
    call_id: str = "?",
    reporter: ActionReporter | None = None,
) -> tuple[AgentAction, ...]:
    """Tools for the model from a step's IR actions; each call renders and sends a request
    (each told to ``reporter``)."""
    out: list[AgentAction] = []
    for action in actions:
        out.append(
            AgentAction(
                name=action.name,
                description=action.description,
                handler=_handler(action, variables, http, timezone, call_id, reporter),
                parameters=_params(action),
                # the request's own timeout answers first; this is only a backstop
                timeout_s=action.timeout_ms / 1000 + 5.0,
            )
        )
    return tuple(out)


def _handler(
    action: ir.AgentAction,
    variables: Mapping[str, Any] | None,
    http: ActionHttp,
    timezone: str,
    call_id: str,
    reporter: ActionReporter | None,
) -> Any:
    async def handler(args: Mapping[str, Any], metadata: Mapping[str, Any]) -> Any:
        try:
            req = render_request(action, variables, args, timezone=timezone)
        except RequestError as exc:
            log.warning("call %s: action %s: %s", call_id, action.name, exc)
            if reporter is not None:
                reporter.sent(action.name, args, None)
            return {"error": f"the action could not be prepared: {exc}"}
        if reporter is not None:
            reporter.sent(action.name, args, req)
        started = time.perf_counter()
        result, outcome, status = await http.exchange(req, action.timeout_ms / 1000)
        ms = (time.perf_counter() - started) * 1000
        if reporter is not None:
            reporter.answered(action.name, req, outcome, status, ms)
        shown = result.get("error", "ok") if isinstance(result, dict) else "ok"
        log.info(
            "call %s: action %s %s -> %s (%.0f ms)", call_id, action.name, req.where(), shown, ms
        )
        return result

    return handler

"""Lowering of the keyword steps (say, gather, menu, dial, agent, http, ...) to IR steps."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voxflow.ir import models as ir
from voxflow.ir.options import Opts, split_patterns
from voxflow.ir.tool_schema import arg_schema
from voxflow.source import Span
from voxflow.spec.dtmf import max_length
from voxflow.spec.options import (
    HTTP_METHODS,
    STEP_OPTIONS,
    TEXT_REQUIRED,
    TYPES,
    UNLIMITED,
    did_you_mean,
)
from voxflow.spec.semantics import QUEUE_EXIT_KEYS
from voxflow.syntax import ast

if TYPE_CHECKING:
    from voxflow.ir.lower import Lowerer

__all__ = ["lower_http", "lower_simple"]


def lower_simple(lw: Lowerer, s: ast.SimpleStep) -> ir.Step:
    kind = s.kind
    spec = STEP_OPTIONS.get(kind, {})
    o = lw.options(kind, s.options, spec)
    span = lw.sp(s.span)
    cfg = lw.config
    text = lw.template(s.text)
    if kind in TEXT_REQUIRED and text is None:
        lw.error("VF408", s.span, f"'{kind}' needs a quoted text after it")
        text = ir.Template(source="")
    elif text is not None and not text.source.strip() and kind in _PROMPTED:
        without = f"write '{kind}:' with no text" if kind in ("gather", "menu") else "remove it"
        lw.error("VF408", s.span, f"'{kind}' has an empty text", f"for no prompt, {without}")
    if kind not in ("dial", "bridge") and s.more_texts:
        lw.error("VF408", s.more_texts[0].span, f"'{kind}' takes one text")
    if kind not in ("gather", "menu", "queue") and s.choices:
        lw.error("VF408", s.choices[0].span, f"'{kind}' does not take choices")
    if kind != "agent" and s.tools:
        lw.error("VF408", s.tools[0].span, "only 'agent' takes tools")
    if kind != "agent" and s.actions:
        lw.error("VF408", s.actions[0].span, "only 'agent' takes actions")
    bargein = ir.BargeIn(
        mode=o.get("bargein", cfg.bargein.mode),
        min_words=cfg.bargein.min_words,
        min_ms=cfg.bargein.min_ms,
    )
    if kind not in ir.INPUT_OPS and kind not in ("menu", "bridge") and s.handlers:
        lw.error("VF109", s.handlers[0].span, f"'{kind}' has no outcomes to handle")
    builder = _BUILDERS.get(kind)
    if builder is None:  # pragma: no cover - the grammar only allows known keywords
        return ir.LogStep(span=span, message=ir.Template(source=f"unknown step {kind}"))
    return builder(lw, s, o, span, text, bargein)


def _retries(value: int | str, default: int) -> dict[str, Any]:
    """``max_attempts``/``unlimited`` of an input step from its ``retries`` value."""
    if value == UNLIMITED:
        return {"max_attempts": default, "unlimited": True}
    return {"max_attempts": value}


_PROMPTED = TEXT_REQUIRED | {"gather", "menu"}

_Builder = Callable[
    ["Lowerer", ast.SimpleStep, Opts, ir.Span, "ir.Template | None", ir.BargeIn], ir.Step
]


def _b_answer(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.AnswerStep(span=span)


def _b_hangup(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.HangupStep(span=span, reason=t.source if t is not None else "normal")


def _b_say(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.SayStep(span=span, text=t, voice=o.get("voice", lw.config.voice), bargein=b)


def _b_play(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    src = t.source
    kind = o.get("kind", None)
    if kind is None:
        if src.startswith(("http://", "https://")):
            kind = "url"
        elif src.startswith(("/", "./", "../")) or "." in os.path.basename(src):
            kind = "file"
        else:
            kind = "sound"
    return ir.PlayStep(span=span, kind=kind, source=t, bargein=b)


def _choices(lw: Lowerer, s: ast.SimpleStep) -> tuple[list[ir.Choice], dict[str, Any]]:
    choices: list[ir.Choice] = []
    on: dict[str, tuple[ir.Handler, ...]] = {}
    for c in s.choices:
        keys, phrases, patterns = split_patterns(c.patterns)
        value = (phrases or keys or patterns)[0]
        base, n = value, 2
        while f"choice:{value}" in on:
            value, n = f"{base}#{n}", n + 1
        choices.append(
            ir.Choice(
                value=value, keys=keys, phrases=phrases, patterns=patterns, span=lw.sp(c.span)
            )
        )
        h = lw.handler(c.tail, c.span, ir.ContinueStep(span=lw.sp(c.span)))
        on[f"choice:{value}"] = (h,)
    return choices, on


def _b_gather(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    cfg = lw.config
    choices, explicit = _choices(lw, s)
    listed = o.get("choices", None)
    if listed is not None and choices:
        lw.error(
            "VF408", s.choices[0].span, "a menu takes choice lines or 'choices LIST', not both"
        )
    if s.kind == "menu" and not choices and listed is None:
        lw.error(
            "VF408",
            s.span,
            "a menu needs choices",
            "add lines like: 1, \"sales\" -> sales, or 'choices LIST' for a list variable",
        )
    outcomes = [o_ for o_ in ir.OUTCOMES["gather"] if not (choices and o_ == "match")]
    outcomes += list(explicit)
    on = lw.resolve(s.handlers, outcomes, explicit, s.span)
    capture = o.get("capture", None)
    if capture is not None and capture.type == "digits":
        capture = ir.Capture(
            type="digits",
            min_length=o.get("min_digits", None),
            max_length=o.get("max_digits", None),
        )
    input_ = _gather_input(lw, o, choices, capture)
    max_digits = o.get("max_digits", None)
    if max_digits is None and choices and any(c.keys for c in choices):
        longest = [max_length(k) for c in choices for k in c.keys]
        max_digits = None if None in longest else max(n for n in longest if n is not None)
    return ir.GatherStep(
        span=span,
        var=o.get("into", None),
        input=input_,
        prompt=t,
        reprompts=tuple(o.get("reprompt", [])),
        capture=capture,
        choices=tuple(choices),
        max_digits=max_digits,
        terminator=o.get("terminator", None),
        interdigit_ms=o.get("interdigit", cfg.interdigit_ms),
        timeout_ms=o.get("timeout", cfg.timeout_ms),
        bargein=b,
        voice=o.get("voice", cfg.voice),
        **_retries(o.get("retries", o.get("attempts", cfg.max_attempts)), cfg.max_attempts),
        dynamic=tuple(o.dynamic),
        min_confidence=o.get("confidence", cfg.min_confidence),
        choices_from=listed,
        on=on,
    )


def _gather_input(
    lw: Lowerer, o: Opts, choices: list[ir.Choice], capture: ir.Capture | None
) -> str:
    """A gather's ``input``: as given, else what its choices (or a digits capture) can take;
    VF408 for a ``confidence`` on a step that takes keys only."""
    has_keys = any(c.keys for c in choices)
    has_speech = any(c.phrases or c.patterns for c in choices)
    default_input = "both"
    if choices and has_keys and not has_speech:
        default_input = "dtmf"
    elif choices and has_speech and not has_keys:
        default_input = "speech"
    elif capture is not None and capture.type == "digits":
        default_input = "dtmf"
    input_: str = o.get("input", default_input)
    if "confidence" in o.values and input_ == "dtmf":
        lw.error(
            "VF408",
            o.spans["confidence"],
            "'confidence' applies to spoken answers; this step takes keys only",
            "remove it, or add spoken choices / 'input both'",
        )
    return input_


def _b_record(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    on = lw.resolve(s.handlers, ir.OUTCOMES["record"], {}, s.span)
    return ir.RecordStep(
        span=span,
        name=t or ir.Template(source="recording-{{ call.id }}", names=("call",)),
        var=o.get("into", None),
        prompt=o.get("prompt", None),
        format=o.get("format", "wav"),
        max_duration_ms=o.get("max", 120_000),
        silence_ms=o.get("silence", 5000),
        beep=o.get("beep", True),
        terminator=o.get("terminator", "#"),
        bargein=b,
        **_retries(o.get("retries", lw.config.max_attempts), lw.config.max_attempts),
        dynamic=tuple(o.dynamic),
        transcript_var=o.get("transcribe", None),
        on=on,
    )


def _b_dial(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    on = lw.resolve(s.handlers, ir.OUTCOMES["dial"], {}, s.span)
    others: list[ir.Template] = []
    for lit in (s.text, *s.more_texts):
        if lit is not None and isinstance(lit.value, str) and "&" in lit.value.split("{{")[0]:
            lw.error(
                "VF408",
                lit.span,
                "'&' in a dial string: ARI cannot ring several endpoints in one string",
                'list them instead: dial "PJSIP/alice", "PJSIP/bob" (ring all or ring hunt)',
            )
    for lit in s.more_texts:
        tpl = lw.template(lit)
        if tpl is not None:
            others.append(tpl)
    if o.get("ring", None) is not None and not others:
        lw.error("VF408", o.spans["ring"], "'ring' needs several endpoints (a ring group)")
    for name in ("dtmf", "accept"):
        keys = o.get(name, None)
        allowed = "0123456789*#ABCD" + ("," if name == "dtmf" else "")
        if keys is not None and (not keys or any(ch.upper() not in allowed for ch in keys)):
            what = "DTMF keys and ',' pauses" if name == "dtmf" else "DTMF keys"
            lw.error("VF408", o.spans[name], f"'{name}' takes {what}, not {keys!r}")
    if o.get("accept_timeout", None) is not None and o.get("accept", None) is None:
        lw.error("VF408", o.spans["accept_timeout"], "'accept_timeout' needs 'accept'")
    return ir.DialStep(
        span=span,
        others=tuple(others),
        ring=o.get("ring", "all"),
        far_dtmf=o.get("dtmf", None),
        whisper=o.get("whisper", None),
        accept=o.get("accept", None),
        accept_timeout_ms=o.get("accept_timeout", 5000),
        endpoint=t,
        caller_id=o.get("caller_id", None),
        timeout_ms=o.get("timeout", lw.config.dial_timeout_ms),
        music=o.get("music", None),
        dynamic=tuple(o.dynamic),
        on=on,
    )


def _b_transfer(lw: Lowerer, s: Any, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.TransferStep(span=span, endpoint=t, carry=o.get("carry", None))


def _queue_keys(lw: Lowerer, s: ast.SimpleStep) -> tuple[list[ir.Choice], dict[str, Any]]:
    """A queue's exit keys: choice lines of single digits, each key once."""
    seen: set[str] = set()
    for c in s.choices:
        for p in c.patterns:
            if p.kind != "key" or len(p.text) != 1 or p.text not in QUEUE_EXIT_KEYS:
                shown = p.text if p.kind == "key" else f"{p.kind} {p.text!r}"
                lw.error(
                    "VF408",
                    p.span,
                    f"a queue's exit key is one digit 0-9, not {shown}",
                    "the caller leaves Queue() with a key its context [voxflow-queue-exit] "
                    "matches (_X); speech and other keys never reach the flow while queued",
                )
            elif p.text in seen:
                lw.error("VF408", p.span, f"exit key {p.text} is listed twice")
            seen.add(p.text)
    return _choices(lw, s)


def _b_queue(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    choices, explicit = _queue_keys(lw, s)
    on = lw.resolve(s.handlers, ir.OUTCOMES["queue"], explicit, s.span)
    return ir.QueueStep(
        span=span,
        name=t or ir.Template(source=""),
        timeout_ms=o.get("timeout", 300_000),
        music=o.get("music", None),
        announce=o.get("announce", None),
        dynamic=tuple(o.dynamic),
        priority=o.get("priority", None),
        announce_position=o.get("announce_position", False),
        carry=o.get("carry", None),
        choices=tuple(choices),
        var=o.get("into", None),
        on=on,
    )


def _b_hold(lw: Lowerer, s: Any, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.HoldStep(span=span, music=o.get("music", None))


def _b_unhold(lw: Lowerer, s: Any, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.UnholdStep(span=span)


def _b_dtmf(lw: Lowerer, s: Any, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.SendDtmfStep(span=span, digits=t)


def _b_log(lw: Lowerer, s: Any, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    return ir.LogStep(span=span, level=o.get("level", "info"), message=t)


def _b_agent(lw: Lowerer, s: ast.SimpleStep, o: Opts, span: ir.Span, t: Any, b: Any) -> ir.Step:
    system = t or o.get("system", None)
    if system is None:
        lw.error("VF408", s.span, "an agent needs a system prompt", 'write: agent "You are ..."')
        system = ir.Template(source="")
    tools: list[ir.Tool] = []
    explicit: dict[str, tuple[ir.Handler, ...]] = {}
    for tool in s.tools:
        args = []
        for a in tool.args:
            atype = a.type if a.type in TYPES else "any"
            if a.type not in TYPES:
                lw.error("VF408", a.span, f"unknown type '{a.type}'", did_you_mean(a.type, TYPES))
            args.append(
                ir.ToolArg(
                    name=a.name,
                    type=atype,
                    var=a.var,
                    description=a.description,
                    constraints=arg_schema(lw, a, atype),
                )
            )
        tools.append(
            ir.Tool(
                name=tool.name,
                description=tool.description,
                args=tuple(args),
                span=lw.sp(tool.span),
            )
        )
        explicit[f"tool:{tool.name}"] = (
            lw.handler(tool.tail, tool.span, ir.ContinueStep(span=lw.sp(tool.span))),
        )
    outcomes = [*ir.OUTCOMES["agent"], *explicit]
    on = lw.resolve(s.handlers, outcomes, explicit, s.span)
    return ir.AgentStep(
        span=span,
        system=system,
        greeting=o.get("greeting", None),
        tools=tuple(tools),
        actions=tuple(_action(lw, a) for a in s.actions),
        max_turns=o.get("max_turns", 20),
        timeout_ms=o.get("timeout", 600_000),
        silence_ms=o.get("silence", 10_000),
        filler=o.get("filler", None),
        filler_after_ms=o.get("filler_after", None),
        give_up_ms=o.get("give_up", None),
        context=o.get("context", "append"),
        transcript_var=o.get("into", None),
        voice=o.get("voice", lw.config.voice),
        bargein=b,
        **_retries(o.get("retries", 1), 1),
        model=o.get("model", None),
        temperature=o.get("temperature", None),
        on=on,
    )


def _method(lw: Lowerer, method: str, span: Span) -> Any:
    upper = method.upper()
    if upper in HTTP_METHODS:
        return upper
    lw.error(
        "VF408",
        span,
        f"unknown HTTP method '{method}'",
        did_you_mean(upper, HTTP_METHODS) or "use get, post, put, patch or delete",
    )
    return "GET"


def _headers(lw: Lowerer, o: Opts, span: Span) -> tuple[tuple[str, ir.Template], ...]:
    headers: list[tuple[str, ir.Template]] = []
    h = o.get("headers", None)
    if h is not None:
        if isinstance(h, ir.MapExpr) and all(
            isinstance(v, ir.LiteralExpr) and v.type == "string" for _, v in h.entries
        ):
            for k, v in h.entries:
                assert isinstance(v, ir.LiteralExpr)
                headers.append((k, lw.template(_lit(str(v.value), span)) or ir.Template(source="")))
        else:
            lw.error("VF408", o.spans["headers"], 'headers take a map of strings: {"X-Key": "..."}')
    return tuple(headers)


def _action(lw: Lowerer, a: ast.Action) -> ir.AgentAction:
    """One ``action`` of an agent step: its parameters and its single ``http`` request."""
    params: list[ir.ActionParam] = []
    for arg in a.args:
        atype = arg.type if arg.type in TYPES else "any"
        if arg.type not in TYPES:
            lw.error("VF408", arg.span, f"unknown type '{arg.type}'", did_you_mean(arg.type, TYPES))
        if arg.var != arg.name:
            lw.error(
                "VF408",
                arg.span,
                f"action argument '{arg.name}' is not stored in a variable",
                f"remove 'as {arg.var}': use {{{{ {arg.name} }}}} in the request",
            )
        params.append(
            ir.ActionParam(
                name=arg.name,
                type=atype,
                description=arg.description,
                constraints=arg_schema(lw, arg, atype),
            )
        )
    if not a.requests:
        lw.error(
            "VF408",
            a.name_span,
            f"action '{a.name}' has no http request",
            'add a line like: http get "https://api.example.com/items/{{ id }}"',
        )
    for extra in a.requests[1:]:
        lw.error("VF408", extra.span, f"action '{a.name}' takes one http request")
    req = a.requests[0] if a.requests else None
    options = (*(req.options if req else ()), *a.options)
    o = lw.options("action", options, STEP_OPTIONS["action"])
    return ir.AgentAction(
        name=a.name,
        description=a.description or a.name,
        args=tuple(params),
        method=_method(lw, req.method, req.method_span) if req else "GET",
        url=(lw.template(req.url) if req else None) or ir.Template(source=""),
        body=o.get("body", None),
        headers=_headers(lw, o, a.span),
        timeout_ms=o.get("timeout", lw.config.http_timeout_ms),
        span=lw.sp(a.span),
    )


_IDEMPOTENT = ("GET", "PUT", "DELETE")
_MAX_RETRIES = 5
_BACKOFF_MS = (50, 10_000)


def _http_retries(lw: Lowerer, s: ast.HttpStep, o: Opts, method: str) -> dict[str, int]:
    """``retries N`` (0-5, idempotent methods only) and ``backoff D`` (50 ms-10 s, with
    retries): the IR fields, defaults where unset."""
    retries, backoff = o.get("retries", None), o.get("backoff", None)
    out = {"retries": 2 if method in _IDEMPOTENT else 0, "backoff_ms": 200}
    if isinstance(retries, int):
        where = o.spans.get("retries", s.span)
        if retries > _MAX_RETRIES:
            lw.error("VF408", where, f"'retries' is 0 to {_MAX_RETRIES}, not {retries}")
        elif retries and method not in _IDEMPOTENT:
            lw.error(
                "VF408",
                where,
                f"a {method} is sent once: only GET, PUT and DELETE are retried",
                "a retried POST may charge or book twice; write 'retries 0' or use an "
                "idempotent method (the server must accept it twice)",
            )
            return out
        else:
            out["retries"] = retries
    if isinstance(backoff, int):
        lo, hi = _BACKOFF_MS
        where = o.spans.get("backoff", s.span)
        if out["retries"] == 0:
            why = f"a {method} is sent once" if method not in _IDEMPOTENT else "'retries 0'"
            lw.error("VF408", where, f"'backoff' with no retries ({why}): nothing waits for it")
        elif not lo <= backoff <= hi:
            lw.error("VF408", where, f"'backoff' is {lo}ms to {hi // 1000}s, not {backoff}ms")
        else:
            out["backoff_ms"] = backoff
    return out


def lower_http(lw: Lowerer, s: ast.HttpStep) -> ir.Step:
    o = lw.options("http", s.options, STEP_OPTIONS["http"])
    method = _method(lw, s.method, s.method_span)
    headers = _headers(lw, o, s.span)
    on = lw.resolve(s.handlers, ir.OUTCOMES["http"], {}, s.span)
    return ir.HttpStep(
        **_http_retries(lw, s, o, method),
        span=lw.sp(s.span),
        method=method,
        url=lw.template(s.url) or ir.Template(source=""),
        body=o.get("body", None),
        headers=headers,
        timeout_ms=o.get("timeout", lw.config.http_timeout_ms),
        result_var=o.get("into", None),
        status_var=o.get("status", None),
        on=on,
    )


def _lit(value: str, span: Span) -> ast.Literal_:
    return ast.Literal_(span, "string", value)


_BUILDERS: dict[str, _Builder] = {
    "answer": _b_answer,
    "hangup": _b_hangup,
    "say": _b_say,
    "play": _b_play,
    "gather": _b_gather,
    "menu": _b_gather,
    "record": _b_record,
    "dial": _b_dial,
    "bridge": _b_dial,
    "transfer": _b_transfer,
    "queue": _b_queue,
    "hold": _b_hold,
    "unhold": _b_unhold,
    "send_dtmf": _b_dtmf,
    "agent": _b_agent,
    "log": _b_log,
}

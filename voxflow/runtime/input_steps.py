"""The waits of the input steps, ``gather`` and ``record``, run on a :class:`_Machine` (pure).

``gather``: the prompt (interrupted by a key when barge-in allows), then keys (type-ahead
first) and/or speech, ended by the terminator, a digit limit, a key no choice can extend, or a
timer; the value goes to the state's commands, the step's choices or its capture. ``record``:
the prompt, the recording, its stop by the terminator, silence or the maximum duration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.expressions import UNSET
from voxflow.runtime.matching import _capture, _matches
from voxflow.runtime.redaction import taken
from voxflow.runtime.runstate import Cursor, Wait, _rewait
from voxflow.spec.dtmf import can_extend

if TYPE_CHECKING:
    from voxflow.runtime.machine import _Machine

__all__ = [
    "SPEECH_GUARD_MS",
    "gather_collect",
    "gather_digit",
    "gather_end",
    "gather_finish",
    "gather_keys",
    "gather_op",
    "gather_start",
    "record_op",
    "record_stop",
]

SPEECH_GUARD_MS = 20_000
"""A spoken answer gets the step's no-input ``timeout`` plus this long (an utterance lasts up to
15 s, then the STT's final result) before the wait ends as ``noinput`` anyway: a listen that
never answers (looping audio, a stalled STT) cannot hold the call (issue 14)."""


def gather_keys(m: _Machine, s: ir.GatherStep) -> list[str]:
    """The keys that can end a gather: its choices' and the state's anytime commands'."""
    keys = [k for c in s.choices for k in c.keys]
    keys += [k for c in m.cur_state().commands for k in c.keys]
    return keys


def gather_start(m: _Machine, s: ir.GatherStep) -> None:
    """Start gather step ``s``: its prompt (or reprompt), then the keys typed ahead."""
    attempt = m.count_attempt(s)
    dtmf = s.input in ("dtmf", "both")
    speech = s.input == "speech" or (s.input == "both" and m.st.speech)
    prompt = s.prompt
    if attempt > 1 and s.reprompts:
        prompt = s.reprompts[min(attempt - 2, len(s.reprompts) - 1)]
    typed = ""
    if dtmf and m.typeahead:
        typed, m.typeahead = m.typeahead, ""
    w = Wait("gather", s, frozenset(), phase="collect", digits="")
    if prompt is not None and not (typed and s.bargein.mode in ("dtmf", "any")):
        text = m.render(prompt)
        c = m.cid()
        voice = s.voice or m.flow.config.voice
        m.emit(ev.Say(c, text, voice, s.bargein.mode))
        m.emit(ev.Notify("prompt", {"text": text, "attempt": attempt}))
        w = _rewait(w, phase="prompt", main_cid=c, cids=frozenset({c}))
    m.wait = w
    for d in typed:
        if m.wait is None or m.wait.kind != "gather":
            break
        gather_digit(m, m.wait, d)
    if m.wait is not None and m.wait.phase == "collect" and not m.wait.digits:
        gather_collect(m, m.wait, speech)


def gather_collect(m: _Machine, w: Wait, speech: bool) -> None:
    """Prompt over: wait for the first key (timer) and/or speech (listen)."""
    s: ir.GatherStep = w.step
    cids = set(w.cids)
    listen = None
    if speech and not w.digits:
        listen = m.cid()
        phrases = tuple(p for c in s.choices for p in c.phrases)
        m.emit(ev.Listen(listen, s.timeout_ms, phrases, s.min_confidence))
        cids.add(listen)
    timer = None
    if s.input != "speech" and (listen is None or w.digits):
        timer = m.cid()
        m.emit(ev.StartTimer(timer, s.interdigit_ms if w.digits else s.timeout_ms))
        cids.add(timer)
    elif listen is not None:  # the guard: ends the wait if the listen never answers
        timer = m.cid()
        m.emit(ev.StartTimer(timer, s.timeout_ms + SPEECH_GUARD_MS))
        cids.add(timer)
    m.wait = _rewait(w, phase="collect", cids=frozenset(cids), timer_cid=timer, listen_cid=listen)


def gather_op(m: _Machine, w: Wait, cid: int, result: Any) -> None:
    """A gather's op answered: the prompt ended (collect next), or the listen heard ``result``."""
    if cid == w.main_cid:  # the prompt finished (or was interrupted)
        w = _rewait(w, cids=w.cids - {cid}, main_cid=None)
        m.wait = w
        if w.phase == "prompt":
            speech = w.step.input == "speech" or (w.step.input == "both" and m.st.speech)
            gather_collect(m, w, speech)
    elif cid == w.listen_cid:
        m.wait = _rewait(w, cids=w.cids - {cid}, listen_cid=None)
        # "": the caller spoke but nothing was recognised with confidence (nomatch)
        text = result.strip() if isinstance(result, str) else None
        if not text and w.digits:
            return
        gather_end(m, m.wait, text, "speech")


def _ignored(m: _Machine, s: ir.GatherStep, digit: str, why: str) -> None:
    """A key ``s`` does not take is traced as ignored, masked if ``s`` gathers a secret."""
    data = taken({"kind": "dtmf", "digit": digit}, m.flow, m.top.subflow, s)
    m.emit(ev.Notify("input.ignored", {"digits": data["digit"], "why": why}))


def _phrase_not_key(m: _Machine, s: ir.GatherStep, keys: str) -> None:
    """Keys that match no choice but are written as one's quoted phrase (``"1"``, lint's VF410):
    the trace says why they are a ``nomatch``."""
    if any(keys in c.phrases for c in s.choices):
        fix = keys if keys.isdigit() else f'key "{keys}"'
        why = f'"{keys}" is a spoken phrase, not a key; for the key write {fix}'
        m.emit(ev.Notify("input.unmatched", {"digits": keys, "why": why}))


def gather_digit(m: _Machine, w: Wait, digit: str) -> None:
    """A key during a gather: barges in on the prompt, ends or extends the digits."""
    s: ir.GatherStep = w.step
    if s.input == "speech":
        _ignored(m, s, digit, "the step takes speech only")
        return
    if w.phase == "prompt":
        if s.bargein.mode not in ("dtmf", "any"):
            _ignored(m, s, digit, "the prompt takes no DTMF barge-in")
            return
        if w.main_cid is not None:
            m.emit(ev.StopOp(w.main_cid))
        w = _rewait(w, phase="collect", main_cid=None, cids=w.cids - {w.main_cid or 0})
    if w.listen_cid is not None:
        m.emit(ev.StopOp(w.listen_cid))
        w = _rewait(w, cids=w.cids - {w.listen_cid}, listen_cid=None)
    if w.timer_cid is not None:
        m.emit(ev.StopOp(w.timer_cid))
        w = _rewait(w, cids=w.cids - {w.timer_cid}, timer_cid=None)
    ended = bool(s.terminator) and digit == s.terminator  # the terminator is no secret
    key = {"kind": "dtmf", "digit": digit}
    m.emit(ev.Notify("input", taken(key, m.flow, m.top.subflow, s, not ended)))
    if ended:
        m.wait = w
        gather_finish(m, w)
        return
    digits = w.digits + digit
    w = _rewait(w, digits=digits)
    m.wait = w
    keys = gather_keys(m, s)
    limit = s.max_digits or (s.capture.max_length if s.capture else None)
    done = limit is not None and len(digits) >= limit
    if not done and keys and not s.capture:
        # as Asterisk: stop waiting once no key or pattern could take another key
        done = not any(can_extend(k, digits) for k in keys)
    if done:
        gather_finish(m, w)
        return
    timer = m.cid()
    m.emit(ev.StartTimer(timer, s.interdigit_ms))
    m.wait = _rewait(w, cids=w.cids | {timer}, timer_cid=timer)


def gather_finish(m: _Machine, w: Wait) -> None:
    """The gather's keys are complete (terminator, limit or timer): end it with them."""
    for c in w.cids:
        m.emit(ev.StopOp(c))
    gather_end(m, w, w.digits or None, "dtmf")


def gather_end(m: _Machine, w: Wait, value: str | None, kind: str) -> None:
    """End the gather with ``value`` (None: no input): a command, a choice or the capture."""
    s: ir.GatherStep = w.step
    for c in w.cids:
        m.emit(ev.StopOp(c))
    m.wait = None
    if kind == "speech" and value is not None:
        said = {"kind": "speech", "text": value}
        m.emit(ev.Notify("input", taken(said, m.flow, m.top.subflow, s)))
    if value is None:
        m.outcome(s, "noinput")
        return
    for cmd in m.cur_state().commands:
        if _matches(value, kind, cmd.keys, cmd.phrases, cmd.patterns):
            m.emit(ev.Notify("command", {"name": cmd.name}))
            if m.obs is not None:
                m.obs.command(m.where(), cmd)
            m.top.stack.append(Cursor(cmd.handler.steps, 0, "command", s))
            return
    if s.choices:
        for choice in s.choices:
            if _matches(value, kind, choice.keys, choice.phrases, choice.patterns):
                if s.var:  # a key choice keeps the keys pressed, a spoken one its name
                    keyed = kind == "dtmf" and not choice.phrases
                    m.assign(s.var, value if keyed else choice.value)
                listed = s.choices_from is not None
                m.outcome(s, "match" if listed else "choice:" + choice.value)
                return
        if kind == "dtmf":
            _phrase_not_key(m, s, value)
        m.outcome(s, "nomatch")
        return
    captured = _capture(s.capture, value, kind)
    if captured is UNSET:
        m.outcome(s, "nomatch")
        return
    if s.var:
        m.assign(s.var, captured)
    m.outcome(s, "match")


# ------------------------------------------------------------ record


def record_op(m: _Machine, w: Wait, cid: int, result: Any) -> None:
    """A record step's op answered: prompt over (start), started (timer), or stopped (done)."""
    s: ir.RecordStep = w.step
    m.wait = _rewait(w, cids=w.cids - {cid})
    if w.phase == "prompt":
        c = m.cid()
        name = m.render(s.name)
        silence = s.silence_ms or None
        m.emit(ev.RecordStart(c, name, s.format, s.max_duration_ms, s.beep, silence))
        m.wait = Wait("record", s, frozenset({c}), phase="starting", main_cid=c)
    elif w.phase == "starting":
        t = m.cid()
        m.emit(ev.RecordTimer(t, s.max_duration_ms))
        m.wait = Wait(
            "record", s, frozenset({t}), phase="recording", digits=str(result), timer_cid=t
        )
    elif w.phase in ("stopping", "stopping_key"):
        m.wait = None
        m.typeahead = ""  # keys pressed while recording are not type-ahead
        duration = result.get("duration") if isinstance(result, dict) else None
        if duration is not None and duration <= 0 and w.phase == "stopping":
            # ended by silence or the maximum with nothing heard (the terminator key means
            # the caller is done: that is 'done' even for a very short message)
            m.outcome(s, "noinput")
            return
        if s.var:
            m.assign(s.var, w.digits)
        if s.transcript_var and isinstance(result, dict):
            m.assign(s.transcript_var, str(result.get("transcript") or ""))
        m.outcome(s, "done")


def record_stop(m: _Machine, w: Wait, *, by_key: bool = False) -> None:
    """Stop the recording (by the terminator key when ``by_key``, else silence or time)."""
    for c in w.cids:
        m.emit(ev.StopOp(c))
    c = m.cid()
    step: ir.RecordStep = w.step
    m.emit(ev.RecordStop(c, w.digits, transcribe=step.transcript_var is not None))
    phase = "stopping_key" if by_key else "stopping"
    m.wait = Wait("record", w.step, frozenset({c}), phase=phase, digits=w.digits)

"""The shipped docs/asterisk/extensions.conf, and the sandbox's emulation of it.

The config is parsed and matched with Asterisk's pattern rules (leading +, no pattern that takes
`h`, an `i` extension, the return tags voxflow listens for). The sandbox's event sequences for
the same contexts are compared with real Asterisk 22's (captures/continue-outcomes.json case c,
captures/queue-return.json).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from conftest import RawAri

from voxflow.sandbox import QueueAgent, Sandbox
from voxflow.telephony.dialplan import QUEUE_EXTENSION, RETURN_TAGS, TRANSFER_ENDPOINT_EXTENSION

CONF = Path(__file__).resolve().parents[2] / "docs" / "asterisk" / "extensions.conf"


def contexts() -> dict[str, list[tuple[str, str]]]:
    """context -> [(extension, "app(data)")] in file order (``same =>`` keeps the extension)."""
    out: dict[str, list[tuple[str, str]]] = {}
    ctx, exten = "", ""
    for raw in CONF.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            ctx = m.group(1)
            out[ctx] = []
        elif m := re.fullmatch(r"exten\s*=>\s*([^,]+),[^,]+,(.*)", line):
            exten = m.group(1)
            out[ctx].append((exten, m.group(2)))
        elif m := re.fullmatch(r"same\s*=>\s*[^,]+,(.*)", line):
            out[ctx].append((exten, m.group(1)))
    return out


def matches(pattern: str, exten: str) -> bool:
    """Asterisk's extension matching: literal, or ``_`` with X Z N [..] . !"""
    if not pattern.startswith("_"):
        return pattern == exten
    rx = ""
    i, p = 0, pattern[1:]
    while i < len(p):
        c = p[i]
        if c == "[":
            j = p.index("]", i)
            rx += "[" + p[i + 1 : j] + "]"
            i = j
        else:
            rx += {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(
                c.upper() if c in "xzn" else c, re.escape(c)
            )
        i += 1
    return re.fullmatch(rx, exten) is not None


def program(ctx: str, exten: str) -> list[str]:
    """The priorities the first matching extension of ``ctx`` runs for ``exten``."""
    steps = contexts()[ctx]
    first = next((e for e, _ in steps if matches(e, exten)), None)
    return [app for e, app in steps if e == first] if first is not None else []


def test_inbound_keeps_the_leading_plus() -> None:
    prog = program("voxflow-in", "+18005550142")
    assert any(a.startswith("Stasis(") for a in prog)
    assert not any("EXTEN:1" in a or a.startswith("Goto(") for a in prog), prog


def test_the_queue_context_takes_its_extension_and_never_h() -> None:
    assert program("voxflow-queue", "h") == []
    assert program("voxflow-queue", "i") == []
    prog = program("voxflow-queue", QUEUE_EXTENSION)
    queue = next(a for a in prog if a.startswith("Queue("))
    assert "${VOXFLOW_QUEUE_OPTIONS}" in queue and "${VOXFLOW_QUEUE_TIMEOUT}" in queue
    # Queue(queuename,options,URL,announceoverride,timeout,AGI,gosub,rule,position) (Asterisk
    # 21+: no macro argument): a caller queued again keeps its place
    args = queue[len("Queue(") : -1].split(",")
    assert args[4] == "${VOXFLOW_QUEUE_TIMEOUT}" and args[8] == "${VOXFLOW_QUEUE_POSITION}", args
    assert any(a.startswith("Stasis(${VOXFLOW_APP},queue-return,${QUEUESTATUS}") for a in prog)


def test_the_queue_return_carries_position_and_wait() -> None:
    prog = program("voxflow-queue", QUEUE_EXTENSION)
    back = next(a for a in prog if a.startswith("Stasis("))
    assert back == (
        "Stasis(${VOXFLOW_APP},queue-return,${QUEUESTATUS},${ANSWEREDTIME},${QUEUEPOSITION},"
        "${QUEUEWAIT})"
    )


def test_the_queue_exit_context_takes_digits_only() -> None:
    for digit in "0123456789":
        assert program("voxflow-queue-exit", digit)[1] == (
            "Stasis(${VOXFLOW_APP},queue-return,EXITWITHKEY,,${QUEUEPOSITION},${QUEUEWAIT},"
            "${EXTEN})"
        )
    for other in ("*", "#", "h", "i", "12"):
        assert program("voxflow-queue-exit", other) == [], other


def test_the_shipped_support_queue_lets_callers_out_with_a_key() -> None:
    conf = (CONF.parent / "queues.conf").read_text()
    support = conf.split("[support]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^context = voxflow-queue-exit\b", support, re.M)
    sales = conf.split("[sales]", 1)[1]
    assert "context" not in sales


def test_the_transfer_context_sends_unroutable_targets_back() -> None:
    assert program("voxflow-transfer", "h") == []
    back = program("voxflow-transfer", "payments")
    assert back == [] and any(
        a.startswith("Stasis(${VOXFLOW_APP},transfer-return,INVALID,${INVALID_EXTEN})")
        for a in program("voxflow-transfer", "i")
    )
    for target in ("+18005550111", "2001", TRANSFER_ENDPOINT_EXTENSION):
        prog = program("voxflow-transfer", target)
        assert any(a.startswith("Dial(") for a in prog), target
        assert any("transfer-return,${DIALSTATUS}" in a for a in prog), target
    tags = set(re.findall(r"Stasis\(\$\{VOXFLOW_APP\},([a-z-]+)", CONF.read_text()))
    assert tags == set(RETURN_TAGS)


# ------------------------------------------------------------------ the sandbox's sequences


async def _enter(ari: RawAri, sb: Sandbox, **variables: str) -> str:
    call = await sb.place_call(to="100")
    await ari.next("StasisStart")
    cid = call.id
    assert (await ari.req("POST", f"/channels/{cid}/answer"))[0] == 204
    for name, value in {"VOXFLOW_APP": "voxflow", **variables}.items():
        await ari.req("POST", f"/channels/{cid}/variable", variable=name, value=value)
    await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    await ari.collect(quiet=0.1)
    return cid


def _shape(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for e in events:
        if e["type"] == "ChannelVarset":
            out.append(("ChannelVarset", e["variable"], e["value"]))
        elif e["type"] == "ChannelDialplan":
            out.append(("ChannelDialplan", e["dialplan_app"]))
        elif e["type"] == "StasisStart":
            out.append(("StasisStart", *e["args"]))
        elif e["type"] == "Dial":
            out.append(("Dial", e["dialstatus"]))
        else:
            out.append((e["type"],))
    return out


async def test_unroutable_transfer_sequence_is_capture_c(sandbox: Sandbox, ari: RawAri) -> None:
    cid = await _enter(ari, sandbox)
    status, _ = await ari.req(
        "POST", f"/channels/{cid}/continue", context="voxflow-transfer", extension="payments"
    )
    assert status == 204
    got = _shape(await ari.collect(quiet=0.2))
    # continue-outcomes.json c-missing-exten-with-i-subscribed, with our Stasis arguments and
    # the return's retry count
    assert got == [
        ("StasisEnd",),
        ("ChannelVarset", "STASISSTATUS", "SUCCESS"),
        ("ChannelVarset", "INVALID_EXTEN", "payments"),
        ("ChannelDialplan", "NoOp"),
        ("ChannelDialplan", "Set"),
        ("ChannelVarset", "VOXFLOW_TRIES", "0"),
        ("ChannelDialplan", "Stasis"),
        ("ChannelVarset", "STASISSTATUS", ""),
        ("StasisStart", "transfer-return", "INVALID", "payments"),
    ]


async def test_queue_timeout_sequence_is_the_capture(sandbox: Sandbox, ari: RawAri) -> None:
    sandbox.add_queue("capq")
    cid = await _enter(
        ari, sandbox, VOXFLOW_QUEUE="capq", VOXFLOW_QUEUE_OPTIONS="c", VOXFLOW_QUEUE_TIMEOUT="1"
    )
    await ari.req("POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue")
    got = _shape(await ari.collect(quiet=1.5))
    empty = [("ChannelVarset", v, "") for v in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME",
             "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")]  # fmt: skip
    assert got[:3] == [
        ("StasisEnd",),
        ("ChannelVarset", "STASISSTATUS", "SUCCESS"),
        ("ChannelDialplan", "NoOp"),
    ]
    assert got[3:10] == [("ChannelDialplan", "Queue"), *empty]
    names = [g[1] for g in got[10:] if g[0] == "ChannelVarset"]
    assert names[:9] == [
        "ABANDONED", "QUEUEWAIT", "QUEUEWAIT_MS", "DIALEDTIME", "DIALEDTIME_MS",
        "ANSWEREDTIME", "ANSWEREDTIME_MS", "QUEUEPOSITION", "QUEUESTATUS",
    ]  # fmt: skip
    assert got[-1] == ("StasisStart", "queue-return", "TIMEOUT", "0", "1", "1")
    assert "DIALSTATUS" not in names


async def test_queue_member_answers_sequence(sandbox: Sandbox, ari: RawAri) -> None:
    sandbox.add_queue("capq2", [QueueAgent("m", answer_after=0.2, talk=0.3)])
    cid = await _enter(
        ari, sandbox, VOXFLOW_QUEUE="capq2", VOXFLOW_QUEUE_OPTIONS="c", VOXFLOW_QUEUE_TIMEOUT="15"
    )
    await ari.req("POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue")
    got = _shape(await ari.collect(quiet=1.0))
    dials = [g for g in got if g[0] == "Dial"]
    assert dials == [("Dial", ""), ("Dial", "ANSWER")]
    after = [g[1:] for g in got[got.index(("Dial", "ANSWER")) :] if g[0] == "ChannelVarset"]
    assert [a[0] for a in after][:4] == ["QUEUEPOSITION", "QUEUEWAIT", "QUEUEWAIT_MS", "BRIDGEPEER"]
    assert ("BRIDGEPEER", "") in after and ("QUEUESTATUS", "CONTINUE") in after
    assert got[-1] == ("StasisStart", "queue-return", "CONTINUE", "0", "1", "0")
    status, _ = await ari.req("GET", f"/channels/{cid}/variable", variable="DIALSTATUS")
    assert status == 404


async def test_a_call_back_from_its_agent_is_not_timed_out_of_the_queue_later(
    sandbox: Sandbox, ari: RawAri
) -> None:
    """Queue() returned (CONTINUE: the agent answered and hung up before the queue's timeout):
    the timeout, which no longer applies, sends nothing back later (it sent the call back
    into the app a second time, with TIMEOUT)."""
    sandbox.add_queue("capq2", [QueueAgent("m", answer_after=0.1, talk=0.1)])
    cid = await _enter(
        ari, sandbox, VOXFLOW_QUEUE="capq2", VOXFLOW_QUEUE_OPTIONS="c", VOXFLOW_QUEUE_TIMEOUT="1"
    )
    await ari.req("POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue")
    got = _shape(await ari.collect(quiet=1.5))  # past the 1 s timeout
    backs = [g for g in got if g[0] == "StasisStart"]
    assert backs == [("StasisStart", "queue-return", "CONTINUE", "0", "1", "0")]


QUEUE_CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "queue-return.json"


def _queue_shape(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """From StasisEnd to the StasisStart back: event types, variables set, apps, dial states
    (the shipped context's NoOp before Queue() and Set(VOXFLOW_TRIES=0) before the Stasis()
    left out: the capture's has neither)."""
    extra = {
        ("ChannelDialplan", "NoOp"),
        ("ChannelDialplan", "Set"),
        ("ChannelVarset", "VOXFLOW_TRIES"),
    }
    out = [s[:2] if s[0] != "Dial" else s for s in _shape(events) if s[:2] not in extra]
    start = out.index(("StasisEnd",))
    end = next(i for i in range(start, len(out)) if out[i][0] == "StasisStart")
    return out[start : end + 1]


def _captured_queue(step: str) -> list[tuple[str, ...]]:
    import json

    [s] = [s for s in json.loads(QUEUE_CAPTURE.read_text())["steps"] if s["step"] == step]
    return _queue_shape([e["event"] for e in s["log"] if "event" in e])


async def test_queue_sequences_are_the_captured_ones(sandbox: Sandbox, ari: RawAri) -> None:
    sandbox.add_queue("capq")
    sandbox.add_queue("capq2", [QueueAgent("m", answer_after=0.2, talk=0.3)])
    for queue, timeout, step in (
        ("capq", "1", "queue-no-members-timeout"),
        ("capq2", "15", "queue-member-answers-then-hangs-up-option-c"),
    ):
        cid = await _enter(
            ari, sandbox, VOXFLOW_QUEUE=queue, VOXFLOW_QUEUE_OPTIONS="c",
            VOXFLOW_QUEUE_TIMEOUT=timeout,
        )  # fmt: skip
        await ari.req(
            "POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue"
        )
        got = _queue_shape(await ari.collect(quiet=1.5))
        assert got == _captured_queue(step), step
        await ari.req("DELETE", f"/channels/{cid}")
        await ari.collect(quiet=0.1)


# ------------------------------------------------------------------ a return while no app is up


def test_every_return_into_the_app_is_retried_while_stasis_fails() -> None:
    # a return in a cluster take-over (~0.2-1 s with no worker holding the app) fails in
    # Stasis() (STASISSTATUS=FAILED, next priority): the shipped contexts try again
    for ctx, exten in (
        ("voxflow-queue", QUEUE_EXTENSION), ("voxflow-transfer", "2001"),
        ("voxflow-transfer", "+18005550111"), ("voxflow-transfer", TRANSFER_ENDPOINT_EXTENSION),
        ("voxflow-transfer", "i"), ("voxflow-queue-exit", "1"),
    ):  # fmt: skip
        prog = program(ctx, exten)
        back = next(i for i, a in enumerate(prog) if a.startswith("Stasis("))
        assert prog[back - 1] == "Set(VOXFLOW_TRIES=0)", (ctx, exten)
        assert prog[back + 1].startswith('GotoIf($["${STASISSTATUS}" != "FAILED" |'), (ctx, exten)
        assert prog[back + 2 : back + 5] == [
            "Set(VOXFLOW_TRIES=$[${VOXFLOW_TRIES} + 1])", "Wait(0.5)", "Goto(back)",
        ], (ctx, exten)  # fmt: skip
        assert prog[-1] == "Hangup()"
    text = CONF.read_text()
    assert text.count("n(back),Stasis(${VOXFLOW_APP},") == 6
    assert text.count(">= 10]?done)") == 6  # the sandbox's ShippedContexts.back_tries


async def test_a_queue_return_while_the_app_is_away_is_retried_until_it_is_back(
    sandbox: Sandbox, ari: RawAri
) -> None:
    # Stasis() with no app registered: STASISSTATUS=FAILED and the next priority (captures
    # outbound-websocket.json no-server-listening, observed-behaviour 12); the shipped
    # context waits 0.5 s and tries again (it hung the caller up at the first failure)
    sandbox.add_queue("capq2", [QueueAgent("m", answer_after=0.1, talk=0.2)])
    cid = await _enter(
        ari, sandbox, VOXFLOW_QUEUE="capq2", VOXFLOW_QUEUE_OPTIONS="c", VOXFLOW_QUEUE_TIMEOUT="15"
    )
    await ari.req("POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue")
    await ari.collect(quiet=0.05)
    await ari.close()  # the worker's socket goes (a take-over: nobody holds the app)
    await asyncio.sleep(1.0)  # Queue() returns after 0.3 s: Stasis() fails, twice
    ch = sandbox.pbx.channels.get(cid)
    assert ch is not None and not ch.hungup, "the caller was hung up at the first failure"
    assert ch.variables.get("STASISSTATUS") == "FAILED" and ch.variables["VOXFLOW_TRIES"] in "12"
    await ari.connect()  # the next worker holds the app
    start = await ari.next("StasisStart", timeout=5)
    assert start["args"] == ["queue-return", "CONTINUE", "0", "1", "0"]
    assert start["channel"]["dialplan"]["context"] == "voxflow-queue"
    assert start["channel"]["dialplan"]["priority"] == 4


async def test_a_return_nobody_takes_is_hung_up_after_the_tries(
    sandbox: Sandbox, ari: RawAri
) -> None:
    sandbox.pbx.contexts.back_wait = 0.05  # the shipped Wait(0.5), shortened
    cid = await _enter(ari, sandbox)
    await ari.close()
    ch = sandbox.pbx.channels[cid]
    sandbox.pbx.continue_in_dialplan(ch, "voxflow-transfer", "payments", 1, "")
    for _ in range(100):
        if ch.hungup:
            break
        await asyncio.sleep(0.05)
    assert ch.hungup and ch.variables["VOXFLOW_TRIES"] == "10"
    assert ch.variables["STASISSTATUS"] == "FAILED" and ch.priority == 8  # i: n(done),Hangup()


def test_a_new_call_is_retried_while_stasis_fails() -> None:
    # a call arriving in a cluster take-over (no worker holds the app) failed in Stasis() and
    # was hung up: [voxflow-in] tries again like the returns, keeping its first Stasis() at
    # priority 2 (the captures' channel JSON), 10 times 0.5 s apart, then Hangup()
    for exten in ("100", "+18005550142"):
        prog = program("voxflow-in", exten)
        assert prog[:2] == ["NoOp(voxflow inbound call to ${EXTEN})", "Stasis(voxflow)"]
        assert prog[2:] == [
            'GotoIf($["${STASISSTATUS}" != "FAILED"]?done)',
            "Set(VOXFLOW_TRIES=0)",
            "Wait(0.5)",
            "Stasis(voxflow)",
            "Set(VOXFLOW_TRIES=$[${VOXFLOW_TRIES} + 1])",
            'GotoIf($["${STASISSTATUS}" = "FAILED" & ${VOXFLOW_TRIES} < 10]?again)',
            "Hangup()",
        ], exten


async def test_a_call_arriving_while_no_worker_holds_the_app_waits_for_one(
    sandbox: Sandbox, ari: RawAri
) -> None:
    await ari.close()  # a take-over: nobody holds the app
    call = await sandbox.place_call(to="100", wait_app=0)
    await asyncio.sleep(0.8)  # Stasis() failed at 2, then at 6 after Wait(0.5)
    ch = sandbox.pbx.channels.get(call.id)
    assert ch is not None and not ch.hungup and not call.ended, "hung up at the first failure"
    assert ch.variables.get("STASISSTATUS") == "FAILED"
    await ari.connect()  # the next worker holds the app
    start = await ari.next("StasisStart", timeout=5)
    assert start["channel"]["id"] == call.id
    assert start["channel"]["dialplan"]["context"] == "voxflow-in"
    assert start["channel"]["dialplan"]["priority"] == 6


async def test_a_new_call_nobody_takes_is_hung_up_after_the_tries(
    sandbox: Sandbox, ari: RawAri
) -> None:
    sandbox.pbx.contexts.back_wait = 0.05  # the shipped Wait(0.5), shortened
    await ari.close()
    call = await sandbox.place_call(to="100", wait_app=0)
    await call.wait_hangup(10)
    ch = call.channel
    assert ch is not None and ch.variables["VOXFLOW_TRIES"] == "10"
    assert ch.variables["STASISSTATUS"] == "FAILED" and ch.priority == 9  # n(done),Hangup()
    reasons = [e.get("reason") for e in call.experience() if e.get("reason")]
    assert reasons == ["Stasis app 'voxflow' doesn't exist"]


async def test_a_call_let_go_after_a_retry_runs_the_rest_of_voxflow_in(
    sandbox: Sandbox, ari: RawAri
) -> None:
    # after the Stasis() of a retry (priority 6), a continue with no target runs 7, 8 and
    # n(done),Hangup() (cause 16), not "no such priority" (cause 0)
    await ari.close()
    call = await sandbox.place_call(to="100", wait_app=0)
    await asyncio.sleep(0.2)
    await ari.connect()
    start = await ari.next("StasisStart", timeout=5)
    assert start["channel"]["dialplan"]["priority"] == 6
    assert (await ari.req("POST", f"/channels/{call.id}/continue"))[0] == 204
    assert await call.wait_hangup(5) == 16
    ch = call.channel
    assert ch is not None and ch.priority == 9 and ch.variables["STASISSTATUS"] == "SUCCESS"

"""The sandbox's Queue() and the shipped [voxflow-queue-exit]: a waiting caller's digit leaves a
queue whose queues.conf ``context`` is that context (app_queue's ``valid_exit``: QUEUEPOSITION
set, QUEUESTATUS not), and nothing happens in a queue without one; QUEUEPOSITION counts the
callers ahead."""

from __future__ import annotations

from typing import Any

from conftest import RawAri

from voxflow.sandbox import QueueAgent, Sandbox
from voxflow.sandbox.caller import SimCall


async def _queued(
    ari: RawAri, sb: Sandbox, queue: str, timeout: str = "2", position: str = "", prio: str = ""
) -> tuple[str, Any]:
    call = await sb.place_call(to="100")
    await ari.next("StasisStart")
    cid = call.id
    assert (await ari.req("POST", f"/channels/{cid}/answer"))[0] == 204
    variables = {"VOXFLOW_APP": "voxflow", "VOXFLOW_QUEUE": queue, "VOXFLOW_QUEUE_OPTIONS": "c",
                 "VOXFLOW_QUEUE_TIMEOUT": timeout, "VOXFLOW_QUEUE_POSITION": position}  # fmt: skip
    if prio:
        variables["QUEUE_PRIO"] = prio
    for name, value in variables.items():
        await ari.req("POST", f"/channels/{cid}/variable", variable=name, value=value)
    await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    await ari.collect(quiet=0.1)
    status, _ = await ari.req(
        "POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue"
    )
    assert status == 204
    await ari.collect(quiet=0.2)
    return cid, call


def _back(events: list[dict[str, Any]]) -> list[list[str]]:
    return [e["args"] for e in events if e["type"] == "StasisStart"]


async def test_a_digit_leaves_a_queue_whose_context_is_the_exit_context(
    sandbox: Sandbox, ari: RawAri
) -> None:
    cid, call = await _queued(ari, sandbox, "support", timeout="30")
    assert isinstance(call, SimCall)
    await call.press("1")
    got = await ari.collect(quiet=0.3)
    assert _back(got) == [["queue-return", "EXITWITHKEY", "", "1", "", "1"]]
    plan = next(e for e in got if e["type"] == "StasisStart")["channel"]["dialplan"]
    assert (plan["context"], plan["exten"], plan["priority"]) == ("voxflow-queue-exit", "1", 2)
    status, _ = await ari.req("GET", f"/channels/{cid}/variable", variable="QUEUESTATUS")
    assert status == 404  # Queue() did not set it
    assert cid not in sandbox.pbx.contexts.queues["support"].waiting


async def test_a_key_in_a_queue_without_a_context_does_nothing(
    sandbox: Sandbox, ari: RawAri
) -> None:
    _, call = await _queued(ari, sandbox, "sales", timeout="1")
    await call.press("1")
    got = await ari.collect(quiet=1.5)
    assert _back(got) == [["queue-return", "TIMEOUT", "0", "1", "1"]]


async def test_star_and_pound_do_not_leave_and_an_agent_call_ignores_keys(
    sandbox: Sandbox, ari: RawAri
) -> None:
    sandbox.add_queue(
        "desk", [QueueAgent("ann", answer_after=0.1, talk=0.6)], context="voxflow-queue-exit"
    )
    _, call = await _queued(ari, sandbox, "desk", timeout="5")
    await call.press("*#")  # (the agent answers meanwhile)
    await call.press("1")  # talking to the agent: Queue() no longer reads keys
    got = await ari.collect(quiet=1.0)
    assert [a[:2] for a in _back(got)] == [["queue-return", "CONTINUE"]]


async def test_queueposition_counts_the_callers_ahead(sandbox: Sandbox, ari: RawAri) -> None:
    first, _ = await _queued(ari, sandbox, "support", timeout="30")
    _, second = await _queued(ari, sandbox, "support", timeout="30")
    await second.press("5")
    got = await ari.collect(quiet=0.3)
    assert _back(got) == [["queue-return", "EXITWITHKEY", "", "2", "", "5"]]
    assert sandbox.pbx.contexts.queues["support"].waiting == [first]


async def test_queue_s_position_argument_puts_a_caller_back_in_its_place(
    sandbox: Sandbox, ari: RawAri
) -> None:
    """Queue()'s ninth argument (app_queue.c join_queue: inserted at ``position``, 1 = next in
    line; past the last caller: at the back), which [voxflow-queue] fills with
    ${VOXFLOW_QUEUE_POSITION} (empty: at the back)."""
    first, _ = await _queued(ari, sandbox, "support", timeout="30")
    second, _ = await _queued(ari, sandbox, "support", timeout="30")
    back, _ = await _queued(ari, sandbox, "support", timeout="30", position="1")
    far, _ = await _queued(ari, sandbox, "support", timeout="30", position="9")
    assert sandbox.pbx.contexts.queues["support"].waiting == [back, first, second, far]
    ch = sandbox.pbx.channels[back]
    assert (ch.app_name, ch.app_data) == ("Queue", "support,c,,,30,,,,1")


async def test_queue_prio_places_a_caller_ahead_of_lower_priorities(
    sandbox: Sandbox, ari: RawAri
) -> None:
    """app_queue.c's join_queue: a caller goes before the first caller of a lower priority
    (QUEUE_PRIO, read when it joins; unset or not a number: 0), and a position argument counts
    only among callers of its priority or lower ("forced into position 3 due to higher priority
    callers"); QUEUEPOSITION follows."""
    a, _ = await _queued(ari, sandbox, "support", timeout="30")
    b, _ = await _queued(ari, sandbox, "support", timeout="30", prio="nonsense")
    c, _ = await _queued(ari, sandbox, "support", timeout="30", prio="5")
    d, _ = await _queued(ari, sandbox, "support", timeout="30", prio="5")
    e, e_call = await _queued(ari, sandbox, "support", timeout="30", position="1")
    f, _ = await _queued(ari, sandbox, "support", timeout="30", prio="10", position="9")
    g, _ = await _queued(ari, sandbox, "support", timeout="30", prio="-1")
    h, _ = await _queued(ari, sandbox, "support", timeout="30", prio="5", position="2")
    assert sandbox.pbx.contexts.queues["support"].waiting == [f, h, c, d, e, a, b, g]
    await e_call.press("7")
    got = await ari.collect(quiet=0.3)
    assert _back(got) == [["queue-return", "EXITWITHKEY", "", "5", "", "7"]]

"""The sandbox's Queue() where no capture shows it, against app_queue.c of Asterisk 21+ (the
8-argument Queue() without ``macro``; iamtalhaasghar/asterisk, a fork of asterisk/asterisk, at
21a042723230c1cd4ca22ed5af2d7df759481cf2, file apps/app_queue.c):

* ``join_queue``: ``if (q->joinempty) ... *reason = QUEUE_JOINEMPTY`` comes before
  ``if (... q->maxlen && (q->count >= q->maxlen)) *reason = QUEUE_FULL``.
* ``wait_our_turn``: its first pass (at once, before ``ast_waitfordigit(RECHECK * 1000)``)
  checks ``leavewhenempty`` and leaves with ``QUEUE_LEAVEEMPTY``; with no member available
  ``is_our_turn`` is false, so even the first caller is there.
* ``queue_exec``: a non-empty timeout argument is ``qe.expire = qe.start +
  atoi(args.queuetimeoutstr)``, and ``qe.expire && time(NULL) >= qe.expire`` ends Queue() with
  ``QUEUE_TIMEOUT``: "0", a negative number or no number at all is at once; "2.5" is 2.
* ``queue_exec``: ``position = atoi(args.position)``, below 0: 0 (no place asked).
"""

from __future__ import annotations

from typing import Any

from conftest import RawAri

from voxflow.sandbox import QueueAgent, Sandbox


async def _queued(
    ari: RawAri, sb: Sandbox, queue: str, timeout: str = "30", position: str = ""
) -> str:
    call = await sb.place_call(to="100")
    await ari.next("StasisStart")
    cid = call.id
    assert (await ari.req("POST", f"/channels/{cid}/answer"))[0] == 204
    variables = {"VOXFLOW_APP": "voxflow", "VOXFLOW_QUEUE": queue, "VOXFLOW_QUEUE_OPTIONS": "c",
                 "VOXFLOW_QUEUE_TIMEOUT": timeout, "VOXFLOW_QUEUE_POSITION": position}  # fmt: skip
    for name, value in variables.items():
        await ari.req("POST", f"/channels/{cid}/variable", variable=name, value=value)
    await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    await ari.collect(quiet=0.1)
    status, _ = await ari.req(
        "POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue"
    )
    assert status == 204
    return cid


def _back(events: list[dict[str, Any]]) -> list[list[str]]:
    return [e["args"] for e in events if e["type"] == "StasisStart"]


async def test_an_empty_queue_is_left_at_once_with_leavewhenempty(
    sandbox: Sandbox, ari: RawAri
) -> None:
    sandbox.add_queue("gone", leavewhenempty=True)
    await _queued(ari, sandbox, "gone")
    got = await ari.collect(quiet=0.5)
    assert _back(got) == [["queue-return", "LEAVEEMPTY", "0", "1", "0"]]  # QUEUEWAIT 0


async def test_joinempty_is_checked_before_full(sandbox: Sandbox, ari: RawAri) -> None:
    sandbox.add_queue("small", maxlen=1)
    await _queued(ari, sandbox, "small")
    await ari.collect(quiet=0.2)
    sandbox.pbx.contexts.queues["small"].joinempty = False  # a reload with joinempty=no
    await _queued(ari, sandbox, "small")
    got = await ari.collect(quiet=0.3)
    assert [a[:2] for a in _back(got)] == [["queue-return", "JOINEMPTY"]]


async def test_a_timeout_argument_of_no_seconds_ends_queue_at_once(
    sandbox: Sandbox, ari: RawAri
) -> None:
    sandbox.add_queue("desk", [QueueAgent("ann", answer_after=0.2, talk=0.2)])
    for timeout in ("0", "-3", "soon"):
        await _queued(ari, sandbox, "desk", timeout=timeout)
        got = await ari.collect(quiet=0.5)
        assert _back(got) == [["queue-return", "TIMEOUT", "0", "1", "0"]], timeout
        assert not [e for e in got if e["type"] == "Dial"], timeout  # no member was rung


async def test_a_fractional_timeout_is_whole_seconds(sandbox: Sandbox, ari: RawAri) -> None:
    await _queued(ari, sandbox, "sales", timeout="1.9")
    got = await ari.collect(quiet=1.4)
    assert _back(got) == [["queue-return", "TIMEOUT", "0", "1", "1"]]  # atoi("1.9") = 1


async def test_the_position_argument_is_read_as_atoi(sandbox: Sandbox, ari: RawAri) -> None:
    first = await _queued(ari, sandbox, "support")
    second = await _queued(ari, sandbox, "support")
    ahead = await _queued(ari, sandbox, "support", position="1st")
    behind = await _queued(ari, sandbox, "support", position="-1")
    await ari.collect(quiet=0.2)
    assert sandbox.pbx.contexts.queues["support"].waiting == [ahead, first, second, behind]

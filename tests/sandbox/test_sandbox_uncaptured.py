"""Sandbox details no capture shows yet, taken from Asterisk's own source (asterisk/asterisk):

* ``apps/app_queue.c`` ``queue_exec``: ``reason`` starts as ``QUEUE_UNKNOWN``; when
  ``join_queue`` finds no such queue it returns -1 without setting it, and ``queue_exec`` calls
  ``set_queue_result(chan, reason)`` and returns 0, so ``QUEUESTATUS=UNKNOWN`` (the first entry
  of ``queue_results[]``) and the dialplan goes on at once; no ANSWEREDTIME/QUEUEWAIT variables.
* ``res/ari/resource_channels.c`` ``ast_ari_channels_record``: a negative
  ``max_duration_seconds`` (or ``max_silence_seconds``) is refused with
  ``400 "max_duration_seconds cannot be negative"`` before the channel is looked up.
* ``ast_ari_channels_external_media``: an empty ``direction`` becomes ``"both"`` and the value is
  never checked afterwards; the generated ``res_ari_channels.c`` stubs copy query parameters
  without checking the swagger's ``allowableValues``. Any ``direction`` is accepted.
* ``res/ari/resource_bridges.c`` ``check_add_remove_channel``: adding a channel that records is
  ``409 "Channel <id> currently recording"``.
"""

from __future__ import annotations

from typing import Any

from conftest import RawAri

from voxflow.sandbox import Sandbox


async def _answered(sandbox: Sandbox, ari: RawAri) -> str:
    call = await sandbox.place_call(to="100")
    await ari.next("StasisStart")
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204
    await ari.collect(quiet=0.1)
    return call.id


def _shape(e: dict[str, Any]) -> tuple[str, ...]:
    if e["type"] == "ChannelVarset":
        return ("ChannelVarset", e["variable"], e["value"])
    if e["type"] == "ChannelDialplan":
        return ("ChannelDialplan", e["dialplan_app"])
    if e["type"] == "StasisStart":
        return ("StasisStart", *e["args"])
    return (e["type"],)


async def test_queue_of_an_unknown_queue_returns_at_once_with_unknown(
    sandbox: Sandbox, ari: RawAri
) -> None:
    cid = await _answered(sandbox, ari)
    variables = {"VOXFLOW_APP": "voxflow", "VOXFLOW_QUEUE": "nosuchqueue",
                 "VOXFLOW_QUEUE_OPTIONS": "c", "VOXFLOW_QUEUE_TIMEOUT": "5"}  # fmt: skip
    for name, value in variables.items():
        await ari.req("POST", f"/channels/{cid}/variable", variable=name, value=value)
    await ari.req("POST", "/applications/voxflow/subscription", eventSource=f"channel:{cid}")
    await ari.collect(quiet=0.1)
    await ari.req("POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue")
    got = [_shape(e) for e in await ari.collect(quiet=0.3)]
    after_queue = got[got.index(("ChannelDialplan", "Queue")) + 1 :]
    assert after_queue == [
        ("ChannelVarset", "QUEUESTATUS", "UNKNOWN"),
        ("ChannelDialplan", "Set"),  # Set(VOXFLOW_TRIES=0): the return's retry count
        ("ChannelVarset", "VOXFLOW_TRIES", "0"),
        ("ChannelDialplan", "Stasis"),
        ("ChannelVarset", "STASISSTATUS", ""),
        (
            "StasisStart",
            "queue-return",
            "UNKNOWN",
            "",
            "",
            "",
        ),  # no ANSWEREDTIME, QUEUEPOSITION, QUEUEWAIT
    ]


async def test_a_negative_max_duration_is_refused(sandbox: Sandbox, ari: RawAri) -> None:
    cid = await _answered(sandbox, ari)
    for param in ("maxDurationSeconds", "maxSilenceSeconds"):
        got = await ari.req(
            "POST", f"/channels/{cid}/record", name="neg", format="wav", **{param: -1}
        )
        what = "max_duration_seconds" if param == "maxDurationSeconds" else "max_silence_seconds"
        assert got == (400, {"message": f"{what} cannot be negative"})
    # checked before the channel is looked up
    got = await ari.req(
        "POST", "/channels/nosuch/record", name="neg", format="wav", maxDurationSeconds=-1
    )
    assert got == (400, {"message": "max_duration_seconds cannot be negative"})
    status, _ = await ari.req("GET", "/recordings/live/neg")
    assert status == 404  # nothing was started
    assert [e["type"] for e in await ari.collect(quiet=0.2)] == []


async def test_external_media_takes_any_direction(sandbox: Sandbox, ari: RawAri) -> None:
    for i, direction in enumerate(("both", "in", "sideways", "")):
        status, body = await ari.req(
            "POST", "/channels/externalMedia", app="voxflow", channelId=f"em{i}",
            external_host="127.0.0.1:40000", format="ulaw", direction=direction,
        )  # fmt: skip
        assert (status, body["id"]) == (200, f"em{i}"), direction


async def test_adding_a_recording_channel_to_a_bridge_names_it(
    sandbox: Sandbox, ari: RawAri
) -> None:
    cid = await _answered(sandbox, ari)
    await ari.req("POST", f"/channels/{cid}/record", name="busy", format="wav")
    await ari.req("POST", "/bridges/br", type="mixing")
    got = await ari.req("POST", "/bridges/br/addChannel", channel=cid)
    assert got == (409, {"message": f"Channel {cid} currently recording"})

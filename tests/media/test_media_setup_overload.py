"""Media set-up against a loaded Asterisk that serves each set-up request (the channel or bridge
exists, its events are sent) and answers after the client's deadline
(``faults.slow_media_setup``). A request naming an id voxflow chose goes again with twice the
deadline; Asterisk refuses the id in use, and that counts only once the object read back is ours.
The rig checks on exit that nothing is left: channels, bridges, ports, sockets, pacer streams."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sandbox_rig import open_app_rig

from voxflow.ari.late import ForeignObject
from voxflow.ari.rest import AriRestClient
from voxflow.errors import AriServerError, CallEndedError
from voxflow.media.callmedia import CallMedia
from voxflow.media.transport import PortRange
from voxflow.telephony.session import CallSession
from voxflow.voice.call import PromptResult

LATE = 0.6  # each answer: after the client's 0.4 s, within the 0.8 s of its repeat


class ToneTTS:
    """Every text as 0.3 s of a 440 Hz tone (8 kHz pcm16)."""

    sample_rate = 8000

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        t = np.arange(2400) / 8000.0
        yield (np.sin(2 * np.pi * 440 * t) * 6000).astype("<i2").tobytes()


def _rig(**app: Any) -> Any:
    return open_app_rig(PortRange(), tts=ToneTTS(), request_timeout=0.4, **app)


def _posts(rig: Any, suffix: str) -> list[str]:
    return [p for m, p in rig.sb.rest_api.http_log if m == "POST" and p.endswith(suffix)]


async def test_a_prompt_is_heard_when_every_set_up_answer_comes_late() -> None:
    """externalMedia, the bridge and addChannel are served but answered after the deadline:
    the prompt failed ('AriTimeoutError') and was never heard. Each goes again once; the
    repeats of the two creates are refused (id in use) and read back as ours; the addChannel
    is found done in the bridge."""

    async def body(call: CallSession) -> PromptResult:
        rig.sb.faults.slow_media_setup(LATE)
        return await call.say("Welcome.")

    async with _rig() as rig:
        sim = await rig.call(body)
        result = await rig.result()
        assert isinstance(result, PromptResult) and result.heard_ms > 0
        await sim.wait_for("audio", 10)
        assert len(_posts(rig, "/externalMedia")) == 2  # served late; its repeat: 409, ours
        assert len(_posts(rig, "/bridges")) == 2
        assert len(_posts(rig, "/addChannel")) == 1  # found in the bridge, not sent again
        assert len([c for c in rig.sb.pbx.channels if c.startswith("vf-em-")]) == 1


@pytest.mark.parametrize("late", [1, 2, 3], ids=["externalMedia", "+bridge", "+addChannel"])
async def test_only_some_set_up_answers_late(late: int) -> None:
    """The first ``late`` set-up answers late, the rest (repeats included) in time."""

    async def body(call: CallSession) -> PromptResult:
        rig.sb.faults.slow_media_setup(LATE, times=late)
        return await call.say("Welcome.")

    async with _rig() as rig:
        sim = await rig.call(body)
        result = await rig.result()
        assert isinstance(result, PromptResult) and result.heard_ms > 0
        await sim.wait_for("audio", 10)


async def test_a_listen_only_set_up_answered_late_snoops_once() -> None:
    """On a bridged call the media path snoops the caller: externalMedia, snoop, bridge and
    addChannel answered late. The snoop's repeat is refused (500, the id in use) and read back
    as ours: one snoop, in the media bridge with the externalMedia channel."""
    agent_leg: asyncio.Future[CallSession] = asyncio.get_running_loop().create_future()
    seen: dict[str, Any] = {}

    async def agent(call: CallSession) -> str:
        agent_leg.set_result(call)
        await call.wait_ended(60)
        return "agent gone"

    async def caller(call: CallSession) -> str:
        await call.bridge_with(await agent_leg)
        rig.sb.faults.slow_media_setup(LATE)
        media = await call.call_voice()
        assert isinstance(media, CallMedia)
        await media.start()
        pbx = rig.sb.pbx
        seen["snoops"] = [c for c in pbx.channels if c.startswith("vf-snoop-")]
        members = pbx.bridges[media.bridge_id or ""].members
        seen["members"] = sorted(c.id for c in members)
        seen["ids"] = sorted([media.channel_id or "", media.snoop_id or ""])
        return "media up"

    async with _rig() as rig:
        await rig.call(agent, to="200")
        await rig.call(caller, to="100")
        assert await rig.result() == "media up"
        assert len(_posts(rig, "/snoop")) == 2
        assert len(seen["snoops"]) == 1
        assert seen["members"] == seen["ids"]


async def test_a_bridge_with_our_id_that_is_not_ours_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asterisk already holds a bridge with the media bridge's id, made by someone else: the
    set-up fails with a clear error, the externalMedia channel it made is removed, and the
    other bridge is neither used nor deleted (before, the failed set-up's teardown deleted it)."""
    tag = SimpleNamespace(hex="feedfacecafe" + "0" * 20)
    monkeypatch.setattr("voxflow.media.callmedia.uuid", SimpleNamespace(uuid4=lambda: tag))

    async def body(call: CallSession) -> PromptResult:
        return await call.say("Welcome.")

    async with _rig() as rig:
        sb = rig.sb
        async with AriRestClient(sb.ari_url, sb.user, sb.password) as rest:
            await rest.create_bridge(type="mixing", bridge_id="vf-mb-feedfacecafe", name="other")
            await rig.call(body)
            with pytest.raises(ForeignObject, match="not ours"):
                await rig.result()
            for _ in range(100):  # the teardown's DELETE of the externalMedia channel
                if not any(c.startswith("vf-em-") for c in sb.pbx.channels):
                    break
                await asyncio.sleep(0.05)
            assert not any(c.startswith("vf-em-") for c in sb.pbx.channels)
            assert sb.pbx.bridges["vf-mb-feedfacecafe"].name == "other"
            await rest.destroy_bridge("vf-mb-feedfacecafe")


async def test_a_hang_up_during_a_late_set_up_sends_nothing_again_and_leaves_nothing() -> None:
    """The caller hangs up while the externalMedia and bridge answers are late: nothing is sent
    again once the call's media is closed, and the channel and bridge Asterisk made are
    removed (the rig checks on exit)."""

    async def body(call: CallSession) -> PromptResult:
        rig.sb.faults.slow_media_setup(5.0)
        return await call.say("Welcome.")

    async with _rig() as rig:
        sb = rig.sb
        sim = await rig.call(body)
        for _ in range(100):
            if any(c.startswith("vf-em-") for c in sb.pbx.channels) and sb.pbx.bridges:
                break
            await asyncio.sleep(0.02)
        await sim.hangup()
        with pytest.raises(CallEndedError):
            await rig.result()
        for _ in range(200):
            if not sb.pbx.channels and not sb.pbx.bridges:
                break
            await asyncio.sleep(0.02)
        assert (sb.pbx.channels, sb.pbx.bridges) == ({}, {})
        assert len(_posts(rig, "/externalMedia")) == 1
        assert len(_posts(rig, "/bridges")) == 1


async def test_media_deletes_answered_late_are_heard_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At the caller's hang-up the media DELETEs are served but answered after the deadline:
    each was sent again with the same deadline, its 404 never heard, and after 8 tries the
    teardown warned 'still failing' about channels and bridges that were gone. A DELETE that
    timed out now goes again with twice the deadline and hears the 404."""

    async def body(call: CallSession) -> PromptResult:
        return await call.say("Welcome.")

    async with _rig() as rig:
        sb = rig.sb
        sim = await rig.call(body)
        assert isinstance(await rig.result(), PromptResult)
        sb.faults.slow_requests(0.6, method="DELETE", path="^/(channels/vf-em-|bridges/vf-mb-)")
        await sim.hangup()
        for _ in range(300):
            if not rig.app.sessions:
                break
            await asyncio.sleep(0.05)
        assert not rig.app.sessions
        deletes = [p for m, p in sb.rest_api.http_log if m == "DELETE" and "/vf-" in p]
        # the externalMedia channel and the media bridge: each timed out once, its repeat's 404
        # heard
        assert len(set(deletes)) == 2 and Counter(deletes) == dict.fromkeys(deletes, 2)
    assert "still failing" not in caplog.text


async def test_a_set_up_that_finally_fails_removes_what_asterisk_made() -> None:
    """externalMedia is answered late (its repeat read back as ours) and the bridge is refused
    (500, not a timeout: not sent again): the prompt fails with that error and the
    externalMedia channel Asterisk made is removed (the rig checks nothing is left)."""

    async def body(call: CallSession) -> PromptResult:
        rig.sb.faults.slow_media_setup(LATE, times=1)
        rig.sb.faults.fail_next_requests(1, 500, method="POST", path="^/bridges$")
        return await call.say("Welcome.")

    async with _rig() as rig:
        await rig.call(body)
        with pytest.raises(AriServerError):
            await rig.result()
        assert len(_posts(rig, "/externalMedia")) == 2
        for _ in range(100):
            if not any(c.startswith("vf-em-") for c in rig.sb.pbx.channels):
                break
            await asyncio.sleep(0.05)
        assert not any(c.startswith("vf-em-") for c in rig.sb.pbx.channels)


async def test_a_failed_set_up_sends_its_bridge_no_more_and_removes_it() -> None:
    """externalMedia is refused (500) while the bridge's answer is late: the set-up fails at
    once, the bridge is not sent again (its request in flight is waited for), and the bridge
    Asterisk made is removed (the rig checks nothing is left)."""

    async def body(call: CallSession) -> PromptResult:
        rig.sb.faults.slow_media_setup(LATE)
        path = "^/channels/externalMedia$"
        rig.sb.faults.fail_next_requests(1, 500, method="POST", path=path)
        return await call.say("Welcome.")

    async with _rig() as rig:
        await rig.call(body)
        with pytest.raises(AriServerError):
            await rig.result()
        assert len(_posts(rig, "/bridges")) == 1
        for _ in range(100):
            if not rig.sb.pbx.bridges:
                break
            await asyncio.sleep(0.05)
        assert rig.sb.pbx.bridges == {}

"""A key that barges in on a menu: the next prompt is queued to the pacer in the key's own
dispatch (the ARI event's callback), not a loop pass later, over real ARI and RTP on the sandbox
(docs/media-performance.md, "Key -> next prompt ... session 11")."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _e2e_kit import key_dispatch, serving, until

from voxflow import observe
from voxflow.media.callmedia import create_call_voice
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.config import Settings
from voxflow.runtime.events import End

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

MENU = "For billing, press 3. For sales, press 4. For anything else, stay on the line."
FLOW = f"""\
flow keysay "a key barges in on the menu":
    answers "100"
    voice "en-us"

state start:
    answer
    menu "{MENU}":
        3 -> billing
        on noinput, nomatch, exhausted -> done

state billing:
    say "Billing."
    hangup "billing"

state done:
    hangup "none"
"""


async def test_the_next_prompt_is_queued_in_the_dispatch_of_the_key_that_barged_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keysay.flow").write_text(FLOW)
    in_key = key_dispatch(monkeypatch)
    prompts: list[tuple[str, bool]] = []  # (call id, queued in a key's dispatch)

    def moment(what: str, call_id: str) -> None:
        if what == "prompt":
            prompts.append((call_id, in_key[0]))

    app = {"tts": EspeakTTS(sample_rate=8000), "voice_factory": create_call_voice}
    settings = Settings(grace_period=5, trace_dir=str(tmp_path / "tr"))
    observe.watch_moments(moment)
    try:
        async with serving([tmp_path / "keysay.flow"], app=app, settings=settings) as env:
            cache = env.app.prompt_cache
            assert cache is not None
            await until(lambda: cache.stats.entries >= 2, "the prompts warmed")
            call = await env.call("100")
            await until(lambda: len(call.heard_audio()) > 8000, "the menu heard")
            await call.press("3")
            assert await env.result(call) == End("completed", "billing")
    finally:
        observe.watch_moments(None)
    # the menu's prompt, then the billing prompt, queued while the key was being dispatched
    assert [in_key for cid, in_key in prompts if cid == call.id] == [False, True]
    assert env.said(call) == [MENU, "Billing."]  # the menu interrupted, billing played whole
    assert env.states(call) == ["start", "billing"]
    (trace,) = (tmp_path / "tr").glob("*.jsonl")
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    keys = [r for r in records if r["type"] == "input"]
    assert [(r["kind"], r["digit"]) for r in keys] == [("dtmf", "3")]
    says = [r for r in records if r["type"] == "op" and r["op"] == "say"]
    assert len(says) == 1  # billing's, played to its end (the menu's was stopped by the key)


NO_BARGE_IN = """\
flow keysay_none "a key during a prompt that takes no barge-in":
    answers "100"
    voice "en-us"

state start:
    answer
    say "Please listen to the whole of this message before you choose." bargein none
    menu "For billing, press 3.":
        3 -> billing
        on noinput, nomatch, exhausted -> done

state billing:
    say "Billing."
    hangup "billing"

state done:
    hangup "none"
"""


async def test_a_key_during_a_prompt_without_barge_in_waits_for_its_end(tmp_path: Path) -> None:
    """The prompt is neither interrupted nor stopped: it plays whole, the key waits in the
    type-ahead, and the next prompts start from its end (no 'another prompt is playing')."""
    (tmp_path / "none.flow").write_text(NO_BARGE_IN)
    app = {"tts": EspeakTTS(sample_rate=8000), "voice_factory": create_call_voice}
    async with serving([tmp_path / "none.flow"], app=app) as env:
        cache = env.app.prompt_cache
        assert cache is not None
        await until(lambda: cache.stats.entries >= 3, "the prompts warmed")
        call = await env.call("100")
        await until(lambda: len(call.heard_audio()) > 8000, "the message heard")
        await call.press("3")
        assert await env.result(call) == End("completed", "billing")
    said = env.said(call)
    assert said[0].startswith("Please listen") and said[-1] == "Billing."
    at = {text: t for t, _, text in env.lines[call.id]}
    assert at["Billing."] - at["[pressed 3]"] >= 1.0  # the ~3 s message went on to its end
    assert env.states(call) == ["start", "billing"]


UNCACHED = f"""\
flow keysay_uncached "a key barges in on the menu; the next prompt is not in the cache":
    answers "100"
    voice "en-us"

state start:
    answer
    menu "{MENU}":
        3 -> billing
        on noinput, nomatch, exhausted -> done

state billing:
    say "Billing for line {{{{ call.caller }}}}."
    hangup "billing"

state done:
    hangup "none"
"""


async def test_an_uncached_prompt_s_synthesis_starts_in_the_dispatch_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template's prompt is not warmed: its synthesis (espeak-ng spawned) starts while the
    key that barged in is being dispatched, not in the cache's task a loop pass later."""
    (tmp_path / "uncached.flow").write_text(UNCACHED)
    in_key = key_dispatch(monkeypatch)
    started: list[tuple[str, bool]] = []  # (text, synthesis started in a key's dispatch)

    class Espeak(EspeakTTS):
        async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
            started.append((text, in_key[0]))
            async for pcm in super().synthesize(text, voice=voice):
                yield pcm

    app = {"tts": Espeak(sample_rate=8000), "voice_factory": create_call_voice}
    async with serving([tmp_path / "uncached.flow"], app=app) as env:
        cache = env.app.prompt_cache
        assert cache is not None
        await until(lambda: cache.stats.entries >= 1, "the menu warmed")
        call = await env.call("100", from_="+15550100")
        await until(lambda: len(call.heard_audio()) > 8000, "the menu heard")
        await call.press("3")
        assert await env.result(call) == End("completed", "billing")
    billing = "Billing for line +15550100."
    assert started == [(MENU, False), (billing, True)]  # a loop pass later: (billing, False)
    assert env.said(call) == [MENU, billing]
    assert env.states(call) == ["start", "billing"]

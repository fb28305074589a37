"""flows/ai_receptionist.flow end to end: FlowServer + VoxtraApp on the sandbox PBX, a scripted
caller who speaks (espeak-ng audio over RTP), espeak TTS, and a local OpenAI-compatible server
streaming replies and tool calls (SSE, tool-call deltas). The caller is recognised by pocketsphinx
in the handoff scenario; in the others, whose point is not recognition, by the OpenAI STT client
sending the caller's audio to the local server (which checks it is speech).

Every scenario checks that the call ended, that the sandbox has no channel or bridge left, and
reads the call trace (``--trace``) for the agent step's outcome and per-turn metrics.

Everything crosses real sockets (ARI over HTTP and the websocket, RTP both ways, the model's SSE
stream), but on ``VirtualIoLoop``: the clock jumps when every side waits, so the seconds of
audio, the quiet waits and the model's delays cost no wall time, while the STT's threads and
espeak-ng's processes hold the clock until they finish. Timings in the asserts are virtual ones,
measured by the same code on the same clock as in production (the loop's)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ai_fakes import FakeOpenAI, heard, sse, status, text_chunks, tool_chunks
from shared_stt import shared_stt

from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.ai.openai_stt import OpenAISTT
from voxflow.compiler.frontdoor import load_flow
from voxflow.errors import CallEndedError
from voxflow.ir.models import Flow
from voxflow.media.pacer import shared_pacer
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.trace import read_trace
from voxflow.sandbox import Sandbox
from voxflow.sandbox.caller import SimCall
from voxflow.telephony.app import VoxtraApp
from voxflow.testing.violoop import run_virtual

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

FLOW = Path(__file__).resolve().parents[2] / "flows" / "ai_receptionist.flow"
NUMBER = "+18005550123"
LONG_REPLY = (
    "We offer plumbing, heating and electrical services across the whole region. "
    "Our technicians work every weekday and most weekends. "
    "We also sell maintenance plans that include a yearly visit and priority booking. "
)


@dataclass
class Receptionist:
    sb: Sandbox
    app: VoxtraApp
    server: FlowServer
    trace_dir: Path

    async def call(self) -> SimCall:
        sim = await self.sb.place_call(from_="+15557654321", to=NUMBER, app="voxflow")
        await sim.wait_answered(20)
        return sim

    async def finished(self, sim: SimCall, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the call to end; return its FlowServer result and trace."""
        await sim.wait_hangup(timeout)
        for _ in range(600):  # the driver finishes just after the hang-up
            if sim.id in self.server.results:
                break
            await asyncio.sleep(0.05)
        result = self.server.results[sim.id]
        trace = read_trace(self.trace_dir / f"{sim.id}.jsonl")
        return {"outcome": result.outcome, "reason": result.reason, "trace": trace}


def _compile(text: str, path: str) -> Flow:
    # The registry's default compiler predates compile_flow returning a CompileResult.
    return load_flow(path)


@contextlib.asynccontextmanager
async def receptionist(
    fake: FakeOpenAI,
    tmp_path: Path,
    ports: PortRange,
    *,
    with_llm: bool = True,
    pocketsphinx: bool = False,
) -> AsyncIterator[Receptionist]:
    """The flow served on the sandbox; the caller is understood by pocketsphinx, or by the
    OpenAI STT client talking to the local server (``fake.transcribe``)."""
    llm = OpenAIChatModel(model="test-model", base_url=fake.url, timeout=10)
    stt = shared_stt() if pocketsphinx else OpenAISTT(base_url=fake.url, sample_rate=8000)
    registry = FlowRegistry(compiler=_compile)
    registry.load([FLOW])
    try:
        async with Sandbox(port=0, precise_rtp=False) as sb:
            app = VoxtraApp(
                sb.ari_url,
                sb.user,
                sb.password,
                "voxflow",
                llm=llm if with_llm else None,
                tts=EspeakTTS(sample_rate=8000),
                stt=stt,
                media_options={"rtp_ports": ports},
            )
            settings = Settings(grace_period=5, trace_dir=str(tmp_path / "traces"))
            server = FlowServer(app, registry, settings)
            stop = asyncio.Event()
            serving = asyncio.ensure_future(server.serve(stop))
            try:
                await sb.wait_app("voxflow", 20)
                yield Receptionist(sb, app, server, tmp_path / "traces")
            finally:
                for sim in list(sb.calls.values()):
                    await sim.hangup()
                stop.set()
                await asyncio.wait_for(serving, 60)
            for _ in range(200):
                if not sb.pbx.channels and not app.sessions:
                    break
                await asyncio.sleep(0.05)
            # Nothing hangs and nothing leaks: no channel, bridge, session, port or RTP stream.
            assert sb.pbx.channels == {}
            assert sb.pbx.bridges == {}
            assert not app.sessions
            assert ports.in_use == frozenset()
            assert shared_pacer().streams == 0
    finally:
        await llm.aclose()
        if isinstance(stt, OpenAISTT):
            await stt.aclose()


def _now() -> float:
    return asyncio.get_running_loop().time()


def in_virtual_time(
    scenario: Callable[[FakeOpenAI, Path], Awaitable[None]], tmp_path: Path
) -> None:
    """Run ``scenario`` with a fresh local model server, on a virtual clock."""

    async def main() -> None:
        fake = await FakeOpenAI().start()
        try:
            await scenario(fake, tmp_path)
        finally:
            await fake.close()

    run_virtual(main())


def _segments(sim: SimCall) -> list[dict[str, Any]]:
    return [e for e in sim.experience() if e["type"] == "audio"]


async def prompt_done(sim: SimCall, seen: int, *, quiet: float = 0.9, timeout: float = 40) -> int:
    """Wait until the caller heard audio beyond the first ``seen`` segments and the line has then
    been quiet for ``quiet`` s; returns the number of segments heard so far."""
    deadline = _now() + timeout
    last_change = _now()
    count = len(_segments(sim))
    while _now() < deadline:
        if sim.ended:
            raise CallEndedError("the call ended while waiting for a prompt")
        segs = _segments(sim)
        if len(segs) != count or (segs and segs[-1]["end"] is None):
            last_change = _now()
            count = len(segs)
        elif count > seen and _now() - last_change >= quiet:
            return count
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no complete prompt after {seen} segments")


async def audio_starts(sim: SimCall, seen: int, timeout: float = 40) -> None:
    deadline = _now() + timeout
    while len(_segments(sim)) <= seen:
        if _now() > deadline:
            raise TimeoutError("no new audio")
        await asyncio.sleep(0.02)


async def bridged_to_operator(sim: SimCall, timeout: float = 40) -> dict[str, Any]:
    """Wait until the caller shares a bridge with the operator's channel (not just our media)."""
    deadline = _now() + timeout
    while _now() < deadline:
        for e in sim.experience():
            if e["type"] == "bridge" and any("operator" in p for p in e["partners"]):
                return e
        if sim.ended:
            raise CallEndedError("the call ended before the operator was bridged")
        await asyncio.sleep(0.05)
    raise TimeoutError("the caller was never bridged to the operator")


async def speak(sim: SimCall, text: str) -> None:
    with contextlib.suppress(CallEndedError):
        await sim.say(text)


def _records(trace: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in trace if r["type"] == kind]


def _ended_vars(trace: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(_records(trace, "call.ended")[-1]["variables"])


def test_handoff_to_a_human_bridges_the_call(tmp_path: Path) -> None:
    in_virtual_time(_handoff_to_a_human_bridges_the_call, tmp_path)


async def _handoff_to_a_human_bridges_the_call(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.chat.append(
        sse(tool_chunks([("transfer_to_human", '{"reason": "billing dispute"}')]))
    )
    async with receptionist(fake_openai, tmp_path, PortRange(), pocketsphinx=True) as rx:
        sim = await rx.call()
        seen = await prompt_done(sim, 0)  # the greeting
        await speak(sim, "A person please")
        operator = await rx.sb.next_outbound(40)
        assert operator.to == "operator"
        await operator.wait_answered(20)
        await bridged_to_operator(sim)
        await asyncio.sleep(0.5)
        await operator.hangup()  # the human finished: the flow says goodbye and hangs up
        got = await rx.finished(sim)
    assert seen >= 1
    assert got["outcome"] == "completed"
    trace = got["trace"]
    agent = _records(trace, "agent")
    assert [a["outcome"] for a in agent] == ["tool:transfer_to_human"]
    assert _ended_vars(trace)["handoff_reason"] == "billing dispute"
    turn = _records(trace, "agent.turn")[0]
    assert turn["llm_ttft_ms"] is not None and turn["stt_final_ms"] is not None
    states = [r["state"] for r in _records(trace, "state.entered")]
    assert states[:3] == ["start", "handoff", "operator"] and states[-1] == "goodbye"
    # the model saw the caller's words (pocketsphinx output), not an empty turn
    messages = fake_openai.requests[0].body["messages"]
    assert messages[0]["role"] == "system" and "+15557654321" in messages[0]["content"]
    assert messages[-1]["role"] == "user" and messages[-1]["content"].strip()


def test_slow_model_gets_the_filler(tmp_path: Path) -> None:
    in_virtual_time(_slow_model_gets_the_filler, tmp_path)


async def _slow_model_gets_the_filler(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.chat += [
        sse(text_chunks("We are open from nine to five."), first_delay=2.5),
        sse(tool_chunks([("end_call", "{}")], text="Goodbye.")),
    ]
    fake_openai.transcribe += [heard("When are you open"), heard("Thank you that is all")]
    async with receptionist(fake_openai, tmp_path, PortRange()) as rx:
        sim = await rx.call()
        seen = await prompt_done(sim, 0)
        await speak(sim, "When are you open")
        seen = await prompt_done(sim, seen, quiet=1.2)  # filler, then the answer
        await speak(sim, "Thank you that is all")
        got = await rx.finished(sim)
    trace = got["trace"]
    assert [a["outcome"] for a in _records(trace, "agent")] == ["tool:end_call"]
    turns = _records(trace, "agent.turn")
    assert turns[0]["filler"] is True and turns[0]["voice_to_voice_ms"] >= 2000
    assert turns[1]["filler"] is False
    states = [r["state"] for r in _records(trace, "state.entered")]
    assert states[-1] == "goodbye"
    assert got["reason"] == "normal"
    chats = [r.body["messages"] for r in fake_openai.requests if r.path.endswith("/completions")]
    assert [m[-1]["content"] for m in chats] == ["When are you open", "Thank you that is all"]


@pytest.mark.parametrize(
    "failure",
    [
        status(500, {"error": {"message": "model overloaded"}}),
        sse(['{"choices": [{"index": 0, "delta": {"content": "He'], done=False),
    ],
    ids=["http-500", "malformed-stream"],
)
def test_failing_model_takes_the_error_outcome(tmp_path: Path, failure: Any) -> None:
    async def scenario(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
        fake_openai.chat.append(failure)
        await _model_fails(fake_openai, tmp_path)

    in_virtual_time(scenario, tmp_path)


async def _model_fails(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.transcribe.append(heard("Can you help me"))
    async with receptionist(fake_openai, tmp_path, PortRange()) as rx:
        sim = await rx.call()
        await prompt_done(sim, 0)
        await speak(sim, "Can you help me")
        await bridged_to_operator(sim)  # on error -> handoff -> operator
        await sim.hangup()
        got = await rx.finished(sim)
    trace = got["trace"]
    agent = _records(trace, "agent")
    assert [a["outcome"] for a in agent] == ["error"] and agent[0]["error"]
    states = [r["state"] for r in _records(trace, "state.entered")]
    assert states == ["start", "handoff", "operator"]
    assert got["outcome"] == "caller_hangup"
    chats = [r for r in fake_openai.requests if r.path.endswith("/completions")]
    assert len(chats) == 1  # the failure was not retried behind the flow's back


def test_barge_in_stops_the_reply_and_trims_history(tmp_path: Path) -> None:
    in_virtual_time(_barge_in_stops_the_reply_and_trims_history, tmp_path)


async def _barge_in_stops_the_reply_and_trims_history(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.chat += [
        sse(text_chunks(LONG_REPLY, size=12), delay=0.01),
        sse(tool_chunks([("end_call", "{}")], text="Bye now.")),
    ]
    fake_openai.transcribe += [heard("What services do you offer"), heard("Stop that is all")]
    async with receptionist(fake_openai, tmp_path, PortRange()) as rx:
        sim = await rx.call()
        seen = await prompt_done(sim, 0)
        await speak(sim, "What services do you offer")
        await audio_starts(sim, seen)
        await asyncio.sleep(1.5)
        await speak(sim, "Stop that is all thank you")
        got = await rx.finished(sim)
    # The reply (~15 s of speech) stopped soon after the caller started talking and did not
    # resume while the caller spoke.
    said = next(e for e in sim.experience() if e["type"] == "said" and "Stop" in e["text"])
    segs = _segments(sim)
    playing = [g for g in segs[seen:] if g["start"] <= said["start"]]
    assert playing and playing[-1]["end"] is not None
    assert playing[-1]["end"] < said["start"] + 1.0
    assert not [g for g in segs if said["start"] + 1.0 < g["start"] < said["end"]]
    trace = got["trace"]
    turns = _records(trace, "agent.turn")
    assert turns[0]["interrupted"] is True
    assert [a["outcome"] for a in _records(trace, "agent")] == ["tool:end_call"]
    # The history sent with the next turn holds only what the caller heard of the reply.
    chats = [r for r in fake_openai.requests if r.path.endswith("/completions")]
    messages = chats[1].body["messages"]
    heard_reply = [m["content"] for m in messages if m["role"] == "assistant"][-1]
    assert heard_reply and len(heard_reply) < len(LONG_REPLY) * 0.6
    assert LONG_REPLY.startswith(heard_reply.rstrip(".").rstrip()[:20])
    assert messages[-1] == {"role": "user", "content": "Stop that is all"}


def test_without_an_llm_the_step_takes_its_error_outcome(tmp_path: Path) -> None:
    in_virtual_time(_without_an_llm_the_step_takes_its_error_outcome, tmp_path)


async def _without_an_llm_the_step_takes_its_error_outcome(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async with receptionist(fake_openai, tmp_path, PortRange(), with_llm=False) as rx:
        sim = await rx.call()
        await bridged_to_operator(sim)  # on error -> handoff -> operator, who answers
        await sim.hangup()
        got = await rx.finished(sim)
    assert got["outcome"] == "caller_hangup"
    trace = got["trace"]
    agent = _records(trace, "agent")
    assert [a["outcome"] for a in agent] == ["error"] and "no LLM" in agent[0]["error"]
    states = [r["state"] for r in _records(trace, "state.entered")]
    assert states == ["start", "handoff", "operator"]
    assert not fake_openai.requests

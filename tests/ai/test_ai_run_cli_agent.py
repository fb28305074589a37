"""``voxflow run flows/ai_receptionist.flow`` on the embedded sandbox, as a user runs it: the LLM
and the STT come from VOXFLOW_LLM_*/VOXFLOW_STT_* environment variables (a local
OpenAI-compatible server, which checks it was sent the caller's speech), the caller script
speaks, the agent's tool hands the call over, and ``--trace`` holds per-turn metrics. The API
key is sent to the server but appears in no output and no trace. ``--virtual-time``, as in CI:
the same process, sockets and audio, on a clock that jumps when every side waits
(``voxflow.testing.violoop``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import forked
import pytest
from ai_fakes import FakeOpenAI, heard, sse, tool_chunks

from voxflow.runtime.trace import read_trace

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-7f3a9c1e5b"


async def test_voxflow_run_with_an_llm_from_the_environment(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.chat.append(sse(tool_chunks([("transfer_to_human", '{"reason": "a person"}')])))
    fake_openai.transcribe.append(heard("I want to talk to a person please"))
    script = tmp_path / "caller.txt"
    # the caller waits for what it hears (the greeting reaches the live transcript as spoken,
    # then the handoff's dial), never for a fixed time: a loaded machine only makes it slower
    script.write_text(
        'wait for "How can I help" 60s\n'
        'say "I want to talk to a person please"\n'
        'wait for "dial PJSIP/operator" 60s\n'
        "hangup\n"
    )
    env = {
        **os.environ,
        "VOXFLOW_LLM_BASE_URL": fake_openai.url,
        "VOXFLOW_LLM_MODEL": "test-model",
        "VOXFLOW_LLM_API_KEY": KEY,
        "VOXFLOW_STT_PROVIDER": "openai",
        "VOXFLOW_STT_BASE_URL": fake_openai.url,
        "VOXFLOW_STT_API_KEY": KEY,
    }
    exe = Path(sys.executable).with_name("voxflow")
    proc = await forked.spawn(
        "run", str(ROOT / "flows" / "ai_receptionist.flow"),
        "--caller", str(script), "--trace", str(tmp_path / "traces"), "-v", "--virtual-time",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        prog=str(exe),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 100)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, stderr[-2000:]
    assert "-> handoff" in stdout and "dial PJSIP/operator" in stdout
    # the agent's greeting is in the live transcript before the caller speaks
    assert "FLOW    Hi, thanks for calling Acme. How can I help you today?" in stdout
    assert "did not hear" not in stderr
    assert stdout.count("How can I help you today?") == 1  # live, not again at the end
    greeting = stdout.index("How can I help you today?")
    assert greeting < stdout.index("CALLER") < stdout.index("-> handoff")
    assert "outcome: caller_hangup" in stdout
    # the model was called with the key; the key is nowhere in what the user or the trace sees
    assert [r.path for r in fake_openai.requests] == [
        "/v1/audio/transcriptions",
        "/v1/chat/completions",
    ]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in fake_openai.requests)
    assert "CALLER  I want to talk to a person please" in stdout
    traces = list((tmp_path / "traces").glob("*.jsonl"))
    assert len(traces) == 1
    assert KEY not in stdout + stderr + traces[0].read_text()
    trace = read_trace(traces[0])
    agent = [r for r in trace if r["type"] == "agent"]
    assert [a["outcome"] for a in agent] == ["tool:transfer_to_human"]
    assert agent[0]["args"] == {"reason": "a person"}  # replayable from the trace
    turns = [r for r in trace if r["type"] == "agent.turn"]
    assert len(turns) == 1
    # measured on the virtual clock, which stands still while the local servers answer: >= 0
    assert turns[0]["llm_ttft_ms"] >= 0 and turns[0]["stt_final_ms"] >= 0
    assert turns[0]["voice_to_voice_ms"] is None  # the reply was a tool call, nothing spoken

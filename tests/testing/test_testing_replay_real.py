"""voxflow replay on a real trace: ``voxflow run --trace`` on the sandbox (a subprocess with a
scripted caller), replayed unchanged, then replayed on an edited flow."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import forked
import pytest

from voxflow.runtime.trace import read_trace
from voxflow.testing.replay import replay_trace

ROOT = Path(__file__).resolve().parents[2]
VOXFLOW = [str(Path(sys.executable).with_name("voxflow"))]

# silence through the first menu (no-input at 1.5 s in the copied flow, reprompt), billing,
# balance, then hang up while the billing menu is said again: a no-input, DTMF and a hang-up
# mid-prompt, all timed
CALLER = """\
wait for "For sales" 30s
silence 2500ms
press 3
wait for "To pay your bill" 30s
press 2
wait for "Returning to billing" 30s
wait 1s
hangup
"""


def _copy_flows(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows" / "shared", flows / "shared")
    text = (ROOT / "flows" / "main_ivr.flow").read_text()
    # the no-input wait is real time in a run: 1.5 s proves the same as 5 s
    fast = text.replace("\n    timeout 5s\n", "\n    timeout 1500ms\n")
    assert fast != text
    (flows / "main_ivr.flow").write_text(fast)
    return flows / "main_ivr.flow"


def _run_call(tmp_path: Path, flow: Path, caller: str = CALLER) -> Path:
    script = tmp_path / "caller.txt"
    script.write_text(caller)
    traces = tmp_path / "traces"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in [k for k in env if k.startswith(("VOXFLOW_ARI", "VOXFLOW_TTS", "VOXFLOW_STT"))]:
        del env[key]
    proc = forked.run(
        "run",
        str(flow),
        "--no-audio",
        "--caller",
        str(script),
        "--trace",
        str(traces),
        cwd=tmp_path,
        env=env,
        timeout=100,
        prog=VOXFLOW[0],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(traces.glob("*.jsonl"))
    assert len(files) == 1, proc.stdout
    return files[0]


@pytest.mark.long
def test_replay_of_a_real_sandbox_trace(tmp_path: Path) -> None:
    flow = _copy_flows(tmp_path)
    trace = _run_call(tmp_path, flow)
    records = read_trace(trace)
    states = [r["state"] for r in records if r["type"] == "state.entered"]
    assert states[:4] == ["main_menu", "billing", "balance", "billing"], records
    outcomes = [r["outcome"] for r in records if r["type"] == "outcome"]
    assert outcomes[0] == "noinput", outcomes
    assert records[-1]["type"] == "call.ended" and records[-1]["outcome"] == "caller_hangup"

    same = replay_trace(trace, str(flow))
    assert same.same, same.render()
    assert same.result is not None and same.result.ended is not None
    assert same.result.states == states
    assert same.result.ended[0] == "caller_hangup"

    # the CLI finds the flow by the name in the trace (run from the flows' directory)
    cli = forked.run(
        "replay",
        str(trace),
        cwd=flow.parent,
        timeout=60,
        prog=VOXFLOW[0],
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "same behaviour" in cli.stdout

    # edit the flow: balance now goes to the payment line
    text = flow.read_text()
    edited = text.replace('2, "balance" -> balance', '2, "balance" -> pay')
    assert edited != text
    flow.write_text(edited)
    cli = forked.run(
        "replay",
        str(trace),
        "--flow",
        str(flow),
        timeout=60,
        prog=VOXFLOW[0],
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    out = cli.stdout
    assert "behaviour differs" in out
    assert "state #3: the trace has 'balance', the flow now gives 'pay'" in out
    assert "prompt #6: the trace has 'Your balance is available" in out
    assert "enters state pay" in out  # the replayed call is shown


VOICEMAIL_CALLER = """\
wait for "after the tone" 30s
wait 2s
press "#"
wait for "To keep your message" 30s
press 1
wait for "Goodbye" 30s
wait 1s
"""


def test_replay_of_a_recording_ended_by_its_terminator(tmp_path: Path) -> None:
    """The key that ends a recording is traced as input, so the replay ends it too."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows" / "shared", flows / "shared")
    flow = flows / "voicemail.flow"
    shutil.copy(ROOT / "flows" / "voicemail.flow", flow)
    trace = _run_call(tmp_path, flow, VOICEMAIL_CALLER)
    records = read_trace(trace)
    keys = [r["digit"] for r in records if r["type"] == "input"]
    assert keys == ["#", "1"], records
    report = replay_trace(trace, str(flow))
    assert report.same, report.render()
    assert report.result is not None
    states = report.result.states  # the shipped voicemail subflow's states, then the flow's
    assert states[0] == "start" and "voicemail.review" in states and states[-1] == "saved"
    assert report.result.ended == ("completed", "voicemail saved")


SALES_CALLER = """\
wait for "For sales" 30s
press 1
wait for "Connecting you to sales" 30s
wait 2s
hangup
"""


def test_replay_reports_a_changed_dial_target(tmp_path: Path) -> None:
    """A call sent to another endpoint is another behaviour: the trace records the dial's
    target, and a replay on a flow dialing elsewhere says so (and exits 1)."""
    flow = _copy_flows(tmp_path)
    trace = _run_call(tmp_path, flow, SALES_CALLER)
    records = read_trace(trace)
    routes = [r for r in records if r["type"] == "route"]
    assert [(r["op"], r["target"], r["state"]) for r in routes] == [
        ("dial", "PJSIP/sales", "sales")
    ], records
    assert records[0]["type"] == "call.started" and records[0]["routes"] is True

    same = forked.run("replay", str(trace), "--flow", str(flow), timeout=60, prog=VOXFLOW[0])
    assert same.returncode == 0, same.stdout + same.stderr
    assert "same behaviour" in same.stdout and "routing" in same.stdout

    text = flow.read_text()
    edited = text.replace('dial "PJSIP/sales"', 'dial "PJSIP/nowhere"')
    assert edited != text
    flow.write_text(edited)
    cli = forked.run("replay", str(trace), "--flow", str(flow), timeout=60, prog=VOXFLOW[0])
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "behaviour differs" in cli.stdout
    assert "dial target PJSIP/sales -> PJSIP/nowhere at state sales, routing step 1" in cli.stdout

"""A call's checkpoint: taken from a running call, through JSON, resumed at its state."""

from __future__ import annotations

from dataclasses import replace

from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.checkpoint import (
    Checkpoint,
    checkpoint_of,
    ended_state,
    flow_hash,
    resume_state,
    resume_trip,
)
from voxflow.runtime.step import RunState, initial_state, step

FLOW = """\
flow resume "resumes at its menu":
    answers "100"

var picked: string = "none"

state start:
    answer
    set picked = "early"
    say "Welcome."
    goto menu

state menu:
    say "Main menu."
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    say "You picked {{ picked }}."
    hangup "done"
"""

CALL = ev.CallInfo("ch-1", "+15550100", "100", "inbound")


def _flow() -> Flow:
    flow = compile_flow(FLOW, "resume.flow").flow
    assert flow is not None
    return flow


def _until_menu_waits(flow: Flow, state: RunState) -> tuple[RunState, list[ev.Command]]:
    """Start the call and complete its ops until the menu collects keys."""
    state, cmds = step(flow, state, ev.Start())
    seen = list(cmds)
    while not state.awaits_caller:
        op = next(c for c in cmds if isinstance(c, ev.Op) and not isinstance(c, ev.StartTimer))
        state, cmds = step(flow, state, ev.OpDone(op.cid))
        seen += cmds
    return state, seen


def test_a_resumed_call_re_enters_its_state_with_its_variables() -> None:
    flow = _flow()
    state, first = _until_menu_waits(flow, initial_state(flow, CALL))
    assert state.state_name == "menu"
    cp = checkpoint_of(state, flow_hash(flow))
    assert cp is not None and cp.state == "menu" and cp.variables == {"picked": "early"}
    cp = Checkpoint.from_json(cp.to_json())

    resumed, cmds = _until_menu_waits(flow, resume_state(flow, initial_state(flow, CALL), cp))
    kinds = [(c.kind, c.data.get("state")) for c in cmds if isinstance(c, ev.Notify)]
    assert ("call.resumed", "menu") in kinds and ("state.entered", "start") not in kinds
    assert not any(isinstance(c, ev.Answer) for c in cmds)  # nothing before the state repeats
    said = [c.text for c in cmds if isinstance(c, ev.Say)]
    assert "Main menu." in said and "Welcome." not in said
    assert [c.text for c in first if isinstance(c, ev.Say)][:2] == ["Welcome.", "Main menu."]
    done, out = step(flow, resumed, ev.Dtmf("1"))
    assert done.state_name == "done"
    assert [c.text for c in out if isinstance(c, ev.Say)] == ["You picked early."]


def test_no_checkpoint_before_the_start_or_after_the_end() -> None:
    flow = _flow()
    fresh = initial_state(flow, CALL)
    assert checkpoint_of(fresh, "h") is None
    state, _ = _until_menu_waits(flow, fresh)
    ended, _ = step(flow, state, ev.HangupEvent("caller"))
    assert checkpoint_of(ended, "h") is None


def test_a_checkpoint_of_a_state_the_flow_lacks_is_refused() -> None:
    flow = _flow()
    try:
        resume_state(flow, initial_state(flow, CALL), Checkpoint("h", "gone", {}))
    except ValueError as exc:
        assert "no state 'gone'" in str(exc)
    else:
        raise AssertionError("resume_state accepted a missing state")
    for bad in ("{}", "[1]", '{"flow_hash": "h"}'):
        try:
            Checkpoint.from_json(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} parsed as a checkpoint")


KEYED = """\
flow keyed "repeats its side effects with the same keys":
    answers "100"

state start:
    answer
    http post "http://127.0.0.1:9/first" into r:
        on ok, error, timeout -> menu

state menu:
    http post "http://127.0.0.1:9/a" into r:
        on ok, error, timeout:
            continue
    http post "http://127.0.0.1:9/b" into r:
        on ok, error, timeout:
            continue
    menu "Press 1." timeout 60s:
        1 -> menu
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


def _keys(cmds: list[ev.Command]) -> list[str]:
    """The idempotency keys of the HTTP steps and the state.entered webhooks, in order."""
    out = []
    for c in cmds:
        if isinstance(c, ev.Http):
            out.append(f"http {c.url} {c.key}")
        elif isinstance(c, ev.Notify) and c.kind == "state.entered":
            out.append(f"entered {c.data['state']} {c.key}")
    return out


def test_a_resumed_state_repeats_its_http_steps_and_webhook_with_the_same_keys() -> None:
    flow = compile_flow(KEYED, "keyed.flow").flow
    assert flow is not None
    state, first = _until_menu_waits(flow, initial_state(flow, CALL))
    assert _keys(first) == [
        "entered start ch-1:1:state.entered",
        "http http://127.0.0.1:9/first ch-1:1:1",
        "entered menu ch-1:2:state.entered",
        "http http://127.0.0.1:9/a ch-1:2:1",
        "http http://127.0.0.1:9/b ch-1:2:2",
    ]
    cp = checkpoint_of(state, flow_hash(flow))
    assert cp is not None and cp.entry == 2
    cp = Checkpoint.from_json(cp.to_json())
    resumed, again = _until_menu_waits(flow, resume_state(flow, initial_state(flow, CALL), cp))
    assert _keys(again) == _keys(first)[2:]  # the same keys: receivers drop the repeats
    # the next entry of the same state is a new one: new keys
    _, after = step(flow, resumed, ev.Dtmf("1"))
    assert _keys(after)[:2] == [
        "entered menu ch-1:3:state.entered",
        "http http://127.0.0.1:9/a ch-1:3:1",
    ]


def test_an_agent_conversation_goes_through_the_checkpoint_bounded() -> None:
    from voxflow.agent.agent import Agent
    from voxflow.agent.call_agent import CallAgent
    from voxflow.ai.openai_llm import OpenAIChatModel
    from voxflow.runtime.agent_memory import MAX_CHARS, MAX_MESSAGES, RESUMED, conversation, restore
    from voxflow.voice.providers import ChatMessage, ToolCall

    llm = OpenAIChatModel(model="m", base_url="http://127.0.0.1:9/v1")  # never asked
    first = Agent(llm, system_prompt="You are Acme's receptionist.")
    first.history += [
        ChatMessage("assistant", "Hi, how can I help?"),
        ChatMessage("user", "My boiler leaks."),
        ChatMessage("assistant", "", tool_calls=(ToolCall("t1", "lookup", "{}"),)),
        ChatMessage("tool", '{"ok": true}', tool_call_id="t1"),
        ChatMessage("assistant", "A plumber can come tomorrow. " + "x" * 3000),
    ]
    said = conversation(first)
    assert [r for r, _ in said] == ["assistant", "user", "assistant"]  # tools and system: not
    assert len(said[-1][1]) == MAX_CHARS
    flow = _flow()
    state, _ = _until_menu_waits(flow, initial_state(flow, CALL))
    cp = checkpoint_of(state, flow_hash(flow), said)
    assert cp is not None
    back = Checkpoint.from_json(cp.to_json())
    assert back.agent == said
    second = CallAgent(object(), llm, system_prompt="You are Acme's receptionist.")
    assert restore(second, back.agent)
    assert [(m.role, m.content) for m in second.history[1:]] == list(said)
    assert second.steps == {RESUMED: True}  # its next agent step continues, no greeting
    many = Agent(llm)
    many.history += [ChatMessage("user", f"line {i}") for i in range(100)]
    assert len(conversation(many)) == MAX_MESSAGES and conversation(many)[-1][1] == "line 99"
    assert conversation(object()) == () and not restore(object(), said)


SUBFLOW = """\
flow nested "resumes inside its subflow":
    answers "100"

var ok: bool = false
var amount: number = 12

subflow confirm(question: string) -> (confirmed: bool):
    var tries: number = 0
    state ask:
        say "Sub asks."
        set tries = tries + 1
        goto wait
    state wait:
        say "Sub waits."
        menu "{{ question }}" timeout 60s:
            1 -> yes
            2 -> no
            on noinput, nomatch -> no
    state yes:
        return confirmed = true
    state no:
        return confirmed = false

state start:
    answer
    say "Welcome."
    if amount > 10:
        call confirm(question = "Pay {{ amount }}?") returns (confirmed as ok):
            on returned:
                if ok:
                    goto paid
                goto start
            on error -> paid
    hangup "unreachable"

state paid:
    say "Paid {{ ok }}."
    hangup "done"
"""


def test_a_call_inside_a_subflow_resumes_there_and_returns_to_its_caller() -> None:
    flow = compile_flow(SUBFLOW, "nested.flow").flow
    assert flow is not None
    state, first = _until_menu_waits(flow, initial_state(flow, CALL))
    assert [f.subflow for f in state.frames] == [None, "confirm"]
    assert state.state_name == "wait"
    cp = checkpoint_of(state, flow_hash(flow), flow=flow)
    assert cp is not None and cp.state == "start" and len(cp.calls) == 1
    assert cp.calls[0]["state"] == "wait" and cp.calls[0]["variables"]["tries"] == 1
    cp = Checkpoint.from_json(cp.to_json())
    resumed, again = _until_menu_waits(flow, resume_state(flow, initial_state(flow, CALL), cp))
    said = [c.text for c in again if isinstance(c, ev.Say)]
    assert said == ["Sub waits.", "Pay 12?"]  # the subflow's state again, nothing before it
    keys = _keys(first)
    assert _keys(again) == [k for k in keys if "wait" in k]  # the same entry: the same key
    done, out = step(flow, resumed, ev.Dtmf("1"))
    assert done.state_name == "paid" and [f.subflow for f in done.frames] == [None]
    assert [c.text for c in out if isinstance(c, ev.Say)] == ["Paid True."]
    assert done.variables()["ok"] is True  # returned into the caller's variable
    # a stack that is not this version's: the main-flow state rule (the subflow starts again)
    bad = Checkpoint.from_json(cp.to_json().replace('"block":["states"', '"block":["gone"'))
    back, cmds = _until_menu_waits(flow, resume_state(flow, initial_state(flow, CALL), bad))
    assert [f.subflow for f in back.frames] == [None, "confirm"]
    assert [c.text for c in cmds if isinstance(c, ev.Say)][:2] == ["Welcome.", "Sub asks."]
    # without the flow the checkpoint keeps the main-flow state only
    only_main = checkpoint_of(state, flow_hash(flow))
    assert only_main is not None and only_main.calls == ()


def test_an_ended_state_runs_the_checkpointed_states_on_hangup_with_keys_of_its_own() -> None:
    flow = compile_flow(
        KEYED.replace(
            "state start:",
            'on hangup:\n    http post "http://127.0.0.1:9/bye" into r\n\nstate start:',
        ),
        "keyed.flow",
    ).flow
    assert flow is not None
    state, _ = _until_menu_waits(flow, initial_state(flow, CALL))
    cp = checkpoint_of(state, flow_hash(flow))
    assert cp is not None and cp.call == ("+15550100", "100", "inbound")
    cp = Checkpoint.from_json(cp.to_json())
    bare = initial_state(flow, ev.CallInfo("ch-1"))  # a call known by its id only
    ended = ended_state(flow, bare, cp)
    assert (ended.call.caller, ended.call.called) == ("+15550100", "100")
    gone, cmds = step(flow, ended, ev.HangupEvent("caller"))
    assert not any(isinstance(c, ev.Notify) and c.kind == "state.entered" for c in cmds)
    assert _keys(cmds) == ["http http://127.0.0.1:9/bye ch-1:2:hangup.1"]  # not ch-1:2:1 (/a's)
    assert gone.status == "hangup_handler" and gone.end == ("caller_hangup", "caller")
    # the worker that saw the hang-up itself gives its on hangup body the same key
    _, live = step(flow, state, ev.HangupEvent("caller"))
    assert _keys(live) == _keys(cmds)


def test_an_ended_state_given_its_workers_end_ends_with_it_not_caller_hangup() -> None:
    """The outcome a dead worker recorded with its end claim (a transfer here) is the end's,
    its on hangup body runs as it would have; without one the end is the caller's hang-up."""
    flow = compile_flow(
        KEYED.replace(
            "state start:",
            'on hangup:\n    http post "http://127.0.0.1:9/bye" into r\n\nstate start:',
        ),
        "keyed.flow",
    ).flow
    assert flow is not None
    state, _ = _until_menu_waits(flow, initial_state(flow, CALL))
    cp = checkpoint_of(state, flow_hash(flow))
    assert cp is not None
    bare = initial_state(flow, ev.CallInfo("ch-1"))
    ended = ended_state(flow, bare, cp, ("transferred", "SIP/2000"))
    gone, cmds = step(flow, ended, ev.HangupEvent("caller"))
    assert gone.status == "hangup_handler" and gone.end == ("transferred", "SIP/2000")
    assert _keys(cmds) == ["http http://127.0.0.1:9/bye ch-1:2:hangup.1"]
    http = next(c for c in cmds if isinstance(c, ev.Http))
    done, out = step(flow, gone, ev.OpDone(http.cid, {"outcome": "ok", "status": 200}))
    assert done.status == "ended" and ev.End("transferred", "SIP/2000") in out
    # a call with no checkpoint (no frames): the recorded end, at once
    unstarted = replace(initial_state(flow, ev.CallInfo("ch-2")), end=("completed", "done"))
    _, out = step(flow, unstarted, ev.HangupEvent("caller"))
    assert [c for c in out if isinstance(c, ev.End)] == [ev.End("completed", "done")]


QUEUED_INSIDE = """\
flow queued_inside "a queue inside a subflow":
    answers "100"

var reached: bool = false

subflow wait_in(line: string) -> (answered: bool):
    var note: string = "none"
    state enter:
        set note = "inside"
        goto waiting
    state waiting:
        queue "{{ line }}" timeout 60s:
            on answered:
                return answered = note == "inside"
            on timeout, failed:
                return answered = false

state start:
    answer
    call wait_in(line = "support") returns (answered as reached):
        on returned:
            if reached:
                hangup "answered"
            hangup "not answered"
"""


def test_a_trip_inside_a_subflow_goes_on_in_its_frame_then_returns_to_its_caller() -> None:
    flow = compile_flow(QUEUED_INSIDE, "queued_inside.flow").flow
    assert flow is not None
    state, cmds = step(flow, initial_state(flow, CALL), ev.Start())
    while state.wait is None or getattr(state.wait.step, "op", None) != "queue":
        op = next(c for c in cmds if isinstance(c, ev.Op) and not isinstance(c, ev.StartTimer))
        state, cmds = step(flow, state, ev.OpDone(op.cid))
    cp = checkpoint_of(state, flow_hash(flow), flow=flow)
    assert cp is not None and cp.trip is not None and cp.trip["depth"] == 2
    cp = Checkpoint.from_json(cp.to_json())
    back = resume_trip(flow, initial_state(flow, CALL), cp, ["queue-return", "CONTINUE"], 0.0)
    assert back is not None
    resumed, event = back
    assert [f.subflow for f in resumed.frames] == [None, "wait_in"]
    done, out = step(flow, resumed, event)
    assert [c.reason for c in out if isinstance(c, ev.Hangup)] == ["answered"]  # note came back
    assert done.variables()["reached"] is True
    # subflow frames this version cannot read: no trip to go on with (the call re-enters)
    gone = Checkpoint.from_json(cp.to_json().replace('"subflow":"wait_in"', '"subflow":"gone"'))
    args = ["queue-return", "CONTINUE"]
    assert resume_trip(flow, initial_state(flow, CALL), gone, args, 0.0) is None


QUEUED_WITH_KEYS = """flow keyed:
    timeout 5s

var q: map = {}

state start:
    answer
    queue "support" timeout 4m into q:
        1 -> message
        on answered, timeout, failed:
            hangup "queue"

state message:
    hangup "message"
"""


def test_a_call_back_from_the_exit_context_goes_on_with_its_key() -> None:
    """A worker that takes over the call from the queue's exit context: its key's handler
    runs, ``into`` gets QUEUEPOSITION; a digit the step does not list: see below."""
    flow = compile_flow(QUEUED_WITH_KEYS, "keyed.flow").flow
    assert flow is not None
    state, cmds = step(flow, initial_state(flow, CALL), ev.Start())
    op = next(c for c in cmds if isinstance(c, ev.Op))
    state, cmds = step(flow, state, ev.OpDone(op.cid))
    cp = checkpoint_of(state, flow_hash(flow), flow=flow)
    assert cp is not None and cp.trip is not None
    for args, reason, q in (
        (["queue-return", "EXITWITHKEY", "", "2", "", "1"], "message",
         {"status": "EXITWITHKEY", "position": 2, "wait": None, "key": "1"}),
        (["queue-return", "TIMEOUT", "0", "1", "240"], "queue",
         {"status": "TIMEOUT", "position": 1, "wait": 240, "key": None}),
    ):  # fmt: skip
        back = resume_trip(flow, initial_state(flow, CALL), cp, args, 0.0)
        assert back is not None
        done, out = step(flow, *back)
        assert [c.reason for c in out if isinstance(c, ev.Hangup)] == [reason], args
        assert done.variables()["q"] == q


def test_a_key_the_step_does_not_list_queues_the_caller_again_on_the_worker_taking_over() -> None:
    """As the worker that queued the call would: the ``Queue`` op again, at the caller's
    QUEUEPOSITION, for what is left of the step's timeout (the trip's ``until``); ``timeout``
    with less than a second left; a trip written without ``until`` or the queue's name (older
    versions): the step's whole timeout, ``failed``."""
    flow = compile_flow(QUEUED_WITH_KEYS, "keyed.flow").flow
    assert flow is not None
    state, cmds = step(flow, initial_state(flow, CALL), ev.Start(now=1000.0))
    op = next(c for c in cmds if isinstance(c, ev.Op))
    state, cmds = step(flow, state, ev.OpDone(op.cid, now=1001.0))
    [queued] = [c for c in cmds if isinstance(c, ev.Queue)]
    cp = checkpoint_of(state, flow_hash(flow), flow=flow)
    assert cp is not None and cp.trip is not None
    assert (cp.trip["endpoint"], cp.trip["until"]) == ("support", 1241.0)
    cp = Checkpoint.from_json(cp.to_json())
    args = ["queue-return", "EXITWITHKEY", "", "2", "", "4"]
    back = resume_trip(flow, initial_state(flow, CALL), cp, args, 1101.0)
    assert back is not None
    resumed, again = back
    assert again == replace(queued, cid=resumed.seq, timeout_ms=140000, position=2)
    assert resumed.wait is not None and resumed.wait.cids == {again.cid}
    again_cp = checkpoint_of(resumed, flow_hash(flow), flow=flow)  # taken over again later
    assert again_cp is not None and again_cp.trip == cp.trip
    _, out = step(flow, resumed, ev.OpDone(again.cid, {"outcome": "choice:1"}, now=1102.0))
    assert [c.reason for c in out if isinstance(c, ev.Hangup)] == ["message"]
    late = resume_trip(flow, initial_state(flow, CALL), cp, args, 1240.5)
    assert late is not None and late[1] == ev.OpDone(
        late[0].seq, {"outcome": "timeout", "status": "", "key": "4"}, now=1240.5
    )
    old = {k: v for k, v in cp.trip.items() if k != "until"}
    unbounded = resume_trip(flow, initial_state(flow, CALL), replace(cp, trip=old), args, 1101.0)
    assert unbounded is not None and isinstance(unbounded[1], ev.Queue)
    assert unbounded[1].timeout_ms == 240000
    unnamed = replace(cp, trip={**old, "endpoint": ""})
    failed = resume_trip(flow, initial_state(flow, CALL), unnamed, args, 1101.0)
    assert failed is not None and isinstance(failed[1], ev.OpDone)
    assert failed[1].result["outcome"] == "failed"


QUEUED_DYNAMIC = """flow dynamic:
    timeout 5s

var level: number = 5
var wait: duration = 4m

state start:
    answer
    queue "support" timeout wait priority level:
        1 -> message
        on answered, timeout, failed:
            hangup "queue"

state message:
    hangup "message"
"""


def test_a_queue_step_with_options_computed_at_run_time_records_its_trip() -> None:
    """``priority level`` / ``timeout wait`` make the step a copy resolved when it starts (not
    in the IR): the trip names the IR step and keeps the values it ran with (before, no trip
    was written and a worker taking the call over could not go on at the step)."""
    flow = compile_flow(QUEUED_DYNAMIC, "dynamic.flow").flow
    assert flow is not None
    state, cmds = step(flow, initial_state(flow, CALL), ev.Start(now=1000.0))
    op = next(c for c in cmds if isinstance(c, ev.Op))
    state, cmds = step(flow, state, ev.OpDone(op.cid, now=1001.0))
    [queued] = [c for c in cmds if isinstance(c, ev.Queue)]
    assert (queued.priority, queued.timeout_ms) == (5, 240000)
    cp = checkpoint_of(state, flow_hash(flow), flow=flow)
    assert cp is not None and cp.trip is not None
    assert (cp.trip["until"], cp.trip["priority"]) == (1241.0, 5)
    cp = Checkpoint.from_json(cp.to_json())
    done = resume_trip(flow, initial_state(flow, CALL), cp, ["queue-return", "TIMEOUT"], 1241.0)
    assert done is not None
    _, out = step(flow, *done)
    assert [c.reason for c in out if isinstance(c, ev.Hangup)] == ["queue"]
    args = ["queue-return", "EXITWITHKEY", "", "3", "", "4"]
    back = resume_trip(flow, initial_state(flow, CALL), cp, args, 1101.0)
    assert back is not None
    assert back[1] == replace(queued, cid=back[0].seq, timeout_ms=140000, position=3)

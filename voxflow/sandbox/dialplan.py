"""The shipped ``[voxflow-transfer]`` and ``[voxflow-queue]`` contexts, as the sandbox runs them.

They mirror ``docs/asterisk/extensions.conf`` and the event sequences of real Asterisk 22 in
``captures/continue-outcomes.json`` and ``captures/queue-return.json``:

* ``[voxflow-transfer]``: a number (``_X.``, ``_+X.``) is dialled as ``PJSIP/<n>@trunk``,
  extension ``endpoint`` dials ``${VOXFLOW_TRANSFER_TARGET}``; anything else hits the ``i``
  extension (``INVALID_EXTEN`` set, ``NoOp``, then ``Stasis(app,transfer-return,INVALID,exten)``).
  A ``Dial()`` that is not answered returns with ``transfer-return,<DIALSTATUS>``; an answered
  one keeps the caller (the far end hears "transferred") until someone hangs up.
* ``[voxflow-queue]`` (extension ``queue``): ``Queue(${VOXFLOW_QUEUE},${VOXFLOW_QUEUE_OPTIONS},,,
  ${VOXFLOW_QUEUE_TIMEOUT},,,,${VOXFLOW_QUEUE_POSITION})`` with scripted agents
  (:class:`QueueAgent`); the caller joins ahead of the callers of a lower ``QUEUE_PRIO`` and
  the position argument inserts it at that place among its priority (1 = next in line; past
  the last caller, or empty: at the back), as app_queue.c's ``join_queue``; then
  ``Stasis(app,queue-return,${QUEUESTATUS},${ANSWEREDTIME},${QUEUEPOSITION},${QUEUEWAIT})``. The
  variables Queue() sets come in the captured order; ``DIALSTATUS`` is never set by it.
  ``JOINEMPTY`` (checked first), ``FULL`` and ``LEAVEEMPTY`` return at once (app_queue.c's
  ``join_queue``, ``wait_our_turn``'s first pass); a timeout argument is whole seconds
  (``atoi``: "0" or no number times out at once), the position argument too (below 0: none);
  these were not captured (source: docs/sandbox.md "Queue() as app_queue.c has it"). An
  unknown queue returns at once with ``QUEUESTATUS=UNKNOWN`` and no other variable
  (app_queue.c: ``join_queue`` fails, ``reason`` stays ``QUEUE_UNKNOWN``).
* ``[voxflow-queue-exit]`` (``_X``), the queues.conf ``context`` of a queue whose callers may
  leave with a key (shipped: ``support``): a digit 0-9 the waiting caller presses (not once an
  agent has the call) ends ``Queue()`` there, as app_queue's ``valid_exit``: ``QUEUEPOSITION``
  set, ``QUEUESTATUS`` and ``QUEUEWAIT`` not; then ``Stasis(app,queue-return,EXITWITHKEY,,
  ${QUEUEPOSITION},${QUEUEWAIT},${EXTEN})``. Not captured: app_queue.c's behaviour.
* Every return: ``Set(VOXFLOW_TRIES=0)``, ``n(back),Stasis(...)``; a ``Stasis()`` that fails (no
  app registered: ``STASISSTATUS=FAILED`` and the next priority, captures
  outbound-websocket.json no-server-listening) tries again after ``Wait(0.5)``, 10 times, then
  ``n(done),Hangup()``.

* ``[voxflow-in]`` (``_X.``, ``_+X.``) for a scripted caller: ``NoOp``, ``Stasis(voxflow)`` at
  priority 2 (as in the captures) and, while it fails, ``Wait(0.5)`` and ``n(again)``'s
  ``Stasis()`` at 6, 10 times, then ``n(done),Hangup()`` at 9. A ``continue`` into it runs the
  captures' tiny program (:func:`captured_program`).

How a far end reacts is the PBX's ``outbound_behaviour`` (answer, busy, noanswer, congestion),
looked up by endpoint resource or number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model import Channel

if TYPE_CHECKING:
    from .pbx import Pbx

__all__ = [
    "QueueAgent",
    "SandboxQueue",
    "ShippedContexts",
    "captured_program",
    "label_priority",
    "shipped_inbound",
]

TRANSFER_CONTEXT = "voxflow-transfer"
QUEUE_CONTEXT = "voxflow-queue"
QUEUE_EXIT_CONTEXT = "voxflow-queue-exit"
INBOUND_CONTEXT = "voxflow-in"
INBOUND_FIRST, INBOUND_RETRY, INBOUND_DONE = 2, 6, 9  # [voxflow-in]: Stasis(), again, Hangup()
_NUMBER = re.compile(r"^\+?[0-9]{2,}$")
_DIAL_STATUS = {"busy": ("BUSY", 1.0), "congestion": ("CONGESTION", 0.5)}


_INBOUND_PATTERN = re.compile(r"^\+?[0-9].+$")  # _X. and _+X.
_ARGS_PATTERN = re.compile(r"^[0-9].+$")  # _X.
Program = list[tuple[str, str]]
"""One extension's priorities from 1: (application, data)."""


def shipped_inbound(exten: str) -> bool:
    """``exten`` is one of the shipped ``[voxflow-in]``'s (``_X.``, ``_+X.``): its Stasis()
    is retried while it fails (any other, e.g. the captures' ``s``: Stasis(), Hangup())."""
    return _INBOUND_PATTERN.match(exten) is not None


def captured_program(context: str, exten: str) -> Program | None:
    """The priorities ``exten`` runs in the captures' contexts (observed-behaviour.md):
    ``voxflow-in`` (``100``, ``_X.``, and the shipped ``_+X.``: NoOp, Stasis(voxflow), Hangup)
    and ``voxflow-args`` (Stasis(voxflow,${EXTEN},inbound), Hangup); ``[]`` when no extension
    of the context matches (no ``i`` there); None for any other context."""
    if context == "voxflow-in":
        if exten != "100" and not _INBOUND_PATTERN.match(exten):
            return []
        return [("NoOp", f"voxflow inbound call to {exten}"), ("Stasis", "voxflow"), ("Hangup", "")]
    if context == "voxflow-args":
        if not _ARGS_PATTERN.match(exten):
            return []
        return [("Stasis", f"voxflow,{exten},inbound"), ("Hangup", "")]
    return None


_DONE = {(TRANSFER_CONTEXT, "i"): 8, (QUEUE_CONTEXT, "queue"): 9}
"""Where each shipped extension's ``n(done),Hangup()`` is (any other transfer extension: 10,
a ``[voxflow-queue-exit]`` digit: 7);
its ``n(back),Stasis(...)`` is 4 priorities before."""


def label_priority(context: str, exten: str, label: str) -> int | None:
    """The priority of ``label`` in ``context``/``exten`` (a shipped extension's ``done``: its
    Hangup() after a Dial() that answered or the return into the app; ``back``: that
    ``Stasis()``), None if there is no such label."""
    done = _DONE.get((context, exten), 10 if context == TRANSFER_CONTEXT else None)
    if context == QUEUE_EXIT_CONTEXT and len(exten) == 1 and exten.isdigit():
        done = 7  # _X: Set, n(back),Stasis, GotoIf, Set, Wait, Goto, n(done),Hangup
    if done is None or label not in ("done", "back"):
        return None
    return done if label == "done" else done - 4


@dataclass
class QueueAgent:
    """A scripted queue member: answers ``answer_after`` s after the caller joined (never when
    ``None``), talks for ``talk`` s, then hangs up."""

    name: str = "agent1"
    answer_after: float | None = 2.0
    talk: float = 3.0


@dataclass
class SandboxQueue:
    """One queue of queues.conf: members, ``maxlen`` (0 = unlimited), join/leave when empty,
    ``context`` (where a digit the waiting caller presses leaves to; "" = none)."""

    name: str
    agents: list[QueueAgent] = field(default_factory=list)
    maxlen: int = 0
    joinempty: bool = True
    leavewhenempty: bool = False
    context: str = ""
    waiting: list[str] = field(default_factory=list)
    prio: dict[str, int] = field(default_factory=dict)
    """A waiting caller's ``QUEUE_PRIO`` when it joined."""

    def position(self, channel_id: str) -> str:
        """``QUEUEPOSITION`` of a waiting caller (1 = next in line)."""
        return str(self.waiting.index(channel_id) + 1) if channel_id in self.waiting else "1"

    def join(self, channel_id: str, prio: int, position: int) -> None:
        """Place a caller as app_queue.c's ``join_queue``: before the first caller of a lower
        priority, or before the caller at ``position`` (1 = next in line; 0: none asked) if
        that one's priority is not higher (a caller of a higher priority keeps its place ahead:
        "forced into position ... due to higher priority callers"); else at the back."""
        self.prio = {c: p for c, p in self.prio.items() if c in self.waiting}
        at = len(self.waiting)
        for ahead, cur in enumerate(self.waiting):
            theirs = self.prio.get(cur, 0)
            if prio > theirs or (prio >= theirs and 0 < position <= ahead + 1):
                at = ahead
                break
        self.waiting.insert(at, channel_id)
        self.prio[channel_id] = prio


_PRIO = re.compile(r"\s*([+-]?\d+)")


def _atoi(value: str) -> int:
    """C's ``atoi`` (and ``sscanf("%30d")``, but for its failure): leading blanks, a sign,
    digits; what follows is ignored; no number: 0."""
    m = _PRIO.match(value)
    return int(m.group(1)) if m else 0


def _queue_prio(value: str) -> int:
    """``QUEUE_PRIO`` as app_queue.c's ``queue_exec`` reads it (``sscanf("%30d")``); unset or
    not a number: 0."""
    return _atoi(value)


def _queue_expire(value: str) -> float | None:
    """Seconds until Queue() times out, as ``queue_exec`` sets ``qe.expire = qe.start +
    atoi(args.queuetimeoutstr)`` for a non-empty argument (so "0", "-3" or "soon" time out at
    once, "2.5" after 2 s); None (never) for an empty one."""
    return None if not value else float(max(0, _atoi(value)))


class ShippedContexts:
    """Runs the shipped contexts on a channel that left Stasis with ``continue``."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.ring_timeout = 60.0  # Dial(...,60) in [voxflow-transfer]
        self.back_wait = 0.5  # Wait(0.5) between the tries of a return into the app
        self.back_tries = 10  # ${VOXFLOW_TRIES} >= 10: the last try
        # queues.conf as shipped: no members (agents log in with AddQueueMember)
        self.queues: dict[str, SandboxQueue] = {
            "support": SandboxQueue("support", context=QUEUE_EXIT_CONTEXT),
            "sales": SandboxQueue("sales"),
        }
        self._joined: dict[str, float] = {}  # channel id -> when it joined its queue

    def run(self, ch: Channel, context: str, exten: str) -> bool:
        """Run ``context``/``exten`` on ``ch`` if it is a shipped context; False otherwise."""
        if context == TRANSFER_CONTEXT:
            self._transfer(ch, exten)
            return True
        if context == QUEUE_CONTEXT and exten == "queue":
            self._queue(ch)
            return True
        return False

    # --- helpers -----------------------------------------------------------------------------

    def _app_step(self, ch: Channel, exten: str, priority: int, app: str, data: str) -> None:
        ch.exten, ch.priority, ch.app_name, ch.app_data = exten, priority, app, data
        self.pbx.emit(
            "ChannelDialplan",
            {"dialplan_app": app, "dialplan_app_data": data, "channel": ch.json()},
            channels=[ch],
        )

    def _back(self, ch: Channel, exten: str, priority: int, args: list[str]) -> None:
        """``Set(VOXFLOW_TRIES=0)`` at ``priority``, then ``n(back),Stasis(${VOXFLOW_APP},
        args...)``: back into the app, retried while Stasis() fails."""
        self._app_step(ch, exten, priority, "Set", "VOXFLOW_TRIES=0")
        self.pbx.set_var(ch, "VOXFLOW_TRIES", "0")
        self._try_back(ch, exten, priority + 1, args)

    def _try_back(self, ch: Channel, exten: str, back: int, args: list[str]) -> None:
        if ch.hungup:
            return
        app = ch.variables.get("VOXFLOW_APP", "voxflow")
        self._app_step(ch, exten, back, "Stasis", ",".join([app, *args]))
        self.pbx.set_var(ch, "STASISSTATUS", "")
        ch.stasis_failed = lambda status: self._back_failed(ch, exten, back, args, status)
        if self.pbx.enter_stasis(ch, app, args):
            return  # in the app (or a per-call websocket is being connected for it)
        ch.stasis_failed = None
        self._back_failed(ch, exten, back, args, "FAILED")

    def _back_failed(
        self, ch: Channel, exten: str, back: int, args: list[str], status: str
    ) -> None:
        """Stasis() returned ``status`` (FAILED: no such app): the shipped retry loop."""
        self.pbx.set_var(ch, "STASISSTATUS", status)
        tries = int(ch.variables.get("VOXFLOW_TRIES") or 0)
        self._app_step(
            ch, exten, back + 1, "GotoIf",
            f'$["{status}" != "FAILED" | {tries} >= {self.back_tries}]?done',
        )  # fmt: skip
        if status != "FAILED" or tries >= self.back_tries:
            self._app_step(ch, exten, back + 5, "Hangup", "")
            self.pbx.hangup(ch, 16, request={"cause": 16, "soft": True})
            return
        self._app_step(ch, exten, back + 2, "Set", f"VOXFLOW_TRIES=$[{tries} + 1]")
        self.pbx.set_var(ch, "VOXFLOW_TRIES", str(tries + 1))
        self._app_step(ch, exten, back + 3, "Wait", "0.5")

        def again() -> None:
            self._app_step(ch, exten, back + 4, "Goto", "back")
            self._try_back(ch, exten, back, args)

        self.pbx.schedule(ch, self.back_wait, again)

    # --- [voxflow-in] ---------------------------------------------------------------------

    def stasis_in(self, ch: Channel, app: str, args: list[str], priority: int) -> None:
        """The shipped ``[voxflow-in]``'s ``Stasis(voxflow)`` at ``priority`` (2: the first
        try, as in the captures; 6: a retry): into the app, or its retry loop."""
        if ch.hungup:
            return
        if priority != INBOUND_FIRST:
            self._app_step(ch, ch.exten, priority, "Stasis", ",".join([app, *args]))
        self.pbx.set_var(ch, "STASISSTATUS", "")
        ch.stasis_failed = lambda status: self.after_stasis_in(ch, app, args, priority, status)
        if self.pbx.enter_stasis(ch, app, args):
            return  # in the app (or a per-call websocket is being connected for it)
        ch.stasis_failed = None
        self.after_stasis_in(ch, app, args, priority, "FAILED")

    def after_stasis_in(
        self, ch: Channel, app: str, args: list[str], priority: int, status: str
    ) -> None:
        """``[voxflow-in]``'s Stasis() at ``priority`` returned ``status``: FAILED (no app
        registered) waits 0.5 s and tries again at 6, 10 times; then, or after SUCCESS (the app
        let the call go after a retry), ``n(done),Hangup()``."""
        exten = ch.exten
        if ch.variables.get("STASISSTATUS") != status:
            self.pbx.set_var(ch, "STASISSTATUS", status)
        failed = status == "FAILED"
        if priority == INBOUND_FIRST:
            self._app_step(ch, exten, 3, "GotoIf", f'$["{status}" != "FAILED"]?done')
            if failed:
                self._app_step(ch, exten, 4, "Set", "VOXFLOW_TRIES=0")
                self.pbx.set_var(ch, "VOXFLOW_TRIES", "0")
        else:
            tries = int(ch.variables.get("VOXFLOW_TRIES") or 0)
            self._app_step(ch, exten, 7, "Set", f"VOXFLOW_TRIES=$[{tries} + 1]")
            self.pbx.set_var(ch, "VOXFLOW_TRIES", str(tries + 1))
            self._app_step(
                ch, exten, 8, "GotoIf",
                f'$["{status}" = "FAILED" & {tries + 1} < {self.back_tries}]?again',
            )  # fmt: skip
            failed = failed and tries + 1 < self.back_tries
        if not failed:
            if status == "FAILED" and ch.far is not None:
                ch.far.far_event("dialplan", {"reason": f"Stasis app '{app}' doesn't exist"})
            self._app_step(ch, exten, INBOUND_DONE, "Hangup", "")
            self.pbx.hangup(ch, 16, request={"cause": 16, "soft": True})
            return
        self._app_step(ch, exten, 5, "Wait", "0.5")

        def again() -> None:
            self.stasis_in(ch, app, args, INBOUND_RETRY)

        self.pbx.schedule(ch, self.back_wait, again)

    def after_return(self, ch: Channel, exten: str, priority: int) -> None:
        """A call back in the app from a shipped extension, continued with no target (the next
        priority: the retry's GotoIf, ``STASISSTATUS=SUCCESS``) or at label ``done``: the
        extension's Hangup()."""
        done = label_priority(ch.context, exten, "done") or priority
        if priority == done - 3:
            self._app_step(ch, exten, priority, "GotoIf", '$["SUCCESS" != "FAILED" | ...]?done')
        self._app_step(ch, exten, done, "Hangup", "")
        self.pbx.hangup(ch, 16, request={"cause": 16, "soft": True})

    def _behaviour(self, resource: str) -> str:
        from .pbx import RESERVED_ENDPOINTS

        name = resource.split("@")[0].split("/")[0]
        return self.pbx.outbound_behaviour.get(name) or RESERVED_ENDPOINTS.get(name, "answer")

    # --- [voxflow-transfer] --------------------------------------------------------------

    def _transfer(self, ch: Channel, exten: str) -> None:
        if exten == "endpoint" and "/" in ch.variables.get("VOXFLOW_TRANSFER_TARGET", ""):
            target = ch.variables["VOXFLOW_TRANSFER_TARGET"]
        elif _NUMBER.match(exten):
            target = f"PJSIP/{exten}@trunk"
        else:
            self.pbx.set_var(ch, "INVALID_EXTEN", exten)
            self._app_step(ch, "i", 1, "NoOp", f"voxflow cannot route {exten}")
            self._back(ch, "i", 2, ["transfer-return", "INVALID", exten])
            return
        self._app_step(ch, exten, 1, "NoOp", f"voxflow transfer to {target}")
        self._app_step(ch, exten, 2, "Dial", f"{target},60")
        resource = target.split("/", 1)[1]
        behaviour = self._behaviour(resource)
        peer = self._peer_json(target)
        self._dial(ch, target, peer, "")
        if ch.far is not None:
            ch.far.far_event("transfer", {"target": target})
        if behaviour == "answer":
            self.pbx.schedule(ch, self.pbx.answer_delay or 0.5, lambda: self._answered(ch, target))
            return
        status, after = _DIAL_STATUS.get(behaviour, ("NOANSWER", self.ring_timeout))
        self.pbx.schedule(ch, after, lambda: self._not_answered(ch, exten, target, status))

    def _peer_json(self, target: str) -> dict[str, Any]:
        tech, _, res = target.partition("/")
        name = f"{tech}/{res.split('@')[-1] if '@' in res else res}-{self.pbx.next_chan_seq():08x}"
        peer = Channel(
            id=self.pbx.new_channel_id(), name=name, state="Down", creationtime=self.pbx.now_ts()
        )
        return peer.json()

    def _dial(self, ch: Channel, target: str, peer: dict[str, Any], status: str) -> None:
        self.pbx.emit(
            "Dial",
            {
                "dialstatus": status,
                "forward": "",
                "dialstring": target.split("/", 1)[1],
                "caller": ch.json(),
                "peer": peer,
            },
            channels=[ch],
        )

    def _answered(self, ch: Channel, target: str) -> None:
        self._dial(ch, target, self._peer_json(target), "ANSWER")
        self.pbx.set_var(ch, "BRIDGEPEER", target)
        if ch.far is not None:
            ch.far.far_event("transferred", {"target": target})

    def _not_answered(self, ch: Channel, exten: str, target: str, status: str) -> None:
        self._dial(ch, target, self._peer_json(target), status)
        self.pbx.set_var(ch, "DIALSTATUS", status)
        self._app_step(ch, exten, 3, "GotoIf", f'$["{status}" = "ANSWER"]?done')
        self._back(ch, exten, 4, ["transfer-return", status])

    # --- [voxflow-queue] -----------------------------------------------------------------

    def _queue(self, ch: Channel) -> None:
        v = ch.variables
        name = v.get("VOXFLOW_QUEUE", "")
        options = v.get("VOXFLOW_QUEUE_OPTIONS", "")
        expire = _queue_expire(v.get("VOXFLOW_QUEUE_TIMEOUT", ""))
        place = v.get("VOXFLOW_QUEUE_POSITION", "")
        data = f"{name},{options},,,{v.get('VOXFLOW_QUEUE_TIMEOUT', '')},,,,{place}"
        self._app_step(ch, "queue", 1, "NoOp", f"voxflow queue {name}")
        self._app_step(ch, "queue", 2, "Queue", data)
        q = self.queues.get(name)
        if q is None:  # app_queue.c: join_queue fails, reason stays QUEUE_UNKNOWN
            self._queue_back(ch, "UNKNOWN")
            return
        q.waiting = [c for c in q.waiting if c in self.pbx.channels]  # gone: hung up
        if not q.agents and not q.joinempty:  # join_queue: joinempty before maxlen
            self._queue_done(ch, q, "JOINEMPTY", {})
            return
        if q.maxlen and len(q.waiting) >= q.maxlen:
            self._queue_done(ch, q, "FULL", {})
            return
        for var in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"):
            self.pbx.set_var(ch, var, "")
        self.pbx.set_var(ch, "QUEUEWAIT", "")
        self.pbx.set_var(ch, "QUEUEWAIT_MS", "")
        at = max(0, _atoi(place))  # queue_exec: atoi(args.position), below 0: 0
        q.join(ch.id, _queue_prio(v.get("QUEUE_PRIO", "")), at)
        if ch.far is not None:
            ch.far.far_event("queue", {"queue": name, "music": options})
        joined = self._joined[ch.id] = self.pbx.clock.now()
        if expire is not None:
            self.pbx.schedule(ch, expire, lambda: self._abandon(ch, q, "TIMEOUT", joined))
        if expire == 0.0:
            return  # qe.expire already passed: TIMEOUT before any member is rung
        if not q.agents and q.leavewhenempty:  # wait_our_turn's first pass, before any wait
            self.pbx.schedule(ch, 0.0, lambda: self._abandon(ch, q, "LEAVEEMPTY", joined))
            return
        self._ring(ch, q, expire, joined)

    def _ring(self, ch: Channel, q: SandboxQueue, expire: float | None, joined: float) -> None:
        """Ring the members; the first to answer before the timeout takes the call."""
        answering = [a for a in q.agents if a.answer_after is not None]
        agent = min(answering, key=lambda a: a.answer_after or 0.0, default=None)
        if (
            agent is not None
            and agent.answer_after is not None
            and (expire is None or agent.answer_after < expire)
        ):
            for a in q.agents:
                self._dial(ch, f"Local/{a.name}@agents/n", self._peer_json(f"Local/{a.name}"), "")
            self.pbx.schedule(ch, agent.answer_after, lambda: self._agent_up(ch, q, agent, joined))

    def _abandon(self, ch: Channel, q: SandboxQueue, status: str, joined: float) -> None:
        if ch.variables.get("BRIDGEPEER"):
            return  # an agent has the call
        if ch.id not in q.waiting or self._joined.get(ch.id) != joined:
            return  # Queue() returned already (this timer is of an earlier join)
        waited = self.pbx.clock.now() - joined
        self._queue_done(
            ch,
            q,
            status,
            {
                "ABANDONED": "TRUE",
                "QUEUEWAIT": str(int(waited)),
                "QUEUEWAIT_MS": str(int(waited * 1000)),
                "DIALEDTIME": str(int(waited)),
                "DIALEDTIME_MS": str(int(waited * 1000)),
                "ANSWEREDTIME": "0",
                "ANSWEREDTIME_MS": "0",
                "QUEUEPOSITION": q.position(ch.id),
            },
        )

    def _agent_up(self, ch: Channel, q: SandboxQueue, agent: QueueAgent, joined: float) -> None:
        if ch.id not in q.waiting or self._joined.get(ch.id) != joined:
            return  # the caller left Queue() (a key, a hang-up) before the agent answered
        waited = self.pbx.clock.now() - joined
        peer = f"Local/{agent.name}@agents-{self.pbx.next_local_seq():08x};1"
        self._dial(
            ch, f"Local/{agent.name}@agents/n", self._peer_json(f"Local/{agent.name}"), "ANSWER"
        )
        self.pbx.set_var(ch, "QUEUEPOSITION", q.position(ch.id))
        self.pbx.set_var(ch, "QUEUEWAIT", str(int(waited)))
        self.pbx.set_var(ch, "QUEUEWAIT_MS", str(int(waited * 1000)))
        self.pbx.set_var(ch, "BRIDGEPEER", peer)
        if ch.far is not None:
            ch.far.far_event("agent", {"queue": q.name, "agent": agent.name})
        self.pbx.schedule(ch, agent.talk, lambda: self._agent_gone(ch, q, agent, waited))

    def _agent_gone(self, ch: Channel, q: SandboxQueue, agent: QueueAgent, waited: float) -> None:
        self.pbx.set_var(ch, "BRIDGEPEER", "")
        talked = agent.talk
        if "c" not in ch.variables.get("VOXFLOW_QUEUE_OPTIONS", "").split("m(")[0]:
            q.waiting.remove(ch.id)
            self.pbx.hangup(ch, 16)  # without the c option the caller is hung up
            return
        self._queue_done(
            ch,
            q,
            "CONTINUE",
            {
                "ANSWEREDTIME": str(int(talked)),
                "ANSWEREDTIME_MS": str(int(talked * 1000)),
                "DIALEDTIME": str(int(waited + talked)),
                "DIALEDTIME_MS": str(int((waited + talked) * 1000)),
            },
        )

    def _queue_done(
        self, ch: Channel, q: SandboxQueue, status: str, variables: dict[str, str]
    ) -> None:
        if ch.id in q.waiting:
            q.waiting.remove(ch.id)
        self._joined.pop(ch.id, None)
        for name, value in variables.items():
            self.pbx.set_var(ch, name, value)
        self._queue_back(ch, status)

    def _queue_back(self, ch: Channel, status: str) -> None:
        self.pbx.set_var(ch, "QUEUESTATUS", status)
        v = ch.variables
        answered, position, wait = (
            v.get(n, "") for n in ("ANSWEREDTIME", "QUEUEPOSITION", "QUEUEWAIT")
        )
        self._back(ch, "queue", 3, ["queue-return", status, answered, position, wait])

    # --- [voxflow-queue-exit] ------------------------------------------------------------

    def queue_digit(self, ch: Channel, digit: str) -> None:
        """A digit from a caller: if it waits in a queue whose context is
        ``[voxflow-queue-exit]`` (``_X``), it leaves ``Queue()`` there with it."""
        if digit not in "0123456789" or ch.variables.get("BRIDGEPEER"):
            return
        q = next((q for q in self.queues.values() if ch.id in q.waiting), None)
        if q is None or q.context != QUEUE_EXIT_CONTEXT or ch.id not in self._joined:
            return
        self.pbx.set_var(ch, "QUEUEPOSITION", q.position(ch.id))
        q.waiting.remove(ch.id)
        self._joined.pop(ch.id, None)
        ch.context = QUEUE_EXIT_CONTEXT
        position, wait = ch.variables.get("QUEUEPOSITION", ""), ch.variables.get("QUEUEWAIT", "")
        self._back(ch, digit, 1, ["queue-return", "EXITWITHKEY", "", position, wait, digit])

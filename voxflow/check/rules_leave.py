"""VF210: a background recording still running when the call leaves the app (queue, transfer);
VF211: a transfer target the shipped ``[voxflow-transfer]`` cannot route;
VF212: a step option that changes nothing on Asterisk (``queue ... announce_position``).

On Asterisk a channel recording ends when the call leaves Stasis: Asterisk even holds the
``continue`` back until the recording ends (capture record-leaving-stasis.json), so
``CallSession`` stops the recording first and keeps what was recorded up to there. The
conversation in the queue or after the transfer is never in it. The rule follows each body's
states forward (may-analysis: a ``record_start`` not yet matched by a ``record_stop`` on some
path) and warns at the ``queue``/``transfer`` step reached with a recording running.
"""

from __future__ import annotations

from collections import deque

from voxflow.check.model import MFlow, MStep, MSubflow
from voxflow.check.walk import Bag, RuleContext, all_steps, bodies
from voxflow.source import Span
from voxflow.spec.options import INERT_OPTIONS
from voxflow.spec.semantics import transfer_routable

__all__ = [
    "RULES_LEAVE",
    "vf210_recording_across_leave",
    "vf211_unroutable_transfer",
    "vf212_inert_option",
]

_LEAVING = frozenset({"queue", "transfer"})

# The recording that may be running: the span of its record_start, or None.
Live = Span | None


class _Scan:
    """One body's forward scan: ``entry`` holds, per state, a recording that may be running
    when the state is entered; ``found`` the leaving steps reached with one running."""

    def __init__(self, sub: MSubflow) -> None:
        self.entry: dict[str, Live] = {}
        self.todo: deque[str] = deque()
        self.found: dict[int, tuple[MStep, Span]] = {}
        self.states = {s.name: s for s in sub.states}

    def reach(self, state: str, live: Live) -> None:
        if live is None or state not in self.states or self.entry.get(state) is not None:
            return
        self.entry[state] = live
        self.todo.append(state)

    def block(self, steps: list[MStep], live: Live) -> Live:
        """Scan ``steps`` in order; the recording possibly running after them."""
        for step in steps:
            if step.op == "record_start":
                live = step.span
            elif step.op == "record_stop":
                live = None
            elif step.op in _LEAVING:
                if live is not None:
                    self.found.setdefault(id(step), (step, live))
                live = None  # CallSession stops the recording before the call leaves
            elif step.op == "goto" and step.target is not None:
                self.reach(step.target, live)
            if step.blocks:
                after = [self.block(b, live) for b in step.blocks]
                if not step.exhaustive:
                    after.append(live)
                live = next((a for a in after if a is not None), None)
            if step.handlers:
                after = [self.block(h.steps, live) for h in step.handlers]
                live = next((a for a in [live, *after] if a is not None), None)
        return live

    def run(self, sub: MSubflow) -> None:
        for state in sub.states:  # a record_start anywhere can flow to later states
            self.block(state.steps, None)
        while self.todo:
            name = self.todo.popleft()
            self.block(self.states[name].steps, self.entry[name])


def vf210_recording_across_leave(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A ``queue``/``transfer`` reached while a ``record_start`` recording may run (warning)."""
    for sub in bodies(flow):
        scan = _Scan(sub)
        scan.run(sub)
        for step, started in scan.found.values():
            bag.add(
                "VF210",
                step.span,
                step.file,
                f"the recording started on line {started.line} ends here: the call leaves the"
                f" app for the {step.op} and the recording stops with it (what was recorded up"
                " to here is kept; the rest of the call is not recorded)",
                "write record_stop before it to make that explicit, or record the rest of the"
                " call in the dialplan (MixMonitor)",
            )


def vf211_unroutable_transfer(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A ``transfer`` to a literal target the shipped ``[voxflow-transfer]`` has no extension
    for (neither ``TECH/resource`` nor a number): on Asterisk it comes back failed (warning)."""
    for body in bodies(flow):
        for step in all_steps(body):
            if step.op != "transfer" or not step.templates:
                continue
            target, span = step.templates[0]
            if "{" in target or transfer_routable(target):
                continue
            bag.add(
                "VF211",
                span,
                step.file,
                f"the shipped [voxflow-transfer] has no extension for {target!r}: on Asterisk"
                " the call comes back (INVALID) and the state's 'on error' runs",
                'transfer to TECH/resource ("PJSIP/payments") or a number ("+18005550111"),'
                " or add an extension for it to [voxflow-transfer]",
            )


def vf212_inert_option(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """An option the step accepts but Asterisk has no per-call way to do (warning)."""
    for body in bodies(flow):
        for step in all_steps(body):
            for name, span in step.inert:
                why = INERT_OPTIONS[step.op][name]
                bag.add(
                    "VF212",
                    span,
                    step.file,
                    f"'{name}' changes nothing on a call: {why}",
                    "remove it, and set what you want in the Asterisk configuration"
                    " (docs/asterisk/queues.conf)",
                )


RULES_LEAVE = [vf210_recording_across_leave, vf211_unroutable_transfer, vf212_inert_option]

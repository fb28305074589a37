"""The checker front door: ``check(ast, source) -> list[Diagnostic]``.

Builds the checker model from the parser's :class:`~voxflow.syntax.ast.Program`, runs every
rule, and returns the diagnostics sorted, with warnings silenced by disable comments removed.
It collects and never raises: an internal failure becomes a VF000 diagnostic.
"""

from __future__ import annotations

import logging
from typing import Any

from voxflow.check.adapt import build_model
from voxflow.check.rules import run_rules
from voxflow.check.suppress import apply_suppressions
from voxflow.check.types import FunctionType
from voxflow.check.walk import RuleContext
from voxflow.diagnostics import Diagnostic, Severity, sort_diagnostics
from voxflow.source import Source, Span
from voxflow.sourcefile import read_source
from voxflow.spec.functions import FUNCTIONS
from voxflow.syntax.parser import load_program

__all__ = ["check", "check_text", "rule_context"]

log = logging.getLogger(__name__)


def rule_context() -> RuleContext:
    """Function signatures from the whitelist (:data:`voxflow.spec.functions.FUNCTIONS`; option
    and config-key names are the tables in :mod:`voxflow.spec.options`)."""
    functions = {
        name: FunctionType(tuple(sig.params), str(sig.result), sig.variadic, sig.min_args)
        for name, sig in FUNCTIONS.items()
    }
    return RuleContext(functions=functions)


def check(ast: Any, source: Source) -> list[Diagnostic]:
    """Every rule's diagnostics for ``ast`` (a parsed Program from ``source``)."""
    try:
        model = build_model(ast)
        diags = run_rules(model, rule_context())
    except RecursionError:
        diags = [
            Diagnostic(
                Severity.ERROR,
                "VF001",
                source.whole(),
                "the flow is nested too deeply to check",
                None,
                source.name,
            )
        ]
    except Exception as exc:  # the checker never raises for a flow
        log.debug("checker failed on %s", source.name, exc_info=True)
        diags = [
            Diagnostic(
                Severity.ERROR,
                "VF000",
                Span(1, 1, 1, 2),
                f"internal checker error: {type(exc).__name__}: {exc}",
                "please report this as a voxflow bug",
                source.name,
            )
        ]
    sources = {source.name: source}
    for d in diags:
        if d.file and d.file not in sources:
            other = read_source(d.file)
            if isinstance(other, Source):
                sources[d.file] = other
    fixed = [
        d if d.file else Diagnostic(d.severity, d.code, d.span, d.message, d.hint, source.name)
        for d in diags
    ]
    return sort_diagnostics(apply_suppressions(fixed, sources))


def check_text(source: Source) -> list[Diagnostic]:
    """Parse ``source`` (and its includes) and check it, without lowering."""
    program, diags = load_program(source)
    if program is None:
        return diags
    return sort_diagnostics([*diags, *check(program, source)])

"""The compiler front door: ``compile_flow(source_text, path)`` = parse, check, lower.

Never raises for a bad flow: every problem is a :class:`~voxflow.diagnostics.Diagnostic`.
The checker (``voxflow.check.check(program, source)``) and lowering both run on every flow that
parses, so one run reports every problem; each diagnostic code has one owner (see
``docs/diagnostics.md``). The flow is None when either reported an error.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from voxflow.check import check
from voxflow.diagnostics import Diagnostic, Severity, sort_diagnostics
from voxflow.errors import FlowCheckError
from voxflow.ir.lower import lower_program
from voxflow.ir.models import Flow
from voxflow.source import MAX_SOURCE_BYTES, Source, Span
from voxflow.sourcefile import decode_source, read_source
from voxflow.syntax.parser import load_program

__all__ = ["CompileResult", "compile_file", "compile_flow", "gc_paused", "load_flow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompileResult:
    """The compiled flow (None when there were errors) and every diagnostic, sorted."""

    flow: Flow | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the flow compiled (warnings allowed)."""
        return self.flow is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        """The error diagnostics."""
        return [d for d in self.diagnostics if d.is_error]


def compile_flow(source_text: str | bytes, path: str = "<flow>") -> CompileResult:
    """Parse ``source_text`` (from ``path``; includes resolve relative to it), check, lower."""
    if isinstance(source_text, bytes):
        decoded = decode_source(path, source_text)
        if isinstance(decoded, Diagnostic):
            return CompileResult(None, [decoded])
        source = decoded
    else:
        if len(source_text) > MAX_SOURCE_BYTES:
            return compile_flow(source_text.encode("utf-8", "surrogatepass"), path)
        source = Source(path, source_text.replace("\r\n", "\n"))
    return _compile(source)


def compile_file(path: str | os.PathLike[str]) -> CompileResult:
    """Read and compile a ``.flow`` file."""
    loaded = read_source(path)
    if isinstance(loaded, Diagnostic):
        return CompileResult(None, [loaded])
    return _compile(loaded)


def load_flow(path: str | os.PathLike[str]) -> Flow:
    """Compile a file or raise :class:`~voxflow.errors.FlowCheckError` with the diagnostics."""
    result = compile_file(path)
    if result.flow is None or not result.ok:
        first = result.errors[0] if result.errors else None
        where = f"{first.file}:{first.span.line}:{first.span.col}: {first.message}" if first else ""
        raise FlowCheckError(
            f"{os.fspath(path)} does not compile: {where}", list(result.diagnostics)
        )
    return result.flow


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector. Compiling allocates many long-lived objects (AST,
    IR) and no garbage cycles; collections would rescan them all and make big flows compile in
    super-linear time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compile(source: Source) -> CompileResult:
    with gc_paused():
        return _compile_inner(source)


def _compile_inner(source: Source) -> CompileResult:
    try:
        program, diags = load_program(source)
        if program is None:
            return CompileResult(None, sort_diagnostics(diags))
        checked = check(program, source)
        diags = [*diags, *checked]
        checked_ok = not any(d.is_error for d in diags)
        if any(d.code == "VF001" for d in checked):  # nested deeper than the checker walks:
            return CompileResult(None, sort_diagnostics(diags))  # lowering would recurse too
        try:
            flow, lower_diags = lower_program(program)
        except Exception:
            if checked_ok:
                raise
            # The checker already rejected the flow; its findings are what the user needs.
            log.debug("lowering failed after checker errors on %s", source.name, exc_info=True)
            flow, lower_diags = None, []
        all_diags = sort_diagnostics([*diags, *lower_diags])
        if not checked_ok or any(d.is_error for d in lower_diags):
            flow = None
        return CompileResult(flow, all_diags)
    except RecursionError:
        message = "the flow is nested too deeply to compile"
    except Exception as exc:  # a compiler bug must not become a traceback for the user
        log.exception("internal compiler error on %s", source.name)
        message = f"internal compiler error: {type(exc).__name__}: {exc}"
    return CompileResult(
        None,
        [Diagnostic(Severity.ERROR, "VF000", Span(1, 1, 1, 2), message, None, source.name)],
    )

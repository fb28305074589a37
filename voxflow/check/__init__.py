"""voxflow.check: the checker. ``check(ast, source) -> list[Diagnostic]`` collects, never raises."""

from voxflow.check.checker import check, check_text

__all__ = ["check", "check_text"]

"""voxflow.viz: drawings of a compiled flow's map (Mermaid, Graphviz DOT, SVG/PNG through the
``dot`` binary). The map itself (:mod:`voxflow.ir.flowmap`) is graph analysis of the IR.

:data:`FORMATS` is defined here and ``render_graph`` loads on first access (PEP 562), so
``voxflow graph --help`` lists the formats without loading the compiler and the IR."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxflow.viz.render import render_graph

__all__ = ["FORMATS", "render_graph"]

FORMATS = ("mermaid", "dot", "svg", "png")
"""What ``render_graph`` draws: Mermaid, Graphviz DOT, and SVG/PNG through ``dot``."""


def __getattr__(name: str) -> object:
    """Load ``render_graph`` on first use (and keep it, so later reads are plain lookups)."""
    if name != "render_graph":
        raise AttributeError(f"module 'voxflow.viz' has no attribute {name!r}")
    from voxflow.viz.render import render_graph

    globals()[name] = render_graph
    return render_graph


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

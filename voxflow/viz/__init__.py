"""voxflow.viz: drawings of a compiled flow's map (Mermaid, Graphviz DOT, SVG/PNG through the
``dot`` binary). The map itself (:mod:`voxflow.ir.flowmap`) is graph analysis of the IR."""

from __future__ import annotations

from voxflow.viz.render import FORMATS, render_graph

__all__ = ["FORMATS", "render_graph"]

"""voxflow.viz: a static map of a compiled flow (states, transitions, outcome branches) and
its drawings (Mermaid, Graphviz DOT, SVG/PNG through the ``dot`` binary)."""

from __future__ import annotations

from voxflow.viz.flowmap import Branch, Edge, FlowMap, build_flowmap
from voxflow.viz.render import FORMATS, render_graph

__all__ = ["FORMATS", "Branch", "Edge", "FlowMap", "build_flowmap", "render_graph"]

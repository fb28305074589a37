"""Draw a flow: Mermaid, Graphviz DOT, and SVG/PNG through the Graphviz ``dot`` binary.

States are nodes (the initial one bold, with an entry arrow); transitions are edges labelled with
the outcome that takes them (menu choices show their keys and phrases). Handlers inherited from a
scope, subflow or the flow level hang off a dashed "any state" node; anytime commands are edges
labelled ``anytime ...``; ``retry``/``continue`` are loops; compiler defaults (implied
transitions) are dotted edges from their states. Unreachable states are filled red and outcomes
nothing handles (what lint reports as VF203) point to a red "unhandled" node.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import replace

from voxflow.errors import ConfigError
from voxflow.ir import models as ir
from voxflow.ir.flowmap import Edge, FlowMap, build_flowmap
from voxflow.viz import FORMATS

__all__ = ["FORMATS", "render_graph", "to_dot", "to_mermaid"]

_TERMINALS = {"hangup": "hang up", "transfer": "transferred", "return": "return"}
_LOOPS = frozenset({"retry", "continue"})


def _pattern_text(keys: tuple[str, ...], phrases: tuple[str, ...], pats: tuple[str, ...]) -> str:
    regexes = [f"/{p[4:]}/i" if p.startswith("(?i)") else f"/{p}/" for p in pats]
    parts = [*keys, *(f'"{p}"' for p in phrases), *regexes]
    return " | ".join(parts)


def _pretty(fm: FlowMap) -> dict[tuple[str, str], str]:
    """Display text for choice and command labels, per (state, label)."""
    out: dict[tuple[str, str], str] = {}

    def walk(steps: tuple[ir.Step, ...], state: str) -> None:
        for s in steps:
            if isinstance(s, ir.GatherStep | ir.QueueStep):  # menu choices, queue exit keys
                for c in s.choices:
                    out.setdefault(
                        (state, "choice:" + c.value), _pattern_text(c.keys, c.phrases, c.patterns)
                    )
            for h in getattr(s, "on", {}).values():
                for hh in h:
                    walk(hh.steps, state)
            for b in getattr(s, "branches", ()):
                walk(b.steps, state)
            walk(getattr(s, "else_steps", ()), state)

    for key, st in fm.states.items():
        walk(st.steps, key)
        for c in st.commands:
            text = "anytime " + _pattern_text(c.keys, c.phrases, c.patterns)
            out[(key, "cmd:" + c.name)] = text
            out[(c.handler.origin, "cmd:" + c.name)] = text
    return out


def _edge_text(e: Edge, pretty: dict[tuple[str, str], str]) -> str:
    label = e.label
    for st in (e.src, *sorted(e.states)):
        if (st, label) in pretty:
            label = pretty[(st, label)]
            break
    if e.op in _LOOPS or (e.op == "return" and e.target == "hangup"):
        label = f"{label} / {e.op}" if label else e.op
    if e.op == "return" and e.src == "flow":  # a flow-level handler: which flows it runs in
        label += " (main flow)" if e.target == "hangup" else " (subflows)"
    return label


def _main_flow_returns(e: Edge) -> list[Edge]:
    """``e``, or for a ``return`` that runs in main-flow states the hang-up it is there (nothing
    to return to: the call ends, reason ``return``) and the return it is in subflow states (a
    flow-level handler runs in both)."""
    if e.op != "return":
        return [e]
    main = frozenset(st for st in e.states if "." not in st)
    if not main:
        return [e]
    subs = e.states - main
    return [replace(e, target="hangup", states=main), *([replace(e, states=subs)] if subs else [])]


def _drawn(fm: FlowMap) -> list[Edge]:
    """The edges to draw. A compiler default (an implied transition, origin ``default``) is
    drawn from the states it applies to, never from an "any state" node, and an implied
    ``continue`` (the step succeeded, the state goes on) is not drawn at all. A ``return`` that
    runs in the main flow goes to the hang-up node (:func:`_main_flow_returns`)."""
    out: list[Edge] = []
    for e in fm.edges.values():
        if e.origin != "default":
            out.extend(_main_flow_returns(e))
        elif e.op != "continue":
            out.extend(
                edge
                for st in sorted(e.states)
                if st in fm.states
                for edge in _main_flow_returns(replace(e, src=st, states=frozenset({st})))
            )
    return out


def _merged(fm: FlowMap, pretty: dict[tuple[str, str], str]) -> list[tuple[Edge, str]]:
    """Edges with the same ends and kind drawn once, their labels joined."""
    groups: dict[tuple[str, str, str, bool], list[Edge]] = {}
    for e in _drawn(fm):
        groups.setdefault((e.src, e.target, e.op, e.required), []).append(e)
    out = []
    for edges in groups.values():
        texts = list(dict.fromkeys(_edge_text(e, pretty) for e in edges))
        out.append((edges[0], ", ".join(t for t in texts if t)))
    return out


def _node_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _origin_title(origin: str) -> str:
    if origin == "flow":
        return "any state"
    kind, _, name = origin.partition(":")
    return f"any state in {kind} {name}"


class _Graph:
    """The drawing, independent of the output syntax."""

    def __init__(self, fm: FlowMap) -> None:
        self.fm = fm
        self.pretty = _pretty(fm)
        self.unreachable = set(fm.unreachable)
        # group key -> states: scopes (main flow) and subflows
        self.groups: dict[str, list[str]] = defaultdict(list)
        for key, st in fm.states.items():
            sub = key.split(".", 1)[0] if "." in key else None
            if sub:
                self.groups[f"subflow {sub}"].append(key)
            elif st.scopes:
                self.groups["scope " + "/".join(reversed(st.scopes))].append(key)
        drawn = _drawn(fm)
        self.pseudo = sorted({e.src for e in drawn if e.src not in fm.states})
        self.terminals = sorted({e.target for e in drawn if e.target in _TERMINALS})

    def pseudo_group(self, origin: str) -> str | None:
        if origin.startswith("subflow:"):
            return "subflow " + origin.split(":", 1)[1]
        if origin.startswith("scope:"):
            name = origin.split(":", 1)[1]
            for g in self.groups:
                if g.startswith("scope ") and name in g.removeprefix("scope ").split("/"):
                    return g
        return None


def _esc_dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(flow: ir.Flow, fm: FlowMap | None = None) -> str:
    """Graphviz DOT source for ``flow``."""
    fm = fm or build_flowmap(flow)
    g = _Graph(fm)
    title = flow.title or flow.name
    out = [
        f'digraph "{_esc_dot(flow.name)}" {{',
        f'  label="{_esc_dot(title)}"; labelloc=t; fontname="Helvetica"; rankdir=TB;',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef4ff", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    if flow.initial in flow.states:  # a library file (only subflows) has no entry
        out.append('  __start [shape=point, width=0.15, label=""];')
    out += _dot_nodes(flow, g)
    if flow.initial in flow.states:
        out.append(f"  __start -> {_node_id(flow.initial)};")
    out += _dot_edges(fm, g)
    for state, sub in fm.calls:
        sf = flow.subflows.get(sub)
        if sf is not None:
            out.append(
                f"  {_node_id(state)} -> {_node_id(sub + '.' + sf.initial)} "
                f'[label="call {sub}", style=bold, color="#336699"];'
            )
    out += _dot_unhandled(fm)
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_state(flow: ir.Flow, g: _Graph, key: str) -> str:
    """A state's node: the initial one bold, an unreachable one red."""
    attrs = [f'label="{_esc_dot(key)}"']
    if key == flow.initial:
        attrs.append("penwidth=2")
    if key in g.unreachable:
        attrs += ['fillcolor="#ffd6d6"', 'color="#cc0000"', 'label="' + _esc_dot(key)
                  + '\\n(unreachable)"']  # fmt: skip
        attrs = [a for a in attrs if a != f'label="{_esc_dot(key)}"']
    return f"{_node_id(key)} [{', '.join(attrs)}];"


def _dot_pseudo(origin: str) -> str:
    """The note standing for a handler's origin ("any state", "any state in scope ...")."""
    return (
        f'{_node_id("from_" + origin)} [label="{_esc_dot(_origin_title(origin))}", '
        'shape=note, style="dashed", fillcolor="white"];'
    )


def _dot_nodes(flow: ir.Flow, g: _Graph) -> list[str]:
    """Every node: states and origins in their scope/subflow clusters, then the rest and the
    terminals."""
    out: list[str] = []
    grouped = {s for members in g.groups.values() for s in members}
    placed_pseudo: set[str] = set()
    for i, (group, members) in enumerate(sorted(g.groups.items())):
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f'    label="{_esc_dot(group)}"; style="dashed"; color="#888888";')
        out.extend("    " + _dot_state(flow, g, m) for m in members)
        for p in g.pseudo:
            if g.pseudo_group(p) == group:
                out.append("    " + _dot_pseudo(p))
                placed_pseudo.add(p)
        out.append("  }")
    out.extend("  " + _dot_state(flow, g, k) for k in g.fm.states if k not in grouped)
    out.extend("  " + _dot_pseudo(p) for p in g.pseudo if p not in placed_pseudo)
    for t in g.terminals:
        out.append(
            f'  {_node_id("end_" + t)} [label="{_TERMINALS[t]}", shape=doublecircle, '
            'fillcolor="#eeeeee", fontsize=10];'
        )
    return out


def _edge_ends(fm: FlowMap, e: Edge) -> tuple[str, str]:
    """The node ids an edge joins: from its state or handler origin, to its target state, a
    terminal, or back to itself (a loop such as retry)."""
    src = _node_id(e.src) if e.src in fm.states else _node_id("from_" + e.src)
    if e.op in _LOOPS:
        return src, src
    if e.target in _TERMINALS:
        return src, _node_id("end_" + e.target)
    return src, _node_id(e.target)


def _dot_edges(fm: FlowMap, g: _Graph) -> list[str]:
    """The transitions (merged per pair of nodes): dashed from an origin, dotted if optional."""
    out: list[str] = []
    for e, text in _merged(fm, g.pretty):
        src, dst = _edge_ends(fm, e)
        attrs = [f'label="{_esc_dot(text)}"']
        if e.src not in fm.states:
            attrs.append("style=dashed")
        if not e.required:
            attrs += ['color="#999999"', "style=dotted"]
        out.append(f"  {src} -> {dst} [{', '.join(attrs)}];")
    return out


def _dot_unhandled(fm: FlowMap) -> list[str]:
    """A red node and edge for each outcome no handler takes."""
    out: list[str] = []
    for n, b in enumerate(fm.unhandled):
        node = _node_id(f"unhandled_{n}")
        out.append(
            f'  {node} [label="unhandled", shape=octagon, fillcolor="#ffd6d6", '
            'color="#cc0000", fontsize=10];'
        )
        out.append(
            f'  {_node_id(b.state)} -> {node} [label="{_esc_dot(b.outcome)}", '
            'color="#cc0000", fontcolor="#cc0000", style=dashed];'
        )
    return out


def _esc_mm(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;") or " "


def to_mermaid(flow: ir.Flow, fm: FlowMap | None = None) -> str:
    """Mermaid ``flowchart`` source for ``flow``."""
    fm = fm or build_flowmap(flow)
    g = _Graph(fm)
    out = ["flowchart TD"]
    if flow.initial in flow.states:  # a library file (only subflows) has no entry
        out.append("  __start(( )) --> " + _node_id(flow.initial))

    def state_node(key: str) -> str:
        text = key + (" (unreachable)" if key in g.unreachable else "")
        cls = ":::unreachable" if key in g.unreachable else ""
        return f'{_node_id(key)}["{_esc_mm(text)}"]{cls}'

    grouped = {s for members in g.groups.values() for s in members}
    placed: set[str] = set()
    for i, (group, members) in enumerate(sorted(g.groups.items())):
        out.append(f'  subgraph g{i}["{_esc_mm(group)}"]')
        out.extend("    " + state_node(m) for m in members)
        for p in g.pseudo:
            if g.pseudo_group(p) == group:
                out.append(f'    {_node_id("from_" + p)}>"{_esc_mm(_origin_title(p))}"]')
                placed.add(p)
        out.append("  end")
    out.extend("  " + state_node(k) for k in fm.states if k not in grouped)
    out.extend(
        f'  {_node_id("from_" + p)}>"{_esc_mm(_origin_title(p))}"]'
        for p in g.pseudo
        if p not in placed
    )
    out.extend(f'  {_node_id("end_" + t)}(("{_TERMINALS[t]}"))' for t in g.terminals)
    for e, text in _merged(fm, g.pretty):
        src, dst = _edge_ends(fm, e)
        arrow = "-.->" if e.src not in fm.states or not e.required else "-->"
        out.append(
            f'  {src} {arrow}|"{_esc_mm(text)}"| {dst}' if text else f"  {src} {arrow} {dst}"
        )
    for state, sub in fm.calls:
        sf = flow.subflows.get(sub)
        if sf is not None:
            out.append(f'  {_node_id(state)} ==>|"call {sub}"| {_node_id(sub + "." + sf.initial)}')
    for n, b in enumerate(fm.unhandled):
        node = _node_id(f"unhandled_{n}")
        out.append(f'  {node}{{{{"unhandled"}}}}:::unhandled')
        out.append(f'  {_node_id(b.state)} -.->|"{_esc_mm(b.outcome)}"| {node}')
    out.append("  classDef unreachable fill:#ffd6d6,stroke:#cc0000,color:#000")
    out.append("  classDef unhandled fill:#ffd6d6,stroke:#cc0000,color:#cc0000")
    return "\n".join(out) + "\n"


def render_graph(flow: ir.Flow, fmt: str = "mermaid") -> bytes:
    """The drawing of ``flow`` in ``fmt`` (mermaid, dot, svg, png) as bytes.

    svg and png run Graphviz ``dot``; raises :class:`ConfigError` when it is missing or fails.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown graph format '{fmt}' (expected {', '.join(FORMATS)})")
    fm = build_flowmap(flow)
    if fmt == "mermaid":
        return to_mermaid(flow, fm).encode()
    dot_src = to_dot(flow, fm)
    if fmt == "dot":
        return dot_src.encode()
    exe = shutil.which("dot")
    if exe is None:
        raise ConfigError(
            "Graphviz 'dot' is not installed (Debian: apt-get install graphviz); "
            "use --format mermaid or dot instead"
        )
    try:
        proc = subprocess.run(
            [exe, "-T" + fmt], input=dot_src.encode(), capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"Graphviz 'dot' failed: {exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"Graphviz 'dot' failed: {err[-1] if err else proc.returncode}")
    return proc.stdout

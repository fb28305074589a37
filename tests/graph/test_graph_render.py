"""Flow drawings: every format, unreachable states and unhandled outcomes highlighted."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.compiler.frontdoor import compile_flow, load_flow
from voxflow.ir import models as ir
from voxflow.ir.flowmap import build_flowmap
from voxflow.viz import render_graph

ROOT = Path(__file__).resolve().parents[2]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")

ORPHAN = """\
flow orphan:
    answers "300"

state start:
    answer
    menu "Press 1.":
        1 -> done
        on noinput, nomatch -> done
        on exhausted -> done
        on error -> done

state done:
    say "Bye."
    hangup

state lost:
    say "Nobody comes here."
    hangup
"""


def orphan_flow() -> ir.Flow:
    result = compile_flow(ORPHAN, "orphan.flow")
    assert result.flow is not None, result.diagnostics
    return result.flow


def with_unhandled(flow: ir.Flow) -> ir.Flow:
    """The flow with the menu's noinput handler removed (as an unchecked IR could have)."""
    start = flow.states["start"]
    menu = next(s for s in start.steps if isinstance(s, ir.GatherStep))
    on = {k: v for k, v in menu.on.items() if k != "noinput"}
    steps = tuple(menu.model_copy(update={"on": on}) if s is menu else s for s in start.steps)
    states = {**flow.states, "start": start.model_copy(update={"steps": steps})}
    return flow.model_copy(update={"states": states})


def test_flowmap_finds_unreachable_and_unhandled() -> None:
    flow = orphan_flow()
    fm = build_flowmap(flow)
    assert fm.unreachable == ["lost"]
    assert fm.unhandled == []
    broken = build_flowmap(with_unhandled(flow))
    assert [(b.state, b.outcome) for b in broken.unhandled] == [("start", "noinput")]


def test_mermaid_marks_problems() -> None:
    text = render_graph(with_unhandled(orphan_flow()), "mermaid").decode()
    assert text.startswith("flowchart TD")
    assert 'n_lost["lost (unreachable)"]:::unreachable' in text
    assert '-.->|"noinput"| n_unhandled_0' in text
    edge = next(line for line in text.splitlines() if line.startswith("  n_start -->|"))
    assert edge.endswith("| n_done")
    assert sorted(edge.split('"')[1].split(", ")) == ["1", "error", "exhausted", "nomatch"]
    assert "classDef unreachable" in text


def test_dot_marks_problems_and_shows_inherited_handlers() -> None:
    dot = render_graph(load_flow(ROOT / "flows" / "main_ivr.flow"), "dot").decode()
    assert dot.startswith('digraph "main_ivr"')
    assert 'label="any state in scope menus"' in dot  # inherited handlers and commands
    assert 'anytime 0 | \\"operator\\"' in dot
    assert "__start -> n_main_menu" in dot
    broken = render_graph(with_unhandled(orphan_flow()), "dot").decode()
    assert 'n_lost [label="lost\\n(unreachable)"' in broken or "(unreachable)" in broken
    assert 'n_start -> n_unhandled_0 [label="noinput", color="#cc0000"' in broken


@needs_dot
def test_svg_and_png_through_graphviz() -> None:
    flow = with_unhandled(orphan_flow())
    svg = render_graph(flow, "svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert "(unreachable)" in texts and "unhandled" in texts
    png = render_graph(flow, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


@needs_dot
def test_cli_graph(tmp_path: Path) -> None:
    runner = CliRunner()
    src = tmp_path / "orphan.flow"
    src.write_text(ORPHAN)
    out = tmp_path / "g.svg"
    result = runner.invoke(cli, ["graph", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert ET.fromstring(out.read_bytes()).tag.endswith("svg")
    mm = runner.invoke(cli, ["graph", str(src)])
    assert mm.exit_code == 0 and mm.output.startswith("flowchart TD")
    bad = tmp_path / "bad.flow"
    bad.write_text("state a\n")
    failed = runner.invoke(cli, ["graph", str(bad), "--format", "dot"])
    assert failed.exit_code == 1 and "does not compile" in failed.output
    assert runner.invoke(cli, ["graph", str(tmp_path / "none.flow")]).exit_code == 2
    assert runner.invoke(cli, ["graph", str(src), "-o", str(tmp_path / "x.txt")]).exit_code == 2


def with_implied(flow: ir.Flow) -> ir.Flow:
    """The menu's noinput handled only by an implied transition (a compiler default)."""
    start = flow.states["start"]
    menu = next(s for s in start.steps if isinstance(s, ir.GatherStep))
    implied = ir.Handler(count=1, origin="default", steps=(ir.RetryStep(span=menu.span),),
                         span=menu.span)  # fmt: skip
    on = {**menu.on, "noinput": (implied,)}
    steps = tuple(menu.model_copy(update={"on": on}) if s is menu else s for s in start.steps)
    states = {**flow.states, "start": start.model_copy(update={"steps": steps})}
    return flow.model_copy(update={"states": states})


def test_implied_handlers_are_handled_and_drawn_from_their_state() -> None:
    fm = build_flowmap(with_implied(orphan_flow()))
    assert fm.unhandled == []  # lint counts an implied transition as handling the outcome
    text = render_graph(with_implied(orphan_flow()), "mermaid").decode()
    assert "unhandled_" not in text
    assert "any state in default" not in text
    assert 'n_start -.->|"noinput / retry"| n_start' in text


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.flow")), ids=lambda p: p.stem)
def test_example_graphs_have_no_phantom_node_and_agree_with_lint(path: Path) -> None:
    text = render_graph(load_flow(path), "mermaid").decode()
    assert "in default" not in text and "n_from_default" not in text
    assert "unhandled_" not in text  # the examples compile: lint reports no VF203
    drawn = (ROOT / "docs" / "graphs" / f"{path.stem}.mmd").read_text()
    assert drawn == text, "docs/graphs is out of date: run scripts/gen-graphs"


LIBRARY = """\
subflow ask() -> (ok: bool):
    state first:
        return ok = true

    state stray:
        return ok = false
"""


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_a_library_or_empty_file_has_no_entry_and_no_phantom_node(fmt: str, tmp_path: Path) -> None:
    (tmp_path / "lib.flow").write_text(LIBRARY)
    (tmp_path / "empty.flow").write_text("")
    text = render_graph(load_flow(tmp_path / "empty.flow"), fmt).decode()
    assert "__start" not in text and "n_;" not in text and "n_\n" not in text, text
    text = render_graph(load_flow(tmp_path / "lib.flow"), fmt).decode()
    assert "__start" not in text, text
    # as lint sees it (VF201): a subflow is entered at its first state, not from a main flow
    fm = build_flowmap(load_flow(tmp_path / "lib.flow"))
    assert fm.unreachable == ["ask.stray"]
    lint = CliRunner().invoke(cli, ["lint", str(tmp_path / "lib.flow")]).output
    assert "state 'stray' is unreachable" in lint and "'first'" not in lint
    confirm = build_flowmap(load_flow(ROOT / "flows" / "shared" / "confirm.flow"))
    assert confirm.unreachable == []


RETURNS = """\
flow returns:
    answers "100"
    retries 2

var picked: bool = false

on noinput, nomatch -> retry
on exhausted:
    say "Sorry."
    return

state start:
    answer
    call ask() returns (x as picked):
        on returned -> main

state main:
    menu "Press 1 to end.":
        1 -> bye

state bye:
    return

subflow ask() -> (x: bool):
    state s:
        menu "Press 1 to pick.":
            1 -> ok
    state ok:
        return x = true
"""
"""A return written in a main-flow state (``bye``), one in a flow-level handler that runs in
the main flow (``main``'s menu) and in the subflow (``ask.s``'s), and a subflow's own."""


def _edge_texts(edges: list[tuple[str, str, str]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for src, dst, text in edges:
        out.setdefault((src, dst), set()).update(t for t in text.split(", ") if t)
    return out


def _mermaid_edges(text: str) -> dict[tuple[str, str], set[str]]:
    found = re.findall(r'^  (\w+) [-.=]+>(?:\|"([^"]*)"\|)? (\w+)$', text, re.M)
    return _edge_texts([(src, dst, label) for src, label, dst in found])


def _dot_edges(text: str) -> dict[tuple[str, str], set[str]]:
    found = re.findall(r'^  (\w+) -> (\w+) \[label="([^"]*)"', text, re.M)
    return _edge_texts(found)


def _return_edges(edges: dict[tuple[str, str], set[str]]) -> None:
    """A main-flow return goes to the hang-up node, a subflow's to the return node."""
    assert edges[("n_bye", "n_end_hangup")] == {"return"}
    assert edges[("n_from_flow", "n_end_hangup")] == {"exhausted / return (main flow)"}
    assert edges[("n_from_flow", "n_end_return")] == {"exhausted (subflows)"}
    assert edges[("n_ask_ok", "n_end_return")] == set()
    assert ("n_bye", "n_end_return") not in edges


def test_a_return_in_the_main_flow_is_drawn_as_the_hang_up_it_is(tmp_path: Path) -> None:
    flow = compile_flow(RETURNS, "returns.flow").flow
    assert flow is not None
    mermaid = render_graph(flow, "mermaid").decode()
    _return_edges(_mermaid_edges(mermaid))
    assert 'n_end_hangup(("hang up"))' in mermaid and 'n_end_return(("return"))' in mermaid
    dot = render_graph(flow, "dot").decode()
    _return_edges(_dot_edges(dot))
    assert 'n_end_hangup [label="hang up"' in dot and 'n_end_return [label="return"' in dot
    if shutil.which("dot") is None:
        return
    svg = ET.fromstring(render_graph(flow, "svg"))
    titles = {t.text for t in svg.iter() if t.tag.endswith("title")}
    assert {"n_bye->n_end_hangup", "n_from_flow->n_end_hangup"} <= titles
    assert "n_bye->n_end_return" not in titles
    source = tmp_path / "returns.flow"
    source.write_text(RETURNS)
    png = tmp_path / "returns.png"
    result = CliRunner().invoke(cli, ["graph", str(source), "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the same DOT source, rendered

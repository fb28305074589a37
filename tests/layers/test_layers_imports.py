"""Imports point one way, down (docs/architecture.md): no package-level cycle in voxflow/, every
import goes to a lower layer, and the language side never loads the telephony stack.

The graph is read with ``ast`` from every module, function-level imports included (an import
inside a function is still a dependency); imports under ``if TYPE_CHECKING:`` are not.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "voxflow"

LAYERS: list[set[str]] = [
    {"errors", "source", "redact", "observe", "faults", "eager"},
    {"diagnostics", "voice"},
    {"sourcefile", "ari"},
    {"syntax", "ai"},
    {"spec", "fmt", "media"},
    {"check", "ir", "telephony", "sandbox"},
    {"compiler", "viz", "agent"},
    {"runtime"},
    {"testing", "cluster"},
    {"cli"},
    {"__main__"},
]
"""Bottom first. A package imports only packages of lower layers (never one of its own layer).
The same table, with the reason for each layer, is in docs/architecture.md."""

FORBIDDEN = {"sandbox": {"telephony", "ari"}}
"""The sandbox behaves like Asterisk, not like our client: it never imports the client side."""

LANGUAGE_SIDE = {"source", "diagnostics", "sourcefile", "syntax", "spec", "check", "ir", "compiler"}
TELEPHONY_STACK = {"asyncio", "aiohttp", "websockets"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in ``body``, nested ones included, but not the body of an ``if`` on
    ``TYPE_CHECKING``. Imports are statements, so expressions are not walked (``ast.walk`` over
    every node of every module took ~3 s of CPU in each worker that ran this file)."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _statements(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, ()):
                if isinstance(child, ast.stmt):
                    yield from _statements([child])
                else:  # an except handler or a match case: their statements
                    yield from _statements(child.body)


@functools.cache
def _imports(path: Path) -> tuple[tuple[str, int], ...]:
    """Every module ``path`` imports (absolute, relative ones resolved), with its line; each
    file is parsed once per process (the layer and the language-side tests read the same)."""
    return tuple(_read_imports(path))


def _read_imports(path: Path) -> Iterator[tuple[str, int]]:
    module = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            yield base, node.lineno
            for alias in node.names:  # ``from voxflow import errors`` imports voxflow.errors
                yield f"{base}.{alias.name}", node.lineno


def _is_package(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


@functools.cache
def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs inside voxflow/, each with where it happens."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _package(_module_name(path))
        for target, line in _imports(path):
            if not target.startswith("voxflow."):
                continue
            dst = _package(target)
            if dst != src and src != "__init__" and _is_package(dst):
                where = f"{path.relative_to(ROOT)}:{line}"
                edges.setdefault((src, dst), []).append(where)
    return edges


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle_through_three_packages() -> None:
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "d")}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({("a", "b"), ("b", "c")}) == []


def test_function_level_imports_are_edges() -> None:
    edges = package_edges()
    # telephony imports the media path inside a function (first call), and it still counts
    assert ("telephony", "media") in edges
    assert any("voxflow/telephony/app.py" in w for w in edges[("telephony", "media")])


def test_no_package_level_import_cycle() -> None:
    edges = package_edges()
    found = cycles(set(edges))
    detail = [
        f"{a} -> {b}: {', '.join(edges[(a, b)][:3])}"
        for cycle in found
        for a, b in sorted(edges)
        if a in cycle and b in cycle
    ]
    assert not found, (
        "package cycles: " + "; ".join(map(" <-> ".join, found)) + "\n" + "\n".join(detail)
    )


def test_every_package_has_a_layer() -> None:
    layered = set().union(*LAYERS)
    packages = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name != "__init__.py")
    }
    assert packages - layered == set(), "add the new package to LAYERS and docs/architecture.md"
    assert layered - packages == set()


def test_imports_point_down_the_layers() -> None:
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    wrong = [
        f"{a} (layer {layer[a]}) imports {b} (layer {layer[b]}) at {edges[0]}"
        for (a, b), edges in sorted(package_edges().items())
        if layer[b] >= layer[a] or b in FORBIDDEN.get(a, set())
    ]
    assert wrong == []


@pytest.mark.parametrize("package", sorted(LANGUAGE_SIDE))
def test_the_language_side_never_imports_the_telephony_stack(package: str) -> None:
    paths = [PACKAGE / f"{package}.py"] if _is_file(package) else (PACKAGE / package).rglob("*.py")
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in paths
        for name, line in _imports(path)
        if name.split(".")[0] in TELEPHONY_STACK
    ]
    assert found == []


def _is_file(package: str) -> bool:
    return (PACKAGE / f"{package}.py").is_file()


_PROBE = """
import json, sys
STACK = set({stack!r})

def loaded(step):
    print("LOADED", json.dumps([step, sorted(STACK & set(sys.modules))]))

import voxflow
loaded("import voxflow")
import voxflow.syntax, voxflow.compiler
loaded("import voxflow.syntax, voxflow.compiler")
from voxflow.cli.main import cli
for command in ("lint", "validate"):
    try:
        cli([command, "flows/main_ivr.flow"], standalone_mode=False)
    except SystemExit:
        pass
    loaded("voxflow " + command + " flows/main_ivr.flow")
from voxflow import VoxtraApp, CallSession, AudioChunk, BargeIn, AriNotFound
assert set(voxflow.__all__) <= set(dir(voxflow))
assert all(getattr(voxflow, name) is not None for name in voxflow.__all__)
loaded("the seed names")
"""


def test_the_language_side_lint_and_validate_never_load_the_telephony_stack() -> None:
    """One fresh interpreter, step by step: ``import voxflow`` (lazy), the language packages,
    ``voxflow lint`` and ``voxflow validate`` load none of asyncio, aiohttp, websockets; the
    seed's names still import from ``voxflow`` (and then the stack loads)."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(stack=sorted(TELEPHONY_STACK))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=True,
    ).stdout
    steps = dict(json.loads(line[7:]) for line in out.splitlines() if line.startswith("LOADED "))
    assert "1 file clean" in out and "1 file valid" in out, out
    assert steps == {
        "import voxflow": [],
        "import voxflow.syntax, voxflow.compiler": [],
        "voxflow lint flows/main_ivr.flow": [],
        "voxflow validate flows/main_ivr.flow": [],
        "the seed names": ["aiohttp", "asyncio", "websockets"],
    }


_AGENT_PROBE = """
from voxflow.telephony import agents
import voxflow.telephony.app
assert agents.registered_agent_factory() is None  # telephony alone: no agent layer
import voxflow
voxflow.VoxtraApp  # the facade is a composition root: it loads the agent layer
from voxflow.agent.call_agent import create_agent
assert agents.registered_agent_factory() is create_agent
print("WIRED")
"""


def test_the_agent_layer_wires_call_agent_from_above_telephony() -> None:
    """Telephony never imports the agent (it sits above); importing ``voxflow.agent`` (as the
    runtime and the ``voxflow`` facade do) registers ``create_agent`` behind ``call.agent``."""
    out = subprocess.run(
        [sys.executable, "-c", _AGENT_PROBE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    ).stdout
    assert out.strip().endswith("WIRED"), out
    assert not [edge for edge in package_edges() if edge[0] == "telephony" and edge[1] == "agent"]

"""What each command imports: ``voxflow --help`` lists the commands without importing them (it
imported every command's module, ``voxflow.cluster`` with Redis, the telephony stack and numpy
among them), ``voxflow run --help`` loads no runtime (it loaded all of it), no other
``--help`` loads the compiler (``compile``, ``graph``, ``test`` and ``replay`` did), ``voxflow fmt``
does not load the compiler, ``validate``/``lint`` load no telephony, media or Redis, and
``voxflow test`` (virtual time) loads neither the ARI client, the media path nor aiohttp.
Checked in a fresh process through ``sys.modules``; speed is measured in ``bench/startup.py``."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voxflow.cli import main as cli_main
from voxflow.cli.main import _COMMANDS, SHORT_HELP

ROOT = Path(__file__).resolve().parents[2]
FLOW = str(ROOT / "flows" / "main_ivr.flow")

_PROBE = """
import gc, json, runpy, sys
sys.argv = ["voxflow", *sys.argv[1:]]
try:
    runpy.run_module("voxflow", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
gc_state = {"frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules), "gc": gc_state}))
"""

_RUNTIME = ("redis", "numpy", "pocketsphinx", "aiohttp", "websockets", "asyncio")
_RUNTIME_OURS = ("voxflow.telephony", "voxflow.media", "voxflow.cluster", "voxflow.runtime")
_COMPILER = ("voxflow.compiler", "voxflow.ir", "voxflow.check", "pydantic", "jsonschema")


def _loaded(*args: str) -> tuple[int, set[str]]:
    report = _report(*args)
    return report["code"], set(report["modules"])


def _report(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout.rstrip("\n").rsplit("\n", 1)[-1])
    return report


def _hits(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_help_lines_are_the_commands_own_first_sentences() -> None:
    assert set(SHORT_HELP) == set(_COMMANDS)
    for name, load in _COMMANDS.items():
        command = load()
        assert not command.hidden, name
        assert SHORT_HELP[name] == command.get_short_help_str(limit=1000), name


def test_help_imports_no_command() -> None:
    code, modules = _loaded("--help")
    assert code == 0
    assert _hits(modules, (*_RUNTIME, *_RUNTIME_OURS, *_COMPILER, "voxflow.syntax", "lark")) == []
    assert not any(m.startswith("voxflow.cli.") for m in modules - {"voxflow.cli.main"})


def test_run_help_imports_no_runtime() -> None:
    """``voxflow run --help`` (and a usage error) reads the options from
    ``voxflow.cli.run_command``; ``voxflow.cli.run`` loads the runtime only when a run starts."""
    for args in (("run", "--help"), ("run", "--no-such-option")):
        code, modules = _loaded(*args)
        assert code == (0 if args[-1] == "--help" else 2)
        heavy = (*_RUNTIME, *_RUNTIME_OURS, *_COMPILER, "voxflow.syntax", "lark", "voxflow.ai")
        assert _hits(modules, heavy) == []
        assert _hits(modules, ("voxflow.cli.run", "voxflow.sandbox", "voxflow.testing")) == []
        assert "voxflow.cli.run_command" in modules  # the probe reached the command


@pytest.mark.parametrize("command", ["validate", "lint"])
def test_checking_help_loads_no_compiler(command: str) -> None:
    """``validate --help``/``lint --help`` import the compiler only when there is a flow to
    check (they loaded it, pydantic and Lark included, for the help text)."""
    code, modules = _loaded(command, "--help")
    assert code == 0
    assert "voxflow.cli.diag" in modules  # the probe reached the command
    assert _hits(modules, (*_RUNTIME, *_RUNTIME_OURS, *_COMPILER, "voxflow.syntax", "lark")) == []


@pytest.mark.parametrize(
    ("command", "module"),
    [
        ("compile", "voxflow.cli.lang"),
        ("graph", "voxflow.cli.graph"),
        ("test", "voxflow.cli.testing"),
        ("replay", "voxflow.cli.testing"),
    ],
)
def test_help_of_a_command_over_flows_loads_no_compiler(command: str, module: str) -> None:
    """``compile``/``graph``/``test``/``replay --help`` (and a usage error) import their work
    (the compiler, the drawing, the scenario runner and the runtime) only when they run; they
    loaded it, pydantic and Lark included, for the help text."""
    for args in ((command, "--help"), (command, "--no-such-option")):
        code, modules = _loaded(*args)
        assert code == (0 if args[-1] == "--help" else 2)
        assert module in modules  # the probe reached the command
        heavy = (*_RUNTIME, *_RUNTIME_OURS, *_COMPILER, "voxflow.syntax", "lark", "voxflow.ai")
        assert _hits(modules, (*heavy, "voxflow.testing", "voxflow.viz.render", "yaml")) == []


@pytest.mark.parametrize("command", ["validate", "lint"])
def test_checking_loads_no_runtime(command: str) -> None:
    code, modules = _loaded(command, FLOW)
    assert code == 0
    assert "voxflow.compiler" in modules  # the probe ran the command
    assert _hits(modules, (*_RUNTIME, *_RUNTIME_OURS)) == []
    assert "jsonschema" not in modules  # main_ivr has no tool argument with constraints
    assert "jinja2" not in modules  # its templates are plain {{ name }}: the scan reads them


def test_a_template_with_statements_is_parsed_by_jinja2(tmp_path: Path) -> None:
    """``voxflow.check.templates_jinja`` (and jinja2) load for the first template the plain
    scan cannot read, and still find its errors."""
    flow = tmp_path / "t.flow"
    flow.write_text(
        'flow t:\n    answers "100"\n\nstate start:\n'
        '    say "{% for i in range(3) %}{{ i }}"\n    hangup\n',
        encoding="utf-8",
    )
    code, modules = _loaded("lint", str(flow))
    assert code == 1  # the for loop is not closed
    assert {"jinja2", "voxflow.check.templates_jinja"} <= modules


def test_fmt_loads_no_compiler() -> None:
    code, modules = _loaded("fmt", "--check", FLOW)
    assert code == 0
    assert "voxflow.fmt" in modules
    assert _hits(modules, (*_RUNTIME, *_RUNTIME_OURS, *_COMPILER)) == []


def test_scenario_tests_load_no_telephony_stack() -> None:
    scenario = str(ROOT / "flows" / "tests" / "main_ivr.test.yaml")
    code, modules = _loaded("test", scenario)
    assert code == 0
    assert "voxflow.testing" in modules
    heavy = ("numpy", "pocketsphinx", "redis", "aiohttp", "websockets", "msgspec")
    ours = ("voxflow.ari", "voxflow.media", "voxflow.cluster", "voxflow.telephony.session")
    assert _hits(modules, (*heavy, *ours, "voxflow.telephony.app")) == []
    # main_ivr declares no agent tool: jsonschema loads with the first tool schema checked
    assert _hits(modules, ("jsonschema",)) == []


def test_the_voxflow_process_freezes_what_a_command_imported() -> None:
    """``voxflow validate`` imports the compiler with the GC paused, then freezes it (never
    rescanned); the GC runs again afterwards. ``cli.main.loading`` does it for each command's
    module and for what a command imports only when it runs."""
    report = _report("validate", FLOW)
    assert report["code"] == 0
    assert report["gc"]["enabled"]
    # the compiler's classes, schemas and functions (imported when the command runs, not for
    # --help) are frozen too: ~39,000 objects more than validate --help freezes (the same
    # number before, when the compiler was imported with the GC running)
    helped = _report("validate", "--help")
    assert report["gc"]["frozen"] > helped["gc"]["frozen"] + 20_000


def test_a_caller_of_cli_keeps_its_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a process that only calls ``cli`` (a test with CliRunner), loading a command pauses
    the GC and restores it, and freezes nothing."""
    monkeypatch.setitem(cli_main._PROCESS, "own", False)
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    with cli_main.loading():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen

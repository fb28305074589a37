"""Find scenario files, run them, report results, coverage and JUnit XML.

``voxflow test`` is :func:`run_paths` plus :func:`format_report`. Paths may be directories
(every ``*.test.yaml``/``*.test.yml`` under them, and every ``.flow`` for coverage), scenario
files, or ``.flow`` files (the scenario files next to them or in a ``tests/`` folder beside).
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from voxflow.compiler.frontdoor import compile_file, load_flow
from voxflow.errors import ConfigError, FlowCheckError
from voxflow.ir import models as ir
from voxflow.runtime.hangup_work import DEFAULT_HANGUP_TIMEOUT
from voxflow.runtime.redaction import without_values
from voxflow.sourcefile import NOT_REGULAR, read_problem, walk_files
from voxflow.testing.coverage import FlowCoverage
from voxflow.testing.expect import check_expectations
from voxflow.testing.scenario import Scenario, ScenarioFile, load_scenario_file
from voxflow.testing.sim import SimResult, run_scenario
from voxflow.testing.static import scenario_problems

__all__ = [
    "ScenarioOutcome",
    "TestRun",
    "discover",
    "format_failure",
    "format_report",
    "junit_xml",
    "run_paths",
]

_SUFFIXES = (".test.yaml", ".test.yml")


@dataclass
class ScenarioOutcome:
    """One scenario's result. ``failures`` is empty when it passed."""

    file: str
    scenario: Scenario
    flow: str
    failures: list[str]
    result: SimResult | None
    seconds: float
    step: int = -1

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class TestRun:
    """Everything ``voxflow test`` found and ran."""

    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    coverage: dict[str, FlowCoverage] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Files a directory walk passed over, with why (a FIFO named ``*.test.yaml``)."""

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.passed)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.passed) + len(self.errors)


def _is_scenario_file(p: Path) -> bool:
    return p.name.endswith(_SUFFIXES)


def _wanted(p: Path) -> bool:
    return _is_scenario_file(p) or p.suffix == ".flow"


def discover(
    paths: Iterable[str | os.PathLike[str]], on_skip: Callable[[str], None] | None = None
) -> tuple[list[Path], list[Path]]:
    """(scenario files, flow files) named by ``paths``; raises ConfigError for a missing path.
    A file found in a directory that is not a regular file (a FIFO) is never opened: ``on_skip``
    gets ``skipped PATH: why``."""
    scen: list[Path] = []
    flows: list[Path] = []
    skip = on_skip or (lambda _: None)
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in walk_files(p, _wanted, skip):
                (scen if _is_scenario_file(f) else flows).append(f)
        elif p.is_file() and p.suffix == ".flow":
            flows.append(p)
            for d in (p.parent, p.parent / "tests"):
                if d.is_dir():
                    for f in sorted(d.iterdir()):
                        if not _is_scenario_file(f) or f.is_dir():
                            continue
                        if not f.is_file():
                            skip(f"skipped {f}: {NOT_REGULAR}")
                        elif _names_flow(f, p):
                            scen.append(f)
        elif p.is_file():
            scen.append(p)
        elif p.exists():  # a FIFO, device or socket: say what it is (never read it)
            raise ConfigError(read_problem(p) or f"not a regular file: '{raw}'")
        else:
            raise ConfigError(f"no such file or directory: '{raw}'")
    return _dedupe(scen), _dedupe(flows)


def _names_flow(scenario_file: Path, flow: Path) -> bool:
    try:
        sf = load_scenario_file(scenario_file)
    except ConfigError:
        return True  # let the run report the broken file
    return Path(sf.flow_path).resolve() == flow.resolve()


def _dedupe(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out = []
    for p in paths:
        k = p.resolve()
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def _display(p: str | Path) -> str:
    text = os.path.normpath(os.fspath(p))
    try:
        rel = os.path.relpath(text)
    except ValueError:  # pragma: no cover - other drive on Windows
        return text
    return rel if not rel.startswith("..") else text


def selected(sc: Scenario, pattern: str | None) -> bool:
    """``-k PATTERN``: the scenario's name contains ``pattern`` (case-insensitive)."""
    return pattern is None or pattern.casefold() in sc.name.casefold()


def run_file(
    sf: ScenarioFile,
    flow: ir.Flow,
    run: TestRun,
    cov: FlowCoverage,
    select: str | None = None,
    hangup_timeout: float = DEFAULT_HANGUP_TIMEOUT,
    max_steps: int = 1000,
) -> None:
    """Run every (selected) scenario of one file, adding outcomes and coverage to ``run``."""
    for sc in sf.scenarios:
        if not selected(sc, select):
            continue
        t0 = time.perf_counter()
        static = scenario_problems(flow, sc, sf.defaults, file=_display(sf.path))
        res: SimResult | None = None
        if static:
            failures, step = static, -1
        else:
            res = run_scenario(
                flow, sc, sf.defaults, hangup_timeout=hangup_timeout, max_steps=max_steps
            )
            failures = [p for _, p in res.problems]
            step = res.problems[0][0] if res.problems else res.steps_done - 1
            failures += check_expectations(sc.expect, res)
            cov.add(res.hits)
        run.outcomes.append(
            ScenarioOutcome(
                _display(sf.path), sc, flow.name, failures, res, time.perf_counter() - t0, step
            )
        )


def run_paths(
    paths: Iterable[str | os.PathLike[str]],
    select: str | None = None,
    *,
    hangup_timeout: float = DEFAULT_HANGUP_TIMEOUT,
    max_steps: int = 1000,
) -> TestRun:
    """Discover and run (only scenarios whose name contains ``select``, when given); never
    raises for bad scenario or flow files (they become errors). ``hangup_timeout`` (the
    ``on hangup`` bodies' ceiling) and ``max_steps`` (the step budget between two waits): as
    ``voxflow run``'s settings (:data:`voxflow.runtime.config.CALL_SETTINGS`)."""
    run = TestRun()
    scen_files, flow_files = discover(paths, run.skipped.append)
    flows: dict[str, ir.Flow | None] = {}
    for path in scen_files:
        try:
            sf = load_scenario_file(path)
        except ConfigError as exc:
            run.errors.append(str(exc))
            continue
        key = str(Path(sf.flow_path).resolve())
        if key not in flows and not Path(sf.flow_path).exists():
            run.errors.append(
                f"{_display(path)}:{sf.flow_line}: flow: no such file {sf.flow} (looked for "
                f"{_display(sf.flow_path)}; the path is relative to the scenario file)"
            )
            continue
        if key not in flows:
            try:
                flows[key] = load_flow(sf.flow_path)
            except FlowCheckError as exc:
                flows[key] = None
                run.errors.append(f"{_display(path)}: {exc}")
        flow = flows[key]
        if flow is None:
            continue
        cov = run.coverage.get(key)
        if cov is None:
            cov = run.coverage[key] = FlowCoverage(_display(sf.flow_path), flow)
        run_file(sf, flow, run, cov, select, hangup_timeout, max_steps)
    _untested(run, flow_files, flows)
    return run


def _untested(run: TestRun, flow_files: list[Path], seen: dict[str, ir.Flow | None]) -> None:
    """Flows under the paths with no scenario (library files included by others excepted)."""
    compiled: dict[str, ir.Flow] = {k: f for k, f in seen.items() if f is not None}
    for p in flow_files:
        key = str(p.resolve())
        if key in compiled:
            continue
        result = compile_file(p)
        if result.flow is not None and result.flow.states:
            compiled[key] = result.flow
    included = {str(Path(inc).resolve()) for f in compiled.values() for inc in f.includes}
    for p in flow_files:
        key = str(p.resolve())
        if key in seen or key in included or key not in compiled:
            continue
        run.untested.append(_display(p))
        run.coverage[key] = FlowCoverage(_display(p), compiled[key])


# ---------------------------------------------------------------- reports


def _masked(o: ScenarioOutcome, text: str) -> str:
    """``text`` without the values of the flow's sensitive variables (the printed form only:
    expectations compared the real values)."""
    return without_values(text, o.result.secrets) if o.result is not None else text


def _step(o: ScenarioOutcome, i: int) -> str:
    a = o.scenario.steps[i]
    if o.result is not None and i in o.result.masked:  # keys or words into a sensitive variable
        a = a.model_copy(update={"value": o.result.masked[i]})
    return f"{a.describe()} (line {a.line})"


def format_failure(o: ScenarioOutcome, *, trace_lines: int = 60) -> str:
    """The scenario, the step where it went wrong, what failed and the call's trace; values of
    sensitive variables are ``<redacted>``, keys pressed into one ``*``."""
    sc = o.scenario
    lines = [f"  FAIL  {sc.name}", f"        scenario: {o.file}:{sc.line} ({o.flow})"]
    if 0 <= o.step < len(sc.steps):
        lines.append(f"        step {o.step + 1}: {_step(o, o.step)}")
    elif sc.steps:
        lines.append(
            f"        after step {len(sc.steps)} (the last): {_step(o, len(sc.steps) - 1)}"
        )
    else:
        lines.append("        step: (no caller steps)")
    for f in o.failures:
        lines.append(f"        - {f}")
    if o.result is not None:
        lines.append("        trace:")
        trace = o.result.trace
        if len(trace) > trace_lines:
            lines.append(f"          ... ({len(trace) - trace_lines} earlier lines)")
            trace = trace[-trace_lines:]
        lines.extend("          " + t.render() for t in trace)
    return _masked(o, "\n".join(lines))


def format_report(
    run: TestRun,
    *,
    coverage: bool = False,
    min_coverage: float | None = None,
    verbose: bool = False,
) -> tuple[str, bool]:
    """The text ``voxflow test`` prints and whether the run is a success."""
    out: list[str] = [f"warning: {s}" for s in run.skipped]
    ok = True
    current = None
    for o in run.outcomes:
        if o.file != current:
            current = o.file
            out.append(o.file)
        if o.passed:
            end = o.result.ended_at if o.result and o.result.ended_at is not None else 0.0
            out.append(f"  ok    {o.scenario.name} ({end:.1f}s of call)")
            if verbose and o.result is not None:
                out.extend(_masked(o, "          " + t.render()) for t in o.result.trace)
        else:
            ok = False
            out.append(format_failure(o))
    for e in run.errors:
        ok = False
        out.append(f"error: {e}")
    if coverage or min_coverage is not None:
        out.append("coverage (gate: transitions):")
        for cov in sorted(run.coverage.values(), key=lambda c: c.path):
            pct = cov.transition_percent
            below = min_coverage is not None and pct + 1e-9 < min_coverage
            mark = "  BELOW" if below else ""
            note = " (no scenarios)" if cov.scenarios == 0 else ""
            out.append(f"  {cov.flow.name} ({cov.path}){note}: {cov.summary()}{mark}")
            if below:
                ok = False
            if coverage:
                out.extend(f"      never taken: {m}" for m in cov.missing())
        if min_coverage is not None and any(
            c.transition_percent + 1e-9 < min_coverage for c in run.coverage.values()
        ):
            out.append(f"coverage below --min-coverage {min_coverage:g}%")
    elif run.untested:
        out.extend(f"note: no scenarios for {p}" for p in run.untested)
    out.append(f"{run.passed} passed, {run.failed} failed")
    return "\n".join(out), ok and run.failed == 0


def junit_xml(run: TestRun) -> bytes:
    """JUnit XML: one ``testsuite`` per scenario file, one ``testcase`` per scenario."""
    root = ET.Element("testsuites", name="voxflow", tests=str(len(run.outcomes) + len(run.errors)))
    suites: dict[str, ET.Element] = {}
    for o in run.outcomes:
        suite = suites.get(o.file)
        if suite is None:
            suite = suites[o.file] = ET.SubElement(root, "testsuite", name=o.file)
        case = ET.SubElement(
            suite, "testcase", name=o.scenario.name, classname=o.flow, time=f"{o.seconds:.4f}"
        )
        case.set("file", o.file)
        case.set("line", str(o.scenario.line))
        if not o.passed:
            message = _masked(o, o.failures[0])[:500]
            fail = ET.SubElement(case, "failure", message=message, type="expectation")
            fail.text = format_failure(o)
    if run.errors:
        suite = ET.SubElement(root, "testsuite", name="errors")
        for i, e in enumerate(run.errors, start=1):
            case = ET.SubElement(suite, "testcase", name=f"load error {i}", classname="voxflow")
            err = ET.SubElement(case, "error", message=e.splitlines()[0][:500], type="load")
            err.text = e
    for suite in root.iter("testsuite"):
        cases = list(suite.iter("testcase"))
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    root.set("failures", str(sum(1 for o in run.outcomes if not o.passed)))
    root.set("errors", str(len(run.errors)))
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data

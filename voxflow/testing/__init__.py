"""voxflow.testing: flow scenarios run in virtual time on the pure step function.

``run_paths(["flows"])`` finds ``*.test.yaml`` files, simulates each scenario (no sockets, no
sleeping), checks its expectations and measures coverage; ``run_scenario(flow, scenario)`` runs
one call. The scenario format is documented in ``docs/testing.md``.
"""

from __future__ import annotations

from voxflow.testing.coverage import FlowCoverage
from voxflow.testing.expect import check_expectations
from voxflow.testing.runner import TestRun, format_report, junit_xml, run_paths
from voxflow.testing.scenario import (
    Scenario,
    ScenarioFile,
    load_scenario_file,
    parse_scenario_text,
)
from voxflow.testing.sim import SimResult, run_scenario

__all__ = [
    "FlowCoverage",
    "Scenario",
    "ScenarioFile",
    "SimResult",
    "TestRun",
    "check_expectations",
    "format_report",
    "junit_xml",
    "load_scenario_file",
    "parse_scenario_text",
    "run_paths",
    "run_scenario",
]

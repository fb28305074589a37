"""Check a scenario against its flow before running it: names it uses and values it mocks.

A scenario that names a state the flow does not have (``expect.states: [hourz]``) or mocks an
agent tool with arguments of the wrong type could otherwise pass or fail for the wrong reason;
these checks say so with the scenario's line and a did-you-mean.
"""

from __future__ import annotations

import difflib
from typing import Any

from voxflow.ir import models as ir
from voxflow.ir import steps as irs
from voxflow.ir.prompts import iter_models
from voxflow.testing.scenario import AgentMock, Expect, Scenario, ScenarioDefaults

__all__ = ["checks_nothing", "scenario_problems", "state_names", "type_problem"]


def state_names(flow: ir.Flow) -> set[str]:
    """Every state a scenario may name: the flow's, and ``subflow.state`` for subflows."""
    names = set(flow.states)
    for sub in flow.subflows.values():
        names.update(f"{sub.name}.{st}" for st in sub.states)
    return names


def _known(name: str, names: set[str]) -> bool:
    return name in names or any(n.split(".", 1)[-1] == name for n in names if "." in n)


def _unknown_state(where: str, name: str, names: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{where}: no such state '{name}'{hint}"


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "bool": (bool,),
    "duration": (int, float, str),
    "list": (list, tuple),
    "map": (dict,),
    "null": (type(None),),
}


def type_problem(name: str, declared: str, value: Any) -> str | None:
    """Why ``value`` cannot be an argument of type ``declared``, or None when it can."""
    kinds = _PYTHON_TYPES.get(declared)
    if kinds is None:  # any
        return None
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if ok:
        return None
    return f"'{name}' is declared {declared}, got {type(value).__name__} {value!r}"


def _args_problems(
    what: str, params: tuple[irs.ToolArg, ...] | tuple[irs.ActionParam, ...], args: dict[str, Any]
) -> list[str]:
    declared = {p.name: p for p in params}
    out = []
    for key, value in args.items():
        p = declared.get(key)
        if p is None:
            close = difflib.get_close_matches(key, list(declared), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            allowed = ", ".join(declared) or "none"
            out.append(f"{what}: no argument '{key}'{hint}; it takes: {allowed}")
            continue
        problem = type_problem(key, p.type, value)
        if problem is not None:
            out.append(f"{what}: {problem}")
    out += [
        f"{what}: required argument '{p.name}' is missing"
        for p in params
        if p.required and p.name not in args
    ]
    return out


_AgentIndex = tuple[dict[str, irs.Tool], dict[str, irs.AgentAction]]
_last_index: list[tuple[ir.Flow, _AgentIndex]] = []


def _agent_index(flow: ir.Flow) -> _AgentIndex:
    """The tools and actions of every agent step of ``flow`` by name. Walking the whole IR
    is the costliest part of a scenario's static checks, and a file's scenarios share one
    flow: the last flow's index is kept."""
    if _last_index and _last_index[0][0] is flow:
        return _last_index[0][1]
    steps = [m for m in iter_models(flow) if isinstance(m, irs.AgentStep)]
    tools = {t.name: t for s in steps for t in s.tools}
    actions = {a.name: a for s in steps for a in s.actions}
    _last_index[:] = [(flow, (tools, actions))]
    return tools, actions


def _agent_problems(flow: ir.Flow, mocks: tuple[AgentMock, ...], file: str) -> list[str]:
    if not mocks:
        return []
    tools, actions = _agent_index(flow)
    out = []
    for m in mocks:
        at = f"{file}:{m.line}: mocks.agent"
        if m.tool is not None and m.tool in tools:
            out += _args_problems(f"{at}: tool '{m.tool}'", tools[m.tool].args, m.args)
        for turn in m.turns:
            if turn.action is not None and turn.action in actions:
                act = actions[turn.action]
                out += _args_problems(f"{at}: action '{turn.action}'", act.args, turn.args)
    return out


def scenario_problems(
    flow: ir.Flow, sc: Scenario, defaults: ScenarioDefaults, *, file: str = ""
) -> list[str]:
    """What is wrong with ``sc`` as a test of ``flow``, before it runs (empty when nothing)."""
    names = state_names(flow)
    exp = sc.expect
    at = f"{file}:{sc.line}: expect"
    out = [
        _unknown_state(f"{at}.{key}", name, names)
        for key, values in (("states", exp.states or ()), ("not_visited", exp.not_visited or ()))
        for name in values
        if not _known(name, names)
    ]
    if exp.ended is not None and exp.ended.state is not None:
        if not _known(exp.ended.state, names):
            out.append(_unknown_state(f"{at}.ended.state", exp.ended.state, names))
    if checks_nothing(exp):
        out.append(
            f"{at}: checks nothing: a scenario must say what holds after the call "
            "(states, said, ended, transfer, queue, variables...)"
        )
    out += _agent_problems(flow, sc.mocks.agent + defaults.mocks.agent, file)
    return out


_CHECKS = ("said", "not_said", "played", "states", "not_visited", "transfer", "queue", "dialed",
           "http", "requests", "recording", "ended")  # fmt: skip


def checks_nothing(exp: Expect) -> bool:
    """True when ``exp`` asserts nothing (no ``expect``, ``expect: {}``, only ``ignore_case``,
    empty maps, or ``not_said: []``/``not_visited: []``, which forbid nothing): such a scenario
    would pass whatever the flow did."""
    if exp.variables or exp.metadata or exp.not_said or exp.not_visited:
        return False
    return all(getattr(exp, name) is None for name in _CHECKS if not name.startswith("not_"))

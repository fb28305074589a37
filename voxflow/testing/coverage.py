"""Coverage of a flow by its scenarios: states, transitions and outcome branches.

The universe comes from :func:`voxflow.ir.flowmap.build_flowmap`, less what is written in a
file shipped with voxflow (``voxflow:`` includes: the user cannot change them, and their
arguments can make parts of them unreachable); what ran comes from the simulator's
:class:`~voxflow.testing.sim.Hit` records. ``--min-coverage`` gates on transitions.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from voxflow.ir import models as ir
from voxflow.ir.flowmap import Branch, Edge, FlowMap, build_flowmap
from voxflow.syntax.parser import stdlib_dir
from voxflow.testing.sim import Hit

__all__ = ["FlowCoverage", "percent"]


def percent(done: int, total: int) -> float:
    """``done/total`` in percent; 100 when there is nothing to cover."""
    return 100.0 if total == 0 else 100.0 * done / total


@functools.lru_cache(maxsize=256)
def _shipped(file: str) -> bool:
    """Whether ``file`` is one of voxflow's shipped flows (``voxflow/stdlib``)."""
    root = os.path.realpath(stdlib_dir())
    return os.path.commonpath([os.path.realpath(file), root]) == root


@dataclass
class FlowCoverage:
    """What a flow's scenarios exercised, accumulated over scenarios with :meth:`add`."""

    path: str
    flow: ir.Flow
    fm: FlowMap = field(init=False)
    scenarios: int = 0
    hits: set[Hit] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.fm = build_flowmap(self.flow)

    # ------------------------------------------------------------ what is counted

    def _states(self) -> dict[str, ir.State]:
        return {k: st for k, st in self.fm.states.items() if not _shipped(st.span.file)}

    def _edges(self) -> list[Edge]:
        return [e for e in self.fm.required_edges() if not _shipped(e.file)]

    def _branches(self) -> list[Branch]:
        states = self._states()
        return [b for b in self.fm.branches.values() if b.state in states]

    def add(self, hits: set[Hit]) -> None:
        """Merge one scenario's hits."""
        self.scenarios += 1
        self.hits |= hits

    def _hit(self, kind: str) -> set[tuple[str, ...]]:
        return {h.key for h in self.hits if h.kind == kind}

    # ------------------------------------------------------------ numbers

    def states(self) -> tuple[int, int]:
        hit, states = self._hit("state"), self._states()
        return sum(1 for s in states if (s,) in hit), len(states)

    def transitions(self) -> tuple[int, int]:
        hit = self._hit("transition")
        req = self._edges()
        return sum(1 for e in req if e.key in hit), len(req)

    def branches(self) -> tuple[int, int]:
        hit = self._hit("branch")
        req = self._branches()
        return sum(1 for b in req if b.key in hit), len(req)

    @property
    def transition_percent(self) -> float:
        return percent(*self.transitions())

    # ------------------------------------------------------------ what is missing

    def missing(self) -> list[str]:
        """Human-readable list of what no scenario took, in source order per kind."""
        out: list[str] = []
        hs, ht, hb = self._hit("state"), self._hit("transition"), self._hit("branch")
        for name, st in self._states().items():
            if (name,) not in hs:
                out.append(f"state {name} (line {st.span.line})")
        for e in self._edges():
            if e.key not in ht:
                label = f" --{e.label}-->" if e.label else " -->"
                out.append(f"transition {e.src}{label} {e.target} (line {e.line})")
        for b in self._branches():
            if b.key not in hb:
                where = f" at {b.step.split('@')[0]}" if b.step else ""
                out.append(f"branch {b.state}{where}: {b.outcome} (line {b.line})")
        return out

    def summary(self) -> str:
        """``states 9/9 (100%), transitions 24/26 (92.3%), branches 40/50 (80.0%)``."""
        parts = []
        for name, (done, total) in (
            ("states", self.states()),
            ("transitions", self.transitions()),
            ("branches", self.branches()),
        ):
            parts.append(f"{name} {done}/{total} ({percent(done, total):.1f}%)")
        return ", ".join(parts)

"""Graph algorithms the rules share: reachability, definite assignment, did-you-mean.

The control-flow graph is tiny plain data: node ``i`` has ``gen[i]`` (names it assigns),
``uses[i]`` (names it reads, each with a span) and ``succ[i]``. Sets of names are bit masks
(Python ints), so a forward must-analysis over 10,000 states stays linear in practice.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from voxflow.source import Span

__all__ = ["CFG", "components", "did_you_mean", "reachable", "suggest_hint"]


def did_you_mean(name: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The closest candidate to ``name`` (difflib ratio >= ``cutoff``), or None."""
    pool = sorted(set(candidates) - {name})
    if not pool:
        return None
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered:
        return lowered[name.lower()]
    best = difflib.get_close_matches(name, pool, n=1, cutoff=cutoff)
    return best[0] if best else None


def suggest_hint(name: str, candidates: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest candidate, or None."""
    best = did_you_mean(name, candidates)
    return f"did you mean '{best}'?" if best else None


def reachable(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reachable from ``start`` following ``edges`` (start nodes included)."""
    seen = set(start)
    todo = deque(seen)
    while todo:
        node = todo.popleft()
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def components(edges: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Strongly connected component id per node (iterative Tarjan; linear time)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    comp: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    next_comp = 0
    for root in list(edges):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, list(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, list(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                cid = next_comp
                next_comp += 1
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp[member] = cid
                    if member == node:
                        break
    return comp


@dataclass
class CFG:
    """A control-flow graph for definite-assignment analysis."""

    gen: list[int] = field(default_factory=list)
    uses: list[list[tuple[str, Span, str]]] = field(default_factory=list)
    succ: list[list[int]] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)

    def bit(self, name: str) -> int:
        """The bit of ``name`` (allocated on first use)."""
        idx = self.names.get(name)
        if idx is None:
            idx = self.names[name] = len(self.names)
        return 1 << idx

    def node(self, assigns: Iterable[str] = (), uses: Iterable[tuple[str, Span, str]] = ()) -> int:
        """Add a node that reads ``uses`` (name, span, file) and then assigns ``assigns``."""
        mask = 0
        for name in assigns:
            mask |= self.bit(name)
        self.gen.append(mask)
        self.uses.append(list(uses))
        self.succ.append([])
        return len(self.gen) - 1

    def edge(self, a: int, b: int) -> None:
        """Control may flow from ``a`` to ``b``."""
        self.succ[a].append(b)

    def maybe_unset(self, entry: int, initially: Iterable[str] = ()) -> list[tuple[str, Span, str]]:
        """Uses of names that are not assigned on every path from ``entry`` to the use.

        Unreachable nodes are ignored (they are reported by the reachability rule instead).
        """
        n = len(self.gen)
        start = 0
        for name in initially:
            start |= self.bit(name)
        in_sets: list[int | None] = [None] * n
        in_sets[entry] = start
        todo = deque([entry])
        queued = [False] * n
        queued[entry] = True
        while todo:
            i = todo.popleft()
            queued[i] = False
            cur = in_sets[i]
            assert cur is not None
            out = cur | self.gen[i]
            for j in self.succ[i]:
                old = in_sets[j]
                new = out if old is None else (old & out)
                if old != new:
                    in_sets[j] = new
                    if not queued[j]:
                        queued[j] = True
                        todo.append(j)
        found: list[tuple[str, Span, str]] = []
        for i in range(n):
            have = in_sets[i]
            if have is None:
                continue
            for name, span, file in self.uses[i]:
                bit = self.names.get(name)
                if bit is not None and not (have >> bit) & 1:
                    found.append((name, span, file))
        return found

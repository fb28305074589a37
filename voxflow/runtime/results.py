"""The outcomes of the most recent calls, bounded (a worker's memory must stay flat).

:class:`RecentResults` is a mapping call id -> ``End`` that keeps the newest ``limit`` entries
and drops the oldest; ``total`` counts every call ever stored. The full record of a call goes to
its trace and the ``call.ended`` webhook; this mapping is for looking up recent calls only.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator, MutableMapping

from voxflow.runtime.events import End

__all__ = ["DEFAULT_RESULTS_KEPT", "RecentResults"]

DEFAULT_RESULTS_KEPT = 1000


class RecentResults(MutableMapping[str, End]):
    """Call id -> End for the newest ``limit`` calls (oldest dropped first)."""

    def __init__(self, limit: int = DEFAULT_RESULTS_KEPT) -> None:
        if limit < 1:
            raise ValueError("the results limit must be at least 1")
        self.limit = limit
        self.total = 0  # calls ever stored (a count that survives the pruning)
        self.by_outcome: Counter[str] = Counter()  # the same, by outcome (metrics)
        self.hangup_cut = 0  # of which their ``on hangup`` body was cut (metrics)
        self._data: OrderedDict[str, End] = OrderedDict()

    def __getitem__(self, key: str) -> End:
        return self._data[key]

    def __setitem__(self, key: str, value: End) -> None:
        if key not in self._data:
            self.total += 1
            self.by_outcome[value.outcome] += 1
            self.hangup_cut += value.on_hangup_cut is not None
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.limit:
            self._data.popitem(last=False)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"RecentResults({len(self)}/{self.limit}, total={self.total})"

"""xdist scheduling for suites: longest first, one suite at a time per worker.

xdist's ``load`` scheduler hands each worker a batch of consecutive items up front, which
would give the first worker the two longest suites. This one deals the first items out
round-robin (each worker gets one to run and one queued) and then feeds workers one item
at a time, so with items in longest-first order the longest suites start first on
different workers. Devices are not its business: a suite leases them when it runs.
"""

from __future__ import annotations

from itertools import cycle
from typing import Any

import pytest
from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]

__all__ = ["SuiteScheduling"]


class SuiteScheduling(LoadScheduling):  # type: ignore[misc]
    """``LoadScheduling`` with a round-robin start and one-item refills."""

    def __init__(
        self, config: pytest.Config, log: Any = None, expected: dict[str, float] | None = None
    ) -> None:
        super().__init__(config, log)
        self.maxschedchunk = 1
        self.expected: dict[str, float] = expected or {}  # suite -> its expected seconds

    def _seconds(self, index: int) -> float:
        nodeid = self.collection[index] if self.collection else ""
        return self.expected.get(nodeid.split("::", 1)[-1], 0.0)

    def _send_tests(self, node: Any, num: int) -> None:
        """Send ``num`` items, one at a time. A worker holds one item queued behind the
        one it runs; behind a suite much longer than the rest, that queued item would
        wait for it, so such a worker gets the smallest pending item instead."""
        for _ in range(num):
            if not self.pending:
                return
            running = self.node2pending[node]
            pick = 0
            if running and self.expected:
                ahead = self._seconds(running[-1])
                pending = [self._seconds(i) for i in self.pending]
                mean = sum(pending) / len(pending)
                if ahead > 2 * mean:
                    pick = len(self.pending) - 1
            index = self.pending.pop(pick)
            self.node2pending[node].append(index)
            node.send_runtest_some([index])

    def schedule(self) -> None:
        assert self.collection_is_completed
        if getattr(self, "collection", None) is not None:
            for node in self.nodes:
                self.check_schedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        collection: list[str] = next(iter(self.node2collection.values()))
        self.collection = collection
        self.pending[:] = range(len(collection))
        if not collection:
            return
        nodes = cycle(self.nodes)
        for _ in range(min(len(self.pending), 2 * len(self.nodes))):
            self._send_tests(next(nodes), 1)
        if not self.pending:
            for node in self.nodes:
                node.shutdown()

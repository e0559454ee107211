"""The collection tree of a torchci run: one item per test call of the job's route.

``JobDirectory`` stands in for the root folder so that nothing else is collected;
``JobFile`` (node id ``torchci``) yields a :class:`SuiteItem` per test call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..plan.planner import NODE_PREFIX, Unit

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from .session import Runtime

__all__ = ["JobDirectory", "JobFile", "SuiteItem"]


class JobDirectory(pytest.Directory):
    """The root folder, in torchci mode: it holds the job and nothing else."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        return [JobFile.from_parent(self, path=self.path / NODE_PREFIX)]


class JobFile(pytest.File):
    """The job: its test calls in the dispatch chain's order."""

    def collect(self) -> Iterator[SuiteItem]:
        from .session import runtime_of

        runtime = runtime_of(self.config)
        for unit in runtime.shard_units():
            if unit.role == "test":
                yield SuiteItem.from_parent(self, name=unit.name, unit=unit, runtime=runtime)


class SuiteItem(pytest.Item):
    """One call of test.sh's dispatch chain (a suite), run as test.sh would run it."""

    def __init__(self, *, unit: Unit, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unit = unit
        self.runtime = runtime
        for name in runtime.markers_for(unit):
            self.add_marker(name)
        for mark in runtime.placement.markers(unit):
            self.add_marker(mark)

    @property
    def suite_name(self) -> str:
        return self.unit.entry.call or self.unit.entry.inline or self.name

    def setup(self) -> None:
        self.runtime.run_setups(self)

    def runtest(self) -> None:
        self.runtime.run_item(self)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        from .session import SuiteError

        if isinstance(excinfo.value, SuiteError):
            return excinfo.value.render()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        suite = self.unit.suite
        cites = suite.cites if suite is not None else self.unit.entry.where
        return self.path, None, f"{self.name} ({cites})"

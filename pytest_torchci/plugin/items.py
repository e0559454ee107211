"""The collection tree of a torchci run: one item per test call of the job's route.

``JobDirectory`` stands in for the root folder so that nothing else is collected;
``JobFile`` (node id ``torchci``) yields a :class:`SuiteItem` per test call. The run
they belong to (:class:`.session.Runtime`) is handed down to each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from ..plan.planner import NODE_PREFIX, Unit
from ..run.failure import SuiteError

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

__all__ = ["ItemRuntime", "JobDirectory", "JobFile", "SuiteItem"]


class ItemRuntime(Protocol):
    """What the collection tree asks of the run."""

    def shard_units(self) -> list[Unit]: ...

    def item_markers(self, unit: Unit) -> list[str | pytest.MarkDecorator]: ...

    def run_setups(self, item: SuiteItem) -> None: ...

    def run_item(self, item: SuiteItem) -> None: ...


class JobDirectory(pytest.Directory):
    """The root folder, in torchci mode: it holds the job and nothing else."""

    def __init__(self, *, runtime: ItemRuntime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        return [JobFile.from_parent(self, path=self.path / NODE_PREFIX, runtime=self.runtime)]


class JobFile(pytest.File):
    """The job: its test calls in the dispatch chain's order."""

    def __init__(self, *, runtime: ItemRuntime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime

    def collect(self) -> Iterator[SuiteItem]:
        for unit in self.runtime.shard_units():
            if unit.role == "test":
                # The node id given whole, as pytest parses one read back from its cache
                # (--lf, --nf): `test_python_shard[3]` is the call `test_python_shard` with
                # the parameters `3`, not a name with brackets in it (pytest 9.2 compares
                # the parts).
                yield SuiteItem.from_parent(
                    self,
                    name=unit.name,
                    nodeid=f"{self.nodeid}::{unit.name}",
                    unit=unit,
                    runtime=self.runtime,
                )


class SuiteItem(pytest.Item):
    """One call of test.sh's dispatch chain (a suite), run as test.sh would run it."""

    def __init__(self, *, unit: Unit, runtime: ItemRuntime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unit = unit
        self.runtime = runtime
        for mark in runtime.item_markers(unit):
            self.add_marker(mark)

    def setup(self) -> None:
        self.runtime.run_setups(self)

    def runtest(self) -> None:
        self.runtime.run_item(self)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, SuiteError):
            return excinfo.value.render()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.name} ({self.unit.cites})"

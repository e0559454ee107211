"""An item's suite, run: on the devices it leased, within its deadline, in a window on
the XML the suites write; its properties say how it went, whatever happened."""

from __future__ import annotations

import contextlib
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest

from ..data.model import Job
from ..run.childreports import ChildReports
from ..run.deadlines import DEADLINE_KEY
from ..run.execute import SuiteExecutor
from ..run.failure import CommandRecord, SuiteError
from ..run.reaper import new_token
from ..run.statedir import UnsafeFileError, UnsafeFolderError
from ..run.timeline import Span, Timeline
from .dryrun import DryRun, commands_json
from .items import SuiteItem
from .placement import Placement

__all__ = ["SuiteRun"]

Property = tuple[str, object]


@dataclass
class SuiteRun:
    """Runs items' suites (or, with ``dry`` set, shows their commands and skips them)."""

    job: Job
    placement: Placement
    executor: SuiteExecutor
    reports: ChildReports
    dry: DryRun | None = None  # a dry run: nothing is started
    timeline: Timeline | None = None

    def run(self, item: SuiteItem) -> None:
        unit = item.unit
        item.user_properties.extend(self._static_properties(item))
        if self.dry is not None:
            self.dry.show(unit)
            item.user_properties.append(("commands", commands_json(unit.step.commands)))
            # Nothing ran: a dashboard must not count it as a passed test.
            pytest.skip("dry run")
        self._for_real(item)

    def _for_real(self, item: SuiteItem) -> None:
        start = time.monotonic()
        wall_start = time.time() - 0.01
        records: list[CommandRecord] = []
        status = 0
        error: SuiteError | None = None
        token = new_token()
        started = self.reports.start()
        try:
            self._leased(item, records, token)
        except SuiteError as exc:
            status, error = exc.status, exc
            raise
        finally:
            suite = item.unit.entry.call or item.unit.entry.inline or "suite"
            synthetic = (suite, item.name, time.monotonic() - start)
            item.user_properties.extend(
                self._child_properties(started, token, wall_start, error, synthetic)
            )
            item.user_properties.extend(self._end_properties(item, status, start, records))

    def _child_properties(
        self,
        started: tuple[bool, int],
        token: str,
        wall_start: float,
        error: SuiteError | None,
        synthetic: tuple[str, str, float],
    ) -> list[Property]:
        """What the suite's own XML says (see ChildReports.collect). A read-back that
        fails (a folder that cannot be read or written) never takes the place of the
        suite's outcome: it is a note on the suite's failure, and a property."""
        try:
            window = self.reports.end(started)
            return self.reports.collect(token, window, wall_start, error, synthetic)
        except (OSError, UnsafeFolderError, UnsafeFileError) as exc:
            why = f"the suite's own XML could not be read back: {exc}"
            if error is not None:
                error.notes.append(why)
            return [("child_reports_error", why)]

    def _leased(self, item: SuiteItem, records: list[CommandRecord], token: str) -> None:
        """Run the suite on the devices it leased (their ids in the variable that makes
        them the visible ones)."""
        with self.placement.lease(item) as lease:
            host = self.placement.host
            overrides = {}
            variable = host.visibility_variable()
            if lease is not None and variable is not None:
                overrides[variable] = ",".join(lease.ids)
            held = [f"{host.kind}:{i}" for i in lease.ids] if lease is not None else []
            with self._span(item.unit.name, "suite", devices=held):
                self.executor.execute(
                    item.unit,
                    records=records,
                    overrides=overrides,
                    timeout=item.stash.get(DEADLINE_KEY, None),
                    token=token,
                )

    def _span(
        self, name: str, kind: str, devices: list[str]
    ) -> AbstractContextManager[Span | None]:
        """A span of the timeline (nothing without one)."""
        if self.timeline is None:
            return contextlib.nullcontext()
        return self.timeline.span(name, kind, devices=devices)

    def _static_properties(self, item: SuiteItem) -> list[Property]:
        unit = item.unit
        job = unit.job or self.job
        return [
            ("call", unit.entry.call or ""),
            ("args", " ".join(unit.step.args)),
            ("build_environment", self.job.build_environment),
            ("test_config", self.job.test_config),
            ("shard", f"{job.shard}/{job.num_shards}"),
        ]

    def _end_properties(
        self, item: SuiteItem, status: int, start: float, records: list[CommandRecord]
    ) -> list[Property]:
        props: list[Property] = [
            ("exit_status", str(status)),
            ("suite_seconds", f"{time.monotonic() - start:.3f}"),
            ("log", str(self.executor.log_path(item.unit))),
        ]
        if records:
            props.append(("commands", commands_json([r.command for r in records])))
        return props

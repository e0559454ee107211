"""What a torchci run keeps for its whole session: the job, its plan, and what has run.

Setup calls (installs) run once per session, before the first item that follows them in
the route; teardown calls run once, after the last item before them has finished.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from .engine import CommandResult, Engine, ScriptExit, SuiteFailure
from .model import Command, Job
from .planner import JobPlan, Unit, run_entry
from .runner import RunOptions, describe_status, run_command
from .settings import Settings
from .suite_data import SuiteData

if TYPE_CHECKING:
    from .items import SuiteItem

__all__ = ["RUNTIME_KEY", "CommandRecord", "Runtime", "SuiteError", "runtime_of"]


@dataclass(frozen=True)
class CommandRecord:
    """One command an item ran, and how it ended."""

    command: Command
    returncode: int
    seconds: float
    timed_out: bool = False


class SuiteError(Exception):
    """A suite failed: what failed, how, and the end of the output."""

    def __init__(
        self,
        unit_name: str,
        cites: str,
        failure: SuiteFailure,
        tail: list[str],
        log: Path | None,
        phase: str = "call",
    ) -> None:
        super().__init__(failure.message)
        self.unit_name = unit_name
        self.cites = cites
        self.failure = failure
        self.tail = tail
        self.log = log
        self.phase = phase

    def render(self) -> str:
        f = self.failure
        lines = [f"{self.unit_name} failed ({self.cites})"]
        if f.command is not None and f.result is not None:
            lines.append(f"command: {shlex.join(f.command.argv)}")
            lines.append(f"     in: {f.command.cwd}")
            lines.append(f"   exit: {describe_status(f.result.returncode, f.result.timed_out)}")
        else:
            lines.append(f"reason: {f.message}")
        if self.tail:
            lines.append(f"--- last {len(self.tail)} lines of output ---")
            lines.extend(self.tail)
        if self.log is not None:
            lines.append(f"--- full log: {self.log}")
        return "\n".join(lines)


@dataclass
class _Outcome:
    error: SuiteError | None = None


@dataclass
class Runtime:
    """The session's job, plan and progress."""

    settings: Settings
    data: SuiteData
    job: Job
    job_plan: JobPlan
    capture_live: bool
    config: pytest.Config | None = None
    setups_done: dict[int, _Outcome] = field(default_factory=dict)
    teardowns_done: set[int] = field(default_factory=set)
    ran: set[int] = field(default_factory=set)

    # --- markers --------------------------------------------------------------------

    def job_traits(self) -> list[str]:
        variables = self.job.variables()
        from ._bash import glob_match

        out = []
        for trait in self.data.traits.values():
            value = variables.get(trait.var, "")
            ok = (
                re.search(trait.pattern, value) is not None
                if trait.kind == "regex"
                else glob_match(value, trait.pattern)
            )
            if ok:
                out.append(trait.name)
        return out

    def markers_for(self, unit: Unit) -> list[str]:
        names = list(self.job_traits())
        suite = unit.suite
        if suite is not None:
            names.append(suite.family)
            names.extend(suite.markers)
        names.extend(unit.entry.markers)
        return list(dict.fromkeys(names))

    # --- running --------------------------------------------------------------------

    def _log_path(self, unit: Unit) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", unit.name)
        return self.settings.log_dir / f"{safe}.log"

    @contextmanager
    def _log(self, unit: Unit) -> Iterator[tuple[IO[str], Path]]:
        path = self._log_path(unit)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as log:
            yield log, path

    def execute(
        self, unit: Unit, phase: str = "call", records: list[CommandRecord] | None = None
    ) -> list[CommandRecord]:
        """Run ``unit`` for real from the state the plan had before it."""
        records = [] if records is None else records
        cites = unit.suite.cites if unit.suite is not None else unit.entry.where
        with self._log(unit) as (log, log_path):
            base_env = dict(os.environ)
            options = RunOptions(
                root=self.settings.root,
                base_env=base_env,
                path_first=os.path.dirname(sys.executable),
                log=log,
                live=sys.stdout,
            )

            def executor(command: Command, *, capture: bool) -> CommandResult:
                if self.config is not None:
                    replaced = self.config.hook.pytest_torchci_command(
                        command=command, suite=unit.name, config=self.config
                    )
                    command = replaced if replaced is not None else command
                start = time.monotonic()
                result = run_command(command, options, capture=capture)
                records.append(
                    CommandRecord(
                        command, result.returncode, time.monotonic() - start, result.timed_out
                    )
                )
                return result

            engine = Engine(
                self.data, self.job, self.settings.root, executor,
                base_env=base_env, planning=False,
            )  # fmt: skip
            state = unit.start.snapshot()
            try:
                run_entry(engine, unit.entry, state, unit.step.args)
            except ScriptExit as exc:
                if exc.status != 0:
                    raise SuiteError(
                        unit.name, cites, exc, list(options.tail), log_path, phase
                    ) from None
            except SuiteFailure as exc:
                raise SuiteError(
                    unit.name, cites, exc, list(options.tail), log_path, phase
                ) from None
        return records

    def dry_run(self, unit: Unit) -> None:
        print(f"[dry-run] {unit.name}: {len(unit.step.commands)} commands")
        for c in unit.step.commands:
            env = " ".join(f"{k}={v}" for k, v in c.env.items() if v is not None)
            print(f"  ({c.cwd}) {env + ' ' if env else ''}{shlex.join(c.argv)}")

    def run_setups(self, item: SuiteItem) -> None:
        if self.settings.no_setup:
            return
        for unit in self.job_plan.units:
            if unit.index >= item.unit.index:
                break
            if unit.role != "setup":
                continue
            outcome = self.setups_done.get(unit.index)
            if outcome is None:
                outcome = _Outcome()
                self.setups_done[unit.index] = outcome
                if self.settings.dry_run:
                    self.dry_run(unit)
                else:
                    try:
                        self.execute(unit, phase="setup")
                    except SuiteError as exc:
                        outcome.error = exc
            if outcome.error is not None:
                raise outcome.error

    def run_item(self, item: SuiteItem) -> None:
        unit = item.unit
        self.ran.add(unit.index)
        item.user_properties.extend(self._static_properties(item))
        if self.settings.dry_run:
            self.dry_run(unit)
            item.user_properties.append(("commands", _commands_json(unit.step.commands)))
            return
        start = time.monotonic()
        records: list[CommandRecord] = []
        status = 0
        try:
            self.execute(unit, records=records)
        except SuiteError as exc:
            status = exc.failure.result.returncode if exc.failure.result else exc.failure.status
            raise
        finally:
            item.user_properties.append(("exit_status", str(status)))
            item.user_properties.append(("duration", f"{time.monotonic() - start:.3f}"))
            item.user_properties.append(("log", str(self._log_path(unit))))
            if records:
                item.user_properties.append(
                    ("commands", _commands_json([r.command for r in records]))
                )

    def _static_properties(self, item: SuiteItem) -> list[tuple[str, object]]:
        unit = item.unit
        return [
            ("call", unit.entry.call or ""),
            ("args", " ".join(unit.step.args)),
            ("build_environment", self.job.build_environment),
            ("test_config", self.job.test_config),
            ("shard", f"{self.job.shard}/{self.job.num_shards}"),
        ]

    def run_teardowns(self, item: SuiteItem, nextitem: pytest.Item | None) -> None:
        from .items import SuiteItem as _SuiteItem

        next_index = nextitem.unit.index if isinstance(nextitem, _SuiteItem) else None
        for unit in self.job_plan.units:
            if unit.role != "teardown" or unit.index in self.teardowns_done:
                continue
            if unit.index < item.unit.index:
                continue
            if not any(i < unit.index for i in self.ran):
                continue
            if next_index is not None and next_index < unit.index:
                continue
            self.teardowns_done.add(unit.index)
            if self.settings.dry_run:
                self.dry_run(unit)
                continue
            self.execute(unit, phase="teardown")


def _commands_json(commands: list[Command] | tuple[Command, ...]) -> str:
    return json.dumps([shlex.join(c.argv) for c in commands])


RUNTIME_KEY = pytest.StashKey[Runtime]()


def runtime_of(config: pytest.Config) -> Runtime:
    return config.stash[RUNTIME_KEY]

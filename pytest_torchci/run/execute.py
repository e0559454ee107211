"""A unit's commands run for real, from the state the plan had before it: its log file,
its deadline, and the failure it ends in."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.loader import SuiteData
from ..data.model import Command, Job
from ..plan.engine import CommandResult, Engine, Executor, ScriptExit, SuiteFailure
from ..plan.planner import Unit, run_entry
from .failure import CommandRecord, SuiteError
from .processes import GRACE_SECONDS, RunOptions, run_command
from .reaper import children, new_token
from .suitelog import SuiteLog

if TYPE_CHECKING:
    from .timeline import Timeline

__all__ = ["SuiteExecutor"]


@dataclass
class SuiteExecutor:
    """Runs units for real in ``root``, each with its log in ``log_dir``."""

    data: SuiteData
    job: Job
    root: Path
    log_dir: Path
    cookie: str
    realtime: bool = True  # output reaches the terminal as it comes (``-s``)
    # The extension hook: a command to run instead of (command, suite name); None: as is.
    replace: Callable[[Command, str], Command | None] | None = None
    variables: Callable[[], dict[str, str]] = dict  # what every command carries besides
    on_start: Callable[[int], None] | None = None  # a suite process group started
    on_end: Callable[[int], None] | None = None  # ... and ended
    timeline: Timeline | None = None  # setup and teardown calls are spans of it
    grace: tuple[float, float] = GRACE_SECONDS  # past a deadline: SIGINT, SIGTERM, SIGKILL
    _base_env: dict[str, str] | None = field(default=None, repr=False)
    _children: set[int] | None = field(default=None, repr=False)
    _log_paths: dict[str, Path] = field(default_factory=dict, repr=False)

    def log_path(self, unit: Unit) -> Path:
        path = self._log_paths.get(unit.name)
        if path is None:
            safe = _UNSAFE.sub("_", unit.name)
            path = self._log_paths[unit.name] = self.log_dir / f"{safe}.log"
        return path

    def _environ(self) -> dict[str, str]:
        """The environment the suites start from: this process's, read once (a copy per
        item costs more than the command it runs)."""
        if self._base_env is None:
            self._base_env = dict(os.environ)
        return self._base_env

    def _known_children(self) -> set[int]:
        if self._children is None:
            self._children = set(children())
        return self._children

    def _options(
        self, log: SuiteLog, overrides: dict[str, str] | None, token: str | None
    ) -> RunOptions:
        return RunOptions(
            root=self.root,
            base_env=self._environ(),
            path_first=os.path.dirname(sys.executable),
            overrides={**(overrides or {}), **self.variables()},
            log=log,
            live=sys.stdout,
            realtime=self.realtime,
            on_start=self.on_start,
            on_end=self.on_end,
            cookie=self.cookie,
            token=token or new_token(),
            children=self._known_children(),
            grace=self.grace,
        )

    def _executor(
        self,
        unit: Unit,
        options: RunOptions,
        records: list[CommandRecord],
        timeout: float | None,
    ) -> Executor:
        """Runs one command of ``unit``; past the unit's deadline, the suite fails."""
        deadline = None if not timeout else time.monotonic() + timeout

        def executor(command: Command, *, capture: bool) -> CommandResult:
            if self.replace is not None:
                replaced = self.replace(command, unit.name)
                command = replaced if replaced is not None else command
            start = time.monotonic()
            if deadline is not None:
                options.timeout = max(0.1, deadline - start)
            result = run_command(command, options, capture=capture)
            seconds = time.monotonic() - start
            records.append(CommandRecord(command, result.returncode, seconds, result.timed_out))
            if result.timed_out:
                failure = SuiteFailure(
                    f"timed out after {timeout:g} s",
                    -9,
                    command,
                    CommandResult(result.returncode, result.output, True),
                )
                failure.timeout = timeout
                raise failure
            return result

        return executor

    def execute(
        self,
        unit: Unit,
        phase: str = "call",
        records: list[CommandRecord] | None = None,
        overrides: dict[str, str] | None = None,
        timeout: float | None = None,
        token: str | None = None,
    ) -> list[CommandRecord]:
        """Run ``unit`` for real from the state the plan had before it, within
        ``timeout`` seconds in all (None: no deadline)."""
        records = [] if records is None else records
        cites = unit.cites
        span: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if phase != "call" and self.timeline is not None:
            span = self.timeline.span(unit.name, phase)
        log_path = self.log_path(unit)
        with span, SuiteLog(log_path) as log:
            options = self._options(log, overrides, token)
            engine = Engine(
                self.data,
                unit.job or self.job,
                self.root,
                self._executor(unit, options, records, timeout),
                base_env=options.base_env,
                planning=False,
            )
            try:
                run_entry(engine, unit.entry, unit.start.snapshot(), unit.step.args)
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


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")

"""What a torchci run keeps for its whole session: the job, its plan, and what has run.

Setup calls (installs) run once per session, before the first item that follows them in
the route; teardown calls run once, after the last item before them has finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

from ..data.loader import SuiteData, job_traits
from ..data.model import Command, Job
from ..devices.discovery import Host
from ..devices.leases import Need
from ..plan.engine import CommandResult, Engine, ScriptExit, SuiteFailure
from ..plan.planner import JobPlan, Unit, run_entry
from ..run.processes import RunOptions, describe_status, run_command
from ..run.reaper import Sweep, new_cookie, stop_groups, stop_tree
from ..run.statedir import (
    RUNS,
    UnsafeFileError,
    UnsafeFolderError,
    open_private,
    private_folder,
    read_private,
    write_private,
)
from ..scale.shards import Balance
from .keys import RUNTIME_KEY
from .placement import Placement, job_kind
from .settings import Settings

if TYPE_CHECKING:
    from ..run.reports import ReportWatcher
    from ..run.timeline import Span, Timeline
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
        self.failing: list[str] = []
        self.notes: list[str] = []

    def render(self) -> str:
        f = self.failure
        lines = [f"{self.unit_name} failed ({self.cites})"]
        if f.command is not None and f.result is not None:
            lines.append(f"command: {shlex.join(f.command.argv)}")
            lines.append(f"     in: {f.command.cwd}")
            timeout = getattr(f, "timeout", None)
            lines.append(
                f"   exit: {describe_status(f.result.returncode, f.result.timed_out, timeout)}"
            )
        else:
            lines.append(f"reason: {f.message}")
        if self.failing:
            lines.append(f"--- failing test cases ({len(self.failing)}) ---")
            lines.extend(self.failing)
        lines.extend(f"note: {n}" for n in self.notes)
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
    config: pytest.Config | None = None
    _placement: Placement | None = None
    run_id: str = "local"
    cookie: str = field(default_factory=new_cookie)
    balance: int | None = None
    _balanced: object = None
    setups_done: dict[int, _Outcome] = field(default_factory=dict)
    teardowns_done: set[int] = field(default_factory=set)
    ran: set[int] = field(default_factory=set)
    _journal: int | None = None
    _watcher: ReportWatcher | None = None
    _watching: bool = True  # False: inotify is not to be had; scan instead
    _by_role: dict[str, list[Unit]] = field(default_factory=dict)
    _claims_dir: Path | None = None
    _base_env: dict[str, str] | None = None
    _children: set[int] | None = None  # this process's children between commands
    timeline: Timeline | None = None  # with --torchci-timeline: this process's spans

    def _span(self, name: str, kind: str, **fields: Any) -> AbstractContextManager[Span | None]:
        """A span of the timeline (nothing without one)."""
        if self.timeline is None:
            return contextlib.nullcontext()
        return self.timeline.span(name, kind, **fields)

    # --- markers --------------------------------------------------------------------

    def job_traits(self) -> list[str]:
        return job_traits(self.data, self.job)

    def markers_for(self, unit: Unit) -> list[str]:
        names = list(self.job_traits())
        suite = unit.suite
        if suite is not None:
            names.append(suite.family)
            names.extend(suite.markers)
        names.extend(unit.entry.markers)
        return list(dict.fromkeys(names))

    # --- shards ---------------------------------------------------------------------

    def balanced(self) -> Balance:
        """The balanced split of this run's test units (with --torchci-balance)."""
        from ..scale.shards import balance

        if self._balanced is None:
            assert self.balance is not None
            expected = self.expected_durations()
            self._balanced = balance(self.job_plan.units, self.balance, lambda u: expected[u.name])
        assert isinstance(self._balanced, Balance)
        return self._balanced

    def shard_units(self) -> list[Unit]:
        """The units this run runs: all, or shard K's of a balanced split."""
        if self.balance is None:
            return list(self.job_plan.units)
        return self.balanced().units_of(int(self.job.shard), self.job_plan.units)

    # --- deadlines and durations ----------------------------------------------------

    def set_deadline(self, item: SuiteItem) -> None:
        from ..run.deadlines import apply_deadline, deadline

        no_timeout = self.job_plan.job_env.get("NO_TEST_TIMEOUT") or os.environ.get(
            "NO_TEST_TIMEOUT"
        )
        timeout = deadline(item, item.unit.suite, self.job, no_test_timeout=bool(no_timeout))
        apply_deadline(item, timeout)

    def expected_durations(self) -> dict[str, float]:
        """Each test unit's expected duration (see :func:`durations.expected`)."""
        from ..scale.durations import DurationsError, expected, read_durations

        try:
            known = read_durations(self.settings.durations)
        except DurationsError as exc:
            raise pytest.UsageError(f"--torchci-durations: {exc}") from None
        return expected(self.job_plan.units, known)

    # --- devices --------------------------------------------------------------------

    @property
    def placement(self) -> Placement:
        if self._placement is None:
            self._placement = Placement(self.settings, job_kind(self.job_traits()), self.config)
            self._placement.timeline = self.timeline
        return self._placement

    @property
    def host(self) -> Host:
        return self.placement.host

    def need_for(self, item: SuiteItem) -> Need:
        return self.placement.need_for(item)

    # --- running --------------------------------------------------------------------

    def _log_path(self, unit: Unit) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", unit.name)
        return self.settings.log_dir / f"{safe}.log"

    @contextmanager
    def _log(self, unit: Unit) -> Iterator[tuple[IO[str], Path]]:
        path = self._log_path(unit)
        # Appending and readable: a child writes into it directly, and what it wrote is
        # read back for the report (see RunOptions).
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:  # the first log, or a suite removed test-reports/
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o644)
        with open(fd, "a+", encoding="utf-8") as log:
            yield log, path

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
        deadline = None if not timeout else time.monotonic() + timeout
        cites = unit.suite.cites if unit.suite is not None else unit.entry.where
        span = self._span(unit.name, phase) if phase != "call" else contextlib.nullcontext()
        with span, self._log(unit) as (log, log_path):
            base_env = self._environ()
            options = RunOptions(
                root=self.settings.root,
                base_env=base_env,
                path_first=os.path.dirname(sys.executable),
                overrides={**(overrides or {}), **self._item_variables()},
                log=log,
                live=sys.stdout,
                realtime=self._realtime(),
                on_start=self._register_group,
                on_end=self._unregister_group,
                cookie=self.cookie,
                token=token or secrets.token_hex(8),
                children=self._known_children(),
            )

            def executor(command: Command, *, capture: bool) -> CommandResult:
                if self.config is not None:
                    replaced = self.config.hook.pytest_torchci_command(
                        command=command, suite=unit.name, config=self.config
                    )
                    command = replaced if replaced is not None else command
                start = time.monotonic()
                if deadline is not None:
                    options.timeout = max(0.1, deadline - start)
                result = run_command(command, options, capture=capture)
                if result.timed_out:
                    failure = SuiteFailure(
                        f"timed out after {timeout:g} s", -9, command,
                        CommandResult(result.returncode, result.output, True),
                    )  # fmt: skip
                    failure.timeout = timeout
                    raise failure
                records.append(
                    CommandRecord(
                        command, result.returncode, time.monotonic() - start, result.timed_out
                    )
                )
                return result

            engine = Engine(
                self.data, unit.job or self.job, self.settings.root, executor,
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

    # --- process groups of this run, for a cancelled run to stop ---------------------

    def _known_children(self) -> set[int]:
        if self._children is None:
            from ..run.reaper import children

            self._children = set(children())
        return self._children

    def _environ(self) -> dict[str, str]:
        """The environment the suites start from: this process's, read once (a copy per
        item costs more than the command it runs)."""
        if self._base_env is None:
            self._base_env = dict(os.environ)
        return self._base_env

    def run_dir(self) -> Path:
        """This run's folder in the private state folder (see :class:`RunFolder`)."""
        return self.settings.lock_dir / RUNS / self.run_id

    def group_dir(self) -> Path:
        return self.run_dir() / "groups"

    def _realtime(self) -> bool:
        """Whether output must reach the terminal as it comes (``-s``)."""
        if self.config is None:
            return True
        return bool(self.config.getoption("capture", "fd") == "no")

    def _group_record(self, line: str) -> None:
        """Append to this process's journal of suite process groups: ``+PGID`` when one
        starts, ``-PGID`` when it ends (one write each; a killed worker's journal still
        says which of its groups live). Journals live in the private state folder."""
        with contextlib.suppress(OSError, UnsafeFolderError, UnsafeFileError):
            if self._journal is None:
                folder = private_folder(self.group_dir(), "lock folder")
                self._journal = open_private(
                    folder / str(os.getpid()), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                )
            os.write(self._journal, line.encode())

    def _register_group(self, pgid: int) -> None:
        self._group_record(f"+{pgid}\n")

    def _unregister_group(self, pgid: int) -> None:
        self._group_record(f"-{pgid}\n")

    def sweep_groups(self) -> Sweep:
        """Stop what this run's suites still have running (after a cancel, or a worker
        that died): the process groups its journals name, each process only if it proves
        itself this run's (see :mod:`reaper`)."""
        if self._journal is not None:
            with contextlib.suppress(OSError):
                os.close(self._journal)
            self._journal = None
        folder = self.group_dir()
        live: set[int] = set()
        try:
            private_folder(folder, "lock folder")
            journals = list(folder.iterdir())
        except (OSError, UnsafeFolderError):
            journals = []
        for journal in journals:
            mine: set[int] = set()  # in order, per process: a pgid may be reused later
            with contextlib.suppress(OSError, UnsafeFileError, UnicodeDecodeError):
                for line in (read_private(journal) or "").split():
                    sign, pgid = line[:1], line[1:]
                    if pgid.isdigit():
                        (mine.add if sign == "+" else mine.discard)(int(pgid))
            live |= mine
        sweep = stop_groups(sorted(live), self.cookie)
        # What left its group (a session of its own) and outlived its worker.
        sweep.stopped |= stop_tree(self.cookie, None).stopped
        shutil.rmtree(folder, ignore_errors=True)
        return sweep

    def dry_run(self, unit: Unit) -> None:
        print(f"[dry-run] {unit.name}: {len(unit.step.commands)} commands")
        for c in unit.step.commands:
            env = " ".join(f"{k}={v}" for k, v in c.env.items() if v is not None)
            print(f"  ({c.cwd}) {env + ' ' if env else ''}{shlex.join(c.argv)}")
        for note in unit.step.notes:
            print(f"  note: {note}")

    def _units_of(self, role: str) -> list[Unit]:
        """The plan's units of one role, in order (looked up once: items ask each time)."""
        found = self._by_role.get(role)
        if found is None:
            found = self._by_role[role] = [u for u in self.job_plan.units if u.role == role]
        return found

    def run_setups(self, item: SuiteItem) -> None:
        self.placement.gate(item)
        if self.settings.no_setup:
            return
        for unit in self._units_of("setup"):
            if unit.index >= item.unit.index:
                break
            outcome = self.setups_done.get(unit.index)
            if outcome is None:
                outcome = _Outcome()
                self.setups_done[unit.index] = outcome
                if self.settings.dry_run:
                    self.dry_run(unit)
                else:
                    self._setup_once_per_host(unit, outcome)
            if outcome.error is not None:
                raise outcome.error

    def _setup_once_per_host(self, unit: Unit, outcome: _Outcome) -> None:
        """Run a setup call; under xdist only the first worker of the run on this host
        runs it, the others wait for it and take its outcome."""
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is None:
            try:
                self.execute(unit, phase="setup")
            except SuiteError as exc:
                outcome.error = exc
            return
        from filelock import FileLock

        folder = self.run_dir()  # private: made by the run's first process
        key = f"setup-{unit.index}"
        done = folder / f"{key}.done"
        cites = unit.suite.cites if unit.suite is not None else unit.entry.where
        try:
            with _marker_errors(done), FileLock(folder / f"{key}.lock", mode=0o600):
                with _marker_errors(done):
                    text = read_private(done)
                    record = None if text is None else json.loads(text)
                if record is not None:
                    if not record["ok"]:
                        failure = SuiteFailure(record["message"])
                        outcome.error = SuiteError(
                            unit.name, record["cites"], failure, [], None, "setup"
                        )
                    return
                try:
                    self.execute(unit, phase="setup")
                    record = {"ok": True, "message": "", "cites": cites}
                except SuiteError as exc:
                    outcome.error = exc
                    text = f"(run by another worker) {exc.render()}"
                    record = {"ok": False, "message": text, "cites": cites}
                with _marker_errors(done):
                    write_private(done, json.dumps(record))
        except _MarkerError as exc:
            if outcome.error is None:
                outcome.error = SuiteError(unit.name, cites, SuiteFailure(str(exc)), [], None)
                outcome.error.phase = "setup"

    def run_item(self, item: SuiteItem) -> None:
        unit = item.unit
        self.ran.add(unit.index)
        item.user_properties.extend(self._static_properties(item))
        if self.settings.dry_run:
            self.dry_run(unit)
            item.user_properties.append(("commands", _commands_json(unit.step.commands)))
            # Nothing ran: a dashboard must not count it as a passed test.
            pytest.skip("dry run")
        start = time.monotonic()
        wall_start = time.time() - 0.01
        records: list[CommandRecord] = []
        status = 0
        timeout = getattr(item, "torchci_timeout", None)
        error: SuiteError | None = None
        token = secrets.token_hex(8)
        started = self._window_start()
        try:
            with self.placement.lease(item) as lease:
                overrides = {}
                variable = self.host.visibility_variable()
                if lease is not None and variable is not None:
                    overrides[variable] = ",".join(lease.ids)
                held = [f"{self.host.kind}:{i}" for i in lease.ids] if lease is not None else []
                with self._span(unit.name, "suite", devices=held):
                    self.execute(
                        unit, records=records, overrides=overrides, timeout=timeout, token=token
                    )
        except SuiteError as exc:
            status = exc.failure.result.returncode if exc.failure.result else exc.failure.status
            error = exc
            raise
        finally:
            window = self._window_end(started)
            self._child_reports(item, token, window, wall_start, time.monotonic() - start, error)
            item.user_properties.append(("exit_status", str(status)))
            item.user_properties.append(("suite_seconds", f"{time.monotonic() - start:.3f}"))
            item.user_properties.append(("log", str(self._log_path(unit))))
            if records:
                item.user_properties.append(
                    ("commands", _commands_json([r.command for r in records]))
                )

    # --- the suites' own XML (see :mod:`reports`) ------------------------------------

    def _claims(self) -> Path:
        from ..run.reports import claims_folder

        if self._claims_dir is None:
            self._claims_dir = claims_folder(self.run_dir())
        return self._claims_dir

    def _item_variables(self) -> dict[str, str]:
        """What every command of an item carries besides its token: where to claim XML."""
        from ..run.reports import CLAIMS_VARIABLE

        try:
            return {CLAIMS_VARIABLE: str(self._claims())}
        except UnsafeFolderError:
            return {}

    def _window_start(self) -> tuple[bool, int]:
        """Start an item's window on test-reports: (ran alone so far, epoch)."""
        from ..run.reports import Activity, ReportWatcher

        if self._watching and self._watcher is None:
            try:
                self._watcher = ReportWatcher(self.settings.root)
            except OSError:
                self._watching = False
        if self._watcher is not None:
            self._watcher.mark()
        if not self._side_by_side():
            return (True, 0)
        return Activity(self.run_dir()).start()

    def _window_end(self, started: tuple[bool, int]) -> tuple[list[Path] | None, bool]:
        """The XML files written in the window (None: scan) and whether it ran alone."""
        from ..run.reports import Activity

        written = self._watcher.written() if self._watcher is not None else None
        if not self._side_by_side():
            return written, True
        return written, Activity(self.run_dir()).end(started)

    def _side_by_side(self) -> bool:
        """Whether other items of the run may run at the same time (an xdist worker)."""
        return self.config is not None and hasattr(self.config, "workerinput")

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def _child_reports(
        self,
        item: SuiteItem,
        token: str,
        window: tuple[list[Path] | None, bool],
        since: float,
        seconds: float,
        error: SuiteError | None,
    ) -> None:
        """Count the test cases of the XML the suite wrote; name the failing ones in the
        failure; write a synthetic failure when a failed suite wrote none."""
        from ..run.junit import parse_child_xml, synthetic_path, write_synthetic_failure
        from ..run.reports import claim, item_files

        claims = self._claims()
        found = item_files(
            claims, token, window[0], window[1], root=self.settings.root, since=since
        )
        report = parse_child_xml(found.files)
        for key, outcome in (
            ("child_failures", "failure"), ("child_errors", "error"), ("child_skipped", "skipped"),
        ):  # fmt: skip
            item.user_properties.append((key, str(report.count(outcome))))
        item.user_properties.append(("child_tests", str(len(report.cases))))
        if found.unattributed:
            item.user_properties.append(("child_unattributed", str(len(found.unattributed))))
        if error is None:
            return
        error.failing = [c.describe() for c in report.failing]
        if found.unattributed:
            error.notes.append(
                f"{len(found.unattributed)} XML files were written while this suite ran by "
                "a writer that does not say which suite it belongs to, and other suites ran "
                "too: counted for none"
            )
        if not report.files:
            suite = item.unit.entry.call or item.unit.entry.inline or "suite"
            path = synthetic_path(self.settings.root, suite)
            with contextlib.suppress(OSError, UnsafeFileError):
                claim(claims, token, str(path))
            write_synthetic_failure(path, suite, item.name, seconds, error.render())
            item.user_properties.append(("synthetic_report", str(path)))

    def _static_properties(self, item: SuiteItem) -> list[tuple[str, object]]:
        unit = item.unit
        return [
            ("call", unit.entry.call or ""),
            ("args", " ".join(unit.step.args)),
            ("build_environment", self.job.build_environment),
            ("test_config", self.job.test_config),
            ("shard", f"{(unit.job or self.job).shard}/{(unit.job or self.job).num_shards}"),
        ]

    def run_teardowns(self, item: SuiteItem, nextitem: pytest.Item | None) -> None:
        from .items import SuiteItem as _SuiteItem

        next_index = nextitem.unit.index if isinstance(nextitem, _SuiteItem) else None
        for unit in self._units_of("teardown"):
            if unit.index in self.teardowns_done:
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


class _MarkerError(Exception):
    """A setup marker that cannot be read or written, or is not to be trusted."""


@contextmanager
def _marker_errors(path: Path) -> Iterator[None]:
    """A link or a foreign file where a setup marker goes is never followed or trusted:
    the setup fails with a message that names it."""
    try:
        yield
    except (OSError, UnsafeFileError, ValueError, KeyError, TypeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _MarkerError(f"setup marker {path}: {why}") from None


def _commands_json(commands: list[Command] | tuple[Command, ...]) -> str:
    return json.dumps([shlex.join(c.argv) for c in commands])


def runtime_of(config: pytest.Config) -> Runtime:
    return config.stash[RUNTIME_KEY]

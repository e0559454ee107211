"""What a torchci run keeps for its whole session: the job, its plan, and the pieces
that run it, each of its own module:

- :class:`~..run.setups.RouteCalls`: the setup calls (once per host across xdist's
  workers) and the teardown calls around the suites;
- :class:`~.running.SuiteRun`: an item's suite, on its devices, within its deadline;
- :class:`~..run.execute.SuiteExecutor`: a unit's commands, run for real;
- :class:`~..run.journal.GroupJournal`: the suites' process groups, for the run's end
  to stop what they left running;
- :class:`~..run.childreports.ChildReports`: the suites' own XML, per item;
- :class:`~.dryrun.DryRun`: what a dry run shows instead;
- :class:`~.placement.Placement`: the host's devices and the item's lease.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..data.loader import SuiteData, job_traits
from ..data.model import Command, Job
from ..devices.discovery import Host
from ..devices.leases import Need
from ..devices.needs import job_kind
from ..plan.planner import JobPlan, Unit
from ..run.childreports import ChildReports
from ..run.deadlines import apply_deadline, deadline
from ..run.execute import SuiteExecutor
from ..run.journal import GroupJournal
from ..run.reaper import Sweep, new_cookie
from ..run.setups import RouteCalls, SetupRan
from ..run.statedir import RUNS
from ..run.timeline import Timeline
from ..scale.durations import DurationsError, expected, read_durations
from ..scale.shards import Balance, balance
from .dryrun import DryRun
from .items import SuiteItem
from .placement import Placement
from .progress import SETUP_CALLS
from .running import SuiteRun
from .settings import Settings

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """The session's job, its plan, and what runs it."""

    settings: Settings
    data: SuiteData
    job: Job
    job_plan: JobPlan
    config: pytest.Config | None = None
    run_id: str = "local"
    cookie: str = field(default_factory=new_cookie)
    timeline: Timeline | None = None  # with --torchci-timeline: this process's spans
    balance: int | None = None  # with --torchci-balance: the number of shards
    _balanced: Balance | None = field(default=None, repr=False)
    _by_role: dict[str, list[Unit]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        kind = job_kind(self.job_traits())
        self.placement = Placement(s, kind, self.config, timeline=self.timeline)
        self.journal = GroupJournal(self.run_dir() / "groups", self.cookie)
        self.reports = ChildReports(s.root, self.run_dir(), self.side_by_side())
        self.dry = DryRun(fresh_line=self._live_terminal()) if s.dry_run else None
        self.executor = SuiteExecutor(
            self.data,
            self.job,
            s.root,
            s.log_dir,
            self.cookie,
            realtime=self._realtime(),
            replace=self._command_hook(),
            variables=self.reports.variables,
            on_start=self.journal.register,
            on_end=self.journal.unregister,
            timeline=self.timeline,
            grace=(s.kill_grace, s.kill_grace),
        )
        self.suites = SuiteRun(
            self.job, self.placement, self.executor, self.reports, self.dry, self.timeline
        )
        # Under xdist, the workers agree in the run's folder on who runs a setup.
        shared = self.side_by_side() and self.dry is None
        self.calls = RouteCalls(
            self._units_of("setup"),
            self._units_of("teardown"),
            self._call,
            shared_dir=self.run_dir() if shared else None,
        )

    def side_by_side(self) -> bool:
        """Whether other items of the run may run at the same time (an xdist worker)."""
        return self.config is not None and hasattr(self.config, "workerinput")

    def _capture(self) -> str:
        """pytest's ``--capture`` (``no`` without a config: nothing captures)."""
        return "no" if self.config is None else str(self.config.getoption("capture", "fd"))

    def _realtime(self) -> bool:
        """Whether output must reach the terminal as it comes (``-s``)."""
        return self._capture() == "no"

    def _live_terminal(self) -> bool:
        """Whether what the run prints reaches the terminal as it is printed (``-s``,
        ``--capture=tee-sys``)."""
        return self._capture() in ("no", "tee-sys")

    def _command_hook(self) -> Callable[[Command, str], Command | None] | None:
        """The ``pytest_torchci_command`` hook, as the executor calls it."""
        config = self.config
        if config is None:
            return None

        hook = config.hook.pytest_torchci_command

        def replace(command: Command, suite: str) -> Command | None:
            if not hook.get_hookimpls():  # nobody implements it: pluggy's call costs more
                return None
            result: Command | None = hook(command=command, suite=suite, config=config)
            return result

        return replace

    def run_dir(self) -> Path:
        """This run's folder in the private state folder (see :class:`RunFolder`)."""
        return self.settings.lock_dir / RUNS / self.run_id

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

    def item_markers(self, unit: Unit) -> list[str | pytest.MarkDecorator]:
        """An item's markers: the job's traits, the suite's family and markers, and
        what it needs of the host."""
        return [*self.markers_for(unit), *self.placement.markers(unit)]

    # --- shards ---------------------------------------------------------------------

    def balanced(self) -> Balance:
        """The balanced split of this run's test units (with --torchci-balance)."""
        if self._balanced is None:
            assert self.balance is not None
            known = self.expected_durations()
            self._balanced = balance(self.job_plan.units, self.balance, lambda u: known[u.name])
        return self._balanced

    def shard_units(self) -> list[Unit]:
        """The units this run runs: all, or shard K's of a balanced split."""
        if self.balance is None:
            return list(self.job_plan.units)
        return self.balanced().units_of(int(self.job.shard), self.job_plan.units)

    def _units_of(self, role: str) -> list[Unit]:
        """The plan's units of one role, in order (looked up once: items ask each time)."""
        found = self._by_role.get(role)
        if found is None:
            found = self._by_role[role] = [u for u in self.job_plan.units if u.role == role]
        return found

    # --- deadlines and durations ----------------------------------------------------

    def set_deadline(self, item: SuiteItem) -> None:
        no_timeout = self.job_plan.job_env.get("NO_TEST_TIMEOUT") or os.environ.get(
            "NO_TEST_TIMEOUT"
        )
        timeout = deadline(item, item.unit.suite, self.job, no_test_timeout=bool(no_timeout))
        apply_deadline(item, timeout, self.executor.grace)

    def expected_durations(self) -> dict[str, float]:
        """Each test unit's expected duration (see :func:`durations.expected`)."""
        try:
            known = read_durations(self.settings.durations)
        except DurationsError as exc:
            raise pytest.UsageError(f"--torchci-durations: {exc}") from None
        return expected(self.job_plan.units, known)

    # --- devices --------------------------------------------------------------------

    @property
    def host(self) -> Host:
        return self.placement.host

    def need_for(self, item: SuiteItem) -> Need:
        return self.placement.need_for(item)

    # --- running --------------------------------------------------------------------

    def _call(self, unit: Unit, phase: str) -> None:
        """A setup or teardown call: run, or shown in a dry run."""
        if self.dry is not None:
            self.dry.show(unit)
        else:
            self.executor.execute(unit, phase=phase)

    def run_setups(self, item: SuiteItem) -> None:
        self.placement.gate(item)
        if self.settings.no_setup:
            return
        brought: list[SetupRan] = []
        try:
            self.calls.before(item.unit.index, brought)
        finally:  # those that ran before one that failed too
            if brought and self.dry is None:  # (a dry run's setups are listed, not run)
                described = "; ".join(setup.describe() for setup in brought)
                item.user_properties.append((SETUP_CALLS, described))

    def run_item(self, item: SuiteItem) -> None:
        self.calls.ran.add(item.unit.index)
        self.suites.run(item)

    def run_teardowns(self, item: SuiteItem, nextitem: pytest.Item | None) -> None:
        next_index = nextitem.unit.index if isinstance(nextitem, SuiteItem) else None
        self.calls.after(item.unit.index, next_index)

    # --- the run's end --------------------------------------------------------------

    def sweep_groups(self) -> Sweep:
        """Stop what this run's suites still have running (see :class:`GroupJournal`)."""
        return self.journal.sweep()

    def close(self) -> None:
        self.reports.close()
        self.journal.close()

"""The hooks of a torchci run: one object per pytest config, registered by the entry
point's ``pytest_configure`` in torchci mode (as pytest-xdist registers its ``DSession``
and junitxml its ``LogXML``), so that a pytest run inside a pytest run (pytester's)
keeps its own."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..plan.planner import NODE_PREFIX, selects
from ..run.reaper import set_subreaper
from ..run.timeline import WORKER_OUTPUT_KEY
from .items import JobDirectory, SuiteItem
from .progress import Progress, hms
from .reporting import RunSummary, UnfinishedTestcases, report_sweep, say, write_timeline
from .scheduler import SuiteScheduling
from .session import Runtime

if TYPE_CHECKING:
    from ..run.statedir import RunFolder

__all__ = ["TorchciSession"]


class TorchciSession:
    """The run's hooks, on its :class:`Runtime`.

    Under xdist the controller runs no suite: it deals them out (its scheduler), counts
    them (progress, summary) and ends the run (the sweep, the timeline, the durations
    store); each worker runs suites and hands its timeline back."""

    def __init__(self, config: pytest.Config, runtime: Runtime, warnings: list[str]) -> None:
        self.config = config
        self.runtime = runtime
        self.worker = hasattr(config, "workerinput")
        self.xdist = self.worker or bool(config.getoption("numprocesses", None))
        self.run_folder: RunFolder | None = None  # the controller's, see startup.py
        self.subreaper = False  # this process was made the suites' subreaper
        self.progress: Progress | None = None
        self.summary: RunSummary | None = None
        if not self.worker:
            total = sum(u.role == "test" for u in runtime.shard_units())
            self.progress = Progress(config, total)
            self.summary = RunSummary(self.progress, warnings)
            config.pluginmanager.register(UnfinishedTestcases(), "torchci-unfinished-testcases")

    # --- collection -----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(
        self, path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        if path != self.config.rootpath:
            return None
        return JobDirectory.from_parent(parent, path=path, runtime=self.runtime)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if isinstance(item, SuiteItem):
                self.runtime.set_deadline(item)
        if self.xdist:
            self._longest_first(items)
        selectors = self.runtime.settings.selectors
        if not selectors:
            return
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        for item in items:
            wanted = any(selects(s, item.nodeid) for s in selectors)
            (keep if wanted else drop).append(item)
        if drop:
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def _longest_first(self, items: list[pytest.Item]) -> None:
        """Side by side, longest first (in device-seconds: a 4-GPU suite is bigger than a
        1-GPU one of the same length), so that the last suite to finish is not a long one."""
        runtime = self.runtime
        expected = runtime.expected_durations()

        def size(item: pytest.Item) -> tuple[float, int, float]:
            seconds = expected.get(item.name, 0.0)
            devices = 1
            if isinstance(item, SuiteItem):
                need = runtime.need_for(item).count
                devices = runtime.host.count if need < 0 else max(1, need)
            # Equal device-seconds: the wider suite first, while the devices are all free.
            return (-seconds * devices, -devices, -seconds)

        items.sort(key=size)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The total is what was selected (after -k, -m, --lf and node ids)."""
        if self.progress is not None and not self.xdist:
            self.progress.total = len(session.items)

    def pytest_report_header(self) -> list[str]:
        runtime = self.runtime
        s, jp = runtime.settings, runtime.job_plan
        lines = [
            f"torchci: config {s.config}, build {s.build_environment or '(none)'}, "
            f"shard {s.shard}/{s.num_shards}, root {s.root}" + (", dry run" if s.dry_run else ""),
        ]
        for shard, rule in jp.shard_rules or ((None, jp.rule),):
            if rule is not None:  # a merged plan: each shard reached a branch of its own
                where = f"shard {shard}: " if shard is not None else ""
                lines.append(f"torchci: {where}dispatch branch {rule.branch}: {rule.cites}")
        if jp.plan.error:
            lines.append(f"torchci: planning stopped early: {jp.plan.error}")
        if runtime.balance is not None:
            predicted = runtime.balanced().predicted
            shown = ", ".join(f"{i + 1}: {hms(t)}" for i, t in enumerate(predicted))
            lines.append(f"torchci: balanced over {len(predicted)} shards, predicted {shown}")
        return lines

    # --- running --------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """A suite skipped (a dry run, devices the host lacks) is reported at the suite,
        not at the line of the plugin that skipped it (``SKIPPED [3] torchci: dry run``)."""
        report = yield
        if isinstance(item, SuiteItem) and report.skipped and isinstance(report.longrepr, tuple):
            report.longrepr = (NODE_PREFIX, None, report.longrepr[2])  # type: ignore[assignment]
        return report

    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        if isinstance(item, SuiteItem):
            self.runtime.run_teardowns(item, nextitem)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.summary is not None:
            self.summary.logreport(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.summary is not None:
            self.summary.terminal_summary(terminalreporter)

    # --- the run's end --------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The run's last word: stop any suite process group still registered (a worker
        that died, a cancelled run); the job summary; the durations store."""
        runtime = self.runtime
        if self.worker:
            if runtime.timeline is not None:  # handed to the controller (testnodedown)
                session.config.workeroutput[WORKER_OUTPUT_KEY] = runtime.timeline.dump()  # type: ignore[attr-defined]
            return
        report_sweep(self.config, runtime.sweep_groups())
        s = runtime.settings
        if runtime.timeline is not None and s.timeline_file is not None:
            title = f"torchci {s.config} shard {s.shard}/{s.num_shards}"
            write_timeline(self.config, runtime.timeline, s.timeline_file, title)
        self.close_run_folder()
        if self.progress is None:
            return
        self.progress.write_github_summary(
            f"torchci: {s.config} ({s.build_environment or 'no build'}, "
            f"shard {s.shard}/{s.num_shards})"
        )
        if s.durations_store is not None:
            try:
                self.progress.store(s.durations_store)
            except OSError as exc:
                store = self.config.getoption("torchci_store_durations")
                why = exc.strerror or str(exc)
                say(
                    self.config,
                    f"torchci: --torchci-store-durations {store}: cannot write it ({why})",
                )

    def close_run_folder(self) -> None:
        if self.run_folder is not None:
            self.run_folder.close()
            self.run_folder = None

    def pytest_unconfigure(self) -> None:
        self.runtime.close()
        if self.subreaper:
            set_subreaper(False)
            self.subreaper = False
        self.close_run_folder()

    # --- xdist ----------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object | None:
        """Longest-first suites want a round-robin start and one-item refills."""
        if config.getoption("dist") != "load":
            return None
        return SuiteScheduling(config, log, self.runtime.expected_durations())

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        """xdist: each worker gets the run's cookie (see :mod:`reaper`)."""
        workerinput = getattr(node, "workerinput", None)
        if isinstance(workerinput, dict):
            workerinput["torchci_cookie"] = self.runtime.cookie

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        """Under xdist the controller collects nothing: the workers' selection is the total
        (every worker collects the same items)."""
        if self.progress is not None:
            self.progress.total = len(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        """xdist: a worker ended; its timeline joins the controller's."""
        output = getattr(node, "workeroutput", None) or {}
        if self.runtime.timeline is not None:
            text = output.get(WORKER_OUTPUT_KEY)
            if isinstance(text, str):
                self.runtime.timeline.load(text)

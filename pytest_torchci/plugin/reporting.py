"""What the controller says at the run's end besides pytest's own summary: the leases
items waited for, suites that did not run for want of devices, config warnings, what the
sweep stopped, and the timeline file."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..run.timeline import Timeline, mermaid_gantt, write_chrome_trace
from .placement import MISSING_DEVICES
from .progress import Progress

if TYPE_CHECKING:
    from ..run.reaper import Sweep

__all__ = ["RunSummary", "UnfinishedTestcases", "report_sweep", "say", "write_timeline"]


class UnfinishedTestcases:
    """``--junitxml`` after an interrupt: the suite the run stopped in is left out.

    pytest's junitxml opens a testcase for an item at its first report and names it only
    at its call's; a suite interrupted mid-call (Ctrl-C, SIGTERM) would be written as a
    ``<testcase time="..."/>`` with no name and no outcome, which the ``tests`` count
    leaves out and a dashboard cannot file. A suite that failed before the interrupt
    keeps its testcase. (Registered on the controller only.)"""

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover - a pytest without it: nothing to do
            return
        xml = session.config.stash.get(xml_key, None)
        opened = getattr(xml, "node_reporters", None)
        ordered = getattr(xml, "node_reporters_ordered", None)
        if not isinstance(opened, dict) or not isinstance(ordered, list):
            return
        for key, reporter in list(opened.items()):  # opened, never finished
            if "name" not in getattr(reporter, "attrs", {"name": ""}):
                del opened[key]
                ordered[:] = [r for r in ordered if r is not reporter]


class RunSummary:
    """Collects, from the reports the controller sees, what its summary says."""

    def __init__(self, progress: Progress, warnings: list[str]) -> None:
        self.progress = progress
        self.lease_notes: list[str] = []
        self.warnings = warnings  # said in the summary at any verbosity
        self.missing: dict[str, tuple[str, str]] = {}  # suite -> (outcome, what it lacked)

    def logreport(self, report: pytest.TestReport) -> None:
        """One progress line per finished suite; what an item waited for; suites the
        host lacks the devices for."""
        for title, text in report.sections:
            if title.startswith("Captured torchci lease") and report.when == "call":
                self.lease_notes.append(text)
        if report.when == "setup":
            for key, value in report.user_properties:
                if key == MISSING_DEVICES:
                    self.missing[report.nodeid] = (report.outcome, str(value))
        self.progress.report(report)

    def terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if terminalreporter.config.getoption("verbose") >= 1 and self.lease_notes:
            terminalreporter.section("torchci device leases")
            for note in self.lease_notes:
                terminalreporter.line(note)
        for line in [*self.warnings, *self._missing_lines()]:
            terminalreporter.write_line(line, yellow=True, bold=True)

    def _missing_lines(self) -> list[str]:
        """No silent green: one line whenever suites did not run for want of devices."""
        if not self.missing:
            return []
        total = self.progress.total
        reasons = list(dict.fromkeys(reason for _, reason in self.missing.values()))
        failed = sum(outcome == "failed" for outcome, _ in self.missing.values())
        n = len(self.missing)
        what = "no suite ran" if n >= total else f"{n} of {total} suites did not run"
        # A suite that fails for want of devices fails in its setup: pytest counts an error.
        errors = f"{failed} error{'s' if failed != 1 else ''}"
        how = f"{errors}, {n - failed} skipped" if failed else "skipped"
        return [f"torchci: {what} ({how}): {reasons[0]}" + (" ..." if len(reasons) > 1 else "")]


def say(config: pytest.Config, line: str) -> None:
    """A line of the run's own, on a line of its own."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(line)
    else:
        print(line, flush=True)


def report_sweep(config: pytest.Config, sweep: Sweep) -> None:
    """What the sweep stopped, and what it left alone because it could not prove it the
    run's own."""
    lines = []
    if sweep.stopped:
        lines.append(f"torchci: stopped {len(sweep.stopped)} processes the suites left running")
    lines += [f"torchci: {line}" for line in sweep.lines()]
    for line in lines:
        say(config, line)


def write_timeline(config: pytest.Config, timeline: Timeline, target: Path, title: str) -> None:
    """--torchci-timeline: the trace file ``target``; under GitHub Actions, the gantt
    chart."""
    path = config.getoption("torchci_timeline")
    try:
        write_chrome_trace(target, timeline.spans, title)
    except OSError as exc:
        say(config, f"torchci: --torchci-timeline {path}: cannot write it ({exc.strerror})")
        return
    say(config, f"torchci: timeline: {target} ({len(timeline.spans)} spans)")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if os.environ.get("GITHUB_ACTIONS") and summary:
        with contextlib.suppress(OSError), open(summary, "a", encoding="utf-8") as f:
            f.write(mermaid_gantt(timeline.spans, title))

"""What a person and a CI page see while suites finish: one line per suite, a Markdown
job summary and ``::error`` annotations under GitHub Actions, and a durations store."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..scale.durations import DurationsError, read_durations, write_store

__all__ = ["SETUP_CALLS", "Progress", "SuiteRecord"]

# The user property of an item whose start ran setup calls (installs): which, how long.
SETUP_CALLS = "setup_calls"


def hms(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


@dataclass
class SuiteRecord:
    name: str
    outcome: str = "passed"
    seconds: float = 0.0
    devices: str = ""
    failing: list[str] = field(default_factory=list)
    message: str = ""
    setups: str = ""  # the setup calls its start ran (SETUP_CALLS)


def _failing_cases(text: str) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("--- failing test cases"):
            out = []
            for case in lines[i + 1 :]:
                if case.startswith("---"):
                    break
                out.append(case.strip())
            return out
    return []


class Progress:
    """Collects one record per suite from the reports the controller sees."""

    def __init__(self, config: pytest.Config, total: int) -> None:
        self.config = config
        self.total = total
        self.records: dict[str, SuiteRecord] = {}
        self.done = 0
        self.github = bool(os.environ.get("GITHUB_ACTIONS"))
        # Lines follow pytest's verbosity: from -v on (pytest writes a line per item
        # then), or at any verbosity when asked for.
        self.show = bool(config.getoption("torchci_progress", False)) or (
            config.getoption("verbose", 0) >= 1
        )

    def _record(self, report: pytest.TestReport) -> SuiteRecord:
        record = self.records.get(report.nodeid)
        if record is None:
            name = report.nodeid.split("::", 1)[-1]
            record = self.records[report.nodeid] = SuiteRecord(name)
        return record

    def report(self, report: pytest.TestReport) -> None:
        rec = self._record(report)
        rec.seconds += report.duration
        if report.when == "call" or not report.passed:
            for key, value in report.user_properties:
                if key == "devices":
                    rec.devices = str(value)
        if report.when == "setup":
            for key, value in report.user_properties:
                if key == SETUP_CALLS:
                    rec.setups = str(value)
        if report.failed:
            rec.outcome = "failed" if report.when == "call" else "error"
            text = report.longreprtext
            rec.failing = _failing_cases(text) or rec.failing
            rec.message = next((ln for ln in text.splitlines() if ln.strip()), "")
        elif report.skipped and rec.outcome == "passed":
            rec.outcome = "skipped"
        if report.when != "teardown":  # the item's last report: pytest's line is whole
            return
        self.done += 1
        if self.show:
            where = f" on {rec.devices}" if rec.devices else ""
            first = f" (setup calls first: {rec.setups})" if rec.setups else ""
            self._line(
                f"[{self.done}/{self.total}] {rec.name} {rec.outcome} in {hms(rec.seconds)}"
                f"{where}{first}"
            )
        if self.github and rec.outcome in ("failed", "error"):
            message = (rec.message or "failed").replace("%", "%25").replace("\n", "%0A")
            self._line(f"::error title=torchci {rec.name} {rec.outcome}::{message}")

    def _line(self, line: str) -> None:
        """``line`` on a line of its own, never inside pytest's progress line."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            print(line, flush=True)
            return
        reporter.ensure_newline()
        writer = getattr(reporter, "_tw", None)
        if writer is None:
            reporter.write_line(line)
            return
        if writer.width_of_current_line:
            writer.line()
        # Left open, as pytest leaves its own lines: whatever pytest writes next starts
        # with a newline (its next item, its summary), so no blank line comes between.
        writer.write(line)
        reporter.currentfspath = -2

    def summary_markdown(self, title: str) -> str:
        lines = [
            f"### {title}",
            "",
            "| suite | outcome | duration | devices | failing tests |",
            "|---|---|---|---|---|",
        ]
        for rec in self.records.values():
            failing = "<br>".join(f"`{c}`" for c in rec.failing[:10])
            if len(rec.failing) > 10:
                failing += f"<br>... {len(rec.failing) - 10} more"
            lines.append(
                f"| `{rec.name}` | {rec.outcome} | {hms(rec.seconds)} | {rec.devices or '-'} | "
                f"{failing or '-'} |"
            )
        return "\n".join(lines) + "\n"

    def write_github_summary(self, title: str) -> None:
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.github and path:
            # As the timeline's chart does: a summary file that cannot be written (a
            # runner's mistake) costs the summary only, not the run's report.
            with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as f:
                f.write(self.summary_markdown(title))

    def durations(self) -> dict[str, float]:
        return {
            r.name: round(r.seconds, 3) for r in self.records.values() if r.outcome != "skipped"
        }

    def store(self, path: Path) -> None:
        known: dict[str, float] = {}
        if path.is_file():
            try:
                known = read_durations([path])
            except DurationsError:
                known = {}
        known.update(self.durations())
        write_store(path, known)

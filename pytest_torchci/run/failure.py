"""How a suite failed, as its report says it, and the commands an item ran."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ..data.model import Command
from ..plan.engine import SuiteFailure
from .processes import describe_status

__all__ = ["CommandRecord", "SuiteError"]


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

    @property
    def status(self) -> int:
        """The failed command's exit status, else the failure's own."""
        f = self.failure
        return f.result.returncode if f.result else f.status

    def render(self) -> str:
        f = self.failure
        lines = [f"{self.unit_name} failed ({self.cites})"]
        if f.command is not None and f.result is not None:
            lines.append(f"command: {shlex.join(f.command.argv)}")
            lines.append(f"     in: {f.command.cwd}")
            status = describe_status(f.result.returncode, f.result.timed_out, f.timeout)
            lines.append(f"   exit: {status}")
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

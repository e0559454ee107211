"""What a dry run shows of a unit instead of running it: its commands."""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from ..data.model import Command
from ..plan.planner import Unit

__all__ = ["DryRun", "commands_json"]


@dataclass
class DryRun:
    """Prints each unit's commands; pytest captures them with the item's output."""

    out: TextIO | None = None  # None: sys.stdout when printing (pytest's capture)
    # Under -s the lines go straight to the terminal, where pytest's progress line (a
    # dot per item, or `-v`'s node id) has not ended yet: start each unit on a line of its own.
    fresh_line: bool = False

    def show(self, unit: Unit) -> None:
        if self.fresh_line:
            self._print("")
        self._print(f"[dry-run] {unit.name}: {len(unit.step.commands)} commands")
        for c in unit.step.commands:
            env = " ".join(f"{k}={v}" for k, v in c.env.items() if v is not None)
            self._print(f"  ({c.cwd}) {env + ' ' if env else ''}{shlex.join(c.argv)}")
        for note in unit.step.notes:
            self._print(f"  note: {note}")

    def _print(self, line: str) -> None:
        print(line, file=self.out)


def commands_json(commands: Sequence[Command]) -> str:
    """An item's commands, as its ``commands`` property says them."""
    return _argv_json(tuple(c.argv for c in commands))


@functools.lru_cache(maxsize=256)  # suites run the same command lines again and again
def _argv_json(argvs: tuple[tuple[str, ...], ...]) -> str:
    return json.dumps([shlex.join(argv) for argv in argvs])

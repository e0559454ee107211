"""Signals at any moment: SIGTERM (a cancelled CI job) and SIGINT (Ctrl-C) end a torchci
run the way Ctrl-C ends any pytest run, once, and never once it is finishing.

The first signal raises ``KeyboardInterrupt`` where the run is: pytest stops, each
running suite's processes are stopped, leases are released, and the JUnit file is
written with what finished (exit status 2). Any signal after that, or one that arrives
while the session is finishing (its summary, the JUnit file, the sweep), is noted and
otherwise ignored, so that the run's end is never cut short: no traceback, and a run
that had already finished keeps its own exit status.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

import pytest

__all__ = ["Cancel"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _pytest_is_the_program() -> bool:
    """Whether this process is ``pytest`` or ``python -m pytest`` (not pytest run inside
    another program, as pytester's inline runs are)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("pytest", "pytest.__main__"):
        return True
    return os.path.basename(getattr(main, "__file__", "") or "") in ("pytest", "py.test")


class Cancel:
    """The run's handler for SIGTERM and SIGINT (see the module's docstring)."""

    def __init__(self) -> None:
        self.interrupting = False
        self.finishing = False
        self.ignored: list[str] = []
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Put the previous handlers back, unless pytest is the program and is about to
        exit: then a late signal still cannot cut its end short (its exit status stays
        the run's)."""
        self.finishing = True
        if _pytest_is_the_program() and self._previous:
            for signum in self._previous:  # ignored at the C level: through the exit too
                signal.signal(signum, signal.SIG_IGN)
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.finishing or self.interrupting:
            self.ignored.append(name)  # the run is ending already: let it end in order
            return
        self.interrupting = True
        raise KeyboardInterrupt(f"pytest-torchci: {name} received")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.finishing = True

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.ignored:
            terminalreporter.write_line(
                f"torchci: {', '.join(self.ignored)} received while the run was ending: "
                "it ended in order"
            )

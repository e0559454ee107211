"""Signals at any moment: SIGTERM (a cancelled CI job) and SIGINT (Ctrl-C) end a torchci
run the way Ctrl-C ends any pytest run, once, and never once it is finishing.

The first signal raises ``KeyboardInterrupt`` where the run is: pytest stops, each
running suite's processes are stopped, leases are released, and the JUnit file is
written with what finished (exit status 2). Under xdist the controller passes the signal
on to its workers at once, so that their suites stop now and no new one starts, and
then takes in what the workers report while they stop (see :func:`drain`).

Any signal after that, or one that arrives while the session is finishing (its summary,
the JUnit file, the sweep), is noted and otherwise ignored, so that the run's end is
never cut short: no traceback, and a run that had already finished keeps its own exit
status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import pytest

__all__ = ["Cancel", "drain"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DRAIN_SECONDS = 10.0  # a suite's cancel grace (2 s + 2 s) and a worker's own wind-down


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

    def __init__(self, config: pytest.Config | None = None) -> None:
        self.config = config
        self.interrupting = False
        self.finishing = False
        self.ignored: list[str] = []
        self._previous: dict[int, object] = {}
        # Under xdist, the controller's own workers: they get the signal too, at once.
        self.workers: Callable[[], list[int]] | None = None

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
        if self.workers is not None:
            for pid in self.workers():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        raise KeyboardInterrupt(f"pytest-torchci: {name} received")

    def pytest_keyboard_interrupt(self) -> None:
        """xdist's controller: take in the workers' last reports before it ends."""
        if self.workers is not None and self.config is not None:
            dsession = self.config.pluginmanager.getplugin("dsession")
            if dsession is not None:
                drain(dsession, DRAIN_SECONDS)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.finishing = True

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.ignored:
            terminalreporter.write_line(
                f"torchci: {', '.join(self.ignored)} received while the run was ending: "
                "it ended in order"
            )


def drain(dsession: object, seconds: float) -> None:
    """Take in the results that xdist's workers report while they stop (so that they
    reach the JUnit file), for at most ``seconds``, until every worker is down.

    Only reports are passed on to xdist's controller: a worker going down is noted here,
    not handed to xdist, which would replace it and go on scheduling. Any surprise in
    xdist's internals ends the drain, never the run."""
    import queue
    import time

    deadline = time.monotonic() + seconds
    events = getattr(dsession, "queue", None)
    waiting = set(getattr(dsession, "_active_nodes", ()) or ())
    while events is not None and waiting and time.monotonic() < deadline:
        try:
            name, kwargs = events.get(timeout=0.2)
        except queue.Empty:
            continue
        try:
            if name in ("testreport", "collectreport", "warning_recorded"):
                getattr(dsession, "worker_" + name)(**kwargs)
            elif name in ("workerfinished", "errordown"):
                waiting.discard(kwargs.get("node"))
        except Exception:
            return

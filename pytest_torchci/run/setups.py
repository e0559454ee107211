"""The setup and teardown calls of a route around its suites.

A setup call (an install) runs once, before the first suite that follows it in the
route; under xdist only the first worker of the run on this host runs it, the others
wait for it and take its outcome (a marker in the run's private folder). A teardown call
runs once per process, after the last suite before it has finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from ..plan.engine import SuiteFailure
from ..plan.planner import Unit
from .failure import SuiteError
from .statedir import UnsafeFileError, read_private, write_private

__all__ = ["RouteCalls", "SetupRan"]


@dataclass
class _Outcome:
    error: SuiteError | None = None
    seconds: float | None = None  # how long it ran here; None: another worker ran it


@dataclass(frozen=True)
class SetupRan:
    """A setup call that a suite's start brought about: how long it took here, or None
    where another worker of the run had run it (this one took its outcome)."""

    name: str
    seconds: float | None

    def describe(self) -> str:
        if self.seconds is None:
            return f"{self.name} (run by another worker)"
        return f"{self.name} {self.seconds:.2f} s"


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


@dataclass
class RouteCalls:
    """The route's setup and teardown units, and which of them have run.

    ``run`` runs one (for real, or a dry run's listing); ``shared_dir``, the run's
    private folder, is where the workers of an xdist run agree on who runs a setup
    (None: this process runs alone)."""

    setups: list[Unit]
    teardowns: list[Unit]
    run: Callable[[Unit, str], object]  # (unit, phase); raises SuiteError
    shared_dir: Path | None = None
    setups_done: dict[int, _Outcome] = field(default_factory=dict)
    teardowns_done: set[int] = field(default_factory=set)
    ran: set[int] = field(default_factory=set)  # the test units that have started

    def before(self, index: int, brought: list[SetupRan]) -> None:
        """The setups before the unit at ``index`` in the route, run where no earlier
        suite of this process brought them about; a failed one fails every suite after
        it. Those this call brings about are appended to ``brought``, in order (the
        failed one last)."""
        for unit in self.setups:
            if unit.index >= index:
                break
            outcome = self.setups_done.get(unit.index)
            if outcome is None:
                outcome = _Outcome()
                self.setups_done[unit.index] = outcome
                if self.shared_dir is None:
                    self._setup(unit, outcome)
                else:
                    self._setup_once_per_host(unit, outcome, self.shared_dir)
                brought.append(SetupRan(unit.name, outcome.seconds))
            if outcome.error is not None:
                raise outcome.error

    def _setup(self, unit: Unit, outcome: _Outcome) -> None:
        start = time.monotonic()
        try:
            self.run(unit, "setup")
        except SuiteError as exc:
            outcome.error = exc
        outcome.seconds = time.monotonic() - start

    def _setup_once_per_host(self, unit: Unit, outcome: _Outcome, folder: Path) -> None:
        """The first worker runs the setup and leaves its outcome in a marker; the
        others wait on the lock and take the marker's outcome."""
        key = f"setup-{unit.index}"
        done = folder / f"{key}.done"
        cites = unit.cites
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
                self._setup(unit, outcome)
                record = {"ok": True, "message": "", "cites": cites}
                if outcome.error is not None:
                    text = f"(run by another worker) {outcome.error.render()}"
                    record = {"ok": False, "message": text, "cites": cites}
                with _marker_errors(done):
                    write_private(done, json.dumps(record))
        except _MarkerError as exc:
            if outcome.error is None:
                outcome.error = SuiteError(unit.name, cites, SuiteFailure(str(exc)), [], None)
                outcome.error.phase = "setup"

    def after(self, index: int, next_index: int | None) -> None:
        """The teardowns due after the unit at ``index``, before the one at
        ``next_index`` (None: the last)."""
        for unit in self.teardowns:
            if unit.index in self.teardowns_done:
                continue
            if unit.index < index:
                continue
            if not any(i < unit.index for i in self.ran):
                continue
            if next_index is not None and next_index < unit.index:
                continue
            self.teardowns_done.add(unit.index)
            self.run(unit, "teardown")

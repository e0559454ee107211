"""The setup calls of a route: once per run, whichever worker needs them first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pytest_torchci.run.setups import RouteCalls, SetupRan


def test_a_setup_another_worker_ran_is_named_without_a_time(tmp_path: Path) -> None:
    """Two workers (two RouteCalls sharing the run's folder) each start a suite after the
    same setup call: it runs once; the second takes its outcome and says so."""
    shared = tmp_path / "run"
    shared.mkdir(mode=0o700)
    unit: Any = SimpleNamespace(index=0, name="install_thing", cites="test.sh: install_thing()")
    ran: list[str] = []

    def run(unit: Any, phase: str) -> None:
        ran.append(f"{unit.name} {phase}")

    first, second = (RouteCalls([unit], [], run, shared_dir=shared) for _ in range(2))
    by_first: list[SetupRan] = []
    by_second: list[SetupRan] = []
    first.before(1, by_first)
    second.before(1, by_second)
    assert ran == ["install_thing setup"]
    (mine,) = by_first
    assert mine.name == "install_thing" and mine.seconds is not None and mine.seconds >= 0
    assert by_second == [SetupRan("install_thing", None)]
    assert by_second[0].describe() == "install_thing (run by another worker)"
    # A later suite of either worker brings nothing about.
    again: list[SetupRan] = []
    second.before(2, again)
    assert again == [] and ran == ["install_thing setup"]

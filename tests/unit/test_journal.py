"""GroupJournal: the run's record of its suites' process groups, one file per process."""

from __future__ import annotations

from pathlib import Path

from pytest_torchci.run.journal import GroupJournal
from pytest_torchci.run.statedir import private_folder


def journal(tmp_path: Path) -> GroupJournal:
    return GroupJournal(private_folder(tmp_path / "run") / "groups", "cookie")


def test_a_group_is_on_record_from_its_start(tmp_path: Path) -> None:
    """``+PGID`` is written when the group starts: a worker killed at any moment after
    leaves it named. Its end goes out with the next start, or when the journal closes."""
    first = journal(tmp_path)
    first.register(101)
    assert first.live() == {101}
    first.unregister(101)
    first.register(102)
    assert first.live() == {102}  # 101's end went out with 102's start
    first.unregister(102)
    assert first.live() == {102}  # not yet written: a killed worker's sweep checks it
    first.close()
    assert first.live() == set()

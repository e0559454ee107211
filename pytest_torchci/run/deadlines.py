"""A suite's deadline, decided the way pytest-timeout decides a test's: its ``timeout``
marker, then ``--timeout``, then the ``timeout`` ini value; then the suite's data; then
30 minutes (60 for a slow config or build), none under ``NO_TEST_TIMEOUT``.

pytest-timeout is kept as the outer backstop: the item's ``timeout`` marker becomes the
deadline plus the grace periods plus 10 s, so that it never fires first."""

from __future__ import annotations

import pytest

from ..data.loader import Suite
from ..data.model import Job
from .processes import GRACE_SECONDS

__all__ = [
    "BACKSTOP_MARGIN",
    "DEADLINE_KEY",
    "DEFAULT_SECONDS",
    "SLOW_SECONDS",
    "apply_deadline",
    "deadline",
]

DEFAULT_SECONDS = 1800.0
SLOW_SECONDS = 3600.0
BACKSTOP_MARGIN = 10.0

# An item's deadline in seconds (None: none), as :func:`apply_deadline` recorded it.
DEADLINE_KEY = pytest.StashKey[float | None]()


def deadline(
    item: pytest.Item, suite: Suite | None, job: Job, *, no_test_timeout: bool
) -> float | None:
    """The item's timeout in seconds (None: no deadline)."""
    config = item.config
    explicit: float | None = None
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        raw = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        explicit = float(raw) if raw is not None else None
    elif config.getoption("timeout", None) is not None:
        explicit = float(config.getoption("timeout"))
    elif str(config.getini("timeout") or "").strip():
        explicit = float(str(config.getini("timeout")))
    if explicit is not None:
        return explicit or None
    if no_test_timeout:
        return None
    if suite is not None and suite.timeout is not None:
        return suite.timeout or None
    slow = "slow" in job.test_config or "slow" in job.build_environment
    return SLOW_SECONDS if slow else DEFAULT_SECONDS


def apply_deadline(
    item: pytest.Item, timeout: float | None, grace: tuple[float, float] = GRACE_SECONDS
) -> None:
    """Record the deadline on the item and give pytest-timeout its later backstop (past
    the deadline and the ``grace`` periods of the signals that stop the suite)."""
    item.stash[DEADLINE_KEY] = timeout
    item.own_markers = [m for m in item.own_markers if m.name != "timeout"]
    backstop = 0.0 if timeout is None else timeout + sum(grace) + BACKSTOP_MARGIN
    item.add_marker(pytest.mark.timeout(backstop))

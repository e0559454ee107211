"""What a job's suites need of the host: the kind of device a build uses, and how many
devices (and which hardware) a suite of it needs."""

from __future__ import annotations

from collections.abc import Sequence

from ..plan.planner import Unit

__all__ = ["KINDS_BY_PRIORITY", "job_kind", "unit_need"]

KINDS_BY_PRIORITY = ("rocm", "xpu", "cuda")


def job_kind(traits: Sequence[str]) -> str | None:
    """The kind of device a build with these traits uses (None: a CPU build)."""
    return next((kind for kind in KINDS_BY_PRIORITY if kind in traits), None)


def unit_need(unit: Unit, kind: str | None) -> tuple[int, tuple[str, ...]]:
    """(device count, hardware) of a test unit on a ``kind`` build; -1 is all of them."""
    suite = unit.suite
    if suite is None or unit.role != "test":
        return 0, ()
    count = 0
    if kind is not None:
        count = (
            suite.devices
            if suite.devices is not None
            else (-1 if suite.family == "distributed" else 1)
        )
    return count, tuple(suite.hardware)

"""Where a suite runs: the devices it needs, whether the host has them, and its lease.

A suite of a GPU build needs one device, a ``distributed`` one all of the host's, unless
its data says otherwise (``devices``, ``share``, ``hardware``). Items carry the need as
markers (``torchci_devices``, ``torchci_hardware``), so a conftest can change it; the
lease is taken from the item's markers when it runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ..devices.discovery import Host, discover
from ..devices.leases import Lease, LeaseError, LeaseManager, Need
from ..devices.needs import unit_need
from ..plan.planner import Unit
from ..run.timeline import Span, Timeline
from .settings import Settings

if TYPE_CHECKING:
    from .items import SuiteItem

__all__ = ["MISSING_DEVICES", "Placement"]

# The user property of an item the host cannot run: why (the controller counts them).
MISSING_DEVICES = "torchci_missing_devices"


@dataclass
class Placement:
    """The host's devices and this process's leases on them."""

    settings: Settings
    kind: str | None
    config: pytest.Config | None = None
    _host: Host | None = None
    _leases: LeaseManager | None = None
    _ranks: dict[str, int] | None = field(default=None, repr=False)
    timeline: Timeline | None = None  # where lease waits are recorded

    @property
    def host(self) -> Host:
        if self._host is None:
            declared = self.settings.declared_host
            self._host = declared if declared is not None else discover(prefer=self.kind)
        return self._host

    def markers(self, unit: Unit) -> list[pytest.MarkDecorator]:
        count, hardware = unit_need(unit, self.kind)
        marks = []
        if count != 0:
            share = unit.suite is not None and unit.suite.share
            marks.append(pytest.mark.torchci_devices(count, exclusive=not share))
        if hardware:
            marks.append(pytest.mark.torchci_hardware(*hardware))
        return marks

    @staticmethod
    def need_for(item: SuiteItem) -> Need:
        mark = item.get_closest_marker("torchci_devices")
        hardware = item.get_closest_marker("torchci_hardware")
        count, exclusive = 0, True
        if mark is not None:
            count = int(mark.args[0]) if mark.args else int(mark.kwargs.get("count", 1))
            exclusive = bool(mark.kwargs.get("exclusive", True))
        return Need(count, exclusive, tuple(hardware.args) if hardware is not None else ())

    def gate(self, item: SuiteItem) -> None:
        """Skip (or fail, with --torchci-require-devices) a suite the host cannot run."""
        if self.settings.dry_run:
            return
        need = self.need_for(item)
        if need.count == 0 and not need.hardware:
            return
        host, kind = self.host, self.kind
        reason = None
        if need.count != 0 and (host.kind != kind or host.count == 0):
            what = "all" if need.count < 0 else str(need.count)
            reason = f"needs {what} {kind} device{'s' if need.count != 1 else ''}"
        elif need.count > host.count:
            reason = f"needs {need.count} {kind} devices"
        elif need.hardware and not any(host.has(None, hw) for hw in need.hardware):
            reason = f"needs {' or '.join(need.hardware)} hardware"
        if reason is None:
            return
        reason += f"; the host has {host.describe()} ({host.source})"
        # The controller counts these for its summary line (see reporting.RunSummary).
        item.user_properties.append((MISSING_DEVICES, reason))
        why = self.settings.require_devices
        if why is not None:
            pytest.fail(f"{item.name} {reason} ({why})", pytrace=False)
        pytest.skip(f"{item.name} {reason}")

    def rank(self, item: SuiteItem) -> int:
        """The item's place in the session's order (the longest suites first)."""
        if self._ranks is None:
            self._ranks = {it.nodeid: i for i, it in enumerate(item.session.items)}
        return self._ranks.get(item.nodeid, len(self._ranks))

    def leases_active(self) -> bool:
        """Leases are taken only when xdist runs items side by side."""
        return self.config is not None and hasattr(self.config, "workerinput")

    def lease_manager(self) -> LeaseManager:
        if self._leases is None:
            self._leases = LeaseManager(
                self.host,
                self.settings.lock_dir,
                self.settings.slots_per_device,
                shared_dir=self.settings.shared_lock_dir,
            )
        return self._leases

    @contextmanager
    def lease(self, item: SuiteItem) -> Iterator[Lease | None]:
        """Hold the item's devices while it runs (nothing without xdist)."""
        need = self.need_for(item)
        if not self.leases_active() or need.count == 0 or self.host.count == 0:
            yield None
            return
        notes: list[str] = []
        workerinput = getattr(self.config, "workerinput", None) or {}
        worker = str(workerinput.get("workerid", "main"))
        manager = self.lease_manager()
        problem: str | None = None
        asked = time.time()
        try:
            lease = manager.acquire(
                need, f"{item.nodeid} [{worker}]", on_wait=notes.append, rank=self.rank(item)
            )
        except LeaseError as exc:
            problem = f"{item.name}: {exc}"
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        if notes and self.timeline is not None:
            self.timeline.add(
                Span(item.name, "lease-wait", worker, asked, time.time(), "waited", detail=notes[0])
            )
        try:
            where = f"{self.host.kind}:{','.join(lease.ids)}"
            item.user_properties.append(("devices", where))
            text = f"{item.nodeid} ran on {where}"
            if notes:
                text += f" after waiting {lease.waited:.1f} s; {notes[0]}"
            item.add_report_section("call", "torchci lease", text)
            yield lease
        finally:
            manager.release(lease)

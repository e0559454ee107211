"""Device leases: one kernel-released file lock per device slot.

A suite asks for ``count`` devices, exclusively (every slot of each device) or as a light
suite (one slot of one device). Slots are tried without blocking, in one global order,
and taken all or nothing: a request that cannot be met in full releases what it took and
tries again later, so two multi-device suites never hold part of what the other needs.
``filelock.FileLock`` uses ``flock``: the kernel releases a lease when its holder dies,
even by SIGKILL, and separate pytest processes on one host see each other's leases.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from .devices import Host

__all__ = ["Lease", "LeaseError", "LeaseManager", "Need", "writable_problem"]


def writable_problem(folder: Path) -> str | None:
    """Why lock files cannot be written in ``folder`` (None: they can); made if missing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class LeaseError(RuntimeError):
    """A lease that can never be granted, or the lock folder is unusable."""


@dataclass(frozen=True)
class Need:
    """What a suite needs: ``count`` devices (``-1``: all of the host's), exclusively or
    one shared slot, and possibly a kind of hardware."""

    count: int = 0
    exclusive: bool = True
    hardware: tuple[str, ...] = ()


@dataclass
class Lease:
    """Devices held by one item."""

    ids: tuple[str, ...]
    locks: list[FileLock] = field(default_factory=list)
    waited: float = 0.0


class LeaseManager:
    """Grants leases on ``host``'s devices, ``slots`` per device."""

    def __init__(self, host: Host, lock_dir: Path, slots: int = 1, poll: float = 0.05) -> None:
        self.host = host
        self.lock_dir = lock_dir
        self.slots = max(1, slots)
        self.poll = poll
        problem = writable_problem(lock_dir)
        if problem is not None:
            raise LeaseError(f"lock folder {lock_dir}: cannot write there ({problem})")

    def _path(self, device: str, slot: int) -> Path:
        return self.lock_dir / f"{self.host.kind}-{device}.slot{slot}.lock"

    def _try(self, device: str, slot: int) -> FileLock | None:
        lock = FileLock(self._path(device, slot), timeout=0)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            return None
        return lock

    def _grab(self, count: int, exclusive: bool) -> list[tuple[str, list[FileLock]]] | None:
        taken: list[tuple[str, list[FileLock]]] = []
        for device in self.host.devices:
            if len(taken) == count:
                break
            locks: list[FileLock] = []
            wanted = range(self.slots) if exclusive else None
            if wanted is not None:
                for slot in wanted:
                    lock = self._try(device.id, slot)
                    if lock is None:
                        break
                    locks.append(lock)
                if len(locks) != self.slots:
                    for lock in locks:
                        lock.release()
                    continue
            else:
                for slot in range(self.slots):
                    lock = self._try(device.id, slot)
                    if lock is not None:
                        locks.append(lock)
                        break
                if not locks:
                    continue
            taken.append((device.id, locks))
        if len(taken) == count:
            return taken
        for _, locks in taken:
            for lock in locks:
                lock.release()
        return None

    def holders(self) -> list[str]:
        """Who holds which slot now, from the owner notes beside the locks."""
        out = []
        for note in sorted(self.lock_dir.glob(f"{self.host.kind}-*.owner")):
            with contextlib.suppress(OSError):
                out.append(f"{note.name.removesuffix('.owner')}: {note.read_text().strip()}")
        return out

    def _waiters(self) -> list[tuple[int, Path]]:
        """Live waiters (rank, file): each holds a lock on its file while it waits."""
        folder = self.lock_dir / f"{self.host.kind}.waiting"
        out = []
        for path in folder.glob("*.wait"):
            probe = FileLock(path.with_suffix(".lock"), timeout=0)
            try:
                probe.acquire(blocking=False)
            except Timeout:
                with contextlib.suppress(ValueError):
                    out.append((int(path.name.split("-")[0]), path))
                continue
            probe.release()  # nobody holds it: its waiter is gone
            with contextlib.suppress(OSError):
                path.unlink()
        return sorted(out)

    def acquire(
        self,
        need: Need,
        owner: str,
        *,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        rank: int = 0,
    ) -> Lease:
        """Block until ``need`` is granted (or ``timeout`` passes).

        Waiting requests are served by ``rank`` (lower first: the run's longest suites),
        so a suite that needs four devices is not starved by one-device suites that take
        each device as it frees up.
        """
        count = self.host.count if need.count < 0 else need.count
        if count > self.host.count:
            raise LeaseError(
                f"needs {count} {self.host.kind or 'accelerator'} devices; the host has "
                f"{self.host.count} ({self.host.describe()})"
            )
        start = time.monotonic()
        folder = self.lock_dir / f"{self.host.kind}.waiting"
        folder.mkdir(exist_ok=True)
        mine = folder / f"{rank:08d}-{os.getpid()}-{time.monotonic_ns()}.wait"
        alive = FileLock(mine.with_suffix(".lock"), timeout=0)
        alive.acquire(blocking=False)
        mine.write_text(owner)
        # Requests that arrive together (the first suite of every worker) settle for one
        # poll so that they are all in line before the first is served.
        time.sleep(self.poll)
        told = False
        try:
            while True:
                first = self._waiters()
                if not first or first[0][1] == mine:
                    got = self._grab(count, need.exclusive)
                    if got is not None:
                        return self._granted(got, owner, start)
                if on_wait is not None and not told:
                    kind = self.host.kind
                    what = f"{count} {kind} device{'s' if count != 1 else ''}"
                    held = "; ".join(self.holders()) or "unknown holders"
                    how = "whole" if need.exclusive else "a slot"
                    on_wait(f"{owner} waits for {what} ({how}); held: {held}")
                    told = True
                if timeout is not None and time.monotonic() - start > timeout:
                    raise LeaseError(f"no lease on {count} devices within {timeout:g} s")
                time.sleep(self.poll)
        finally:
            with contextlib.suppress(OSError):
                mine.unlink()
            alive.release()
            with contextlib.suppress(OSError):
                mine.with_suffix(".lock").unlink()

    def _granted(self, got: list[tuple[str, list[FileLock]]], owner: str, start: float) -> Lease:
        lease = Lease(
            tuple(d for d, _ in got),
            [lk for _, locks in got for lk in locks],
            time.monotonic() - start,
        )
        self._note(lease, owner)
        return lease

    def _note(self, lease: Lease, owner: str) -> None:
        since = time.strftime("%H:%M:%S")
        text = f"{owner} (pid {os.getpid()} on {socket.gethostname()}, since {since})"
        for device in lease.ids:
            note = self.lock_dir / f"{self.host.kind}-{device}.owner"
            with contextlib.suppress(OSError):
                tmp = note.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(text)
                tmp.replace(note)

    def release(self, lease: Lease) -> None:
        for device in lease.ids:
            with contextlib.suppress(OSError):
                (self.lock_dir / f"{self.host.kind}-{device}.owner").unlink()
        for lock in lease.locks:
            with contextlib.suppress(Exception):
                lock.release()
        lease.locks.clear()

    @contextlib.contextmanager
    def leased(self, need: Need, owner: str, **kwargs: object) -> Iterator[Lease]:
        lease = self.acquire(need, owner, **kwargs)  # type: ignore[arg-type]
        try:
            yield lease
        finally:
            self.release(lease)

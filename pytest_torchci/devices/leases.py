"""Device leases: one kernel-released file lock per device slot.

A suite asks for ``count`` devices, exclusively (every slot of each device) or as a light
suite (one slot of one device). Slots are tried without blocking, in one global order,
and taken all or nothing: a request that cannot be met in full releases what it took and
tries again later, so two multi-device suites never hold part of what the other needs.
``filelock.FileLock`` uses ``flock``: the kernel releases a lease when its holder dies,
even by SIGKILL, and separate pytest processes on one host see each other's leases.

The lock files live in the run's private state folder, or in a folder that the host's
users share (``shared_dir``), where they are made readable and writable by all. Owner
notes and the queue of waiting requests always live in the private folder (see
:mod:`statedir`). No file there is opened through a symbolic link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ..run.statedir import (
    UnsafeFileError,
    UnsafeFolderError,
    open_private,
    private_folder,
    read_private,
    write_private,
)
from .discovery import Host

__all__ = ["Lease", "LeaseError", "LeaseManager", "Need"]


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

    def __init__(
        self,
        host: Host,
        lock_dir: Path,
        slots: int = 1,
        poll: float = 0.05,
        *,
        shared_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.lock_dir = lock_dir
        self.shared_dir = shared_dir
        self.slots = max(1, slots)
        self.poll = poll
        self.unusable: dict[Path, str] = {}
        try:
            private_folder(lock_dir, "lock folder")
        except UnsafeFolderError as exc:
            raise LeaseError(str(exc)) from None

    def _path(self, device: str, slot: int) -> Path:
        return (self.shared_dir or self.lock_dir) / f"{self.host.kind}-{device}.slot{slot}.lock"

    def _try(self, device: str, slot: int) -> FileLock | None:
        path = self._path(device, slot)
        # Shared lock files must open for every user of the host (filelock sets the mode
        # on the files it makes, whatever the umask).
        lock = FileLock(path, timeout=0, mode=0o666 if self.shared_dir else 0o600)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            return None
        except OSError as exc:
            # Not ours to use (a link, another user's file): that slot is not available,
            # and the run says so; the other devices still serve.
            if exc.errno == errno.ELOOP:
                why = "a symbolic link, not followed"
            else:
                why = f"{exc.strerror or exc}; made by another user?"
            self.unusable[path] = why
            return None
        self.unusable.pop(path, None)
        return lock

    def _usable(self, exclusive: bool) -> int:
        """How many devices could serve a request, leaving out unusable lock files."""
        count = 0
        for device in self.host.devices:
            bad = sum(self._path(device.id, s) in self.unusable for s in range(self.slots))
            count += bad == 0 if exclusive else bad < self.slots
        return count

    def _problems(self) -> str:
        return "; ".join(f"lock file {p}: {why}" for p, why in sorted(self.unusable.items()))

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
            with contextlib.suppress(OSError, UnsafeFileError):
                text = read_private(note)
                if text is not None:
                    out.append(f"{note.name.removesuffix('.owner')}: {text.strip()}")
        if self.shared_dir is not None:
            out.append("other users' leases are not listed")
        return out

    def _waiters(self) -> list[tuple[int, Path]]:
        """Live waiters (rank, file): each holds a lock on its file while it waits."""
        folder = self.lock_dir / f"{self.host.kind}.waiting"
        out = []
        for path in folder.glob("*.wait"):
            probe = FileLock(path.with_suffix(".lock"), timeout=0, mode=0o600)
            try:
                probe.acquire(blocking=False)
            except Timeout:
                with contextlib.suppress(ValueError):
                    out.append((int(path.name.split("-")[0]), path))
                continue
            except OSError:  # a link planted there: not a waiter of ours
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
        mine, alive = self._queue_up(owner, rank)
        told = False
        try:
            while True:
                first = self._waiters()
                if not first or first[0][1] == mine:
                    got = self._grab(count, need.exclusive)
                    if got is not None:
                        return self._granted(got, owner, start)
                    if self._usable(need.exclusive) < count:
                        raise LeaseError(
                            f"cannot lease {count} {self.host.kind} device"
                            f"{'s' if count != 1 else ''}: {self._problems()}"
                        )
                if on_wait is not None and not told:
                    on_wait(self._waiting(owner, count, need.exclusive))
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

    def _queue_up(self, owner: str, rank: int) -> tuple[Path, FileLock]:
        """This request's place in line: a file named by rank, and a lock held while the
        request lives (a killed waiter's place is known stale by its free lock)."""
        try:
            folder = private_folder(self.lock_dir / f"{self.host.kind}.waiting", "lock folder")
        except UnsafeFolderError as exc:
            raise LeaseError(str(exc)) from None
        mine = folder / f"{rank:08d}-{os.getpid()}-{time.monotonic_ns()}.wait"
        alive = FileLock(mine.with_suffix(".lock"), timeout=0, mode=0o600)
        alive.acquire(blocking=False)
        fd = open_private(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(owner)
        # Requests that arrive together (the first suite of every worker) settle for one
        # poll so that they are all in line before the first is served.
        time.sleep(self.poll)
        return mine, alive

    def _waiting(self, owner: str, count: int, exclusive: bool) -> str:
        """What a waiting request says once: what it waits for, and who holds it."""
        what = f"{count} {self.host.kind} device{'s' if count != 1 else ''}"
        held = "; ".join(self.holders()) or "unknown holders"
        if self.unusable:
            held += f"; not usable: {self._problems()}"
        how = "whole" if exclusive else "a slot"
        return f"{owner} waits for {what} ({how}); held: {held}"

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
            with contextlib.suppress(OSError, UnsafeFileError):
                write_private(note, text)

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

"""Stopping what this run started, and nothing else.

Every command the run starts carries the run's cookie in its environment
(:data:`COOKIE_VARIABLE`, a random value made once per run and shared by xdist's workers).
A process group that the run has no handle on (one named in a journal after a cancel, what
a command left running after its leader was reaped) is only a claim: each of its processes
is signalled only when it runs as the current user and carries the cookie, read from
``/proc/PID/environ``. A process is held by a pidfd while it is checked and signalled, so
its pid cannot be reused in between. Process groups 0 and 1 and the run's own group are
never signalled. What cannot be proven the run's own is left alone and reported.

(Where the run still holds the group leader unreaped, as :func:`runner.stop_group` does,
the group is provably its own without these checks: the leader's pid is the group's id
and cannot be reused until it is reaped, and only processes of the session it started can
join the group.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["COOKIE_VARIABLE", "Sweep", "new_cookie", "open_pidfd", "stop_groups"]

COOKIE_VARIABLE = "TORCHCI_RUN_COOKIE"
CANCEL_GRACE = (2.0, 2.0)  # SIGINT -> SIGTERM, SIGTERM -> SIGKILL


def new_cookie() -> str:
    """A run's cookie: unguessable, so that no process carries it by chance."""
    return secrets.token_hex(16)


@dataclass
class Sweep:
    """What a sweep did: the processes it signalled, and what it left alone and why."""

    stopped: set[int] = field(default_factory=set)
    skipped: dict[int, str] = field(default_factory=dict)  # pid -> why
    refused: dict[int, str] = field(default_factory=dict)  # process group -> why

    def lines(self) -> list[str]:
        """A line per process group refused and per process left alone."""
        out = [f"process group {g}: not signalled ({why})" for g, why in self.refused.items()]
        out += [f"pid {p}: left alone ({why})" for p, why in sorted(self.skipped.items())]
        return out


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid``, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2])


def members(pgids: Iterable[int]) -> dict[int, int]:
    """The live (not zombie) processes of ``pgids``: pid -> process group."""
    wanted = set(pgids)
    out: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        found = _stat(int(name))
        if found is not None and found[1] in wanted and found[0] not in ("Z", "X"):
            out[int(name)] = found[1]
    return out


def why_not_ours(pid: int, cookie: str) -> str | None:
    """None when ``pid`` runs as the current user and carries ``cookie``; else why not."""
    if pid == os.getpid():
        return "the run itself"
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            uid_line = next((ln for ln in f if ln.startswith("Uid:")), "")
        uids = [int(u) for u in uid_line.split()[1:3]]
    except (OSError, ValueError):
        return "cannot read its owner"
    if uids[:1] != [os.getuid()]:
        return f"runs as uid {uids[0] if uids else '?'}, not {os.getuid()}"
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError as exc:
        return f"cannot read its environment ({exc.strerror or exc})"
    entry = f"{COOKIE_VARIABLE}={cookie}".encode()
    if entry not in environ.split(b"\0"):
        return f"does not carry this run's {COOKIE_VARIABLE}"
    return None


def open_pidfd(pid: int) -> int | None:
    """A descriptor that holds ``pid`` (readable when it ends; Linux 5.3+), or None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _signal(pid: int, fd: int | None, sig: int) -> bool:
    """Send ``sig`` through the pidfd (or to the pid where there are none); False if the
    process is gone."""
    try:
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _proven(groups: set[int], cookie: str, sweep: Sweep) -> dict[int, int | None]:
    """The processes of ``groups`` proven this run's: pid -> pidfd (None: no pidfds)."""
    out: dict[int, int | None] = {}
    for pid in members(groups):
        if pid in sweep.skipped:
            continue
        fd = open_pidfd(pid)
        why = why_not_ours(pid, cookie)
        # Checked through /proc/PID: still the process the pidfd holds only if it is alive.
        if fd is not None and not _signal(pid, fd, 0):
            os.close(fd)
            continue
        if why is not None:
            sweep.skipped[pid] = why
            if fd is not None:
                os.close(fd)
            continue
        out[pid] = fd
    return out


def refusal(pgid: int) -> str | None:
    """Why process group ``pgid`` is never signalled, or None."""
    if pgid <= 1:
        return "group 0 and group 1 are never signalled"
    if pgid == os.getpgrp():
        return "the run's own process group"
    return None


def stop_groups(
    pgids: Iterable[int], cookie: str, grace: tuple[float, float] = CANCEL_GRACE
) -> Sweep:
    """SIGINT, then SIGTERM, then SIGKILL, each after a grace period, to the processes of
    ``pgids`` that are provably this run's (see the module's docstring)."""
    sweep = Sweep()
    groups: set[int] = set()
    for pgid in pgids:
        why = refusal(pgid)
        if why is None:
            groups.add(pgid)
        else:
            sweep.refused[pgid] = why
    if not groups:
        return sweep
    for sig, wait in ((signal.SIGINT, grace[0]), (signal.SIGTERM, grace[1]), (signal.SIGKILL, 0)):
        targets = _proven(groups, cookie, sweep)
        if not targets:
            break
        for pid, fd in targets.items():
            if _signal(pid, fd, sig):
                sweep.stopped.add(pid)
            if fd is not None:
                os.close(fd)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(p not in sweep.skipped for p in members(groups)):
            time.sleep(0.05)
    if sig == signal.SIGKILL:
        with contextlib.suppress(Exception):
            # What was forked after the last check, before the SIGKILL reached its parent.
            for pid, fd in _proven(groups, cookie, sweep).items():
                _signal(pid, fd, signal.SIGKILL)
                if fd is not None:
                    os.close(fd)
    return sweep

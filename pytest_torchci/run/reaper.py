"""Stopping what this run started, and nothing else.

Every command the run starts carries the run's cookie in its environment
(:data:`COOKIE_VARIABLE`, a random value made once per run and shared by xdist's workers)
and its item's token (:data:`TOKEN_VARIABLE`); whatever the command starts inherits both.

- A process group named in a journal after a cancel, or what a command left running
  after its leader was reaped, is only a claim: each of its processes is signalled only
  when it runs as the current user and carries the cookie, read from
  ``/proc/PID/environ``. A process is held by a pidfd while it is checked and signalled,
  so its pid cannot be reused in between. Process groups 0 and 1 and the run's own group
  are never signalled. What cannot be proven the run's own is left alone and reported.
- A process that left its group (a session of its own, as torchrun's agent makes for its
  workers) is found by its token (:func:`stop_tree`, a scan of ``/proc``). The process
  that runs suites is a child subreaper (:func:`set_subreaper`): such a process comes
  back to it as a child when its parent dies, so a cheap look at its own children
  (:func:`stray_children`) says whether a command left anything behind.

(Where the run still holds the group leader unreaped, as :func:`runner.stop_group` does,
the group is provably its own without these checks: the leader's pid is the group's id
and cannot be reused until it is reaped, and only processes of the session it started can
join the group.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .libc import libc

__all__ = [
    "COOKIE_VARIABLE",
    "TOKEN_VARIABLE",
    "Sweep",
    "carriers",
    "children",
    "new_children",
    "new_cookie",
    "new_token",
    "open_pidfd",
    "reap",
    "set_subreaper",
    "signal_tree",
    "stop_groups",
    "stop_tree",
]

COOKIE_VARIABLE = "TORCHCI_RUN_COOKIE"
TOKEN_VARIABLE = "TORCHCI_ITEM_TOKEN"  # one per item: what its commands started
CANCEL_GRACE = (2.0, 2.0)  # SIGINT -> SIGTERM, SIGTERM -> SIGKILL


def new_cookie() -> str:
    """A run's cookie: unguessable, so that no process carries it by chance."""
    return secrets.token_hex(16)


_TOKEN_PREFIX = secrets.token_hex(6)  # drawn once per process
_tokens = itertools.count()


def new_token() -> str:
    """An item's token: unique among the run's items (a random part drawn once, the
    process's id, a count), with no system call per item as a random one would need."""
    return f"{_TOKEN_PREFIX}{os.getpid():x}.{next(_tokens):x}"


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


def _environ_entries(pid: int) -> set[bytes] | str:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return set(f.read().split(b"\0"))
    except OSError as exc:
        return f"cannot read its environment ({exc.strerror or exc})"


def why_not_ours(pid: int, cookie: str, token: str | None = None) -> str | None:
    """None when ``pid`` runs as the current user and carries ``cookie`` (and ``token``,
    when given); else why not."""
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
    entries = _environ_entries(pid)
    if isinstance(entries, str):
        return entries
    if f"{COOKIE_VARIABLE}={cookie}".encode() not in entries:
        return f"does not carry this run's {COOKIE_VARIABLE}"
    if token is not None and f"{TOKEN_VARIABLE}={token}".encode() not in entries:
        return f"does not carry the suite's {TOKEN_VARIABLE}"
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


def _proven(
    candidates: Iterable[int], cookie: str, token: str | None, sweep: Sweep, *, report: bool
) -> dict[int, int | None]:
    """The ``candidates`` proven this run's: pid -> pidfd (None: no pidfds). With
    ``report``, what is not proven goes into ``sweep.skipped``."""
    out: dict[int, int | None] = {}
    for pid in candidates:
        if pid == os.getpid():
            continue
        fd = open_pidfd(pid)
        why = why_not_ours(pid, cookie, token)
        # Checked through /proc/PID: still the process the pidfd holds only if it is alive.
        if fd is not None and not _signal(pid, fd, 0):
            os.close(fd)
            continue
        if why is not None:  # asked again next phase: it may have been mid-exec
            if report:
                sweep.skipped[pid] = why
            if fd is not None:
                os.close(fd)
            continue
        sweep.skipped.pop(pid, None)
        out[pid] = fd
    return out


def _live_pids() -> list[int]:
    """Every live (not zombie) process but this one."""
    out = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != os.getpid():
                found = _stat(int(name))
                if found is not None and found[0] not in ("Z", "X"):
                    out.append(int(name))
    return out


def _phases(
    find: Callable[[], dict[int, int | None]],
    alive: Callable[[], bool],
    grace: tuple[float, float],
    sweep: Sweep,
) -> None:
    """SIGINT, then SIGTERM, then SIGKILL, each after a grace period while ``alive``, to
    what ``find`` proves the run's; and a last SIGKILL for what forked meanwhile."""
    for sig, wait in ((signal.SIGINT, grace[0]), (signal.SIGTERM, grace[1]), (signal.SIGKILL, 0)):
        targets = find()
        if not targets:
            return
        for pid, fd in targets.items():
            if _signal(pid, fd, sig):
                sweep.stopped.add(pid)
            if fd is not None:
                os.close(fd)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and alive():
            time.sleep(0.05)
    for pid, fd in find().items():
        _signal(pid, fd, signal.SIGKILL)
        if fd is not None:
            os.close(fd)


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
    if groups:
        _phases(
            lambda: _proven(members(groups), cookie, None, sweep, report=True),
            lambda: any(p not in sweep.skipped for p in members(groups)),
            grace,
            sweep,
        )
        # A process caught while it exited (its environment already gone) was not left
        # alone: only what still lives is reported.
        live = members(groups)
        sweep.skipped = {p: why for p, why in sweep.skipped.items() if p in live}
    return sweep


def signal_tree(cookie: str, token: str, sig: int) -> None:
    """Send ``sig`` to every process that carries ``cookie`` and ``token``."""
    sweep = Sweep()
    for pid, fd in _proven(carriers(cookie, token), cookie, token, sweep, report=False).items():
        _signal(pid, fd, sig)
        if fd is not None:
            os.close(fd)


def carriers(cookie: str, token: str | None = None) -> list[int]:
    """The live processes of the current user that carry ``cookie`` (and ``token``)."""
    return [p for p in _live_pids() if why_not_ours(p, cookie, token) is None]


def stop_tree(cookie: str, token: str | None, grace: tuple[float, float] = CANCEL_GRACE) -> Sweep:
    """Stop every process that carries ``cookie`` and ``token`` (None: every process of
    the run), wherever it is: in a session or group of its own, re-parented, ignoring
    SIGTERM. Found by a scan of ``/proc``."""
    sweep = Sweep()
    _phases(
        lambda: _proven(carriers(cookie, token), cookie, token, sweep, report=False),
        lambda: bool(carriers(cookie, token)),
        grace,
        sweep,
    )
    return sweep


# --- the process that runs suites: orphans come back to it --------------------------

_PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool = True) -> bool:
    """Make this process the reaper of its descendants' orphans (Linux): a suite's
    process whose parent dies comes back to it, so nothing a suite starts is lost from
    sight. False where the system cannot."""
    try:
        return int(libc().prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def children() -> list[int]:
    """This process's children, re-parented orphans among them (they come back to the
    main thread: the kernel gives an orphan to the first live thread of its reaper).
    Empty where the kernel has no ``/proc/PID/task/TID/children`` (CONFIG_PROC_CHILDREN):
    there, what left its group is stopped by its token at a deadline or a cancel, and by
    the run's cookie at the run's end, not when its command ends."""
    try:  # one system call where there are none (the common case), not a file's read
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return []
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def new_children(before: Iterable[int]) -> tuple[list[int], list[int]]:
    """(live, dead) children of this process that were not among ``before``: in the
    process that runs suites, what a command left behind and came back to it."""
    known = set(before)
    live: list[int] = []
    dead: list[int] = []
    for pid in children():
        if pid in known:
            continue
        found = _stat(pid)
        if found is not None:
            (dead if found[0] in ("Z", "X") else live).append(pid)
    return live, dead


def reap(pids: Iterable[int]) -> None:
    """Collect the exit status of these children (zombies), so that none is left."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)

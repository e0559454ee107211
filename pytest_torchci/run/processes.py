"""Running one command line: its own process group, a deadline, output to a log.

The child starts in a new session so that the whole tree it starts can be stopped
together. Its output (stdout and stderr merged) is streamed to the log file, to a live
stream when the user asked for one (``-s``), and kept in a tail for failure reports.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TextIO

from ..data.model import Command
from ..plan.engine import CommandResult
from ..plan.status import describe_status
from .pathsearch import find_program
from .reaper import (
    CANCEL_GRACE,
    COOKIE_VARIABLE,
    TOKEN_VARIABLE,
    Sweep,
    children,
    new_children,
    new_cookie,
    open_pidfd,
    reap,
    signal_tree,
    stop_groups,
    stop_tree,
    why_not_ours,
)

__all__ = [
    "CANCEL_GRACE",
    "GRACE_SECONDS",
    "RunOptions",
    "child_env",
    "describe_status",
    "run_command",
    "stop_group",
]

GRACE_SECONDS = (5.0, 5.0)  # SIGINT -> SIGTERM, SIGTERM -> SIGKILL
TAIL_LINES = 50


class Sink(Protocol):
    """Where output lines go: a text file, a terminal, or a :class:`SuiteLog`."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class LogSink(Sink, Protocol):
    """A log file: a sink with a descriptor that a child can write into directly, and
    that can be read back (see RunOptions)."""

    def fileno(self) -> int: ...

    def readable(self) -> bool: ...


def child_env(base: Mapping[str, str], delta: Mapping[str, str | None]) -> dict[str, str]:
    """``base`` with ``delta`` applied (``None`` unsets)."""
    env = dict(base)
    for key, value in delta.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@functools.lru_cache(maxsize=32)  # the same PATH and folder, command after command
def path_first(path: str, folder: str) -> str:
    """``path`` with ``folder`` moved to its front."""
    parts = [p for p in path.split(os.pathsep) if p and p != folder]
    return os.pathsep.join([folder, *parts])


def stop_group(
    proc: subprocess.Popen[bytes],
    grace: tuple[float, float] = GRACE_SECONDS,
    *,
    cookie: str | None = None,
    token: str | None = None,
) -> None:
    """SIGINT the process group (so pytest children flush their XML), then SIGTERM, then
    SIGKILL; afterwards nothing of the group is left. With ``token``, every process that
    carries it (one that left the group for a session of its own) gets the same signals.

    The leader is not reaped until the end: its pid is the group's id, so while it is
    unreaped the group is provably the one this run started (see :mod:`reaper`)."""
    if proc.returncode is not None:  # reaped already: only what proves itself ours
        return
    pgid = proc.pid
    for sig, wait in ((signal.SIGINT, grace[0]), (signal.SIGTERM, grace[1])):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        if cookie is not None and token is not None:
            signal_tree(cookie, token, sig)
        if _exited(proc, wait):
            break
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if cookie is not None and token is not None:
        stop_tree(cookie, token, (0.0, 0.0))


@dataclass
class RunOptions:
    """Where a command's output goes and how long it may take.

    ``log`` is the item's log file (a :class:`~.suitelog.SuiteLog`, or a file opened
    with ``a+``), open for reading and writing, with nothing buffered between commands.
    With ``realtime`` off (pytest captures the output anyway) the child writes straight
    into the log, sharing its offset, and what it wrote is copied to ``live`` and the
    tail when it ends: no pipe and no thread. With ``realtime`` on (``-s``), or without
    a log, output is pumped through a pipe to every sink as it comes.
    """

    root: Path
    base_env: Mapping[str, str]
    log: LogSink | None = None
    live: TextIO | None = None
    realtime: bool = True
    timeout: float | None = None
    grace: tuple[float, float] = GRACE_SECONDS
    path_first: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    on_start: Callable[[int], None] | None = None
    on_end: Callable[[int], None] | None = None
    cookie: str = field(default_factory=new_cookie)
    token: str | None = None  # the item's: its commands' every descendant carries it
    # This process's children between commands (None: read before each command): what a
    # command adds to them, it left behind.
    children: set[int] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


def _pump(stream: IO[bytes], sinks: list[Sink], tail: deque[str], keep: list[str] | None) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        for sink in sinks:
            try:
                sink.write(line)
                sink.flush()
            except (OSError, ValueError):
                pass
        tail.append(line.rstrip("\n"))
        if keep is not None:
            keep.append(line)
    stream.close()


def _copy_back(fd: int, start: int, live: TextIO | None, tail: deque[str]) -> None:
    """What a child wrote into the log from offset ``start`` to the log's offset now (the
    two share it): to ``live`` and the tail."""
    end = os.lseek(fd, 0, os.SEEK_CUR)
    if end <= start:  # nothing (a quiet command)
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    offset = start
    while offset < end:
        chunk = os.pread(fd, min(1 << 20, end - offset), offset)
        offset += len(chunk)
        text = decoder.decode(chunk, final=not chunk or offset >= end)
        if live is not None and text:
            with contextlib.suppress(OSError, ValueError):
                live.write(text)
        lines = (pending + text).split("\n")
        pending = lines.pop()
        tail.extend(lines[-TAIL_LINES:])
        if not chunk:  # cut short meanwhile
            break
    if pending:
        tail.append(pending)
    if live is not None:
        with contextlib.suppress(OSError, ValueError):
            live.flush()


def _exited(proc: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: for ever) for ``proc`` to end, without
    reaping it. True: it has ended.

    With no timeout, a blocking ``waitid`` with ``WNOWAIT``. With one, a wait on its
    pidfd where the system has them (Linux 5.3+), else ``waitid`` polled."""
    flags = os.WEXITED | os.WNOWAIT
    if timeout is None:
        os.waitid(os.P_PID, proc.pid, flags)
        return True
    pidfd = open_pidfd(proc.pid)
    if pidfd is not None:
        try:
            poller = select.poll()  # poll, not select: no limit on the descriptor's number
            poller.register(pidfd, select.POLLIN)
            return bool(poller.poll(timeout * 1000))
        finally:
            os.close(pidfd)
    deadline = time.monotonic() + timeout
    while os.waitid(os.P_PID, proc.pid, flags | os.WNOHANG) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _wait(proc: subprocess.Popen[bytes], timeout: float | None, options: RunOptions) -> bool:
    """Wait for ``proc``; past ``timeout`` seconds stop its group and what it started
    elsewhere. True: it timed out. The leader is reaped when this returns."""
    timed_out = not _exited(proc, timeout)
    if timed_out:
        stop_group(proc, options.grace, cookie=options.cookie, token=options.token)
    proc.wait()
    return timed_out


def _leftovers(pgid: int, options: RunOptions, before: set[int], wait: float = 1.0) -> list[str]:
    """The command has ended; what it started (in its group, or in a session of its own,
    re-parented to this process) gets ``wait`` seconds to end, then is stopped if it
    proves itself this run's (its leader is reaped: see :mod:`reaper`). The children this
    process gained meanwhile (``before``: those it had; updated) are collected when they
    end. Returns a line per process left alone."""
    deadline = time.monotonic() + wait
    while True:
        orphans, dead = new_children(before)
        reap(dead)
        group = _group_alive(pgid)
        if not group and not orphans:
            return []
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    sweep = stop_groups([pgid], options.cookie, (0.0, 0.0)) if group else Sweep()
    if options.token is not None:
        stop_tree(options.cookie, options.token, (0.0, 0.0))
    end = time.monotonic() + 2.0
    while orphans and time.monotonic() < end:  # the killed come back as zombies
        orphans, dead = new_children(before)
        reap(dead)
        orphans = [p for p in orphans if why_not_ours(p, options.cookie, options.token) is None]
        if orphans:
            time.sleep(0.01)
    for pid in new_children(before)[0]:
        why = why_not_ours(pid, options.cookie, options.token)
        if why is not None:
            sweep.skipped[pid] = why
    before.clear()  # what is left is known from now on: not the next command's doing
    before.update(children())
    return sweep.lines()


def run_command(command: Command, options: RunOptions, *, capture: bool = False) -> CommandResult:
    """Run ``command``; with ``capture``, its stdout is returned (and still logged)."""
    cwd = os.path.join(options.root, command.cwd)  # as given, if absolute
    sinks: list[Sink] = [s for s in (options.log, options.live) if s is not None]
    header = f"$ {shlex.join(command.argv)}    (in {command.cwd})\n"
    for sink in sinks:
        with contextlib.suppress(OSError, ValueError):
            sink.write(header)
            # The log before the child writes into it; pytest's capture when it reads.
            if sink is options.log or options.realtime:
                sink.flush()
    if not os.path.isdir(cwd):
        # As `(cd FOLDER && command)`: the cd fails, the command never starts.
        _say(options, sinks, f"cd: {command.cwd}: No such file or directory")
        return CommandResult(1, "")
    direct = (
        options.log is not None
        and not options.realtime
        and not capture
        and command.stdout is None
        and _readable(options.log)
    )
    log_fd = start = -1
    if direct and options.log is not None:
        log_fd = options.log.fileno()
        start = os.lseek(log_fd, 0, os.SEEK_CUR)  # where the child's output begins
    before = set(children()) if options.children is None else options.children
    try:
        proc, stdout_file = _start(command, cwd, options, log_fd if direct else None, capture)
    except OSError as exc:
        _say(options, sinks, f"cannot start {command.argv[0]!r}: {exc.strerror or exc}")
        return CommandResult(127, "")
    if options.on_start is not None:
        options.on_start(proc.pid)
    kept: list[str] = []
    threads = _pumps(proc, sinks, options, kept if capture else None)
    try:
        timed_out = _wait(proc, options.timeout, options)
        left_alone = _leftovers(proc.pid, options, before)
    except BaseException:
        _cancel(proc, options)
        raise
    finally:
        if stdout_file is not None:
            stdout_file.close()
        if options.on_end is not None:
            options.on_end(proc.pid)
        if direct:
            _copy_back(log_fd, start, options.live, options.tail)
    for line in left_alone:
        _say(options, sinks, f"torchci: left running after the command ended: {line}")
    for t in threads:
        t.join(timeout=2.0)
    returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    return CommandResult(returncode, "".join(kept), timed_out)


def _environment(command: Command, options: RunOptions) -> dict[str, str]:
    """The command's environment: the run's, the command's changes, pytest's interpreter
    first on PATH, the item's variables, and the run's cookie and the item's token."""
    env = child_env(options.base_env, command.env)
    if options.path_first:
        env["PATH"] = path_first(env.get("PATH", ""), options.path_first)
    env.update(options.overrides)
    env[COOKIE_VARIABLE] = options.cookie
    if options.token is not None:
        env[TOKEN_VARIABLE] = options.token
    return env


def _start(
    command: Command, cwd: str, options: RunOptions, log_fd: int | None, capture: bool
) -> tuple[subprocess.Popen[bytes], IO[bytes] | None]:
    """Start ``command`` in a session of its own. Its output goes straight into the log
    (``log_fd``), or to its redirect file, or through pipes; its input is ``stdin``."""
    stdout_file: IO[bytes] | None = None
    if command.stdout is not None:
        target = Path(command.stdout)
        stdout_file = open(target if target.is_absolute() else options.root / target, "wb")  # noqa: SIM115
    out: int | IO[bytes]
    if log_fd is not None:
        out, err = log_fd, subprocess.STDOUT
    else:
        out = stdout_file if stdout_file is not None else subprocess.PIPE
        separate = (capture and not command.merge_stderr) or stdout_file is not None
        err = subprocess.PIPE if separate else subprocess.STDOUT
    env = _environment(command, options)
    try:
        proc = subprocess.Popen(
            list(command.argv),
            executable=find_program(command.argv[0], env.get("PATH", os.defpath)),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if command.stdin is not None else _devnull(),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    except OSError:
        if stdout_file is not None:
            stdout_file.close()
        raise
    if command.stdin is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(command.stdin.encode())
        proc.stdin.close()
    return proc, stdout_file


@functools.cache
def _devnull() -> int:
    """``/dev/null`` for commands' input, opened once (not per command, as DEVNULL is)."""
    return os.open(os.devnull, os.O_RDONLY)


def _pumps(
    proc: subprocess.Popen[bytes],
    sinks: list[Sink],
    options: RunOptions,
    kept: list[str] | None,
) -> list[threading.Thread]:
    """Threads that copy the command's pipes (if any) to the sinks and the tail; with
    ``kept``, stdout is kept for the caller instead of shown."""
    threads = []
    if proc.stdout is not None:
        out_sinks = [] if kept is not None else sinks
        args = (proc.stdout, out_sinks, options.tail, kept)
        threads.append(threading.Thread(target=_pump, args=args, daemon=True))
    if proc.stderr is not None:
        args = (proc.stderr, sinks, options.tail, None)
        threads.append(threading.Thread(target=_pump, args=args, daemon=True))
    for t in threads:
        t.start()
    return threads


def _cancel(proc: subprocess.Popen[bytes], options: RunOptions) -> None:
    """Cancelled (Ctrl-C, SIGTERM, pytest-timeout): stop the suite's whole tree."""
    if proc.returncode is None:
        stop_group(proc, CANCEL_GRACE, cookie=options.cookie, token=options.token)
    else:  # its leader is reaped: only what proves itself the run's
        stop_groups([proc.pid], options.cookie, CANCEL_GRACE)
        if options.token is not None:
            stop_tree(options.cookie, options.token, CANCEL_GRACE)


def _say(options: RunOptions, sinks: list[Sink], message: str) -> None:
    """A line of our own about the command, where its output would have gone."""
    options.tail.append(message)
    for sink in sinks:
        with contextlib.suppress(OSError, ValueError):
            sink.write(message + "\n")


def _readable(stream: LogSink) -> bool:
    try:
        return stream.readable() and stream.fileno() >= 0
    except (OSError, ValueError):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Running one command line: its own process group, a deadline, output to a log.

The child starts in a new session so that the whole tree it starts can be stopped
together. Its output (stdout and stderr merged) is streamed to the log file, to a live
stream when the user asked for one (``-s``), and kept in a tail for failure reports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from .engine import CommandResult
from .model import Command

__all__ = [
    "GRACE_SECONDS",
    "RunOptions",
    "child_env",
    "describe_status",
    "run_command",
    "stop_group",
]

GRACE_SECONDS = (5.0, 5.0)  # SIGINT -> SIGTERM, SIGTERM -> SIGKILL
CANCEL_GRACE = (2.0, 2.0)  # when the run itself is cancelled
TAIL_LINES = 50


def describe_status(returncode: int, timed_out: bool = False, timeout: float | None = None) -> str:
    """Say how a process ended, the way a person reads it."""
    if timed_out:
        return f"timed out after {timeout:g} s" if timeout else "timed out"
    if returncode < 0:
        signum = -returncode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        text = f"was killed by {name} (signal {signum})"
        if signum == signal.SIGKILL:
            text += "; if nothing here sent it, the kernel's out-of-memory killer may have"
        return text
    return f"exited with status {returncode}"


def child_env(base: Mapping[str, str], delta: Mapping[str, str | None]) -> dict[str, str]:
    """``base`` with ``delta`` applied (``None`` unsets)."""
    env = dict(base)
    for key, value in delta.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def path_first(path: str, folder: str) -> str:
    """``path`` with ``folder`` moved to its front."""
    parts = [p for p in path.split(os.pathsep) if p and p != folder]
    return os.pathsep.join([folder, *parts])


def stop_group(proc: subprocess.Popen[bytes], grace: tuple[float, float] = GRACE_SECONDS) -> None:
    """SIGINT the process group (so pytest children flush their XML), then SIGTERM, then
    SIGKILL; afterwards nothing of the group is left."""
    pgid = proc.pid
    for sig, wait in ((signal.SIGINT, grace[0]), (signal.SIGTERM, grace[1])):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@dataclass
class RunOptions:
    """Where a command's output goes and how long it may take."""

    root: Path
    base_env: Mapping[str, str]
    log: IO[str] | None = None
    live: TextIO | None = None
    timeout: float | None = None
    grace: tuple[float, float] = GRACE_SECONDS
    path_first: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    on_start: Callable[[int], None] | None = None
    on_end: Callable[[int], None] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


def _pump(
    stream: IO[bytes], sinks: list[IO[str] | TextIO], tail: deque[str], keep: list[str] | None
) -> None:
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


def run_command(command: Command, options: RunOptions, *, capture: bool = False) -> CommandResult:
    """Run ``command``; with ``capture``, its stdout is returned (and still logged)."""
    cwd = Path(command.cwd)
    if not cwd.is_absolute():
        cwd = options.root / cwd
    env = child_env(options.base_env, command.env)
    if options.path_first:
        env["PATH"] = path_first(env.get("PATH", ""), options.path_first)
    env.update(options.overrides)
    sinks: list[IO[str] | TextIO] = [s for s in (options.log, options.live) if s is not None]
    header = f"$ {' '.join(command.argv)}    (in {command.cwd})\n"
    for sink in sinks:
        with contextlib.suppress(OSError, ValueError):
            sink.write(header)
            sink.flush()
    stdout_file: IO[bytes] | None = None
    try:
        if command.stdout is not None:
            target = Path(command.stdout)
            stdout_file = open(target if target.is_absolute() else options.root / target, "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            list(command.argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
            stdout=stdout_file if stdout_file is not None else subprocess.PIPE,
            stderr=subprocess.PIPE
            if ((capture and not command.merge_stderr) or stdout_file is not None)
            else subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        if stdout_file is not None:
            stdout_file.close()
        message = f"cannot start {command.argv[0]!r}: {exc.strerror or exc}"
        options.tail.append(message)
        for sink in sinks:
            with contextlib.suppress(OSError, ValueError):
                sink.write(message + "\n")
        return CommandResult(127, "")
    if command.stdin is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(command.stdin.encode())
        proc.stdin.close()
    if options.on_start is not None:
        options.on_start(proc.pid)
    kept: list[str] = []
    threads = []
    if proc.stdout is not None:
        threads.append(
            threading.Thread(
                target=_pump,
                args=(
                    proc.stdout,
                    [] if capture else sinks,
                    options.tail,
                    kept if capture else None,
                ),
                daemon=True,
            )
        )
    if proc.stderr is not None:
        threads.append(
            threading.Thread(
                target=_pump, args=(proc.stderr, sinks, options.tail, None), daemon=True
            )
        )
    for t in threads:
        t.start()
    # A blocking wait, with a watchdog for the deadline: Popen.wait(timeout) polls.
    expired = threading.Event()
    watchdog = None
    if options.timeout is not None:

        def on_deadline() -> None:
            expired.set()
            stop_group(proc, options.grace)

        watchdog = threading.Timer(options.timeout, on_deadline)
        watchdog.daemon = True
        watchdog.start()
    try:
        proc.wait()
    except BaseException:
        # Cancelled (Ctrl-C, SIGTERM, pytest-timeout): stop the suite's whole tree.
        stop_group(proc, CANCEL_GRACE)
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if stdout_file is not None:
            stdout_file.close()
        if options.on_end is not None:
            options.on_end(proc.pid)
    if expired.is_set() and watchdog is not None:
        watchdog.join(timeout=sum(options.grace) + 10)
    timed_out = expired.is_set()
    deadline = time.monotonic() + 1.0
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        # Something the command started still holds its output open: end the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for t in threads:
            t.join(timeout=2.0)
    returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    return CommandResult(returncode, "".join(kept), timed_out)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_groups(pgids: list[int], grace: tuple[float, float] = CANCEL_GRACE) -> None:
    """Stop process groups we do not hold a handle on (a cancelled run's suites):
    SIGINT, SIGTERM, SIGKILL, each after a grace period while any group lives."""
    for sig, wait in ((signal.SIGINT, grace[0]), (signal.SIGTERM, grace[1]), (signal.SIGKILL, 0.0)):
        alive = [g for g in pgids if _group_alive(g)]
        if not alive:
            return
        for pgid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_group_alive(g) for g in alive):
            time.sleep(0.05)

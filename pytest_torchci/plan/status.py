"""How a command ended, in words: what failure reports and the engine's messages say."""

from __future__ import annotations

import signal

__all__ = ["describe_status"]


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

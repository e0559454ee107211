"""The registry of native value functions: the error they raise, the context they run in,
the table of them by name, the decorator that fills it, and the call the engine makes.

Imports nothing of the package: every operation module registers through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NATIVES", "NativeContext", "NativeError", "NativeFn", "call_native", "native"]


class NativeError(RuntimeError):
    """A native function that failed the way the shell code it replaces would fail."""


@dataclass(frozen=True)
class NativeContext:
    """Where a native function runs: the checkout, the current folder, plan or run."""

    root: Path
    cwd: Path
    planning: bool
    lookup: Callable[[str], str]
    trait_match: Callable[[str], re.Match[str] | None] = lambda name: None
    # A note for the plan (what bash's result depends on: the machine's directory order).
    note: Callable[[str], None] = lambda text: None

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.cwd / p


NativeFn = Callable[..., "str | list[str]"]
NATIVES: dict[str, NativeFn] = {}


def native(name: str) -> Callable[[NativeFn], NativeFn]:
    """Register a native value function under ``name``."""

    def register(fn: NativeFn) -> NativeFn:
        NATIVES[name] = fn
        return fn

    return register


def call_native(
    name: str, ctx: NativeContext, args: list[str], known: Mapping[str, NativeFn] = NATIVES
) -> str | list[str]:
    """Call the native ``name`` with ``args``; unknown names and wrong argument counts
    are :class:`NativeError`, as the native's own failures are."""
    fn = known.get(name)
    if fn is None:
        raise NativeError(f"unknown native function @{name}()")
    try:
        return fn(ctx, *args)
    except TypeError as exc:
        raise NativeError(f"@{name}() called with {len(args)} arguments: {exc}") from None

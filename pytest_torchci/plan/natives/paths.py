"""Natives that compute path names: the current folder, ``realpath``, ``dirname`` and
``basename``. Nothing here tests or reads a file (that is :mod:`.files`)."""

from __future__ import annotations

import os

from .registry import NativeContext, NativeError, native

__all__: list[str] = []


@native("pwd")
def _pwd(ctx: NativeContext) -> str:
    """``$(pwd)``: the current folder."""
    return str(ctx.cwd)


@native("realpath")
def _realpath(ctx: NativeContext, value: str, mode: str = "-m") -> str:
    """``realpath MODE PATH``: the canonical absolute path.

    ``-m`` (the default): no part of PATH need exist (an empty PATH is the current
    folder). ``-E`` (coreutils' own default): every folder but the last component must
    exist; where one is missing, or PATH is empty, realpath prints nothing and the answer
    is empty (as ``"$(realpath PATH)"`` in an argument leaves it; the command still runs).
    """
    if mode == "-m":
        return os.path.realpath(ctx.path(value))
    if mode != "-E":
        raise NativeError(f"realpath: mode {mode!r} is neither -m nor -E")
    if not value:
        return ""
    p = ctx.path(value)
    if not p.parent.is_dir():
        return ""
    return os.path.realpath(p)


@native("dirname")
def _dirname(ctx: NativeContext, value: str) -> str:
    """``dirname PATH``: ``.`` when PATH has no folder part."""
    return os.path.dirname(value) or "."


@native("basename")
def _basename(ctx: NativeContext, value: str, suffix: str = "") -> str:
    """``basename PATH [SUFFIX]``: the last component, less SUFFIX where it ends so."""
    base = os.path.basename(value)
    return base[: -len(suffix)] if suffix and base.endswith(suffix) else base

"""Native value functions: what test.sh computes with ``$(...)``, written in Python.

A word of the suite data may hold ``@name(arg, ...)``; the engine calls the function of
that name here with the arguments expanded. Nothing here starts a shell; what needs a
program (``git status``) is a ``run`` step of the data instead.
"""

from __future__ import annotations

import functools
import glob as _glob
import os
import re
import shutil
import site
import sysconfig
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NATIVES", "NativeContext", "NativeError", "native"]


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


@native("pin")
def _pin(ctx: NativeContext, name: str) -> str:
    """``get_pinned_commit NAME``: the commit in ``.github/ci_commit_pins/NAME.txt``."""
    path = ctx.cwd / ".github" / "ci_commit_pins" / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError:
        if ctx.planning:
            return ""
        raise NativeError(f"no pinned commit for {name!r}: {path} cannot be read") from None


@native("pwd")
def _pwd(ctx: NativeContext) -> str:
    return str(ctx.cwd)


@native("realpath")
def _realpath(ctx: NativeContext, value: str) -> str:
    return os.path.realpath(ctx.path(value))


@native("dirname")
def _dirname(ctx: NativeContext, value: str) -> str:
    return os.path.dirname(value) or "."


@native("basename")
def _basename(ctx: NativeContext, value: str, suffix: str = "") -> str:
    base = os.path.basename(value)
    return base[: -len(suffix)] if suffix and base.endswith(suffix) else base


@native("glob")
def _glob_words(ctx: NativeContext, pattern: str) -> list[str]:
    """An unquoted glob: the sorted matches, or the pattern itself when none match."""
    matches = sorted(_glob.glob(pattern, root_dir=ctx.cwd))
    return matches or [pattern]


@native("any_file")
def _any_file(ctx: NativeContext, pattern: str) -> str:
    """``1`` when a regular file matches ``pattern``, else empty."""
    return (
        "1"
        if any(Path(ctx.cwd, m).is_file() for m in _glob.glob(pattern, root_dir=ctx.cwd))
        else ""
    )


@native("is_file")
def _is_file(ctx: NativeContext, value: str) -> str:
    return "1" if ctx.path(value).is_file() else ""


@native("is_dir")
def _is_dir(ctx: NativeContext, value: str) -> str:
    return "1" if value and ctx.path(value).is_dir() else ""


@native("nonempty_file")
def _nonempty_file(ctx: NativeContext, value: str) -> str:
    p = ctx.path(value)
    return "1" if p.is_file() and p.stat().st_size > 0 else ""


@native("which")
def _which(ctx: NativeContext, name: str) -> str:
    return shutil.which(name, path=ctx.lookup("PATH") or None) or ""


@native("site_packages")
def _site_packages(ctx: NativeContext) -> str:
    """``python -c "import site; print(site.getsitepackages()[0])"``."""
    try:
        return site.getsitepackages()[0]
    except (AttributeError, IndexError):
        return sysconfig.get_paths()["purelib"]


@native("mktemp_dir")
def _mktemp_dir(ctx: NativeContext, prefix: str = "tmp.") -> str:
    if ctx.planning:
        return os.path.join(tempfile.gettempdir(), f"{prefix}XXXXXX")
    return tempfile.mkdtemp(prefix=prefix)


@native("find_tests")
def _find_tests(ctx: NativeContext, folder: str, prefix: str) -> list[str]:
    """``find FOLDER -name 'test_*.py'`` as ``PREFIX<relative path without .py>``, sorted."""
    base = ctx.path(folder)
    if not base.is_dir():
        return []
    found = [
        prefix + str(p.relative_to(base))[: -len(".py")]
        for p in base.rglob("test_*.py")
        if p.is_file()
    ]
    return sorted(found)


@native("executables")
def _executables(ctx: NativeContext, folder: str, prefix: str = "") -> list[str]:
    """The executable files directly in ``folder``, as ``PREFIX<name>``, sorted."""
    base = ctx.path(folder)
    if not base.is_dir():
        return []
    return sorted(prefix + p.name for p in base.iterdir() if p.is_file() and os.access(p, os.X_OK))


@native("dirty_lines")
def _dirty_lines(ctx: NativeContext, status: str) -> str:
    """``git status --porcelain | grep -v '?? third_party'``."""
    return "\n".join(line for line in status.splitlines() if line and "?? third_party" not in line)


@native("strip_suffix")
def _strip_suffix(ctx: NativeContext, value: str, suffix: str) -> str:
    return value[: -len(suffix)] if value.endswith(suffix) else value


@native("replace")
def _replace(ctx: NativeContext, value: str, old: str, new: str = "") -> str:
    """``${VALUE//OLD/NEW}`` with a literal OLD."""
    return value.replace(old, new)


def call_native(
    name: str, ctx: NativeContext, args: list[str], known: Mapping[str, NativeFn] = NATIVES
) -> str | list[str]:
    fn = known.get(name)
    if fn is None:
        raise NativeError(f"unknown native function @{name}()")
    try:
        return fn(ctx, *args)
    except TypeError as exc:
        raise NativeError(f"@{name}() called with {len(args)} arguments: {exc}") from None


@native("read_file")
def _read_file(ctx: NativeContext, path: str) -> str:
    """``< FILE``: a file's text (empty when planning and the file is not there)."""
    try:
        return ctx.path(path).read_text(encoding="utf-8")
    except OSError:
        if ctx.planning:
            return ""
        raise NativeError(f"cannot read {path}") from None


@native("last_line")
def _last_line(ctx: NativeContext, text: str) -> str:
    """``| tail -n 1``."""
    lines = text.splitlines()
    return lines[-1] if lines else ""


@native("nproc")
def _nproc(ctx: NativeContext) -> str:
    try:
        return str(len(os.sched_getaffinity(0)))
    except AttributeError:
        return str(os.cpu_count() or 1)


@native("words")
def _words(ctx: NativeContext, text: str) -> list[str]:
    """An unquoted expansion: the words of ``text``."""
    return text.split()


@native("find_executables")
def _find_executables(ctx: NativeContext, folder: str, pattern: str) -> list[str]:
    """``find FOLDER -maxdepth 1 -executable -name PATTERN`` as ``FOLDER/name``."""
    import fnmatch

    base = ctx.path(folder)
    if not base.is_dir():
        return []
    return sorted(
        f"{folder.rstrip('/')}/{p.name}"
        for p in base.iterdir()
        if fnmatch.fnmatchcase(p.name, pattern) and os.access(p, os.X_OK)
    )


@native("existing_files")
def _existing_files(ctx: NativeContext, pattern: str) -> list[str]:
    """A glob's matches that are regular files (``[ -f "$f" ] || continue``)."""
    return sorted(m for m in _glob.glob(pattern, root_dir=ctx.cwd) if Path(ctx.cwd, m).is_file())


@native("trait_group")
def _trait_group(ctx: NativeContext, trait: str, group: str = "0") -> str:
    """``${BASH_REMATCH[GROUP]}`` after the regex test of a regex trait."""
    m = ctx.trait_match(trait)
    return (m.group(int(group)) or "") if m else ""


@native("find_file")
def _find_file(ctx: NativeContext, folder: str, name: str) -> str:
    """``find FOLDER -name NAME``: the matches, one a line. A plan reuses what an earlier
    plan of this process found (a folder such as a Python's lib can hold a lot)."""
    base = ctx.path(folder)
    if not base.is_dir():
        return ""
    if ctx.planning:
        return _find_file_cached(str(base.resolve()), name)
    return "\n".join(str(p) for p in sorted(base.rglob(name)))


@functools.lru_cache(maxsize=64)
def _find_file_cached(base: str, name: str) -> str:
    return "\n".join(str(p) for p in sorted(Path(base).rglob(name)))


# The suites' own natives register themselves on import.
from . import bench, compat, misc  # noqa: E402, F401

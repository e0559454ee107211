"""Natives that ask about the platform a job runs on: the machine (``uname -m``,
``nproc``), its programs and Python (``which``, site-packages), and the build's traits
(``${BASH_REMATCH[N]}`` after a regex test of BUILD_ENVIRONMENT or TEST_CONFIG)."""

from __future__ import annotations

import os
import shutil
import site
import sysconfig

from .registry import NativeContext, native

__all__: list[str] = []


@native("machine")
def _machine(ctx: NativeContext) -> str:
    """``$(uname -m)``: the machine's hardware name (``x86_64``, ``aarch64``, ...)."""
    return os.uname().machine


@native("nproc")
def _nproc(ctx: NativeContext) -> str:
    """``$(nproc)``: the CPUs this process may run on."""
    try:
        return str(len(os.sched_getaffinity(0)))
    except AttributeError:
        return str(os.cpu_count() or 1)


@native("which")
def _which(ctx: NativeContext, name: str) -> str:
    """``$(which NAME)`` on the job's PATH: the program's path, or empty."""
    return shutil.which(name, path=ctx.lookup("PATH") or None) or ""


@native("site_packages")
def _site_packages(ctx: NativeContext) -> str:
    """``python -c "import site; print(site.getsitepackages()[0])"``."""
    try:
        return site.getsitepackages()[0]
    except (AttributeError, IndexError):
        return sysconfig.get_paths()["purelib"]


@native("trait_group")
def _trait_group(ctx: NativeContext, trait: str, group: str = "0") -> str:
    """``${BASH_REMATCH[GROUP]}`` after the regex test of a regex trait."""
    m = ctx.trait_match(trait)
    return (m.group(int(group)) or "") if m else ""

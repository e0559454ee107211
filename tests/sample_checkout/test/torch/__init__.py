"""Stand-in ``torch`` package for the pytest-torchci sample checkout.

This is NOT PyTorch. It provides just enough surface for the commands that
``.ci/pytorch/test.sh`` runs from ``test/`` (``cd test && python -c "import
torch; ..."``) to succeed against the sample checkout. It is importable only
when ``test/`` is the current directory (or otherwise on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import sys
import types

__version__ = "0.0.0+torchci.sample"


def get_num_threads() -> int:
    """Return the number of CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def _show() -> str:
    """Describe the (fake) build configuration."""
    return (
        "PyTorch built with:\n"
        "  - torchci sample checkout stand-in (not a real build)\n"
        f"  - Python {platform.python_version()} on {sys.platform}\n"
        "  - CPU only, no CUDA, no MKL, no OpenMP\n"
    )


def _parallel_info() -> str:
    """Describe the (fake) intra-op parallelism settings."""
    threads = get_num_threads()
    return (
        "ATen/Parallel:\n"
        f"\tat::get_num_threads() : {threads}\n"
        f"\tat::get_num_interop_threads() : {threads}\n"
        "ATen parallel backend: sample (no threading library)\n"
    )


def _crash_if_debug_asserts_fail(value: int) -> None:
    """No-op: the sample has no debug-assert build to probe."""
    del value


__config__ = types.ModuleType("torch.__config__", "Build configuration (sample stand-in).")
__config__.show = _show  # type: ignore[attr-defined]
__config__.parallel_info = _parallel_info  # type: ignore[attr-defined]

_C = types.ModuleType("torch._C", "Native extension stand-in (sample).")
_C._crash_if_debug_asserts_fail = _crash_if_debug_asserts_fail  # type: ignore[attr-defined]

sys.modules[__config__.__name__] = __config__
sys.modules[_C.__name__] = _C

"""Comparing a trace of test.sh with the plugin's plan, at three levels.

- ``calls``: the dispatch chain's own calls (depth 0), function and arguments, in order;
- ``commands``: every Python-script command (``python X.py``, ``python -m pytest``) the
  dispatch ran, with its folder (relative to the checkout; ``<elsewhere>`` outside it).
  On a mirrored checkout (``--tree``), also the prelude's, every ``python -m pip install``
  (the TSAN prelude installs the tree's wheel), and every program of the tree run by its
  path (a test binary of ``build/bin``): the trace records those through the stub the
  program's file holds, the plan's side counts a command whose path names such a file;
- ``env``: for each of those commands, the variables that decide test behaviour.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.model import Command, Plan
from ._bashlib import PROGRAM_STUB_MARK
from .trace import Trace

__all__ = ["LEVELS", "Comparison", "compare_job", "is_script_command"]

LEVELS = ("calls", "commands", "env")

# The variables that decide what tests do: PyTorch's own switches, device visibility,
# sanitizer and benchmark settings, and the job's variables. Paths that depend on where
# a machine keeps things are left out.
_BEHAVIOUR_PREFIXES = ("PYTORCH_", "TORCH", "NVSHMEM_", "NCCL_", "TORCHBENCH_", "HSA_", "KMP_")
_BEHAVIOUR_NAMES = frozenset(
    {
        "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK", "NO_TEST_TIMEOUT",
        "PYTHON_TEST_EXTRA_OPTION", "LTC_TS_CUDA", "OP_BENCHMARK_TESTS", "VALGRIND",
        "ATEN_CPU_CAPABILITY", "ASAN_OPTIONS", "PYTHONPATH", "TEST_CONFIG",
        "BUILD_ENVIRONMENT", "SHARD_NUMBER", "NUM_TEST_SHARDS",
    }
)  # fmt: skip
_MACHINE_PATHS = frozenset(
    {
        "TORCH_TRACE", "TORCHINDUCTOR_CACHE_DIR", "TORCH_CUDA_ARCH_LIST",
        "TORCH_CPP_TEST_MNIST_PATH", "TORCHINDUCTOR_CUTLASS_DIR",
    }
)  # fmt: skip
_NAME = re.compile(r"^\w+$")
# A name mktemp made: random on both sides, so not a difference.
_MKTEMP = re.compile(r"(tmp\.|\.)[A-Za-z0-9]{6,10}\b")


def _untemp(text: str) -> str:
    return _MKTEMP.sub(lambda m: m.group(1) + "XXXXXX", text) if "/" in text else text


def decides_behaviour(name: str) -> bool:
    if name in _MACHINE_PATHS or not _NAME.match(name):
        return False
    return name in _BEHAVIOUR_NAMES or name.startswith(_BEHAVIOUR_PREFIXES)


def is_script_command(argv: Sequence[str]) -> bool:
    """``python X.py ...`` or ``python -m pytest ...`` (also with ``python3``)."""
    if len(argv) < 2 or argv[0] not in ("python", "python3"):
        return False
    return list(argv[1:3]) == ["-m", "pytest"] or argv[1].endswith(".py")


def is_install_command(argv: Sequence[str]) -> bool:
    """``python -m pip install ...`` (also with ``python3``)."""
    if len(argv) < 4 or argv[0] not in ("python", "python3"):
        return False
    return list(argv[1:4]) == ["-m", "pip", "install"]


def is_program_record(argv: Sequence[str]) -> bool:
    """A trace's record of a mirrored checkout's program: the tools' stub records a base
    name, the programs' stub the path it was run by, which always holds a ``/``."""
    return bool(argv) and "/" in argv[0]


def is_checkout_program(argv: Sequence[str], cwd: str, root: str) -> bool:
    """A plan's command that runs, by its path, a file of the sandbox that holds the
    programs' stub: one the traced script, run there, would have recorded."""
    if not argv or "/" not in argv[0] or not root:
        return False
    folder = cwd if os.path.isabs(cwd) else os.path.join(root, cwd)
    path = os.path.join(folder, argv[0])
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(200)
    except OSError:
        return False
    return PROGRAM_STUB_MARK.encode() in head


def _cwd(value: str, root: str) -> str:
    value = value or "."
    if root and (value == root or value.startswith(root.rstrip("/") + "/")):
        value = value[len(root) :].lstrip("/") or "."
    if value.startswith("/"):
        return "<elsewhere>"
    return value.removeprefix("./") or "."


@dataclass(frozen=True)
class View:
    calls: list[tuple[str, list[str]]]
    commands: list[list[str]]
    env: list[dict[str, str]]


def trace_view(trace: Trace, *, tree: bool = False) -> View:
    """What the trace shows at each level (``tree``: the wider commands level of a run
    on a mirrored checkout; see the module's docstring)."""
    root = trace.root

    def norm(text: str) -> str:
        return _untemp(text.replace(root, "<root>") if root else text)

    def compared(c: dict[str, Any]) -> bool:
        if not tree:
            return c["phase"] == "dispatch" and is_script_command(c["argv"])
        argv = c["argv"]
        return c["phase"] in ("prelude", "dispatch") and (
            is_script_command(argv) or is_install_command(argv) or is_program_record(argv)
        )

    cmds = [c for c in trace.commands if compared(c)]
    return View(
        calls=[(c["fn"], list(c["args"])) for c in trace.calls if c["depth"] == 0],
        commands=[[_cwd(c["cwd"], root), *(norm(a) for a in c["argv"])] for c in cmds],
        env=[{k: norm(v) for k, v in c["env"].items() if decides_behaviour(k)} for c in cmds],
    )


def plan_view(plan: Plan, *, tree: bool = False) -> View:
    """What the plan shows at each level (``tree``: as for :func:`trace_view`)."""
    root = plan.root

    def norm(text: object) -> str:
        return _untemp(str(text).replace(root, "<root>") if root else str(text))

    def compared(cmd: Command) -> bool:
        if not tree:
            return is_script_command(cmd.argv)
        return (
            is_script_command(cmd.argv)
            or is_install_command(cmd.argv)
            or is_checkout_program(cmd.argv, cmd.cwd, root)
        )

    calls = [(step.call, list(step.args)) for step in plan.steps if step.call]
    commands: list[list[str]] = []
    envs: list[dict[str, str]] = []
    for step in (*plan.prelude, *plan.steps) if tree else plan.steps:
        for cmd in step.commands:
            if not compared(cmd):
                continue
            commands.append([_cwd(cmd.cwd, root), *(norm(a) for a in cmd.argv)])
            merged: dict[str, str | None] = {**plan.env, **step.env, **cmd.env}
            envs.append(
                {k: norm(v) for k, v in merged.items() if v is not None and decides_behaviour(k)}
            )
    return View(calls, commands, envs)


def _first_difference(a: Sequence[Any], b: Sequence[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"at {i}: test.sh {x!r} != plugin {y!r}"
    if len(a) != len(b):
        i = min(len(a), len(b))
        side, extra = ("test.sh", a[i]) if len(a) > len(b) else ("plugin", b[i])
        return f"{len(a)} (test.sh) vs {len(b)} (plugin); first extra in {side}: {extra!r}"
    return ""


def _env_difference(a: Sequence[Mapping[str, str]], b: Sequence[Mapping[str, str]]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            keys = sorted(set(x) | set(y))
            diff = {k: (x.get(k), y.get(k)) for k in keys if x.get(k) != y.get(k)}
            return f"command {i}: (test.sh, plugin) {diff}"
    return "" if len(a) == len(b) else f"{len(a)} vs {len(b)} commands"


@dataclass(frozen=True)
class Comparison:
    """The verdict for one job."""

    job: dict[str, Any]
    levels: dict[str, bool]
    differences: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def agree(self) -> bool:
        return self.error is None and all(self.levels.values())

    @property
    def first_difference(self) -> str:
        if self.error:
            return self.error
        for level in LEVELS:
            if not self.levels[level]:
                return f"{level}: {self.differences[level]}"
        return ""

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "agree": self.agree,
            "levels": dict(self.levels),
            "first_difference": self.first_difference,
        }


def compare_job(trace: Trace, plan: Plan, *, tree: bool = False) -> Comparison:
    """Compare at the three levels (``tree``: the sandbox held a mirrored checkout, and
    the commands level is the wider one)."""
    t, p = trace_view(trace, tree=tree), plan_view(plan, tree=tree)
    ok_calls = t.calls == p.calls
    ok_cmds = t.commands == p.commands
    ok_env = ok_cmds and t.env == p.env
    differences = {}
    if not ok_calls:
        differences["calls"] = _first_difference(t.calls, p.calls)
    if not ok_cmds:
        differences["commands"] = _first_difference(t.commands, p.commands)
        differences["env"] = "the commands differ"
    elif not ok_env:
        differences["env"] = _env_difference(t.env, p.env)
    return Comparison(
        job=trace.job.as_json(),
        levels={"calls": ok_calls, "commands": ok_cmds, "env": ok_env},
        differences=differences,
    )

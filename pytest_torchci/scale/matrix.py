"""``python -m pytest_torchci matrix``: the ``test-matrix`` a GitHub Actions workflow
consumes, one entry per shard, with the runner each shard needs.

The runner is chosen from the device needs of the shard's suites through a mapping of
needs to runner labels: ``cpu``, ``KIND:N`` (the smallest N that covers the need) and
``KIND:NxMODEL`` or ``MODEL`` for hardware. CI's own matrix stays the engine that runs one
job per shard; this only writes its input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.loader import SuiteData, job_traits
from ..data.model import Job
from ..data.toml import tomllib
from ..devices.needs import job_kind, unit_need
from ..plan.planner import Unit
from .durations import expected, read_durations
from .shards import balance, expand_all_shards

__all__ = ["DEFAULT_RUNNERS", "MatrixError", "build_matrix", "job_names", "load_runners"]

# Runner labels by need, as PyTorch's workflows name them; --runners replaces this.
DEFAULT_RUNNERS: dict[str, str] = {
    "cpu": "linux.2xlarge",
    "cuda:1": "linux.g5.4xlarge.nvidia.gpu",
    "cuda:4": "linux.g4dn.12xlarge.nvidia.gpu",
    "cuda:8": "linux.g5.48xlarge.nvidia.gpu",
    "cuda:all": "linux.g4dn.12xlarge.nvidia.gpu",
    "cuda:1xH100": "linux.aws.h100",
    "cuda:8xH100": "linux.aws.h100.8",
    "cuda:1xB200": "linux.dgx.b200",
    "cuda:8xB200": "linux.dgx.b200.8",
    "rocm:1": "linux.rocm.gpu.2",
    "rocm:2": "linux.rocm.gpu.mi300.2",
    "rocm:4": "linux.rocm.gpu.4",
    "xpu:1": "linux.idc.xpu",
}


class MatrixError(ValueError):
    """Bad matrix input (a runners file, a need no runner covers)."""


def load_runners(path: Path | None) -> dict[str, str]:
    if path is None:
        return dict(DEFAULT_RUNNERS)
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise MatrixError(f"--runners {path}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise MatrixError(f"--runners {path}: expected an object of need -> runner label")
    return {str(k): v for k, v in data.items()}


def _runner(
    runners: Mapping[str, str], kind: str | None, count: int, hardware: tuple[str, ...]
) -> str:
    if kind is None or count == 0:
        if "cpu" not in runners:
            raise MatrixError("no runner for cpu in the runners mapping")
        return runners["cpu"]
    sizes: dict[int, dict[str, str]] = {}
    for key, label in runners.items():
        if not key.startswith(f"{kind}:"):
            continue
        spec = key.split(":", 1)[1]
        n_text, _, model = spec.partition("x")
        if n_text.isdigit():
            sizes.setdefault(int(n_text), {})[model] = label
    if count < 0 and f"{kind}:all" in runners and not hardware:
        return runners[f"{kind}:all"]
    fitting = sorted(n for n in sizes if count < 0 or n >= count)
    if count < 0 and sizes:
        fitting = [max(sizes)]
    for n in fitting:
        for hw in hardware or ("",):
            found = sizes[n].get(hw) or (runners.get(hw) if hw else None)
            if found:
                return found
    need = f"{'all' if count < 0 else count} {kind} device(s)" + (
        f" ({', '.join(hardware)})" if hardware else ""
    )
    raise MatrixError(f"no runner in the mapping covers {need}")


def build_matrix(
    data: SuiteData,
    job: Job,
    root: Path,
    *,
    runners: Mapping[str, str],
    durations: Sequence[Path] = (),
    balanced: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """``{"include": [{config, shard, num_shards, runner}, ...]}`` for ``job``'s config."""
    n = int(job.num_shards)
    merged, plans = expand_all_shards(data, job, root)
    kind = job_kind(job_traits(data, job))
    by_shard: dict[int, list[Unit]] = {}
    if balanced:
        seconds = expected(merged.units, read_durations(durations))
        split = balance(merged.units, n, lambda u: seconds[u.name])
        for k in range(1, n + 1):
            by_shard[k] = [u for u in split.units_of(k, merged.units) if u.role == "test"]
    else:
        for k, jp in enumerate(plans, 1):
            by_shard[k] = [u for u in jp.units if u.role == "test"]
    include = []
    for k in range(1, n + 1):
        needs = [unit_need(u, kind) for u in by_shard[k]]
        count = -1 if any(c < 0 for c, _ in needs) else max((c for c, _ in needs), default=0)
        hardware = tuple(dict.fromkeys(h for _, hw in needs for h in hw))
        include.append(
            {
                "config": job.test_config,
                "shard": k,
                "num_shards": n,
                "runner": _runner(runners, kind, count, hardware),
            }
        )
    return {"include": include}


def job_names(
    matrix: Mapping[str, Sequence[Mapping[str, Any]]], build_environment: str
) -> list[str]:
    """The job names CI shows: ``<build env> / test (<config>, <shard>, <num_shards>,
    <runner>)``."""
    return [
        f"{build_environment} / test "
        f"({e['config']}, {e['shard']}, {e['num_shards']}, {e['runner']})"
        for e in matrix["include"]
    ]

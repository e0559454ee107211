"""One job through the validator: traced under stubs and planned, in one sandbox."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..data.loader import SuiteData
from ..data.model import Job
from ..plan.planner import plan_job
from .compare import Comparison, compare_job
from .mirror import TreeMirror
from .trace import TraceError, build_sandbox, remove_sandbox, run_trace, sandbox_env

__all__ = ["validate_job"]


def validate_job(
    test_sh: Path,
    data: SuiteData,
    job: Job,
    *,
    timeout: float = 300.0,
    folders: Sequence[str] | None = None,
    tree: TreeMirror | None = None,
) -> Comparison:
    """Plan and trace ``job`` against one fresh sandbox (holding ``tree``'s layout when
    given); compare the two."""
    where = Path(tempfile.mkdtemp(prefix="torchci-validate-"))
    try:
        paths = build_sandbox(test_sh, where, folders, tree)
        env = sandbox_env(paths, job)
        plan = plan_job(data, job, paths["checkout"], base_env=env).plan
        trace = run_trace(paths, job, env, timeout=timeout)
        return compare_job(trace, plan, tree=tree is not None)
    except TraceError as exc:
        return Comparison(
            job.as_json(), {"calls": False, "commands": False, "env": False}, error=str(exc)
        )
    finally:
        remove_sandbox(where)

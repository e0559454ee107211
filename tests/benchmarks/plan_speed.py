"""Planning speed: every job of a jobs file (JSON lines, as `torchci plan --jobs`
reads), planned in one process against an empty checkout.

    python tests/benchmarks/plan_speed.py JOBS.jsonl

The last line reads `RESULT jobs=N seconds=.. per_job_ms=..`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pytest_torchci.data.loader import load_suites
from pytest_torchci.plan.jobs import read_jobs
from pytest_torchci.plan.planner import plan_job


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python tests/benchmarks/plan_speed.py JOBS.jsonl", file=sys.stderr)
        return 2
    path = Path(sys.argv[1])
    with open(path, encoding="utf-8") as stream:
        jobs = list(read_jobs(stream, str(path)))
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "test").mkdir()
        start = time.perf_counter()
        data = load_suites()
        for job in jobs:
            plan_job(data, job, Path(root))
        seconds = time.perf_counter() - start
    print(
        f"RESULT jobs={len(jobs)} seconds={seconds:.3f} per_job_ms={seconds / len(jobs) * 1000:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

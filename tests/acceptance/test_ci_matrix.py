"""Every (config, build environment) of PyTorch's CI job matrix collects, and every one
of its calls has a suite. The matrix is read from ../shared/parity/ci_jobs.csv beside the
repository when it is there (only the job list: not the traces)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pytest_torchci import Job, load_suites, plan_job

MATRIX = Path(__file__).resolve().parents[3] / "shared" / "parity" / "ci_jobs.csv"


def combos() -> list[tuple[str, str]]:
    if not MATRIX.is_file():
        return []
    with open(MATRIX, newline="") as f:
        return sorted({(r["test_config"], r["build_environment"]) for r in csv.DictReader(f)})


pytestmark = pytest.mark.skipif(not MATRIX.is_file(), reason=f"{MATRIX} is not there")


def test_every_call_of_every_job_has_a_suite(tmp_path: Path) -> None:
    data = load_suites()
    (tmp_path / "test").mkdir()
    with open(MATRIX, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        job = Job(row["build_environment"], row["test_config"], row["shard"], row["num_shards"])
        plan = plan_job(data, job, tmp_path).plan
        assert plan.error is None or "has no suite" not in plan.error, (job, plan.error)
        for step in plan.steps:
            if step.call is not None:
                assert step.call in data.suites, (job, step.call)


def test_collect_only_works_for_every_config_and_build(pytester: pytest.Pytester) -> None:
    checkout = pytester.mkdir("checkout")
    (checkout / "test").mkdir()
    failures = []
    for config, build in combos():
        result = pytester.runpytest_inprocess(
            f"--torchci-config={config}",
            f"--torchci-build-env={build}",
            f"--torchci-root={checkout}",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        )
        text = result.stdout.str()
        if result.ret not in (0, 5) or "has no suite" in text:
            failures.append((config, build, result.ret, text[-300:]))
    assert not failures

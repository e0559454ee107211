"""Every config the suite data knows collects on every kind of build, and every call of
its plan has a suite. A real CI job matrix (a CSV with build_environment, test_config,
shard and num_shards columns) can be given too: TORCHCI_CI_JOBS=FILE."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from pytest_torchci import Job, load_suites, plan_job
from pytest_torchci.plan.configs import known_configs

BUILDS = [
    "linux-jammy-py3.10-gcc11",
    "linux-jammy-cuda12.8-py3.10-gcc11",
    "linux-jammy-rocm-n-py3",
    "linux-jammy-xpu-n-py3",
    "linux-jammy-py3-clang18-asan",
]


def jobs() -> list[dict[str, str]]:
    """Each known config on each kind of build, unsharded and as shards 1 and 2 of 2;
    and the rows of TORCHCI_CI_JOBS, where given."""
    rows = [
        {"test_config": c, "build_environment": b, "shard": k, "num_shards": n}
        for c in known_configs(load_suites())
        for b in BUILDS
        for k, n in (("1", "1"), ("1", "2"), ("2", "2"))
    ]
    extra = os.environ.get("TORCHCI_CI_JOBS")
    if extra:
        with open(extra, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def combos() -> list[tuple[str, str]]:
    """Collection is the same code whatever the config (every plan is checked in-process
    above): a spread of a dozen configs, each on a CUDA build, and the CI matrix's own
    pairs where given."""
    names = sorted({r["test_config"] for r in jobs()})
    chosen = {(n, BUILDS[1]) for n in [*names[::6], "default"]}
    extra = os.environ.get("TORCHCI_CI_JOBS")
    if extra:
        with open(extra, newline="") as f:
            chosen |= {(r["test_config"], r["build_environment"]) for r in csv.DictReader(f)}
    return sorted(chosen)


def test_every_call_of_every_job_has_a_suite(tmp_path: Path) -> None:
    data = load_suites()
    (tmp_path / "test").mkdir()
    rows = jobs()
    assert len(rows) > 500
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

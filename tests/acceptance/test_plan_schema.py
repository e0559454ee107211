"""The plan's JSON form (schema 1): from ``torchci plan`` and from ``--torchci-plan``."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_torchci import SCHEMA_VERSION
from pytest_torchci.cli import main

CPU_BUILD = "linux-jammy-py3.10-gcc11"
PLAN_KEYS = {"schema", "job", "root", "env", "steps"}
STEP_KEYS = {"call", "args", "role", "nodeid", "env", "commands"}
COMMAND_KEYS = {"argv", "cwd", "env"}
COMMAND_OPTIONAL_KEYS = {"stdin", "stdout"}

JOBS: list[dict[str, Any]] = [
    {
        "build_environment": "linux-jammy-cuda12.8-py3.10-gcc11",
        "test_config": "default",
        "shard": "1",
        "num_shards": "5",
        "env": {"TESTS_TO_INCLUDE": "test_torch test_ops"},
        "runner": "linux.g5.4xlarge.nvidia.gpu",
    },
    {
        "build_environment": "linux-jammy-cuda12.8-py3.10-gcc11",
        "test_config": "inductor",
        "shard": "2",
        "num_shards": "2",
    },
    {"build_environment": "linux-jammy-py3.10-gcc11", "test_config": "default"},
    {"build_environment": "linux-jammy-py3.10-gcc11", "test_config": "jit_legacy"},
]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``torchci ARGS`` with ``stdin``, in this process (the entry points themselves:
    test_cli.py)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def write_jobs(path: Path, jobs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli_plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("plans")
    root = tmp / "checkout"
    (root / "test").mkdir(parents=True)
    jobs = write_jobs(tmp / "jobs.jsonl", JOBS)
    proc = run_cli("plan", "--jobs", str(jobs), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(JOBS)
    return root, [json.loads(line) for line in lines]


def test_one_plan_line_per_job_with_the_schema_keys(
    cli_plans: tuple[Path, list[dict[str, Any]]],
) -> None:
    root, plans = cli_plans
    for job, plan in zip(JOBS, plans, strict=True):
        assert set(plan) - {"error", "prelude"} == PLAN_KEYS
        assert plan["schema"] == SCHEMA_VERSION == 1
        assert plan["job"] == job  # echoed as given, extras included
        assert plan["root"] == str(root.resolve())
        assert isinstance(plan["env"], dict)
        assert all(isinstance(k, str) and isinstance(v, str | None) for k, v in plan["env"].items())
        assert isinstance(plan["steps"], list) and plan["steps"]


def test_steps_and_commands(cli_plans: tuple[Path, list[dict[str, Any]]]) -> None:
    _, plans = cli_plans
    roles_seen = set()
    for plan in plans:
        for step in plan["steps"]:
            assert set(step) == STEP_KEYS
            assert step["role"] in ("setup", "test", "teardown")
            roles_seen.add(step["role"])
            assert step["call"] is None or isinstance(step["call"], str)
            assert isinstance(step["args"], list)
            assert all(isinstance(a, str) for a in step["args"])
            if step["role"] == "test":
                assert isinstance(step["nodeid"], str)
                assert step["nodeid"].startswith("torchci::")
                if step["call"]:
                    assert step["nodeid"].removeprefix("torchci::").startswith(step["call"])
            else:
                assert step["nodeid"] is None
            assert isinstance(step["env"], dict)
            for command in step["commands"]:
                assert COMMAND_KEYS <= set(command) <= COMMAND_KEYS | COMMAND_OPTIONAL_KEYS
                assert isinstance(command["argv"], list) and command["argv"]
                assert all(isinstance(a, str) for a in command["argv"])
                assert isinstance(command["cwd"], str)
                assert isinstance(command["env"], dict)
    assert roles_seen == {"setup", "test", "teardown"}


def test_node_ids_are_unique_within_a_plan(cli_plans: tuple[Path, list[dict[str, Any]]]) -> None:
    _, plans = cli_plans
    for plan in plans:
        ids = [s["nodeid"] for s in plan["steps"] if s["nodeid"]]
        assert len(ids) == len(set(ids))


def test_job_env_reaches_the_test_command(cli_plans: tuple[Path, list[dict[str, Any]]]) -> None:
    _, plans = cli_plans
    (step,) = [s for s in plans[0]["steps"] if s["call"] == "test_python_shard"]
    argv = step["commands"][0]["argv"]
    assert argv[:2] == ["python", "test/run_test.py"]
    i = argv.index("--include")
    assert argv[i + 1 : i + 3] == ["test_torch", "test_ops"]
    assert argv[argv.index("--shard") + 1 : argv.index("--shard") + 3] == ["1", "5"]
    # Without the variable there is no --include.
    (plain,) = [s for s in plans[2]["steps"] if s["call"] == "test_python"]
    assert "--include" not in plain["commands"][0]["argv"]


def test_planning_error_is_reported_in_the_plan(
    cli_plans: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """test.sh's shard 2 stops in test_libtorch_profiler when no Kineto test binary was
    built (as in an empty checkout): the plan stops there too and says why."""
    _, plans = cli_plans
    assert all("error" not in p for p in plans[:3])
    job = {
        "build_environment": CPU_BUILD,
        "test_config": "default",
        "shard": "2",
        "num_shards": "3",
    }
    proc = run_cli("plan", "--jobs", "-", "--root", str(tmp_path), stdin=json.dumps(job))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert "Kineto" in plan["error"]
    assert plan["steps"][-1]["call"] == "test_libtorch_profiler"


def test_jobs_from_stdin(tmp_path: Path) -> None:
    proc = run_cli("plan", "--jobs", "-", "--root", str(tmp_path), stdin=json.dumps(JOBS[2]))
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["job"] == JOBS[2]


def test_torchci_plan_file_equals_the_cli_plan(
    sample_checkout: Path, pytester: pytest.Pytester
) -> None:
    """``--torchci-plan`` with ``--collect-only`` writes what the CLI writes for the job,
    when the CLI also plans from the current environment (``--inherit-env``)."""
    job = {
        "build_environment": "linux-jammy-py3.11-gcc11",
        "test_config": "default",
        "shard": "3",
        "num_shards": "3",
    }
    plan_file = pytester.path / "plan.json"
    result = pytester.runpytest(
        "--torchci-config=default",
        "--torchci-build-env=linux-jammy-py3.11-gcc11",
        "--torchci-shard=3/3",
        f"--torchci-root={sample_checkout}",
        f"--torchci-plan={plan_file}",
        "--collect-only",
        "-q",
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["torchci::test_python_shard[[]3[]]"])
    from_plugin = json.loads(plan_file.read_text())

    jobs = write_jobs(pytester.path / "jobs.jsonl", [job])
    proc = run_cli("plan", "--jobs", str(jobs), "--root", str(sample_checkout), "--inherit-env")
    assert proc.returncode == 0, proc.stderr
    from_cli = json.loads(proc.stdout)

    assert from_plugin["job"] == from_cli["job"] == job
    assert from_plugin["root"] == from_cli["root"] == str(sample_checkout.resolve())
    assert from_plugin["steps"] == from_cli["steps"]
    assert from_plugin["env"] == from_cli["env"]
    assert from_plugin == from_cli

"""Bad input is a usage error that names the value and where it came from; no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def assert_usage_error(result: pytest.RunResult, *fragments: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert int(result.ret) == 4
    err = result.stderr.str()
    assert "ERROR:" in err
    (line,) = [ln for ln in result.stderr.lines if ln.startswith("ERROR:")]
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert "Traceback" not in err + result.stdout.str()


@pytest.fixture
def job_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SHARD_NUMBER", "NUM_TEST_SHARDS", "PYTORCH_ROOT", "BUILD_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    return pytester.path


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (
            ["--torchci-shard", "3/2"],
            {},
            ["--torchci-shard 3/2", "shard 3 is past the shard count 2"],
        ),
        (["--torchci-shard", "x"], {}, ["--torchci-shard x", "'x' is not a shard"]),
        (["--torchci-shard", "1/0"], {}, ["--torchci-shard 1/0", "at least 1"]),
        (["--torchci-shard", "a/3"], {}, ["--torchci-shard a/3", "'a' is not a whole number"]),
        ([], {"SHARD_NUMBER": "abc"}, ["SHARD_NUMBER=abc (environment)", "'abc'"]),
        ([], {"NUM_TEST_SHARDS": "-4"}, ["NUM_TEST_SHARDS=-4 (environment)", "'-4'"]),
        (
            [],
            {"SHARD_NUMBER": "5", "NUM_TEST_SHARDS": "3"},
            ["SHARD_NUMBER=5 and NUM_TEST_SHARDS=3 (environment)", "past the shard count"],
        ),
        (["--torchci-config=  "], {}, ["--torchci-config", "the config name is empty"]),
        # An empty name is as bad as a blank one; it must not fall back to a plain run.
        (["--torchci-config="], {}, ["--torchci-config", "the config name is empty"]),
    ],
    ids=[
        "shard-past-count",
        "shard-not-n-of-m",
        "shard-count-zero",
        "shard-number-not-a-number",
        "env-shard-number",
        "env-num-shards-negative",
        "env-shard-past-count",
        "config-blank",
        "config-empty",
    ],
)
def test_bad_job_values(
    job_dir: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    fragments: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if not any(a.startswith("--torchci-config") for a in args):
        args = ["--torchci-config=default", *args]
    result = pytester.runpytest_subprocess(*args, "--torchci-dry-run")
    assert_usage_error(result, *fragments)


def test_missing_root_folder(job_dir: Path, pytester: pytest.Pytester) -> None:
    missing = job_dir / "no-such-checkout"
    result = pytester.runpytest_subprocess(
        "--torchci-config=default", f"--torchci-root={missing}", "--torchci-dry-run"
    )
    assert_usage_error(result, f"--torchci-root {missing}", "no such folder")


def test_missing_root_from_the_environment(
    job_dir: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = job_dir / "gone"
    monkeypatch.setenv("PYTORCH_ROOT", str(missing))
    result = pytester.runpytest_subprocess("--torchci-config=default", "--torchci-dry-run")
    assert_usage_error(result, f"PYTORCH_ROOT (environment) {missing}", "no such folder")


def test_plan_file_in_a_missing_folder(job_dir: Path, pytester: pytest.Pytester) -> None:
    target = job_dir / "nowhere" / "plan.json"
    result = pytester.runpytest_subprocess(
        "--torchci-config=default", f"--torchci-plan={target}", "--collect-only"
    )
    assert_usage_error(result, f"--torchci-plan {target}", str(target.parent))


def test_missing_suites_folder(job_dir: Path, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--torchci-config=demo", f"--torchci-suites={job_dir / 'nope'}"
    )
    assert_usage_error(result, "--torchci-suites", "nope", "no such folder")


def test_routes_toml_syntax_error(
    job_dir: Path, pytester: pytest.Pytester, make_suites: Any
) -> None:
    folder = make_suites(
        files={"routes.toml": make_suites.routes_toml + "\n[[route]\ncites = 'x'\n"}
    )
    result = pytester.runpytest_subprocess("--torchci-config=demo", f"--torchci-suites={folder}")
    assert_usage_error(result, "routes.toml", "not valid TOML")


def test_suite_with_an_unknown_field(
    job_dir: Path, pytester: pytest.Pytester, make_suites: Any
) -> None:
    suite = '[demo_suite]\ncites = "demo"\nsteps = []\ncolour = "red"\n'
    folder = make_suites(files={"demo.toml": suite})
    result = pytester.runpytest_subprocess("--torchci-config=demo", f"--torchci-suites={folder}")
    assert_usage_error(result, "demo.toml, line 4", "colour")


def test_step_with_an_unknown_field(
    job_dir: Path, pytester: pytest.Pytester, make_suites: Any
) -> None:
    suite = (
        "[demo_suite]\n"
        'cites = "demo"\n'
        "steps = [\n"
        '  { run = ["true"] },\n'
        '  { run = ["true"], colour = "red" },\n'
        "]\n"
    )
    folder = make_suites(files={"demo.toml": suite})
    result = pytester.runpytest_subprocess("--torchci-config=demo", f"--torchci-suites={folder}")
    assert_usage_error(result, "demo.toml, line 5", "colour")


def test_route_with_an_unknown_trait(
    job_dir: Path, pytester: pytest.Pytester, make_suites: Any
) -> None:
    routes = make_suites.routes_toml.replace(
        'when = "config_demo"', 'when = "config_demo or no_such_trait"'
    )
    folder = make_suites(files={"routes.toml": routes})
    result = pytester.runpytest_subprocess("--torchci-config=demo", f"--torchci-suites={folder}")
    assert_usage_error(result, "routes.toml, line 3", "when", "no_such_trait")


def test_traits_with_an_unknown_field(
    job_dir: Path, pytester: pytest.Pytester, make_suites: Any
) -> None:
    traits = (
        make_suites.traits_toml
        + "\n[traits.extra]\nvar = 'TEST_CONFIG'\nglob = 'x'\nflavour = 'y'\n"
    )
    folder = make_suites(files={"traits.toml": traits})
    result = pytester.runpytest_subprocess("--torchci-config=demo", f"--torchci-suites={folder}")
    assert_usage_error(result, "traits.toml, line 10", "flavour")


# --- the CLI ------------------------------------------------------------------------------

GOOD_JOB = {"build_environment": "linux-jammy-py3.10-gcc11", "test_config": "default"}


def run_plan(jobs: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_torchci", "plan", "--jobs", str(jobs), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "line 2: not JSON"),
        ('{"build_environment": "x"', "line 2: not JSON"),
        ("[1, 2]", "line 2: a job must be a JSON object"),
        ('{"test_config": "default"}', "line 2: build_environment must be a string"),
        (
            json.dumps({**GOOD_JOB, "shard": "two"}),
            "line 2: shard must be a whole number, not 'two'",
        ),
        (json.dumps({**GOOD_JOB, "env": {"X": 1}}), "line 2: env must be an object of strings"),
    ],
)
def test_cli_bad_job_line(tmp_path: Path, bad_line: str, message: str) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(GOOD_JOB) + "\n" + bad_line + "\n")
    proc = run_plan(jobs, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert f"{jobs}, {message}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_jobs_file_and_root(tmp_path: Path) -> None:
    proc = run_plan(tmp_path / "missing.jsonl", tmp_path)
    assert proc.returncode == 2
    assert "missing.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(GOOD_JOB) + "\n")
    proc = run_plan(jobs, tmp_path / "no-root")
    assert proc.returncode == 2
    assert "--root" in proc.stderr and "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr

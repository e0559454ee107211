"""The ``torchci`` command (also ``python -m pytest_torchci``): its subcommands, their
help, ``configs``, the unknown-config warning, the old script names and bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_torchci.cli import main, plan_main, validate_main
from pytest_torchci.data.loader import SuiteData, load_suites
from pytest_torchci.data.model import Job
from pytest_torchci.plan.configs import (
    closest_configs,
    config_branches,
    known_configs,
    route_job,
    unknown_config_warning,
)
from pytest_torchci.plan.jobs import JobInputError, job_from_json
from pytest_torchci.plan.planner import plan_job

BIN = Path(sys.executable).parent
FIXTURE = Path(__file__).parent.parent / "validator_fixture"
TEST_SH = FIXTURE / "ci" / "test.sh"
SUBCOMMANDS = ("plan", "validate", "matrix", "configs", "suites-table")
CUDA = "linux-jammy-cuda12.8-py3.10-gcc11"
CPU = "linux-jammy-py3.10-gcc11"


@pytest.fixture(scope="module")
def data() -> SuiteData:
    return load_suites()


def script(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} is not installed (pip install -e .)")
        return found
    return str(path)


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False, timeout=120)


def module_argv() -> list[str]:
    return [sys.executable, "-m", "pytest_torchci"]


def run_main(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> subprocess.CompletedProcess[str]:
    """``torchci ARGV`` in this process (what the script runs), as a completed process."""
    code = main(argv)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int = 2) -> None:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --- help ----------------------------------------------------------------------------------


def test_help_lists_the_subcommands() -> None:
    proc = run([script("torchci"), "--help"])
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: torchci ")
    for name in SUBCOMMANDS:
        assert f"    {name}" in proc.stdout


def test_subcommand_help_names_the_command_as_typed() -> None:
    by_script = run([script("torchci"), "plan", "--help"])
    assert by_script.returncode == 0, by_script.stderr
    assert by_script.stdout.startswith("usage: torchci plan "), by_script.stdout
    by_module = run([*module_argv(), "plan", "--help"])
    assert by_module.returncode == 0, by_module.stderr
    python = Path(sys.executable).name
    assert by_module.stdout.startswith(f"usage: {python} -m pytest_torchci plan ")


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_names_the_command_as_typed(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In this process, each subcommand as the script and the module call ``main`` (the
    two entry points themselves: the test above)."""
    monkeypatch.setattr(sys, "argv", [str(BIN / "torchci"), name, "--help"])
    assert main() == 0  # the script: named by sys.argv[0]
    assert capsys.readouterr().out.startswith(f"usage: torchci {name} ")
    python = Path(sys.executable).name
    assert main(prog=f"{python} -m pytest_torchci") == 0  # what __main__.py passes
    assert capsys.readouterr().out.startswith(f"usage: {python} -m pytest_torchci {name} ")


def test_main_defaults_to_torchci_as_prog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["configs", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: torchci configs ")
    assert main(["configs", "--help"], prog="python -m pytest_torchci") == 0
    assert capsys.readouterr().out.startswith("usage: python -m pytest_torchci configs ")


def test_validate_help_spells_parallelism_as_xdist_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "-n N, --workers N" in out
    assert "--jobs FILE" in out
    assert not re.search(r"(?<![-\w])-j\b", out)  # the old spelling is hidden
    assert "--jobs-parallel" not in out


# --- configs -------------------------------------------------------------------------------


def test_known_configs_from_the_traits(data: SuiteData) -> None:
    names = known_configs(data)
    assert names == sorted(names)
    for name in ("default", "distributed", "inductor", "inductor_core", "slow", "timm"):
        assert name in names
    assert "_baseline" not in names and "baseline" not in names  # *_baseline: a fragment
    assert closest_configs("defualt", data) == ["default"]
    assert closest_configs("inductr", data)[0] == "inductor"
    assert closest_configs("zzzzzz", data) == []


def test_branches_from_the_conditions(data: SuiteData) -> None:
    def numbers(config: str) -> list[int]:
        return [b.rule.branch for b in config_branches(data, config) if not b.build_only]

    assert numbers("inductor") == [33]
    assert numbers("distributed") == [13]
    default = numbers("default")
    assert default[-1] == next(r.branch for r in data.routes if r.when is None)
    assert len(default) > 1  # the shard branches come before the final else
    libtorch = [b for b in config_branches(data, "default") if b.build_only]
    assert libtorch and all("BUILD_ENVIRONMENT" in b.rule.cites for b in libtorch)


def test_configs_table_without_workflows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: SuiteData
) -> None:
    assert main(["configs", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["CONFIG", "BRANCH", "RULE"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}
    for name in ("default", "inductor", "distributed", "distributed_4gpu", "slow"):
        assert name in rows
    assert rows["inductor"].split()[1] == "33"
    assert "TEST_CONFIG == *inductor*" in rows["inductor"]
    assert "TEST_CONFIG == distributed" in rows["distributed"]
    assert "test.sh dispatch:" not in captured.out  # the cites are shortened
    assert "left out above" in captured.out
    assert captured.err.count("\n") == 1 and "--root" in captured.err  # how to get builds


def write_workflows(root: Path) -> None:
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True)
    entries = [
        ("default", 1, 2), ("default", 2, 2), ("distributed", 1, 1),
        ("inductr", 1, 2), ("inductor_timm", 1, 1),
    ]  # fmt: skip
    matrix = "\n".join(
        f'          {{ config: "{c}", shard: {s}, num_shards: {n}, runner: "linux.2xlarge" }},'
        for c, s, n in entries
    )
    (folder / "pull.yml").write_text(
        "name: pull\n"
        "jobs:\n"
        "  linux-build:\n"
        "    uses: ./.github/workflows/_linux-build.yml\n"
        "    with:\n"
        f"      build-environment: {CPU}\n"
        "      test-matrix: |\n"
        "        { include: [\n"
        f"{matrix}\n"
        "        ]}\n"
        "  cuda-build:\n"
        "    uses: ./.github/workflows/_linux-build.yml\n"
        "    with:\n"
        f"      build-environment: {CUDA}\n"
        "      test-matrix: |\n"
        "        { include: [\n"
        '          { config: "distributed", shard: 1, num_shards: 1, runner: "linux.g5" },\n'
        "        ]}\n",
        encoding="utf-8",
    )


def test_configs_json_with_builds_from_the_workflows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: SuiteData
) -> None:
    write_workflows(tmp_path)
    assert main(["configs", "--root", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    out = json.loads(captured.out)
    assert out["builds_from"] == str(tmp_path / ".github" / "workflows")
    by_name = {c["name"]: c for c in out["configs"]}
    assert set(known_configs(data)) <= set(by_name)
    assert by_name["distributed"]["builds"] == sorted([CPU, CUDA])
    assert [(b["branch"], b["builds"]) for b in by_name["distributed"]["branches"]] == [
        (13, sorted([CPU, CUDA]))
    ]
    assert [b["branch"] for b in by_name["default"]["branches"]] == [40, 41]
    inductr = by_name["inductr"]
    assert (inductr["known"], inductr["named"]) == (False, False)
    assert inductr["branches"][0]["cites"].endswith("SHARD_NUMBER == 1 and NUM_TEST_SHARDS > 1")
    timm = by_name["inductor_timm"]
    assert (timm["known"], timm["named"]) == (False, True)
    assert by_name["slow"]["builds"] == []  # known, not run by these workflows

    assert main(["configs", "--root", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["CONFIG", "BRANCH", "RULE", "BUILDS"]
    assert "inductr (not named by test.sh)" in table


def test_configs_builds_from_a_jobs_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"build_environment": CUDA, "test_config": "inductor"}) + "\n")
    out_file = tmp_path / "configs.json"
    argv = ["configs", "--root", str(tmp_path), "--jobs", str(jobs), "--json", str(out_file)]
    assert main(argv) == 0
    assert capsys.readouterr().out == ""
    by_name = {c["name"]: c for c in json.loads(out_file.read_text())["configs"]}
    assert by_name["inductor"]["branches"][0]["builds"] == [CUDA]


# --- the unknown-config warning ------------------------------------------------------------


def test_warning_suggests_the_config_meant(data: SuiteData) -> None:
    text = unknown_config_warning(data, Job(CPU, "defualt"))
    assert text is not None and "\n" not in text
    assert text.startswith("TEST_CONFIG 'defualt' is not a config any rule of test.sh names")
    assert text.endswith("did you mean 'default'?")
    final_else = next(r for r in data.routes if r.when is None)
    assert f"dispatch branch {final_else.branch} ({final_else.cites})" in text


def test_warning_names_the_rule_that_runs(data: SuiteData) -> None:
    job = Job(CUDA, "inductr", "1", "2")
    before = plan_job(data, job, Path.cwd())
    rule = before.rule
    assert rule is not None and "SHARD_NUMBER == 1" in rule.cites  # default's shard-1 rule
    text = unknown_config_warning(data, job)
    assert text is not None
    assert f"it reaches dispatch branch {rule.branch} ({rule.cites}), as test.sh does" in text
    assert "did you mean 'inductor'" in text
    assert plan_job(data, job, Path.cwd()).plan == before.plan  # what runs is unchanged


@pytest.mark.parametrize("config", ["inductor", "default", "inductor_timm", "distributed"])
def test_no_warning_for_a_named_config(data: SuiteData, config: str) -> None:
    assert unknown_config_warning(data, Job(CUDA, config, "1", "2")) is None


@pytest.mark.parametrize(
    "job",
    [
        Job(CUDA, "inductr", "1", "2"),
        Job(CPU, "default", "3", "4"),
        Job("linux-jammy-cuda12.8-libtorch", "default"),
        Job(CPU, "distributed"),
        Job(CPU, "pr_time_benchmarks"),
    ],
    ids=lambda j: f"{j.test_config}-{j.shard}-{j.num_shards}",
)
def test_route_is_the_planners(data: SuiteData, job: Job) -> None:
    assert route_job(data, job) == plan_job(data, job, Path.cwd()).rule


# --- the old script names ------------------------------------------------------------------


def test_old_plan_script_warns_and_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"build_environment": CPU, "test_config": "default"}) + "\n")
    proc = run([script("torchci-plan"), "--jobs", str(jobs), "--root", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == "torchci-plan is deprecated; use 'torchci plan'"
    # The new name, in this process (the torchci script itself: the help tests above).
    new = run_main(["plan", "--jobs", str(jobs), "--root", str(tmp_path)], capsys)
    assert new.returncode == 0 and new.stderr == ""
    assert proc.stdout == new.stdout
    assert json.loads(proc.stdout)["job"]["test_config"] == "default"


def test_old_validate_script_warns_and_validates() -> None:
    proc = run(
        [
            script("torchci-validate"), "--test-sh", str(TEST_SH),
            "--suites", str(FIXTURE / "suites"), "--config", "smoke",
            "--build-env", "linux-cuda12-py3",
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[0] == ("torchci-validate is deprecated; use 'torchci validate'")
    assert "1 agree, 0 differ" in proc.stdout


def test_old_names_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_main(["--help"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("usage: torchci-plan ")
    assert "use 'torchci plan'" in captured.err
    assert validate_main(["--bogus"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "torchci-validate is deprecated; use 'torchci validate'"
    assert err[1].startswith("torchci-validate: error: ")


# --- validate's options --------------------------------------------------------------------


def write_fixture_jobs(path: Path) -> Path:
    jobs = [Job("linux-cuda12-py3", "smoke"), Job("linux-py3-cpu", "default")]
    path.write_text("".join(json.dumps(j.as_json()) + "\n" for j in jobs))
    return path


def test_validate_workers_and_json_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = write_fixture_jobs(tmp_path / "jobs.jsonl")
    common = ["validate", "--test-sh", str(TEST_SH), "--suites", str(FIXTURE / "suites")]
    assert main([*common, "--jobs", str(jobs), "--workers", "2", "--json"]) == 0
    captured = capsys.readouterr()
    verdicts = json.loads(captured.out)
    assert [v["agree"] for v in verdicts["jobs"]] == [True, True]
    assert "2 agree, 0 differ" in captured.err  # the summary moves aside for the JSON

    assert main([*common, "--jobs", str(jobs), "-j", "2"]) == 0
    captured = capsys.readouterr()
    assert "-j is deprecated; use -n/--workers" in captured.err
    assert "2 agree, 0 differ" in captured.out


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_validate_bad_workers(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--test-sh", str(TEST_SH), "--config", "smoke", "-n", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("torchci validate: error: argument -n/--workers: ")
    assert len(err.strip().splitlines()) == 1


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--bogus"],
        ["nosuch"],
        [],
        ["configs", "--json", "--bogus"],
        ["matrix", "--config", "default", "--build-env", CPU, "--shards", "two"],
        ["validate", "--test-sh", "x", "--workers"],
    ],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_bad_options_exit_2_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    proc = run_main(argv, capsys)
    assert_one_line_error(proc)
    assert proc.stderr.startswith("torchci")
    assert "--help" in proc.stderr


def test_the_script_exits_2_on_bad_options_in_one_line() -> None:
    proc = run([script("torchci"), "plan", "--bogus"])
    assert_one_line_error(proc)
    assert proc.stderr.startswith("torchci plan: error: ")


def test_bad_values_exit_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(run_main(["configs", "--root", str(tmp_path / "no")], capsys))
    missing = tmp_path / "missing.jsonl"
    proc = run_main(["configs", "--root", str(tmp_path), "--jobs", str(missing)], capsys)
    assert_one_line_error(proc)
    assert "missing.jsonl" in proc.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    proc = run_main(["configs", "--root", str(tmp_path), "--jobs", str(bad)], capsys)
    assert_one_line_error(proc)
    assert "line 1: not JSON" in proc.stderr


# --- bad jobs files: a clear message, exit 2, no traceback ----------------------------------

GOOD_JOB = {"build_environment": "linux-jammy-py3.10-gcc11", "test_config": "default"}


RunPlan = Callable[[Path, Path], "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_plan(capsys: pytest.CaptureFixture[str]) -> RunPlan:
    """``torchci plan --jobs JOBS --root ROOT``, in this process."""
    return lambda jobs, root: run_main(["plan", "--jobs", str(jobs), "--root", str(root)], capsys)


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
        # The names CI's variables have, and test.sh's K/N shard: the message says the fix.
        (
            '{"BUILD_ENVIRONMENT": "linux-jammy-py3.11-gcc11", "test_config": "default"}',
            "line 2: build_environment must be a string (the job has 'BUILD_ENVIRONMENT': "
            "keys are lowercase)",
        ),
        (
            json.dumps({**GOOD_JOB, "shard": "1", "num_shards": "0"}),
            "line 2: the shard count must be at least 1, not '0'",
        ),
        (
            json.dumps({**GOOD_JOB, "shard": "5", "num_shards": "3"}),
            "line 2: shard 5 is past the shard count 3 in '5/3'",
        ),
        (
            json.dumps({**GOOD_JOB, "shard": "3/3"}),
            "line 2: shard must be a whole number, not '3/3' (the count goes in num_shards)",
        ),
    ],
)
def test_cli_bad_job_line(tmp_path: Path, run_plan: RunPlan, bad_line: str, message: str) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(GOOD_JOB) + "\n" + bad_line + "\n")
    proc = run_plan(jobs, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert f"{jobs}, {message}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_jobs_file_and_root(tmp_path: Path, run_plan: RunPlan) -> None:
    proc = run_plan(tmp_path / "missing.jsonl", tmp_path)
    assert proc.returncode == 2
    assert "missing.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(GOOD_JOB) + "\n")
    proc = run_plan(jobs, tmp_path / "no-root")
    assert proc.returncode == 2
    assert "--root" in proc.stderr and "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_reader_that_stops_early_is_no_failure() -> None:
    """`torchci configs | head -1`: the pipe breaks under the command; it stops quietly
    with status 0 (whichever write hit the closed pipe)."""
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_torchci", "configs"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, err
        assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shard": "\u00b2"}, "job: shard must be a whole number, not '\u00b2'"),
        ({"num_shards": "3/3"}, "job: num_shards must be a whole number, not '3/3'"),
        (
            {"shard": "1/3"},
            "job: shard must be a whole number, not '1/3' (the count goes in num_shards)",
        ),
    ],
)
def test_a_shard_that_is_not_a_whole_number_is_named_exactly(
    fields: dict[str, str], message: str
) -> None:
    """Whole numbers in ASCII digits only (int() refuses a superscript two); the hint
    about the count goes with `shard` only."""
    with pytest.raises(JobInputError) as info:
        job_from_json({**GOOD_JOB, **fields})
    assert str(info.value) == message

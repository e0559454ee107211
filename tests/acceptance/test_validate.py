"""The migration validator, against a small test.sh-like script written for these tests
(tests/validator_fixture/ci) and suite data that ports it (tests/validator_fixture/suites)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_torchci.cli import main
from pytest_torchci.data.loader import load_suites
from pytest_torchci.data.model import Job
from pytest_torchci.validate import compare_job, trace_job
from pytest_torchci.validate.jobs import jobs_from_file, jobs_from_workflows
from pytest_torchci.validate.run import validate_job
from pytest_torchci.validate.trace import TraceError, find_dispatch_start, function_blocks

FIXTURE = Path(__file__).parent.parent / "validator_fixture"
TEST_SH = FIXTURE / "ci" / "test.sh"

JOBS = [
    Job("linux-cuda12-py3", "smoke"),
    Job("linux-cuda12-py3", "nightly_gpu"),
    Job("linux-py3-cpu", "nightly_gpu"),
    Job("linux-cuda12-py3", "default", "1", "2"),
    Job("linux-cuda12-py3", "default", "2", "2"),
    Job("linux-py3-cpu", "default", "1", "1"),
    Job("linux-py3-cpu", "bench"),
]


def validate_here(
    capsys: pytest.CaptureFixture[str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``torchci validate ARGS`` in this process, as a completed process (the entry
    points themselves: test_cli.py)."""
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture
def suites_copy(tmp_path: Path) -> Path:
    target = tmp_path / "suites"
    shutil.copytree(FIXTURE / "suites", target)
    return target


@pytest.mark.parametrize("job", JOBS, ids=lambda j: f"{j.test_config}-{j.shard}-{j.num_shards}")
def test_agrees_where_the_port_is_faithful(job: Job) -> None:
    result = validate_job(TEST_SH, load_suites(FIXTURE / "suites"), job)
    assert result.agree, result.first_difference
    assert result.levels == {"calls": True, "commands": True, "env": True}


def test_trace_records_calls_commands_and_environment() -> None:
    trace = trace_job(TEST_SH, Job("linux-cuda12-py3", "nightly_gpu"))
    top = [(c["fn"], c["args"]) for c in trace.calls if c["depth"] == 0]
    assert top == [("install_pkg", ["demo"]), ("toy_gpu_only", [])]
    scripts = [c for c in trace.commands if c["argv"][:2] == ["python", "test/run_test.py"]]
    assert scripts[0]["env"]["PYTORCH_TEST_WITH_SLOW"] == "1"
    assert scripts[0]["env"]["PYTORCH_TESTING_DEVICE_ONLY_FOR"] == "cuda"
    assert scripts[0]["fn"] == "toy_gpu_only"
    assert all(c["phase"] == "dispatch" for c in trace.commands)
    assert trace.exit == 0


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_planted_command_difference_is_reported_at_the_commands_level(suites_copy: Path) -> None:
    _edit(suites_copy / "toy.toml", '"-k", "smoke"', '"-k", "smoky"')
    result = validate_job(TEST_SH, load_suites(suites_copy), JOBS[0])
    assert not result.agree
    assert result.levels == {"calls": True, "commands": False, "env": False}
    assert "smoke" in result.differences["commands"]
    assert "smoky" in result.differences["commands"]


def test_planted_env_difference_is_reported_at_the_env_level(suites_copy: Path) -> None:
    _edit(suites_copy / "toy.toml", 'PYTORCH_TEST_WITH_SLOW = "1"', 'PYTORCH_TEST_WITH_SLOW = "0"')
    result = validate_job(TEST_SH, load_suites(suites_copy), JOBS[1])
    assert result.levels == {"calls": True, "commands": True, "env": False}
    assert "PYTORCH_TEST_WITH_SLOW" in result.differences["env"]


def test_planted_call_difference_is_reported_at_the_calls_level(suites_copy: Path) -> None:
    _edit(
        suites_copy / "routes.toml",
        '{ call = "toy_unit_shard", args = ["1"] }, { call = "toy_smoke" }',
        '{ call = "toy_unit_shard", args = ["1"] }',
    )
    result = validate_job(TEST_SH, load_suites(suites_copy), JOBS[3])
    assert result.levels["calls"] is False
    assert "toy_smoke" in result.differences["calls"]
    assert "calls: " in result.first_difference


def test_cli_reports_and_exit_status(
    tmp_path: Path, suites_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j.as_json()) for j in JOBS) + "\n")
    report, verdicts = tmp_path / "report.md", tmp_path / "verdicts.json"
    args = ["--test-sh", str(TEST_SH), "--jobs", str(jobs), "-n", "2"]
    ok = validate_here(capsys, *args, "--suites", str(FIXTURE / "suites"), "--report", str(report))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{len(JOBS)} agree, 0 differ" in ok.stdout
    assert "| default | 3 | 3 |" in report.read_text()

    _edit(suites_copy / "toy.toml", '"--done"', '"--finished"')
    more = ["--json", str(verdicts), "--report", str(report)]
    bad = validate_here(capsys, *args, "--suites", str(suites_copy), *more)
    assert bad.returncode == 1
    data = json.loads(verdicts.read_text())
    by_config = {j["job"]["test_config"]: j for j in data["jobs"]}
    gpu = [j for j in data["jobs"] if j["job"]["test_config"] == "nightly_gpu"]
    assert all(not j["agree"] and j["levels"]["commands"] is False for j in gpu)
    assert by_config["smoke"]["agree"] is True
    assert set(gpu[0]) == {"job", "agree", "levels", "first_difference"}
    assert "--finished" in report.read_text()


def test_one_job_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    proc = validate_here(
        capsys,
        "--test-sh", str(TEST_SH), "--suites", str(FIXTURE / "suites"),
        "--build-env", "linux-cuda12-py3", "--config", "default", "--shard", "2/2", "-v",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "agree   linux-cuda12-py3 | default | 2/2" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test-sh", "missing.sh", "--config", "x"], "no such file"),
        (["--test-sh", str(TEST_SH)], "no jobs"),
        (["--test-sh", str(TEST_SH), "--config", "x", "--shard", "3/2"], "past the shard count"),
        (["--test-sh", str(TEST_SH), "--jobs", "nope.jsonl"], "nope.jsonl"),
    ],
)
def test_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    proc = validate_here(capsys, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dispatch_start_and_function_blocks() -> None:
    lines = TEST_SH.read_text().splitlines()
    start = find_dispatch_start(lines)
    assert lines[start].startswith('if [[ "$TEST_CONFIG" == smoke ]]')
    names = [b.split("(")[0] for b in function_blocks(TEST_SH.read_text())]
    assert names == ["toy_unit_shard", "toy_smoke", "toy_gpu_only", "toy_bench"]
    with pytest.raises(TraceError):
        find_dispatch_start(["echo no functions"])


def test_jobs_from_csv_and_workflows(tmp_path: Path) -> None:
    csv_file = tmp_path / "matrix.csv"
    csv_file.write_text(
        "workflow,build_environment,test_config,shard,num_shards,runner\n"
        "pull.yml,linux-cuda12-py3,default,1,2,linux.g5\n"
        "pull.yml,linux-cuda12-py3,default,1,2,linux.g6\n"
        "pull.yml,linux-cuda12-py3,default,2,2,linux.g5\n"
    )
    assert [(j.test_config, j.shard) for j in jobs_from_file(csv_file)] == [
        ("default", "1"),
        ("default", "2"),
    ]
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "pull.yml").write_text(
        "name: pull\n"
        "jobs:\n"
        "  linux-build:\n"
        "    uses: ./.github/workflows/_linux-build.yml\n"
        "    with:\n"
        "      build-environment: linux-cuda12-py3\n"
        "      test-matrix: |\n"
        "        { include: [\n"
        '          { config: "default", shard: 1, num_shards: 2, runner: "linux.g5" },\n'
        '          { config: "default", shard: 2, num_shards: 2, runner: "linux.g5" },\n'
        '          { config: "smoke", shard: 1, num_shards: 1, runner: "linux.g5" },\n'
        "        ]}\n"
        "  linux-test:\n"
        "    uses: ./.github/workflows/_linux-test.yml\n"
        "    with:\n"
        "      build-environment: ${{ needs.linux-build.outputs.build-environment }}\n"
    )
    jobs = jobs_from_workflows(workflows)
    assert [(j.build_environment, j.test_config, j.shard, j.num_shards) for j in jobs] == [
        ("linux-cuda12-py3", "default", "1", "2"),
        ("linux-cuda12-py3", "default", "2", "2"),
        ("linux-cuda12-py3", "smoke", "1", "1"),
    ]


def test_sandbox_leaves_nothing_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stubs run instead of every tool: nothing is installed, no file appears here."""
    monkeypatch.chdir(tmp_path)
    trace = trace_job(TEST_SH, JOBS[1])
    pip = [c for c in trace.commands if c["argv"][:3] == ["python3", "-m", "pip"]]
    assert pip and pip[0]["fn"] == "install_pkg"
    assert list(tmp_path.iterdir()) == []


def test_real_mode_on_the_sample_checkout(
    sample_checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = validate_here(
        capsys,
        "--test-sh", str(TEST_SH), "--suites", str(FIXTURE / "suites"), "--real-run",
        "--root", str(sample_checkout), "--call", "toy_unit_shard",
        "--build-env", "linux-py3-cpu", "--config", "default", "--shard", "2/2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exit status agrees; test cases agree" in proc.stdout


def test_compare_job_levels_with_a_hand_made_trace() -> None:
    plan_root = "/checkout"
    from pytest_torchci.data.model import Command, Plan, PlanStep
    from pytest_torchci.validate.trace import Trace

    job = Job("b", "c")
    script = {
        "argv": ["python", "x.py", f"{plan_root}/out"],
        "cwd": ".",
        "env": {"TORCH_X": "1", "HOME": "/h"},
        "fn": "f",
        "phase": "dispatch",
    }
    other = {"argv": ["git", "status"], "cwd": ".", "env": {}, "fn": "f", "phase": "dispatch"}
    trace = Trace(
        job,
        calls=[{"fn": "f", "args": ["1"], "depth": 0}, {"fn": "g", "args": [], "depth": 1}],
        commands=[script, other],
        exit=0,
        root=plan_root,
    )
    command = Command(("python", "x.py", f"{plan_root}/out"))
    step = PlanStep("f", ("1",), "test", "torchci::f[1]", {}, (command,))
    plan = Plan(job, plan_root, {"TORCH_X": "1"}, (step,))
    assert compare_job(trace, plan).agree


@pytest.mark.parametrize(
    ("folders", "agree", "cwd"),
    [
        # The folder is there: both enter it.
        (["test", "benchmarks/toy"], True, "benchmarks/toy"),
        # Missing beside a sibling: bash's pushd fails and the script runs in the root;
        # the plan reads the checkout and says the same.
        (["test", "benchmarks/other"], True, "."),
        # A skeleton without benchmarks/: the plan assumes a full checkout; bash does not.
        (["test"], False, "."),
    ],
    ids=["present", "missing-beside-sibling", "skeleton"],
)
def test_sandbox_folders_decide_where_a_pushd_lands(
    folders: list[str], agree: bool, cwd: str
) -> None:
    job = Job("linux-py3-cpu", "bench")
    result = validate_job(TEST_SH, load_suites(FIXTURE / "suites"), job, folders=folders)
    assert result.agree is agree, result.first_difference
    trace = [c for c in trace_job(TEST_SH, job).commands if "run_bench.py" in c["argv"]]
    assert [c["cwd"] for c in trace] == ["benchmarks/toy"]  # default sandbox: literal targets
    if not agree:
        assert "'.', 'python', 'run_bench.py'" in result.first_difference
        assert "'benchmarks/toy', 'python', 'run_bench.py'" in result.first_difference


def test_sandbox_folders_outside_the_checkout_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc = validate_here(
        capsys, "--test-sh", str(TEST_SH), "--config", "bench", "--sandbox-folders", "test,../x"
    )
    assert proc.returncode == 2
    assert "'../x' is outside the checkout" in proc.stderr
    assert "Traceback" not in proc.stderr

"""Scale-out: every shard in one run, balanced shards, the CI matrix, job summaries."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_torchci import Job, load_suites
from pytest_torchci.cli import main
from pytest_torchci.scale.matrix import build_matrix, job_names, load_runners
from pytest_torchci.scale.shards import balance, expand_all_shards, shard_name

from .test_devices import CONFTEST, RECORDER

CUDA = "linux-jammy-cuda12.8-py3.10-gcc11"


def fake_sharded_suites(folder: Path, out: Path) -> Path:
    """A config whose branch calls `fake[$SHARD_NUMBER]` on every shard and `extra` on
    shard 1 only, like test.sh's shard layout."""
    folder.mkdir(parents=True)
    recorder = folder / "recorder.py"
    recorder.write_text(RECORDER)
    (folder / "traits.toml").write_text(
        "[traits]\n"
        'cuda = { var = "BUILD_ENVIRONMENT", glob = "*cuda*", help = "CUDA" }\n'
        'config_fake = { var = "TEST_CONFIG", glob = "fake", help = "fake" }\n'
    )
    (folder / "routes.toml").write_text(
        '[[route]]\ncites = "test.sh: fake"\nwhen = "config_fake"\ncalls = [\n'
        '  { call = "fake", args = ["s$SHARD_NUMBER-0.2"] },\n'
        '  { call = "fake", args = ["x$SHARD_NUMBER-0.1"], when = "$SHARD_NUMBER == 1" },\n'
        '  { call = "fake", args = ["y-0.1"] },\n'
        "]\n"
    )
    run = f'["{sys.executable}", "-S", "{recorder}", "$1", "@seconds($1)", "{out}"]'
    (folder / "fake.toml").write_text(
        f'[fake]\ncites = "test.sh: fake()"\nparams = ["name"]\nsteps = [{{ run = {run} }}]\n'
    )
    return folder


def test_all_shards_under_xdist_runs_every_item_once(pytester: pytest.Pytester) -> None:
    out = pytester.path / "records.jsonl"
    suites = fake_sharded_suites(pytester.path / "suites", out)
    pytester.makeconftest(CONFTEST)
    checkout = pytester.mkdir("checkout")
    result = pytester.runpytest_subprocess(
        "--torchci-config=fake", f"--torchci-build-env={CUDA}", "--torchci-shard=1/4",
        "--torchci-all-shards", f"--torchci-suites={suites}", f"--torchci-root={checkout}",
        "--torchci-devices=cuda:4", f"--torchci-lock-dir={pytester.path / 'locks'}",
        "-n", "2", "-p", "no:cacheprovider", timeout=180,
    )  # fmt: skip
    # 4 shards x (fake[sK] + fake[y] renamed per shard) + the shard-1 extra = 9 items
    result.assert_outcomes(passed=9)
    # The header names the branch each shard reached, not shard 1's alone.
    result.stdout.fnmatch_lines(
        [f"torchci: shard {k}: dispatch branch 1: test.sh: fake" for k in range(1, 5)]
    )
    names = sorted(json.loads(line)["name"] for line in out.read_text().splitlines())
    assert names == sorted([f"s{k}-0.2" for k in range(1, 5)] + ["x1-0.1"] + ["y-0.1"] * 4)


def test_all_shards_names_shared_calls_by_shard(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    merged, plans = expand_all_shards(load_suites(), Job(CUDA, "default", "1", "3"), tmp_path)
    tests = [u.name for u in merged.units if u.role == "test"]
    assert len(plans) == 3
    branches = [(shard, rule.branch if rule else None) for shard, rule in merged.shard_rules]
    assert branches == [(p.plan.job.shard, p.rule.branch if p.rule else None) for p in plans]
    assert len({branch for _, branch in branches}) == 3  # test.sh branches on the shard
    assert "test_python_shard[1]" in tests and "test_python_shard[3]" in tests
    assert "test_distributed_single_gpu[shard2]" in tests
    assert len(tests) == len(set(tests))
    setups = [u.name for u in merged.units if u.role == "setup"]
    assert setups.count("install_torchvision") == 1
    assert shard_name("f[1]", "2") == "f[1-shard2]"


def test_balance_is_longest_first_onto_the_lightest_shard() -> None:
    units: list[Any] = [
        SimpleNamespace(name=n, role="test", index=i)
        for i, n in enumerate(["a", "b", "c", "d", "e"])
    ]
    seconds = {"a": 10.0, "b": 7.0, "c": 6.0, "d": 4.0, "e": 3.0}
    split = balance(units, 2, lambda u: seconds[u.name])
    assert split.assignment == {"a": 1, "b": 2, "c": 2, "d": 1, "e": 2}
    assert split.predicted == (14.0, 16.0)


def test_balanced_shards_collect_disjoint_items_with_predicted_times(
    pytester: pytest.Pytester,
) -> None:
    checkout = pytester.mkdir("checkout")
    (checkout / "test").mkdir()
    store = pytester.path / "durations.json"
    store.write_text(json.dumps({"durations": {"test_python_shard[1]": 3000.0}}))
    seen: list[str] = []
    for k in (1, 2, 3):
        result = pytester.runpytest_inprocess(
            "--torchci-config=default", f"--torchci-build-env={CUDA}", f"--torchci-shard={k}/3",
            "--torchci-balance=3", f"--torchci-root={checkout}", f"--torchci-durations={store}",
            "--collect-only", "-q", "-p", "no:cacheprovider",
        )  # fmt: skip
        items = [ln for ln in result.outlines if ln.startswith("torchci::")]
        seen.extend(items)
        header = pytester.runpytest_inprocess(
            "--torchci-config=default", f"--torchci-build-env={CUDA}", f"--torchci-shard={k}/3",
            "--torchci-balance=3", f"--torchci-root={checkout}", "--collect-only",
            "-p", "no:cacheprovider",
        )  # fmt: skip
        header.stdout.fnmatch_lines(["torchci: balanced over 3 shards, predicted 1: *, 2: *, 3: *"])
    assert len(seen) == len(set(seen)) > 3


def test_store_durations_then_read_them_back(pytester: pytest.Pytester) -> None:
    out = pytester.path / "records.jsonl"
    suites = fake_sharded_suites(pytester.path / "suites", out)
    pytester.makeconftest(CONFTEST)
    checkout = pytester.mkdir("checkout")
    store = pytester.path / "store.json"
    result = pytester.runpytest_inprocess(
        "--torchci-config=fake", "--torchci-build-env=linux-py3", "--torchci-shard=2/2",
        f"--torchci-suites={suites}", f"--torchci-root={checkout}",
        f"--torchci-store-durations={store}", "-p", "no:cacheprovider", "-v",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["[[]1/2[]] fake[[]s2-0.2[]] passed in 0m0*s", "[[]2/2[]] *"])
    durations = json.loads(store.read_text())["durations"]
    assert set(durations) == {"fake[s2-0.2]", "fake[y-0.1]"}
    assert durations["fake[s2-0.2]"] >= 0.2


def test_github_summary_and_annotations(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pytester.path / "records.jsonl"
    suites = fake_sharded_suites(pytester.path / "suites", out)
    pytester.makeconftest(CONFTEST)
    checkout = pytester.mkdir("checkout")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    # Make one suite fail: its recorder is given a bad duration.
    (suites / "routes.toml").write_text(
        (suites / "routes.toml").read_text().replace('"y-0.1"', '"y-bad"')
    )
    result = pytester.runpytest_inprocess(
        "--torchci-config=fake", "--torchci-build-env=linux-py3", "--torchci-shard=2/2",
        f"--torchci-suites={suites}", f"--torchci-root={checkout}", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["::error title=torchci fake[[]y-bad[]] failed::*"])
    text = summary.read_text()
    assert "| suite | outcome | duration | devices | failing tests |" in text
    assert "| `fake[y-bad]` | failed |" in text and "| `fake[s2-0.2]` | passed |" in text

    # A summary file that cannot be written costs the summary only: the run ends as it was.
    summary.unlink()
    summary.mkdir()
    result = pytester.runpytest_inprocess(
        "--torchci-config=fake", "--torchci-build-env=linux-py3", "--torchci-shard=2/2",
        f"--torchci-suites={suites}", f"--torchci-root={checkout}", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "INTERNALERROR" not in result.stdout.str()


MATRIX_SCHEMA = {"config": str, "shard": int, "num_shards": int, "runner": str}


def check_matrix(matrix: dict[str, Any], shards: int) -> None:
    assert set(matrix) == {"include"}
    assert len(matrix["include"]) == shards
    for k, entry in enumerate(matrix["include"], 1):
        assert set(entry) == set(MATRIX_SCHEMA)
        for key, kind in MATRIX_SCHEMA.items():
            assert isinstance(entry[key], kind)
        assert entry["shard"] == k and entry["num_shards"] == shards and entry["runner"]


@pytest.mark.parametrize(
    ("config", "build", "shards", "runner"),
    [
        ("default", "linux-jammy-py3.10-gcc11", 3, "linux.2xlarge"),
        ("default", CUDA, 5, "linux.g5.4xlarge.nvidia.gpu"),
        ("distributed", CUDA, 2, "linux.g4dn.12xlarge.nvidia.gpu"),
        ("smoke", CUDA + "-sm90", 1, "linux.aws.h100"),
        ("default", "linux-noble-rocm-py3.12-mi300", 2, "linux.rocm.gpu.2"),
    ],
)
def test_matrix_schema_and_runners(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: str,
    build: str,
    shards: int,
    runner: str,
) -> None:
    (tmp_path / "test").mkdir()
    argv = ["matrix", "--config", config, "--build-env", build, "--shards", str(shards)]
    assert main([*argv, "--root", str(tmp_path)]) == 0
    matrix = json.loads(capsys.readouterr().out)
    check_matrix(matrix, shards)
    assert {e["runner"] for e in matrix["include"]} == {runner}


def test_job_names_as_ci_shows_them(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    matrix = build_matrix(
        load_suites(), Job(CUDA, "distributed", "1", "2"), tmp_path, runners=load_runners(None)
    )
    assert job_names(matrix, CUDA) == [
        f"{CUDA} / test (distributed, 1, 2, linux.g4dn.12xlarge.nvidia.gpu)",
        f"{CUDA} / test (distributed, 2, 2, linux.g4dn.12xlarge.nvidia.gpu)",
    ]


def test_matrix_with_a_runners_file_and_durations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test").mkdir()
    runners = tmp_path / "runners.json"
    runners.write_text(json.dumps({"cpu": "small-cpu", "cuda:1": "one-gpu"}))
    durations = tmp_path / "d.json"
    durations.write_text(json.dumps({"durations": {"test_python_shard[1]": 9000}}))
    assert main([
        "matrix", "--config", "default", "--build-env", CUDA, "--shards", "3",
        "--root", str(tmp_path), "--runners", str(runners), "--durations", str(durations),
        "--names",
    ]) == 0  # fmt: skip
    first, *names = capsys.readouterr().out.splitlines()
    check_matrix(json.loads(first), 3)
    assert names[0] == f"{CUDA} / test (default, 1, 3, one-gpu)"
    assert main([
        "matrix", "--config", "smoke", "--build-env", CUDA, "--shards", "1",
        "--root", str(tmp_path), "--runners", str(runners),
    ]) == 2  # fmt: skip
    bad = capsys.readouterr()
    assert "no runner in the mapping covers 1 cuda device(s) (H100, B200)" in bad.err


def test_junit_has_one_case_per_shard_item(pytester: pytest.Pytester) -> None:
    out = pytester.path / "records.jsonl"
    suites = fake_sharded_suites(pytester.path / "suites", out)
    pytester.makeconftest(CONFTEST)
    checkout = pytester.mkdir("checkout")
    result = pytester.runpytest_inprocess(
        "--torchci-config=fake", "--torchci-build-env=linux-py3", "--torchci-shard=1/2",
        "--torchci-all-shards", f"--torchci-suites={suites}", f"--torchci-root={checkout}",
        "--junitxml=out.xml", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=5)
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "out.xml").iter("testcase")}
    assert set(cases) == {
        "fake[s1-0.2]",
        "fake[x1-0.1]",
        "fake[y-0.1-shard1]",
        "fake[s2-0.2]",
        "fake[y-0.1-shard2]",
    }
    shards = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}["shard"]
        for name, case in cases.items()
    }
    assert shards["fake[s2-0.2]"] == "2/2" and shards["fake[s1-0.2]"] == "1/2"

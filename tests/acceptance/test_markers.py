"""Markers (job traits and suite families) and the ways to select items."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_torchci import load_suites

CUDA_DEFAULT_1_OF_5 = (
    "--torchci-config=default",
    "--torchci-build-env=linux-jammy-cuda12.8-py3.10-gcc11",
    "--torchci-shard=1/5",
)
ALL_1_OF_5 = [
    "torchci::test_distributed_single_gpu",
    "torchci::test_lazy_tensor_meta_reference_disabled",
    "torchci::test_without_numpy",
    "torchci::test_python_shard[1]",
    "torchci::test_aten",
    "torchci::test_libtorch[1]",
]


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("torchci::")]


def _forget_known_markers(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a --strict-markers run in this process: ``pytest.mark`` keeps the names of the
    markers it has seen registered, by any run of this process; a new process starts with
    none, so that a marker the run itself does not register fails. So does this one."""
    monkeypatch.setattr(pytest.mark, "_markers", set())


def test_markers_are_listed_without_torchci_mode(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.cuda: job trait: BUILD_ENVIRONMENT matches [*]cuda[*] *",
            "@pytest.mark.config_default: job trait: TEST_CONFIG matches default *",
        ],
        consecutive=False,
    )
    families = load_suites().families
    assert {"python", "distributed", "libtorch", "install"} <= set(families)
    for name in families:
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}: *suite family*"])


def test_strict_markers_run(
    sample_checkout: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget_known_markers(monkeypatch)
    result = pytester.runpytest_inprocess(
        *CUDA_DEFAULT_1_OF_5, "--torchci-dry-run", "--strict-markers"
    )
    result.assert_outcomes(skipped=len(ALL_1_OF_5))  # a dry run: nothing ran


def test_collect_only_lists_the_job(sample_checkout: Path, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*CUDA_DEFAULT_1_OF_5, "--collect-only", "-q")
    assert result.ret == 0
    assert collected(result) == ALL_1_OF_5


def test_select_by_trait_and_family(sample_checkout: Path, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        *CUDA_DEFAULT_1_OF_5,
        "--strict-markers",
        "-m",
        "cuda and distributed",
        "--collect-only",
        "-q",
    )
    assert result.ret == 0
    assert collected(result) == ["torchci::test_distributed_single_gpu"]


def test_select_by_trait_that_is_false(sample_checkout: Path, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*CUDA_DEFAULT_1_OF_5, "-m", "rocm", "--collect-only", "-q")
    assert collected(result) == []
    result = pytester.runpytest(
        *CUDA_DEFAULT_1_OF_5, "-m", "config_default and not distributed", "--collect-only", "-q"
    )
    assert collected(result) == ALL_1_OF_5[1:]


def test_select_by_keyword(sample_checkout: Path, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        *CUDA_DEFAULT_1_OF_5, "-k", "test_python_shard", "--collect-only", "-q"
    )
    assert result.ret == 0
    assert collected(result) == ["torchci::test_python_shard[1]"]


def test_select_by_node_id(sample_checkout: Path, pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*CUDA_DEFAULT_1_OF_5, "torchci::test_aten", "--collect-only", "-q")
    assert result.ret == 0
    assert collected(result) == ["torchci::test_aten"]


def test_node_id_without_arguments_selects_every_call(
    sample_checkout: Path, pytester: pytest.Pytester
) -> None:
    result = pytester.runpytest(
        *CUDA_DEFAULT_1_OF_5,
        "torchci::test_python_shard",
        "torchci::test_libtorch[1]",
        "--collect-only",
        "-q",
    )
    assert result.ret == 0
    assert collected(result) == ["torchci::test_python_shard[1]", "torchci::test_libtorch[1]"]


def test_selected_node_id_runs_only_that_item(
    sample_checkout: Path, pytester: pytest.Pytester
) -> None:
    result = pytester.runpytest(
        *CUDA_DEFAULT_1_OF_5, "--torchci-dry-run", "-v", "torchci::test_aten"
    )
    result.assert_outcomes(skipped=1, deselected=len(ALL_1_OF_5) - 1)
    result.stdout.fnmatch_lines(["torchci::test_aten SKIPPED (dry run)*"])


@pytest.mark.parametrize("argument", ["test/test_torch.py", ".", "test_aten"])
def test_path_argument_is_a_usage_error(
    sample_checkout: Path, pytester: pytest.Pytester, argument: str
) -> None:
    result = pytester.runpytest_inprocess(*CUDA_DEFAULT_1_OF_5, "--torchci-dry-run", argument)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: '{argument}': in torchci mode, arguments select suites*"])
    assert "Traceback" not in result.stderr.str()


def test_suite_family_without_families_table_is_registered(
    pytester: pytest.Pytester, make_suites: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suites folder may leave out [families] (any family is then allowed, and the
    default family is "misc"); the items' family markers must still be registered."""
    folder = make_suites(
        files={
            "traits.toml": (
                '[traits]\nconfig_demo = { var = "TEST_CONFIG", glob = "demo", help = "demo" }\n'
            )
        }
    )
    _forget_known_markers(monkeypatch)
    result = pytester.runpytest_inprocess(
        "--torchci-config=demo",
        f"--torchci-suites={folder}",
        "--torchci-dry-run",
        "--strict-markers",
    )
    result.assert_outcomes(skipped=1)


LAST_FAILED_ROUTES = """\
[[route]]
cites = "demo dispatch"
when = "config_demo"
calls = [{ call = "demo_suite", args = ["a"] }, { call = "demo_suite", args = ["b"] }]
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_last_failed_reruns_the_failed_call_of_a_parametrized_suite(
    pytester: pytest.Pytester, make_suites: Any, workers: list[str]
) -> None:
    """`--lf` after `demo_suite[b]` failed: only it runs; once it passes, `--lf` has
    nothing left to rerun and runs both. (The cache's node ids must be the items'.)"""
    failing = pytester.path / "fail-b"
    failing.touch()
    check = "import os, sys; sys.exit(os.path.exists(sys.argv[1] + sys.argv[2]))"
    argv = [sys.executable, "-c", check, str(pytester.path / "fail-"), "$1"]
    suites = make_suites(argv=argv, files={"routes.toml": LAST_FAILED_ROUTES})
    checkout = pytester.mkdir("checkout")

    def run(*extra: str) -> pytest.RunResult:
        args = ["--torchci-config=demo", f"--torchci-suites={suites}", f"--torchci-root={checkout}"]
        return pytester.runpytest_subprocess(*args, *workers, "-v", *extra, timeout=120)

    run().assert_outcomes(passed=1, failed=1)
    rerun = run("--lf")
    rerun.assert_outcomes(passed=0, failed=1)
    assert any("FAILED" in ln and "torchci::demo_suite[b]" in ln for ln in rerun.outlines)
    assert "demo_suite[a]" not in rerun.stdout.str()
    failing.unlink()
    run("--lf").assert_outcomes(passed=1)
    run("--lf").assert_outcomes(passed=2)  # nothing failed last: all run

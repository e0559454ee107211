"""Only ``--torchci-config`` turns torchci mode on; the CI variables alone change nothing."""

from __future__ import annotations

import pytest

PLAIN_TESTS = """
def test_one():
    assert 1 + 1 == 2

def test_two():
    assert "cuda" in "linux-jammy-cuda12.8"

def test_three():
    pass
"""


@pytest.fixture
def ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CONFIG", "default")
    monkeypatch.setenv("BUILD_ENVIRONMENT", "linux-jammy-cuda12.8-py3.10-gcc11")
    monkeypatch.setenv("SHARD_NUMBER", "1")
    monkeypatch.setenv("NUM_TEST_SHARDS", "5")


def test_without_torchci_config_the_plugin_is_inert(
    pytester: pytest.Pytester, ci_environment: None
) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["test_plain.py::test_one PASSED*"])
    assert not any(line.startswith("torchci:") for line in result.outlines)  # no header, items


def test_without_torchci_config_in_a_subprocess(
    pytester: pytest.Pytester, ci_environment: None
) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)


def test_with_torchci_config_only_the_job_is_collected(
    pytester: pytest.Pytester, ci_environment: None
) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest("--torchci-config=default", "--collect-only", "-q")
    assert result.ret == 0
    items = [line for line in result.outlines if "::" in line]
    assert items  # the job's calls, from the environment's build and shard
    assert all(line.startswith("torchci::") for line in items)
    assert "torchci::test_distributed_single_gpu" in items  # a cuda build, shard 1 of 5
    assert "torchci::test_python_shard[1]" in items
    assert not any("test_plain" in line for line in result.outlines)


def test_with_torchci_config_the_test_file_does_not_run(
    pytester: pytest.Pytester, ci_environment: None
) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest("--torchci-config=default", "--torchci-dry-run", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) > 0  # a dry run runs nothing
    assert outcomes.get("failed", 0) == 0
    result.stdout.fnmatch_lines(["torchci::test_python_shard[[]1[]] SKIPPED (dry run)*"])
    assert "test_plain" not in result.stdout.str()

"""Routing: which of test.sh's dispatch branches a job takes, and the calls it makes.

No GPU and no process: ``plan_job`` only records commands.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import pytest_torchci
from pytest_torchci import Job, load_suites, plan_job
from pytest_torchci.data.bash import has_glob

CUDA = "linux-jammy-cuda12.8-py3.10-gcc11"
CPU = "linux-jammy-py3.10-gcc11"
AARCH64 = "linux-jammy-aarch64-py3.10-gcc11"

Calls = list[tuple[str, list[str]]]

DEFAULT_SHARD_1: Calls = [
    ("test_lazy_tensor_meta_reference_disabled", []),
    ("test_without_numpy", []),
    ("install_torchvision", []),
    ("test_python_shard", ["1"]),
    ("test_aten", []),
    ("test_libtorch", ["1"]),
]
DEFAULT_SHARD_2: Calls = [
    ("install_torchvision", []),
    ("test_python_shard", ["2"]),
    ("test_libtorch", ["2"]),
    ("test_aot_compilation", []),
    ("test_custom_script_ops", []),
    ("test_custom_backend", []),
    ("test_torch_function_benchmark", []),
    ("test_libtorch_profiler", []),
]
FINAL_ELSE: Calls = [
    ("install_torchvision", []),
    ("install_monkeytype", []),
    ("test_cpuset_num_threads", []),
    ("test_python", []),
    ("test_aten", []),
    ("test_vec256", []),
    ("test_libtorch", []),
    ("test_aot_compilation", []),
    ("test_custom_script_ops", []),
    ("test_custom_backend", []),
    ("test_torch_function_benchmark", []),
    ("test_benchmarks", []),
]
SINGLE_GPU: Calls = [("test_distributed_single_gpu", [])]
DISTRIBUTED_INSTALLS: Calls = [("install_torchcomms", []), ("install_spmd_types", [])]

# (build_environment, test_config, shard, num_shards, expected top-level calls)
ROUTES: list[tuple[str, str, str, str, Calls]] = [
    (CUDA, "default", "1", "5", SINGLE_GPU + DEFAULT_SHARD_1),
    (AARCH64, "default", "1", "3", DEFAULT_SHARD_1),
    (CPU, "default", "2", "3", DEFAULT_SHARD_2),
    (CUDA, "default", "2", "5", SINGLE_GPU + DEFAULT_SHARD_2),
    (CPU, "default", "5", "5", [("install_torchvision", []), ("test_python_shard", ["5"])]),
    (CPU, "default", "3", "3", [("install_torchvision", []), ("test_python_shard", ["3"])]),
    (
        CUDA,
        "default",
        "5",
        "5",
        [*SINGLE_GPU, ("install_torchvision", []), ("test_python_shard", ["5"])],
    ),
    (CPU, "default", "1", "1", FINAL_ELSE),
    (CUDA, "default", "1", "1", FINAL_ELSE),
    (
        CUDA,
        "distributed",
        "1",
        "3",
        [*DISTRIBUTED_INSTALLS, ("test_distributed", ["multigpu"]), ("test_rpc", [])],
    ),
    (CUDA, "distributed", "2", "3", [*DISTRIBUTED_INSTALLS, ("test_distributed", ["multigpu"])]),
    (
        CPU,
        "distributed",
        "1",
        "2",
        [*DISTRIBUTED_INSTALLS, ("test_distributed", []), ("test_rpc", [])],
    ),
    (CPU, "distributed", "2", "2", [*DISTRIBUTED_INSTALLS, ("test_distributed", [])]),
    (
        CUDA,
        "inductor",
        "1",
        "2",
        [
            ("install_torchvision", []),
            ("setup_torch_trace", []),
            ("test_inductor_shard", ["1"]),
            ("collect_tlparse_output", []),
        ],
    ),
    (
        CPU,
        "dynamo_wrapped",
        "1",
        "3",
        [("install_torchvision", []), ("test_dynamo_wrapped_shard", ["1"]), ("test_aten", [])],
    ),
    (
        CPU,
        "dynamo_wrapped",
        "2",
        "3",
        [("install_torchvision", []), ("test_dynamo_wrapped_shard", ["2"])],
    ),
    (CUDA, "smoke", "1", "1", [("test_python_smoke", [])]),
]


@pytest.fixture(scope="module")
def suites() -> pytest_torchci.SuiteData:
    return load_suites()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare checkout: test/, the commit pins, and one Kineto test binary."""
    root = tmp_path_factory.mktemp("checkout")
    (root / "test").mkdir()
    pins = root / ".github" / "ci_commit_pins"
    pins.mkdir(parents=True)
    for name in ("vision", "audio", "torchcomms", "spmd_types", "torchao"):
        (pins / f"{name}.txt").write_text(f"{name}0123456789abcdef\n")
    kineto = root / "build" / "bin" / "kineto"
    kineto.mkdir(parents=True)
    binary = kineto / "test_kineto_sample"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return root


def _calls(plan: pytest_torchci.Plan) -> Calls:
    return [(s.call, list(s.args)) for s in plan.steps if s.call]


@pytest.mark.parametrize(
    ("build_environment", "test_config", "shard", "num_shards", "expected"),
    ROUTES,
    ids=[f"{r[1]}-{r[2]}of{r[3]}-{r[0].split('-')[2]}" for r in ROUTES],
)
def test_route(
    suites: pytest_torchci.SuiteData,
    checkout: Path,
    build_environment: str,
    test_config: str,
    shard: str,
    num_shards: str,
    expected: Calls,
) -> None:
    job = Job(build_environment, test_config, shard, num_shards)
    result = plan_job(suites, job, checkout)
    assert result.plan.error is None
    assert _calls(result.plan) == expected


def test_every_branch_runs_the_prelude_then_the_torch_config_preamble(
    suites: pytest_torchci.SuiteData, checkout: Path
) -> None:
    plan = plan_job(suites, Job(CPU, "default", "1", "1"), checkout).plan
    (prelude,) = plan.prelude  # before the dispatch chain: not one of its steps
    first = plan.steps[0]
    assert (prelude.call, prelude.role, prelude.nodeid) == (None, "setup", None)
    # The prelude's own checks: onnxruntime removed, the debug-assert check (not a debug build).
    assert ("pip", "uninstall", "-y", "onnxruntime") in [c.argv for c in prelude.commands]
    assert any("_crash_if_debug_asserts_fail" in c.argv[-1] for c in prelude.commands)
    assert (first.call, first.role, first.nodeid) == (None, "setup", None)
    assert [c.argv[:2] for c in first.commands] == [("python", "-c"), ("python", "-c")]
    assert {c.cwd for c in first.commands} == {"test"}


def test_a_call_before_the_dispatch_chain_is_listed_with_the_prelude(
    suites: pytest_torchci.SuiteData, checkout: Path
) -> None:
    """test.sh calls pr_time_benchmarks between its definitions and exits: the plan
    lists it with the prelude; the dispatch chain has no step."""
    result = plan_job(suites, Job(CPU, "pr_time_benchmarks", "1", "1"), checkout)
    assert result.plan.steps == ()
    assert [s.call for s in result.plan.prelude] == [None, "pr_time_benchmarks"]
    assert [u.name for u in result.units if u.role == "test"] == ["pr_time_benchmarks"]


def test_test_steps_get_node_ids_and_installs_do_not(
    suites: pytest_torchci.SuiteData, checkout: Path
) -> None:
    plan = plan_job(suites, Job(CUDA, "default", "1", "5"), checkout).plan
    roles = {s.call: (s.role, s.nodeid) for s in plan.steps if s.call}
    assert roles["install_torchvision"] == ("setup", None)
    assert roles["test_distributed_single_gpu"] == (
        "test",
        "torchci::test_distributed_single_gpu",
    )
    assert roles["test_python_shard"] == ("test", "torchci::test_python_shard[1]")


# --- a hand-written suites folder ---------------------------------------------------------

TINY_TRAITS = """\
[families]
misc = "other suites"

[traits]
config_default = { var = "TEST_CONFIG", glob = "default", help = "exact" }
config_any_default = { var = "TEST_CONFIG", glob = "*default*", help = "glob" }
cuda = { var = "BUILD_ENVIRONMENT", glob = "*cuda*", help = "glob" }
"""

TINY_ROUTES = """\
[[route]]
cites = "first: exact default"
when = "config_default"
calls = [{ call = "first" }]

[[route]]
cites = "second: also matches default, but comes later"
when = "config_default or cuda"
calls = [{ call = "second" }]

[[route]]
cites = "third: the final else"
calls = [{ call = "third", args = ["$TEST_CONFIG"] }]
"""

TINY_SUITES = """\
[first]
cites = "tiny: first()"
steps = [{ run = ["echo", "first"] }]

[second]
cites = "tiny: second()"
steps = [{ run = ["echo", "second"] }]

[third]
cites = "tiny: third()"
params = ["config"]
steps = [
  { run = ["touch", "pwned"] },
  { run = ["echo", "$1", "$TEST_CONFIG"] },
]
"""

METACHARACTER_CONFIGS = [
    "default; rm -rf /",
    "$(touch pwned)",
    "`touch pwned`",
    "default && touch pwned",
]


@pytest.fixture
def tiny_suites(tmp_path: Path) -> pytest_torchci.SuiteData:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "traits.toml").write_text(TINY_TRAITS)
    (folder / "routes.toml").write_text(TINY_ROUTES)
    (folder / "tiny.toml").write_text(TINY_SUITES)
    return load_suites(folder)


@pytest.mark.parametrize(
    ("build_environment", "test_config", "expected"),
    [
        (CPU, "default", "first"),
        (CUDA, "default", "first"),  # the second rule matches too; the first one wins
        (CUDA, "distributed", "second"),
        (CPU, "distributed", "third"),
        (CPU, "xdefault", "third"),  # config_default is exact
    ],
)
def test_first_matching_rule_wins(
    tiny_suites: pytest_torchci.SuiteData,
    tmp_path: Path,
    build_environment: str,
    test_config: str,
    expected: str,
) -> None:
    result = plan_job(tiny_suites, Job(build_environment, test_config), tmp_path)
    assert result.plan.error is None
    assert result.rule is not None
    assert result.rule.cites.split(":")[0] == expected
    assert [s.call for s in result.plan.steps] == [expected]


@pytest.mark.parametrize("test_config", METACHARACTER_CONFIGS)
def test_shell_metacharacters_in_test_config_are_data(
    tiny_suites: pytest_torchci.SuiteData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    test_config: str,
) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"planning started a process: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(os, "system", no_process)
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.chdir(root)

    exact = [
        t.name
        for t in tiny_suites.traits.values()
        if t.var == "TEST_CONFIG" and t.kind == "glob" and not has_glob(t.pattern)
    ]
    assert exact == ["config_default"]
    result = plan_job(tiny_suites, Job(CUDA, test_config), root)

    assert result.plan.error is None
    assert result.rule is not None and result.rule.cites.startswith("second")
    # Not "first": the value is not the exact trait's "default".
    assert [s.call for s in result.plan.steps] == ["second"]

    cpu = plan_job(tiny_suites, Job(CPU, test_config), root).plan
    (step,) = cpu.steps
    assert step.call == "third"
    assert step.args == (test_config,)  # one word, as given
    assert [c.argv for c in step.commands] == [
        ("touch", "pwned"),
        ("echo", test_config, test_config),
    ]
    assert not (root / "pwned").exists()
    assert not (tmp_path / "pwned").exists()
    assert list(root.iterdir()) == []

"""``cd``/``pushd``/``popd`` as bash runs them: a folder the checkout lacks.

Running, a ``cd`` into a missing folder fails the suite there (``set -e``). Planning,
bash's answer depends on the checkout, so the plan reads it: the folder stays where it
was and the step carries a note; a skeleton checkout (top-level folders, empty or
missing parents, folders the job makes) is taken as a full one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_torchci import Job, load_suites, plan_job
from pytest_torchci.plan.engine import _folders_made

from ..conftest import run_demo_config, toml_argv

SCRIPT = [sys.executable, "score.py"]

SUITE = f"""\
[demo_suite]
cites = "demo: demo_suite()"
steps = [
  {{ pushd = "benchmarks/transformer" }},
  {{ run = {toml_argv(SCRIPT)} }},
  {{ popd = true }},
  {{ run = {toml_argv([sys.executable, "after.py"])} }},
]
"""


def plan_cwds(suites: Path, root: Path) -> tuple[list[str], tuple[str, ...]]:
    (step,) = plan_job(load_suites(suites), Job("linux-demo", "demo"), root).plan.steps
    return [c.cwd for c in step.commands], step.notes


def run_demo(
    pytester: pytest.Pytester, suites: Path, checkout: Path, *extra: str
) -> pytest.RunResult:
    return run_demo_config(
        pytester, suites, checkout, "--torchci-build-env=linux-demo", *extra, in_process=True
    )


@pytest.fixture
def suites(make_suites: Any) -> Path:
    path: Path = make_suites(files={"demo.toml": SUITE})
    return path


def test_plan_stays_put_when_the_folder_is_missing_beside_its_siblings(
    suites: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "benchmarks" / "dynamo").mkdir(parents=True)
    cwds, notes = plan_cwds(suites, root)
    # bash: pushd fails and pushes nothing, so the popd after it has nothing to pop.
    assert cwds == [".", "."]
    assert notes == (
        "pushd: benchmarks/transformer: No such file or directory",
        "popd: directory stack empty",
    )
    plan = plan_job(load_suites(suites), Job("linux-demo", "demo"), root).plan
    assert plan.steps[0].as_json()["notes"] == list(notes)


@pytest.mark.parametrize(
    ("layout", "entered"),
    [
        pytest.param(["test/custom_backend"], False, id="populated-grandparent"),
        pytest.param(["test"], True, id="empty-grandparent"),
    ],
)
def test_the_nearest_existing_ancestor_decides(
    make_suites: Any, tmp_path: Path, layout: list[str], entered: bool
) -> None:
    """test/cpp_extensions/ext where the checkout has no test/cpp_extensions: missing when
    test/ has contents (bash's pushd fails there), assumed when test/ is an empty skeleton."""
    suite = SUITE.replace("benchmarks/transformer", "test/cpp_extensions/ext")
    root = tmp_path / "root"
    for folder in layout:
        (root / folder).mkdir(parents=True)
    cwds, notes = plan_cwds(make_suites(files={"demo.toml": suite}), root)
    assert cwds == (["test/cpp_extensions/ext", "."] if entered else [".", "."])
    assert bool(notes) is not entered


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param([], id="empty-checkout"),
        pytest.param(["benchmarks"], id="empty-parent"),
        pytest.param(["test/custom"], id="missing-parent"),
        pytest.param(["benchmarks/transformer"], id="present"),
    ],
)
def test_plan_enters_the_folder_in_a_full_or_skeleton_checkout(
    suites: Path, tmp_path: Path, layout: list[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for folder in layout:
        (root / folder).mkdir(parents=True)
    cwds, notes = plan_cwds(suites, root)
    assert cwds == ["benchmarks/transformer", "."]
    assert notes == ()
    assert (
        "notes"
        not in plan_job(load_suites(suites), Job("linux-demo", "demo"), root)
        .plan.steps[0]
        .as_json()
    )


def test_plan_enters_folders_the_job_makes(make_suites: Any, tmp_path: Path) -> None:
    suite = f"""\
[demo_suite]
cites = "demo: demo_suite()"
steps = [
  {{ run = ["mkdir", "-p", "benchmarks/new"] }},
  {{ cd = "benchmarks/new" }},
  {{ run = {toml_argv(SCRIPT)} }},
  {{ cd = ".." }},
  {{ run = ["git", "clone", "--depth", "1", "https://example.invalid/org/tool.git"] }},
  {{ pushd = "tool" }},
  {{ run = {toml_argv(SCRIPT)} }},
  {{ popd = true }},
  {{ cd = ".." }},
  {{ run = ["git", "clone", "https://example.invalid/org/x.git", "benchmarks/cloned"] }},
  {{ cd = "benchmarks/cloned" }},
  {{ run = {toml_argv(SCRIPT)} }},
  {{ cd = "/" }},
  {{ run = {toml_argv(SCRIPT)} }},
]
"""
    root = tmp_path / "root"
    (root / "benchmarks" / "dynamo").mkdir(parents=True)
    cwds, notes = plan_cwds(make_suites(files={"demo.toml": suite}), root)
    assert notes == ()
    # mkdir, score, clone, score, clone, score, score
    assert cwds == [".", "benchmarks/new", "benchmarks", "benchmarks/tool", ".",
                    "benchmarks/cloned", "/"]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "made"),
    [
        (["mkdir", "-p", "a/b", "c"], ["a/b", "c"]),
        (["git", "clone", "https://host/org/repo.git"], ["repo"]),
        (["git", "clone", "--depth", "1", "-b", "main", "https://host/org/repo", "dst"], ["dst"]),
        (["git", "clone", "--recursive", "git@host:org/repo.git"], ["repo"]),
        (["git", "checkout", "main"], []),
        (["python", "setup.py"], []),
    ],
)
def test_folders_a_command_makes(argv: list[str], made: list[str]) -> None:
    assert _folders_made(argv) == made


def test_running_a_cd_into_a_missing_folder_fails_the_suite_there(
    pytester: pytest.Pytester, suites: Path
) -> None:
    checkout = pytester.path / "checkout"
    (checkout / "benchmarks" / "dynamo").mkdir(parents=True)
    (checkout / "after.py").write_text("open('ran', 'w').close()\n")
    result = run_demo(pytester, suites, checkout)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pushd: benchmarks/transformer: No such file or directory*"])
    assert "Traceback" not in result.stdout.str()
    assert not (checkout / "ran").exists()  # set -e: nothing after the failed pushd ran


def test_running_enters_the_folder_when_it_exists(pytester: pytest.Pytester, suites: Path) -> None:
    checkout = pytester.path / "checkout"
    folder = checkout / "benchmarks" / "transformer"
    folder.mkdir(parents=True)
    (folder / "score.py").write_text("open('scored', 'w').close()\n")
    (checkout / "after.py").write_text("open('ran', 'w').close()\n")
    result = run_demo(pytester, suites, checkout)
    result.assert_outcomes(passed=1)
    assert (folder / "scored").exists()
    assert (checkout / "ran").exists()


def test_dry_run_shows_the_note(pytester: pytest.Pytester, suites: Path) -> None:
    checkout = pytester.path / "checkout"
    (checkout / "benchmarks" / "dynamo").mkdir(parents=True)
    result = run_demo(pytester, suites, checkout, "--torchci-dry-run", "-s")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [f"  (.) {sys.executable} score.py", "  note: pushd: benchmarks/transformer: No such file*"]
    )

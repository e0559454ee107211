"""Shared fixtures of pytest-torchci's own tests.

``sample_checkout`` copies the sample checkout into pytester's temporary folder (the copy
is not a git repository, so ``git status --porcelain`` fails there and the plugin's
``assert_git_not_dirty`` passes, as test.sh's does). ``make_suites`` writes a tiny suites
folder for runs that must not depend on the installed suite data.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

# The sample's own test files are run by its test/run_test.py, never by this project.
collect_ignore = ["sample_checkout"]

SAMPLE_CHECKOUT = Path(__file__).resolve().parent / "sample_checkout"
_IGNORED = {"__pycache__", ".pytest_cache"}


def _ignore_outputs(folder: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n in _IGNORED}
    if Path(folder).resolve() == SAMPLE_CHECKOUT / "test" and "test-reports" in names:
        ignored.add("test-reports")
    return ignored


@pytest.fixture(autouse=True)
def _not_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs these tests start behave as on a developer's machine, wherever the tests
    run (under CI, a suite whose devices are missing fails instead of skipping); tests of
    the CI behaviour set these themselves."""
    for name in ("CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sample_checkout(pytester: pytest.Pytester) -> Path:
    """A fresh copy of tests/sample_checkout as pytester's folder (its rootdir)."""
    shutil.copytree(SAMPLE_CHECKOUT, pytester.path, ignore=_ignore_outputs, dirs_exist_ok=True)
    assert (pytester.path / "test" / "run_test.py").is_file()
    assert not (pytester.path / "test" / "test-reports").exists()
    return pytester.path


@pytest.fixture
def venv_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put this interpreter's folder first on PATH, so the suites' ``python`` is it."""
    bindir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bindir


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's string syntax is valid TOML for these values)."""
    return json.dumps(value)


def toml_argv(argv: list[str]) -> str:
    return "[" + ", ".join(toml_str(a) for a in argv) + "]"


TRAITS_TOML = """\
[families]
misc = "other suites"

[traits]
config_demo = { var = "TEST_CONFIG", glob = "demo", help = "TEST_CONFIG is demo" }
"""

ROUTES_TOML = """\
[[route]]
cites = "demo dispatch"
when = "config_demo"
calls = [{ call = "demo_suite" }]
"""


class SuitesFactory:
    """Writes tiny suites folders: one trait (config_demo), one route, one suite.

    ``make_suites(argv=[...])`` makes ``demo_suite`` run that one command; ``files``
    adds or replaces whole files (``make_suites.traits_toml`` and ``.routes_toml`` are
    the default texts, to edit).
    """

    traits_toml = TRAITS_TOML
    routes_toml = ROUTES_TOML

    def __init__(self, base: Path) -> None:
        self.base = base
        self.count = 0

    def __call__(self, argv: list[str] | None = None, files: dict[str, str] | None = None) -> Path:
        self.count += 1
        folder = self.base / f"suites{self.count}"
        folder.mkdir()
        argv = argv or [sys.executable, "-c", "pass"]
        contents = {
            "traits.toml": TRAITS_TOML,
            "routes.toml": ROUTES_TOML,
            "demo.toml": (
                "[demo_suite]\n"
                'cites = "demo: demo_suite()"\n'
                f"steps = [{{ run = {toml_argv(argv)} }}]\n"
            ),
        }
        contents.update(files or {})
        for name, text in contents.items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder


def run_demo_config(
    pytester: pytest.Pytester, suites: Path, checkout: Path, *extra: str
) -> pytest.RunResult:
    """``pytest --torchci-config=demo`` on ``suites`` and ``checkout``, in a subprocess."""
    return pytester.runpytest_subprocess(
        "--torchci-config=demo",
        f"--torchci-suites={suites}",
        f"--torchci-root={checkout}",
        *extra,
        timeout=120,
    )


@pytest.fixture
def make_suites(tmp_path: Path) -> SuitesFactory:
    return SuitesFactory(tmp_path)

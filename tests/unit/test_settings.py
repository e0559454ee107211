"""Settings resolved from options, environment and ini: the kill grace's order and
default, and the deadline's backstop that follows from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_torchci.plugin.settings import resolve_settings
from pytest_torchci.run.deadlines import BACKSTOP_MARGIN, DEADLINE_KEY, apply_deadline
from pytest_torchci.run.processes import GRACE_SECONDS


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        ([], {}, "", GRACE_SECONDS[0]),
        (["--torchci-kill-grace=0.5"], {"TORCHCI_KILL_GRACE": "3"}, "7", 0.5),
        ([], {"TORCHCI_KILL_GRACE": "3"}, "7", 3.0),
        ([], {}, "7", 7.0),
        (["--torchci-kill-grace=0"], {}, "", 0.0),
    ],
    ids=["default", "option-first", "then-environment", "then-ini", "zero"],
)
def test_kill_grace_option_then_environment_then_ini(
    pytester: pytest.Pytester, args: list[str], env: dict[str, str], ini: str, expected: float
) -> None:
    assert GRACE_SECONDS == (5.0, 5.0)
    if ini:
        pytester.makeini(f"[pytest]\ntorchci_kill_grace = {ini}\n")
    root = pytester.mkdir("checkout")
    config = pytester.parseconfig(
        "--torchci-config=default", f"--torchci-root={root}",
        f"--torchci-lock-dir={pytester.path / 'locks'}", *args,
    )  # fmt: skip
    assert resolve_settings(config, environ=env).kill_grace == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "inf", "nan"])
def test_a_kill_grace_that_is_no_number_of_seconds_is_a_usage_error(
    pytester: pytest.Pytester, raw: str
) -> None:
    root = pytester.mkdir("checkout")
    config = pytester.parseconfig(
        "--torchci-config=default", f"--torchci-root={root}",
        f"--torchci-lock-dir={pytester.path / 'locks'}", f"--torchci-kill-grace={raw}",
    )  # fmt: skip
    with pytest.raises(pytest.UsageError, match=f"--torchci-kill-grace {raw}: not a number"):
        resolve_settings(config, environ={})


def test_the_backstop_waits_for_both_grace_periods(pytester: pytest.Pytester) -> None:
    """pytest-timeout fires only after the deadline, both graces and the margin."""
    item = pytester.getitem("def test_func(): pass")
    apply_deadline(item, 60.0)
    marker = item.get_closest_marker("timeout")
    assert marker is not None and marker.args == (60.0 + 10.0 + BACKSTOP_MARGIN,)
    apply_deadline(item, 60.0, (1.0, 1.0))
    marker = item.get_closest_marker("timeout")
    assert marker is not None and marker.args == (60.0 + 2.0 + BACKSTOP_MARGIN,)
    assert item.stash[DEADLINE_KEY] == 60.0
    apply_deadline(item, None)
    marker = item.get_closest_marker("timeout")
    assert marker is not None and marker.args == (0.0,)  # no deadline: no backstop


def test_a_source_tree_that_is_not_installed_finds_its_suites(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the installed ``pytest_torchci.suites`` (the package imported from a
    checkout of this project), the suite data is the top-level ``suites/`` folder."""
    from importlib import resources

    from pytest_torchci.data import loader

    def missing(name: str) -> object:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(resources, "files", missing)
    folder = loader.default_suites_dir()
    assert folder == Path(loader.__file__).resolve().parents[2] / "suites"
    assert (folder / "routes.toml").is_file()

"""The docs' table of suites (docs/suites.md) is generated from the suite data; it must
not be stale."""

from __future__ import annotations

from pathlib import Path

from pytest_torchci.cli.suites_table import (
    TABLE_BEGIN,
    TABLE_END,
    render_suite_table,
    replace_suite_table,
)
from pytest_torchci.data.loader import load_suites

SUITES_PAGE = Path(__file__).parents[2] / "docs" / "suites.md"


def test_suites_table_is_current() -> None:
    text = SUITES_PAGE.read_text(encoding="utf-8")
    assert TABLE_BEGIN in text and TABLE_END in text
    assert replace_suite_table(text, load_suites()) == text, (
        "docs/suites.md's table of suites is stale: run "
        "`python -m pytest_torchci suites-table --readme docs/suites.md`"
    )


def test_suites_table_check_command_passes() -> None:
    """The command the docs give for checking the table agrees."""
    from pytest_torchci.cli import main

    assert main(["suites-table", "--readme", str(SUITES_PAGE), "--check"]) == 0


def test_every_suite_has_a_row_naming_its_function() -> None:
    data = load_suites()
    table = render_suite_table(data)
    for name, suite in data.suites.items():
        assert f"| `{name}` |" in table
        assert suite.cites.strip(), name


def test_every_route_cites_its_branch() -> None:
    data = load_suites()
    assert all(rule.cites.startswith("test.sh") for rule in data.routes)
    assert len(data.routes) == 59  # the 58 branches of the chain and pr_time_benchmarks before it

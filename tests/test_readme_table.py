"""The README's table of suites is generated from the suite data; it must not be stale."""

from __future__ import annotations

from pathlib import Path

from pytest_torchci.doc import TABLE_BEGIN, TABLE_END, render_suite_table, replace_suite_table
from pytest_torchci.suite_data import load_suites

README = Path(__file__).parent.parent / "README.md"


def test_readme_table_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert TABLE_BEGIN in text and TABLE_END in text
    assert replace_suite_table(text, load_suites()) == text, (
        "README.md's table of suites is stale: run `python -m pytest_torchci suites-table`"
    )


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

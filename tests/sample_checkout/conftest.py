"""Keep an enclosing project's pytest run from collecting the sample's tests.

The files under ``test/`` are meant to be run by ``test/run_test.py`` (or by
pytest-torchci in torchci mode) with this directory as pytest's rootdir. When
some other rootdir is in effect (e.g. the pytest-torchci repository's own
test run walks ``tests/``), nothing below this directory is collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Ignore everything here unless this directory is pytest's rootdir."""
    if config.rootpath.resolve() != HERE:
        return True
    return None

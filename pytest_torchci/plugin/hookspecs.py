"""Hooks a conftest.py can implement to change the plugin's choices without forking it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..data.model import Command


@pytest.hookspec(firstresult=True)
def pytest_torchci_command(command: Command, suite: str, config: pytest.Config) -> Command | None:
    """Called before each command of suite ``suite`` runs (not in dry-run or plans).

    Return a replacement :class:`~pytest_torchci.Command` (for example with another
    argv or extra variables), or None to run it as planned.
    """

"""Where the plugin keeps its state on the pytest config (a light module: the plugin's
entry point imports it on every pytest run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..run.cancel import Cancel
    from .session import Runtime

__all__ = ["CANCEL_KEY", "RUNTIME_KEY"]

RUNTIME_KEY: pytest.StashKey[Runtime] = pytest.StashKey()
CANCEL_KEY: pytest.StashKey[Cancel] = pytest.StashKey()  # from pytest_cmdline_main on

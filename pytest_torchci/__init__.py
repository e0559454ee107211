"""pytest-torchci: PyTorch's CI test suites as pytest items.

The public API: load the suite data, plan a job, read the plan. Its names are imported on
first use, so that the pytest plugin (loaded by every pytest run in an environment that
has it) costs nothing where torchci mode is off.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data.loader import SuiteData, SuiteDataError, load_suites
    from .data.model import SCHEMA_VERSION, Command, Job, Plan, PlanStep
    from .plan.engine import CommandResult, SuiteFailure
    from .plan.planner import JobPlan, plan_job

__all__ = [
    "SCHEMA_VERSION",
    "Command",
    "CommandResult",
    "Job",
    "JobPlan",
    "Plan",
    "PlanStep",
    "SuiteData",
    "SuiteDataError",
    "SuiteFailure",
    "load_suites",
    "plan_job",
]

_WHERE = {
    "SCHEMA_VERSION": ".data.model",
    "Command": ".data.model",
    "Job": ".data.model",
    "Plan": ".data.model",
    "PlanStep": ".data.model",
    "CommandResult": ".plan.engine",
    "SuiteFailure": ".plan.engine",
    "JobPlan": ".plan.planner",
    "plan_job": ".plan.planner",
    "SuiteData": ".data.loader",
    "SuiteDataError": ".data.loader",
    "load_suites": ".data.loader",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""pytest-torchci: PyTorch's CI test suites as pytest items.

The public API: load the suite data, plan a job, read the plan.
"""

from .engine import CommandResult, SuiteFailure
from .model import SCHEMA_VERSION, Command, Job, Plan, PlanStep
from .planner import JobPlan, plan_job
from .suite_data import SuiteData, SuiteDataError, load_suites

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

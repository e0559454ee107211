"""The migration validator: trace a test.sh under stubs and compare it with the plugin.

A library: :func:`.run.validate_job` traces and plans one job; the command that runs it
over many jobs is ``torchci validate`` (:mod:`..cli.validate`). May import :mod:`..run`,
:mod:`..plan` and :mod:`..data`.
"""

from .compare import LEVELS, Comparison, compare_job
from .trace import Trace, TraceError, trace_job

__all__ = ["LEVELS", "Comparison", "Trace", "TraceError", "compare_job", "trace_job"]

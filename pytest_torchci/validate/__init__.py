"""The migration validator: trace a test.sh under stubs and compare it with the plugin.

``python -m pytest_torchci validate`` (also ``torchci-validate``); see ``cli.py``.
"""

from .compare import LEVELS, Comparison, compare_job
from .trace import Trace, TraceError, trace_job

__all__ = ["LEVELS", "Comparison", "Trace", "TraceError", "compare_job", "trace_job"]

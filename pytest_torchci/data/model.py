"""The plan of a CI job: what test.sh would run for it, as data.

These are plain frozen dataclasses with a JSON form (schema version 1, documented in
docs/plan.md); nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["SCHEMA_VERSION", "Command", "Job", "Plan", "PlanStep", "Role"]

SCHEMA_VERSION: Final = 1  # of the JSON form; a change that breaks readers bumps it
Role = Literal["setup", "test", "teardown"]


@dataclass(frozen=True)
class Job:
    """One CI job: the variables `_linux-test.yml` exports before it runs test.sh."""

    build_environment: str
    test_config: str
    shard: str = "1"
    num_shards: str = "1"
    env: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] | None = None

    def variables(self) -> dict[str, str]:
        """The job's own variables, as the workflow exports them."""
        return {
            **dict(self.env),
            "BUILD_ENVIRONMENT": self.build_environment,
            "TEST_CONFIG": self.test_config,
            "SHARD_NUMBER": self.shard,
            "NUM_TEST_SHARDS": self.num_shards,
        }

    def as_json(self) -> dict[str, Any]:
        """The job as the plan's ``"job"`` key holds it: the line it was read from, as
        it was (``raw``), else its four fields and its ``env`` when it has one."""
        if self.raw is not None:
            return dict(self.raw)
        out: dict[str, Any] = {
            "build_environment": self.build_environment,
            "test_config": self.test_config,
            "shard": self.shard,
            "num_shards": self.num_shards,
        }
        if self.env:
            out["env"] = dict(self.env)
        return out


@dataclass(frozen=True)
class Command:
    """One command line: an argv list, a working directory and its own variables.

    ``cwd`` is relative to the checkout's root (``"."`` is the root) or absolute for a
    folder outside it. ``env`` holds the variables set for this command beyond its
    step's; ``None`` as a value means the variable is unset. ``fn`` is the suite
    (test.sh's function) whose step made it, ``""`` outside any; it is not part of the
    JSON form. ``stdin`` is text fed to the command (a here-string); ``stdout`` a file
    (relative to the root) that its output goes to instead of the log (``> FILE``);
    ``merge_stderr`` keeps its stderr with the stdout a step captures (``2>&1``).
    """

    argv: tuple[str, ...]
    cwd: str = "."
    env: Mapping[str, str | None] = field(default_factory=dict)
    fn: str = ""
    stdin: str | None = None
    stdout: str | None = None
    merge_stderr: bool = False

    def as_json(self) -> dict[str, Any]:
        """The command in the plan's JSON form (docs/plan.md)."""
        out: dict[str, Any] = {"argv": list(self.argv), "cwd": self.cwd, "env": dict(self.env)}
        if self.stdin is not None:
            out["stdin"] = self.stdin
        if self.stdout is not None:
            out["stdout"] = self.stdout
        if self.merge_stderr:
            out["merge_stderr"] = True
        return out


@dataclass(frozen=True)
class PlanStep:
    """One call of the dispatch chain (``call`` is None for commands it runs inline)."""

    call: str | None
    args: tuple[str, ...]
    role: Role
    nodeid: str | None
    env: Mapping[str, str | None]
    commands: tuple[Command, ...]
    notes: tuple[str, ...] = ()  # what failed without stopping it (a `cd` into a missing folder)

    def as_json(self) -> dict[str, Any]:
        """The step in the plan's JSON form (docs/plan.md)."""
        out: dict[str, Any] = {
            "call": self.call,
            "args": list(self.args),
            "role": self.role,
            "nodeid": self.nodeid,
            "env": dict(self.env),
            "commands": [c.as_json() for c in self.commands],
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class Plan:
    """Everything test.sh would run for one job, in order."""

    job: Job
    root: str
    env: Mapping[str, str | None]
    steps: tuple[PlanStep, ...]
    error: str | None = None
    prelude: tuple[PlanStep, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The whole plan, one JSON object (schema ``SCHEMA_VERSION``, docs/plan.md)."""
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "job": self.job.as_json(),
            "root": self.root,
            "env": dict(self.env),
            "steps": [s.as_json() for s in self.steps],
        }
        if self.prelude:
            # What test.sh runs before its dispatch chain: its own checks, and a call its
            # definitions make on the way (pr_time_benchmarks). Not part of `steps`.
            out["prelude"] = [s.as_json() for s in self.prelude]
        if self.error is not None:
            out["error"] = self.error
        return out

"""Scale-out: every shard of a config in one run, and shards balanced by duration.

``expand_all_shards`` plans each of a config's shards and merges their units: setup
calls once (the first shard's), test calls of every shard (a name that two shards share
gets its shard in brackets), teardown calls once at the end. ``balance`` splits test
units over N shards, longest first onto the lightest shard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.loader import SuiteData
from ..data.model import Job
from ..plan.engine import Executor
from ..plan.planner import JobPlan, Unit, plan_job

__all__ = ["Balance", "balance", "expand_all_shards", "shard_name"]


def shard_name(name: str, shard: str) -> str:
    """``test_aten`` of shard 2 as ``test_aten[shard2]``; ``f[1]`` as ``f[1-shard2]``."""
    if name.endswith("]"):
        return f"{name[:-1]}-shard{shard}]"
    return f"{name}[shard{shard}]"


def expand_all_shards(
    data: SuiteData,
    job: Job,
    root: Path,
    *,
    base_env: Mapping[str, str] | None = None,
    query: Executor | None = None,
) -> tuple[JobPlan, list[JobPlan]]:
    """Plan shards 1..N of ``job`` (N = its shard count); merge their units."""
    plans = [
        plan_job(data, dataclasses.replace(job, shard=str(k)), root, base_env=base_env, query=query)
        for k in range(1, int(job.num_shards) + 1)
    ]
    counts: dict[str, int] = {}
    for jp in plans:
        for u in jp.units:
            if u.role == "test":
                counts[u.name] = counts.get(u.name, 0) + 1
    setups: dict[str, Unit] = {}
    tests: list[Unit] = []
    teardowns: dict[str, Unit] = {}
    for jp in plans:
        for u in jp.units:
            shard = jp.plan.job.shard
            u = dataclasses.replace(u, job=jp.plan.job)
            if u.role == "setup":
                setups.setdefault(u.name, u)
            elif u.role == "teardown":
                teardowns.setdefault(u.name, u)
            else:
                name = shard_name(u.name, shard) if counts[u.name] > 1 else u.name
                tests.append(dataclasses.replace(u, name=name))
    merged: list[Unit] = []
    # Setups first in the first shard's order, then every test call, then teardowns.
    for u in [*setups.values(), *tests, *teardowns.values()]:
        merged.append(dataclasses.replace(u, index=len(merged)))
    first = plans[0]
    errors = [f"shard {jp.plan.job.shard}: {jp.plan.error}" for jp in plans if jp.plan.error]
    plan = dataclasses.replace(first.plan, error="; ".join(errors) or None)
    rules = tuple((jp.plan.job.shard, jp.rule) for jp in plans)
    return JobPlan(plan, tuple(merged), first.rule, first.job_env, rules), plans


@dataclass(frozen=True)
class Balance:
    """Which shard each test unit goes to, and each shard's predicted seconds."""

    shards: int
    assignment: Mapping[str, int]
    predicted: tuple[float, ...]

    def units_of(self, shard: int, units: Sequence[Unit]) -> list[Unit]:
        return [u for u in units if u.role != "test" or self.assignment.get(u.name) == shard]


def balance(units: Sequence[Unit], shards: int, expected: Callable[[Unit], float]) -> Balance:
    """Longest first onto the lightest shard (ties: the lower shard number)."""
    loads = [0.0] * shards
    assignment: dict[str, int] = {}
    tests = sorted((u for u in units if u.role == "test"), key=lambda u: (-expected(u), u.index))
    for u in tests:
        k = min(range(shards), key=lambda i: (loads[i], i))
        loads[k] += expected(u)
        assignment[u.name] = k + 1
    return Balance(shards, assignment, tuple(loads))

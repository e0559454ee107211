"""Planning a job: the prelude, the matching dispatch branch, and every call it makes.

``plan_job`` walks the job with an executor that records commands instead of running
them, so a plan is exactly what the items will run, resolved against the checkout as it
is now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.loader import RouteEntry, RouteRule, Suite, SuiteData
from ..data.model import Command, Job, Plan, PlanStep, Role
from .engine import CommandResult, Engine, Executor, Frame, ScriptExit, State, SuiteFailure

__all__ = [
    "NODE_PREFIX",
    "JobPlan",
    "Unit",
    "env_delta",
    "match_route",
    "plan_job",
    "run_entry",
    "selects",
]

NODE_PREFIX = "torchci"


def selects(selector: str, nodeid: str) -> bool:
    """Whether a node id given on the command line names the item ``nodeid``: the whole
    job (``torchci``), that item, or every item of a parametrized suite (no ``[...]``)."""
    return selector == NODE_PREFIX or nodeid == selector or nodeid.startswith(selector + "[")


class Recorder:
    """An executor that records each command and reports success.

    With ``query``, commands whose output the script reads (``$(...)``) run for real
    through it, so that a plan made on a CI machine holds what that machine answers.
    """

    def __init__(self, query: Executor | None = None) -> None:
        self.commands: list[Command] = []
        self.query = query

    def __call__(self, command: Command, *, capture: bool) -> CommandResult:
        self.commands.append(command)
        if capture and self.query is not None:
            return self.query(command, capture=True)
        return CommandResult(0, "")

    def take(self) -> list[Command]:
        out, self.commands = self.commands, []
        return out


@dataclass(frozen=True)
class Unit:
    """One step of the plan with what an item needs to run it again for real."""

    index: int
    name: str
    entry: RouteEntry
    suite: Suite | None
    role: Role
    start: State
    step: PlanStep
    job: Job | None = None

    @property
    def cites(self) -> str:
        """Where test.sh says what this unit runs: its suite's citation, else the route
        entry's own place (an inline call)."""
        return self.suite.cites if self.suite is not None else self.entry.where


@dataclass(frozen=True)
class JobPlan:
    """The plan and its units; ``plan.error`` says where planning stopped early.

    A plan of several shards merged (``--torchci-all-shards``, ``--torchci-balance``)
    keeps the first shard's ``rule`` and, in ``shard_rules``, each shard's (shard number,
    rule); a plan of one shard has none."""

    plan: Plan
    units: tuple[Unit, ...]
    rule: RouteRule | None
    job_env: Mapping[str, str | None] = field(default_factory=dict)
    shard_rules: tuple[tuple[str, RouteRule | None], ...] = ()


def env_delta(
    new: Mapping[str, str | None], old: Mapping[str, str | None]
) -> dict[str, str | None]:
    """Variables whose value differs from ``old`` (``None``: unset)."""
    out: dict[str, str | None] = {k: v for k, v in new.items() if old.get(k, _ABSENT) != v}
    for k in old:
        if k not in new:
            out[k] = None
    return out


_ABSENT = object()


def match_route(engine: Engine, state: State, routes: Sequence[RouteRule]) -> RouteRule | None:
    """The first rule whose condition holds, as test.sh's if/elif chain picks it."""
    for rule in routes:
        if engine.check(state, rule.when):
            return rule
    return None


def unit_name(entry: RouteEntry, args: Sequence[str]) -> str:
    base = entry.call or entry.inline or "inline"
    return f"{base}[{'-'.join(args)}]" if args else base


def plan_job(
    data: SuiteData,
    job: Job,
    root: Path,
    *,
    base_env: Mapping[str, str] | None = None,
    query: Executor | None = None,
) -> JobPlan:
    """Plan ``job`` against the checkout at ``root``.

    ``query`` runs the commands whose output the script reads; without it they answer
    nothing, as stubs would.
    """
    planning = _Planning(data, job, root, base_env, query)
    planning.prelude()
    rule = match_route(planning.engine, planning.state, data.routes) if not planning.error else None
    if rule is None and planning.error is None:
        planning.error = "no dispatch branch matched"
    if rule is not None:
        for entry in (*(data.preamble if rule.preamble else ()), *rule.entries):
            if planning.error is not None or planning.entry(entry):
                break
    before = 1 if data.prelude else 0  # the prelude's own step
    if rule is not None and rule.phase == "prelude":
        before = len(planning.steps)  # a call test.sh makes before its dispatch chain
    steps = planning.steps
    plan = Plan(
        job,
        str(root),
        planning.job_env,
        tuple(steps[before:]),
        planning.error,
        tuple(steps[:before]),
    )
    return JobPlan(plan, tuple(planning.units), rule, planning.job_env)


class _Planning:
    """One job being planned: test.sh's state as the dispatch chain walks on, and the
    steps and units recorded so far."""

    def __init__(
        self,
        data: SuiteData,
        job: Job,
        root: Path,
        base_env: Mapping[str, str] | None,
        query: Executor | None,
    ) -> None:
        self.data = data
        self.recorder = Recorder(query)
        self.engine = Engine(data, job, root, self.recorder, base_env=base_env, planning=True)
        self.state = State()
        self.error: str | None = None
        self.job_env: dict[str, str | None] = {}
        self.units: list[Unit] = []
        self.steps: list[PlanStep] = []
        self.names: dict[str, int] = {}

    def norm(self, env: Mapping[str, str | None]) -> dict[str, str | None]:
        """Drop what equals the environment the job starts from."""
        base = self.engine.base
        return {
            k: v
            for k, v in env.items()
            if not (v is None and k not in base) and not (v is not None and base.get(k) == v)
        }

    def prelude(self) -> None:
        """test.sh's prelude: the job's environment, and a setup step of its commands."""
        entry = RouteEntry(
            where="prelude.toml", inline="prelude", role="setup", steps=self.data.prelude
        )
        try:
            run_entry(self.engine, entry, self.state, ())
        except SuiteFailure as exc:
            self.error = f"prelude: {exc.message}"
        commands = self.recorder.take()
        notes = self.engine.take_notes()
        # Only the prelude's questions are asked of the machine: what a suite reads later
        # (`git status`) depends on what ran before it, so it is read when the suite runs.
        self.recorder.query = None
        self.job_env = self.norm(self.state.env)
        if not self.data.prelude:
            return
        step = PlanStep(
            call=None,
            args=(),
            role="setup",
            nodeid=None,
            env={},
            commands=tuple(
                dataclasses.replace(c, env=env_delta(self.norm(c.env), self.job_env))
                for c in commands
            ),
            notes=notes,
        )
        self.steps.append(step)
        self.units.append(Unit(0, "prelude", entry, None, "setup", State(), step))

    def _name(self, entry: RouteEntry, args: tuple[str, ...]) -> str:
        """The unit's name; a repeated one gets ``#2``, ``#3``..."""
        name = unit_name(entry, args)
        if name in self.names:
            self.names[name] += 1
            return f"{name}#{self.names[name]}"
        self.names[name] = 1
        return name

    def entry(self, entry: RouteEntry) -> bool:
        """Plan one entry of the chosen branch; True: test.sh ends here."""
        engine, state = self.engine, self.state
        try:
            if not engine.check(state, entry.when):
                return False
            if entry.call is None and entry.inline is None:
                engine.run_steps(entry.steps, state)
                return entry.exit is not None
            start = state.snapshot()
            args = tuple(engine.argv(state, entry.args))
            prefix = {k: engine.expand(state, v) for k, v in entry.env}
        except SuiteFailure as exc:
            self.error = f"{entry.where}: {exc.message}"
            return True
        suite = self.data.suites.get(entry.call) if entry.call else None
        role: Role = entry.role or (suite.role if suite else "test")
        name = self._name(entry, args)
        stop = False
        try:
            run_entry(engine, entry, state, args)
        except ScriptExit as exc:
            stop = True
            if exc.status != 0:
                self.error = f"{name}: exit {exc.status}: {exc.message}"
        except SuiteFailure as exc:
            self.error = f"{name}: {exc.message}"
        step_env = env_delta(self.norm({**start.env, **prefix}), self.job_env)
        outer = {**self.job_env, **step_env}
        step = PlanStep(
            call=entry.call,
            args=args,
            role=role,
            nodeid=f"{NODE_PREFIX}::{name}" if role == "test" else None,
            env=step_env,
            commands=tuple(
                dataclasses.replace(c, env=env_delta(self.norm(c.env), outer))
                for c in self.recorder.take()
            ),
            notes=engine.take_notes(),
        )
        self.steps.append(step)
        self.units.append(Unit(len(self.units), name, entry, suite, role, start, step))
        return entry.exit is not None or stop  # `exit` ends test.sh, whatever called it


def run_entry(engine: Engine, entry: RouteEntry, state: State, args: Sequence[str]) -> int:
    """Run one call (or inline group) of the dispatch chain from ``state``."""
    if entry.call is not None:
        return engine.call(state, entry.call, args, entry.env)
    state.frames.append(Frame(entry.inline or "inline", ()))
    try:
        return engine.run_steps(entry.steps, state)
    finally:
        state.frames.pop()

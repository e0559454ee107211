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

__all__ = ["NODE_PREFIX", "JobPlan", "Unit", "env_delta", "match_route", "plan_job", "run_entry"]

NODE_PREFIX = "torchci"


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


@dataclass(frozen=True)
class JobPlan:
    """The plan and its units; ``plan.error`` says where planning stopped early."""

    plan: Plan
    units: tuple[Unit, ...]
    rule: RouteRule | None
    job_env: Mapping[str, str | None] = field(default_factory=dict)


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
    recorder = Recorder(query)
    engine = Engine(data, job, root, recorder, base_env=base_env, planning=True)
    state = State()
    error: str | None = None
    prelude_entry = RouteEntry(
        where="prelude.toml", inline="prelude", role="setup", steps=data.prelude
    )
    try:
        run_entry(engine, prelude_entry, state, ())
    except SuiteFailure as exc:
        error = f"prelude: {exc.message}"
    prelude_commands = recorder.take()
    prelude_notes = engine.take_notes()
    # Only the prelude's questions are asked of the machine: what a suite reads later
    # (`git status`) depends on what ran before it, so it is read when the suite runs.
    recorder.query = None
    base = engine.base

    def norm(env: Mapping[str, str | None]) -> dict[str, str | None]:
        """Drop what equals the environment the job starts from."""
        return {
            k: v
            for k, v in env.items()
            if not (v is None and k not in base) and not (v is not None and base.get(k) == v)
        }

    job_env = norm(state.env)
    units: list[Unit] = []
    steps: list[PlanStep] = []
    if data.prelude:
        prelude_step = PlanStep(
            call=None,
            args=(),
            role="setup",
            nodeid=None,
            env={},
            commands=tuple(
                dataclasses.replace(c, env=env_delta(norm(c.env), job_env))
                for c in prelude_commands
            ),
            notes=prelude_notes,
        )
        steps.append(prelude_step)
        units.append(Unit(0, "prelude", prelude_entry, None, "setup", State(), prelude_step))
    rule = match_route(engine, state, data.routes) if error is None else None
    names: dict[str, int] = {}
    if rule is None and error is None:
        error = "no dispatch branch matched"
    entries: tuple[RouteEntry, ...] = ()
    if rule is not None:
        entries = (*(data.preamble if rule.preamble else ()), *rule.entries)
    for entry in entries:
        if error is not None:
            break
        try:
            if not engine.check(state, entry.when):
                continue
            if entry.call is None and entry.inline is None:
                engine.run_steps(entry.steps, state)
                if entry.exit is not None:
                    break
                continue
            start = state.snapshot()
            args = tuple(engine.argv(state, entry.args))
            prefix = {k: engine.expand(state, v) for k, v in entry.env}
        except SuiteFailure as exc:
            error = f"{entry.where}: {exc.message}"
            break
        suite = data.suites.get(entry.call) if entry.call else None
        role: Role = entry.role or (suite.role if suite else "test")
        name = unit_name(entry, args)
        if name in names:
            names[name] += 1
            name = f"{name}#{names[name]}"
        else:
            names[name] = 1
        stop = False
        try:
            run_entry(engine, entry, state, args)
        except ScriptExit as exc:
            stop = True
            if exc.status != 0:
                error = f"{name}: exit {exc.status}: {exc.message}"
        except SuiteFailure as exc:
            error = f"{name}: {exc.message}"
        commands = recorder.take()
        notes = engine.take_notes()
        step_env = env_delta(norm({**start.env, **prefix}), job_env)
        outer = {**job_env, **step_env}
        step = PlanStep(
            call=entry.call,
            args=args,
            role=role,
            nodeid=f"{NODE_PREFIX}::{name}" if role == "test" else None,
            env=step_env,
            commands=tuple(
                dataclasses.replace(c, env=env_delta(norm(c.env), outer)) for c in commands
            ),
            notes=notes,
        )
        steps.append(step)
        units.append(Unit(len(units), name, entry, suite, role, start, step))
        if entry.exit is not None or stop:
            break  # `exit` ends test.sh, whatever called it
    before = 1 if data.prelude else 0  # the prelude's own step
    if rule is not None and rule.phase == "prelude":
        before = len(steps)  # a call test.sh makes before its dispatch chain
    plan = Plan(job, str(root), job_env, tuple(steps[before:]), error, tuple(steps[:before]))
    return JobPlan(plan, tuple(units), rule, job_env)


def run_entry(engine: Engine, entry: RouteEntry, state: State, args: Sequence[str]) -> int:
    """Run one call (or inline group) of the dispatch chain from ``state``."""
    if entry.call is not None:
        return engine.call(state, entry.call, args, entry.env)
    state.frames.append(Frame(entry.inline or "inline", ()))
    try:
        return engine.run_steps(entry.steps, state)
    finally:
        state.frames.pop()

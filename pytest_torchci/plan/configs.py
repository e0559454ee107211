"""The TEST_CONFIG names the suite data knows, where test.sh's dispatch chain sends each,
and a warning for a config that no rule names.

A config is *known* when a TEST_CONFIG trait names it: exactly (``default``) or as the
stem of a glob (``*inductor*`` names ``inductor``); ``default`` is known too, as what the
final ``else`` runs. A config is *named* when it is known or some TEST_CONFIG trait
matches it (``inductor_timm`` matches ``*inductor*``); a config that is not named runs
whatever branch the chain falls through to, which is seldom what its author meant.

Which branch a job reaches is found as the planner finds it: the prelude, then the first
rule of ``routes.toml`` whose condition holds (:func:`route_job`). Without jobs, a
config's branches are found from the conditions alone (:func:`config_branches`): each rule
whose condition can hold for that config, up to the first that always holds.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.conditions import Condition, ConditionError
from ..data.loader import RouteEntry, RouteRule, SuiteData, Trait
from ..data.model import Job
from .engine import Engine, State, SuiteFailure
from .planner import Recorder, match_route, run_entry

__all__ = [
    "Branch",
    "ConfigRoutes",
    "build_only_branches",
    "closest_configs",
    "config_branches",
    "config_routes",
    "configs_json",
    "configs_table",
    "is_named",
    "known_configs",
    "route_job",
    "short_cites",
    "unknown_config_warning",
]

CONFIG_VAR = "TEST_CONFIG"
DEFAULT_CONFIG = "default"
_GLOB_CHARS = re.compile(r"[*?\[\]\\]")


# --- names -------------------------------------------------------------------------------


def _name_of(pattern: str) -> str | None:
    """The config name a TEST_CONFIG glob stands for: itself without glob characters,
    else the literal between leading and trailing ``*`` (``*inductor*`` -> ``inductor``).
    A fragment such as ``*_baseline`` (``_baseline``) is no config's name."""
    stem = pattern.strip("*")
    if not stem or _GLOB_CHARS.search(stem):
        return None
    if stem != pattern and (stem[0] in "_-" or stem[-1] in "_-"):
        return None
    return stem


def _config_traits(data: SuiteData) -> list[Trait]:
    return [t for t in data.traits.values() if t.var == CONFIG_VAR]


def known_configs(data: SuiteData) -> list[str]:
    """Every TEST_CONFIG name the suite data knows, sorted: the exact names and glob stems
    of its TEST_CONFIG traits, and ``default`` (what the final ``else`` runs)."""
    names = {
        name
        for trait in _config_traits(data)
        if trait.kind == "glob" and (name := _name_of(trait.pattern)) is not None
    }
    if any(rule.when is None for rule in data.routes):
        names.add(DEFAULT_CONFIG)
    return sorted(names)


def closest_configs(name: str, data: SuiteData, n: int = 3) -> list[str]:
    """Up to ``n`` known configs that look like ``name`` (closest first, by difflib)."""
    if n < 1:
        return []
    return difflib.get_close_matches(name, known_configs(data), n=n, cutoff=0.6)


def is_named(data: SuiteData, config: str) -> bool:
    """Whether a rule of test.sh names ``config``: it is known, or a TEST_CONFIG trait
    matches it."""
    if config in known_configs(data):
        return True
    return any(trait.matches(config) for trait in _config_traits(data))


# --- routing a job -----------------------------------------------------------------------


def route_job(
    data: SuiteData,
    job: Job,
    root: Path | None = None,
    *,
    base_env: Mapping[str, str] | None = None,
) -> RouteRule | None:
    """The dispatch branch test.sh runs for ``job``, as :func:`~.planner.plan_job` picks
    it (the prelude, then the first rule that holds); ``None`` where the prelude fails
    or no rule matches. Nothing runs: commands are recorded and answer nothing."""
    engine = Engine(data, job, root or Path.cwd(), Recorder(), base_env=base_env, planning=True)
    state = State()
    prelude = RouteEntry(where="prelude.toml", inline="prelude", role="setup", steps=data.prelude)
    try:
        run_entry(engine, prelude, state, ())
        return match_route(engine, state, data.routes)
    except SuiteFailure:
        return None


def _quoted_list(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def unknown_config_warning(
    data: SuiteData,
    job: Job,
    *,
    root: Path | None = None,
    base_env: Mapping[str, str] | None = None,
) -> str | None:
    """One line for a job whose TEST_CONFIG no rule of test.sh names, else ``None``.

    The line says which branch the job reaches anyway (as test.sh does) and the known
    configs that look like it. Nothing about the job changes. ``root`` (default: the
    current folder) and ``base_env`` are what the job is planned with; they matter only
    where the prelude or a rule reads the checkout or the environment.
    """
    config = job.test_config
    if is_named(data, config):
        return None
    rule = route_job(data, job, root, base_env=base_env)
    if rule is None:
        reaches = "it reaches no dispatch branch"
    else:
        reaches = f"it reaches dispatch branch {rule.branch} ({rule.cites})"
    text = f"TEST_CONFIG {config!r} is not a config any rule of test.sh names: {reaches}"
    text += ", as test.sh does"
    close = closest_configs(config, data)
    if close:
        text += f"; did you mean {_quoted_list(close)}?"
    return text


# --- branches a config reaches -----------------------------------------------------------


class _Need(Exception):
    """The probe met an atom it has no value for yet."""

    def __init__(self, key: tuple[str, str], choices: tuple[object, ...]) -> None:
        super().__init__(key)
        self.key = key
        self.choices = choices


# What a variable of a rule's condition may hold: unset, or a small shard number.
_WORD_CHOICES: tuple[object, ...] = ("", "1", "2", "3")


class _Probe:
    """A resolver that knows TEST_CONFIG and asks for everything else."""

    def __init__(
        self, data: SuiteData, config: str, given: Mapping[tuple[str, str], object]
    ) -> None:
        self.data = data
        self.config = config
        self.given = given

    def trait(self, name: str) -> bool:
        trait = self.data.traits[name]
        if trait.var == CONFIG_VAR:
            return trait.matches(self.config)
        key = ("trait", name)
        if key not in self.given:
            raise _Need(key, (False, True))
        return bool(self.given[key])

    def expand(self, word: str) -> str:
        if "$" not in word and "@" not in word:
            return word
        key = ("word", word)
        if key not in self.given:
            raise _Need(key, _WORD_CHOICES)
        return str(self.given[key])


def _outcomes(data: SuiteData, when: Condition | None, config: str) -> set[bool]:
    """Every value ``when`` can take for a job of ``config``, over its builds, shards and
    variables."""
    if when is None:
        return {True}
    found: set[bool] = set()
    todo: list[dict[tuple[str, str], object]] = [{}]
    while todo and len(found) < 2:
        given = todo.pop()
        try:
            found.add(when.evaluate(_Probe(data, config, given)))
        except _Need as need:
            todo.extend({**given, need.key: choice} for choice in need.choices)
        except ConditionError:
            return {False, True}
    return found


def _build_only(data: SuiteData, rule: RouteRule) -> bool:
    """Whether the rule tests the build and not the config (``libtorch``)."""
    if rule.when is None:
        return False
    vars_ = {data.traits[name].var for name in rule.when.traits()}
    return CONFIG_VAR not in vars_ and bool(vars_)


@dataclass(frozen=True)
class Branch:
    """A dispatch branch a config reaches: on ``builds`` (from CI's jobs), or, found
    from the conditions alone, ``build_only`` when only some builds reach it whatever
    their config (``BUILD_ENVIRONMENT == *libtorch*``)."""

    rule: RouteRule
    builds: tuple[str, ...] = ()
    build_only: bool = False


@dataclass(frozen=True)
class ConfigRoutes:
    """One config: whether the suite data knows it (or a trait names it), the branches
    it reaches, and the builds CI runs it on (empty without CI's jobs)."""

    name: str
    known: bool
    named: bool
    branches: tuple[Branch, ...]
    builds: tuple[str, ...] = ()


def config_branches(data: SuiteData, config: str) -> list[Branch]:
    """The branches a job of ``config`` can reach, from the conditions alone: every rule
    that can hold for it, in order, up to the first that always holds."""
    out: list[Branch] = []
    for rule in data.routes:
        outcomes = _outcomes(data, rule.when, config)
        if True in outcomes:
            out.append(Branch(rule, build_only=_build_only(data, rule)))
        if outcomes == {True}:
            break
    return out


def config_routes(
    data: SuiteData,
    jobs: Iterable[Job] | None = None,
    *,
    root: Path | None = None,
) -> list[ConfigRoutes]:
    """Every known config, and every config of ``jobs``, with its branches. A config CI
    runs (in ``jobs``) has the branches its jobs reach, each with its builds; the others
    have the branches found from the conditions."""
    by_config: dict[str, dict[int, tuple[RouteRule, set[str]]]] = {}
    builds: dict[str, set[str]] = {}
    for job in jobs or ():
        builds.setdefault(job.test_config, set()).add(job.build_environment)
        rule = route_job(data, job, root)
        reached = by_config.setdefault(job.test_config, {})
        if rule is not None:
            reached.setdefault(rule.branch, (rule, set()))[1].add(job.build_environment)
    known = known_configs(data)
    out = []
    for name in sorted({*known, *builds}):
        branches: tuple[Branch, ...]
        if name in by_config:
            branches = tuple(
                Branch(rule, tuple(sorted(on))) for _, (rule, on) in sorted(by_config[name].items())
            )
        else:
            branches = tuple(config_branches(data, name))
        out.append(
            ConfigRoutes(
                name,
                known=name in known,
                named=is_named(data, name),
                branches=branches,
                builds=tuple(sorted(builds.get(name, ()))),
            )
        )
    return out


# --- output ------------------------------------------------------------------------------

_CITES_PREFIX = re.compile(r"^test\.sh(?: dispatch|, before the dispatch chain)?:\s*")


def short_cites(cites: str, width: int = 60) -> str:
    """A rule's ``cites`` without the ``test.sh dispatch:`` prefix, cut to ``width``."""
    text = _CITES_PREFIX.sub("", " ".join(cites.split()))
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _builds_cell(builds: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(builds[:most])
    return shown + (f" (+{len(builds) - most} more)" if len(builds) > most else "")


def configs_table(rows: Sequence[ConfigRoutes], *, with_builds: bool) -> str:
    """An aligned table: one line per config and branch; branches only some builds reach
    whatever the config are left out (see :func:`build_only_branches`)."""
    header = ["CONFIG", "BRANCH", "RULE"] + (["BUILDS"] if with_builds else [])
    lines: list[list[str]] = []
    for row in rows:
        name = row.name if row.named else f"{row.name} (not named by test.sh)"
        shown: list[Branch | None] = [b for b in row.branches if not b.build_only] or [None]
        for i, branch in enumerate(shown):
            cells = [name if i == 0 else ""]
            if branch is None:
                cells += ["-", "no dispatch branch"]
            else:
                cells += [str(branch.rule.branch), short_cites(branch.rule.cites)]
            if with_builds:
                cells.append(_builds_cell(branch.builds) if branch is not None else "")
            lines.append(cells)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    text = []
    for cells in [header, *lines]:
        text.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(text) + "\n"


def build_only_branches(rows: Sequence[ConfigRoutes]) -> list[RouteRule]:
    """The branches left out of the table: reached on some builds whatever the config."""
    seen: dict[int, RouteRule] = {}
    for row in rows:
        for b in row.branches:
            if b.build_only:
                seen.setdefault(b.rule.branch, b.rule)
    return [seen[k] for k in sorted(seen)]


def configs_json(rows: Sequence[ConfigRoutes], *, builds_from: str | None) -> dict[str, Any]:
    """The JSON form: ``builds_from`` (where the builds were read, or null) and, per
    config, its branches (number, cites, builds, build_only) and builds."""
    return {
        "builds_from": builds_from,
        "configs": [
            {
                "name": row.name,
                "known": row.known,
                "named": row.named,
                "branches": [
                    {
                        "branch": b.rule.branch,
                        "cites": b.rule.cites,
                        "builds": list(b.builds),
                        "build_only": b.build_only,
                    }
                    for b in row.branches
                ],
                "builds": list(row.builds),
            }
            for row in rows
        ],
    }

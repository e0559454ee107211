"""Loading the suite data: traits, the prelude, the routing table and the suites.

The data lives in TOML files (the project's top-level ``suites/`` folder, installed as
``pytest_torchci.suites``). Every file is validated on load: an unknown field, a value of
the wrong type or an unknown trait is a :class:`SuiteDataError` naming the file, the line
and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

from .bash import glob_match
from .conditions import Condition, ConditionError, parse_condition
from .model import Job, Role
from .steps import Call, Step, StepError, parse_step
from .toml import tomllib

__all__ = [
    "RouteEntry",
    "RouteRule",
    "Step",
    "Suite",
    "SuiteData",
    "SuiteDataError",
    "Trait",
    "default_suites_dir",
    "job_traits",
    "load_suites",
]

ROLES: tuple[Role, ...] = ("setup", "test", "teardown")


class SuiteDataError(ValueError):
    """Suite data that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Trait:
    """One condition test.sh tests: a bash glob (or a regex) on one variable."""

    name: str
    var: str
    pattern: str
    kind: str = "glob"
    help: str = ""

    def matches(self, value: str) -> bool:
        """Whether ``value`` (of ``var``) has this trait: ``[[ value == pattern ]]``, or
        ``[[ value =~ pattern ]]`` for a regex trait."""
        if self.kind == "regex":
            return re.search(self.pattern, value) is not None
        return glob_match(value, self.pattern)


@dataclass(frozen=True)
class Suite:
    """A test.sh function, ported: its role, markers and body."""

    name: str
    role: Role
    family: str
    markers: tuple[str, ...]
    params: tuple[str, ...]
    cites: str
    steps: tuple[Step, ...]
    where: str
    help: str = ""
    duration: float | None = None
    devices: int | None = None
    share: bool = False
    hardware: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True)
class RouteEntry:
    """One call a dispatch branch makes, one inline command group, or a variable change."""

    where: str
    call: str | None = None
    inline: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    when: Condition | None = None
    role: Role | None = None
    markers: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    exit: int | None = None


@dataclass(frozen=True)
class RouteRule:
    """One branch of test.sh's dispatch chain; the first rule that matches wins."""

    branch: int
    cites: str
    when: Condition | None
    entries: tuple[RouteEntry, ...]
    where: str
    phase: str = "dispatch"  # "prelude": calls test.sh makes before the dispatch chain

    @property
    def preamble(self) -> bool:
        """Whether the routes' preamble runs before its calls (dispatch rules only)."""
        return self.phase == "dispatch"


@dataclass(frozen=True)
class SuiteData:
    """All of the suite data, validated."""

    traits: Mapping[str, Trait]
    suites: Mapping[str, Suite]
    routes: tuple[RouteRule, ...]
    prelude: tuple[Step, ...]
    preamble: tuple[RouteEntry, ...] = ()
    families: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


def default_suites_dir() -> Path:
    """The suite data installed with the package (or, in a source tree that is not
    installed, its top-level ``suites/`` folder)."""
    try:
        return Path(str(resources.files("pytest_torchci.suites")))
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parents[2] / "suites"  # beside pytest_torchci/


# --- locating errors ---------------------------------------------------------------------


class _Source:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, table: str | None, fieldname: str | None = None) -> int | None:
        start = 0
        if table is not None:
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
            for i, line in enumerate(self.lines):
                if header.match(line):
                    start = i
                    break
            else:
                return None
        if fieldname is None:
            return start + 1
        key = re.compile(rf"(^|[\s{{,]){re.escape(fieldname)}\s*=")
        for i in range(start, len(self.lines)):
            if key.search(self.lines[i]):
                return i + 1
        return start + 1

    def error(self, table: str | None, fieldname: str | None, message: str) -> SuiteDataError:
        line = self.line_of(table, fieldname)
        where = f"{self.path.name}" + (f", line {line}" if line else "")
        what = f"[{table}]" if table else ""
        if fieldname:
            what += f".{fieldname}" if what else fieldname
        return SuiteDataError(f"{where}: {what}: {message}" if what else f"{where}: {message}")


# --- field helpers --------------------------------------------------------------------------


def _str(src: _Source, table: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise src.error(table, key, f"must be a string, not {type(value).__name__}")
    return value


def _strs(src: _Source, table: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise src.error(table, key, "must be a list of strings")
    return tuple(cast(list[str], value))


def _mapping(src: _Source, table: str, key: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise src.error(table, key, "must be a table of strings")
    return tuple((str(k), v) for k, v in value.items())


class _Loader:
    def __init__(self, traits: Mapping[str, Trait]) -> None:
        self.traits = traits

    def condition(self, src: _Source, table: str, key: str, value: object) -> Condition:
        text = _str(src, table, key, value)
        try:
            cond = parse_condition(text)
        except ConditionError as exc:
            raise src.error(table, key, str(exc)) from None
        unknown = sorted(cond.traits() - set(self.traits))
        if unknown:
            raise src.error(table, key, f"unknown trait {unknown[0]!r} in {text!r}")
        return cond

    def steps(self, src: _Source, table: str, key: str, value: object) -> tuple[Step, ...]:
        return _StepReader(self, src, table).nested(key, value)

    def step(self, src: _Source, table: str, where: str, raw: object) -> Step:
        return _StepReader(self, src, table).step(where, raw)


@dataclass(frozen=True)
class _StepReader:
    """The loader as the step parsers see it (:class:`.steps.StepContext`): the steps of
    one table of one file, their errors pointing at its lines."""

    loader: _Loader
    src: _Source
    table: str

    def condition(self, key: str, value: object) -> Condition:
        return self.loader.condition(self.src, self.table, key, value)

    def nested(self, where: str, value: object) -> tuple[Step, ...]:
        if not isinstance(value, list):
            raise self.src.error(self.table, where, "must be a list of steps")
        return tuple(self.step(f"{where}[{i}]", raw) for i, raw in enumerate(value))

    def step(self, where: str, raw: object) -> Step:
        try:
            return parse_step(self, raw, where, f"[{self.table}].{where}")
        except StepError as exc:
            raise self.src.error(self.table, exc.field, exc.message) from None


def _read(path: Path) -> tuple[_Source, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteDataError(f"{path}: cannot read: {exc.strerror}") from None
    src = _Source(path, text)
    try:
        return src, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteDataError(f"{path.name}: not valid TOML: {exc}") from None


_SUITE_FIELDS = frozenset(
    {
        "role", "family", "markers", "params", "cites", "steps", "help", "duration",
        "devices", "share", "hardware", "timeout",
    }
)  # fmt: skip
_ENTRY_FIELDS = frozenset(
    {"call", "inline", "args", "env", "when", "role", "markers", "steps", "exit", "set", "export"}
)


def load_suites(directory: Path | None = None) -> SuiteData:
    """Load and validate every TOML file of a suites folder."""
    directory = directory or default_suites_dir()
    if not directory.is_dir():
        raise SuiteDataError(f"{directory}: the suites folder does not exist")
    files = sorted(directory.glob("*.toml"))
    names = {p.name for p in files}
    for required in ("traits.toml", "routes.toml"):
        if required not in names:
            raise SuiteDataError(f"{directory}: {required} is missing")
    traits, families = _load_traits(directory / "traits.toml")
    loader = _Loader(traits)
    suites: dict[str, Suite] = {}
    routes: tuple[RouteRule, ...] = ()
    preamble: tuple[RouteEntry, ...] = ()
    prelude: tuple[Step, ...] = ()
    for path in files:
        if path.name == "traits.toml":
            continue
        src, doc = _read(path)
        if path.name == "routes.toml":
            routes, preamble = _load_routes(loader, src, doc)
            continue
        if path.name == "prelude.toml":
            extra = sorted(set(doc) - {"prelude"})
            if extra:
                raise src.error(extra[0], None, "unknown table (expected [prelude])")
            pre = _table(src, "prelude", doc.get("prelude", {}))
            prelude = loader.steps(src, "prelude", "steps", pre.get("steps", []))
            continue
        for name, raw in doc.items():
            if not isinstance(raw, dict):
                raise src.error(None, name, "a suite must be a table")
            if name in suites:
                raise src.error(
                    name, None, f"suite {name!r} is also defined in {suites[name].where}"
                )
            suites[name] = _load_suite(loader, src, name, raw, families)
    return SuiteData(traits, suites, routes, prelude, preamble, families, str(directory))


def _load_traits(path: Path) -> tuple[dict[str, Trait], dict[str, str]]:
    """``traits.toml``: the traits, and the suite families."""
    src, doc = _read(path)
    traits: dict[str, Trait] = {}
    families: dict[str, str] = {}
    for key in doc:
        if key not in ("traits", "families"):
            raise src.error(key, None, "unknown table (expected [traits.NAME] or [families])")
    for name, raw in _table(src, "traits", doc.get("traits", {})).items():
        table = f"traits.{name}"
        if not isinstance(raw, dict):
            raise src.error(table, None, "must be a table")
        extra = sorted(set(raw) - {"var", "glob", "regex", "help"})
        if extra:
            raise src.error(table, extra[0], f"unknown field {extra[0]!r}")
        kinds = [k for k in ("glob", "regex") if k in raw]
        if len(kinds) != 1 or "var" not in raw:
            raise src.error(table, None, "needs var and exactly one of glob, regex")
        pattern = _str(src, table, kinds[0], raw[kinds[0]])
        if kinds[0] == "regex":
            try:
                re.compile(pattern)
            except re.error as exc:
                raise src.error(table, "regex", f"bad regular expression: {exc}") from None
        traits[name] = Trait(
            name, _str(src, table, "var", raw["var"]), pattern, kinds[0], str(raw.get("help", ""))
        )
    for name, text in _table(src, "families", doc.get("families", {})).items():
        families[name] = _str(src, "families", name, text)
    return traits, families


def _load_suite(
    loader: _Loader, src: _Source, name: str, raw: Mapping[str, Any], families: Mapping[str, str]
) -> Suite:
    extra = sorted(set(raw) - _SUITE_FIELDS)
    if extra:
        raise src.error(name, extra[0], f"unknown field {extra[0]!r}")
    role = raw.get("role", "test")
    if role not in ROLES:
        raise src.error(name, "role", f"must be one of {', '.join(ROLES)}, not {role!r}")
    family = _str(src, name, "family", raw.get("family", "misc"))
    if families and family not in families:
        raise src.error(name, "family", f"unknown family {family!r}")
    duration = raw.get("duration")
    if duration is not None and not isinstance(duration, (int, float)):
        raise src.error(name, "duration", "must be a number of seconds")
    if "cites" not in raw:
        raise src.error(name, None, "needs cites: the test.sh function it replaces")
    devices_raw = raw.get("devices")
    devices: int | None = None
    if devices_raw == "all":
        devices = -1
    elif isinstance(devices_raw, int) and not isinstance(devices_raw, bool) and devices_raw >= 0:
        devices = devices_raw
    elif devices_raw is not None:
        raise src.error(
            name, "devices", f'must be a count (0, 1, 2, ...) or "all", not {devices_raw!r}'
        )
    share = raw.get("share", False)
    if not isinstance(share, bool):
        raise src.error(name, "share", "must be true or false")
    hardware_raw = raw.get("hardware", [])
    if isinstance(hardware_raw, str):
        hardware_raw = [hardware_raw]
    hardware = _strs(src, name, "hardware", hardware_raw)
    timeout = raw.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise src.error(name, "timeout", "must be a number of seconds (0: none)")
    return Suite(
        name=name,
        role=cast(Role, role),
        family=family,
        markers=_strs(src, name, "markers", raw.get("markers", [])),
        params=_strs(src, name, "params", raw.get("params", [])),
        cites=_str(src, name, "cites", raw["cites"]),
        steps=loader.steps(src, name, "steps", raw.get("steps", [])),
        where=f"{src.path.name}, line {src.line_of(name)}",
        help=str(raw.get("help", "")),
        duration=float(duration) if duration is not None else None,
        devices=devices,
        share=share,
        hardware=hardware,
        timeout=float(timeout) if timeout is not None else None,
    )


def _load_routes(
    loader: _Loader, src: _Source, doc: Mapping[str, Any]
) -> tuple[tuple[RouteRule, ...], tuple[RouteEntry, ...]]:
    extra = sorted(set(doc) - {"route", "preamble"})
    if extra:
        raise src.error(extra[0], None, "unknown table (expected [[route]] or preamble)")
    raw_pre = doc.get("preamble", [])
    if not isinstance(raw_pre, list):
        raise src.error(None, "preamble", "must be a list of calls")
    preamble = tuple(_load_entry(loader, src, f"preamble[{j}]", e) for j, e in enumerate(raw_pre))
    rules: list[RouteRule] = []
    raw_rules = doc.get("route", [])
    if not isinstance(raw_rules, list):
        raise src.error(None, "route", "must be an array of tables")
    for i, raw in enumerate(raw_rules):
        table = "route"
        if not isinstance(raw, dict):
            raise src.error(None, "route", f"route #{i + 1} must be a table")
        extra = sorted(set(raw) - {"branch", "cites", "when", "calls", "phase"})
        if extra:
            raise src.error(table, extra[0], f"route #{i + 1}: unknown field {extra[0]!r}")
        if "cites" not in raw:
            raise src.error(table, None, f"route #{i + 1} needs cites")
        when = loader.condition(src, table, "when", raw["when"]) if "when" in raw else None
        calls = raw.get("calls", [])
        if not isinstance(calls, list):
            raise src.error(table, "calls", f"route #{i + 1}: must be a list of calls")
        entries = []
        for j, e in enumerate(calls):
            entries.append(_load_entry(loader, src, f"route #{i + 1} calls[{j}]", e))
        branch = raw.get("branch", i + 1)
        if not isinstance(branch, int) or isinstance(branch, bool):
            raise src.error(table, "branch", f"route #{i + 1}: must be a whole number")
        phase = _phase(src, raw.get("phase", "dispatch"))
        rules.append(
            RouteRule(
                branch=branch,
                cites=_str(src, table, "cites", raw["cites"]),
                when=when,
                entries=tuple(entries),
                where=f"routes.toml, route #{i + 1}",
                phase=phase,
            )
        )
    return tuple(rules), preamble


def _table(src: _Source, name: str, value: object) -> Mapping[str, Any]:
    """The top-level table ``name`` of a file (``[traits]``, ``[prelude]``, ...)."""
    if not isinstance(value, dict):
        raise src.error(None, name, "must be a table")
    return value


def _phase(src: _Source, value: object) -> str:
    if value not in ("dispatch", "prelude"):
        raise src.error("route", "phase", f"must be dispatch or prelude, not {value!r}")
    return str(value)


def _load_entry(loader: _Loader, src: _Source, where: str, raw: object) -> RouteEntry:
    if not isinstance(raw, dict):
        raise src.error("route", "calls", f"{where} must be a table")
    extra = sorted(set(raw) - _ENTRY_FIELDS)
    if extra:
        raise src.error("route", extra[0], f"{where}: unknown field {extra[0]!r}")
    when = loader.condition(src, "route", "when", raw["when"]) if "when" in raw else None
    role = raw.get("role")
    if role is not None and role not in ROLES:
        raise src.error("route", "role", f"{where}: role must be one of {', '.join(ROLES)}")
    steps: tuple[Step, ...] = ()
    if "steps" in raw:
        steps = loader.steps(src, "route", "steps", raw["steps"])
    for verb in ("set", "export"):
        if verb in raw:
            steps += (loader.step(src, "route", f"{where}.{verb}", {verb: raw[verb]}),)
    kinds = [k for k in ("call", "inline") if k in raw]
    if len(kinds) > 1:
        raise src.error("route", "call", f"{where}: call and inline exclude each other")
    exit_status = raw.get("exit")
    if exit_status is not None and not isinstance(exit_status, int):
        raise src.error("route", "exit", f"{where}: exit takes a status")
    return RouteEntry(
        where=where,
        call=_str(src, "route", "call", raw["call"]) if "call" in raw else None,
        inline=_str(src, "route", "inline", raw["inline"]) if "inline" in raw else None,
        args=_strs(src, "route", "args", raw.get("args", [])),
        env=_mapping(src, "route", "env", raw["env"]) if "env" in raw else (),
        when=when,
        role=cast("Role | None", role),
        markers=_strs(src, "route", "markers", raw.get("markers", [])),
        steps=steps,
        exit=exit_status,
    )


def job_traits(data: SuiteData, job: Job) -> list[str]:
    """The names of the traits a job has, from its own variables."""
    variables = job.variables()
    return [t.name for t in data.traits.values() if t.matches(variables.get(t.var, ""))]


def check_references(data: SuiteData) -> list[str]:
    """Calls to suites that are not defined, as messages (empty when all resolve)."""
    problems: list[str] = []

    def walk(steps: Sequence[Step], where: str) -> None:
        for s in steps:
            if isinstance(s, Call) and s.function not in data.suites:
                problems.append(f"{s.where}: calls undefined suite {s.function!r}")
            for body in s.bodies():
                walk(body, where)

    for suite in data.suites.values():
        walk(suite.steps, suite.where)
    for rule in data.routes:
        for e in (*data.preamble, *rule.entries):
            if e.call is not None and e.call not in data.suites:
                problems.append(f"{e.where}: calls undefined suite {e.call!r}")
            walk(e.steps, e.where)
    return problems

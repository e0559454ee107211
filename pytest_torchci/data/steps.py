"""The statements of a suite's body: one frozen type per verb, and the parser of each.

A step is an inline table of the suite data with exactly one verb (``run``, ``call``,
``cd``, ...), the options that verb takes, and an optional ``when`` condition. Each verb
has its own type here (:class:`Run`, :class:`Call`, ...) and its own small parser;
:data:`VERBS` maps the verb to its parser and options, in the order error messages list
them. The engine (``plan/engine.py``) has one handler per type.

A parser reads its table through :class:`StepTable`; what it finds wrong is a
:class:`StepError` naming the field, which the loader turns into a
:class:`~pytest_torchci.data.loader.SuiteDataError` with the file and the line. What a
parser needs of the loader (conditions, which need the traits; nested steps) comes
through :class:`StepContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypedDict, cast

from .conditions import Condition

__all__ = [
    "VERBS",
    "Append",
    "Assign",
    "Branch",
    "Call",
    "Cd",
    "Choose",
    "Export",
    "Fail",
    "For",
    "Local",
    "Native",
    "Popd",
    "Pushd",
    "Return",
    "Run",
    "Set",
    "Shift",
    "Step",
    "StepContext",
    "StepError",
    "StepTable",
    "Unexport",
    "Unset",
    "Value",
    "Verb",
    "parse_step",
]

Value = str | tuple[str, ...]  # a variable's value: a string, or a bash array


# --- the step types ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Step:
    """What every step has: where it is written (``[suite].steps[2]``), and ``when``."""

    verb: ClassVar[str] = ""
    where: str
    when: Condition | None = None

    def bodies(self) -> tuple[tuple[Step, ...], ...]:
        """The step lists nested in this one (a branch's steps, a loop's body)."""
        return ()


@dataclass(frozen=True, kw_only=True)
class Run(Step):
    """``run``: one command line (``cmd > stdout``, ``VAR=$(cmd)``, ``cmd || VAR=$?``)."""

    verb: ClassVar[str] = "run"
    argv: tuple[str, ...]
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    allow_fail: bool = False
    status_to: str | None = None
    capture: str | None = None
    retry: tuple[float, ...] = ()
    stdin: str | None = None
    stdout: str | None = None
    expect_fail: bool = False
    merge_stderr: bool = False


@dataclass(frozen=True, kw_only=True)
class Call(Step):
    """``call``: a suite called as bash calls a function; with ``capture``,
    ``VAR=$(function args)``: what the function writes to stdout becomes VAR."""

    verb: ClassVar[str] = "call"
    function: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    allow_fail: bool = False
    status_to: str | None = None
    retry: tuple[float, ...] = ()
    capture: str | None = None


@dataclass(frozen=True, kw_only=True)
class Assign(Step):
    """Variables assigned; :class:`Export`, :class:`Set` and :class:`Local` say how."""

    values: tuple[tuple[str, Value], ...]


@dataclass(frozen=True, kw_only=True)
class Export(Assign):
    """``export NAME=value``."""

    verb: ClassVar[str] = "export"


@dataclass(frozen=True, kw_only=True)
class Set(Assign):
    """``NAME=value``: stays exported if it was."""

    verb: ClassVar[str] = "set"


@dataclass(frozen=True, kw_only=True)
class Local(Assign):
    """``local NAME=value``: until the suite returns."""

    verb: ClassVar[str] = "local"


@dataclass(frozen=True, kw_only=True)
class Append(Step):
    """``NAME+=(words)``."""

    verb: ClassVar[str] = "append"
    values: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, kw_only=True)
class Unset(Step):
    """``unset NAME``."""

    verb: ClassVar[str] = "unset"
    names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Unexport(Step):
    """``export -n NAME``."""

    verb: ClassVar[str] = "unexport"
    names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Cd(Step):
    """``cd FOLDER``."""

    verb: ClassVar[str] = "cd"
    folder: str


@dataclass(frozen=True, kw_only=True)
class Pushd(Step):
    """``pushd FOLDER``."""

    verb: ClassVar[str] = "pushd"
    folder: str


@dataclass(frozen=True, kw_only=True)
class Popd(Step):
    """``popd``."""

    verb: ClassVar[str] = "popd"


@dataclass(frozen=True, kw_only=True)
class Native(Step):
    """``native``: a native function called for its effect or its value (``capture``);
    uncaptured, its value is what it writes to stdout."""

    verb: ClassVar[str] = "native"
    function: str
    args: tuple[str, ...] = ()
    capture: str | None = None


@dataclass(frozen=True, kw_only=True)
class Fail(Step):
    """``echo MESSAGE; exit STATUS``: ``status`` is a number, or a word to expand."""

    verb: ClassVar[str] = "fail"
    message: str
    status: int | str = 1


@dataclass(frozen=True, kw_only=True)
class Return(Step):
    """``return STATUS`` (a word to expand)."""

    verb: ClassVar[str] = "return"
    status: str


@dataclass(frozen=True)
class Branch:
    """One branch of a :class:`Choose`: its condition (none: ``else``) and its steps."""

    when: Condition | None
    steps: tuple[Step, ...]


@dataclass(frozen=True, kw_only=True)
class Choose(Step):
    """``if / elif / else``: the first branch whose condition holds."""

    verb: ClassVar[str] = "choose"
    branches: tuple[Branch, ...]

    def bodies(self) -> tuple[tuple[Step, ...], ...]:
        return tuple(b.steps for b in self.branches)


@dataclass(frozen=True, kw_only=True)
class For(Step):
    """``for VAR in ITEMS; do BODY; done``."""

    verb: ClassVar[str] = "for"
    var: str
    items: tuple[str, ...] = ()
    body: tuple[Step, ...] = ()

    def bodies(self) -> tuple[tuple[Step, ...], ...]:
        return (self.body,)


@dataclass(frozen=True, kw_only=True)
class Shift(Step):
    """``shift N``: drop the first N arguments of the suite."""

    verb: ClassVar[str] = "shift"
    count: int = 1


# --- reading a step's table --------------------------------------------------------------


class StepError(ValueError):
    """A step that cannot be used: ``field`` is where the loader points (file and line)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class StepContext(Protocol):
    """What a parser needs of the loader."""

    def condition(self, key: str, value: object) -> Condition:
        """A ``when`` condition, checked against the known traits."""
        ...

    def nested(self, where: str, value: object) -> tuple[Step, ...]:
        """A list of steps nested in this one, ``where`` naming it."""
        ...


_ABSENT = object()


@dataclass(frozen=True)
class StepTable:
    """One step's inline table, as its verb's parser reads it."""

    raw: Mapping[str, object]
    verb: str
    where: str  # in messages: steps[2].choose[0].steps[1]
    label: str  # the step's ``where``: [suite].steps[2]...
    when: Condition | None
    context: StepContext

    def error(self, field: str, message: str) -> StepError:
        return StepError(field, f"{self.where}: {message}")

    def value(self) -> object:
        """The verb's own value."""
        return self.raw[self.verb]

    def text(self, key: str, value: object = _ABSENT) -> str:
        value = self.raw[key] if value is _ABSENT else value
        if not isinstance(value, str):
            raise self.error(key, f"{key} must be a string, not {type(value).__name__}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.raw else None

    def words(self, key: str, value: object = _ABSENT) -> tuple[str, ...]:
        value = self.raw.get(key, []) if value is _ABSENT else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"{key} must be a list of strings")
        return tuple(cast(list[str], value))

    def env(self) -> tuple[tuple[str, str], ...]:
        value = self.raw.get("env", {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.error("env", "env must be a table of strings")
        return tuple((str(k), v) for k, v in value.items())

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            raise self.error(key, f"{key} is true or false")
        return value

    def retry(self) -> tuple[float, ...]:
        value = self.raw.get("retry", [])
        if not isinstance(value, list) or not all(isinstance(x, (int, float)) for x in value):
            raise self.error("retry", "retry is a list of pauses in seconds")
        return tuple(float(x) for x in value)


# --- one parser per verb ----------------------------------------------------------------


def _parse_run(t: StepTable) -> Run:
    argv = t.words("run", t.value())
    if not argv:
        raise t.error("run", "empty command line")
    return Run(
        where=t.label,
        when=t.when,
        argv=argv,
        cwd=t.optional_text("cwd"),
        capture=t.optional_text("capture"),
        stdin=t.optional_text("stdin"),
        stdout=t.optional_text("stdout"),
        expect_fail=t.flag("expect_fail"),
        merge_stderr=t.flag("merge_stderr"),
        **_failure_options(t),
    )


class _FailureOptions(TypedDict):
    env: tuple[tuple[str, str], ...]
    allow_fail: bool
    status_to: str | None
    retry: tuple[float, ...]


def _failure_options(t: StepTable) -> _FailureOptions:
    """What ``run`` and ``call`` share: prefix variables, and what a failure does."""
    return {
        "env": t.env(),
        "allow_fail": bool(t.raw.get("allow_fail", False)),
        "status_to": t.optional_text("status_to"),
        "retry": t.retry(),
    }


def _parse_call(t: StepTable) -> Call:
    return Call(
        where=t.label,
        when=t.when,
        function=t.text("call"),
        args=t.words("args"),
        capture=t.optional_text("capture"),
        **_failure_options(t),
    )


_ASSIGNMENTS: Mapping[str, type[Assign]] = {c.verb: c for c in (Export, Set, Local)}


def _parse_assign(t: StepTable) -> Assign:
    table = t.value()
    if not isinstance(table, dict):
        raise t.error(t.verb, f"{t.verb} must be a table of variables")
    values: list[tuple[str, Value]] = []
    for name, v in table.items():
        values.append((name, t.words(t.verb, v) if isinstance(v, list) else t.text(t.verb, v)))
    return _ASSIGNMENTS[t.verb](where=t.label, when=t.when, values=tuple(values))


def _parse_append(t: StepTable) -> Append:
    table = t.value()
    if not isinstance(table, dict):
        raise t.error("append", "append must be a table of lists")
    values = tuple((n, t.words("append", v)) for n, v in table.items())
    return Append(where=t.label, when=t.when, values=values)


def _parse_unset(t: StepTable) -> Unset | Unexport:
    names = t.words(t.verb, t.value())
    kind = Unset if t.verb == "unset" else Unexport
    return kind(where=t.label, when=t.when, names=names)


def _parse_folder(t: StepTable) -> Cd | Pushd:
    kind = Cd if t.verb == "cd" else Pushd
    return kind(where=t.label, when=t.when, folder=t.text(t.verb))


def _parse_popd(t: StepTable) -> Popd:
    if t.value() is not True:
        raise t.error("popd", "popd must be true")
    return Popd(where=t.label, when=t.when)


def _parse_native(t: StepTable) -> Native:
    return Native(
        where=t.label,
        when=t.when,
        function=t.text("native"),
        args=t.words("args"),
        capture=t.optional_text("capture"),
    )


def _parse_fail(t: StepTable) -> Fail:
    status = t.raw.get("status", 1)
    if not isinstance(status, (int, str)):
        raise t.error("status", "status is an integer or a word")
    return Fail(where=t.label, when=t.when, message=t.text("fail"), status=status)


def _parse_return(t: StepTable) -> Return:
    status = t.value()
    if not isinstance(status, (int, str)):
        raise t.error("return", "return takes a status")
    return Return(where=t.label, when=t.when, status=str(status))


def _parse_choose(t: StepTable) -> Choose:
    raw = t.value()
    if not isinstance(raw, list) or not raw:
        raise t.error("choose", "choose takes a list of branches")
    branches = []
    for i, branch in enumerate(raw):
        if not isinstance(branch, dict) or "steps" not in branch or set(branch) - {"when", "steps"}:
            raise t.error("choose", f"choose[{i}] needs steps (and when)")
        when = t.context.condition("when", branch["when"]) if "when" in branch else None
        steps = t.context.nested(f"{t.where}.choose[{i}].steps", branch["steps"])
        branches.append(Branch(when, steps))
    return Choose(where=t.label, when=t.when, branches=tuple(branches))


def _parse_for(t: StepTable) -> For:
    return For(
        where=t.label,
        when=t.when,
        var=t.text("for"),
        items=t.words("in"),
        body=t.context.nested(f"{t.where}.do", t.raw.get("do", [])),
    )


def _parse_shift(t: StepTable) -> Shift:
    count = t.value()
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise t.error("shift", "shift takes a count (0, 1, 2, ...)")
    return Shift(where=t.label, when=t.when, count=count)


# --- the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verb:
    """A verb's parser, and the options its table may hold beside the verb and ``when``."""

    parse: Callable[[StepTable], Step]
    options: frozenset[str] = frozenset()


_FAILURE = ("env", "allow_fail", "status_to", "retry")

# The verbs, in the order messages list them. (`merge_stderr` is a field of Run that the
# data does not set yet: it is not among run's options.)
VERBS: Mapping[str, Verb] = {
    "run": Verb(
        _parse_run,
        frozenset({"cwd", "capture", "stdin", "stdout", "expect_fail", *_FAILURE}),
    ),
    "call": Verb(_parse_call, frozenset({"args", "capture", *_FAILURE})),
    "export": Verb(_parse_assign),
    "set": Verb(_parse_assign),
    "local": Verb(_parse_assign),
    "unset": Verb(_parse_unset),
    "unexport": Verb(_parse_unset),
    "append": Verb(_parse_append),
    "cd": Verb(_parse_folder),
    "pushd": Verb(_parse_folder),
    "popd": Verb(_parse_popd),
    "native": Verb(_parse_native, frozenset({"args", "capture"})),
    "fail": Verb(_parse_fail, frozenset({"status"})),
    "return": Verb(_parse_return),
    "choose": Verb(_parse_choose),
    "for": Verb(_parse_for, frozenset({"in", "do"})),
    "shift": Verb(_parse_shift),
}


def parse_step(context: StepContext, raw: object, where: str, label: str) -> Step:
    """The step of one inline table: ``where`` names it in messages (``steps[2]``),
    ``label`` is its :attr:`Step.where` (``[suite].steps[2]``)."""
    listed = where.split("[")[0]  # the list the step is in: where the loader points
    if not isinstance(raw, dict):
        raise StepError(listed, f"{where} must be a table")
    verbs = [v for v in VERBS if v in raw]
    if len(verbs) != 1:
        if not verbs and set(raw) <= {"when"}:
            raise StepError(listed, f"{where} has no action")
        raise StepError(
            listed,
            f"{where} must hold exactly one of {', '.join(VERBS)}; it holds {verbs or sorted(raw)}",
        )
    verb = verbs[0]
    extra = sorted(set(raw) - VERBS[verb].options - {verb, "when"})
    if extra:
        raise StepError(extra[0], f"{where}: unknown field {extra[0]!r} for a {verb!r} step")
    when = context.condition("when", raw["when"]) if "when" in raw else None
    return VERBS[verb].parse(StepTable(raw, verb, where, label, when, context))

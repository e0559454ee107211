"""The engine: walks a suite's steps the way bash walks the function they port.

One engine serves planning and running. It hands each command line to an executor: the
planner's executor records the command and reports success; the item's executor runs it
and reports its real exit status and output. Either way the engine keeps test.sh's state
as bash would: exported and unexported variables (exports outlive the function that made
them), ``local`` variables, the current folder, ``set -e``.

Each step type of the data (:mod:`..data.steps`) has one handler here, an ``Engine``
method registered with ``@_handles(Type)``; :meth:`Engine.run_step` looks it up by type.
"""

from __future__ import annotations

import ast
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..data.bash import split_fields, split_words
from ..data.conditions import Condition, ConditionError
from ..data.loader import Suite, SuiteData
from ..data.model import Command, Job
from ..data.steps import (
    Append,
    Assign,
    Call,
    Cd,
    Choose,
    Export,
    Fail,
    For,
    Local,
    Native,
    Popd,
    Pushd,
    Return,
    Run,
    Set,
    Shift,
    Step,
    Unexport,
    Unset,
    Value,
)
from .natives import NATIVES, NativeContext, NativeError, call_native
from .status import describe_status

__all__ = [
    "CommandResult",
    "Engine",
    "Executor",
    "NotPorted",
    "ScriptExit",
    "State",
    "SuiteFailure",
]


@dataclass(frozen=True)
class CommandResult:
    """What became of one command: its exit status (negative: killed by that signal)."""

    returncode: int
    output: str = ""
    timed_out: bool = False


class Executor(Protocol):
    """Runs (or records) one command."""

    def __call__(self, command: Command, *, capture: bool) -> CommandResult: ...


class SuiteFailure(Exception):
    """A suite stopped: a command failed under ``set -e``, or it failed on purpose."""

    def __init__(
        self,
        message: str,
        status: int = 1,
        command: Command | None = None,
        result: CommandResult | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.command = command
        self.result = result
        self.timeout: float | None = None


class ScriptExit(SuiteFailure):
    """``exit N``: test.sh ends there, whatever called it."""


class NotPorted(SuiteFailure):
    """A call to a test.sh function that has no suite yet."""


class _Return(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class Frame:
    name: str
    args: tuple[str, ...]
    locals: dict[str, Value] = field(default_factory=dict)


@dataclass
class State:
    """test.sh's shell state at one point of the job."""

    env: dict[str, str | None] = field(default_factory=dict)
    globals: dict[str, Value] = field(default_factory=dict)
    cwd: str = "."
    dirstack: list[str] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    errexit: bool = True
    made: set[str] = field(default_factory=set)  # folders the job's commands made (planning)
    out: list[str] | None = None  # inside `$(...)`: what the commands write to stdout

    def print(self, text: str) -> None:
        """Write to stdout: inside ``$(...)``, to the substitution's value."""
        if self.out is not None:
            self.out.append(text)

    def snapshot(self) -> State:
        """A copy that later changes to this state leave alone (values are immutable:
        strings and tuples, so copying the containers is enough). Its stdout is the
        terminal's, whatever this state's is."""
        return State(
            env=dict(self.env),
            globals=dict(self.globals),
            cwd=self.cwd,
            dirstack=list(self.dirstack),
            frames=[Frame(f.name, f.args, dict(f.locals)) for f in self.frames],
            errexit=self.errexit,
            made=set(self.made),
        )


_SUB = re.compile(
    r"\$\$|\$\(\((?P<arith>[^()]*)\)\)|\$\{(?P<braced>[^}]*)\}"
    r"|\$(?P<name>[A-Za-z_]\w*|[0-9#])|@(?P<fn>[A-Za-z_]\w*)\((?P<fnargs>[^()]*)\)"
)
_WHOLE_FN = re.compile(r"^@(?P<fn>[A-Za-z_]\w*)\((?P<fnargs>[^()]*)\)$")


def _split_args(text: str) -> list[str]:
    return [] if not text.strip() else [a.strip() for a in text.split(",")]


# Each step type's handler, an Engine method registered with @_handles(Type).
_HANDLERS: dict[type[Step], Callable[[Engine, Any, State], int]] = {}
_H = TypeVar("_H", bound=Callable[..., int])


def _handles(*types: type[Step]) -> Callable[[_H], _H]:
    def register(handler: _H) -> _H:
        for t in types:
            _HANDLERS[t] = handler
        return handler

    return register


class Engine:
    """Runs suites for one job against one checkout."""

    def __init__(
        self,
        data: SuiteData,
        job: Job,
        root: Path,
        executor: Executor,
        *,
        base_env: Mapping[str, str] | None = None,
        planning: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.data = data
        self.job = job
        self.root = root
        self.executor = executor
        self.base: dict[str, str] = dict(base_env or {})
        self.base.update(job.variables())
        self.planning = planning
        self.sleep = sleep
        self.notes: list[str] = []

    # --- variables ------------------------------------------------------------------

    def lookup(self, state: State, name: str) -> Value:
        for frame in reversed(state.frames):
            if name in frame.locals:
                return frame.locals[name]
        if name in state.globals:
            return state.globals[name]
        if name in state.env:
            return state.env[name] or ""
        return self.base.get(name, "")

    def text(self, state: State, name: str) -> str:
        value = self.lookup(state, name)
        return " ".join(value) if isinstance(value, tuple) else value

    def _exported(self, state: State, name: str) -> bool:
        if name in state.env:
            return state.env[name] is not None
        return name in self.base

    def assign(self, state: State, name: str, value: Value, *, how: str = "set") -> None:
        if how == "local":
            if state.frames:
                state.frames[-1].locals[name] = value
            else:
                state.globals[name] = value
            return
        if how == "export":
            for frame in reversed(state.frames):
                if name in frame.locals:
                    frame.locals.pop(name)
                    break
            state.globals.pop(name, None)
            state.env[name] = " ".join(value) if isinstance(value, tuple) else value
            return
        for frame in reversed(state.frames):
            if name in frame.locals:
                frame.locals[name] = value
                return
        if name not in state.globals and self._exported(state, name):
            state.env[name] = " ".join(value) if isinstance(value, tuple) else value
        else:
            state.globals[name] = value

    def unset(self, state: State, name: str) -> None:
        for frame in reversed(state.frames):
            if name in frame.locals:
                frame.locals.pop(name)
                return
        state.globals.pop(name, None)
        if name in self.base:
            state.env[name] = None
        else:
            state.env.pop(name, None)

    def unexport(self, state: State, name: str) -> None:
        value = self.lookup(state, name)
        if name in self.base:
            state.env[name] = None
        else:
            state.env.pop(name, None)
        state.globals[name] = value

    def env_lookup(self, state: State) -> Callable[[str], str]:
        return lambda name: self.text(state, name)

    # --- expansion ------------------------------------------------------------------

    def native_context(self, state: State) -> NativeContext:
        def trait_match(name: str) -> re.Match[str] | None:
            trait = self.data.traits.get(name)
            if trait is None or trait.kind != "regex":
                raise SuiteFailure(f"@trait_group: {name!r} is not a regex trait")
            return re.search(trait.pattern, self.text(state, trait.var))

        return NativeContext(
            self.root,
            self.abspath(state.cwd),
            self.planning,
            self.env_lookup(state),
            trait_match,
            self._note,
        )

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def expand(self, state: State, word: str) -> str:
        """Expand one word as a quoted bash word: always exactly one string."""
        if "$" not in word and "@" not in word:  # a literal (most words): nothing to do
            return word

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            if m.group("arith") is not None:
                return str(self._arith(state, m.group("arith")))
            if m.group("braced") is not None:
                return self._braced(state, m.group("braced"))
            if m.group("name") is not None:
                return self._positional_or_var(state, m.group("name"))
            fn, fnargs = m.group("fn"), m.group("fnargs")
            if fn not in NATIVES:
                return m.group(0)
            value = self._native(state, fn, fnargs)
            return " ".join(value) if isinstance(value, list) else value

        return _SUB.sub(sub, word)

    def words(self, state: State, word: str) -> list[str]:
        """Expand one word of a command line; ``$@NAME`` and list functions splice."""
        if word == "$@":
            return list(state.frames[-1].args) if state.frames else []
        if word.startswith("$@") and word[2:].isidentifier():
            value = self.lookup(state, word[2:])
            if isinstance(value, tuple):
                return list(value)
            return split_fields(value, self.abspath(state.cwd))
        m = _WHOLE_FN.match(word)
        if m and m.group("fn") in NATIVES:
            result = self._native(state, m.group("fn"), m.group("fnargs"))
            return result if isinstance(result, list) else [result]
        return [self.expand(state, word)]

    def argv(self, state: State, words: Sequence[str]) -> list[str]:
        out: list[str] = []
        for w in words:
            out.extend(self.words(state, w))
        return out

    def _native(self, state: State, fn: str, fnargs: str) -> str | list[str]:
        args = [self.expand(state, a) for a in _split_args(fnargs)]
        try:
            return call_native(fn, self.native_context(state), args)
        except NativeError as exc:
            raise SuiteFailure(str(exc)) from None

    def _positional_or_var(self, state: State, name: str) -> str:
        if name.isdigit():
            args = state.frames[-1].args if state.frames else ()
            i = int(name)
            return args[i - 1] if 0 < i <= len(args) else ""
        if name == "#":
            return str(len(state.frames[-1].args) if state.frames else 0)
        return self.text(state, name)

    def _braced(self, state: State, body: str) -> str:
        m = re.fullmatch(r"(\w+)(?::([-=])(.*)|//([^/]*)/(.*))?", body, re.DOTALL)
        if m is None:
            raise SuiteFailure(f"unsupported expansion ${{{body}}}")
        name = m.group(1)
        value = self._positional_or_var(state, name)
        if m.group(2) is not None:
            if value == "":
                value = self.expand(state, m.group(3))
                if m.group(2) == "=":
                    self.assign(state, name, value)
            return value
        if m.group(4) is not None:
            return value.replace(m.group(4), m.group(5))
        return value

    def _arith(self, state: State, text: str) -> int:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            raise SuiteFailure(f"bad arithmetic $(({text}))") from None

        def ev(node: ast.AST) -> int:
            if isinstance(node, ast.Expression):
                return ev(node.body)
            if isinstance(node, ast.Constant) and isinstance(node.value, int):
                return node.value
            if isinstance(node, ast.Name):
                raw = self.text(state, node.id).strip()
                try:
                    return int(raw) if raw else 0
                except ValueError:
                    raise SuiteFailure(f"{node.id}={raw!r} is not a number") from None
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                return -ev(node.operand)
            if isinstance(node, ast.BinOp):
                a, b = ev(node.left), ev(node.right)
                if isinstance(node.op, ast.Add):
                    return a + b
                if isinstance(node.op, ast.Sub):
                    return a - b
                if isinstance(node.op, ast.Mult):
                    return a * b
                if isinstance(node.op, (ast.Div, ast.FloorDiv)) and b:
                    return int(a / b)
            raise SuiteFailure(f"unsupported arithmetic $(({text}))")

        return ev(tree)

    # --- paths ----------------------------------------------------------------------

    def abspath(self, cwd: str) -> Path:
        p = Path(cwd)
        return p if p.is_absolute() else (self.root / p)

    def relpath(self, state: State, target: str) -> str:
        path = Path(os.path.normpath(self.abspath(state.cwd) / target))
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return str(rel) if str(rel) != "" else "."

    def folder_present(self, state: State, folder: str) -> bool:
        """Whether ``cd FOLDER`` succeeds.

        Running, the folder must exist. Planning reads the checkout as well, with an
        allowance for skeleton checkouts (a plan made against an empty checkout describes
        a full one): a folder outside the checkout (temp folders, system paths), one the
        job made (``mkdir``, ``git clone``) or inside one it made, and one whose nearest
        existing ancestor is the checkout's top or an empty folder is taken as present.
        What is left, a folder missing under a populated folder, is missing.
        """
        path = self.abspath(folder)
        if path.is_dir():
            return True
        if not self.planning:
            return False
        if not path.is_relative_to(self.root):
            return True
        ancestor = path
        while ancestor != self.root and not ancestor.is_dir():
            if str(ancestor.relative_to(self.root)) in state.made:
                return True
            ancestor = ancestor.parent
        if ancestor == self.root:
            return True
        return not any(ancestor.iterdir())

    def take_notes(self) -> tuple[str, ...]:
        """The notes made since the last call (planning: builtins that failed)."""
        out, self.notes = tuple(self.notes), []
        return out

    def _builtin_failed(self, state: State, message: str) -> int:
        """A builtin (``cd``, ``popd``) failed: bash prints why and stays where it was.
        Running under ``set -e`` the suite stops there; planning carries on (as test.sh's
        traces do with errexit off) and notes it in the plan."""
        if self.planning:
            self.notes.append(message)
            return 1
        if state.errexit:
            raise SuiteFailure(message, 1)
        return 1

    # --- conditions -----------------------------------------------------------------

    def trait(self, state: State, name: str) -> bool:
        trait = self.data.traits[name]
        return trait.matches(self.text(state, trait.var))

    def check(self, state: State, when: Condition | None) -> bool:
        if when is None:
            return True
        try:
            return when.evaluate(_Resolver(self, state))
        except ConditionError as exc:
            raise SuiteFailure(str(exc)) from None

    # --- running --------------------------------------------------------------------

    def command(self, state: State, step: Run) -> Command:
        argv = self.argv(state, step.argv)
        if not argv:
            raise SuiteFailure(f"{step.where}: the command line expanded to nothing")
        cwd = self.relpath(state, self.expand(state, step.cwd)) if step.cwd else state.cwd
        env = dict(state.env)
        for name, value in step.env:
            env[name] = self.expand(state, value)
        fn = "/".join(f.name for f in state.frames)
        stdin = self.expand(state, step.stdin) if step.stdin is not None else None
        stdout = None
        if step.stdout is not None:
            stdout = self.relpath(state, self.expand(state, step.stdout))
        return Command(tuple(argv), cwd, env, fn, stdin, stdout, step.merge_stderr)

    def run_steps(self, steps: Sequence[Step], state: State) -> int:
        status = 0
        for step in steps:
            if not self.check(state, step.when):
                continue
            status = self.run_step(step, state)
        return status

    def run_step(self, step: Step, state: State) -> int:
        """Run one step (its ``when`` already checked) by the handler of its type."""
        handler = _HANDLERS.get(type(step))
        if handler is None:
            raise SuiteFailure(f"{step.where}: no handler for a {type(step).__name__} step")
        return handler(self, step, state)

    def call(
        self,
        state: State,
        name: str,
        args: Sequence[str],
        env: Sequence[tuple[str, str]] = (),
        *,
        errexit: bool = True,
    ) -> int:
        """Call suite ``name`` as bash calls a function (prefix variables included)."""
        suite = self.data.suites.get(name)
        if suite is None:
            raise NotPorted(f"test.sh function {name!r} has no suite yet")
        saved = {k: state.env.get(k, _MISSING) for k, _ in env}
        for k, v in env:
            state.env[k] = self.expand(state, v)
        saved_errexit = state.errexit
        state.errexit = saved_errexit and errexit
        state.frames.append(Frame(name, tuple(args)))
        try:
            status = self.run_steps(suite.steps, state)
        except _Return as r:
            status = r.status
        finally:
            state.frames.pop()
            state.errexit = saved_errexit
            for k, old in saved.items():
                if old is _MISSING:
                    state.env.pop(k, None)
                else:
                    state.env[k] = old  # type: ignore[assignment]
        return status

    def suite(self, name: str) -> Suite | None:
        return self.data.suites.get(name)

    # --- one handler per step type ---------------------------------------------------

    @_handles(Run)
    def _run(self, step: Run, state: State) -> int:
        command = self.command(state, step)
        if self.planning:
            for made in _folders_made(command.argv):
                state.made.add(self.relpath(State(cwd=command.cwd), made))
        # Inside `$(...)` what the command writes is the substitution's value.
        printing = state.out is not None and step.capture is None and step.stdout is None
        attempts = (0.0, *step.retry)
        result = CommandResult(0)
        for i, pause in enumerate(attempts):
            if i:
                self.sleep(pause)
            result = self.executor(command, capture=step.capture is not None or printing)
            if printing:
                state.print(result.output)
            if result.returncode == 0:
                break
        if step.capture is not None:
            self.assign(state, step.capture, result.output.rstrip("\n"))
        if step.expect_fail:
            # `! cmd`: the check passes only when the command fails.
            if result.returncode == 0 and not self.planning:
                raise SuiteFailure(
                    f"command {' '.join(command.argv)!r} was expected to fail and exited 0",
                    1,
                    command,
                    result,
                )
            return 0
        if step.status_to is not None:
            self.assign(state, step.status_to, str(result.returncode))
            return 0
        if result.returncode != 0 and not step.allow_fail:
            if state.errexit:
                raise SuiteFailure(
                    _describe_failure(command, result), result.returncode, command, result
                )
            return result.returncode
        return 0 if step.allow_fail else result.returncode

    @_handles(Call)
    def _call(self, step: Call, state: State) -> int:
        args = self.argv(state, step.args)
        if step.capture is None:
            status = self._call_retrying(step, state, args)
        else:
            status = self._call_captured(step, state, args, step.capture)
        if step.status_to is not None:
            self.assign(state, step.status_to, str(status))
            return 0
        if status != 0 and not step.allow_fail and state.errexit:
            raise SuiteFailure(f"{step.function} returned {status}", status)
        return 0 if step.allow_fail else status

    def _call_retrying(self, step: Call, state: State, args: Sequence[str]) -> int:
        tolerant = step.allow_fail or step.status_to is not None
        attempts = (0.0, *step.retry)
        status = 0
        for i, pause in enumerate(attempts):
            if i:
                self.sleep(pause)
            try:
                status = self.call(
                    state,
                    step.function,
                    args,
                    step.env,
                    errexit=not tolerant and not step.retry,
                )
            except SuiteFailure:
                if i + 1 < len(attempts):
                    continue
                raise
            if status == 0:
                break
        return status

    def _call_captured(self, step: Call, state: State, args: Sequence[str], var: str) -> int:
        """``VAR=$(function args)``: the function runs in a subshell (what it changes of
        the shell's state stays there; the folders its commands made stay made), and what
        it writes to stdout, less the trailing newlines, becomes VAR.

        bash clears ``set -e`` in a subshell; the subshell here keeps the caller's, so
        that a failing command inside names itself. The functions captured are single
        commands, for which the two agree: the assignment fails as the command did.
        """
        subshell = state.snapshot()
        subshell.out = []
        try:
            status = self._call_retrying(step, subshell, args)
        finally:
            state.made |= subshell.made
        self.assign(state, var, "".join(subshell.out).rstrip("\n"))
        return status

    @_handles(Export, Set, Local)
    def _assign(self, step: Assign, state: State) -> int:
        for name, value in step.values:
            if isinstance(value, tuple):
                expanded: Value = tuple(self.argv(state, value))
            else:
                expanded = self.expand(state, value)
            self.assign(state, name, expanded, how=step.verb)
        return 0

    @_handles(Append)
    def _append(self, step: Append, state: State) -> int:
        for name, value in step.values:
            old = self.lookup(state, name)
            base = old if isinstance(old, tuple) else tuple(split_words(old))
            self.assign(state, name, base + tuple(self.argv(state, value)))
        return 0

    @_handles(Unset)
    def _unset(self, step: Unset, state: State) -> int:
        for name in step.names:
            self.unset(state, name)
        return 0

    @_handles(Unexport)
    def _unexport(self, step: Unexport, state: State) -> int:
        for name in step.names:
            self.unexport(state, name)
        return 0

    @_handles(Cd, Pushd)
    def _change_folder(self, step: Cd | Pushd, state: State) -> int:
        target = self.expand(state, step.folder)
        folder = self.relpath(state, target)
        if not self.folder_present(state, folder):
            return self._builtin_failed(state, f"{step.verb}: {target}: No such file or directory")
        if isinstance(step, Pushd):
            state.dirstack.append(state.cwd)
        state.cwd = folder
        return 0

    @_handles(Popd)
    def _popd(self, step: Popd, state: State) -> int:
        if not state.dirstack:
            return self._builtin_failed(state, "popd: directory stack empty")
        state.cwd = state.dirstack.pop()
        return 0

    @_handles(Native)
    def _native_step(self, step: Native, state: State) -> int:
        args = [self.expand(state, a) for a in step.args]
        try:
            result = call_native(step.function, self.native_context(state), args)
        except NativeError as exc:
            raise SuiteFailure(str(exc)) from None
        if step.capture:
            self.assign(state, step.capture, tuple(result) if isinstance(result, list) else result)
        elif state.out is not None:
            state.print(" ".join(result) if isinstance(result, list) else result)
        return 0

    @_handles(Fail)
    def _fail(self, step: Fail, state: State) -> int:
        status = step.status
        if isinstance(status, str):
            raw = self.expand(state, status).strip()
            try:
                status = int(raw)
            except ValueError:
                raise SuiteFailure(f"{step.where}: exit {raw!r} is not a status") from None
        raise ScriptExit(self.expand(state, step.message), status)

    @_handles(Return)
    def _return(self, step: Return, state: State) -> int:
        raw = self.expand(state, step.status).strip() or "0"
        try:
            raise _Return(int(raw))
        except ValueError:
            raise SuiteFailure(f"{step.where}: return {raw!r} is not a status") from None

    @_handles(Choose)
    def _choose(self, step: Choose, state: State) -> int:
        for branch in step.branches:
            if self.check(state, branch.when):
                return self.run_steps(branch.steps, state)
        return 0

    @_handles(For)
    def _for(self, step: For, state: State) -> int:
        status = 0
        for item in self.argv(state, step.items):
            self.assign(state, step.var, item)
            status = self.run_steps(step.body, state)
        return status

    @_handles(Shift)
    def _shift(self, step: Shift, state: State) -> int:
        """``shift N``: more than there are fails, as bash's does, and shifts nothing."""
        args = state.frames[-1].args if state.frames else ()
        if step.count > len(args):
            return self._builtin_failed(state, f"shift: {step.count}: shift count out of range")
        if state.frames:
            state.frames[-1].args = args[step.count :]
        return 0


_MISSING = object()

# git clone's options that take a value as the next word.
_GIT_CLONE_VALUED = frozenset((
    "-b", "--branch", "-o", "--origin", "-c", "--config", "--depth", "--filter", "--reference",
    "-j", "--jobs", "--shallow-since", "--shallow-exclude", "--separate-git-dir", "--template",
    "-u", "--upload-pack",
))  # fmt: skip


def _folders_made(argv: Sequence[str]) -> list[str]:
    """The folders a command makes when it succeeds: ``mkdir``'s operands, the target of
    ``git clone`` (named, or the repository's name)."""
    if argv and argv[0] == "mkdir":
        return [a for a in argv[1:] if not a.startswith("-")]
    if len(argv) > 2 and argv[0] == "git" and argv[1] == "clone":
        words: list[str] = []
        skip = False
        for a in argv[2:]:
            if skip:
                skip = False
            elif a in _GIT_CLONE_VALUED:
                skip = True
            elif not a.startswith("-"):
                words.append(a)
        if len(words) >= 2:
            return [words[1]]
        if words:
            name = words[0].rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
            return [name.removesuffix(".git")] if name else []
    return []


class _Resolver:
    """What a condition sees of the engine's state."""

    __slots__ = ("engine", "state")

    def __init__(self, engine: Engine, state: State) -> None:
        self.engine = engine
        self.state = state

    def trait(self, name: str) -> bool:
        return self.engine.trait(self.state, name)

    def expand(self, word: str) -> str:
        return self.engine.expand(self.state, word)


def _describe_failure(command: Command, result: CommandResult) -> str:
    return (
        f"command {' '.join(command.argv)!r} {describe_status(result.returncode, result.timed_out)}"
    )

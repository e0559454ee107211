"""The engine running each step type against a fake executor that records the commands
(no process starts): bash's semantics for variables, folders, calls, ``$(...)``,
``shift``, exits and failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_torchci.data import steps as S
from pytest_torchci.data.conditions import parse_condition
from pytest_torchci.data.loader import Suite, SuiteData, Trait
from pytest_torchci.data.model import Command, Job
from pytest_torchci.plan.engine import (
    CommandResult,
    Engine,
    Frame,
    ScriptExit,
    State,
    SuiteFailure,
)
from pytest_torchci.plan.natives import NATIVES, NativeContext
from pytest_torchci.plan.status import describe_status

W = "[t].steps[0]"


@dataclass
class FakeExecutor:
    """Records each command; answers from ``answers`` (by argv joined), else success."""

    answers: Mapping[str, CommandResult] = field(default_factory=dict)
    calls: list[tuple[Command, bool]] = field(default_factory=list)

    def __call__(self, command: Command, *, capture: bool) -> CommandResult:
        self.calls.append((command, capture))
        return self.answers.get(" ".join(command.argv), CommandResult(0, ""))

    @property
    def argvs(self) -> list[list[str]]:
        return [list(c.argv) for c, _ in self.calls]


def make_engine(
    tmp_path: Path,
    suites: Mapping[str, tuple[S.Step, ...]] | None = None,
    *,
    planning: bool = False,
    executor: FakeExecutor | None = None,
) -> tuple[Engine, FakeExecutor]:
    data = SuiteData(
        traits={"cuda": Trait("cuda", "BUILD_ENVIRONMENT", "*cuda*")},
        suites={
            name: Suite(name, "test", "misc", (), (), "test.sh", steps, f"{name}.toml")
            for name, steps in (suites or {}).items()
        },
        routes=(),
        prelude=(),
    )
    executor = executor or FakeExecutor()
    job = Job("linux-cuda12.8", "default")
    return Engine(data, job, tmp_path, executor, planning=planning, sleep=lambda _: None), executor


def run(*steps: S.Step) -> tuple[S.Step, ...]:
    return steps


# --- run ----------------------------------------------------------------------------------


def test_run_expands_its_words_and_records_the_command(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    engine, ex = make_engine(tmp_path)
    state = State(env={"E": "1"})
    state.globals["L"] = ("a", "b")
    step = S.Run(where=W, argv=("python", "$@L", "${X:-none}"), cwd="test", env=(("P", "q"),))
    assert engine.run_step(step, state) == 0
    ((command, capture),) = ex.calls
    assert command == Command(("python", "a", "b", "none"), "test", {"E": "1", "P": "q"}, "")
    assert not capture


def test_a_failing_command_stops_the_suite_under_set_e(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path, executor=FakeExecutor({"false": CommandResult(3)}))
    with pytest.raises(SuiteFailure) as info:
        engine.run_step(S.Run(where=W, argv=("false",)), State())
    assert info.value.status == 3
    assert info.value.message == f"command 'false' {describe_status(3)}"


@pytest.mark.parametrize(
    ("options", "status", "variables"),
    [
        ({"allow_fail": True}, 0, {}),
        ({"status_to": "st"}, 0, {"st": "3"}),
        ({"expect_fail": True}, 0, {}),
        ({"capture": "out", "allow_fail": True}, 0, {"out": "said"}),
    ],
)
def test_what_a_failure_does_is_the_steps_choice(
    tmp_path: Path, options: dict[str, object], status: int, variables: dict[str, str]
) -> None:
    ex = FakeExecutor({"false": CommandResult(3, "said\n\n")})
    engine, _ = make_engine(tmp_path, executor=ex)
    state = State()
    step = S.Run(where=W, argv=("false",), **options)  # type: ignore[arg-type]
    assert engine.run_step(step, state) == status
    assert state.globals == variables


def test_retry_runs_again_until_it_passes(tmp_path: Path) -> None:
    pauses: list[float] = []
    ex = FakeExecutor({"flaky": CommandResult(1)})
    engine, _ = make_engine(tmp_path, executor=ex)
    engine.sleep = pauses.append
    with pytest.raises(SuiteFailure):
        engine.run_step(S.Run(where=W, argv=("flaky",), retry=(1.0, 2.0)), State())
    assert pauses == [1.0, 2.0]
    assert len(ex.calls) == 3


# --- variables ------------------------------------------------------------------------------


def test_export_set_local_and_unset(tmp_path: Path) -> None:
    body = run(
        S.Local(where=W, values=(("l", "local"),)),
        S.Set(where=W, values=(("g", "$l"),)),
        S.Export(where=W, values=(("E", "x"), ("ARR", ("a", "b")))),
        S.Append(where=W, values=(("g", ("more",)),)),
        S.Unset(where=W, names=("E",)),
    )
    engine, _ = make_engine(tmp_path, {"f": body})
    state = State()
    assert engine.call(state, "f", ()) == 0
    assert state.globals == {"g": ("local", "more")}  # the local went with the call
    assert state.env == {"ARR": "a b"}


def test_unexport_keeps_the_value_but_not_the_export(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path)
    state = State(env={"A": "1"})
    engine.run_step(S.Unexport(where=W, names=("A",)), state)
    assert state.env == {} and state.globals == {"A": "1"}


# --- folders ------------------------------------------------------------------------------


def test_cd_pushd_popd(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    engine, _ = make_engine(tmp_path)
    state = State()
    engine.run_step(S.Cd(where=W, folder="a"), state)
    engine.run_step(S.Pushd(where=W, folder="b"), state)
    assert (state.cwd, state.dirstack) == ("a/b", ["a"])
    engine.run_step(S.Popd(where=W), state)
    assert (state.cwd, state.dirstack) == ("a", [])


def test_a_missing_folder_fails_running_and_is_noted_planning(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    step = S.Cd(where=W, folder="full/missing")
    engine, _ = make_engine(tmp_path)
    with pytest.raises(SuiteFailure, match="cd: full/missing: No such file or directory"):
        engine.run_step(step, State())
    planner, _ = make_engine(tmp_path, planning=True)
    assert planner.run_step(step, State()) == 1
    assert planner.take_notes() == ("cd: full/missing: No such file or directory",)


# --- control flow ----------------------------------------------------------------------------


def test_choose_takes_the_first_branch_that_holds(tmp_path: Path) -> None:
    step = S.Choose(
        where=W,
        branches=(
            S.Branch(parse_condition("not cuda"), (S.Run(where=W, argv=("one",)),)),
            S.Branch(parse_condition("cuda"), (S.Run(where=W, argv=("two",)),)),
            S.Branch(None, (S.Run(where=W, argv=("three",)),)),
        ),
    )
    engine, ex = make_engine(tmp_path)
    engine.run_step(step, State())
    assert ex.argvs == [["two"]]


def test_when_skips_a_step(tmp_path: Path) -> None:
    engine, ex = make_engine(tmp_path)
    steps = (
        S.Run(where=W, when=parse_condition("$X == 1"), argv=("skipped",)),
        S.Run(where=W, when=parse_condition("cuda"), argv=("ran",)),
    )
    engine.run_steps(steps, State())
    assert ex.argvs == [["ran"]]


def test_for_assigns_each_item_and_runs_the_body(tmp_path: Path) -> None:
    engine, ex = make_engine(tmp_path)
    state = State()
    state.globals["L"] = ("b", "c")
    step = S.For(where=W, var="x", items=("a", "$@L"), body=(S.Run(where=W, argv=("echo", "$x")),))
    engine.run_step(step, state)
    assert ex.argvs == [["echo", "a"], ["echo", "b"], ["echo", "c"]]


def test_fail_exits_with_its_status(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path)
    state = State()
    state.globals["st"] = "4"
    with pytest.raises(ScriptExit) as info:
        engine.run_step(S.Fail(where=W, message="bad $st", status="$st"), state)
    assert (info.value.message, info.value.status) == ("bad 4", 4)
    with pytest.raises(SuiteFailure, match=r"\[t\]\.steps\[0\]: exit 'x' is not a status"):
        engine.run_step(S.Fail(where=W, message="m", status="x"), state)


def test_return_ends_the_function_with_its_status(tmp_path: Path) -> None:
    body = run(S.Return(where=W, status="$1"), S.Run(where=W, argv=("never",)))
    engine, ex = make_engine(tmp_path, {"f": body})
    with pytest.raises(SuiteFailure, match="f returned 5"):
        engine.run_step(S.Call(where=W, function="f", args=("5",)), State())
    tolerated = S.Call(where=W, function="f", args=("5",), allow_fail=True)
    assert engine.run_step(tolerated, State()) == 0
    assert ex.calls == []


# --- calls, $(...) and shift ----------------------------------------------------------------


def test_call_passes_arguments_and_prefix_variables(tmp_path: Path) -> None:
    body = run(S.Run(where=W, argv=("echo", "$1", "$#", "$@")))
    engine, ex = make_engine(tmp_path, {"f": body})
    state = State()
    engine.run_step(S.Call(where=W, function="f", args=("a", "b"), env=(("P", "1"),)), state)
    ((command, _),) = ex.calls
    assert (list(command.argv), command.env, command.fn) == (
        ["echo", "a", "2", "a", "b"],
        {"P": "1"},
        "f",
    )
    assert state.env == {}  # the prefix variable was the call's only


def test_a_captured_call_takes_what_the_function_prints(tmp_path: Path) -> None:
    body = run(
        S.Set(where=W, values=(("leak", "no"),)),
        S.Run(where=W, argv=("versions", "$@")),
        S.Run(where=W, argv=("quiet",), stdout="log"),  # `> log`: not printed
    )
    ex = FakeExecutor({"versions torch": CommandResult(0, "torch==2\n\n")})
    engine, _ = make_engine(tmp_path, {"get": body}, executor=ex)
    state = State()
    engine.run_step(S.Local(where=W, values=(("v", ""),)), state)
    step = S.Call(where=W, function="get", args=("torch",), capture="v")
    assert engine.run_step(step, state) == 0
    assert state.globals == {"v": "torch==2"}  # trailing newlines dropped; `leak` stayed inside
    assert [capture for _, capture in ex.calls] == [True, False]


def test_a_captured_native_prints_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pinned(ctx: NativeContext, name: str) -> str:
        return f"pin-{name}"

    monkeypatch.setitem(NATIVES, "test_pinned", pinned)
    body = run(S.Native(where=W, function="test_pinned", args=("$1",)))
    engine, _ = make_engine(tmp_path, {"get_pinned_commit": body})
    state = State(frames=[Frame("install", ())])
    step = S.Call(where=W, function="get_pinned_commit", args=("vision",), capture="commit")
    engine.run_step(step, state)
    assert state.globals == {"commit": "pin-vision"}
    engine.run_step(S.Call(where=W, function="get_pinned_commit", args=("x",)), state)
    assert state.globals == {"commit": "pin-vision"}  # uncaptured, it prints to nowhere


def test_a_captured_call_keeps_the_folders_its_commands_made(tmp_path: Path) -> None:
    body = run(S.Run(where=W, argv=("mkdir", "-p", "made")), S.Cd(where=W, folder="made"))
    engine, _ = make_engine(tmp_path, {"f": body}, planning=True)
    state = State()
    engine.run_step(S.Call(where=W, function="f", capture="out"), state)
    assert state.made == {"made"}
    assert state.cwd == "."  # the subshell's `cd` stayed in the subshell


def test_a_failing_captured_call_fails_the_assignment(tmp_path: Path) -> None:
    body = run(S.Run(where=W, argv=("false",)))
    ex = FakeExecutor({"false": CommandResult(2)})
    engine, _ = make_engine(tmp_path, {"f": body}, executor=ex)
    with pytest.raises(SuiteFailure, match="'false' exited with status 2"):
        engine.run_step(S.Call(where=W, function="f", capture="out"), State())
    state = State()
    step = S.Call(where=W, function="f", capture="out", status_to="st")
    assert engine.run_step(step, state) == 0
    assert state.globals == {"out": "", "st": "2"}


def test_shift_drops_the_first_arguments(tmp_path: Path) -> None:
    body = run(
        S.Local(where=W, values=(("name", "$1"),)),
        S.Shift(where=W),
        S.Local(where=W, values=(("suite", "$1"),)),
        S.Shift(where=W, count=1),
        S.Run(where=W, argv=("bench", "$name", "$suite", "$@", "$#")),
    )
    engine, ex = make_engine(tmp_path, {"f": body})
    engine.run_step(S.Call(where=W, function="f", args=("n", "s", "--a", "--b")), State())
    assert ex.argvs == [["bench", "n", "s", "--a", "--b", "2"]]


def test_shift_past_the_end_fails_as_bash_does(tmp_path: Path) -> None:
    body = run(S.Shift(where=W, count=2), S.Run(where=W, argv=("echo", "$@")))
    engine, ex = make_engine(tmp_path, {"f": body})
    with pytest.raises(SuiteFailure, match="shift count out of range"):
        engine.run_step(S.Call(where=W, function="f", args=("one",)), State())
    assert ex.calls == []
    planner, ex = make_engine(tmp_path, {"f": body}, planning=True)
    planner.run_step(S.Call(where=W, function="f", args=("one",)), State())
    assert ex.argvs == [["echo", "one"]]  # nothing shifted
    assert planner.take_notes() == ("shift: 2: shift count out of range",)


def test_every_step_type_has_a_handler() -> None:
    from pytest_torchci.plan.engine import _HANDLERS

    verbs = {t.verb: t for t in _all_step_types() if t.verb}
    assert set(verbs) == set(S.VERBS)
    assert [name for name, t in verbs.items() if t not in _HANDLERS] == []


def _all_step_types() -> list[type[S.Step]]:
    found: list[type[S.Step]] = []
    todo: list[type[S.Step]] = [S.Step]
    while todo:
        t = todo.pop()
        found.append(t)
        todo.extend(t.__subclasses__())
    return found


def test_a_step_without_a_handler_is_refused(tmp_path: Path) -> None:
    @dataclass(frozen=True, kw_only=True)
    class Strange(S.Step):
        pass

    engine, _ = make_engine(tmp_path)
    with pytest.raises(SuiteFailure, match=r"\[t\]\.steps\[0\]: no handler for a Strange step"):
        engine.run_step(Strange(where=W), State())

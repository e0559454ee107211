"""Each verb of the suite data parsed into its own step type, and bad steps refused with a
message that names the file, the line, the suite and the step. In-process: each case loads
a suites folder of three small files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pytest_torchci.data import steps as S
from pytest_torchci.data.conditions import Condition
from pytest_torchci.data.loader import SuiteDataError, check_references, load_suites

TRAITS = '[traits]\ncuda = { var = "BUILD_ENVIRONMENT", glob = "*cuda*" }\n'
WHERE = "[demo].steps[0]"


def load_steps(tmp_path: Path, *steps: str) -> tuple[S.Step, ...]:
    folder = tmp_path / "suites"
    folder.mkdir(exist_ok=True)
    (folder / "traits.toml").write_text(TRAITS)
    (folder / "routes.toml").write_text("")
    body = "".join(f"  {s},\n" for s in steps)
    (folder / "demo.toml").write_text(f'[demo]\ncites = "test.sh: demo()"\nsteps = [\n{body}]\n')
    return load_suites(folder).suites["demo"].steps


def load_error(tmp_path: Path, step: str) -> str:
    with pytest.raises(SuiteDataError) as info:
        load_steps(tmp_path, step)
    return str(info.value)


# --- each verb ----------------------------------------------------------------------------

PARSED: list[tuple[str, S.Step]] = [
    (
        '{ run = ["python", "$1"], cwd = "test", env = { A = "1" }, allow_fail = true, '
        'status_to = "st", capture = "out", retry = [10, 20.5], stdin = "in", '
        'stdout = "log", expect_fail = true }',
        S.Run(
            where=WHERE,
            argv=("python", "$1"),
            cwd="test",
            env=(("A", "1"),),
            allow_fail=True,
            status_to="st",
            capture="out",
            retry=(10.0, 20.5),
            stdin="in",
            stdout="log",
            expect_fail=True,
        ),
    ),
    ('{ run = ["true"] }', S.Run(where=WHERE, argv=("true",))),
    (
        '{ call = "f", args = ["a", "$@"], env = { X = "y" }, retry = [1], capture = "v" }',
        S.Call(
            where=WHERE,
            function="f",
            args=("a", "$@"),
            env=(("X", "y"),),
            retry=(1.0,),
            capture="v",
        ),
    ),
    ('{ call = "f", status_to = "st" }', S.Call(where=WHERE, function="f", status_to="st")),
    (
        '{ export = { A = "1", L = ["x", "y"] } }',
        S.Export(where=WHERE, values=(("A", "1"), ("L", ("x", "y")))),
    ),
    ('{ set = { A = "$B" } }', S.Set(where=WHERE, values=(("A", "$B"),))),
    ('{ local = { A = "" } }', S.Local(where=WHERE, values=(("A", ""),))),
    ('{ append = { L = ["z"] } }', S.Append(where=WHERE, values=(("L", ("z",)),))),
    ('{ unset = ["A", "B"] }', S.Unset(where=WHERE, names=("A", "B"))),
    ('{ unexport = ["A"] }', S.Unexport(where=WHERE, names=("A",))),
    ('{ cd = "test" }', S.Cd(where=WHERE, folder="test")),
    ('{ pushd = "$DIR" }', S.Pushd(where=WHERE, folder="$DIR")),
    ("{ popd = true }", S.Popd(where=WHERE)),
    (
        '{ native = "pin", args = ["vision"], capture = "c" }',
        S.Native(where=WHERE, function="pin", args=("vision",), capture="c"),
    ),
    ('{ native = "pwd" }', S.Native(where=WHERE, function="pwd")),
    ('{ fail = "no" }', S.Fail(where=WHERE, message="no")),
    ('{ fail = "no", status = 3 }', S.Fail(where=WHERE, message="no", status=3)),
    ('{ fail = "no", status = "$st" }', S.Fail(where=WHERE, message="no", status="$st")),
    ("{ return = 2 }", S.Return(where=WHERE, status="2")),
    ('{ return = "$st" }', S.Return(where=WHERE, status="$st")),
    (
        '{ for = "x", in = ["a", "$@L"], do = [{ cd = "$x" }] }',
        S.For(
            where=WHERE,
            var="x",
            items=("a", "$@L"),
            body=(S.Cd(where=f"{WHERE}.do[0]", folder="$x"),),
        ),
    ),
    ("{ shift = 2 }", S.Shift(where=WHERE, count=2)),
    ("{ shift = 0 }", S.Shift(where=WHERE, count=0)),
]


@pytest.mark.parametrize(("toml", "expected"), PARSED, ids=[type(e).__name__ for _, e in PARSED])
def test_each_verb_parses_into_its_own_type(tmp_path: Path, toml: str, expected: S.Step) -> None:
    (step,) = load_steps(tmp_path, toml)
    assert step == expected
    assert type(step).verb in toml  # the type knows its verb


def test_when_is_a_condition(tmp_path: Path) -> None:
    (step,) = load_steps(tmp_path, '{ when = "cuda and $X == 1", run = ["true"] }')
    assert isinstance(step.when, Condition)
    assert step.when.source == "cuda and $X == 1"
    assert step.when.traits() == {"cuda"}
    assert dataclasses.replace(step, when=None) == S.Run(where=WHERE, argv=("true",))


def test_choose_holds_branches_of_steps(tmp_path: Path) -> None:
    (step,) = load_steps(
        tmp_path,
        '{ choose = [{ when = "cuda", steps = [{ cd = "a" }] }, { steps = [{ popd = true }] }] }',
    )
    assert isinstance(step, S.Choose)
    first, last = step.branches
    assert first.when is not None and first.when.source == "cuda"
    assert first.steps == (S.Cd(where=f"{WHERE}.choose[0].steps[0]", folder="a"),)
    assert last == S.Branch(None, (S.Popd(where=f"{WHERE}.choose[1].steps[0]"),))
    assert step.bodies() == (first.steps, last.steps)


def test_every_verb_has_a_type_and_a_parser() -> None:
    types = {t.verb: t for t in _step_types() if t.verb}
    assert set(S.VERBS) == set(types)
    assert list(S.VERBS)[:3] == ["run", "call", "export"]  # the order messages list them


def _step_types() -> list[type[S.Step]]:
    found: list[type[S.Step]] = []
    todo: list[type[S.Step]] = [S.Step]
    while todo:
        t = todo.pop()
        found.append(t)
        todo.extend(t.__subclasses__())
    return found


def test_calls_to_undefined_suites_are_found_in_nested_steps(tmp_path: Path) -> None:
    load_steps(tmp_path, '{ for = "x", in = ["a"], do = [{ call = "nowhere" }] }')
    data = load_suites(tmp_path / "suites")
    assert check_references(data) == [f"{WHERE}.do[0]: calls undefined suite 'nowhere'"]


# --- bad steps ------------------------------------------------------------------------------

BAD: list[tuple[str, str, list[str]]] = [
    ("not-a-table", '"run"', ["[demo].steps", "steps[0] must be a table"]),
    ("no-action", '{ when = "cuda" }', ["steps[0] has no action"]),
    ("two-verbs", '{ run = ["true"], cd = "x" }', ["steps[0] must hold exactly one of run, call"]),
    ("unknown-field", '{ run = ["true"], colour = "red" }', ["[demo].colour", "unknown field"]),
    # merge_stderr is a field of Run, not (yet) an option of the data: refused as before.
    ("merge-stderr", '{ run = ["x"], merge_stderr = true }', ["unknown field 'merge_stderr'"]),
    ("empty-run", "{ run = [] }", ["[demo].run", "steps[0]: empty command line"]),
    ("run-not-a-list", '{ run = "ls -l" }', ["run must be a list of strings"]),
    ("cwd-not-a-string", '{ run = ["x"], cwd = 1 }', ["[demo].cwd", "must be a string, not int"]),
    ("env-not-strings", '{ run = ["x"], env = { A = 1 } }', ["env must be a table of strings"]),
    ("retry-not-pauses", '{ run = ["x"], retry = ["soon"] }', ["retry is a list of pauses"]),
    ("expect-fail-not-bool", '{ run = ["x"], expect_fail = 1 }', ["expect_fail is true or false"]),
    ("call-not-a-string", "{ call = 1 }", ["[demo].call", "call must be a string"]),
    ("call-args-not-strings", '{ call = "f", args = [1] }', ["args must be a list of strings"]),
    ("call-unknown-option", '{ call = "f", cwd = "x" }', ["unknown field 'cwd' for a 'call'"]),
    ("export-not-a-table", '{ export = "A=1" }', ["export must be a table of variables"]),
    ("local-value-not-text", "{ local = { A = 1 } }", ["local must be a string, not int"]),
    ("append-not-a-table", '{ append = ["x"] }', ["append must be a table of lists"]),
    ("unset-not-a-list", '{ unset = "A" }', ["unset must be a list of strings"]),
    ("cd-not-a-string", "{ cd = 1 }", ["cd must be a string, not int"]),
    ("popd-not-true", "{ popd = false }", ["popd must be true"]),
    ("native-bad-capture", '{ native = "pwd", capture = 1 }', ["capture must be a string"]),
    ("fail-bad-status", '{ fail = "x", status = [1] }', ["status is an integer or a word"]),
    ("return-not-a-status", "{ return = [0] }", ["return takes a status"]),
    ("choose-empty", "{ choose = [] }", ["choose takes a list of branches"]),
    ("choose-no-steps", '{ choose = [{ when = "cuda" }] }', ["choose[0] needs steps"]),
    ("for-bad-body", '{ for = "x", do = [{ cd = 1 }] }', ["steps[0].do[0]: cd must be a string"]),
    ("shift-negative", "{ shift = -1 }", ["shift takes a count"]),
    ("shift-not-a-number", '{ shift = "1" }', ["shift takes a count"]),
    ("shift-bool", "{ shift = true }", ["shift takes a count"]),
    ("unknown-trait", '{ when = "rocm", run = ["x"] }', ["[demo].when", "unknown trait 'rocm'"]),
]


@pytest.mark.parametrize(("toml", "fragments"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_step_names_the_file_line_suite_and_step(
    tmp_path: Path, toml: str, fragments: list[str]
) -> None:
    message = load_error(tmp_path, toml)
    assert message.startswith("demo.toml, line ")
    assert "[demo]" in message
    for fragment in fragments:
        assert fragment in message, message


def test_the_line_is_the_bad_fields(tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    load_steps(tmp_path, '{ run = ["true"] }')
    (folder / "demo.toml").write_text(
        '[demo]\ncites = "x"\nsteps = [\n  { run = ["true"] },\n  { cd = "a", colour = 1 },\n]\n'
    )
    with pytest.raises(SuiteDataError, match=r"^demo\.toml, line 5: \[demo\]\.colour: steps\[1\]"):
        load_suites(folder)


def test_route_entries_keep_their_set_and_export(tmp_path: Path) -> None:
    load_steps(tmp_path, '{ run = ["true"] }')
    routes = '[[route]]\ncites = "x"\ncalls = [{ set = { A = "1" }, export = { B = "2" } }]\n'
    (tmp_path / "suites" / "routes.toml").write_text(routes)
    (rule,) = load_suites(tmp_path / "suites").routes
    kinds: list[Any] = [type(s) for s in rule.entries[0].steps]
    assert kinds == [S.Set, S.Export]


# Files of the wrong shape: a message that names the file, the line and the table, never
# a TypeError or ValueError from deep inside the loader. (Found by mutating the real
# suite data at random: each of these crashed the loader once.)
MALFORMED = [
    ("routes.toml", "route = [1]\n", "routes.toml, line 1: route: route #1 must be a table"),
    (
        "routes.toml",
        '[[route]]\ncites = "x"\nbranch = "one"\n',
        "routes.toml, line 3: [route].branch: route #1: must be a whole number",
    ),
    (
        "routes.toml",
        '[[route]]\ncites = "x"\nbranch = true\n',
        "routes.toml, line 3: [route].branch: route #1: must be a whole number",
    ),
    (
        "routes.toml",
        '[[route]]\ncites = "x"\ncalls = 1\n',
        "routes.toml, line 3: [route].calls: route #1: must be a list of calls",
    ),
    ("traits.toml", "traits = 1\n", "traits.toml, line 1: traits: must be a table"),
    ("traits.toml", "families = []\n" + TRAITS, "traits.toml, line 1: families: must be a table"),
    ("prelude.toml", 'prelude = "x"\n', "prelude.toml, line 1: prelude: must be a table"),
]


@pytest.mark.parametrize(("name", "text", "message"), MALFORMED)
def test_a_file_of_the_wrong_shape_is_a_suite_data_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    load_steps(tmp_path, '{ run = ["true"] }')
    (tmp_path / "suites" / name).write_text(text)
    with pytest.raises(SuiteDataError) as info:
        load_suites(tmp_path / "suites")
    assert str(info.value) == message


def test_every_call_in_the_installed_suite_data_names_a_suite() -> None:
    assert check_references(load_suites()) == []

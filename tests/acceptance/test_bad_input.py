"""Bad input to a pytest run, everywhere: one table. Each case is a clear message naming
the value and where it came from, a usage error (exit status 4), and no traceback. (Bad
input to the ``torchci`` command: test_cli.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TRAITS = '[traits]\ncuda = { var = "BUILD_ENVIRONMENT", glob = "*cuda*", help = "CUDA" }\n'
ROUTES = '[[route]]\ncites = "test.sh: else"\ncalls = [{ call = "s" }]\n'
SUITE = '[s]\ncites = "test.sh: s()"\nsteps = [{ run = ["true"] }]\n'


def suites(folder: Path, **files: str) -> Path:
    folder.mkdir(exist_ok=True)
    texts = {"traits.toml": TRAITS, "routes.toml": ROUTES, "s.toml": SUITE}
    texts.update({name.replace("_toml", ".toml"): text for name, text in files.items()})
    for name, text in texts.items():
        if text is not None:
            (folder / name).write_text(text)
    return folder


Setup = Callable[[Path], list[str]]


def opt(*args: str) -> Setup:
    return lambda tmp: list(args)


def with_suites(**files: str) -> Setup:
    return lambda tmp: [f"--torchci-suites={suites(tmp / 'suites', **files)}"]


def unwritable(tmp: Path) -> list[str]:
    blocker = tmp / "a-file"
    blocker.write_text("")
    return [f"--torchci-lock-dir={blocker / 'locks'}"]


def bad_durations(tmp: Path) -> list[str]:
    path = tmp / "durations.json"
    path.write_text("{not json")
    return [f"--torchci-durations={path}"]


CASES: list[tuple[str, Setup, dict[str, str], list[str]]] = [
    (
        "shard-past-count",
        opt("--torchci-shard=3/2"),
        {},
        ["--torchci-shard 3/2", "past the shard count"],
    ),
    ("shard-garbage", opt("--torchci-shard=x"), {}, ["--torchci-shard x", "is not a shard"]),
    ("shard-zero-count", opt("--torchci-shard=1/0"), {}, ["--torchci-shard 1/0", "at least 1"]),
    (
        "shard-negative",
        opt("--torchci-shard=-1/2"),
        {},
        ["--torchci-shard -1/2", "not a whole number"],
    ),
    ("env-shard-abc", opt(), {"SHARD_NUMBER": "abc"}, ["SHARD_NUMBER=abc (environment)"]),
    (
        "env-num-shards-negative",
        opt(),
        {"NUM_TEST_SHARDS": "-4"},
        ["NUM_TEST_SHARDS=-4 (environment)"],
    ),
    ("empty-config", opt("--torchci-config="), {}, ["the config name is empty"]),
    (
        "missing-root",
        opt("--torchci-root=nowhere"),
        {},
        ["--torchci-root nowhere", "no such folder"],
    ),
    ("env-missing-root", opt(), {"PYTORCH_ROOT": "/nonexistent/x"}, ["PYTORCH_ROOT (environment)"]),
    (
        "plan-in-missing-folder",
        opt("--torchci-plan=no/such/plan.json"),
        {},
        ["--torchci-plan", "does not exist"],
    ),
    (
        "missing-suites-folder",
        opt("--torchci-suites=nope"),
        {},
        ["--torchci-suites nope", "no such folder"],
    ),
    (
        "devices-spec",
        opt("--torchci-devices=gpu:4"),
        {},
        ["--torchci-devices 'gpu:4'", "not a device spec"],
    ),
    (
        "env-devices-spec",
        opt(),
        {"TORCHCI_DEVICES": "cuda:zero"},
        ["TORCHCI_DEVICES (environment)", "not a device spec"],
    ),
    (
        "slots-zero",
        opt("--torchci-slots-per-device=0"),
        {},
        ["--torchci-slots-per-device 0", "at least 1"],
    ),
    ("unwritable-lock-dir", unwritable, {}, ["--torchci-lock-dir", "cannot use it"]),
    (
        "env-unwritable-lock-dir",
        opt(),
        {"TORCHCI_LOCK_DIR": "/proc/torchci"},
        ["TORCHCI_LOCK_DIR=/proc/torchci (environment)"],
    ),
    (
        "missing-durations",
        opt("--torchci-durations=gone.json"),
        {},
        ["--torchci-durations gone.json", "no such file"],
    ),
    (
        "kill-grace-negative",
        opt("--torchci-kill-grace=-1"),
        {},
        ["--torchci-kill-grace -1", "not a number of seconds"],
    ),
    (
        "env-kill-grace-word",
        opt(),
        {"TORCHCI_KILL_GRACE": "soon"},
        ["TORCHCI_KILL_GRACE=soon (environment)", "not a number of seconds"],
    ),
    ("path-argument", opt("tests/"), {}, ["'tests/'", "select suites by node id"]),
    (
        "suites-toml-syntax",
        with_suites(routes_toml="[[route]\ncites = 1"),
        {},
        ["routes.toml", "not valid TOML"],
    ),
    (
        "suite-unknown-field",
        with_suites(s_toml='[s]\ncites = "x"\ncolour = "red"\n'),
        {},
        ["s.toml, line 3", "[s].colour", "unknown field"],
    ),
    (
        "suite-wrong-type",
        with_suites(s_toml='[s]\ncites = "x"\nmarkers = "one"\n'),
        {},
        ["s.toml", "markers", "list of strings"],
    ),
    (
        "step-unknown-trait",
        with_suites(s_toml='[s]\ncites = "x"\nsteps = [{ when = "rocm", run = ["true"] }]\n'),
        {},
        ["s.toml", "unknown trait 'rocm'"],
    ),
    (
        "route-unknown-trait",
        with_suites(routes_toml='[[route]]\ncites = "x"\nwhen = "tpu"\ncalls = []\n'),
        {},
        ["routes.toml", "unknown trait 'tpu'"],
    ),
    (
        "condition-on-raw-config",
        with_suites(
            routes_toml='[[route]]\ncites = "x"\nwhen = "$TEST_CONFIG == default"\ncalls = []\n'
        ),
        {},
        ["routes.toml", "name the test as a trait"],
    ),
    (
        "suite-bad-devices",
        with_suites(s_toml='[s]\ncites = "x"\ndevices = "many"\n'),
        {},
        ["s.toml", "devices", "count"],
    ),
    (
        "trait-bad-regex",
        with_suites(traits_toml='[traits]\nr = { var = "TEST_CONFIG", regex = "(" }\n'),
        {},
        ["traits.toml", "bad regular expression"],
    ),
    (
        "step-two-actions",
        with_suites(s_toml='[s]\ncites = "x"\nsteps = [{ run = ["true"], call = "s" }]\n'),
        {},
        ["s.toml", "exactly one of"],
    ),
    ("suite-without-cites", with_suites(s_toml="[s]\nsteps = []\n"), {}, ["s.toml", "needs cites"]),
    (
        "shard-number-not-a-number",
        opt("--torchci-shard=a/3"),
        {},
        ["--torchci-shard a/3", "'a' is not a whole number"],
    ),
    (
        "env-shard-past-count",
        opt(),
        {"SHARD_NUMBER": "5", "NUM_TEST_SHARDS": "3"},
        ["SHARD_NUMBER=5 and NUM_TEST_SHARDS=3 (environment)", "past the shard count"],
    ),
    # A blank name is as bad as an empty one; it must not fall back to a plain run.
    ("blank-config", opt("--torchci-config=  "), {}, ["the config name is empty"]),
    (
        "step-unknown-field",
        with_suites(
            s_toml='[s]\ncites = "x"\nsteps = [\n  { run = ["true"] },\n'
            '  { run = ["true"], colour = "red" },\n]\n'
        ),
        {},
        ["s.toml, line 5", "colour"],
    ),
    (
        "traits-unknown-field",
        with_suites(
            traits_toml=TRAITS
            + "\n[traits.extra]\nvar = 'TEST_CONFIG'\nglob = 'x'\nflavour = 'y'\n"
        ),
        {},
        ["traits.toml, line 7", "flavour"],
    ),
]


@pytest.mark.parametrize(
    ("setup", "env", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    setup: Setup,
    env: dict[str, str],
    fragments: list[str],
) -> None:
    for name in (
        "SHARD_NUMBER",
        "NUM_TEST_SHARDS",
        "PYTORCH_ROOT",
        "TORCHCI_DEVICES",
        "TORCHCI_LOCK_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = setup(pytester.path)
    if not any(a.startswith("--torchci-config") for a in args):
        args = ["--torchci-config=default", *args]
    # In process: each is a usage error before anything runs.
    result = pytester.runpytest_inprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    lines = [ln for ln in result.stderr.lines if ln.startswith("ERROR:")]
    assert lines, err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert "Traceback" not in err + result.stdout.str()


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize(
    "config", ["default; touch pwned", "$(touch pwned)", "`touch pwned`", "a|b&c>d"]
)
def test_shell_metacharacters_are_data(pytester: pytest.Pytester, config: str) -> None:
    """A TEST_CONFIG or BUILD_ENVIRONMENT full of shell syntax is a name like any other:
    it matches no branch's exact config, and nothing of it reaches a shell."""
    checkout = pytester.mkdir("checkout")
    result = pytester.runpytest_inprocess(
        f"--torchci-config={config}", f"--torchci-build-env={config}",
        f"--torchci-root={checkout}", "--torchci-dry-run", "-p", "no:cacheprovider",
    )  # fmt: skip
    assert result.ret in (0, 5)
    assert not list(pytester.path.rglob("pwned"))

"""What a user sees in the terminal: progress lines that follow pytest's verbosity, a node
id that names nothing, a config no rule names, and a run that tested nothing because the
host lacks the devices (never a silent green)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from .test_devices import (
    common_args,
    make_run_dir,
    run_fake,
    run_fakes,
    run_pytest,
    write_fake_suites,
)


@pytest.fixture(autouse=True)
def _natives_for_fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCHCI_FAKE_DIR", str(tmp_path))


# Under xdist, what these tests check is the controller's doing, from the reports its
# workers send; one worker sends the same (several side by side: test_parallel.py).
XDIST = ["-n", "1"]


def fake_run(tmp_path: Path, devices: str = "cuda:2") -> tuple[Path, list[str]]:
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(
        run / "suites", [("fake1", "a-0"), ("fake1", "b-0")], out=tmp_path / "r.jsonl"
    )
    return run, common_args(suites, run, tmp_path / "locks", devices)


# (id, flags, lines shown). Whether lines are shown is the controller's choice, from its
# own options, with or without xdist; where they land among pytest's output is not. So
# under xdist: each verbosity that shows them.
VERBOSITY = [
    ("q", ["-q"], False),
    ("qq", ["-qq"], False),
    ("default", [], False),
    ("v", ["-v"], True),
    ("q-asked", ["-q", "--torchci-progress"], True),
    ("default-asked", ["--torchci-progress"], True),
]


@pytest.mark.parametrize(
    ("flags", "shown", "workers"),
    [pytest.param(flags, shown, [], id=f"{name}-serial") for name, flags, shown in VERBOSITY]
    + [
        pytest.param(flags, shown, ["-n", "2"], id=f"{name}-xdist")  # two workers' reports
        for name, flags, shown in VERBOSITY
        if shown
    ],
)
def test_progress_lines_follow_verbosity(
    pytester: pytest.Pytester, tmp_path: Path, flags: list[str], shown: bool, workers: list[str]
) -> None:
    """The lines count the selected suites only (-k leaves one out)."""
    run = make_run_dir(tmp_path, "run")
    calls = [("fake1", "alpha-0"), ("fake1", "beta-0"), ("fake1", "gamma-0")]
    suites = write_fake_suites(run / "suites", calls, out=tmp_path / "r.jsonl")
    args = common_args(suites, run, tmp_path / "locks", "cuda:2")
    proc = run_fake(pytester, run, *args, "-k", "alpha or gamma", *flags, *workers)
    assert proc.returncode == 0, proc.stdout
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2  # they ran
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[") and "] fake1[" in ln]
    assert len(lines) == (2 if shown else 0), proc.stdout
    # Never inside pytest's own progress line: every line of ours starts a line, and no
    # line of pytest's carries one in its middle.
    assert not [ln for ln in proc.stdout.splitlines() if "] fake1[" in ln and ln[0] != "["]
    if shown:
        assert {ln.split("] ", 1)[0] for ln in lines} == {"[1/2", "[2/2"}


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_a_node_id_that_names_nothing_is_not_found(
    pytester: pytest.Pytester, tmp_path: Path, workers: list[str]
) -> None:
    run, args = fake_run(tmp_path)
    proc, named = run_fakes(
        pytester,
        [
            (run, {}, [*args, "torchci::fake1[nosuch-0]", *workers]),
            (run, {}, [*args, "torchci::fake1[b-0]", "-v", *workers]),
        ],
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "ERROR: not found: torchci::fake1[nosuch-0]" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    # A node id that does name a suite still selects it.
    assert named.returncode == 0 and "1 passed" in named.stdout, named.stdout


def test_a_config_no_rule_names_is_warned_about_at_q(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """test.sh runs its final else for a config it does not know; so does the plugin,
    but it says so, with the closest known names."""
    run = make_run_dir(tmp_path, "run")
    root = run / "checkout"
    proc = run_fake(
        pytester,
        run,
        "--torchci-config=defualt",
        f"--torchci-root={root}",
        f"--torchci-lock-dir={tmp_path / 'locks'}",
        "--torchci-dry-run",
        "-q",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if "torchci: warning:" in ln]
    assert "'defualt'" in line and "did you mean 'default'" in line
    # A known config: no warning.
    proc = run_fake(
        pytester,
        run,
        "--torchci-config=default",
        f"--torchci-root={root}",
        f"--torchci-lock-dir={tmp_path / 'locks'}",
        "--torchci-dry-run",
        "-q",
    )
    assert "torchci: warning:" not in proc.stdout


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_no_silent_green_when_the_host_lacks_the_devices(
    pytester: pytest.Pytester, tmp_path: Path, workers: list[str]
) -> None:
    run, args = fake_run(tmp_path, devices="none")
    ini_run, ini_args = fake_run(tmp_path / "ini", devices="none")
    (ini_run / "pytest.ini").write_text("[pytest]\ntorchci_allow_missing_devices = true\n")
    ci = {"CI": "true"}
    dev, in_ci, allowed, allowed_by_ini = run_fakes(
        pytester,
        [
            (run, {}, [*args, "-q", *workers]),
            (run, ci, [*args, "-q", *workers]),
            (run, ci, [*args, "-q", "--torchci-allow-missing-devices", *workers]),
            (ini_run, ci, [*ini_args, "-q", *workers]),
        ],
    )
    # On a developer's machine: skipped, and one line says that nothing was tested,
    # without -r, even at -q.
    assert dev.returncode == 0, dev.stdout
    assert "2 skipped" in dev.stdout
    (line,) = [ln for ln in dev.stdout.splitlines() if ln.startswith("torchci: no suite ran")]
    assert "needs 1 cuda device" in line and "skipped" in line

    # Under CI: a suite whose devices are absent fails.
    assert in_ci.returncode == 1, in_ci.stdout
    assert "2 errors" in in_ci.stdout  # pytest's count: they fail in their setup
    assert "CI is set" in in_ci.stdout
    assert "torchci: no suite ran (2 errors, 0 skipped)" in in_ci.stdout

    # ... unless the CI host means to skip them (an option, or the ini file).
    assert allowed.returncode == 0 and "2 skipped" in allowed.stdout, allowed.stdout
    assert allowed_by_ini.returncode == 0, allowed_by_ini.stdout
    assert "2 skipped" in allowed_by_ini.stdout, allowed_by_ini.stdout


def test_some_suites_missing_devices_are_counted(pytester: pytest.Pytester, tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(
        run / "suites", [("fake1", "a-0"), ("fake2", "b-0")], out=tmp_path / "r.jsonl"
    )
    proc = run_fake(pytester, run, *common_args(suites, run, tmp_path / "locks", "cuda:1"))
    assert proc.returncode == 0, proc.stdout
    assert "torchci: 1 of 2 suites did not run (skipped): needs 2 cuda devices" in proc.stdout


def test_timeline_has_a_slice_per_suite_on_its_device_tracks_and_the_waits(
    tmp_path: Path,
) -> None:
    """Under -n 2 on two devices: a two-device suite and two one-device suites, so that
    some suite waits for a lease; the trace is valid JSON in the Trace Event Format."""
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(
        run / "suites",
        [("fake2", "w-0.5"), ("fake1", "x-0.5"), ("fake1", "y-0.5")],
        out=tmp_path / "r",
    )
    trace = tmp_path / "trace.json"
    args = common_args(suites, run, tmp_path / "locks", "cuda:2")
    proc = run_pytest(run, *args, "-n", "2", f"--torchci-timeline={trace}")
    assert proc.returncode == 0, proc.stdout
    assert f"torchci: timeline: {trace}" in proc.stdout
    events = json.loads(trace.read_text())["traceEvents"]
    tracks = {
        e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"
    }
    suites_on: dict[str, list[str]] = {}
    for e in events:
        if e["ph"] == "X" and e["cat"] == "suite":
            assert e["dur"] > 0 and e["args"]["outcome"] == "passed"
            suites_on.setdefault(e["name"], []).append(tracks[e["tid"]])
    assert sorted(suites_on["fake2[w-0.5]"]) == ["cuda:0", "cuda:1"]
    assert len(suites_on["fake1[x-0.5]"]) == len(suites_on["fake1[y-0.5]"]) == 1
    assert {suites_on["fake1[x-0.5]"][0], suites_on["fake1[y-0.5]"][0]} <= {"cuda:0", "cuda:1"}
    waits = [e for e in events if e["ph"] == "X" and e["cat"] == "lease-wait"]
    assert waits, "some suite waited for a device"
    assert all("held:" in e["args"]["detail"] and tracks[e["tid"]].startswith("gw") for e in waits)
    # No two suites on one device at once.
    by_device: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        if e["ph"] == "X" and e["cat"] == "suite":
            by_device.setdefault(tracks[e["tid"]], []).append((e["ts"], e["ts"] + e["dur"]))
    for slices in by_device.values():
        slices.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(slices))


def test_timeline_serial_run_and_the_github_gantt_chart(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, args = fake_run(tmp_path)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    proc = run_fake(pytester, run, *args, "--torchci-timeline=trace.json")
    assert proc.returncode == 0, proc.stdout
    events = json.loads((run / "trace.json").read_text())["traceEvents"]
    names = [e["name"] for e in events if e["ph"] == "X" and e["cat"] == "suite"]
    assert sorted(names) == ["fake1[a-0]", "fake1[b-0]"]
    text = summary.read_text()
    assert "```mermaid\ngantt\n" in text and "section main" in text
    assert "fake1[a-0] (passed) :done, " in text


@pytest.mark.parametrize("flag", ["--torchci-timeline", "--torchci-store-durations"])
def test_an_output_file_in_a_missing_folder_is_a_usage_error(
    pytester: pytest.Pytester, tmp_path: Path, flag: str
) -> None:
    """Said before anything runs, not found out after the run, with its file lost."""
    run, args = fake_run(tmp_path)
    proc = run_fake(pytester, run, *args, f"{flag}=nowhere/out.json")
    assert proc.returncode == 4
    assert f"{flag} nowhere/out.json: the folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r.jsonl").exists()  # no suite ran


def test_a_durations_store_that_cannot_be_written_is_said_and_the_run_stands(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    run, args = fake_run(tmp_path)
    (run / "store.json").mkdir()  # a folder where the file goes
    proc = run_fake(pytester, run, *args, "--torchci-store-durations=store.json")
    assert proc.returncode == 0, proc.stdout
    assert "torchci: --torchci-store-durations store.json: cannot write it (" in proc.stdout
    assert "INTERNALERROR" not in proc.stdout and "Traceback" not in proc.stdout

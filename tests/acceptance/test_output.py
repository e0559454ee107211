"""Where a command's output goes: the log, the report, JUnit; live under ``-s``; and what
a command leaves running behind it."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ..conftest import run_demo_config, runpytest_side_by_side, toml_argv

PRINTS = [
    sys.executable,
    "-c",
    "import sys; print('to stdout'); print('to stderr', file=sys.stderr); print('\\u00e9t\\u00e9')",
]


def run(
    pytester: pytest.Pytester, suites: Path, *extra: str, in_process: bool = False
) -> tuple[pytest.RunResult, Path]:
    checkout = pytester.path / "checkout"
    checkout.mkdir(exist_ok=True)
    return run_demo_config(pytester, suites, checkout, *extra, in_process=in_process), checkout


@pytest.mark.parametrize("live", [False, True], ids=["captured", "live-s"])
def test_output_reaches_log_report_and_junit(
    pytester: pytest.Pytester, make_suites: Any, live: bool
) -> None:
    xml = pytester.path / "out.xml"
    extra = ["-s"] if live else ["-rP", "-o", "junit_logging=system-out"]
    result, checkout = run(
        pytester, make_suites(argv=PRINTS), f"--junitxml={xml}", *extra, in_process=True
    )
    result.assert_outcomes(passed=1)
    # -s: streamed as it comes; otherwise pytest's "Captured stdout call" section.
    result.stdout.fnmatch_lines(["*to stdout*", "*to stderr*", "*\u00e9t\u00e9*"])
    log = checkout / "test" / "test-reports" / "torchci-logs" / "demo_suite.log"
    text = log.read_text(encoding="utf-8")
    assert text.startswith(f"$ {sys.executable} -c ")
    assert "to stdout\nto stderr\n\u00e9t\u00e9\n" in text
    if not live:
        (case,) = ET.parse(xml).getroot().iter("testcase")
        out = case.findtext("system-out") or ""
        assert "to stdout" in out and "to stderr" in out


FIRST = [sys.executable, "-c", "print('first command')"]
SECOND = [sys.executable, "-c", "import sys; print('second command'); sys.exit(4)"]
STEPS_TWO_COMMANDS = f"""\
[demo_suite]
cites = "demo: demo_suite()"
steps = [{{ run = {toml_argv(FIRST)} }}, {{ run = {toml_argv(SECOND)} }}]
"""


def test_failure_tail_holds_only_the_output_of_the_run(
    pytester: pytest.Pytester, make_suites: Any
) -> None:
    suites = make_suites(files={"demo.toml": STEPS_TWO_COMMANDS})
    result, checkout = run(pytester, suites, in_process=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*exit: exited with status 4", "--- last 2 lines of output ---", "first command",
         "second command"]
    )  # fmt: skip
    log = checkout / "test" / "test-reports" / "torchci-logs" / "demo_suite.log"
    lines = log.read_text().splitlines()
    assert lines[1] == "first command" and lines[3] == "second command"
    assert lines[0].startswith("$ ") and lines[2].startswith("$ ")


LEAVES_ONE_BEHIND = [
    sys.executable,
    "-c",
    "import subprocess, sys\n"
    "p = subprocess.Popen(['sleep', '300'], stdout=subprocess.DEVNULL if sys.argv[1] == 'quiet'"
    " else None)\n"
    "open(f'left-{sys.argv[1]}.pid', 'w').write(str(p.pid))\n"
    "print('left one behind')\n",
]


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# One command whose leftover holds the output pipe, one whose leftover does not; each is
# stopped when its own command ends.
LEAVES_TWO_BEHIND = f"""\
[demo_suite]
cites = "demo: demo_suite()"
steps = [
  {{ run = {toml_argv([*LEAVES_ONE_BEHIND, "loud"])} }},
  {{ run = {toml_argv([*LEAVES_ONE_BEHIND, "quiet"])} }},
]
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_command_leaves_nothing_running(pytester: pytest.Pytester, make_suites: Any) -> None:
    """With the output captured, and live (-s): two runs, side by side."""
    suites = make_suites(files={"demo.toml": LEAVES_TWO_BEHIND})
    modes = {"captured": [], "live-s": ["-s"]}
    checkouts = {mode: pytester.mkdir(f"checkout-{mode}") for mode in modes}
    demo = ["--torchci-config=demo", f"--torchci-suites={suites}"]
    results = runpytest_side_by_side(
        pytester,
        {
            mode: [*demo, f"--torchci-root={checkouts[mode]}", *extra]
            for mode, extra in modes.items()
        },
    )
    for mode, result in results.items():
        checkout = checkouts[mode]
        result.assert_outcomes(passed=1)
        for holds_output in ("loud", "quiet"):
            pid = int((checkout / f"left-{holds_output}.pid").read_text())
            assert not _running(pid), (
                f"{mode}: the {holds_output} command's background process outlived it"
            )


TALKER_SCRIPT = """\
import pathlib, sys
lines = int((pathlib.Path.cwd() / "lines.txt").read_text())
for i in range(lines):
    print(f"{sys.argv[1]} line {i} of this run's {lines}", flush=(i % 500 == 0))
"""


def test_rerun_under_xdist_leaves_each_log_holding_only_its_own_run(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Four suites side by side (-n 2), run twice in one checkout: 5,000 lines each
    (logs over 64 KiB, blanked by punching), then 3 lines. Each log is then exactly the
    second run's header and 3 lines: no earlier line, no zero byte, no other suite's."""
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "talker.py").write_text(TALKER_SCRIPT)
    (folder / "traits.toml").write_text(
        '[traits]\nconfig_t = { var = "TEST_CONFIG", glob = "t", help = "t" }\n'
    )
    names = ["a", "b", "c", "d"]
    calls = ", ".join(f'{{ call = "talker", args = ["{n}"] }}' for n in names)
    (folder / "routes.toml").write_text(
        f'[[route]]\ncites = "test.sh: t"\nwhen = "config_t"\ncalls = [{calls}]\n'
    )
    run = toml_argv([sys.executable, "-S", str(folder / "talker.py"), "$1"])
    (folder / "t.toml").write_text(
        f'[talker]\ncites = "test.sh: talker()"\nparams = ["name"]\nsteps = [{{ run = {run} }}]\n'
    )
    root = tmp_path / "checkout"
    root.mkdir()
    args = [
        "--torchci-config=t", f"--torchci-suites={folder}", f"--torchci-root={root}",
        f"--torchci-lock-dir={tmp_path / 'locks'}", "-n", "2",
    ]  # fmt: skip
    for lines in (5000, 3):
        (root / "lines.txt").write_text(str(lines))
        pytester.runpytest_subprocess(*args, timeout=120).assert_outcomes(passed=4)
    logs = root / "test" / "test-reports" / "torchci-logs"
    for name in names:
        data = (logs / f"talker[{name}].log").read_bytes()
        header, *rest = data.decode().splitlines()
        assert header.startswith("$ ") and b"\0" not in data
        assert rest == [f"{name} line {i} of this run's 3" for i in range(3)]

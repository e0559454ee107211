"""Real mode: one function of test.sh and the plugin's matching item, both run for real
on a checkout; their exit statuses and the test cases of the JUnit XML each produced are
compared.

The function runs in a clean bash that sources only the function definitions of the
script and of the helpers beside it (none of their top-level code runs), with the
variables the plugin's prelude gives the job at that call.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.loader import SuiteData
from ..data.model import Job
from ..plan.planner import Unit, plan_job
from ..run.junit import is_synthetic
from .trace import function_blocks

__all__ = ["RealResult", "junit_cases", "real_run"]

DRIVER = """# pytest-torchci real-mode driver: the script's functions, then one call.
set -e -o pipefail
source "$TORCHCI_FUNCTIONS"
"$@"
"""
_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


@dataclass(frozen=True)
class RealResult:
    returncode: int
    cases: frozenset[tuple[str, str, str]]
    seconds: float


def junit_cases(
    root: Path, since: float, exclude: Sequence[Path] = ()
) -> frozenset[tuple[str, str, str]]:
    """(classname, name, outcome) of every testcase in XML written under
    ``root/test/test-reports`` since ``since``."""
    reports = root / "test" / "test-reports"
    cases: set[tuple[str, str, str]] = set()
    if not reports.is_dir():
        return frozenset()
    skip = {p.resolve() for p in exclude}
    for xml in reports.rglob("*.xml"):
        if xml.resolve() in skip or xml.stat().st_mtime < since or xml.name.endswith(".report.xml"):
            continue
        try:
            tree = ET.parse(xml)
        except ET.ParseError:
            continue
        if is_synthetic(tree.getroot()):
            continue  # the plugin's stand-in for a suite that wrote none: test.sh has none
        for case in tree.iter("testcase"):
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    break
            cases.add((case.get("classname", ""), case.get("name", ""), outcome))
    return frozenset(cases)


def _helpers_text(test_sh: Path) -> str:
    parts = []
    for path in sorted(test_sh.parent.glob("*.sh")):
        if path.name != test_sh.name:
            parts.extend(function_blocks(path.read_text(encoding="utf-8", errors="replace")))
    parts.extend(function_blocks(test_sh.read_text(encoding="utf-8", errors="replace")))
    return "\n\n".join(parts) + "\n"


def real_run(args: argparse.Namespace, test_sh: Path, data: SuiteData, jobs: Sequence[Job]) -> int:
    """Run one function of ``test_sh`` and the plugin's matching item on a real checkout;
    compare how each ended and the test cases each wrote. 0: they agree."""
    if len(jobs) != 1 or not args.root or not args.call:
        print("error: --real-run takes one job (--config ...), --root and --call", file=sys.stderr)
        return 2
    if not _NAME.match(args.call):
        print(f"error: --call {args.call!r} is not a function name", file=sys.stderr)
        return 2
    root = Path(args.root).resolve()
    if not root.is_dir():
        print(f"error: --root {args.root}: no such folder", file=sys.stderr)
        return 2
    job = jobs[0]
    unit = _the_unit(data, job, root, args.call, args.args)
    if unit is None:
        return 2
    with tempfile.TemporaryDirectory(prefix="torchci-real-") as tmp:
        shell_result = _run_shell(test_sh, job, unit, root, Path(tmp), args.call)
        plugin_result = _run_plugin(job, unit, root, Path(tmp), args.suites)
    return _compare(args.call, unit, root, shell_result, plugin_result)


def _the_unit(
    data: SuiteData, job: Job, root: Path, call: str, args: Sequence[str] | None
) -> Unit | None:
    """The job's test call of ``call`` (with ``args``, where given), or None (said)."""
    job_plan = plan_job(data, job, root, base_env=dict(os.environ))
    wanted = tuple(args) if args is not None else None
    for u in job_plan.units:
        if u.entry.call == call and u.role == "test" and (wanted is None or u.step.args == wanted):
            return u
    calls = ", ".join(u.name for u in job_plan.units if u.role == "test") or "none"
    print(
        f"error: the job's route makes no test call {call!r}; its test calls: {calls}",
        file=sys.stderr,
    )
    return None


def _shell_env(job: Job, unit: Unit) -> dict[str, str]:
    """test.sh's environment at the call: the job's variables and the state before it."""
    env = dict(os.environ)
    env.update(job.variables())
    for name, value in unit.start.globals.items():
        env[name] = " ".join(value) if isinstance(value, tuple) else value
    for name, maybe in unit.start.env.items():
        if maybe is None:
            env.pop(name, None)
        else:
            env[name] = maybe
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def _run_shell(
    test_sh: Path, job: Job, unit: Unit, root: Path, tmpdir: Path, call: str
) -> RealResult:
    """The function itself, run by bash with test.sh's helpers defined."""
    env = _shell_env(job, unit)
    functions = tmpdir / "functions.sh"
    functions.write_text(_helpers_text(test_sh), encoding="utf-8")
    driver = tmpdir / "driver.sh"
    driver.write_text(DRIVER, encoding="utf-8")
    env["TORCHCI_FUNCTIONS"] = str(functions)
    start = time.time()
    shell = subprocess.run(
        ["bash", str(driver), call, *unit.step.args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return RealResult(shell.returncode, junit_cases(root, start), time.time() - start)


def _run_plugin(job: Job, unit: Unit, root: Path, tmpdir: Path, suites: str | None) -> RealResult:
    """The plugin's item for the same call, in a pytest run of its own."""
    junit = tmpdir / "plugin.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--torchci-config={job.test_config}",
        f"--torchci-build-env={job.build_environment}",
        f"--torchci-shard={job.shard}/{job.num_shards}",
        f"--torchci-root={root}",
        "--torchci-no-setup",
        f"--junitxml={junit}",
        f"torchci::{unit.name}",
    ]
    if suites:
        argv.append(f"--torchci-suites={Path(suites).resolve()}")
    time.sleep(0.01)
    start = time.time()
    plugin = subprocess.run(argv, cwd=tmpdir, stdin=subprocess.DEVNULL, check=False)
    cases = junit_cases(root, start, exclude=[junit])
    return RealResult(plugin.returncode, cases, time.time() - start)


def _compare(call: str, unit: Unit, root: Path, shell: RealResult, plugin: RealResult) -> int:
    same_status = (shell.returncode == 0) == (plugin.returncode == 0)
    same_cases = shell.cases == plugin.cases
    print(
        f"real run of {call} {' '.join(unit.step.args)} on {root}:\n"
        f"  test.sh: exit {shell.returncode}, {len(shell.cases)} test cases, "
        f"{shell.seconds:.1f} s\n"
        f"  plugin:  exit {plugin.returncode}, {len(plugin.cases)} test cases, "
        f"{plugin.seconds:.1f} s\n"
        f"  exit status {'agrees' if same_status else 'DIFFERS'}; "
        f"test cases {'agree' if same_cases else 'DIFFER'}"
    )
    for case in sorted(shell.cases - plugin.cases):
        print(f"    only test.sh: {case}")
    for case in sorted(plugin.cases - shell.cases):
        print(f"    only plugin:  {case}")
    return 0 if same_status and same_cases else 1

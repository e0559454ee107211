"""The plugin's overhead: N trivial suites (each runs `true`) through pytest-torchci,
against the same N commands in a bare `subprocess.run` loop, and against plain pytest
running the same command in N parametrized tests. Whole-process wall times, the median
of 7 rounds that each run every kind once; the per-item figures leave out each run's
start-up (its `--collect-only` time).

    python tests/benchmarks/overhead.py [N]

The last line reads `RESULT items=N plugin_s=.. bare_s=.. ratio=.. pytest_s=..
ratio_vs_pytest=.. ratio_vs_pytest_fresh=.. cpu_ratio_vs_pytest=..`: `ratio` is whole
runs (start-up included) against the bare loop; `ratio_vs_pytest` the plugin's per-item
wall time over plain pytest's (`_fresh`: in a checkout without earlier logs), and
`cpu_ratio_vs_pytest` the same in CPU time, which a noisy machine disturbs far less.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BARE = """
import subprocess, sys
for _ in range(int(sys.argv[1])):
    subprocess.run(["true"], check=True)
"""

PLAIN = """
import subprocess

import pytest


@pytest.mark.parametrize("i", range({n}))
def test_trivial(i):
    subprocess.run(["true"], check=True)
"""


def write_suites(folder: Path, n: int) -> None:
    folder.mkdir()
    (folder / "traits.toml").write_text(
        '[traits]\nbench = { var = "TEST_CONFIG", glob = "bench", help = "the benchmark" }\n'
    )
    calls = ", ".join(f'{{ call = "trivial", args = ["{i}"] }}' for i in range(n))
    (folder / "routes.toml").write_text(
        textwrap.dedent(
            f"""
            [[route]]
            cites = "the benchmark's one branch"
            when = "bench"
            calls = [{calls}]
            """
        )
    )
    (folder / "bench.toml").write_text(
        textwrap.dedent(
            """
            [trivial]
            cites = "a suite that runs true"
            params = ["i"]
            steps = [{ run = ["true"] }]
            """
        )
    )


CPU: dict[tuple[str, ...], list[float]] = {}


def timed(argv: list[str], cwd: Path) -> float:
    """Wall time of one run; its CPU time (user + system, the run and every process it
    started) is kept in CPU, which a busy or shared machine disturbs far less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(tuple(argv), []).append(used)
    return wall


def cpu(argv: list[str]) -> float:
    return statistics.median(CPU[tuple(argv)])


ROUNDS = 7


def per_item(full: list[float], collect: list[float], n: int) -> float:
    """Seconds per item: the median run less the median start-up, over ``n``."""
    return (statistics.median(full) - statistics.median(collect)) / n


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    work = Path(tempfile.mkdtemp(prefix="torchci-bench-"))
    try:
        write_suites(work / "suites", n)
        (work / "checkout").mkdir()
        (work / "bare.py").write_text(BARE)
        plugin_argv = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--torchci-config=bench", f"--torchci-suites={work / 'suites'}",
            f"--torchci-root={work / 'checkout'}", f"--torchci-lock-dir={work / 'locks'}",
        ]  # fmt: skip
        bare_argv = [sys.executable, str(work / "bare.py"), str(n)]
        (work / "plain").mkdir()
        (work / "plain" / "test_plain.py").write_text(PLAIN.replace("{n}", str(n)))
        plain_argv = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py",
        ]  # fmt: skip
        # As an installed package would be: byte-compiled (PYTHONDONTWRITEBYTECODE, where
        # set, would otherwise make every run compile the plugin from source).
        import compileall

        import pytest_torchci

        compileall.compile_dir(str(Path(pytest_torchci.__file__).parent), quiet=1)
        timed(plugin_argv, work)  # warm the caches once
        timed(plain_argv, work / "plain")
        # Round after round, each kind of run once: a machine that slows down or speeds
        # up meanwhile (a shared one does) weighs on every kind alike.
        walls: dict[str, list[float]] = {}
        runs = {
            "plugin": (plugin_argv, work),
            "plugin_collect": ([*plugin_argv, "--collect-only"], work),
            "pytest": (plain_argv, work / "plain"),
            "pytest_collect": ([*plain_argv, "--collect-only"], work / "plain"),
            "bare": (bare_argv, work),
            "empty": ([sys.executable, "-c", "pass"], work),
        }
        for k in range(ROUNDS):
            for name, (argv, cwd) in runs.items():
                walls.setdefault(name, []).append(timed(argv, cwd))
            # A checkout no earlier run wrote logs into, as in CI.
            (work / f"fresh{k}").mkdir()
            fresh = [*plugin_argv, f"--torchci-root={work / f'fresh{k}'}"]
            walls.setdefault("fresh", []).append(timed(fresh, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in walls.items()}
    print(
        f"start-up: pytest with the plugin, collecting the {n} items: "
        f"{median['plugin_collect']:.3f} s; bare python: {median['empty']:.3f} s "
        f"(medians of {ROUNDS} interleaved rounds)"
    )
    item = per_item(walls["plugin"], walls["plugin_collect"], n)
    fresh_item = per_item(walls["fresh"], walls["plugin_collect"], n)
    pytest_item = per_item(walls["pytest"], walls["pytest_collect"], n)
    bare_item = per_item(walls["bare"], walls["empty"], n)
    print(
        f"per item: plugin {item * 1000:.2f} ms ({fresh_item * 1000:.2f} ms in a fresh "
        f"checkout), plain pytest {pytest_item * 1000:.2f} ms, "
        f"bare subprocess.run {bare_item * 1000:.2f} ms"
    )
    cpu_item = (cpu(plugin_argv) - cpu([*plugin_argv, "--collect-only"])) / n
    cpu_pytest = (cpu(plain_argv) - cpu([*plain_argv, "--collect-only"])) / n
    print(f"CPU per item: plugin {cpu_item * 1000:.2f} ms, plain pytest {cpu_pytest * 1000:.2f} ms")
    ratio = median["plugin"] / median["bare"]
    print(
        f"RESULT items={n} plugin_s={median['plugin']:.3f} bare_s={median['bare']:.3f} "
        f"ratio={ratio:.2f} pytest_s={median['pytest']:.3f} "
        f"ratio_vs_pytest={item / pytest_item:.2f} "
        f"ratio_vs_pytest_fresh={fresh_item / pytest_item:.2f} "
        f"cpu_ratio_vs_pytest={cpu_item / cpu_pytest:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

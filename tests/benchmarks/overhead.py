"""The plugin's overhead: N trivial suites (each runs `true`) through pytest-torchci,
against the same N commands in a bare `subprocess.run` loop, and against plain pytest
running the same command in N parametrized tests.

    python tests/benchmarks/overhead.py [N]

Two measures of what an item costs, each run with a small probe plugin (`-p`):

- an item's own time: from its setup to its teardown (pytest's whole protocol for it:
  setup, call, teardown, reports), wall and CPU (the run's thread and the processes it
  started), the median over the run's items. A shared machine's slow moments hit a few
  items of a run, not the median one.
- an extra item's time: whole processes, each kind of run with N items and with 10, the
  difference over N - 10. Start-up cancels out; collecting each item stays in, on both
  sides. Wall times on a shared VM drift by a factor of 2, so this one is noisy.

Each round runs every kind once, in a shuffled order; the figures are medians over 11
rounds. The plugin runs in a checkout that earlier runs left their logs in (as on a
developer's machine) and, `fresh`, in one no run wrote into (as in CI: each suite's log
file is made anew).

The last line reads `RESULT items=N plugin_s=.. bare_s=.. ratio=.. pytest_s=..
ratio_vs_pytest=.. ratio_vs_pytest_fresh=.. cpu_ratio_vs_pytest=.. whole_ratio_vs_pytest=..`:
`ratio` is whole runs of N items against the bare loop; `ratio_vs_pytest` an item's own
wall time over plain pytest's (`_fresh`: in the fresh checkout); `cpu_ratio_vs_pytest` the
same in CPU time; `whole_ratio_vs_pytest` an extra item's time over plain pytest's.
"""

from __future__ import annotations

import json
import os
import random
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

# Each item's wall and CPU time (this thread's, and its children's) from its setup to its
# teardown, written as JSON where TORCHCI_BENCH_PROBE says.
PROBE = """
import json, os, resource, time

import pytest

ITEMS = []


def _cpu():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: every plugin's part counts
def pytest_runtest_protocol(item, nextitem):
    wall, cpu = time.perf_counter(), _cpu()
    try:
        return (yield)
    finally:
        ITEMS.append((time.perf_counter() - wall, _cpu() - cpu))


def pytest_sessionfinish(session):
    with open(os.environ["TORCHCI_BENCH_PROBE"], "w") as f:
        json.dump(ITEMS, f)
"""

ROUNDS = 11
FEW = 10
WARM_UP = 10  # the first items of a run, left out of its median


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


class Runs:
    """The kinds of run, by name, and what each measured, round after round."""

    def __init__(self, work: Path, n: int) -> None:
        self.work = work
        self.kinds: dict[str, tuple[list[str], Path]] = {}
        self.walls: dict[str, list[float]] = {}  # whole processes
        self.items: dict[str, list[tuple[float, float]]] = {}  # an item's (wall, CPU)
        (work / "probe").mkdir()
        (work / "probe" / "torchci_bench_probe.py").write_text(PROBE)
        (work / "checkout").mkdir()
        (work / "bare.py").write_text(BARE)
        for size, tag in ((n, "many"), (FEW, "few")):
            write_suites(work / f"suites-{tag}", size)
            (work / f"plain-{tag}").mkdir()
            (work / f"plain-{tag}" / "test_plain.py").write_text(PLAIN.replace("{n}", str(size)))
            self.kinds[f"plugin_{tag}"] = (self.plugin(f"suites-{tag}", "checkout"), work)
            self.kinds[f"pytest_{tag}"] = (self.pytest(), work / f"plain-{tag}")
        self.kinds["bare"] = ([sys.executable, str(work / "bare.py"), str(n)], work)

    def plugin(self, suites: str, root: str) -> list[str]:
        return [
            *self.pytest()[:-1], "--torchci-config=bench",
            f"--torchci-suites={self.work / suites}", f"--torchci-root={self.work / root}",
            f"--torchci-lock-dir={self.work / 'locks'}",
        ]  # fmt: skip

    @staticmethod
    def pytest() -> list[str]:
        return [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "torchci_bench_probe", "test_plain.py",
        ]  # fmt: skip

    def run(self, name: str, argv: list[str], cwd: Path) -> None:
        out = self.work / "probe.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(self.work / "probe"), os.environ.get("PYTHONPATH")) if p
            ),
            "TORCHCI_BENCH_PROBE": str(out),
        }
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        self.walls.setdefault(name, []).append(time.perf_counter() - start)
        if out.exists():
            items = json.loads(out.read_text())[WARM_UP:]
            out.unlink()
            if items:
                wall = statistics.median(w for w, _ in items)
                cpu = statistics.median(c for _, c in items)
                self.items.setdefault(name, []).append((wall, cpu))

    def round(self, k: int) -> None:
        # Checkouts no earlier run wrote logs into, as in CI.
        for tag in ("many", "few"):
            (self.work / f"fresh-{tag}{k}").mkdir()
            self.kinds[f"fresh_{tag}"] = (
                self.plugin(f"suites-{tag}", f"fresh-{tag}{k}"),
                self.work,
            )
        order = list(self.kinds.items())
        random.Random(k).shuffle(order)  # what one kind leaves behind (the disk writing
        for name, (argv, cwd) in order:  # back new files) slows no kind always
            self.run(name, argv, cwd)

    def item(self, name: str, which: int) -> float:
        """The median over rounds of an item's own wall (0) or CPU (1) time."""
        return statistics.median(pair[which] for pair in self.items[name])

    def extra_item(self, kind: str) -> float:
        """A run of N items less a run of FEW: the median of each round's difference."""
        many, few = self.walls[f"{kind}_many"], self.walls[f"{kind}_few"]
        return statistics.median(a - b for a, b in zip(many, few, strict=True))


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    if n <= FEW + WARM_UP:
        sys.exit(f"overhead.py: N must be over {FEW + WARM_UP}")
    # As an installed package would be: byte-compiled (PYTHONDONTWRITEBYTECODE, where
    # set, would otherwise make every run compile the plugin from source).
    import compileall

    import pytest_torchci

    compileall.compile_dir(str(Path(pytest_torchci.__file__).parent), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="torchci-bench-"))
    try:
        runs = Runs(work, n)
        for name in ("plugin_many", "pytest_many"):  # warm the caches once
            runs.run("warm-up", *runs.kinds[name])
        for k in range(ROUNDS):
            runs.round(k)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(runs, n)
    return 0


def report(runs: Runs, n: int) -> None:
    ms = {name: runs.item(name, 0) * 1000 for name in ("plugin_many", "fresh_many", "pytest_many")}
    cpu = {name: runs.item(name, 1) * 1000 for name in ("plugin_many", "pytest_many")}
    extra = {k: runs.extra_item(k) / (n - FEW) * 1000 for k in ("plugin", "fresh", "pytest")}
    whole = {name: statistics.median(runs.walls[name]) for name in runs.walls}
    print(f"medians of {ROUNDS} rounds, each kind of run once per round in a shuffled order")
    print(
        f"an item, setup to teardown: plugin {ms['plugin_many']:.2f} ms "
        f"({ms['fresh_many']:.2f} ms in a fresh checkout), plain pytest "
        f"{ms['pytest_many']:.2f} ms; CPU {cpu['plugin_many']:.2f} ms against "
        f"{cpu['pytest_many']:.2f} ms"
    )
    print(
        f"an extra item, whole runs of {n} and {FEW} items: plugin {extra['plugin']:.2f} ms "
        f"({extra['fresh']:.2f} ms fresh), plain pytest {extra['pytest']:.2f} ms"
    )
    print(
        f"RESULT items={n} plugin_s={whole['plugin_many']:.3f} bare_s={whole['bare']:.3f} "
        f"ratio={whole['plugin_many'] / whole['bare']:.2f} "
        f"pytest_s={whole['pytest_many']:.3f} "
        f"ratio_vs_pytest={ms['plugin_many'] / ms['pytest_many']:.2f} "
        f"ratio_vs_pytest_fresh={ms['fresh_many'] / ms['pytest_many']:.2f} "
        f"cpu_ratio_vs_pytest={cpu['plugin_many'] / cpu['pytest_many']:.2f} "
        f"whole_ratio_vs_pytest={extra['plugin'] / extra['pytest']:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())

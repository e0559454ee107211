"""Parallel suites on a declared 8-GPU host.

Fake suites of known durations and device needs, shaped like a real job (many 1-GPU
suites, some 2- and 4-GPU ones, one long one), run through pytest with `-n 8`, each
leasing its devices. Prints the makespan (first suite start to last suite end), the
lower bound `max(total device-seconds / devices, longest suite)`, and the serial time
test.sh would take (the sum of the durations).

    python tests/benchmarks/devices.py [SCALE]

SCALE multiplies every duration (default 3.0: suites of 1.5 to 18 s, so that pytest's own
per-item time, about 0.1 s on a loaded 2-core machine, does not swamp them). The last line reads
`RESULT makespan=.. lower_bound=.. ratio=.. serial=.. speedup=..`.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

DEVICES = 8
RECORD = textwrap.dedent(
    """
    import json, os, sys, time
    name, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    start = time.time()
    time.sleep(seconds)
    with open(out, "a") as f:
        f.write(json.dumps({"name": name, "start": start, "end": time.time(),
                            "devices": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\\n")
    """
)


def job(scale: float) -> list[tuple[str, int, float]]:
    """(name, devices, seconds) for every suite of the fake job."""
    rng = random.Random(7)
    suites = [(f"g1_{i}", 1, round(rng.uniform(0.5, 2.0) * scale, 2)) for i in range(32)]
    suites += [(f"g2_{i}", 2, round(rng.uniform(1.0, 1.5) * scale, 2)) for i in range(6)]
    suites += [(f"g4_{i}", 4, round(1.5 * scale, 2)) for i in range(2)]
    suites += [("long", 1, round(6.0 * scale, 2))]
    return suites


def write_suites(folder: Path, suites: list[tuple[str, int, float]], out: Path) -> None:
    folder.mkdir(parents=True)
    recorder = folder / "record.py"
    recorder.write_text(RECORD)
    (folder / "traits.toml").write_text(
        "[traits]\n"
        'cuda = { var = "BUILD_ENVIRONMENT", glob = "*cuda*", help = "CUDA" }\n'
        'bench = { var = "TEST_CONFIG", glob = "bench", help = "the benchmark" }\n'
    )
    calls = ", ".join(f'{{ call = "g{d}", args = ["{n}", "{s}"] }}' for n, d, s in suites)
    (folder / "routes.toml").write_text(
        f'[[route]]\ncites = "the benchmark"\nwhen = "bench"\ncalls = [{calls}]\n'
    )
    run = f'["{sys.executable}", "{recorder}", "$1", "$2", "{out}"]'
    (folder / "bench.toml").write_text(
        "".join(
            f'[g{d}]\ncites = "a fake {d}-GPU suite"\nparams = ["name", "seconds"]\n'
            f"devices = {d}\nsteps = [{{ run = {run} }}]\n\n"
            for d in (1, 2, 4)
        )
    )


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--trace"]
    scale = float(args[0]) if args else 3.0
    suites = job(scale)
    work = Path(tempfile.mkdtemp(prefix="torchci-devices-"))
    try:
        out = work / "records.jsonl"
        write_suites(work / "suites", suites, out)
        (work / "checkout").mkdir()
        store = work / "durations.json"
        store.write_text(json.dumps({"durations": {f"g{d}[{n}-{s}]": s for n, d, s in suites}}))
        argv = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(DEVICES),
            "--torchci-config=bench", "--torchci-build-env=linux-cuda12-py3",
            f"--torchci-suites={work / 'suites'}", f"--torchci-root={work / 'checkout'}",
            f"--torchci-devices=cuda:{DEVICES}", f"--torchci-lock-dir={work / 'locks'}",
            f"--torchci-durations={store}",
        ]  # fmt: skip
        proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-2000:])
            return 1
        records = [json.loads(line) for line in out.read_text().splitlines()]
        if "--trace" in sys.argv:
            t0 = min(r["start"] for r in records)
            for r in sorted(records, key=lambda r: r["start"]):
                print(f"{r['start'] - t0:6.2f} {r['end'] - t0:6.2f} {r['devices']:>8} {r['name']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    makespan = max(r["end"] for r in records) - min(r["start"] for r in records)
    device_seconds = sum(d * s for _, d, s in suites)
    longest = max(s for _, _, s in suites)
    bound = max(device_seconds / DEVICES, longest)
    serial = sum(s for _, _, s in suites)
    print(
        f"{len(suites)} suites on cuda:{DEVICES}: {device_seconds:.1f} device-seconds, "
        f"longest {longest:.1f} s"
    )
    print(
        f"RESULT makespan={makespan:.2f} lower_bound={bound:.2f} ratio={makespan / bound:.3f} "
        f"serial={serial:.2f} speedup={serial / makespan:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a report folder's history costs: N trivial suites with no XML files in
`test/test-reports`, and again with FILES files already there (PyTorch's layout: a folder
per test file under `python-pytest/`, two XML files in each). Whole-process wall times.

    python tests/benchmarks/reports.py [N] [FILES]

The last line reads `RESULT items=N files=FILES empty_s=.. full_s=.. ratio=..`
(`ratio` = full_s / empty_s).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import write_suites  # type: ignore[import-not-found]


def fill(reports: Path, files: int) -> None:
    for k in range(files // 2):
        folder = reports / "python-pytest" / f"test_file_{k}"
        folder.mkdir(parents=True)
        for _ in range(2):
            case = f'<testcase classname="T{k}" name="test_{k}" time="0.1"/>'
            text = f'<testsuites><testsuite name="pytest" tests="1">{case}</testsuite></testsuites>'
            (folder / f"test_file_{k}-{secrets.token_hex(8)}.xml").write_text(text)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    work = Path(tempfile.mkdtemp(prefix="torchci-bench-"))
    try:
        write_suites(work / "suites", n)
        times = {}
        for label, count in (("empty", 0), ("full", files)):
            checkout = work / label
            (checkout / "test" / "test-reports").mkdir(parents=True)
            fill(checkout / "test" / "test-reports", count)
            argv = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--torchci-config=bench", f"--torchci-suites={work / 'suites'}",
                f"--torchci-root={checkout}", f"--torchci-lock-dir={work / 'locks'}",
            ]  # fmt: skip
            timed(argv, work)  # warm the caches once
            times[label] = min(timed(argv, work) for _ in range(5))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    empty_s, full_s = times["empty"], times["full"]
    print(f"{n} trivial items: {empty_s:.3f} s with no XML files, {full_s:.3f} s with {files}")
    print(
        f"RESULT items={n} files={files} empty_s={empty_s:.3f} full_s={full_s:.3f} "
        f"ratio={full_s / empty_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

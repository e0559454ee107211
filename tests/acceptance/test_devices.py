"""Devices: declared specs, discovery limits, leases across processes, hardware gating.

No GPU is needed: the host's devices are declared (--torchci-devices), and fake suites
record what they saw."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_torchci import plugin as entry_point
from pytest_torchci.devices.discovery import Device, DeviceSpecError, Host, parse_device_spec
from pytest_torchci.devices.leases import LeaseError, LeaseManager, Need

from ..conftest import Background, run_inprocess

RECORDER = textwrap.dedent(
    """
    import json, os, sys, time
    name, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    rec = {"name": name, "seen": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "hip": os.environ.get("HIP_VISIBLE_DEVICES"), "ze": os.environ.get("ZE_AFFINITY_MASK"),
           "start": time.time(), "worker_pid": os.getppid(), "pid": os.getpid()}
    if len(sys.argv) > 4:  # whole or not there: a reader never sees it half written
        with open(sys.argv[4] + ".part", "w") as f:
            json.dump(rec, f)
        os.replace(sys.argv[4] + ".part", sys.argv[4])
    time.sleep(seconds)
    rec["end"] = time.time()
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\\n")
    """
)


def write_fake_suites(
    folder: Path, calls: list[tuple[str, str]], *, extra: str = "", out: Path
) -> Path:
    """A suites folder: `fake1` (1 device), `fake2` (2 devices), `h100` (H100 only),
    each recording (name, devices seen, start, end) to ``out``."""
    folder.mkdir(parents=True, exist_ok=True)
    recorder = folder / "recorder.py"
    recorder.write_text(RECORDER)
    (folder / "traits.toml").write_text(
        "[traits]\n"
        'cuda = { var = "BUILD_ENVIRONMENT", glob = "*cuda*", help = "CUDA" }\n'
        'rocm = { var = "BUILD_ENVIRONMENT", glob = "*rocm*", help = "ROCm" }\n'
        'xpu = { var = "BUILD_ENVIRONMENT", glob = "*xpu*", help = "XPU" }\n'
        'config_fake = { var = "TEST_CONFIG", glob = "fake", help = "the fake config" }\n'
    )
    entries = ", ".join(f'{{ call = "{suite}", args = ["{arg}"] }}' for suite, arg in calls)
    (folder / "routes.toml").write_text(
        f'[[route]]\ncites = "test.sh: fake"\nwhen = "config_fake"\ncalls = [{entries}]\n'
    )
    # -S: the recorder needs the standard library only; without site it starts sooner.
    run = f'["{sys.executable}", "-S", "{recorder}", "$1", "@seconds($1)", "{out}", "@pidfile($1)"]'
    suites = ""
    for name, devices, more in (
        ("fake1", 1, ""),
        ("fake2", 2, ""),
        ("h100", 1, 'hardware = ["H100"]'),
    ):
        suites += (
            f'[{name}]\ncites = "test.sh: {name}()"\nparams = ["name"]\ndevices = {devices}\n'
            f"{more}\nsteps = [{{ run = {run} }}]\n\n"
        )
    (folder / "fake.toml").write_text(suites + extra)
    return folder


@pytest.fixture(autouse=True)
def _natives_for_fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`@seconds(name)`: the part of the name after the last '-'; `@pidfile(name)`."""
    monkeypatch.setenv("TORCHCI_FAKE_DIR", str(tmp_path))


# The fake suites' natives live in a conftest the runs load (see conftest_text).
CONFTEST = textwrap.dedent(
    """
    import os
    from pytest_torchci.plan.natives import native

    @native("seconds")
    def _seconds(ctx, name):
        return name.rsplit("-", 1)[-1]

    @native("pidfile")
    def _pidfile(ctx, name):
        return os.path.join(os.environ["TORCHCI_FAKE_DIR"], f"{name}.pid")
    """
)


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


def start_pytest(background: Background, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``pytest ARGS`` in ``cwd``, not waited for (stopped at teardown if still running)."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return background.start(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_fake(pytester: pytest.Pytester, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A run in ``cwd``: in a subprocess under xdist (``-n``), whose processes are part of
    what is tested; in this process otherwise."""
    if "-n" in args:
        return run_pytest(cwd, *args)
    return run_inprocess(pytester, cwd, *args)


def run_fakes(
    pytester: pytest.Pytester, runs: list[tuple[Path, dict[str, str], list[str]]]
) -> list[subprocess.CompletedProcess[str]]:
    """Runs that do not depend on each other, each (cwd, variables to set, arguments):
    under xdist side by side, in subprocesses; otherwise one after the other, in this
    process (see run_fake)."""
    if not any("-n" in args for _, _, args in runs):
        done = []
        for cwd, env, args in runs:
            with pytest.MonkeyPatch.context() as mp:
                for name, value in env.items():
                    mp.setenv(name, value)
                done.append(run_inprocess(pytester, cwd, *args))
        return done
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cwd, env, args in runs
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    return [
        subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        for proc, (out, err) in zip(procs, outputs, strict=True)
    ]


def make_run_dir(base: Path, name: str) -> Path:
    run = base / name
    (run / "checkout").mkdir(parents=True)
    (run / "conftest.py").write_text(CONFTEST)
    return run


def common_args(
    suites: Path, run: Path, lock_dir: Path, devices: str, build: str = "linux-cuda12-py3"
) -> list[str]:
    return [
        "--torchci-config=fake",
        f"--torchci-build-env={build}",
        f"--torchci-suites={suites}",
        f"--torchci-root={run / 'checkout'}",
        f"--torchci-lock-dir={lock_dir}",
        f"--torchci-devices={devices}",
    ]


def fake_args(run: Path, suites: Path, locks: Path, devices: str = "cuda:2") -> list[str]:
    """The options of a run of `write_fake_suites`' config on a CUDA build."""
    return [
        "--torchci-config=fake",
        "--torchci-build-env=linux-cuda12-py3",
        f"--torchci-suites={suites}",
        f"--torchci-root={run / 'checkout'}",
        f"--torchci-lock-dir={locks}",
        f"--torchci-devices={devices}",
    ]


def devices_property(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).iter("testcase"):
        for prop in case.iter("property"):
            if prop.get("name") == "devices":
                out[case.get("name", "")] = prop.get("value", "")
    return out


def test_two_concurrent_runs_never_share_a_device_slot(
    tmp_path: Path, background: Background
) -> None:
    """Two pytest runs, each `-n 2` on declared cuda:2 (four workers for two devices, a
    third of the suites needing both), 12 fake suites in all: no two suites overlap on a
    device, and each child saw exactly its leased ids."""
    out, lock_dir = tmp_path / "records.jsonl", tmp_path / "locks"
    procs, runs = [], []
    for r in range(2):
        calls = [("fake2" if i % 4 == 0 else "fake1", f"r{r}s{i}-0.2") for i in range(6)]
        run = make_run_dir(tmp_path, f"run{r}")
        suites = write_fake_suites(run / "suites", calls, out=out)
        args = common_args(suites, run, lock_dir, "cuda:2")
        procs.append(
            start_pytest(background, run, *args, "-n", "2", f"--junitxml={run / 'out.xml'}")
        )
        runs.append(run)
    for proc in procs:
        output, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12
    leased: dict[str, str] = {}
    for run in runs:
        leased.update(devices_property(run / "out.xml"))
    by_device: dict[str, list[tuple[float, float]]] = {}
    for rec in records:
        index = int(rec["name"].split("-")[0].split("s")[1])
        item = f"{'fake2' if index % 4 == 0 else 'fake1'}[{rec['name']}]"
        assert leased[item] == f"cuda:{rec['seen']}"
        ids = rec["seen"].split(",")
        assert len(ids) == (2 if item.startswith("fake2") else 1)
        for device in ids:
            by_device.setdefault(device, []).append((rec["start"], rec["end"]))
    assert set(by_device) <= {"0", "1"}
    for intervals in by_device.values():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end - 0.01, "two suites ran on one device at once"


def test_a_killed_worker_leaves_no_lease(tmp_path: Path, background: Background) -> None:
    """SIGKILL the xdist worker in the middle of a suite: the kernel drops its locks and
    a suite waiting for that device starts at once (well within the 60 s it was held)."""
    out, lock_dir = tmp_path / "records.jsonl", tmp_path / "locks"
    run_a = make_run_dir(tmp_path, "a")
    suites_a = write_fake_suites(run_a / "suites", [("fake1", "hold-60")], out=out)
    start_pytest(background, run_a, *common_args(suites_a, run_a, lock_dir, "cuda:1"), "-n", "1")
    pidfile = tmp_path / "hold-60.pid"
    deadline = time.time() + 60
    while not pidfile.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert pidfile.exists(), "the holding suite never started"
    held = json.loads(pidfile.read_text())

    run_b = make_run_dir(tmp_path, "b")
    suites_b = write_fake_suites(run_b / "suites", [("fake1", "next-0.1")], out=out)
    proc_b = start_pytest(
        background, run_b, *common_args(suites_b, run_b, lock_dir, "cuda:1"), "-n", "1"
    )
    # b is up and waiting for the device a holds: its request is in the queue.
    queue = lock_dir / "cuda.waiting"
    deadline = time.time() + 60
    while not list(queue.glob("*.wait")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(queue.glob("*.wait")), "b never asked for the device"
    assert not (tmp_path / "next-0.1.pid").exists(), "b did not wait for the lease"
    killed_at = time.time()
    os.kill(held["worker_pid"], signal.SIGKILL)
    try:
        output_b, _ = proc_b.communicate(timeout=60)
        assert proc_b.returncode == 0, output_b
        started = json.loads((tmp_path / "next-0.1.pid").read_text())["start"]
        # The lease passes on at once (the holder would have held it 60 s); the bound
        # leaves room for the waiting run's poll and the recorder's start on a busy host.
        assert started - killed_at < 3.0
    finally:
        with contextlib.suppress(ProcessLookupError):  # the run's sweep may have stopped it
            os.kill(held["pid"], signal.SIGKILL)


@pytest.mark.parametrize(
    ("devices", "outcome", "reason"),
    [
        ("cuda:4", "skipped", "needs H100 hardware; the host has cuda:4"),
        ("cuda:8xH100", "passed", None),
        ("none", "skipped", "needs 1 cuda device; the host has no accelerator"),
    ],
)
def test_h100_suites_need_h100(
    pytester: pytest.Pytester, tmp_path: Path, devices: str, outcome: str, reason: str | None
) -> None:
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(run / "suites", [("h100", "h-0")], out=tmp_path / "r.jsonl")
    proc = run_fake(pytester, run, *common_args(suites, run, tmp_path / "locks", devices), "-rs")
    assert f"1 {outcome}" in proc.stdout, proc.stdout
    if reason:
        assert reason in proc.stdout


def test_require_devices_fails_instead_of_skipping(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(run / "suites", [("h100", "h-0")], out=tmp_path / "r.jsonl")
    args = common_args(suites, run, tmp_path / "locks", "cuda:4")
    proc = run_fake(pytester, run, *args, "--torchci-require-devices")
    assert proc.returncode == 1
    assert "needs H100 hardware" in proc.stdout and "--torchci-require-devices" in proc.stdout


@pytest.mark.parametrize(
    ("build", "devices", "outcome", "variable"),
    [
        ("linux-xpu-py3", "cuda:4", "skipped", None),
        ("linux-xpu-py3", "xpu:2", "passed", "ze"),
        ("linux-rocm-py3", "cuda:4", "skipped", None),
        ("linux-rocm-py3", "rocm:2", "passed", "hip"),
    ],
)
def test_xpu_and_rocm_suites_need_their_devices(
    pytester: pytest.Pytester,
    tmp_path: Path,
    build: str,
    devices: str,
    outcome: str,
    variable: str | None,
) -> None:
    """A suite that runs gets a lease (under xdist) and sees its devices by its kind's
    variable; one whose kind the host lacks is skipped, with or without xdist (here
    without: the same check, before any lease)."""
    out = tmp_path / "r.jsonl"
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(run / "suites", [("fake1", "x-0")], out=out)
    workers = ["-n", "1"] if variable else []
    args = common_args(suites, run, tmp_path / "locks", devices, build)
    proc = run_fake(pytester, run, *args, *workers, "-rs")
    assert f"1 {outcome}" in proc.stdout, proc.stdout
    if variable:
        (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert rec[variable] in ("0", "1")
    else:
        kind = build.split("-")[1]
        assert f"needs 1 {kind} device" in proc.stdout


def test_without_xdist_the_job_keeps_its_device_environment(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """No -n: no lease; the plan's own variables stand (test.sh's CUDA_VISIBLE_DEVICES)."""
    out = tmp_path / "r.jsonl"
    run = make_run_dir(tmp_path, "run")
    extra = ""
    suites = write_fake_suites(run / "suites", [("fake1", "plain-0")], out=out, extra=extra)
    prelude = '[prelude]\nsteps = [{ export = { CUDA_VISIBLE_DEVICES = "0" } }]\n'
    (suites / "prelude.toml").write_text(prelude)
    proc = run_fake(pytester, run, *common_args(suites, run, tmp_path / "locks", "cuda:4"))
    assert proc.returncode == 0, proc.stdout
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["seen"] == "0"


@pytest.mark.parametrize(
    ("spec", "kind", "ids", "model"),
    [
        ("cuda:4", "cuda", ["0", "1", "2", "3"], ""),
        ("cuda:0,2", "cuda", ["0", "2"], ""),
        ("rocm:8", "rocm", [str(i) for i in range(8)], ""),
        ("xpu:2", "xpu", ["0", "1"], ""),
        ("cuda:8xH100", "cuda", [str(i) for i in range(8)], "H100"),
        ("none", None, [], ""),
    ],
)
def test_device_specs(spec: str, kind: str | None, ids: list[str], model: str) -> None:
    host = parse_device_spec(spec)
    assert host.kind == kind
    assert [d.id for d in host.devices] == ids
    assert all(d.model == model for d in host.devices)


@pytest.mark.parametrize(
    "spec", ["gpu:4", "cuda", "cuda:", "cuda:x", "cuda:0,0", "cuda:4x", "cuda:-1"]
)
def test_bad_device_specs(spec: str) -> None:
    with pytest.raises(DeviceSpecError, match=r"not a device spec|listed twice"):
        parse_device_spec(spec)


def test_hardware_matches_model_or_capability() -> None:
    assert Device("0", "NVIDIA H100 80GB HBM3", "9.0").has("H100")
    assert Device("0", "", "9.0").has("sm90")
    assert Device("0", "", "9.0").has("H100")
    assert not Device("0", "NVIDIA A100", "8.0").has("H100")


def test_leases_are_all_or_nothing(tmp_path: Path) -> None:
    manager = LeaseManager(parse_device_spec("cuda:3"), tmp_path)
    one = manager.acquire(Need(1), "one")
    two = manager.acquire(Need(2), "two")
    assert set(one.ids) | set(two.ids) == {"0", "1", "2"}
    with pytest.raises(LeaseError, match="within"):
        manager.acquire(Need(1), "three", timeout=0.2)
    manager.release(one)
    three = manager.acquire(Need(1), "three", timeout=1)
    assert three.ids == one.ids
    with pytest.raises(LeaseError, match="needs 4 cuda devices"):
        manager.acquire(Need(4), "too many")


def test_light_suites_share_a_device(tmp_path: Path) -> None:
    manager = LeaseManager(parse_device_spec("cuda:1"), tmp_path, slots=2)
    a = manager.acquire(Need(1, exclusive=False), "a")
    b = manager.acquire(Need(1, exclusive=False), "b", timeout=1)
    assert a.ids == b.ids == ("0",)
    with pytest.raises(LeaseError):
        manager.acquire(Need(1), "whole", timeout=0.2)


def test_unwritable_lock_dir(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(LeaseError, match="cannot use it"):
        LeaseManager(parse_device_spec("cuda:1"), blocked / "locks")


def test_host_describes_itself() -> None:
    assert Host(None).describe() == "no accelerator"
    assert parse_device_spec("cuda:2xH100").describe() == "cuda:2 (H100)"


def test_n_auto_sizes_to_device_slots(tmp_path: Path) -> None:
    """``-n auto`` starts one worker per device slot: 1 device x 3 slots (neither the CPU
    count nor the device count); the sizes the plugin asks xdist for, case by case: the
    test below."""
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(run / "suites", [("fake1", "a-0")], out=tmp_path / "r.jsonl")
    proc = run_pytest(
        run, *common_args(suites, run, tmp_path / "locks", "cuda:1"),
        "--torchci-slots-per-device=3", "-n", "auto",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert "created: 3/3 workers" in proc.stdout


@pytest.mark.parametrize(
    ("devices", "slots", "workers"), [("cuda:4", 1, 4), ("cuda:2", 3, 6), ("none", 2, None)]
)
def test_n_auto_asks_for_a_worker_per_device_slot(
    pytester: pytest.Pytester, devices: str, slots: int, workers: int | None
) -> None:
    """What the plugin answers xdist's ``-n auto`` question with (None: no devices, so
    xdist counts CPUs)."""
    config = pytester.parseconfig(
        "--torchci-config=fake", f"--torchci-devices={devices}",
        f"--torchci-slots-per-device={slots}", "-n", "auto",
    )  # fmt: skip
    assert entry_point.pytest_xdist_auto_num_workers(config) == workers

"""On a host with a real NVIDIA GPU: discovery and leases against the hardware.

Marked ``gpu``; each test skips cleanly where `nvidia-smi` lists no GPU (select them with
``-m gpu``). Nothing here needs PyTorch: a CUDA process is made with the driver API
through ctypes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_torchci.devices import discovery as devices

from .test_devices import make_run_dir, run_pytest, write_fake_suites

pytestmark = pytest.mark.gpu


def _smi(query: str) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line]


@pytest.fixture
def gpus() -> list[list[str]]:
    """(index, name, pci.bus_id) of each GPU nvidia-smi lists; skips without one."""
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no nvidia-smi: not an NVIDIA GPU host")
    try:
        rows = _smi("index,name,pci.bus_id")
    except (OSError, subprocess.SubprocessError):
        pytest.skip("nvidia-smi lists no GPU")
    if not rows:
        pytest.skip("nvidia-smi lists no GPU")
    return rows


def test_nvml_discovery_sees_the_real_devices(gpus: list[list[str]]) -> None:
    pytest.importorskip("pynvml", reason="NVML's bindings (nvidia-ml-py) are not installed")
    host = devices.discover(environ={})
    assert host.kind == "cuda"
    assert [(d.id, d.model) for d in host.devices] == [(r[0], r[1]) for r in gpus]
    assert all(d.capability for d in host.devices)


def test_nvidia_smi_discovery_agrees(
    gpus: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if NVML's bindings were missing
    host = devices.discover(environ={})
    assert host.kind == "cuda" and host.source == "discovered (cuda)"
    assert [(d.id, d.model) for d in host.devices] == [(r[0], r[1]) for r in gpus]


# A CUDA process: how many devices it sees, and the PCI bus id of its device 0.
CUDA_PROBE = textwrap.dedent(
    """
    import ctypes, json, os, sys
    cuda = ctypes.CDLL("libcuda.so.1")
    assert cuda.cuInit(0) == 0
    count = ctypes.c_int()
    assert cuda.cuDeviceGetCount(ctypes.byref(count)) == 0
    device = ctypes.c_int()
    assert cuda.cuDeviceGet(ctypes.byref(device), 0) == 0
    bus = ctypes.create_string_buffer(64)
    assert cuda.cuDeviceGetPCIBusId(bus, 64, device) == 0
    with open(sys.argv[1], "w") as f:
        json.dump({"count": count.value, "bus": bus.value.decode(),
                   "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}, f)
    """
)


def test_a_lease_is_what_a_cuda_process_sees(gpus: list[list[str]], tmp_path: Path) -> None:
    """Discovered devices (no --torchci-devices), leased under xdist: the suite's CUDA
    process sees exactly the leased GPU, the one nvidia-smi lists under that index."""
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(run / "suites", [("fake1", "a-0")], out=tmp_path / "r.jsonl")
    probe = suites / "probe.py"
    probe.write_text(CUDA_PROBE)
    seen = tmp_path / "seen.json"
    text = (suites / "fake.toml").read_text()
    (suites / "fake.toml").write_text(
        text.replace(
            "steps = [{ run = [",
            f'steps = [{{ run = ["{sys.executable}", "{probe}", "{seen}"] }}, {{ run = [',
            1,
        )
    )
    proc = run_pytest(
        run, "--torchci-config=fake", "--torchci-build-env=linux-cuda12-py3",
        f"--torchci-suites={suites}", f"--torchci-root={run / 'checkout'}",
        f"--torchci-lock-dir={tmp_path / 'locks'}", "-n", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(seen.read_text())
    assert got["count"] == 1
    by_index = {r[0]: r[2] for r in gpus}
    assert got["visible"] in by_index
    assert by_index[got["visible"]].lower().endswith(got["bus"].lower()[-7:])

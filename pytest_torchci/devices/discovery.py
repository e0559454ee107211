"""The host's accelerators: declared (``--torchci-devices``) or discovered.

A host has one kind of device (``cuda``, ``rocm``, ``xpu``) and an ordered list of device
ids, each with a model and, for NVIDIA, a compute capability. A visibility variable the
caller already set (``CUDA_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``,
``ROCR_VISIBLE_DEVICES``, ``ZE_AFFINITY_MASK``) limits the list to its entries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "KINDS",
    "VISIBILITY",
    "Device",
    "DeviceSpecError",
    "Host",
    "discover",
    "parse_device_spec",
]

KINDS = ("cuda", "rocm", "xpu")
# The variable a child reads to see only its devices, by kind.
VISIBILITY = {
    "cuda": "CUDA_VISIBLE_DEVICES",
    "rocm": "HIP_VISIBLE_DEVICES",
    "xpu": "ZE_AFFINITY_MASK",
}
_CALLER_VISIBILITY = {
    "cuda": ("CUDA_VISIBLE_DEVICES",),
    "rocm": ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"),
    "xpu": ("ZE_AFFINITY_MASK",),
}
# Models by compute capability, for the hardware a suite may need.
_SM_MODELS = {"9.0": "H100", "10.0": "B200"}


class DeviceSpecError(ValueError):
    """A device spec that does not parse; the message shows the accepted forms."""


@dataclass(frozen=True)
class Device:
    """One device: its id as the visibility variable names it, model, capability."""

    id: str
    model: str = ""
    capability: str = ""

    def has(self, hardware: str) -> bool:
        """Whether this device is ``hardware`` (a model such as H100, or sm90)."""
        want = hardware.lower()
        if want.startswith("sm") and self.capability:
            return want == "sm" + self.capability.replace(".", "")
        model = self.model.lower()
        if not model and self.capability:
            model = _SM_MODELS.get(self.capability, "").lower()
        return bool(model) and want in model


@dataclass(frozen=True)
class Host:
    """The devices suites may lease, and where the list came from."""

    kind: str | None
    devices: tuple[Device, ...] = ()
    source: str = "none"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def count(self) -> int:
        return len(self.devices)

    def describe(self) -> str:
        if not self.devices or self.kind is None:
            return "no accelerator"
        models = sorted(
            {
                d.model or (f"sm{d.capability.replace('.', '')}" if d.capability else "")
                for d in self.devices
            }
            - {""}
        )
        text = f"{self.kind}:{self.count}"
        if models:
            text += " (" + ", ".join(models) + ")"
        return text

    def has(self, kind: str | None, hardware: str | None) -> bool:
        if kind is not None and kind != self.kind:
            return False
        if hardware is None:
            return True
        return any(d.has(hardware) for d in self.devices)

    def visibility_variable(self) -> str | None:
        return VISIBILITY.get(self.kind or "")


_SPEC = re.compile(r"^(?P<kind>[a-z]+):(?P<what>[0-9][0-9,]*)(?:x(?P<model>[A-Za-z0-9_.-]+))?$")


def parse_device_spec(spec: str, source: str = "--torchci-devices") -> Host:
    """``none``, ``cuda:4``, ``cuda:0,2``, ``rocm:8``, ``xpu:2``, ``cuda:8xH100``."""
    text = spec.strip()
    if text.lower() == "none":
        return Host(None, (), f"{source} {spec}")
    m = _SPEC.match(text)
    if m is None or m.group("kind") not in KINDS:
        raise DeviceSpecError(
            f"{source} {spec!r}: not a device spec; write none, KIND:COUNT, KIND:ID,ID,... "
            f"or KIND:COUNTxMODEL with KIND one of {', '.join(KINDS)} (e.g. cuda:4, cuda:0,2, "
            "rocm:8, xpu:2, cuda:8xH100)"
        )
    what, model = m.group("what"), m.group("model") or ""
    if "," in what:
        ids = [i for i in what.split(",") if i]
        if len(set(ids)) != len(ids):
            raise DeviceSpecError(f"{source} {spec!r}: a device id is listed twice")
    else:
        ids = [str(i) for i in range(int(what))]
    capability = {"h100": "9.0", "b200": "10.0"}.get(model.lower(), "")
    return Host(
        m.group("kind"),
        tuple(Device(i, model, capability) for i in ids),
        f"{source} {spec}",
    )


def _run(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _nvidia() -> list[Device] | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            devices = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(handle)
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                devices.append(
                    Device(
                        str(i), name if isinstance(name, str) else name.decode(), f"{major}.{minor}"
                    )
                )
            return devices
        except Exception:  # NVML present but unusable: fall back to nvidia-smi
            pass
    out = _run(["nvidia-smi", "--query-gpu=index,name,compute_cap", "--format=csv,noheader"])
    if out is None:
        return None
    devices = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            devices.append(Device(parts[0], parts[1], parts[2]))
    return devices


def _rocm() -> list[Device] | None:
    out = _run(["amd-smi", "list", "--csv"])
    if out is not None:
        rows = [r.split(",") for r in out.splitlines()[1:] if r.strip()]
        return [Device(r[0].strip(), "") for r in rows if r and r[0].strip().isdigit()]
    out = _run(["rocm-smi", "--showproductname", "--csv"])
    if out is not None:
        devices = []
        for row in out.splitlines()[1:]:
            cells = row.split(",")
            m = re.match(r"card(\d+)", cells[0]) if cells else None
            if m:
                devices.append(Device(m.group(1), cells[1].strip() if len(cells) > 1 else ""))
        return devices
    return None


def _xpu() -> list[Device] | None:
    out = _run(["xpu-smi", "discovery", "--dump", "1,2"])
    if out is not None:
        ids = [line.split(",")[0].strip() for line in out.splitlines()[1:] if line.strip()]
        return [Device(i) for i in ids if i.isdigit()]
    drm = "/sys/class/drm"
    if os.path.isdir(drm):
        found: list[Device] = []
        for name in sorted(os.listdir(drm)):
            if not re.fullmatch(r"card\d+", name):
                continue
            try:
                with open(os.path.join(drm, name, "device", "vendor")) as f:
                    if f.read().strip() == "0x8086":
                        found.append(Device(str(len(found))))
            except OSError:
                continue
        return found or None
    return None


def _limit(
    kind: str, devices: list[Device], environ: Mapping[str, str]
) -> tuple[list[Device], str | None]:
    for var in _CALLER_VISIBILITY[kind]:
        value = environ.get(var)
        if value is None:
            continue
        wanted = [v.strip() for v in value.split(",") if v.strip()]
        by_id = {d.id: d for d in devices}
        return [by_id.get(w, Device(w)) for w in wanted], var
    return devices, None


def discover(environ: Mapping[str, str] | None = None, prefer: str | None = None) -> Host:
    """Find the host's devices: NVIDIA (NVML or nvidia-smi), ROCm (amd-smi or rocm-smi),
    Intel XPU (xpu-smi or sysfs); the first kind found wins (``prefer`` first)."""
    env = os.environ if environ is None else environ
    probes = {"cuda": _nvidia, "rocm": _rocm, "xpu": _xpu}
    order = [prefer] if prefer in probes else []
    order += [k for k in ("cuda", "rocm", "xpu") if k not in order]
    for kind in order:
        found = probes[kind]()
        if found:
            devices, var = _limit(kind, found, env)
            source = f"discovered ({kind})" + (f", limited by {var}" if var else "")
            return Host(kind, tuple(devices), source)
    return Host(None, (), "discovered: no accelerator")

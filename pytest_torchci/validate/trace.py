"""Tracing a test.sh under stubs, in a throw-away sandbox shaped like a checkout.

The script and the helpers beside it are copied into the sandbox; the copy sources a
small library on its second line (errexit stays off) and, where its dispatch chain
begins, wraps every function so that each call is recorded with its arguments and depth.
Every external tool on PATH is a recording stub, and so is every executable file of a
mirrored checkout (``--tree``), which records the path it was run by; nothing outside the
sandbox changes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.model import Job
from ._bashlib import PROGRAM_STUB, STUB, STUB_TOOLS, TRACE_LIB
from .mirror import MirrorError, TreeMirror, apply_modes

__all__ = [
    "Trace",
    "TraceError",
    "build_sandbox",
    "find_dispatch_start",
    "function_blocks",
    "remove_sandbox",
    "run_trace",
    "sandbox_env",
    "trace_job",
]

_FUNC_START = re.compile(r"^(?:function\s+)?([A-Za-z_][\w:-]*)\s*\(\)\s*\{?\s*(?:#.*)?$")
_FUNC_KEYWORD = re.compile(r"^function\s+([A-Za-z_][\w:-]*)\s*\{?\s*(?:#.*)?$")
# Folders the script enters by a literal relative path exist in the sandbox (as in a
# checkout); a path built from a variable is left to the script.
_CD = re.compile(r"\b(?:cd|pushd)\s+\"?([A-Za-z0-9_.][A-Za-z0-9_./-]*)")
_PIN = re.compile(r"(?:get_pinned_commit\s+|ci_commit_pins/)([A-Za-z0-9_-]+)")
DEFAULT_PINS = (
    "vision", "audio", "torchcomms", "spmd_types", "torchao", "torchtitan", "fbgemm",
    "fbgemm_rocm", "torchrec", "data", "text", "xla", "triton",
)  # fmt: skip
DEFAULT_FOLDERS = ("test", "build", "benchmarks")
_SHELL_OWN = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})


class TraceError(RuntimeError):
    """The script could not be traced (missing, not instrumentable, ran too long)."""


@dataclass(frozen=True)
class Trace:
    """What the script did for one job: calls, commands, exit status."""

    job: Job
    calls: list[dict[str, Any]]
    commands: list[dict[str, Any]]
    exit: int
    root: str
    log: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job.as_json(),
            "calls": self.calls,
            "commands": self.commands,
            "exit": self.exit,
        }


def find_dispatch_start(lines: list[str]) -> int:
    """The index of the first top-level line after the script's last function definition."""
    last_end = -1
    in_func = False
    for i, line in enumerate(lines):
        if not in_func:
            if _FUNC_START.match(line) or _FUNC_KEYWORD.match(line):
                in_func = True
                if line.rstrip().endswith("}") and line.count("{") == line.count("}"):
                    in_func = False
                    last_end = i
        elif line.startswith("}"):
            in_func = False
            last_end = i
    if last_end < 0:
        raise TraceError("no function definition found: cannot tell where the dispatch begins")
    for j in range(last_end + 1, len(lines)):
        text = lines[j].strip()
        if text and not text.startswith("#"):
            return j
    raise TraceError("nothing follows the last function: there is no dispatch chain")


def function_blocks(text: str) -> list[str]:
    """The script's top-level function definitions, each as its source text."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is None:
            if _FUNC_START.match(line) or _FUNC_KEYWORD.match(line):
                current = [line]
                if line.rstrip().endswith("}") and line.count("{") == line.count("}"):
                    blocks.append(line)
                    current = None
        else:
            current.append(line)
            if line.startswith("}"):
                blocks.append("\n".join(current))
                current = None
    return blocks


def _instrument(text: str) -> str:
    lines = text.splitlines()
    start = find_dispatch_start(lines)
    lines.insert(start, "__torchci_begin_dispatch")
    head = 1 if lines and lines[0].startswith("#!") else 0
    lines.insert(head, 'source "$TORCHCI_TRACE_LIB"')
    return "\n".join(lines) + "\n"


def _folders_and_pins(texts: list[str]) -> tuple[set[str], set[str]]:
    folders = set(DEFAULT_FOLDERS)
    pins = set(DEFAULT_PINS)
    for text in texts:
        for m in _CD.finditer(text):
            path = m.group(1).rstrip("/")
            if path not in (".", "..") and not path.startswith(("..", "/")):
                folders.add(path)
        pins.update(_PIN.findall(text))
    return folders, pins


def _write(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)  # a mirrored file may stand there, read-only
    path.write_text(text, encoding="utf-8")


def _copy_scripts(test_sh: Path, script_dir: Path) -> list[str]:
    """Put the instrumented script and the helpers beside it in ``script_dir``; returns
    the texts of the shell scripts among them."""
    script_dir.mkdir(parents=True, exist_ok=True)
    texts = []
    for helper in sorted(test_sh.parent.iterdir()):
        if helper.is_file() and helper.name != test_sh.name:
            (script_dir / helper.name).unlink(missing_ok=True)
            shutil.copy2(helper, script_dir / helper.name)
            if helper.suffix == ".sh":
                texts.append(helper.read_text(encoding="utf-8", errors="replace"))
    text = test_sh.read_text(encoding="utf-8", errors="replace")
    texts.append(text)
    _write(script_dir / "test.sh", _instrument(text))
    return texts


def build_sandbox(
    test_sh: Path,
    where: Path,
    folders: Sequence[str] | None = None,
    tree: TreeMirror | None = None,
) -> dict[str, Path]:
    """Lay out a sandbox under ``where`` for tracing ``test_sh``; returns its paths.

    The checkout's empty folders are ``folders`` when given, else every folder the
    scripts enter by a literal path (and ``test``, ``build``, ``benchmarks``). With
    ``tree``, the checkout holds that layout too (empty files, their modes; the
    executable ones are recording stubs); the script, its helpers and the pins are then
    written over it.
    """
    if not test_sh.is_file():
        raise TraceError(f"{test_sh}: no such file")
    checkout = where / "checkout"
    pending = []
    if tree is not None:
        try:
            pending = tree.materialize(checkout, PROGRAM_STUB)
        except MirrorError as exc:
            raise TraceError(str(exc)) from None
    script_dir = checkout / ".ci" / "pytorch"
    entered, pins = _folders_and_pins(_copy_scripts(test_sh, script_dir))
    for folder in entered if folders is None else folders:
        (checkout / folder).mkdir(parents=True, exist_ok=True)
    pin_dir = checkout / ".github" / "ci_commit_pins"
    pin_dir.mkdir(parents=True, exist_ok=True)
    for name in pins:
        _write(pin_dir / f"{name}.txt", f"pin-{name}\n")
    apply_modes(pending)
    bin_dir = where / "bin"
    bin_dir.mkdir()
    for tool in STUB_TOOLS:
        stub = bin_dir / tool
        stub.write_text(STUB)
        stub.chmod(0o755)
    lib = where / "lib" / "trace.sh"
    lib.parent.mkdir()
    lib.write_text(TRACE_LIB)
    for sub in ("trace/cmds", "site-packages", "home", "rocm/include"):
        (where / sub).mkdir(parents=True)
    (where / "trace" / "calls").write_text("")
    (where / "rocm" / "include" / "rocm_version.h").write_text(
        "#define ROCM_VERSION_MAJOR 7\n#define ROCM_VERSION_MINOR 2\n#define ROCM_VERSION_PATCH 0\n"
    )
    return {
        "checkout": checkout,
        "script": script_dir / "test.sh",
        "bin": bin_dir,
        "lib": lib,
        "trace": where / "trace",
        "site": where / "site-packages",
        "home": where / "home",
        "rocm": where / "rocm",
    }


def sandbox_env(paths: Mapping[str, Path], job: Job) -> dict[str, str]:
    """The environment the traced script starts with (the job's variables included)."""
    env = {
        "PATH": f"{paths['bin']}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(paths["home"]),
        "LANG": "C.UTF-8",
        "ROCM_HOME": str(paths["rocm"]),
    }
    env.update(job.variables())
    return env


def _split(blob: bytes, sep: bytes) -> list[str]:
    parts = blob.split(sep)
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", errors="replace") for p in parts]


def _read_calls(path: Path) -> list[dict[str, Any]]:
    calls = []
    for record in _split(path.read_bytes(), b"\x1e"):
        fields = record.split("\x1f")
        if fields and fields[-1] == "":
            fields.pop()
        if len(fields) >= 2:
            calls.append({"fn": fields[1], "args": fields[2:], "depth": int(fields[0])})
    return calls


def _cwd_view(pwd: str, checkout: Path) -> str:
    path = Path(pwd)
    try:
        rel = path.resolve().relative_to(checkout.resolve())
    except ValueError:
        return pwd
    return str(rel) if str(rel) else "."


def _read_commands(
    folder: Path, checkout: Path, start_env: Mapping[str, str]
) -> list[dict[str, Any]]:
    commands = []
    for argv_file in sorted(folder.glob("*.argv")):
        fields = _split(argv_file.read_bytes(), b"\0")
        if len(fields) < 4:
            continue
        phase, stack, pwd, *argv = fields
        env_file = argv_file.with_suffix(".env")
        env: dict[str, str] = {}
        if env_file.exists():
            for item in _split(env_file.read_bytes(), b"\0"):
                key, _, value = item.partition("=")
                if key.startswith(("TORCHCI_", "BASH_FUNC_")) or key in _SHELL_OWN:
                    continue
                if start_env.get(key) != value:
                    env[key] = value
        commands.append(
            {
                "argv": argv,
                "cwd": _cwd_view(pwd, checkout),
                "env": env,
                "fn": stack,
                "phase": phase,
            }
        )
    return commands


def run_trace(
    paths: Mapping[str, Path], job: Job, env: Mapping[str, str], *, timeout: float = 300.0
) -> Trace:
    """Run the instrumented script of a sandbox for ``job``; returns what it did."""
    run_env = {
        **env,
        "TORCHCI_TRACE_DIR": str(paths["trace"]),
        "TORCHCI_TRACE_LIB": str(paths["lib"]),
        "TORCHCI_SITE_PACKAGES": str(paths["site"]),
    }
    proc = subprocess.Popen(
        ["bash", str(paths["script"])],
        cwd=paths["checkout"],
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TraceError(f"the script ran past {timeout:g} s for {job.as_json()}") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return Trace(
        job=job,
        calls=_read_calls(paths["trace"] / "calls"),
        commands=_read_commands(paths["trace"] / "cmds", paths["checkout"], env),
        exit=proc.returncode,
        root=str(paths["checkout"]),
        log=out.decode("utf-8", errors="replace")[-20000:],
    )


def remove_sandbox(where: Path) -> None:
    """Remove a sandbox, mirrored folders without write or search permission included."""
    shutil.rmtree(where, ignore_errors=True)
    if where.exists():
        for folder, _, _ in os.walk(where):
            with contextlib.suppress(OSError):
                os.chmod(folder, 0o700)
        shutil.rmtree(where, ignore_errors=True)


def trace_job(
    test_sh: Path, job: Job, *, timeout: float = 300.0, tree: TreeMirror | None = None
) -> Trace:
    """Trace ``test_sh`` for ``job`` in a fresh sandbox (holding ``tree``'s layout when
    given), removed afterwards."""
    where = Path(tempfile.mkdtemp(prefix="torchci-trace-"))
    try:
        paths = build_sandbox(test_sh, where, tree=tree)
        return run_trace(paths, job, sandbox_env(paths, job), timeout=timeout)
    finally:
        remove_sandbox(where)

"""Where the validator's jobs come from: a jobs file (JSON lines or the CSV of a CI job
matrix), a checkout's workflow files, or one job given on the command line."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from ..data.model import Job
from ..plan.jobs import JobInputError, job_from_json, read_jobs

__all__ = ["jobs_from_file", "jobs_from_workflows", "unique"]


def unique(jobs: Iterable[Job]) -> list[Job]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for job in jobs:
        key = (
            job.build_environment,
            job.test_config,
            job.shard,
            job.num_shards,
            *sorted(f"{k}={v}" for k, v in job.env.items()),
        )
        if key not in seen:
            seen.add(key)
            out.append(job)
    return out


def jobs_from_file(path: Path) -> list[Job]:
    """Jobs from JSON lines, or from a CSV with build_environment, test_config, shard and
    num_shards columns (other columns are ignored)."""
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            if path.suffix.lower() == ".csv":
                reader = csv.DictReader(stream)
                need = {"build_environment", "test_config", "shard", "num_shards"}
                missing = need - set(reader.fieldnames or ())
                if missing:
                    raise JobInputError(f"{path}: missing columns {', '.join(sorted(missing))}")
                jobs = []
                for lineno, row in enumerate(reader, 2):
                    raw = {k: row[k] for k in sorted(need)}
                    jobs.append(job_from_json(raw, f"{path}, line {lineno}"))
                return unique(jobs)
            return unique(read_jobs(stream, str(path)))
    except OSError as exc:
        raise JobInputError(f"{path}: {exc.strerror}") from None


_JOB_HEADER = re.compile(r"^  ([A-Za-z0-9_.-]+):\s*$")
_BUILD_ENV = re.compile(r"^\s+build-environment:\s*['\"]?([^'\"\s#]+)")
_ENTRY = re.compile(r"\{([^{}]*\bconfig\s*:[^{}]*)\}")
_FIELD = re.compile(r"(\w+)\s*:\s*(\"[^\"]*\"|'[^']*'|[^,\s}]+)")


def _entries(block: str) -> list[dict[str, str]]:
    out = []
    for m in _ENTRY.finditer(block):
        fields = {k: v.strip("'\"") for k, v in _FIELD.findall(m.group(1))}
        if "config" in fields:
            out.append(fields)
    return out


def jobs_from_workflows(folder: Path) -> list[Job]:
    """The test jobs of a checkout's ``.github/workflows/*.yml``: each job's
    ``build-environment`` with the ``config``/``shard``/``num_shards`` entries of its
    ``test-matrix``."""
    if not folder.is_dir():
        raise JobInputError(f"{folder}: no such folder")
    jobs: list[Job] = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        text = path.read_text(encoding="utf-8", errors="replace")
        blocks: list[list[str]] = []
        in_jobs = False
        for line in text.splitlines():
            if line.startswith("jobs:"):
                in_jobs = True
                continue
            if in_jobs and line and not line.startswith((" ", "#")):
                in_jobs = False
            if in_jobs and _JOB_HEADER.match(line):
                blocks.append([])
            if in_jobs and blocks:
                blocks[-1].append(line)
        for block_lines in blocks:
            build = next((m.group(1) for ln in block_lines if (m := _BUILD_ENV.match(ln))), None)
            if not build or "${{" in build:
                continue
            for entry in _entries("\n".join(block_lines)):
                raw = {
                    "build_environment": build,
                    "test_config": entry["config"],
                    "shard": entry.get("shard", "1"),
                    "num_shards": entry.get("num_shards", "1"),
                }
                jobs.append(job_from_json(raw, f"{path.name}"))
    return unique(jobs)

"""``python -m pytest_torchci``: plan jobs without pytest.

``plan --jobs JOBS.jsonl [--root DIR]`` reads one job a line and writes one plan a line
(schema 1, see the README) to stdout, all in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .model import Job
from .planner import plan_job
from .suite_data import SuiteDataError, load_suites

__all__ = ["JobInputError", "job_from_json", "main", "plan_main", "read_jobs"]


class JobInputError(ValueError):
    """A job line that cannot be used; the message names the line."""


def job_from_json(raw: object, where: str = "job") -> Job:
    """Build a :class:`Job` from one JSON object of a jobs file."""
    if not isinstance(raw, dict):
        raise JobInputError(f"{where}: a job must be a JSON object")
    for key in ("build_environment", "test_config"):
        if not isinstance(raw.get(key), str):
            raise JobInputError(f"{where}: {key} must be a string")
    env = raw.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise JobInputError(f"{where}: env must be an object of strings")
    shard = str(raw.get("shard", "1") or "1")
    num = str(raw.get("num_shards", "1") or "1")
    for name, value in (("shard", shard), ("num_shards", num)):
        if not value.isdigit():
            raise JobInputError(f"{where}: {name} must be a whole number, not {value!r}")
    return Job(raw["build_environment"], raw["test_config"], shard, num, env, raw)


def read_jobs(stream: TextIO, name: str) -> Iterator[Job]:
    for lineno, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JobInputError(f"{name}, line {lineno}: not JSON: {exc.msg}") from None
        yield job_from_json(raw, f"{name}, line {lineno}")


def _plan(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    if not root.is_dir():
        print(f"error: --root {args.root}: no such folder", file=sys.stderr)
        return 2
    try:
        data = load_suites(Path(args.suites) if args.suites else None)
        stream: TextIO
        with open(args.jobs, encoding="utf-8") if args.jobs != "-" else sys.stdin as stream:
            out = sys.stdout
            base_env = dict(os.environ) if args.inherit_env else None
            for job in read_jobs(stream, args.jobs):
                plan = plan_job(data, job, root, base_env=base_env).plan
                out.write(json.dumps(plan.as_json()) + "\n")
    except (SuiteDataError, JobInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.jobs}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


def _suites_table(args: argparse.Namespace) -> int:
    from .doc import replace_suite_table

    path = Path(args.readme)
    try:
        text = path.read_text(encoding="utf-8")
        new = replace_suite_table(text, load_suites())
    except (OSError, ValueError, SuiteDataError) as exc:
        print(f"error: {args.readme}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.readme}: the table of suites is stale; run suites-table", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from .durations import DurationsError
    from .matrix import MatrixError, build_matrix, job_names, load_runners

    if args.shards < 1:
        print(f"error: --shards {args.shards}: must be at least 1", file=sys.stderr)
        return 2
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: --root {args.root}: no such folder", file=sys.stderr)
        return 2
    try:
        runners = load_runners(Path(args.runners) if args.runners else None)
        job = Job(args.build_env, args.config, "1", str(args.shards))
        matrix = build_matrix(
            load_suites(), job, root.resolve(), runners=runners,
            durations=[Path(d) for d in args.durations], balanced=bool(args.durations),
        )  # fmt: skip
    except (MatrixError, DurationsError, SuiteDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(matrix))
    if args.names:
        for name in job_names(matrix, args.build_env):
            print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_torchci", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="plan CI jobs: what test.sh would run for each")
    plan.add_argument("--jobs", required=True, help="JSON lines of jobs ('-' for stdin)")
    plan.add_argument("--root", default=".", help="the PyTorch checkout (default: .)")
    plan.add_argument("--suites", help="a suites folder instead of the installed one")
    plan.add_argument(
        "--inherit-env",
        action="store_true",
        help="plan from this process's environment plus the job's variables (as a pytest "
        "run does); by default a job starts from its own variables alone, as in the traces",
    )
    plan.set_defaults(func=_plan)
    table = sub.add_parser(
        "suites-table", help="regenerate the README's table of suites (test.sh function -> suite)"
    )
    table.add_argument("--readme", default="README.md", help="the file holding the table")
    table.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    table.set_defaults(func=_suites_table)

    matrix = sub.add_parser("matrix", help="print the test-matrix of a config for a workflow")
    matrix.add_argument("--config", required=True, help="the TEST_CONFIG")
    matrix.add_argument("--build-env", required=True, help="the BUILD_ENVIRONMENT")
    matrix.add_argument("--shards", required=True, type=int, help="how many shards")
    matrix.add_argument("--durations", action="append", default=[], help="durations (balance)")
    matrix.add_argument("--runners", help="JSON or TOML mapping of needs to runner labels")
    matrix.add_argument("--root", default=".", help="the PyTorch checkout (default: .)")
    matrix.add_argument("--names", action="store_true", help="also print the job names")
    matrix.set_defaults(func=_matrix)

    from .validate.cli import add_arguments, run

    validate = sub.add_parser("validate", help="compare a test.sh with the plugin, job by job")
    add_arguments(validate)
    validate.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: Any = args.func(args)
    return int(result)


def plan_main() -> int:
    return main(["plan", *sys.argv[1:]])


def validate_main() -> int:
    return main(["validate", *sys.argv[1:]])

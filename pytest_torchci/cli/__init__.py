"""``torchci`` (also ``python -m pytest_torchci``): plan, check and list CI jobs without
pytest.

Subcommands: ``plan`` (one plan a line, schema 1, for JSON lines of jobs), ``validate``
(compare a test.sh with the plugin, job by job), ``matrix`` (a workflow's test-matrix),
``configs`` (the TEST_CONFIGs the suite data knows, their dispatch branches and builds)
and ``suites-table`` (the generated table of suites). ``torchci-plan`` and
``torchci-validate`` are the old names of ``torchci plan`` and ``torchci validate``.

The top layer: may import every other (it is what a user runs); nothing imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO

from ..data.loader import SuiteDataError, load_suites
from ..data.model import Job
from ..plan.jobs import JobInputError, job_from_json, read_jobs
from .options import add_json_option

__all__ = [
    "JobInputError",
    "build_parser",
    "job_from_json",
    "main",
    "plan_main",
    "read_jobs",
    "validate_main",
]

COMMAND = "torchci"


# --- the parser ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


# --- plan ----------------------------------------------------------------------------------


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        required=True,
        metavar="FILE",
        help="JSON lines of jobs ('-' for stdin), one a line: "
        '{"build_environment": "linux-jammy-py3.11-gcc11", "test_config": "default", '
        '"shard": "1", "num_shards": "3"}, and optionally "env": {NAME: VALUE}',
    )
    parser.add_argument("--root", default=".", help="the PyTorch checkout (default: .)")
    parser.add_argument("--suites", metavar="DIR", help="a suites folder, not the installed one")
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="plan from this process's environment plus the job's variables (as a pytest "
        "run does); by default a job starts from its own variables alone (reproducible "
        "wherever it is planned)",
    )


def _plan(args: argparse.Namespace) -> int:
    from ..plan.planner import plan_job

    root = Path(args.root).resolve()
    if not root.is_dir():
        return _error(f"--root {args.root}: no such folder")
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
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.jobs}: {exc.strerror}")
    return 0


# --- suites-table --------------------------------------------------------------------------


def _suites_table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--readme",
        default="docs/suites.md",
        help="the file holding the table (default: docs/suites.md)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale")


def _suites_table(args: argparse.Namespace) -> int:
    from .suites_table import replace_suite_table

    path = Path(args.readme)
    try:
        text = path.read_text(encoding="utf-8")
        new = replace_suite_table(text, load_suites())
    except (OSError, ValueError, SuiteDataError) as exc:
        return _error(f"{args.readme}: {exc}")
    if args.check:
        if new != text:
            print(f"{args.readme}: the table of suites is stale; run suites-table", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


# --- matrix --------------------------------------------------------------------------------


def _matrix_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the TEST_CONFIG")
    parser.add_argument("--build-env", required=True, help="the BUILD_ENVIRONMENT")
    parser.add_argument("--shards", required=True, type=int, help="how many shards")
    parser.add_argument(
        "--durations", action="append", default=[], metavar="FILE", help="durations (balance)"
    )
    parser.add_argument("--runners", metavar="FILE", help="JSON or TOML: needs -> runner labels")
    parser.add_argument("--root", default=".", help="the PyTorch checkout (default: .)")
    parser.add_argument("--suites", metavar="DIR", help="a suites folder, not the installed one")
    parser.add_argument("--names", action="store_true", help="also print the job names")


def _matrix(args: argparse.Namespace) -> int:
    from ..scale.durations import DurationsError
    from ..scale.matrix import MatrixError, build_matrix, job_names, load_runners

    if args.shards < 1:
        return _error(f"--shards {args.shards}: must be at least 1")
    root = Path(args.root)
    if not root.is_dir():
        return _error(f"--root {args.root}: no such folder")
    try:
        runners = load_runners(Path(args.runners) if args.runners else None)
        job = Job(args.build_env, args.config, "1", str(args.shards))
        matrix = build_matrix(
            load_suites(Path(args.suites) if args.suites else None),
            job,
            root.resolve(),
            runners=runners,
            durations=[Path(d) for d in args.durations],
            balanced=bool(args.durations),
        )
    except (MatrixError, DurationsError, SuiteDataError) as exc:
        return _error(str(exc))
    print(json.dumps(matrix))
    if args.names:
        for name in job_names(matrix, args.build_env):
            print(name)
    return 0


# --- configs -------------------------------------------------------------------------------


def _configs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        default=".",
        metavar="CHECKOUT",
        help="the PyTorch checkout whose .github/workflows name the builds (default: .)",
    )
    parser.add_argument(
        "--jobs",
        metavar="FILE",
        help="read the builds from JSON lines of jobs (or a CSV job matrix), not the workflows",
    )
    parser.add_argument("--suites", metavar="DIR", help="a suites folder, not the installed one")
    add_json_option(parser, "the configs")


def _configs(args: argparse.Namespace) -> int:
    from ..plan.configs import (
        build_only_branches,
        config_routes,
        configs_json,
        configs_table,
        short_cites,
    )
    from ..validate.jobs import jobs_from_file, jobs_from_workflows

    root = Path(args.root)
    if not root.is_dir():
        return _error(f"--root {args.root}: no such folder")
    workflows = root / ".github" / "workflows"
    try:
        data = load_suites(Path(args.suites) if args.suites else None)
        source: Path | None = None
        jobs: list[Job] | None = None
        if args.jobs:
            source, jobs = Path(args.jobs), jobs_from_file(Path(args.jobs))
        elif workflows.is_dir():
            source, jobs = workflows, jobs_from_workflows(workflows)
        rows = config_routes(data, jobs, root=root.resolve())
    except (SuiteDataError, JobInputError) as exc:
        return _error(str(exc))
    if args.json is not None:
        builds_from = str(source) if source is not None else None
        text = json.dumps(configs_json(rows, builds_from=builds_from), indent=1)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                return _error(f"--json {args.json}: {exc.strerror}")
    else:
        sys.stdout.write(configs_table(rows, with_builds=jobs is not None))
        left_out = build_only_branches(rows)
        if left_out:
            branches = ", ".join(f"{r.branch} ({short_cites(r.cites)})" for r in left_out)
            print(f"\nleft out above: what some builds reach whatever the config: {branches}")
    if jobs is None:
        print(
            f"no builds: {workflows} does not exist; give --root a PyTorch checkout "
            "(or --jobs FILE) to list the builds CI runs each config on",
            file=sys.stderr,
        )
    return 0


# --- validate ------------------------------------------------------------------------------


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    from .validate import add_arguments

    add_arguments(parser)


def _validate(args: argparse.Namespace) -> int:
    from .validate import run

    return run(args)


# --- the command ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Command:
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _validate_description() -> str:
    from . import validate as validate_cli

    return (validate_cli.__doc__ or "").replace("``", "'")


_COMMANDS: dict[str, _Command] = {
    "plan": _Command(
        "plan CI jobs: what test.sh would run for each",
        "Read JSON lines of jobs and write one plan a line (schema 1, described in "
        "docs/plan.md) to stdout, all in one process.",
        _plan_arguments,
        _plan,
    ),
    "validate": _Command(
        "compare a test.sh with the plugin, job by job",
        "",  # the module's docstring, read when the parser is built
        _validate_arguments,
        _validate,
    ),
    "matrix": _Command(
        "print the test-matrix of a config for a workflow",
        "Print the test-matrix a GitHub Actions workflow consumes for one config and build: "
        "one entry per shard, with the runner each shard needs.",
        _matrix_arguments,
        _matrix,
    ),
    "configs": _Command(
        "list the TEST_CONFIGs the suite data knows, their dispatch branches and builds",
        "List every TEST_CONFIG the suite data knows (and every config CI runs) with the "
        "dispatch branches of routes.toml it reaches and the builds CI runs it on (read from "
        "CHECKOUT/.github/workflows, or from --jobs FILE).",
        _configs_arguments,
        _configs,
    ),
    "suites-table": _Command(
        "regenerate the table of suites (test.sh function -> suite) in a Markdown file",
        "Rewrite the table of suites, between its marker comments in --readme, from the "
        "suite data, or check it (--check).",
        _suites_table_arguments,
        _suites_table,
    ),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-torchci")
    except PackageNotFoundError:
        return "unknown"


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    command = _COMMANDS[name]
    if name == "validate":
        parser.description = _validate_description()
    command.add_arguments(parser)
    parser.set_defaults(func=command.run)
    return parser


def build_parser(prog: str = COMMAND) -> argparse.ArgumentParser:
    """The parser of ``torchci``; ``prog`` is the command as typed (it prefixes every
    usage line: ``torchci validate``, ``python -m pytest_torchci validate``)."""
    parser = _Parser(
        prog=prog,
        description="Plan, check and list PyTorch's CI jobs (what .ci/pytorch/test.sh runs) "
        "without pytest.",
        epilog="torchci-plan and torchci-validate, the old commands, still work for one release.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in _COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.description)
        _command_parser(child, name)
    return parser


def _invoked_as() -> str:
    """The command as the user typed it: the script's name (``torchci``)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name == "-c" or name.endswith(".py"):
        return COMMAND
    return name


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error, already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader took what it wanted and went away (``| head``): not a failure of
        # ours, so exit 0 whether or not the pipe broke; say nothing on a stdout that is gone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if os.environ.get("TORCHCI_DEBUG"):
            raise
        print(
            f"{parser.prog}: internal error: {type(exc).__name__}: {exc} "
            "(set TORCHCI_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run ``torchci`` with ``argv`` (default: the process's arguments); returns the exit
    status. ``prog`` is the command as typed (default: the script's name, ``torchci``)."""
    if prog is None:
        prog = _invoked_as() if argv is None else COMMAND
    return _run(build_parser(prog), argv)


def _deprecated(old: str, name: str, argv: Sequence[str] | None) -> int:
    print(f"{old} is deprecated; use '{COMMAND} {name}'", file=sys.stderr)
    parser = _Parser(prog=old, description=_COMMANDS[name].description)
    return _run(_command_parser(parser, name), argv)


def plan_main(argv: Sequence[str] | None = None) -> int:
    """``torchci-plan``: the old name of ``torchci plan``, for one more release."""
    return _deprecated("torchci-plan", "plan", argv)


def validate_main(argv: Sequence[str] | None = None) -> int:
    """``torchci-validate``: the old name of ``torchci validate``, for one more release."""
    return _deprecated("torchci-validate", "validate", argv)

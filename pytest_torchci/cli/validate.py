"""``torchci validate`` (also ``python -m pytest_torchci validate``): where the plugin
and a test.sh disagree, job by job.

Dry mode (the default) traces the script under stubs in a sandbox and plans the same
jobs with the plugin against the same sandbox, ``-n/--workers`` jobs at once; with
``--tree CHECKOUT`` the sandbox holds that checkout's layout (names and modes, empty
files), read once and laid out again for each job. Real mode
(``--real-run``) runs one function of the script and the plugin's matching item on a real
checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..data.loader import SuiteDataError, load_suites
from ..data.model import Job
from ..plan.jobs import JobInputError, parse_shard
from ..validate.compare import Comparison
from ..validate.jobs import jobs_from_file, jobs_from_workflows
from ..validate.mirror import DEFAULT_EXCLUDES, MirrorError, TreeMirror, scan_tree
from ..validate.report import write_json, write_markdown, write_summary
from ..validate.run import validate_job
from .options import DeprecatedOption, add_json_option, parse_workers

__all__ = ["add_arguments", "run"]


def _jobs(args: argparse.Namespace) -> list[Job]:
    if args.jobs:
        return jobs_from_file(Path(args.jobs))
    if args.workflows:
        return jobs_from_workflows(Path(args.workflows))
    if args.config is None:
        raise JobInputError("no jobs: give --jobs FILE, --workflows DIR or --config NAME")
    shard, num = parse_shard(args.shard or "1/1", f"--shard {args.shard}")
    return [Job(args.build_env or "", args.config, shard, num)]


def _add_tree_arguments(parser: argparse.ArgumentParser) -> None:
    tree = parser.add_argument_group("a real layout (dry mode)")
    tree.add_argument(
        "--tree",
        metavar="CHECKOUT",
        help="mirror this checkout's folders, files (empty, same modes) and links into each"
        " job's sandbox, so that both sides read your layout",
    )
    tree.add_argument(
        "--tree-exclude",
        action="append",
        default=[],
        metavar="NAME",
        help="also leave out files and folders of this name at any depth (a name with '/':"
        " that path in the checkout); repeatable; left out by default: "
        + ", ".join(DEFAULT_EXCLUDES),
    )
    tree.add_argument(
        "--tree-no-default-excludes",
        action="store_true",
        help="mirror the folders left out by default too",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--test-sh", required=True, help="the test.sh to compare (helpers beside it)"
    )
    src = parser.add_argument_group("jobs (one of)")
    src.add_argument("--jobs", metavar="FILE", help="JSON lines of jobs, or a CSV job matrix")
    src.add_argument("--workflows", help="a checkout's .github/workflows folder")
    src.add_argument("--config", help="one job: its TEST_CONFIG")
    src.add_argument("--build-env", help="one job: its BUILD_ENVIRONMENT")
    src.add_argument("--shard", help="one job: N/M (default 1/1)")
    parser.add_argument("--suites", metavar="DIR", help="a suites folder, not the installed one")
    parser.add_argument(
        "-n",
        "--workers",
        type=parse_workers,
        default=1,
        metavar="N",
        help="validate N jobs at once ('auto': one per CPU; default 1)",
    )
    parser.add_argument(  # the old spelling, beside --jobs FILE: easy to mistake
        "-j",
        "--jobs-parallel",
        type=parse_workers,
        dest="workers",
        action=DeprecatedOption,
        use="-n/--workers",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--report", metavar="FILE", help="write a Markdown report to FILE")
    add_json_option(parser, "the verdicts")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per traced job")
    parser.add_argument(
        "--sandbox-folders",
        help="comma-separated empty folders of the sandbox's checkout (default: every folder"
        " the script enters by a literal path)",
    )
    _add_tree_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="list agreeing jobs too")
    real = parser.add_argument_group("real mode")
    real.add_argument("--real-run", action="store_true", help="run one function for real")
    real.add_argument("--root", help="the checkout to run in (real mode)")
    real.add_argument("--call", help="the test.sh function to run (real mode)")
    real.add_argument("--args", nargs="*", default=None, help="its arguments (real mode)")


def run(args: argparse.Namespace) -> int:
    test_sh = Path(args.test_sh)
    if not test_sh.is_file():
        print(f"error: --test-sh {args.test_sh}: no such file", file=sys.stderr)
        return 2
    try:
        data = load_suites(Path(args.suites) if args.suites else None)
        jobs = _jobs(args)
    except (SuiteDataError, JobInputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.real_run:
        if args.tree:
            print("error: --tree is for dry mode; --real-run runs in --root", file=sys.stderr)
            return 2
        from ..validate.real import real_run

        return real_run(args, test_sh, data, jobs)
    folders = None
    if args.sandbox_folders is not None:
        folders = [f.strip().rstrip("/") for f in args.sandbox_folders.split(",") if f.strip()]
        bad = [f for f in folders if f.startswith("/") or ".." in f.split("/")]
        if bad:
            print(f"error: --sandbox-folders: {bad[0]!r} is outside the checkout", file=sys.stderr)
            return 2

    tree: TreeMirror | None = None
    if args.tree is not None:
        excludes = [] if args.tree_no_default_excludes else list(DEFAULT_EXCLUDES)
        try:
            tree = TreeMirror(scan_tree(Path(args.tree), [*excludes, *args.tree_exclude]))
        except MirrorError as exc:
            print(f"error: --tree {exc}", file=sys.stderr)
            return 2

    def one(job: Job) -> Comparison:
        return validate_job(test_sh, data, job, timeout=args.timeout, folders=folders, tree=tree)

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(one, jobs))
    if tree is not None:
        print(tree.summary(), file=sys.stderr)
    to_stdout = args.json == "-"
    write_summary(results, sys.stderr if to_stdout else sys.stdout, verbose=args.verbose)
    try:
        if args.report:
            write_markdown(results, Path(args.report))
        if to_stdout:
            print(json.dumps({"jobs": [r.as_json() for r in results]}, indent=1))
        elif args.json:
            write_json(results, Path(args.json))
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0 if all(r.agree for r in results) else 1

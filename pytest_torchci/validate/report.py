"""The validator's reports: a terminal summary, Markdown, JSON."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .compare import LEVELS, Comparison

__all__ = ["job_label", "write_json", "write_markdown", "write_summary"]


def job_label(job: dict[str, object]) -> str:
    text = (
        f"{job.get('build_environment', '')} | {job.get('test_config', '')} | "
        f"{job.get('shard', '1')}/{job.get('num_shards', '1')}"
    )
    env = job.get("env")
    if isinstance(env, dict) and env:
        text += " | " + " ".join(f"{k}={v}" for k, v in sorted(env.items()))
    return text


def write_summary(results: Sequence[Comparison], out: TextIO, *, verbose: bool = False) -> None:
    for r in results:
        if r.agree:
            if verbose:
                out.write(f"agree   {job_label(r.job)}\n")
        else:
            out.write(f"DIFFER  {job_label(r.job)}\n        {r.first_difference}\n")
    agree = sum(r.agree for r in results)
    per_level = {lvl: sum(r.levels.get(lvl, False) for r in results) for lvl in LEVELS}
    jobs = f"{len(results)} job{'' if len(results) == 1 else 's'}"
    out.write(
        f"validated {jobs}: {agree} agree, {len(results) - agree} differ "
        f"(calls {per_level['calls']}/{len(results)}, commands {per_level['commands']}/"
        f"{len(results)}, env {per_level['env']}/{len(results)})\n"
    )


def write_markdown(results: Sequence[Comparison], path: Path) -> None:
    by_config: dict[str, list[Comparison]] = defaultdict(list)
    for r in results:
        by_config[str(r.job.get("test_config", ""))].append(r)
    agree = sum(r.agree for r in results)
    lines = [
        "# test.sh migration report",
        "",
        f"{len(results)} jobs: {agree} agree, {len(results) - agree} differ.",
        "",
        "| config | jobs | agree | calls | commands | env |",
        "|---|---|---|---|---|---|",
    ]
    for config in sorted(by_config):
        rs = by_config[config]
        counts = [sum(r.levels.get(lvl, False) for r in rs) for lvl in LEVELS]
        lines.append(
            f"| {config} | {len(rs)} | {sum(r.agree for r in rs)} | "
            + " | ".join(str(c) for c in counts)
            + " |"
        )
    differ = [r for r in results if not r.agree]
    if differ:
        lines += ["", "## Differences", ""]
        for r in differ:
            lines.append(f"### {job_label(r.job)}")
            lines.append("")
            if r.error:
                lines.append(f"- error: {r.error}")
            for level in LEVELS:
                if not r.levels.get(level, False) and level in r.differences:
                    lines.append(f"- **{level}**: `{r.differences[level]}`")
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_json(results: Sequence[Comparison], path: Path) -> None:
    path.write_text(
        json.dumps({"jobs": [r.as_json() for r in results]}, indent=1) + "\n", encoding="utf-8"
    )

"""Jobs as files hold them: one JSON object a line (``torchci plan --jobs``), and the
shard text ``K/N``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TextIO

from ..data.model import Job

__all__ = ["JobInputError", "job_from_json", "parse_shard", "read_jobs", "whole_number"]


class JobInputError(ValueError):
    """A job line that cannot be used; the message names the line."""


def job_from_json(raw: object, where: str = "job") -> Job:
    """Build a :class:`Job` from one JSON object of a jobs file."""
    if not isinstance(raw, dict):
        raise JobInputError(f"{where}: a job must be a JSON object")
    for key in ("build_environment", "test_config"):
        if not isinstance(raw.get(key), str):
            raise JobInputError(f"{where}: {key} must be a string{_spelled_otherwise(raw, key)}")
    env = raw.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise JobInputError(f"{where}: env must be an object of strings")
    shard = str(raw.get("shard", "1") or "1")
    num = str(raw.get("num_shards", "1") or "1")
    for name, value in (("shard", shard), ("num_shards", num)):
        if not (value.isascii() and value.isdigit()):
            hint = " (the count goes in num_shards)" if name == "shard" and "/" in value else ""
            raise JobInputError(f"{where}: {name} must be a whole number, not {value!r}{hint}")
    try:  # the rules --torchci-shard K/N follows: a count of 1 or more, K not past it
        parse_shard(f"{shard}/{num}", where)
    except ValueError as exc:
        raise JobInputError(str(exc)) from None
    return Job(raw["build_environment"], raw["test_config"], shard, num, env, raw)


def _spelled_otherwise(raw: dict[str, object], key: str) -> str:
    """A hint when the job has ``key`` in other letters (``BUILD_ENVIRONMENT``, the name
    of the variable CI sets), else nothing."""
    for other in raw:
        if other != key and other.lower() == key:
            return f" (the job has {other!r}: keys are lowercase)"
    return ""


def read_jobs(stream: TextIO, name: str) -> Iterator[Job]:
    for lineno, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JobInputError(f"{name}, line {lineno}: not JSON: {exc.msg}") from None
        yield job_from_json(raw, f"{name}, line {lineno}")


def whole_number(value: str, source: str, what: str, *, allow_zero: bool) -> int:
    """``value`` as a whole number; ValueError with a message naming ``source``."""
    text = value.strip()
    # ASCII digits only: not a superscript (int() refuses it) nor another script's digit
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{source}: {what} {value!r} is not a whole number")
    number = int(text)
    if number == 0 and not allow_zero:
        raise ValueError(f"{source}: {what} must be at least 1, not {value!r}")
    return number


def parse_shard(value: str, source: str) -> tuple[str, str]:
    """``N/M`` into (N, M); shards count from 1 (0 is allowed for jobs that count from 0).
    A bad value raises ValueError with a message that names ``source``."""
    if value.count("/") != 1:
        raise ValueError(f"{source}: {value!r} is not a shard; write N/M, for example 1/5")
    n_text, m_text = value.split("/")
    n = whole_number(n_text, source, "the shard number", allow_zero=True)
    m = whole_number(m_text, source, "the shard count", allow_zero=False)
    if n > m:
        raise ValueError(f"{source}: shard {n} is past the shard count {m} in {value!r}")
    return str(n), str(m)

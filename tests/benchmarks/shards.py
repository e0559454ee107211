"""Balanced shards against test.sh's fixed layout, on durations shaped like a real config.

A config of 80 suites (4 long ones of 2000 to 3000 s, the rest log-normally distributed
around 300 s), split over N shards two ways: test.sh's fixed layout (by position, the
long suites landing where their position puts them, as shard 1 and 2 carry aten,
libtorch and the custom-op suites), and ``--torchci-balance`` (pytest_torchci.scale.shards:
longest first onto the lightest shard).

    python tests/benchmarks/shards.py [N]

Prints each split's max shard time over the mean shard time, and the lower bound
``max(longest suite, total / N)`` over the mean. The last line reads
`RESULT max_over_mean=.. fixed_max_over_mean=.. bound_over_mean=..`.
"""

from __future__ import annotations

import random
import sys
from types import SimpleNamespace
from typing import Any

from pytest_torchci.scale.shards import balance


def config(seed: int = 3) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    suites = [(f"long_{i}", rng.uniform(2000, 3000)) for i in range(4)]
    suites += [(f"suite_{i}", min(1500.0, rng.lognormvariate(5.5, 0.6))) for i in range(76)]
    return suites


def main() -> int:
    shards = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    suites = config()
    seconds = dict(suites)
    units: list[Any] = [
        SimpleNamespace(name=name, role="test", index=i) for i, (name, _) in enumerate(suites)
    ]
    total = sum(seconds.values())
    mean = total / shards
    # test.sh's layout: by position, in equal counts of suites per shard; the long suites
    # sit on shards 1 and 2 (two each), as aten, libtorch and the custom ops do there.
    per = -(-len(units) // shards)
    ordered = [u for u in units if not u.name.startswith("long_")]
    longs = [u for u in units if u.name.startswith("long_")]
    for pos, u in zip((0, per, 1, per + 1), longs, strict=True):
        ordered.insert(pos, u)
    fixed = [sum(seconds[u.name] for u in ordered[k * per : (k + 1) * per]) for k in range(shards)]
    split = balance(units, shards, lambda u: seconds[u.name])
    bound = max(max(seconds.values()), mean)
    for label, loads in (("fixed (test.sh)", fixed), ("balanced", list(split.predicted))):
        shown = ", ".join(f"{t / 60:.0f}m" for t in loads)
        print(f"{label:16} max {max(loads) / 60:6.1f}m  shards: {shown}")
    print(
        f"RESULT max_over_mean={max(split.predicted) / mean:.3f} "
        f"fixed_max_over_mean={max(fixed) / mean:.3f} bound_over_mean={bound / mean:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

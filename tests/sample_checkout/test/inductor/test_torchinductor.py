"""Sample stand-in for PyTorch's test/inductor/test_torchinductor.py."""

import functools
import os


def test_compiled_function_matches_eager() -> None:
    def eager(x: int) -> int:
        return x * 2 + 1

    compiled = functools.lru_cache(maxsize=None)(eager)
    assert [compiled(x) for x in range(4)] == [eager(x) for x in range(4)]


def test_inductor_env_flag() -> None:
    assert os.environ.get("PYTORCH_TEST_WITH_INDUCTOR", "0") in {"0", "1"}

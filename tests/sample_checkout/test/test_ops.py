"""Sample stand-in for PyTorch's test/test_ops.py."""

import operator


def test_binary_ops() -> None:
    assert operator.mul(3, 4) == 12
    assert operator.sub(3, 4) == -1


def test_unary_ops() -> None:
    assert operator.neg(5) == -5

"""Sample stand-in for PyTorch's test/test_ops_gradients.py."""

import math


def test_finite_difference_of_square() -> None:
    h = 1e-6
    grad = ((3.0 + h) ** 2 - (3.0 - h) ** 2) / (2 * h)
    assert math.isclose(grad, 6.0, rel_tol=1e-6)

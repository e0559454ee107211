"""Sample stand-in for PyTorch's test/test_modules.py."""

import dataclasses


@dataclasses.dataclass
class Linear:
    """A toy 'module': y = weight * x + bias."""

    weight: float
    bias: float

    def __call__(self, x: float) -> float:
        return self.weight * x + self.bias


def test_linear_forward() -> None:
    assert Linear(2.0, 1.0)(3.0) == 7.0

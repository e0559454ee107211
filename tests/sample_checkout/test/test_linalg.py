"""Sample stand-in for PyTorch's test/test_linalg.py."""


def matmul(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    """Multiply two small integer matrices."""
    return [
        [sum(x * y for x, y in zip(row, col, strict=True)) for col in zip(*b, strict=True)]
        for row in a
    ]


def test_matmul_identity() -> None:
    m = [[1, 2], [3, 4]]
    assert matmul(m, [[1, 0], [0, 1]]) == m


def test_matmul_values() -> None:
    assert matmul([[1, 2]], [[3], [4]]) == [[11]]

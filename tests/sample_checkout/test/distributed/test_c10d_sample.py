"""Sample stand-in for PyTorch's distributed (c10d) tests."""

import unittest


class TestC10dSample(unittest.TestCase):
    """Simulated all-reduce over in-process 'ranks'."""

    def test_all_reduce_sum(self) -> None:
        ranks = [[1, 2], [3, 4], [5, 6]]
        reduced = [sum(col) for col in zip(*ranks, strict=True)]
        self.assertEqual(reduced, [9, 12])


if __name__ == "__main__":
    unittest.main()

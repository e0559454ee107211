"""Sample stand-in for PyTorch's test/test_torch.py."""

import unittest


class TestTorchSample(unittest.TestCase):
    """Trivial tensor-free checks."""

    def test_add(self) -> None:
        self.assertEqual(1 + 1, 2)

    def test_list_sum(self) -> None:
        self.assertEqual(sum([1, 2, 3]), 6)


if __name__ == "__main__":
    unittest.main()

"""Sample stand-in for PyTorch's test/lazy/test_ts_opinfo.py."""

import unittest


class TestLazyOpInfoSample(unittest.TestCase):
    """Trivial lazily evaluated computation."""

    def test_lazy_generator(self) -> None:
        values = (i * i for i in range(4))
        self.assertEqual(list(values), [0, 1, 4, 9])


if __name__ == "__main__":
    unittest.main()

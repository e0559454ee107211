"""Sample test whose outcome is controlled by the environment.

``test_fails_on_request`` fails only when ``TORCHCI_SAMPLE_FAIL=1`` is set, so
the plugin's tests can exercise a failing shard on demand.
"""

import os


def test_always_passes() -> None:
    assert True


def test_fails_on_request() -> None:
    requested = os.environ.get("TORCHCI_SAMPLE_FAIL", "") == "1"
    assert not requested, "failing on purpose: TORCHCI_SAMPLE_FAIL=1 is set"

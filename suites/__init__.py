"""The suite data of pytest-torchci (TOML files), installed as ``pytest_torchci.suites``."""

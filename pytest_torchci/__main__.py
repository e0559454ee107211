"""``python -m pytest_torchci``: the same as ``torchci``."""

import os
import sys

from .cli import main

# The usage lines name the command as it was typed: ``python -m pytest_torchci ...``.
sys.exit(main(prog=f"{os.path.basename(sys.executable) or 'python'} -m pytest_torchci"))

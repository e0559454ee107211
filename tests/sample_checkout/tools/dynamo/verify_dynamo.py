#!/usr/bin/env python3
"""Sample stand-in for PyTorch's tools/dynamo/verify_dynamo.py.

The real script checks the Python/CUDA/compiler setup needed by TorchDynamo;
this one only reports success.
"""

import sys


def main() -> int:
    """Print a success line and return exit status 0."""
    print(f"All required checks passed (sample checkout, Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

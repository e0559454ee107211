#!/bin/bash
# Helpers of the validator's toy test.sh.

check_clean() {
  git status --porcelain || true
}

install_pkg() {
  python3 -m pip install --no-index "$1"
}

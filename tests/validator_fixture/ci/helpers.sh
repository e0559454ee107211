#!/bin/bash
# Helpers of the validator's toy test.sh.

check_clean() {
  git status --porcelain || true
}

install_pkg() {
  python3 -m pip install --no-index "$1"
}

toy_tree() {
  # Reads the checkout: every test file below test/toy_tree, by a find pipeline whose
  # output is split into words; the toy_native files by a glob; the executables in
  # build/bin by a glob and a -x test, then by find, and runs those.
  python test/run_test.py --include $(find test/toy_tree -name 'test_*.py' -printf '%P\n' | sed 's|\.py$||; s|^|toy_tree/|' | sort | tr '\n' ' ') --verbose
  local picked=()
  for f in test/toy_native/test_*.py; do
    picked+=("${f#test/}")
  done
  python test/run_test.py --include "${picked[@]%.py}"
  for b in build/bin/toy_*; do
    [[ -x "$b" ]] || continue
    python test/run_test.py --cpp -i "cpp/$(basename "$b")"
  done
  # The test programs themselves, run by path: found by find (unsorted), split into words.
  pushd build/bin
  for prog in $(find . -maxdepth 1 -executable -name 'toy_*'); do
    "$prog" --xml="out/${prog#./}.xml"
  done
  popd
}

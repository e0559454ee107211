#!/bin/bash
# A small test.sh-like script for the validator's tests: a prelude that exports variables
# by build and config, functions, helpers sourced from beside it, and a dispatch chain
# with globs, exact matches and shard conditions.

set -ex -o pipefail

# shellcheck source=./helpers.sh
source "$(dirname "${BASH_SOURCE[0]}")/helpers.sh"

export TOY_SERIALIZATION_CHECK=1
if [[ "$BUILD_ENVIRONMENT" == *cuda* ]]; then
  export PYTORCH_TESTING_DEVICE_ONLY_FOR="cuda"
fi
if [[ "$TEST_CONFIG" == 'default' ]]; then
  export CUDA_VISIBLE_DEVICES=0
fi
if [[ "$BUILD_ENVIRONMENT" == *sanitized* ]]; then
  # The build's own wheel, with an extra, from the checkout's dist/.
  python -m pip install "$(echo dist/*.whl)[toy-extra]"
fi
SHARD_NUMBER="${SHARD_NUMBER:=1}"
NUM_TEST_SHARDS="${NUM_TEST_SHARDS:=1}"

toy_unit_shard() {
  python test/run_test.py --exclude-distributed-tests --shard "$1" "$NUM_TEST_SHARDS" --verbose
  check_clean
}

toy_smoke() {
  python test/run_test.py --include test_torch -k smoke
}

toy_gpu_only() {
  if [[ "$BUILD_ENVIRONMENT" == *cuda* ]]; then
    PYTORCH_TEST_WITH_SLOW=1 python test/run_test.py --include test_cuda
  fi
  export TOY_GPU_DONE=1
  python tools/report.py --done
}

toy_bench() {
  pushd benchmarks/toy
  python run_bench.py --quick
  popd
}

if [[ "$TEST_CONFIG" == smoke ]]; then
  toy_smoke
elif [[ "$TEST_CONFIG" == bench ]]; then
  toy_bench
elif [[ "$TEST_CONFIG" == tree ]]; then
  toy_tree
elif [[ "$TEST_CONFIG" == *gpu* ]]; then
  install_pkg demo
  toy_gpu_only
elif [[ "$SHARD_NUMBER" == 1 && $NUM_TEST_SHARDS -gt 1 ]]; then
  toy_unit_shard 1
  toy_smoke
else
  toy_unit_shard "$SHARD_NUMBER"
fi

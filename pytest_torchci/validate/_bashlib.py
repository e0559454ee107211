"""The bash code the tracer puts into its sandbox: a stub for every external tool, one for
every program of a mirrored checkout, and the library that records function calls.
Written out as files; never run through a shell string built from a job's values (the
job's values travel as environment variables)."""

from __future__ import annotations

# Sourced by the instrumented test.sh on its second line. `set` is shadowed so that errexit
# stays off whatever the script asks (the trace must go on past failures, as a sandbox
# with stubs makes some commands fail that a real image would not).
TRACE_LIB = r"""# pytest-torchci trace library
set() { builtin set "$@"; builtin set +e; }
__torchci_depth=0
export TORCHCI_FN_STACK=""
__torchci_record_call() {
  {
    printf '%s\037' "$1" "$2"
    shift 2
    local __a
    for __a in "$@"; do printf '%s\037' "$__a"; done
    printf '\036'
  } >> "$TORCHCI_TRACE_DIR/calls"
}
__torchci_enter() {
  local __torchci_name=$1
  shift
  __torchci_record_call "$__torchci_depth" "$__torchci_name" "$@"
  local __torchci_saved=$TORCHCI_FN_STACK
  TORCHCI_FN_STACK=${TORCHCI_FN_STACK:+$TORCHCI_FN_STACK/}$__torchci_name
  __torchci_depth=$((__torchci_depth + 1))
  "__torchci_orig_$__torchci_name" "$@"
  local __torchci_rc=$?
  __torchci_depth=$((__torchci_depth - 1))
  TORCHCI_FN_STACK=$__torchci_saved
  return $__torchci_rc
}
__torchci_begin_dispatch() {
  local __f
  for __f in $(compgen -A function); do
    case "$__f" in __torchci_*|set) continue ;; esac
    eval "__torchci_orig_$__f() $(declare -f "$__f" | tail -n +2)"
    eval "$__f() { __torchci_enter $__f \"\$@\"; }"
  done
  export TORCHCI_PHASE=dispatch
}
"""

# One stub, installed under every stubbed tool's name.
STUB = r"""#!/bin/bash
# pytest-torchci trace stub: records argv, folder and environment, answers the few
# questions the traced script asks, and exits 0.
__tool=${0##*/}
__rec="$TORCHCI_TRACE_DIR/cmds/${EPOCHREALTIME/./}-$$"
printf '%s\0' "${TORCHCI_PHASE:-prelude}" "$TORCHCI_FN_STACK" "$PWD" "$__tool" "$@" > "$__rec.argv"
env -0 > "$__rec.env"
case "$__tool" in
  python|python3)
    if [[ "$1" == -c ]]; then
      case "$2" in
        *'min(os.sched_getaffinity'*) echo 0 ;;
        *'max(os.sched_getaffinity'*) echo 3 ;;
        *getsitepackages*) echo "$TORCHCI_SITE_PACKAGES" ;;
      esac
    fi
    ;;
  lscpu) echo "Thread(s) per core:  1" ;;
esac
__prev=""
for __a in "$@"; do
  if [[ "$__prev" == --output ]]; then echo stub > "$__a" 2>/dev/null; fi
  __prev=$__a
done
exit 0
"""

# Every executable file of a mirrored checkout (``--tree``) holds this: run by its path
# (a test binary such as build/bin/vec256_test_all_types_DEFAULT), it records how it was
# run, with the path as given (not its base name, as the tools' stub does); sourced, it
# does nothing, as the mirrored empty file did.
PROGRAM_STUB_MARK = "# pytest-torchci trace stub for a program of the mirrored checkout"
PROGRAM_STUB = (
    "#!/bin/bash\n"
    + PROGRAM_STUB_MARK
    + r"""
[[ "${BASH_SOURCE[0]}" != "$0" ]] && return 0
__rec="$TORCHCI_TRACE_DIR/cmds/${EPOCHREALTIME/./}-$$"
printf '%s\0' "${TORCHCI_PHASE:-prelude}" "$TORCHCI_FN_STACK" "$PWD" "$0" "$@" > "$__rec.argv"
env -0 > "$__rec.env"
exit 0
"""
)

STUB_TOOLS = (
    "python", "python3", "pip", "pip3", "git", "sudo", "nvidia-smi", "rocminfo",
    "xpu-smi", "lscpu", "taskset", "mpiexec", "clang", "gcc", "tlparse", "pytest",
    "conda", "patch", "jq", "wget", "curl", "ninja", "cmake",
)  # fmt: skip

#!/usr/bin/env bash
# The GPU checks of the torch backend, as one prepared run from the repository root:
#   bash benchmarks/gpu.sh
# Prints the GPU, runs P1 (benchmarks/psmnist_step.py) and P3 (benchmarks/trainable_theta.py) on CUDA, writing
# $OUT/p1.json and $OUT/p3.json ($OUT defaults to /tmp), then the CUDA tests in tests/backends (-k cuda).
# lmu need not be pip-installed: PYTHONPATH=.:plugins, and the scripts register the torch backend themselves.
# Expected on an H200: P1 well under a minute, P3 one to three minutes, the tests a minute or two. Each step has
# its own time limit (120 s, 210 s, 120 s), so even the worst case stays under 8 minutes; P3 writes its JSON after
# every row, so a cut-off run still leaves its rows. A failing step does not stop the later ones; the script exits
# non-zero if any failed (pytest's exit 5, "no tests collected", counts as success).
set -e
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export PYTHONPATH=".:plugins${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-/tmp}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"

failed=""
step() {  # step NAME SECONDS CMD...: run with a time limit, remember a failure, go on
    local name=$1 limit=$2 rc=0
    shift 2
    echo
    echo "=== $name ($(date +%T), limit ${limit}s)"
    local start=$SECONDS
    timeout --signal=INT --kill-after=15 "$limit" "$@" || rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start))s"
    if [ "$rc" -ne 0 ]; then failed="$failed $name($rc)"; fi
    return 0
}

echo "=== GPU"
nvidia-smi -L || true
"$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())'

step P1 90 "$PY" benchmarks/psmnist_step.py --device cuda --json "$OUT/p1.json"
step P3 170 "$PY" benchmarks/trainable_theta.py --device cuda --json "$OUT/p3.json"

echo
echo "=== CUDA tests ($(date +%T))"
if [ -d tests/backends ]; then
    rc=0
    timeout --signal=INT --kill-after=10 100 "$PY" -m pytest -q tests/backends -k cuda -p no:cacheprovider || rc=$?
    case $rc in
        0) ;;
        5) echo "(no CUDA tests collected: exit 5, not a failure)" ;;
        *) failed="$failed tests($rc)" ;;
    esac
else
    echo "(no tests/backends folder: skipped)"
fi

echo
if [ -n "$failed" ]; then
    echo "=== FAILED:$failed"
    exit 1
fi
echo "=== all done"

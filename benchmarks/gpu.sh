#!/usr/bin/env bash
# Issue 15 on a GPU: captured vs eager equality for every offline algorithm, resume and NaN stop with
# capture on, and every speed figure (TD3+BC with 1/5/60 seeds, the others with 5), eager and captured
# side by side, in one process; online TD3 (behaviour policies, safety experts) captured against eager,
# and its steps/s on the GPU and on one CPU thread with the minutes a 1M-step expert takes (under a
# minute of the budget). Under 8 minutes on one H100/H200. Paste the tables it ends with into
# benchmarks/README.md ("Captured on a GPU").
#   bash benchmarks/gpu.sh            # from the repository root, in the project's environment
#   bash benchmarks/gpu.sh --quick    # fewer timed steps
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
export OFFRL_GPU_LOCK_DIR="${OFFRL_GPU_LOCK_DIR:-$(mktemp -d)}"  # not the pipeline's locks: this script may run beside it
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc
exec timeout 480 python -u benchmarks/gpu_check.py "$@"

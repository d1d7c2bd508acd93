#!/usr/bin/env bash
# One short CUDA check of the whole tool, for a GPU machine (CI has none): every command that takes
# --device runs with --device $DEV on a small budget, then the optimizer and linsys/autodiff device
# checks. Needs torch with CUDA, numpy, scipy, scikit-learn, matplotlib, rich and typer.
#   OUT=/tmp/cuda bash benchmarks/cuda_smoke.sh
# Prints one line per check ("ok" / "FAIL rc=N") and exits 1 if any failed; logs under $OUT.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/ravine-cuda}
DEV=${DEV:-cuda}  # DEV=cpu: a dry run of the command checks here
mkdir -p "$OUT"
failed=0
check() {  # check NAME SECONDS CMD...
    local name=$1 limit=$2; shift 2
    if timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; then echo "ok   $name"
    else echo "FAIL rc=$? $name"; tail -n 5 "$OUT/$name.log"; failed=1; fi
}
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
if [ "$DEV" = cuda ]; then
    check optimizers 120 python3 tests/optim/gpu_check.py
    check linsys-autodiff 120 python3 benchmarks/linsys_autodiff_cuda_check.py "$OUT"
fi
R="python3 -m ravine"
check compare 120 $R compare --device $DEV --epochs 2 --out "$OUT/compare"
check compare-second-order 120 $R compare --device $DEV --problem diabetes-linreg --optimizers newton,lbfgs,lm --epochs 5 --out "$OUT/compare2"
check curvature 120 $R curvature --device $DEV --out "$OUT/curvature"
check landscape 120 $R landscape --device $DEV --out "$OUT/landscape"
check diagnose 120 $R diagnose --device $DEV --epochs 2 --out "$OUT/diagnose"
for d in compare compare2 curvature landscape diagnose; do
    ls "$OUT/$d" >/dev/null 2>&1 || { echo "FAIL missing $OUT/$d"; failed=1; }
done
grep -h '"device"' "$OUT"/compare/results.json 2>/dev/null | head -n 2
exit $failed

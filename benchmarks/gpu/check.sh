#!/usr/bin/env bash
# One-shot GPU check of cohortrec for an H100/H200 machine (no network needed).
#
#   bash benchmarks/gpu/check.sh [--quick]        # from anywhere; < 6 minutes
#
# 1. builds cohortrec (CPU + CUDA module) with CMake/Ninja for the local GPU's
#    architecture only (fast), into build/gpu-check, and puts the two modules
#    next to the Python sources (python/cohortrec/, git-ignored *.so);
# 2. runs the CUDA tests (tests/test_cuda.py) and every op test on the "cuda"
#    device (pytest -k cuda);
# 3. times each op against the anchors installed there (torch, cupy, faiss-gpu
#    if present) and the measured GEMM rate: benchmarks/gpu/bench_gpu.py,
#    which prints one table and writes it to benchmarks/results/ (and to $OUT
#    when set) with the card's name.
# Needs: python3 with numpy, scipy, pybind11, pytest, hypothesis (and torch,
# cupy for the anchors), cmake, ninja, nvcc. Exit status: 0 when the build,
# the tests and every benchmark check pass.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
QUICK=""
[[ "${1:-}" == "--quick" ]] && QUICK="--quick"
RESULTS="$ROOT/benchmarks/results"
T0=$(date +%s)
DEADLINE=$((T0 + ${COHORTREC_CHECK_SECONDS:-340}))   # the whole check stays under 6 minutes
status=0
stage() { echo; echo "== $* [$(($(date +%s) - T0)) s]"; }
left() {  # seconds for the next stage: min(its own cap, what is left), at least 5
  local l=$((DEADLINE - $(date +%s)))
  ((l > $1)) && l=$1
  ((l < 5)) && l=5
  echo "$l"
}

stage "machine"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -n 1
"$PY" -c "import sys, numpy, scipy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
for m in torch cupy faiss; do "$PY" -c "import $m; print('$m', $m.__version__)" 2>/dev/null || echo "$m: not installed"; done

stage "build"
CC_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
ARCHS="${COHORTREC_CUDA_ARCHS:-${CC_CAP:-90}-real}"
BUILD="$ROOT/build/gpu-check"
mkdir -p "$ROOT/build"
PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir) || { echo "pybind11 is missing"; exit 2; }
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCOHORTREC_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -Dpybind11_DIR="$PYBIND11_DIR" \
      -DPython_EXECUTABLE="$(command -v "$PY")" > "$BUILD.configure.log" 2>&1; then
  tail -n 30 "$BUILD.configure.log"
  echo "configure failed (Python headers, pybind11 or nvcc missing?)"
  exit 2
fi
if ! cmake --build "$BUILD" -j "$(nproc)" > "$BUILD.build.log" 2>&1; then
  grep -E "error|Error" "$BUILD.build.log" | head -n 40
  echo "build failed; full log: $BUILD.build.log"
  exit 2
fi
cp "$BUILD"/_core*.so "$BUILD"/csrc/cuda/_cuda*.so "$ROOT/python/cohortrec/"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'EOF' || { echo "the CUDA module does not load or sees no GPU"; exit 2; }
import os, cohortrec
from cohortrec import _cuda
from cohortrec.ops import _backend
root = os.path.join(os.environ["PYTHONPATH"].split(":")[0], "cohortrec")
assert os.path.dirname(cohortrec.__file__) == root and os.path.dirname(_cuda.__file__) == root, \
    f"another cohortrec shadows this checkout: {cohortrec.__file__}, {_cuda.__file__}"
print("devices:", cohortrec.devices(), _backend.cuda_unavailable_reason())
print("device 0:", _cuda.device_info(0), "runtime", _cuda.runtime_version(), "driver", _cuda.driver_version())
assert "cuda" in cohortrec.devices()
EOF

stage "tests"
export PYTHONUNBUFFERED=1
timeout "$(left 80)" "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py || status=1
timeout "$(left 120)" "$PY" -m pytest -q -p no:cacheprovider --maxfail=25 -k cuda \
  tests/test_cosine_topk.py tests/test_kmeans_ops.py tests/test_topk_scores.py \
  tests/test_ops_validation.py tests/test_threads.py || status=1

stage "benchmark"
BUDGET=$(left 150)
timeout "$((BUDGET + 20))" "$PY" benchmarks/gpu/bench_gpu.py $QUICK --budget "$BUDGET" --out "$RESULTS" \
  || status=1
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
  newest=$(ls -t "$RESULTS"/gpu-*.md 2>/dev/null | head -n 1)
  [[ -n "$newest" ]] && cp "$newest" "$OUT"/
fi

stage "done (status $status)"
exit $status

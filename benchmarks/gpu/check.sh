#!/usr/bin/env bash
# One-shot GPU check of cohortrec for an H100/H200 machine (no network needed).
#
#   bash benchmarks/gpu/check.sh [--full] [--out DIR]   # on the GPU machine, from anywhere
#   bash benchmarks/gpu/check.sh --dry-run              # anywhere: the plumbing, on the CPU (< 1 min)
#
# 0. prerequisites, checked up front, one line for each one missing: nvcc
#    (the toolkit's bin/ is added to PATH when nvcc is not on it), cmake,
#    ninja (else make), a C++ compiler, the Python headers, pybind11, numpy,
#    scipy, pytest, hypothesis;
# 1. builds cohortrec (CPU + CUDA module) with CMake for the local GPU's
#    architecture only (sm_90 on an H100/H200; COHORTREC_CUDA_ARCHS
#    overrides), into build/gpu-check, and puts the two modules next to the
#    Python sources (python/cohortrec/, git-ignored *.so). Its time is printed
#    and does not count against the budget below;
# 2. runs tests/test_cuda.py and every op test on the "cuda" device
#    (pytest -k cuda) with COHORTREC_CUDA_SYNC=1 (a fault is reported by the
#    launch that caused it);
# 3. runs benchmarks/gpu/bench_gpu.py (--quick by default, --full for the
#    sizes of the targets): each op against the anchors installed there
#    (torch, cupy, faiss-gpu if present) and the measured GEMM rate. The table
#    is written row by row to benchmarks/results/gpu-<date>-<card>.md (or
#    --out DIR), and copied to $OUT when that is set.
# Stages 2-3 share COHORTREC_CHECK_SECONDS (default 300) counted from the end
# of the build; the build has its own cap, COHORTREC_CHECK_BUILD_SECONDS
# (default 420). With $OUT set, the whole log also goes to $OUT/check.log.
#
# --dry-run: no GPU, no CUDA build. The CPU stand-in for cohortrec._cuda
# (tests/_cuda_standin.py, the one the Python tests use) replaces the module,
# then stages 2-3 run as above (tiny benchmark sizes, results in a temporary
# folder unless --out is given), using the cohortrec that python imports.
#
# Exit status: 0 when the build, the tests and every benchmark check pass;
# 1 when a test or check fails; 2 when a prerequisite or the build fails.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
SIZE="--quick"
DRY=0
RESULTS=""
while (($#)); do
  case "$1" in
    --quick) SIZE="--quick" ;;
    --full) SIZE="--full" ;;
    --dry-run) DRY=1 ;;
    --out) RESULTS="${2:?--out needs a folder}"; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "check.sh: unknown argument '$1' (see --help)"; exit 2 ;;
  esac
  shift
done
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
  exec > >(tee "$OUT/check.log") 2>&1
fi
T_START=$(date +%s)
stage() { echo; echo "== $* [$(($(date +%s) - T_START)) s]"; }
status=0

# ------------------------------------------------------------ prerequisites
stage "prerequisites"
missing=0
need() { echo "missing: $*"; missing=$((missing + 1)); }
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "missing: $PY (set PYTHON=/path/to/python3)"
  exit 2
fi
for m in numpy scipy pytest hypothesis; do
  "$PY" -c "import $m" >/dev/null 2>&1 || need "Python package $m (pip install $m)"
done
"$PY" -c "import cohortrec._core" >/dev/null 2>&1 || ((DRY == 0)) ||
  need "an installed cohortrec (pip install .): the dry run uses the cohortrec that $PY imports"

# What the build needs (reported but not needed in a dry run).
build_missing=0
bneed() {
  if ((DRY)); then
    echo "not found (a real run needs it; the dry run does not): $*"
  else
    need "$*"
  fi
  build_missing=$((build_missing + 1))
}
if ! command -v nvcc >/dev/null 2>&1; then
  for dir in "${CUDA_PATH:-}" "${CUDA_HOME:-}" /usr/local/cuda $(ls -d /usr/local/cuda-* 2>/dev/null | sort -rV); do
    if [[ -n "$dir" && -x "$dir/bin/nvcc" ]]; then
      export PATH="$dir/bin:$PATH"
      echo "nvcc was not on PATH: using $dir/bin/nvcc (CMake finds it through PATH)"
      break
    fi
  done
fi
command -v nvcc >/dev/null 2>&1 || bneed "nvcc, the CUDA compiler (put the toolkit's bin/ on PATH or set CUDA_PATH)"
if ! command -v cmake >/dev/null 2>&1; then
  d=$("$PY" -c "import cmake; print(cmake.CMAKE_BIN_DIR)" 2>/dev/null) && [[ -x "$d/cmake" ]] && export PATH="$d:$PATH"
fi
command -v cmake >/dev/null 2>&1 || bneed "cmake >= 3.21 (pip install cmake)"
GEN=""
if ! command -v ninja >/dev/null 2>&1; then
  d=$("$PY" -c "import ninja; print(ninja.BIN_DIR)" 2>/dev/null) && [[ -x "$d/ninja" ]] && export PATH="$d:$PATH"
fi
if command -v ninja >/dev/null 2>&1; then
  GEN="Ninja"
elif command -v make >/dev/null 2>&1; then
  GEN="Unix Makefiles"
  echo "ninja not found: building with make"
else
  bneed "ninja or make (pip install ninja)"
fi
command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || bneed "a C++ compiler (g++)"
"$PY" -c "import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
  2>/dev/null || bneed "the Python headers, Python.h (e.g. apt install python3-dev)"
PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir 2>/dev/null) || bneed "pybind11 (pip install pybind11)"
if ((missing)); then
  echo "check.sh: $missing prerequisite(s) missing; nothing was built or run"
  exit 2
fi
echo "prerequisites: ok$( ((DRY && build_missing)) && echo " for the dry run")"

# ---------------------------------------------------------------- machine
stage "machine"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>/dev/null ||
  echo "nvidia-smi: not available"
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'); $(nproc) CPUs"
"$PY" -c "import sys, numpy, scipy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
for m in torch cupy faiss; do "$PY" -c "import $m; print('$m', $m.__version__)" 2>/dev/null || echo "$m: not installed"; done

# ------------------------------------------------------------------ build
PLUGIN=()
BENCH_ARGS=()
if ((DRY)); then
  stage "build: skipped (dry run: the CPU stand-in replaces cohortrec._cuda)"
  export PYTHONPATH="$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}"
  PLUGIN=(-p _cuda_standin)
  BENCH_ARGS=(--cpu-stand-in)
  SIZE="--tiny"
  if [[ -z "$RESULTS" ]]; then
    RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/cohortrec-gpu-dry-run.XXXXXX")
    trap 'rm -rf "$RESULTS"' EXIT
  fi
  "$PY" - <<'EOF' || { echo "the CPU stand-in does not load"; exit 2; }
import _cuda_standin
_cuda_standin.install()
import cohortrec
from cohortrec import _cuda
assert getattr(_cuda, "IS_CPU_STANDIN", False) and "cuda" in cohortrec.devices(), cohortrec.devices()
print("cohortrec", cohortrec.__file__, "devices:", cohortrec.devices(), "(_cuda = CPU stand-in)")
EOF
else
  CC_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  ARCHS="${COHORTREC_CUDA_ARCHS:-${CC_CAP:-90}-real}"
  BUILD="$ROOT/build/gpu-check"
  stage "build (CUDA architectures $ARCHS, $GEN)"
  mkdir -p "$ROOT/build"
  B0=$(date +%s)
  if ! cmake -S "$ROOT" -B "$BUILD" -G "$GEN" -DCOHORTREC_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -Dpybind11_DIR="$PYBIND11_DIR" \
        -DPython_EXECUTABLE="$(command -v "$PY")" > "$BUILD.configure.log" 2>&1; then
    tail -n 30 "$BUILD.configure.log"
    echo "configure failed; full log: $BUILD.configure.log"
    exit 2
  fi
  if ! timeout "${COHORTREC_CHECK_BUILD_SECONDS:-420}" cmake --build "$BUILD" -j "$(nproc)" > "$BUILD.build.log" 2>&1; then
    grep -E "error|Error" "$BUILD.build.log" | head -n 40
    echo "build failed or ran past COHORTREC_CHECK_BUILD_SECONDS; full log: $BUILD.build.log"
    exit 2
  fi
  echo "build: $(($(date +%s) - B0)) s (configure + compile, -j $(nproc))"
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
fi
RESULTS="${RESULTS:-$ROOT/benchmarks/results}"

# The budget of the tests and the benchmark starts now, after the build.
T0=$(date +%s)
DEADLINE=$((T0 + ${COHORTREC_CHECK_SECONDS:-300}))
left() {  # seconds for the next stage: min(its own cap, what is left), at least 5
  local l=$((DEADLINE - $(date +%s)))
  ((l > $1)) && l=$1
  ((l < 5)) && l=5
  echo "$l"
}
run_capped() {  # run_capped SECONDS WHAT CMD...: status 1 (and a line) on failure or timeout
  local cap=$1 what=$2 rc
  shift 2
  timeout "$cap" "$@"
  rc=$?
  if ((rc == 124)); then
    echo "$what: stopped after $cap s (out of time)"
  elif ((rc != 0)); then
    echo "$what: failed (exit $rc)"
  fi
  ((rc == 0)) || status=1
}

# ------------------------------------------------------------------ tests
stage "tests (COHORTREC_CUDA_SYNC=1)"
export PYTHONUNBUFFERED=1
PYTEST=("$PY" -m pytest -q -p no:cacheprovider "${PLUGIN[@]}")
COHORTREC_CUDA_SYNC=1 run_capped "$(left 90)" "tests/test_cuda.py" "${PYTEST[@]}" -rs tests/test_cuda.py
OP_TESTS=(tests/test_cosine_topk.py tests/test_kmeans_ops.py tests/test_topk_scores.py tests/test_ops_validation.py
  tests/test_threads.py)
KSEL="cuda"
# dry run: the plumbing only (the ops themselves are tested on the CPU by the suite): a few
# fixed-input tests per op instead of ~1400, with the hypothesis ones, that take minutes
((DRY)) && KSEL="cuda and (known or empty or zero_size)"
COHORTREC_CUDA_SYNC=1 run_capped "$(left 150)" "op tests on cuda" "${PYTEST[@]}" --maxfail=25 -k "$KSEL" "${OP_TESTS[@]}"

# -------------------------------------------------------------- benchmark
stage "benchmark (${SIZE#--})"
BUDGET=$(left 240)
before=$(ls "$RESULTS"/gpu-*.md 2>/dev/null | sort)
run_capped "$((BUDGET + 30))" "bench_gpu.py" "$PY" benchmarks/gpu/bench_gpu.py "$SIZE" --budget "$BUDGET" \
  --out "$RESULTS" "${BENCH_ARGS[@]}"
newest=$(comm -13 <(echo "$before") <(ls "$RESULTS"/gpu-*.md 2>/dev/null | sort) | tail -n 1)
if [[ -z "$newest" ]]; then
  echo "bench_gpu.py wrote no results file in $RESULTS"
  status=1
else
  rows=$(($(grep -c '^| ' "$newest") - 1))  # table lines less the header
  echo "results: $newest ($rows rows)"
  ((rows > 0)) || { echo "the results file has no rows"; status=1; }
  if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then cp "$newest" "$OUT"/; fi
  if ((DRY)); then
    grep -q '^Run time .* Checks: ' "$newest" || { echo "the results file has no checks line"; status=1; }
  fi
fi

stage "done (status $status; tests + benchmark $(($(date +%s) - T0)) s of ${COHORTREC_CHECK_SECONDS:-300})"
exit $status

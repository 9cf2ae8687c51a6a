"""The kernel and ops tests against ``_core`` built with AddressSanitizer and UBSan.

``COHORTREC_SANITIZE=ON`` (CMakeLists.txt) compiles ``cohortrec._core`` with
``-fsanitize=address,undefined``. This test builds such a copy of the package
into a temporary folder, puts it first on ``PYTHONPATH`` and runs the kernel and
ops tests in a subprocess with libasan preloaded (the interpreter itself is not
instrumented; leak checking is off, since Python keeps objects to exit). Any
out-of-bounds access or undefined behaviour aborts that run.

It takes minutes (a build, then ~1,000 tests at about a third of the speed), so
it runs where ``CI`` is set (``.ci/run``) or ``COHORTREC_TEST_SANITIZE=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL_TESTS = [
    "tests/test_cosine_topk.py", "tests/test_topk_scores.py", "tests/test_topk_scores_select.py",
    "tests/test_kmeans_ops.py", "tests/test_kmeans_bounded.py", "tests/test_kmeans_seeding.py",
    "tests/test_evaluation_native.py", "tests/test_recommenders_dense_topn.py", "tests/test_row_topk.py",
    "tests/test_ops_validation.py", "tests/test_threads.py", "tests/test_fuzz.py", "tests/test_serving.py",
]

pytestmark = pytest.mark.skipif(
    not (os.environ.get("CI") or os.environ.get("COHORTREC_TEST_SANITIZE")),
    reason="slow: runs in CI (CI=true) or with COHORTREC_TEST_SANITIZE=1",
)


def _runtime(name: str) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found (the sanitizer runtimes come with it)")
    path = subprocess.run([gcc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.skip(f"{name} not found")
    return path


def test_kernels_under_asan_and_ubsan(tmp_path):
    preload = f"{_runtime('libasan.so')} {_runtime('libubsan.so')}"
    site = tmp_path / "asan-site"
    env = dict(os.environ, COHORTREC_SANITIZE="ON", COHORTREC_CUDA="OFF")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         "-C", f"build-dir={tmp_path / 'build'}", "-C", "cmake.build-type=RelWithDebInfo", str(ROOT)],
        env=env, capture_output=True, text=True, timeout=1500)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                   LD_PRELOAD=preload, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    probe = subprocess.run([sys.executable, "-c", "import cohortrec._core as c; print(c.__file__)"], cwd=tmp_path,
                           env=run_env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    if str(site) not in probe.stdout:  # an editable install's import hook wins over PYTHONPATH
        pytest.skip(f"the instrumented copy is shadowed by {probe.stdout.strip()} (editable install?); "
                    "run in a checkout installed with `pip install .`, as CI does")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                            *KERNEL_TESTS], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=3000)
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-6000:]

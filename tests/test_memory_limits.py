"""Each op's scratch memory is bounded by blocking: it runs under a memory cap that an
unblocked version (a dense n x p similarity, an n x k distance matrix, a dense u x m
score matrix) would exceed many times over.

The ops run in a subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` at its size after the imports plus
``HEADROOM``. The bounds (docs/architecture.md, "Memory"):

* ``cosine_topk``: O(threads * p + nnz(B) + n * k) -- a dense accumulator row per thread;
* ``kmeans_assign``: O(threads * tile + k * d) -- register tiles, no n x k matrix;
* ``topk_scores``: O(threads * m + nnz(R) + u * n).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")

HEADROOM = 2 << 30  # 2 GiB over the interpreter's size after imports

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np, scipy.sparse as sp
    from cohortrec import ops

    def vm_size():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmSize")

    rng = np.random.default_rng(0)
    n, m = 40_000, 60_000
    A = sp.random(n, m, density=12 / m, format="csr", random_state=rng, dtype=np.float32)
    X = rng.standard_normal((400_000, 16)).astype(np.float32)
    C = X[:2000].copy()
    # warm the thread pool and the allocator, then cap the address space
    ops.cosine_topk(A[:100], k=5)
    ops.kmeans_assign(X[:1000], C[:10])
    cap = vm_size() + int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        np.empty((n, n), dtype=np.float32)  # what an unblocked cosine would hold
        print("UNCAPPED")
        raise SystemExit(3)
    except MemoryError:
        pass
    S = ops.cosine_topk(A, k=20)             # dense: n * n * 4 bytes = 6.4 GB
    assert S.shape == (n, n) and S.nnz <= 20 * n
    labels, sq = ops.kmeans_assign(X, C)    # dense distances: 400k * 2000 * 4 bytes = 3.2 GB
    assert labels.shape == (400_000,) and labels[:2000].tolist() == list(range(2000))
    items, scores = ops.topk_scores(S, A, n=10)  # dense scores: 40k * 60k * 4 bytes = 9.6 GB
    assert items.shape == (n, 10)
    print("OK")
    """
)


@pytest.mark.slow
def test_ops_run_under_a_memory_cap(tmp_path):
    script = tmp_path / "capped.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(HEADROOM)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")

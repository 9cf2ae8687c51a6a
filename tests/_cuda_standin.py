"""A CPU stand-in for the compiled module ``cohortrec._cuda``.

It has the compiled module's surface (the host-array ops with the argument
checks the real binding enforces, the ``*_ptr`` ops on raw pointers, device
queries) and computes everything with the CPU kernels of ``cohortrec._core``.
So the Python glue of the GPU path (:mod:`cohortrec.ops._cuda`), the GPU tests
and ``benchmarks/gpu`` can run, and be tested, on a machine without a GPU.

Used three ways:

* ``tests/test_cuda.py`` monkeypatches an instance in (fixture ``stand_in``);
* as a pytest plugin, ``pytest -p _cuda_standin`` (with ``tests/`` on
  ``PYTHONPATH``) installs it before any conftest imports cohortrec, so
  ``cohortrec.devices()`` reports ``"cuda"`` and every ``device="cuda"`` test
  runs through the glue on the CPU;
* ``benchmarks/gpu/bench_gpu.py --cpu-stand-in`` installs it the same way.
  ``benchmarks/gpu/check.sh --dry-run`` uses both.

``*_ptr`` functions read and write *host* memory at the given addresses (a
CPU torch tensor's ``data_ptr()``, a NumPy array's ``ctypes.data``): only a
test that routes CPU tensors through the device path may call them.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

IS_CPU_STANDIN = True


class CudaError(RuntimeError):
    """Stand-in for cohortrec._cuda.CudaError."""


class DeviceArray:
    """Stand-in for cohortrec._cuda.DeviceArray (never produced here)."""


def _host(ptr: int, n: int, dtype) -> np.ndarray:
    """A NumPy view of n items of dtype at host address ptr (writable)."""
    dtype = np.dtype(dtype)
    if n == 0 or ptr == 0:
        return np.empty(n, dtype)
    buf = (ctypes.c_char * (int(n) * dtype.itemsize)).from_address(int(ptr))
    return np.frombuffer(buf, dtype=dtype, count=int(n))


def _csr_check(ptr, idx, val, n):
    assert ptr.dtype == np.int64 and ptr.flags.c_contiguous and ptr.shape == (n + 1,)
    assert idx.dtype == np.int32 and idx.flags.c_contiguous
    if val is not None:
        assert val.dtype in (np.float32, np.float64) and val.flags.c_contiguous
        assert val.shape == idx.shape


class StandIn:
    """The compiled module's API, computed by the CPU kernels; ``calls`` records the op names."""

    has_kernels = True
    IS_CPU_STANDIN = True
    CudaError = CudaError
    DeviceArray = DeviceArray
    PRECISIONS = ("fp32", "tf32", "bf16")

    def __init__(self):
        from cohortrec import _core
        self.core = _core
        self.calls = []

    # ------------------------------------------------------------ devices
    def device_count(self):
        return 1

    def runtime_version(self):
        return 0

    def driver_version(self):
        return 0

    def current_device(self):
        return 0

    def device_info(self, device=0):
        return {"name": "CPU stand-in", "compute_capability": (0, 0), "multiprocessors": 0,
                "total_memory": 0, "l2_cache_bytes": 0}

    def memory_info(self, device=-1):
        return (0, 0)

    def synchronize(self):
        return None

    # -------------------------------------------------- host-array flavour
    def cosine_topk(self, a_ptr, a_idx, a_val, n, m, b_ptr, b_idx, b_val, p, k, thr, excl, device=-1):
        self.calls.append("cosine_topk")
        _csr_check(a_ptr, a_idx, a_val, n)
        assert m <= np.iinfo(np.int32).max
        if b_ptr is not None:
            _csr_check(b_ptr, b_idx, b_val, p)
        return self.core.cosine_topk(a_ptr, a_idx, a_val, n, m, b_ptr, b_idx, b_val, p, k, thr, excl, 1)

    def topk_scores(self, w_ptr, w_idx, w_val, u, j, r_ptr, r_idx, r_val, m, e_ptr, e_idx, items, scores,
                    device=-1):
        self.calls.append("topk_scores")
        _csr_check(w_ptr, w_idx, w_val, u)
        _csr_check(r_ptr, r_idx, r_val, j)
        assert m <= np.iinfo(np.int32).max
        if e_ptr is not None:
            _csr_check(e_ptr, e_idx, None, u)
        self.core.topk_scores(w_ptr, w_idx, w_val, u, j, r_ptr, r_idx, r_val, m, e_ptr, e_idx, items, scores, 1)

    def kmeans_assign_dense(self, X, C, labels, sq, precision="fp32", device=-1):
        self.calls.append("kmeans_assign_dense")
        assert X.flags.c_contiguous and C.flags.c_contiguous and precision in self.PRECISIONS
        self.core.kmeans_assign_dense(X, C, labels, sq, 1)

    def kmeans_assign_csr(self, ptr, idx, val, n, d, C, labels, sq, device=-1):
        self.calls.append("kmeans_assign_csr")
        _csr_check(ptr, idx, val, n)
        self.core.kmeans_assign_csr(ptr, idx, val, n, d, C, labels, sq, 1)

    def kmeans_update_dense(self, X, labels, k, w, sums, counts, device=-1):
        self.calls.append("kmeans_update_dense")
        assert X.flags.c_contiguous and labels.dtype == np.int64
        self.core.kmeans_update_dense(X, labels, k, w, sums, counts, 1)

    def kmeans_update_csr(self, ptr, idx, val, n, d, labels, k, w, sums, counts, device=-1):
        self.calls.append("kmeans_update_csr")
        _csr_check(ptr, idx, val, n)
        self.core.kmeans_update_csr(ptr, idx, val, n, d, labels, k, w, sums, counts, 1)

    # ----------------------------------------- pointer flavour (host memory)
    def cosine_topk_ptr(self, *args, **kwargs):
        raise CudaError("cosine_topk_ptr returns device arrays; the CPU stand-in cannot make them")

    def topk_scores_ptr(self, dtype, w_indptr, w_indices, w_data, u, j, nnz_w, r_indptr, r_indices, r_data, m,
                        nnz_r, e_indptr, e_indices, n, item_map, items, scores, stream, device):
        self.calls.append("topk_scores_ptr")
        W = (_host(w_indptr, u + 1, np.int64), _host(w_indices, nnz_w, np.int32), _host(w_data, nnz_w, dtype))
        R = (_host(r_indptr, j + 1, np.int64), _host(r_indices, nnz_r, np.int32), _host(r_data, nnz_r, dtype))
        e_ptr = _host(e_indptr, u + 1, np.int64) if e_indptr else None
        e_idx = _host(e_indices, int(e_ptr[-1]), np.int32) if e_indptr else None
        it, sc = _host(items, u * n, np.int64).reshape(u, n), _host(scores, u * n, dtype).reshape(u, n)
        self.core.topk_scores(*W, u, j, *R, m, e_ptr, e_idx, it, sc, 1)
        if item_map:
            used = _host(item_map, m, np.int64)
            found = it >= 0
            it[found] = used[it[found]]

    def kmeans_assign_dense_ptr(self, dtype, X, n, d, C, k, labels, sq, precision, stream, device):
        self.calls.append("kmeans_assign_dense_ptr")
        assert precision in self.PRECISIONS
        try:
            self.core.kmeans_assign_dense(_host(X, n * d, dtype).reshape(n, d), _host(C, k * d, dtype).reshape(k, d),
                                          _host(labels, n, np.int64), _host(sq, n, dtype), 1)
        except ValueError:
            return False
        return True

    def kmeans_assign_csr_ptr(self, dtype, indptr, indices, data, n, d, nnz, C, k, labels, sq, stream, device):
        self.calls.append("kmeans_assign_csr_ptr")
        try:
            self.core.kmeans_assign_csr(_host(indptr, n + 1, np.int64), _host(indices, nnz, np.int32),
                                        _host(data, nnz, dtype), n, d, _host(C, k * d, dtype).reshape(k, d),
                                        _host(labels, n, np.int64), _host(sq, n, dtype), 1)
        except ValueError:
            return False
        return True

    def kmeans_update_dense_ptr(self, dtype, X, n, d, labels, k, w, sums, counts, stream, device):
        self.calls.append("kmeans_update_dense_ptr")
        self.core.kmeans_update_dense(_host(X, n * d, dtype).reshape(n, d), _host(labels, n, np.int64), k,
                                      _host(w, n, dtype) if w else None, _host(sums, k * d, dtype).reshape(k, d),
                                      _host(counts, k, dtype), 1)

    def kmeans_update_csr_ptr(self, dtype, indptr, indices, data, n, d, nnz, labels, k, w, sums, counts, stream,
                              device):
        self.calls.append("kmeans_update_csr_ptr")
        self.core.kmeans_update_csr(_host(indptr, n + 1, np.int64), _host(indices, nnz, np.int32),
                                    _host(data, nnz, dtype), n, d, _host(labels, n, np.int64), k,
                                    _host(w, n, dtype) if w else None, _host(sums, k * d, dtype).reshape(k, d),
                                    _host(counts, k, dtype), 1)


def install() -> StandIn:
    """Make ``import cohortrec._cuda`` return a :class:`StandIn` in this process."""
    fake = StandIn()
    sys.modules["cohortrec._cuda"] = fake  # type: ignore[assignment]
    sys.modules["cohortrec"]._cuda = fake  # imported by StandIn(); shadows a compiled _cuda
    backend = sys.modules.get("cohortrec.ops._backend")
    if backend is not None:  # cohortrec already imported: forget the cached status
        backend._cuda_status.cache_clear()
    return fake


# pytest plugin (``-p _cuda_standin``): install before the conftests import cohortrec.
def pytest_load_initial_conftests(early_config, parser, args):
    install()


def pytest_report_header(config):
    if isinstance(sys.modules.get("cohortrec._cuda"), StandIn):
        return ["cohortrec._cuda: CPU stand-in (tests/_cuda_standin.py); no GPU is used"]
    return []

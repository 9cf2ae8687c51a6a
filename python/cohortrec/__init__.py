"""cohortrec: discover user groups in interaction data and recommend with them.

The heavy lifting runs in native kernels (:mod:`cohortrec.ops`): C++/OpenMP on
the CPU and CUDA on the GPU, chosen at run time with ``device="auto"``.
"""

from __future__ import annotations

from cohortrec._backend import DeviceUnavailableError, devices, n_threads_default
from cohortrec import ops

__version__ = "0.1.0"

__all__ = ["DeviceUnavailableError", "devices", "n_threads_default", "ops", "__version__"]

// pybind11 bindings of the CUDA module: cohortrec._cuda.
#include <pybind11/pybind11.h>

#include "cuda/device.cuh"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "cohortrec CUDA kernels. Use cohortrec.ops, which validates inputs and dispatches.";
  m.def("device_count", &cohortrec::cuda::device_count, "Number of visible CUDA devices.");
  m.def("runtime_version", &cohortrec::cuda::runtime_version, "CUDA runtime version built against.");
  m.attr("has_kernels") = false;
}

// Device discovery for cohortrec._cuda. The kernels themselves are added by
// the GPU work (csrc/cuda/<op>.cu); this file only answers "is a GPU usable".
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda/device.cuh"

namespace cohortrec::cuda {

int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(err));
  }
  return n;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

}  // namespace cohortrec::cuda

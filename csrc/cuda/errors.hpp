#pragma once
// Error handling of the CUDA module.
//
// Every runtime call goes through CHECK_CUDA, which turns a failure into a
// C++ exception naming the call and its file:line; the binding translates
//   * CudaOutOfMemory -> Python MemoryError (with the number of bytes asked for),
//   * CudaError       -> cohortrec._cuda.CudaError (a RuntimeError).
// Kernel launches are checked with CHECK_LAUNCH("kernel name"). Launches are
// asynchronous, so a fault inside a kernel is normally reported by the next
// synchronising call; set COHORTREC_CUDA_SYNC=1 to synchronise after every
// launch so that the failing kernel itself is named.
//
// Plain C++ (no device code): included by the pybind11 binding too.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace cohortrec::cuda {

/// A CUDA runtime call failed.
class CudaError : public std::runtime_error {
 public:
  CudaError(cudaError_t code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

/// A device allocation failed; `bytes()` is the size that was asked for.
class CudaOutOfMemory : public std::runtime_error {
 public:
  CudaOutOfMemory(std::size_t bytes, const std::string& msg) : std::runtime_error(msg), bytes_(bytes) {}
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::size_t bytes_;
};

/// Throws CudaError (or CudaOutOfMemory for cudaErrorMemoryAllocation)
/// with "<call> failed at <file>:<line>: <name>: <description>".
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line,
                                   std::size_t bytes = 0);

inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, call, file, line);
}

/// True when COHORTREC_CUDA_SYNC is set to a non-empty value other than "0".
bool sync_after_launch();

/// Checks the launch that just happened (and, in sync mode, its execution).
void check_launch(const char* kernel, cudaStream_t stream, const char* file, int line);

}  // namespace cohortrec::cuda

#define CHECK_CUDA(call) ::cohortrec::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CHECK_LAUNCH(kernel, stream) ::cohortrec::cuda::check_launch((kernel), (stream), __FILE__, __LINE__)
